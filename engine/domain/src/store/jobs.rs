//! The `jobs` table: the lease queue's claims, heartbeats and status changes, and the
//! queue page's rows (joined with `runs` and `experiments`). `crate::jobs` calls it and keeps
//! the queue's rules (the clock, what a heartbeat means, how a row is shown); `enqueue`,
//! `finish`, `active_in_experiment` and `requeue_done` take a connection because callers
//! run them inside their own transactions.

use sqlx::SqliteConnection;
use wire::JobStatus;

use super::Store;

/// A job a worker now holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub job_id: i64,
    pub run_id: i64,
    /// 1 on the first try; more when an earlier worker died holding it.
    pub attempt: i64,
}

/// Adds the job for a run (inside the transaction that creates the run).
pub async fn enqueue(conn: &mut SqliteConnection, run_id: i64) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as("INSERT INTO jobs (run_id, status) VALUES (?, 'queued') RETURNING id")
        .bind(run_id)
        .fetch_one(conn)
        .await?;
    Ok(id)
}

/// Claims the oldest claimable job for `worker` at time `now` (seconds since the epoch),
/// leasing it until `lease_until`; `None` when there is none.
pub async fn claim(store: &Store, worker: &str, now: f64, lease_until: f64) -> Result<Option<Claimed>, sqlx::Error> {
    // Jobs whose worker died on their last attempt, or died after a cancel request, are
    // settled first so they are not picked below.
    sqlx::query(
        "UPDATE jobs SET status = CASE WHEN cancel_requested = 1 THEN 'cancelled' ELSE 'interrupted' END,
                error = CASE WHEN cancel_requested = 1 THEN error
                        ELSE 'the worker stopped (crash or shutdown) ' || attempts || ' time(s); retry to resume' END,
                locked_by = NULL, finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE status = 'running' AND lease_until < ? AND (attempts >= max_attempts OR cancel_requested = 1)",
    )
    .bind(now)
    .execute(store.pool())
    .await?;
    let row: Option<(i64, i64, i64)> = sqlx::query_as(
        "UPDATE jobs SET status = 'running', locked_by = ?1, lease_until = ?2, heartbeat_at = ?3,
                attempts = attempts + 1, error = NULL,
                started_at = COALESCE(started_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
         WHERE id = (SELECT id FROM jobs
                     WHERE cancel_requested = 0 AND attempts < max_attempts
                       AND (status = 'queued' OR (status = 'running' AND lease_until < ?3))
                     ORDER BY id LIMIT 1)
         RETURNING id, run_id, attempts",
    )
    .bind(worker)
    .bind(lease_until)
    .bind(now)
    .fetch_optional(store.pool())
    .await?;
    Ok(row.map(|(job_id, run_id, attempt)| Claimed { job_id, run_id, attempt }))
}

/// Renews `worker`'s lease on a running job. `None`: the worker no longer holds it;
/// otherwise whether a cancel was requested.
pub async fn heartbeat(
    store: &Store,
    job_id: i64,
    worker: &str,
    now: f64,
    lease_until: f64,
) -> Result<Option<bool>, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as(
        "UPDATE jobs SET lease_until = ?, heartbeat_at = ?
         WHERE id = ? AND locked_by = ? AND status = 'running' RETURNING cancel_requested",
    )
    .bind(lease_until)
    .bind(now)
    .bind(job_id)
    .bind(worker)
    .fetch_optional(store.pool())
    .await?;
    Ok(row.map(|(cancel_requested,)| cancel_requested != 0))
}

/// Records how a held job ended. Returns false (and changes nothing) when the worker no
/// longer holds it.
pub async fn finish(
    conn: &mut SqliteConnection,
    job_id: i64,
    worker: &str,
    status: JobStatus,
    error: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE jobs SET status = ?, error = ?, locked_by = NULL, lease_until = NULL,
                finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE id = ? AND locked_by = ? AND status = 'running'",
    )
    .bind(status.as_str())
    .bind(error)
    .bind(job_id)
    .bind(worker)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Cancels the jobs that `filter` (SQL with one `?`, bound to `id`) selects, in one
