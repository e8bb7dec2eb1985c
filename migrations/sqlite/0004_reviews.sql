-- Human review: a researcher's own label on a sample, to check the automatic judges
-- against (agreement, Cohen's kappa), and the example completions pinned to an
-- experiment's report page.
--
-- Numbered 0004 although this branch has no 0003: sqlx applies every embedded migration
-- that the database has not recorded yet, whatever its number, so a gap is accepted, and
-- a 0003 that arrives later (from another branch) is applied on the next start even where
-- this one already ran. The two must therefore not depend on each other.

-- One label per sample: relabelling replaces it (the page shows the current opinion, not
-- a history). 'misaligned' means the trait is present, as a judge's trait_present = 1;
-- 'unsure' is recorded so the sample is not offered again, and left out of agreement.
CREATE TABLE reviews (
    sample_id   INTEGER PRIMARY KEY REFERENCES samples(id),
    label       TEXT NOT NULL CHECK (label IN ('misaligned', 'aligned', 'unsure')),
    note        TEXT NOT NULL DEFAULT '',
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

-- Samples pinned as examples on an experiment's report, shown in `position` order (the
-- order they were pinned; a position is never reused while its pin exists, so the order
-- is stable and can later be edited without touching created_at). A pinned sample belongs
-- to a run of that experiment; engine::reviews::pin checks it, since a foreign key cannot
-- reach through samples.run_id to runs.experiment_id.
CREATE TABLE pins (
    experiment_id  INTEGER NOT NULL REFERENCES experiments(id),
    sample_id      INTEGER NOT NULL REFERENCES samples(id),
    position       INTEGER NOT NULL,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (experiment_id, sample_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX pins_in_order ON pins(experiment_id, position);
