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

use crate::store::{self, jobs::JobRow};
use crate::Store;

/// Where a job stands: the wire crate's type, shared with the pages.
pub use wire::{JobStatus, RunPhase};

pub use crate::store::jobs::JobSignal;

/// Listens for jobs that become claimable, so an idle worker wakes at once instead of at
/// its next poll: Postgres' LISTEN/NOTIFY (a connection of its own); `None` on SQLite,
/// where workers only poll.
pub async fn listen(store: &Store) -> Result<Option<JobSignal>, sqlx::Error> {
    store::jobs::listen(store).await
}

/// Seconds since the Unix epoch; leases are compared in this unit in SQL.
pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// A job a worker now holds.
pub use crate::store::jobs::Claimed;

/// Adds the job for a run (inside the transaction that creates the run).
pub async fn enqueue(conn: &mut store::Connection, run_id: i64) -> Result<i64, sqlx::Error> {
    store::jobs::enqueue(conn, run_id).await
}

/// Claims the oldest claimable job for `worker`, or returns `None` when there is none.
pub async fn claim(store: &Store, worker: &str, lease: Duration) -> Result<Option<Claimed>, sqlx::Error> {
    let now = now();
    let (claimed, ended) = store::jobs::claim(store, worker, now, now + lease.as_secs_f64()).await?;
    drop_checkpoints(store, &ended).await;
    Ok(claimed)
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
    let (n, ended) = store::jobs::cancel_run(store, run_id).await?;
    drop_checkpoints(store, &ended).await;
    Ok(n)
}

/// Cancels every job of an experiment, as [`cancel_run`] does one.
pub async fn cancel_experiment(store: &Store, experiment_id: i64) -> Result<u64, sqlx::Error> {
    let (n, ended) = store::jobs::cancel_experiment(store, experiment_id).await?;
    drop_checkpoints(store, &ended).await;
    Ok(n)
}

/// Deletes the stored training checkpoints of runs that ended (cancelled, failed, or
/// interrupted by a worker dying on each attempt; a done run's adapter supersedes them):
/// they exist only to resume training while the run is alive, and a retry of an ended run
/// trains from the start (keeping the adapter, samples and verdicts it stored). A failure
/// here only warns: the run's state is already recorded, and what is left is disk space.
pub(crate) async fn drop_checkpoints(store: &Store, runs: &[i64]) {
    for &run_id in runs {
        let key = crate::artifacts::run_key(run_id, "checkpoints");
        if let Err(e) = store.artifacts().delete_folder(&key).await {
            tracing::warn!(run_id, "cannot delete the ended run's checkpoints: {e}");
        }
    }
}

/// Puts a failed, interrupted or cancelled run back in the queue with fresh attempts; it
/// resumes from what it had stored (its adapter if training had finished, its samples and
/// judgements), training from the start if it had not.
pub async fn retry_run(store: &Store, run_id: i64) -> Result<bool, sqlx::Error> {
    store::jobs::retry_run(store, run_id).await
}

/// How many of an experiment's jobs are queued or running.
pub async fn active_in_experiment(conn: &mut store::Connection, experiment_id: i64) -> Result<i64, sqlx::Error> {
    store::jobs::active_in_experiment(conn, experiment_id).await
}

/// Puts an experiment's done runs back in the queue with fresh attempts (inside the
/// transaction that gave them more work, e.g. more test-time prompts): like a retry, the
/// run resumes from what it has stored, so only the new work is done. Returns how many.
pub async fn requeue_done(conn: &mut store::Connection, experiment_id: i64) -> Result<u64, sqlx::Error> {
    store::jobs::requeue_done(conn, experiment_id).await
}

/// One line of the queue page: the wire crate's type, shared with the pages.
pub use wire::runs::JobView;

fn job_view(r: JobRow, now: f64) -> JobView {
    let status = JobStatus::parse(&r.status);
    let mut v = JobView {
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
        cancel_requested: r.cancel_requested != 0,
        error: r.error,
        created_at: r.created_at,
        started_at: r.started_at,
        finished_at: r.finished_at,
        heartbeat_age_s: r.heartbeat_at.filter(|_| status == JobStatus::Running).map(|t| (now - t).max(0.0)),
        worker: r.locked_by.filter(|_| status == JobStatus::Running),
        // The worker renews this lease with its registry heartbeat, so an expired one is
        // a lost worker (`crate::workers`): the run is claimable by any other.
        waiting_for_takeover: status == JobStatus::Running && r.lease_until.is_some_and(|t| t < now),
        progress: 0.0,
        losses: vec![],
    };
    v.progress = v.overall_progress();
    v
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
