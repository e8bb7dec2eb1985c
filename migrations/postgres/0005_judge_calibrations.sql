-- The judge check's results, per judge configuration: see the SQLite migration
-- 0011_judge_calibrations.sql for what each column holds.
CREATE TABLE judge_calibrations (
    key         TEXT PRIMARY KEY,
    judge       TEXT NOT NULL,
    result      TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT inoculab_now()
);