/// transaction: queued ones at once, running ones at their worker's next heartbeat.
/// Returns how many jobs were affected.
async fn cancel_where(store: &Store, filter: &str, id: i64) -> Result<u64, sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    let a = sqlx::query(&format!(
        "UPDATE jobs SET status = 'cancelled', finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE status = 'queued' AND {filter}"
    ))
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let b = sqlx::query(&format!("UPDATE jobs SET cancel_requested = 1 WHERE status = 'running' AND {filter}"))
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(a + b)
}

pub async fn cancel_run(store: &Store, run_id: i64) -> Result<u64, sqlx::Error> {
    cancel_where(store, "run_id = ?", run_id).await
}

pub async fn cancel_experiment(store: &Store, experiment_id: i64) -> Result<u64, sqlx::Error> {
    cancel_where(store, "run_id IN (SELECT id FROM runs WHERE experiment_id = ?)", experiment_id).await
}

/// Puts a failed, interrupted or cancelled run back in the queue with fresh attempts.
pub async fn retry_run(store: &Store, run_id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE jobs SET status = 'queued', attempts = 0, cancel_requested = 0, error = NULL, locked_by = NULL,
                lease_until = NULL, finished_at = NULL
         WHERE run_id = ? AND status IN ('failed', 'interrupted', 'cancelled')",
    )
    .bind(run_id)
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How many of an experiment's jobs are queued or running.
pub async fn active_in_experiment(conn: &mut SqliteConnection, experiment_id: i64) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')
           AND run_id IN (SELECT id FROM runs WHERE experiment_id = ?)",
    )
    .bind(experiment_id)
    .fetch_one(conn)
    .await?;
    Ok(n)
}

/// Puts an experiment's done runs back in the queue with fresh attempts (inside the
/// caller's transaction). Returns how many.
pub async fn requeue_done(conn: &mut SqliteConnection, experiment_id: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE jobs SET status = 'queued', attempts = 0, cancel_requested = 0, error = NULL, locked_by = NULL,
                lease_until = NULL, finished_at = NULL
         WHERE status = 'done' AND run_id IN (SELECT id FROM runs WHERE experiment_id = ?)",
    )
    .bind(experiment_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// A job with its run's progress, as stored; `crate::jobs` turns it into the queue page's
/// `JobView` (parsed status and phase, heartbeat age).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub job_id: i64,
    pub run_id: i64,
    pub experiment_id: i64,
    pub experiment: String,
    pub condition: String,
    pub seed: i64,
    pub status: String,
    pub phase: String,
    pub step: i64,
    pub total_steps: i64,
    pub done_units: i64,
    pub total_units: i64,
    pub tokens_per_sec: Option<f64>,
    pub eta_s: Option<f64>,
    pub attempts: i64,
    pub max_attempts: i64,
    pub cancel_requested: bool,
    pub error: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub heartbeat_at: Option<f64>,
    pub locked_by: Option<String>,
    pub lease_until: Option<f64>,
}

const JOB_SELECT: &str = "SELECT j.id AS job_id, r.id AS run_id, e.id AS experiment_id, e.name AS experiment,
        r.condition, r.seed, j.status, r.phase, r.step, r.total_steps, r.done_units, r.total_units, r.tokens_per_sec,
        r.eta_s, j.attempts, j.max_attempts, j.cancel_requested, j.error, j.created_at, j.started_at, j.finished_at,
        j.heartbeat_at, j.locked_by, j.lease_until
 FROM jobs j JOIN runs r ON r.id = j.run_id JOIN experiments e ON e.id = r.experiment_id";

/// Every job, newest first.
pub async fn list(store: &Store, limit: i64) -> Result<Vec<JobRow>, sqlx::Error> {
    sqlx::query_as(&format!("{JOB_SELECT} ORDER BY j.id DESC LIMIT ?")).bind(limit).fetch_all(store.pool()).await
}

/// The jobs of one experiment, in run order.
pub async fn for_experiment(store: &Store, experiment_id: i64) -> Result<Vec<JobRow>, sqlx::Error> {
    sqlx::query_as(&format!("{JOB_SELECT} WHERE e.id = ? ORDER BY r.id"))
        .bind(experiment_id)
        .fetch_all(store.pool())
        .await
}
