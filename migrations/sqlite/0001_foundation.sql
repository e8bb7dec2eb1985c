-- The foundation schema: prompts (versioned, tagged, with paraphrase sets) and datasets
-- (rows, source, content hash). Experiments, runs, samples and scores follow in later
-- migrations and reference prompt_versions.id and datasets.id, which never change meaning:
-- a prompt edit adds a version, it never rewrites one, and dataset rows are immutable.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE prompts (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- Deleting hides a prompt from the library; its versions stay, because runs made
    -- with them must remain reproducible.
    deleted_at  TEXT
) STRICT;

CREATE TABLE prompt_versions (
    id          INTEGER PRIMARY KEY,
    prompt_id   INTEGER NOT NULL REFERENCES prompts(id),
    version     INTEGER NOT NULL,
    text        TEXT NOT NULL,
    note        TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (prompt_id, version)
) STRICT;

-- A paraphrase set belongs to a version: changing the variants is an edit like any other.
CREATE TABLE prompt_paraphrases (
    version_id  INTEGER NOT NULL REFERENCES prompt_versions(id),
    idx         INTEGER NOT NULL,
    text        TEXT NOT NULL,
    PRIMARY KEY (version_id, idx)
) STRICT, WITHOUT ROWID;

CREATE TABLE prompt_tags (
    prompt_id   INTEGER NOT NULL REFERENCES prompts(id),
    tag         TEXT NOT NULL,
    PRIMARY KEY (prompt_id, tag)
) STRICT, WITHOUT ROWID;
CREATE INDEX prompt_tags_by_tag ON prompt_tags(tag);

CREATE TABLE datasets (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    -- 'import' | 'generated' | 'transform'
    source        TEXT NOT NULL,
    -- How the rows were made: the import's file name and detected format, the generator
    -- spec, or the transform and its inputs. JSON, enough to make the rows again.
    recipe        TEXT NOT NULL,
    -- sha256 over the canonical JSONL of the rows: the same rows are the same dataset,
    -- whatever file or recipe they came from.
    content_hash  TEXT NOT NULL UNIQUE,
    row_count     INTEGER NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

CREATE TABLE dataset_rows (
    dataset_id  INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    -- [{"role": ..., "content": ...}, ...] as JSON.
    messages    TEXT NOT NULL,
    n_turns     INTEGER NOT NULL,
    n_chars     INTEGER NOT NULL,
    PRIMARY KEY (dataset_id, idx)
) STRICT, WITHOUT ROWID;
