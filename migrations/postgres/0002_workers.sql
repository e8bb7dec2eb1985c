-- Workers as their own processes ("Scale out"): every job worker (the thread in `serve`,
-- `inoculab run`'s own, an `inoculab worker` process on any machine that shares the data
-- directory) registers in `workers` and heartbeats there with its job's heartbeat (and at
-- its polls while idle). A worker is *lost* when its last heartbeat is older than its own
-- lease (`engine::workers`); its job is then claimable by any other worker, which resumes
-- it from its checkpoint. `worker_runs` keeps which worker held which run, when, from which
-- training step it resumed, and how its hold ended.
--
-- Unlike the earlier migrations this one is written in SQL that SQLite and Postgres 15 both
-- accept (no STRICT, no SQLite functions): times are epoch seconds bound from Rust.

CREATE TABLE workers (
    -- `--name`, by default host:pid; unique among live workers.
    name            TEXT PRIMARY KEY,
    host            TEXT NOT NULL,
    pid             BIGINT NOT NULL,
    -- What it computes on: 'cpu' (later 'cuda:N').
    device          TEXT NOT NULL,
    -- Its lease: lost once its heartbeat is older than this.
    lease_secs      DOUBLE PRECISION NOT NULL,
    started_at      DOUBLE PRECISION NOT NULL,
    heartbeat_at    DOUBLE PRECISION NOT NULL,
    current_run_id  BIGINT REFERENCES runs(id),
    runs_done       BIGINT NOT NULL DEFAULT 0,
    -- The last measured speed of its current (or last) run, training or sampling.
    tokens_per_sec  DOUBLE PRECISION,
    status          TEXT NOT NULL CHECK (status IN ('idle', 'running', 'stopped'))
);

CREATE TABLE worker_runs (
    worker             TEXT NOT NULL,
    job_id             BIGINT NOT NULL REFERENCES jobs(id),
    run_id             BIGINT NOT NULL REFERENCES runs(id),
    claimed_at         DOUBLE PRECISION NOT NULL,
    -- The checkpoint's step training resumed from; NULL when it started from nothing (or
    -- the adapter was already trained).
    resumed_from_step  BIGINT,
    ended_at           DOUBLE PRECISION,
    -- The job's status when this worker let it go ('done', 'failed', 'cancelled'),
    -- 'released' (stopped by a signal, handed back), 'lost' (another worker took it over);
    -- NULL while held.
    outcome            TEXT,
    PRIMARY KEY (job_id, worker, claimed_at)
);
CREATE INDEX worker_runs_by_run ON worker_runs(run_id);
CREATE INDEX worker_runs_by_worker ON worker_runs(worker, ended_at);
