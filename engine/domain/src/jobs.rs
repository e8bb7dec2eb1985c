//! The job queue: one row per run in `jobs`, claimed by lease rather than by an open
//! transaction, so a worker that dies (kill -9, power loss) only delays its job until the
//! lease runs out.
//!
//! - **Claim** is one `UPDATE ... RETURNING` on the oldest claimable job: queued, or
//!   running with an expired lease (its worker died), with attempts left.
//! - The worker renews its lease with [`heartbeat`]; the answer also carries a pending
//!   cancel request, and tells the worker when its lease was taken over.
//! - Every status change checks `locked_by`, so a worker that lost its lease cannot
//!   overwrite the state written by the one that took over.
//! - A job whose lease expired after its last attempt becomes `interrupted`; the user can
//!   retry it (attempts start again).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::Store;

/// Where a job stands: the wire crate's type, shared with the pages.
pub use wire::{JobStatus, RunPhase};

/// Seconds since the Unix epoch; leases are compared in this unit in SQL.
pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// A job a worker now holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub job_id: i64,
    pub run_id: i64,
    /// 1 on the first try; more when an earlier worker died holding it.
    pub attempt: i64,
}

/// Adds the job for a run (inside the transaction that creates the run).
pub async fn enqueue(conn: &mut sqlx::SqliteConnection, run_id: i64) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as("INSERT INTO jobs (run_id, status) VALUES (?, 'queued') RETURNING id")
        .bind(run_id)
        .fetch_one(conn)
        .await?;
    Ok(id)
}

/// Claims the oldest claimable job for `worker`, or returns `None` when there is none.
pub async fn claim(store: &Store, worker: &str, lease: Duration) -> Result<Option<Claimed>, sqlx::Error> {
    let now = now();
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
    .bind(now + lease.as_secs_f64())
    .bind(now)
    .fetch_optional(store.pool())
    .await?;
    Ok(row.map(|(job_id, run_id, attempt)| Claimed { job_id, run_id, attempt }))
}

/// What a heartbeat learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// The lease is renewed; carry on.
    Held,
    /// The lease is renewed and the user asked to cancel.
    CancelRequested,
    /// Another worker holds the job now (this one was presumed dead): stop, write nothing.
    Lost,
}

pub async fn heartbeat(store: &Store, job_id: i64, worker: &str, lease: Duration) -> Result<Beat, sqlx::Error> {
    let now = now();
    let row: Option<(i64,)> = sqlx::query_as(
        "UPDATE jobs SET lease_until = ?, heartbeat_at = ?
         WHERE id = ? AND locked_by = ? AND status = 'running' RETURNING cancel_requested",
    )
    .bind(now + lease.as_secs_f64())
    .bind(now)
    .bind(job_id)
    .bind(worker)
    .fetch_optional(store.pool())
    .await?;
    Ok(match row {
        None => Beat::Lost,
        Some((0,)) => Beat::Held,
        Some(_) => Beat::CancelRequested,
    })
}

