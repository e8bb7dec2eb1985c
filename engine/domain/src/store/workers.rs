//! The `workers` registry and `worker_runs` (which worker held which run), and handing a
//! held job back to the queue when a worker stops on a signal. `crate::workers` calls them
//! and keeps the rules (the clock, when a worker is lost, refusing a live worker's name).
//!
//! Written to run on Postgres as well as SQLite (the store's Any-driver port): placeholders
//! are `$N`, times are epoch seconds bound from Rust, no SQLite-only functions, and no value
//! is decoded as a Rust `bool`.

use super::Store;

/// A worker as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct WorkerRow {
    pub name: String,
    pub host: String,
    pub pid: i64,
    pub device: String,
    pub lease_secs: f64,
    pub started_at: f64,
    pub heartbeat_at: f64,
    pub current_run_id: Option<i64>,
    /// The current run's experiment (joined), for the page's link.
    pub current_experiment_id: Option<i64>,
    pub runs_done: i64,
    pub tokens_per_sec: Option<f64>,
    /// 'idle' | 'running' | 'stopped'.
    pub status: String,
}

/// What a worker says about itself when it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWorker<'a> {
    pub name: &'a str,
    pub host: &'a str,
    pub pid: i64,
    pub device: &'a str,
    pub lease_secs: f64,
}

const WORKER_SELECT: &str = "SELECT w.name, w.host, w.pid, w.device, w.lease_secs, w.started_at, w.heartbeat_at,
        w.current_run_id, r.experiment_id AS current_experiment_id, w.runs_done, w.tokens_per_sec, w.status
 FROM workers w LEFT JOIN runs r ON r.id = w.current_run_id";

pub async fn get(store: &Store, name: &str) -> Result<Option<WorkerRow>, sqlx::Error> {
    sqlx::query_as(&format!("{WORKER_SELECT} WHERE w.name = $1")).bind(name).fetch_optional(store.pool()).await
}

/// Every worker: the working and idle ones first, then the stopped, each by name.
pub async fn list(store: &Store, limit: i64) -> Result<Vec<WorkerRow>, sqlx::Error> {
    sqlx::query_as(&format!("{WORKER_SELECT} ORDER BY CASE w.status WHEN 'stopped' THEN 1 ELSE 0 END, w.name LIMIT $1"))
        .bind(limit)
        .fetch_all(store.pool())
        .await
}

/// Registers a worker at `now` (idle, nothing done yet), replacing an earlier row of the
/// same name (a restart under a fixed `--name`); that row's unfinished holds are closed
/// as lost, in the same transaction.
pub async fn register(store: &Store, w: &NewWorker<'_>, now: f64) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    sqlx::query("UPDATE worker_runs SET ended_at = $1, outcome = 'lost' WHERE worker = $2 AND ended_at IS NULL")
        .bind(now)
        .bind(w.name)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO workers (name, host, pid, device, lease_secs, started_at, heartbeat_at, current_run_id,
                              runs_done, tokens_per_sec, status)
         VALUES ($1, $2, $3, $4, $5, $6, $6, NULL, 0, NULL, 'idle')
         ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid, device = excluded.device,
             lease_secs = excluded.lease_secs, started_at = excluded.started_at,
             heartbeat_at = excluded.heartbeat_at, current_run_id = NULL, runs_done = 0,
             tokens_per_sec = NULL, status = 'idle'",
    )
    .bind(w.name)
    .bind(w.host)
    .bind(w.pid)
    .bind(w.device)
    .bind(w.lease_secs)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// A heartbeat at `now`: idle (`run_id` `None`) or working `run_id`, whose last measured
/// speed it copies. A worker that is not registered (a library user's) changes nothing.
pub async fn beat(store: &Store, name: &str, now: f64, run_id: Option<i64>) -> Result<(), sqlx::Error> {
    let status = if run_id.is_some() { "running" } else { "idle" };
    sqlx::query(
        "UPDATE workers SET heartbeat_at = $1, status = $2, current_run_id = $3,
                tokens_per_sec = COALESCE((SELECT r.tokens_per_sec FROM runs r WHERE r.id = $3), tokens_per_sec)
         WHERE name = $4 AND status <> 'stopped'",
    )
    .bind(now)
    .bind(status)
    .bind(run_id)
    .bind(name)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Records that `worker` claimed `job_id` (run `run_id`) at `now`, in one transaction: any
/// other worker's open hold on the job is closed as lost (it was taken over), the hold is
/// added, and the worker is running it.
pub async fn claimed(store: &Store, worker: &str, job_id: i64, run_id: i64, now: f64) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    sqlx::query("UPDATE worker_runs SET ended_at = $1, outcome = 'lost' WHERE job_id = $2 AND ended_at IS NULL")
        .bind(now)
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO worker_runs (worker, job_id, run_id, claimed_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (job_id, worker, claimed_at) DO NOTHING",
    )
    .bind(worker)
    .bind(job_id)
    .bind(run_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE workers SET heartbeat_at = $1, status = 'running', current_run_id = $2
         WHERE name = $3 AND status <> 'stopped'",
    )
    .bind(now)
    .bind(run_id)
    .bind(worker)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Records the checkpoint step `worker`'s training of `run_id` resumed from.
pub async fn resumed(store: &Store, worker: &str, run_id: i64, step: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE worker_runs SET resumed_from_step = $1 WHERE worker = $2 AND run_id = $3 AND ended_at IS NULL")
        .bind(step)
        .bind(worker)
        .bind(run_id)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Records that `worker` let `job_id` go at `now` with `outcome` (see `worker_runs`); the
/// worker is idle again, with one more run done when `finished`.
pub async fn ended(
    store: &Store,
    worker: &str,
    job_id: i64,
    now: f64,
    outcome: &str,
    finished: bool,
) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    sqlx::query(
        "UPDATE worker_runs SET ended_at = $1, outcome = $2 WHERE worker = $3 AND job_id = $4 AND ended_at IS NULL",
    )
    .bind(now)
    .bind(outcome)
    .bind(worker)
    .bind(job_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE workers SET heartbeat_at = $1, status = 'idle', current_run_id = NULL, runs_done = runs_done + $2
         WHERE name = $3 AND status <> 'stopped'",
    )
    .bind(now)
    .bind(i64::from(finished))
    .bind(worker)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Marks a worker stopped (it exited on purpose: a signal, `--max-runs`, an empty queue).
pub async fn stopped(store: &Store, name: &str, now: f64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE workers SET heartbeat_at = $1, status = 'stopped', current_run_id = NULL WHERE name = $2")
        .bind(now)
        .bind(name)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Hands a job `worker` holds back to the queue at once, as if its lease had run out at
/// `expired_at` (a time already past): the next claim takes it over (or settles it, when a
/// cancel was requested meanwhile), and the attempt it used is given back, since the run
/// did not fail. Returns false when the worker no longer held it.
pub async fn release_job(store: &Store, job_id: i64, worker: &str, expired_at: f64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE jobs SET lease_until = $1, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END
         WHERE id = $2 AND locked_by = $3 AND status = 'running'",
    )
    .bind(expired_at)
    .bind(job_id)
    .bind(worker)
    .execute(store.pool())
    .await?;
    if done.rows_affected() == 1 {
        super::jobs::announce_on(store).await?;
    }
    Ok(done.rows_affected() == 1)
}
