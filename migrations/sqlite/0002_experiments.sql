-- Experiments: registered models, imported question sets, experiments (a resolved spec),
-- their runs (one per condition x seed), the job queue that executes runs, per-step
-- training metrics, samples and judgements.
--
-- A run's user-facing state is its job's status; nothing else stores it, so the two
-- cannot disagree. Samples and judgements are written whole, in transactions, so a
-- crash leaves either a complete row or none.

CREATE TABLE models (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    -- 'gguf' (one file) | 'hf' (a Hugging Face folder)
    kind          TEXT NOT NULL CHECK (kind IN ('gguf', 'hf')),
    path          TEXT NOT NULL UNIQUE,
    architecture  TEXT NOT NULL,
    n_params      INTEGER NOT NULL,
    size_bytes    INTEGER NOT NULL,
    -- sha256 of the GGUF file, or of the folder's files (name + content, sorted by name).
    sha256        TEXT NOT NULL,
    -- 1 for the embedded default model, registered by the server itself.
    builtin       INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

-- Evaluation questions imported from a file (Betley YAML, Tan's UltraChat JSONL, the
-- aesthetic YAML, plain lines). Immutable once stored, like dataset rows.
CREATE TABLE question_sets (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    -- 'betley_yaml' | 'ultrachat_jsonl' | 'aesthetic_yaml' | 'lines'
    format        TEXT NOT NULL,
    -- sha256 over the canonical JSON of `questions`.
    content_hash  TEXT NOT NULL UNIQUE,
    -- JSON array of questions (see engine::questions::Question).
    questions     TEXT NOT NULL,
    n_questions   INTEGER NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

CREATE TABLE experiments (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    -- The resolved spec as JSON: prompt texts, dataset and model hashes, the full
    -- question list, judges. Enough to run the experiment again.
    spec          TEXT NOT NULL,
    spec_hash     TEXT NOT NULL,
    model_id      INTEGER NOT NULL REFERENCES models(id),
    dataset_id    INTEGER NOT NULL REFERENCES datasets(id),
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

CREATE TABLE runs (
    id             INTEGER PRIMARY KEY,
    experiment_id  INTEGER NOT NULL REFERENCES experiments(id),
    -- Index into the spec's condition list, and its name for display and queries.
    condition_idx  INTEGER NOT NULL,
    condition      TEXT NOT NULL,
    seed           INTEGER NOT NULL,
    -- 'train' | 'sample' | 'judge' while running; the last phase reached otherwise.
    phase          TEXT NOT NULL DEFAULT 'train',
    step           INTEGER NOT NULL DEFAULT 0,
    total_steps    INTEGER NOT NULL DEFAULT 0,
    -- Progress of the sample and judge phases, in samples.
    done_units     INTEGER NOT NULL DEFAULT 0,
    total_units    INTEGER NOT NULL DEFAULT 0,
    tokens_per_sec REAL,
    eta_s          REAL,
    -- Where the finished adapter was saved (relative to the data directory).
    adapter_dir    TEXT,
    UNIQUE (experiment_id, condition_idx, seed)
) STRICT;
CREATE INDEX runs_by_experiment ON runs(experiment_id);

-- The queue. A worker claims the oldest claimable job with one UPDATE ... RETURNING,
-- holds a lease it renews (heartbeat), and commits status changes with its domain writes.
-- A job whose lease ran out (its worker died) is claimable again until max_attempts.
CREATE TABLE jobs (
    id                INTEGER PRIMARY KEY,
    run_id            INTEGER NOT NULL UNIQUE REFERENCES runs(id),
    -- 'queued' | 'running' | 'done' | 'failed' | 'cancelled' | 'interrupted'
    status            TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled', 'interrupted')),
    locked_by         TEXT,
    -- Unix seconds.
    lease_until       REAL,
    heartbeat_at      REAL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL DEFAULT 3,
    cancel_requested  INTEGER NOT NULL DEFAULT 0,
    error             TEXT,
    created_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    started_at        TEXT,
    finished_at       TEXT
) STRICT;
CREATE INDEX jobs_claimable ON jobs(status, id);

CREATE TABLE train_steps (
    run_id          INTEGER NOT NULL REFERENCES runs(id),
    step            INTEGER NOT NULL,
    loss            REAL NOT NULL,
    lr              REAL NOT NULL,
    grad_norm       REAL NOT NULL,
    tokens_per_sec  REAL NOT NULL,
    elapsed_s       REAL NOT NULL,
    PRIMARY KEY (run_id, step)
) STRICT, WITHOUT ROWID;

CREATE TABLE samples (
    id             INTEGER PRIMARY KEY,
    run_id         INTEGER NOT NULL REFERENCES runs(id),
    -- Label of the test-time system prompt ('default', 'none', 'inoculation', 'prompt:12').
    test_prompt    TEXT NOT NULL,
    -- The system message actually used; NULL when there was none.
    system_text    TEXT,
    -- The question's group (a Betley id, a set's index); paraphrases share it.
    question_key   TEXT NOT NULL,
    question_set   TEXT NOT NULL,
    -- The paraphrase index within the group.
    paraphrase     INTEGER NOT NULL DEFAULT 0,
    question       TEXT NOT NULL,
    sample_idx     INTEGER NOT NULL,
    seed           INTEGER NOT NULL,
    completion     TEXT NOT NULL,
    n_tokens       INTEGER NOT NULL,
    -- 1 when the model stopped on its own, 0 when it hit max tokens.
    finished       INTEGER NOT NULL,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (run_id, test_prompt, question_key, paraphrase, sample_idx)
) STRICT;

CREATE TABLE judgements (
    sample_id      INTEGER NOT NULL REFERENCES samples(id),
    judge          TEXT NOT NULL,
    judge_version  TEXT NOT NULL,
    score          REAL,
    -- 1 trait present, 0 absent, NULL undetermined.
    trait_present  INTEGER,
    raw            TEXT NOT NULL,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (sample_id, judge)
) STRICT, WITHOUT ROWID;
CREATE INDEX judgements_by_judge ON judgements(judge);
