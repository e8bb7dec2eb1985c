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
//!
//! The statements are `store::jobs`; this module keeps the clock and what a heartbeat's
//! answer means.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::store::{self, jobs::JobRow};
use crate::Store;

/// Where a job stands: the wire crate's type, shared with the pages.
pub use wire::{JobStatus, RunPhase};

/// Seconds since the Unix epoch; leases are compared in this unit in SQL.
pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// A job a worker now holds.
pub use crate::store::jobs::Claimed;

/// Adds the job for a run (inside the transaction that creates the run).
pub async fn enqueue(conn: &mut sqlx::SqliteConnection, run_id: i64) -> Result<i64, sqlx::Error> {
    store::jobs::enqueue(conn, run_id).await
}

/// Claims the oldest claimable job for `worker`, or returns `None` when there is none.
pub async fn claim(store: &Store, worker: &str, lease: Duration) -> Result<Option<Claimed>, sqlx::Error> {
    let now = now();
    store::jobs::claim(store, worker, now, now + lease.as_secs_f64()).await
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
    Ok(match store::jobs::heartbeat(store, job_id, worker, now, now + lease.as_secs_f64()).await? {
        None => Beat::Lost,
        Some(false) => Beat::Held,
        Some(true) => Beat::CancelRequested,
    })
}

/// Records how a held job ended. Returns false (and changes nothing) when the worker no
/// longer holds it.
pub async fn finish(
    conn: &mut store::Connection,
    job_id: i64,
    worker: &str,
    status: JobStatus,
    error: Option<&str>,
) -> Result<bool, sqlx::Error> {
    store::jobs::finish(conn, job_id, worker, status, error).await
}

/// Cancels a run's job: at once when queued, at its worker's next heartbeat when running.
/// Returns how many jobs were affected.
pub async fn cancel_run(store: &Store, run_id: i64) -> Result<u64, sqlx::Error> {
    store::jobs::cancel_run(store, run_id).await
}

/// Cancels every job of an experiment, as [`cancel_run`] does one.
pub async fn cancel_experiment(store: &Store, experiment_id: i64) -> Result<u64, sqlx::Error> {
    store::jobs::cancel_experiment(store, experiment_id).await
}

/// Puts a failed, interrupted or cancelled run back in the queue with fresh attempts; it
/// resumes from what it had done (checkpoint, stored samples and judgements).
pub async fn retry_run(store: &Store, run_id: i64) -> Result<bool, sqlx::Error> {
    store::jobs::retry_run(store, run_id).await
}

/// How many of an experiment's jobs are queued or running.
pub async fn active_in_experiment(conn: &mut sqlx::SqliteConnection, experiment_id: i64) -> Result<i64, sqlx::Error> {
    store::jobs::active_in_experiment(conn, experiment_id).await
}

/// Puts an experiment's done runs back in the queue with fresh attempts (inside the
/// transaction that gave them more work, e.g. more test-time prompts): like a retry, the
/// run resumes from what it has stored, so only the new work is done. Returns how many.
pub async fn requeue_done(conn: &mut sqlx::SqliteConnection, experiment_id: i64) -> Result<u64, sqlx::Error> {
    store::jobs::requeue_done(conn, experiment_id).await
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
    let rows = store::jobs::list(store, limit).await?;
    let now = now();
    Ok(rows.into_iter().map(|r| job_view(r, now)).collect())
}

/// The jobs of one experiment, in run order.
pub async fn for_experiment(store: &Store, experiment_id: i64) -> Result<Vec<JobView>, sqlx::Error> {
    let rows = store::jobs::for_experiment(store, experiment_id).await?;
    let now = now();
    Ok(rows.into_iter().map(|r| job_view(r, now)).collect())
}
