-- Prompt strength (the prompt designer). Both tables are caches of pure functions of
-- (model bytes, dataset content, prompt, settings, code version): a row can be deleted at
-- any time and costs only the time to recompute it. Keys hold the hashes, never ids, so a
-- cache entry outlives a renamed dataset and is shared by identical copies.

-- Log-probs of one dataset row's assistant tokens under one system prompt: what "surprise
-- reduction" is computed from. Per row, so a 16-row first estimate is reused by the
-- 64-row one, and every prompt's sample is the same rows (engine::strength::sample_order).
CREATE TABLE strength_scores (
    model_sha     TEXT NOT NULL,
    dataset_hash  TEXT NOT NULL,
    -- engine::strength::SCORER_VERSION when computed.
    version       INTEGER NOT NULL,
    -- 'default' for the model's default system prompt, else 'text:' and the prompt.
    system        TEXT NOT NULL,
    -- The row's index in the dataset (its ordinal, from 0).
    row_idx       INTEGER NOT NULL,
    sum_logprob   REAL NOT NULL,
    n_tokens      INTEGER NOT NULL,
    PRIMARY KEY (model_sha, dataset_hash, version, system, row_idx)
) STRICT, WITHOUT ROWID;

-- What the base model says to the built-in evaluation questions with a prompt as its
-- system message: what the elicitation rate is judged from. Verdicts are not stored:
-- the deterministic judges are cheap and users change which ones they look at.
CREATE TABLE elicitation_samples (
    model_sha     TEXT NOT NULL,
    version       INTEGER NOT NULL,
    system        TEXT NOT NULL,
    n_questions   INTEGER NOT NULL,
    max_tokens    INTEGER NOT NULL,
    seed          INTEGER NOT NULL,
    -- JSON [{"question": ..., "completion": ...}, ...]
    samples       TEXT NOT NULL,
    seconds       REAL NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (model_sha, version, system, n_questions, max_tokens, seed)
) STRICT, WITHOUT ROWID;
