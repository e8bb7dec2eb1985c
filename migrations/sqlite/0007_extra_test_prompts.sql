-- Test-time prompts added to an experiment after its runs finished: the elicitation check
-- (Tan et al. 2025 found an inoculated trait can be re-elicited by other system prompts).
-- They live beside the stored spec, not in it, so the spec and its hash stay what was
-- launched; `experiments::get` appends them (in `position` order) to the resolved test
-- prompts, and the worker samples and judges only what is missing for them.
CREATE TABLE experiment_test_prompts (
    id                 INTEGER PRIMARY KEY,
    experiment_id      INTEGER NOT NULL REFERENCES experiments(id),
    -- Order of addition: samples of later prompts are batched after earlier ones.
    position           INTEGER NOT NULL,
    -- Stored with each sample, like the spec's labels: 'none', 'prompt:ID@vN', a user's label.
    label              TEXT NOT NULL,
    -- 'default' | 'none' | 'inoculation' | 'text'
    kind               TEXT NOT NULL CHECK (kind IN ('default', 'none', 'inoculation', 'text')),
    -- The system prompt's text for kind 'text'; NULL otherwise.
    text               TEXT,
    -- The library prompt version the text came from, when it came from the library.
    prompt_version_id  INTEGER REFERENCES prompt_versions(id),
    created_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (experiment_id, label),
    UNIQUE (experiment_id, position),
    CHECK ((kind = 'text') = (text IS NOT NULL))
) STRICT;
