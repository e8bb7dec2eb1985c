-- Sample search at scale: the sample browser counts and pages an experiment's samples
-- under any mix of filters (condition, seed, test prompt, question, a judge's verdict or
-- score, text) in well under 50 ms at 100,000 samples and 300,000 judgements
-- (engine/examples/bench_samples.rs; BENCHMARKS.md has the numbers).
--
-- Plain indexes do not get there: every filter but the text lives on a different table
-- (runs, samples, judgements), so a count joins row by row, and both samples (completions)
-- and judgements (raw LLM output) have wide rows that a 2 MB page cache cannot hold. Two
-- narrow tables copy the filter columns next to each other instead, keyed by experiment,
-- so a count is one range scan and an id-ordered page stops after its rows. They are
-- derived data, like an index: triggers keep them in step with samples and judgements,
-- nothing else writes them, and they could be dropped and rebuilt from those tables at any
-- time. They have no foreign keys for the same reason (an index has none either).
--
-- Text search uses an FTS5 index with the trigram tokenizer (SQLite >= 3.34; the bundled
-- libsqlite3-sys builds with FTS5), which answers case-insensitive substring queries of
-- three or more characters; it is an external-content table over samples, so the text is
-- stored once.

-- One row per sample, in id order within an experiment.
CREATE TABLE sample_facets (
    experiment_id  INTEGER NOT NULL,
    sample_id      INTEGER NOT NULL,
    run_id         INTEGER NOT NULL,
    test_prompt    TEXT NOT NULL,
    question_key   TEXT NOT NULL,
    paraphrase     INTEGER NOT NULL,
    PRIMARY KEY (experiment_id, sample_id)
) STRICT, WITHOUT ROWID;

-- One row per judgement, in sample id order within an experiment and judge.
CREATE TABLE judgement_facets (
    experiment_id  INTEGER NOT NULL,
    judge          TEXT NOT NULL,
    sample_id      INTEGER NOT NULL,
    trait_present  INTEGER,
    score          REAL,
    run_id         INTEGER NOT NULL,
    test_prompt    TEXT NOT NULL,
    question_key   TEXT NOT NULL,
    PRIMARY KEY (experiment_id, judge, sample_id)
) STRICT, WITHOUT ROWID;

-- The question picker (grouping by question) and side by side (one question's samples),
-- covering so that neither reads the table.
CREATE INDEX sample_facets_by_question ON sample_facets(experiment_id, question_key, paraphrase, run_id, test_prompt);

CREATE VIRTUAL TABLE samples_fts USING fts5(
    completion, question,
    content = 'samples', content_rowid = 'id',
    tokenize = 'trigram'
);

-- Rows written before this migration.
INSERT INTO sample_facets (experiment_id, sample_id, run_id, test_prompt, question_key, paraphrase)
SELECT r.experiment_id, s.id, s.run_id, s.test_prompt, s.question_key, s.paraphrase
FROM samples s JOIN runs r ON r.id = s.run_id;

INSERT INTO judgement_facets (experiment_id, judge, sample_id, trait_present, score, run_id, test_prompt, question_key)
SELECT r.experiment_id, j.judge, j.sample_id, j.trait_present, j.score, s.run_id, s.test_prompt, s.question_key
FROM judgements j JOIN samples s ON s.id = j.sample_id JOIN runs r ON r.id = s.run_id;

INSERT INTO samples_fts (samples_fts) VALUES ('rebuild');

-- Samples are written once and never change; the update triggers are there so that a
-- later change cannot silently leave the copies stale.
CREATE TRIGGER samples_search_insert AFTER INSERT ON samples BEGIN
    INSERT INTO sample_facets (experiment_id, sample_id, run_id, test_prompt, question_key, paraphrase)
    SELECT r.experiment_id, new.id, new.run_id, new.test_prompt, new.question_key, new.paraphrase
    FROM runs r WHERE r.id = new.run_id;
    INSERT INTO samples_fts (rowid, completion, question) VALUES (new.id, new.completion, new.question);
END;

CREATE TRIGGER samples_search_delete AFTER DELETE ON samples BEGIN
    DELETE FROM sample_facets
    WHERE experiment_id = (SELECT experiment_id FROM runs WHERE id = old.run_id) AND sample_id = old.id;
    INSERT INTO samples_fts (samples_fts, rowid, completion, question)
    VALUES ('delete', old.id, old.completion, old.question);
END;

CREATE TRIGGER samples_search_update
AFTER UPDATE OF id, run_id, test_prompt, question_key, paraphrase, completion, question ON samples BEGIN
    DELETE FROM sample_facets
    WHERE experiment_id = (SELECT experiment_id FROM runs WHERE id = old.run_id) AND sample_id = old.id;
    INSERT INTO sample_facets (experiment_id, sample_id, run_id, test_prompt, question_key, paraphrase)
    SELECT r.experiment_id, new.id, new.run_id, new.test_prompt, new.question_key, new.paraphrase
    FROM runs r WHERE r.id = new.run_id;
    UPDATE judgement_facets
    SET experiment_id = (SELECT experiment_id FROM runs WHERE id = new.run_id),
        sample_id = new.id, run_id = new.run_id, test_prompt = new.test_prompt, question_key = new.question_key
    WHERE experiment_id = (SELECT experiment_id FROM runs WHERE id = old.run_id) AND sample_id = old.id;
    INSERT INTO samples_fts (samples_fts, rowid, completion, question)
    VALUES ('delete', old.id, old.completion, old.question);
    INSERT INTO samples_fts (rowid, completion, question) VALUES (new.id, new.completion, new.question);
END;

-- A judgement's sample exists when it is written and deleted (foreign keys are on), so
-- its experiment and filter columns can always be looked up.
CREATE TRIGGER judgements_search_insert AFTER INSERT ON judgements BEGIN
    INSERT INTO judgement_facets (experiment_id, judge, sample_id, trait_present, score, run_id, test_prompt, question_key)
    SELECT r.experiment_id, new.judge, new.sample_id, new.trait_present, new.score, s.run_id, s.test_prompt, s.question_key
    FROM samples s JOIN runs r ON r.id = s.run_id WHERE s.id = new.sample_id;
END;

CREATE TRIGGER judgements_search_delete AFTER DELETE ON judgements BEGIN
    DELETE FROM judgement_facets
    WHERE experiment_id = (SELECT r.experiment_id FROM samples s JOIN runs r ON r.id = s.run_id WHERE s.id = old.sample_id)
      AND judge = old.judge AND sample_id = old.sample_id;
END;

CREATE TRIGGER judgements_search_update
AFTER UPDATE OF sample_id, judge, trait_present, score ON judgements BEGIN
    DELETE FROM judgement_facets
    WHERE experiment_id = (SELECT r.experiment_id FROM samples s JOIN runs r ON r.id = s.run_id WHERE s.id = old.sample_id)
      AND judge = old.judge AND sample_id = old.sample_id;
    INSERT INTO judgement_facets (experiment_id, judge, sample_id, trait_present, score, run_id, test_prompt, question_key)
    SELECT r.experiment_id, new.judge, new.sample_id, new.trait_present, new.score, s.run_id, s.test_prompt, s.question_key
    FROM samples s JOIN runs r ON r.id = s.run_id WHERE s.id = new.sample_id;
END;