/// Records how a held job ended. Returns false (and changes nothing) when the worker no
/// longer holds it.
pub async fn finish(
    conn: &mut sqlx::SqliteConnection,
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

/// Cancels the jobs of the given runs: queued ones at once, running ones at their
/// worker's next heartbeat. Returns how many jobs were affected.
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

/// Puts a failed, interrupted or cancelled run back in the queue with fresh attempts; it
/// resumes from what it had done (checkpoint, stored samples and judgements).
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
pub async fn active_in_experiment(conn: &mut sqlx::SqliteConnection, experiment_id: i64) -> Result<i64, sqlx::Error> {
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
/// transaction that gave them more work, e.g. more test-time prompts): like a retry, the
/// run resumes from what it has stored, so only the new work is done. Returns how many.
pub async fn requeue_done(conn: &mut sqlx::SqliteConnection, experiment_id: i64) -> Result<u64, sqlx::Error> {
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

/// One line of the queue page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub job_id: i64,
    pub run_id: i64,
    pub experiment_id: i64,
    pub experiment: String,
    pub condition: String,
    pub seed: i64,
    pub status: JobStatus,
    pub phase: RunPhase,
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
    /// Seconds since the worker last reported, for running jobs.
    pub heartbeat_age_s: Option<f64>,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    job_id: i64,
    run_id: i64,
    experiment_id: i64,
    experiment: String,
    condition: String,
    seed: i64,
    status: String,
    phase: String,
    step: i64,
    total_steps: i64,
    done_units: i64,
    total_units: i64,
    tokens_per_sec: Option<f64>,
    eta_s: Option<f64>,
    attempts: i64,
    max_attempts: i64,
    cancel_requested: bool,
    error: Option<String>,
    created_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    heartbeat_at: Option<f64>,
}

const JOB_SELECT: &str = "SELECT j.id AS job_id, r.id AS run_id, e.id AS experiment_id, e.name AS experiment,
        r.condition, r.seed, j.status, r.phase, r.step, r.total_steps, r.done_units, r.total_units, r.tokens_per_sec,
        r.eta_s, j.attempts, j.max_attempts, j.cancel_requested, j.error, j.created_at, j.started_at, j.finished_at,
        j.heartbeat_at
 FROM jobs j JOIN runs r ON r.id = j.run_id JOIN experiments e ON e.id = r.experiment_id";

fn job_view(r: JobRow, now: f64) -> JobView {
    let status = JobStatus::parse(&r.status);
    JobView {
        job_id: r.job_id,
        run_id: r.run_id,
        experiment_id: r.experiment_id,
        experiment: r.experiment,
        condition: r.condition,
        seed: r.seed,
        status,
        // The column's default is 'train', and only the runner writes it (from a RunPhase).
        phase: RunPhase::parse(&r.phase).unwrap_or(RunPhase::Train),
        step: r.step,
        total_steps: r.total_steps,
        done_units: r.done_units,
        total_units: r.total_units,
        tokens_per_sec: r.tokens_per_sec,
        eta_s: r.eta_s,
        attempts: r.attempts,
        max_attempts: r.max_attempts,
        cancel_requested: r.cancel_requested,
        error: r.error,
        created_at: r.created_at,
        started_at: r.started_at,
        finished_at: r.finished_at,
        heartbeat_age_s: r.heartbeat_at.filter(|_| status == JobStatus::Running).map(|t| (now - t).max(0.0)),
    }
}

impl JobView {
    /// How far the run is, 0 to 1, for progress bars: training is most of a run's time,
    /// sampling and judging share the rest.
    pub fn progress(&self) -> f64 {
        if self.status.is_final() {
            return 1.0;
        }
        let f = |a: i64, b: i64| if b > 0 { a as f64 / b as f64 } else { 0.0 };
        match self.phase {
            RunPhase::Train => 0.7 * f(self.step, self.total_steps),
            RunPhase::Sample => 0.7 + 0.25 * f(self.done_units, self.total_units),
            RunPhase::Judge => 0.95 + 0.05 * f(self.done_units, self.total_units),
        }
    }
}

/// Every job, newest first, with its run's progress.
pub async fn list(store: &Store, limit: i64) -> Result<Vec<JobView>, sqlx::Error> {
    let rows: Vec<JobRow> =
        sqlx::query_as(&format!("{JOB_SELECT} ORDER BY j.id DESC LIMIT ?")).bind(limit).fetch_all(store.pool()).await?;
    let now = now();
    Ok(rows.into_iter().map(|r| job_view(r, now)).collect())
}

/// The jobs of one experiment, in run order.
pub async fn for_experiment(store: &Store, experiment_id: i64) -> Result<Vec<JobView>, sqlx::Error> {
    let rows: Vec<JobRow> = sqlx::query_as(&format!("{JOB_SELECT} WHERE e.id = ? ORDER BY r.id"))
        .bind(experiment_id)
        .fetch_all(store.pool())
        .await?;
    let now = now();
    Ok(rows.into_iter().map(|r| job_view(r, now)).collect())
}
