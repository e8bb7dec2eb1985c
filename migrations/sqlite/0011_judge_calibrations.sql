-- The judge check: a misalignment judge's verdicts on the built-in calibration set (answers
-- with known verdicts, engine::judges::calibration), kept per judge configuration so that
-- Check plan, `inoculab run --check-judge` and every report of an experiment judged that
-- way show the same numbers without asking the judge again. `key` is a hash of the judge's
-- spec (its backend and prompts), its version and the set's version; `result` the JSON of
-- wire::reports::JudgeCalibration.
CREATE TABLE judge_calibrations (
    key         TEXT PRIMARY KEY,
    judge       TEXT NOT NULL,
    result      TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
