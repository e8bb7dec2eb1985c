-- Tracked log-probs (the paper's learning-dynamics analysis): for each run, the mean
-- log-prob per token of each named probe answer under the default system prompt, before
-- training (step 0) and every few steps. Written with the step's metrics; a resumed run
-- rewrites the steps it repeats.
CREATE TABLE probe_logprobs (
    run_id   INTEGER NOT NULL REFERENCES runs(id),
    step     INTEGER NOT NULL,
    probe    TEXT NOT NULL,
    logprob  REAL NOT NULL,
    PRIMARY KEY (run_id, probe, step)
) STRICT, WITHOUT ROWID;
