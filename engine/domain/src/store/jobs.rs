//! The `jobs` table: the lease queue's claims, heartbeats and status changes, and the
//! queue page's rows (joined with `runs` and `experiments`). `crate::jobs` calls it and keeps
//! the queue's rules (the clock, what a heartbeat means, how a row is shown); `enqueue`,
//! `finish`, `active_in_experiment` and `requeue_done` take a connection because callers
//! run them inside their own transactions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use wire::JobStatus;

use super::{now_text, Backend, Connection, Store};

/// A job a worker now holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub job_id: i64,
    pub run_id: i64,
    /// 1 on the first try; more when an earlier worker died holding it.
    pub attempt: i64,
}

/// The Postgres channel on which a job that became claimable is announced.
const CHANNEL: &str = "inoculab_jobs";

/// Announces that jobs became claimable, to the workers listening on Postgres ([`listen`]);
/// inside a transaction the notice goes out at its commit (and once, however many jobs it
/// made). SQLite has no such channel: its workers poll.
async fn announce(conn: &mut Connection) -> Result<(), sqlx::Error> {
    if Backend::of(conn) == Backend::Postgres {
        sqlx::query(&format!("NOTIFY {CHANNEL}")).execute(conn).await?;
    }
    Ok(())
}

/// [`announce`] outside a transaction.
pub(super) async fn announce_on(store: &Store) -> Result<(), sqlx::Error> {
    if store.backend() == Backend::Postgres {
        sqlx::query(&format!("NOTIFY {CHANNEL}")).execute(store.pool()).await?;
    }
    Ok(())
}

/// Wakes an idle worker when a job is announced: [`JobSignal::take`] says whether one was
/// since the last look. Dropping it stops listening.
pub struct JobSignal {
    woken: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl JobSignal {
    pub fn take(&self) -> bool {
        self.woken.swap(false, Ordering::Relaxed)
    }
}

impl Drop for JobSignal {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens for announced jobs on Postgres (one connection of its own, outside the pool);
/// `None` on SQLite. Must be called inside the tokio runtime, which runs the listener.
pub async fn listen(store: &Store) -> Result<Option<JobSignal>, sqlx::Error> {
    if store.backend() != Backend::Postgres {
        return Ok(None);
    }
    let mut listener = sqlx::postgres::PgListener::connect(store.url()).await?;
    listener.listen(CHANNEL).await?;
    let woken = Arc::new(AtomicBool::new(false));
    let flag = woken.clone();
    let task = tokio::spawn(async move {
        loop {
            if let Err(e) = listener.recv().await {
                // The listener reconnects at its next receive; meanwhile the worker's own
                // polls still find the work, so this only delays a wake-up.
                tracing::warn!("listening for new jobs: {e}");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            flag.store(true, Ordering::Relaxed);
        }
    });
    Ok(Some(JobSignal { woken, task }))
}

/// Adds the job for a run (inside the transaction that creates the run) and announces it.
pub async fn enqueue(conn: &mut Connection, run_id: i64) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as("INSERT INTO jobs (run_id, status) VALUES ($1, 'queued') RETURNING id")
        .bind(run_id)
        .fetch_one(&mut *conn)
        .await?;
    announce(conn).await?;
    Ok(id)
}

/// Claims the oldest claimable job for `worker` at time `now` (seconds since the epoch),
/// leasing it until `lease_until`; `None` when there is none. Also returns the runs it
/// found ended (their worker died on the last attempt, or after a cancel request), for the
/// caller to clean up after.
pub async fn claim(
    store: &Store,
    worker: &str,
    now: f64,
    lease_until: f64,
) -> Result<(Option<Claimed>, Vec<i64>), sqlx::Error> {
    let stamp = now_text();
    // Jobs whose worker died on their last attempt, or died after a cancel request, are
    // settled first so they are not picked below.
    let settled: Vec<(i64,)> = sqlx::query_as(
        "UPDATE jobs SET status = CASE WHEN cancel_requested = 1 THEN 'cancelled' ELSE 'interrupted' END,
                error = CASE WHEN cancel_requested = 1 THEN error
                        ELSE 'the worker stopped (crash or shutdown) on each of its ' || attempts || ' attempts; retry to run it again' END,
                locked_by = NULL, finished_at = $2
         WHERE status = 'running' AND lease_until < $1 AND (attempts >= max_attempts OR cancel_requested = 1)
         RETURNING run_id",
    )
    .bind(now)
    .bind(&stamp)
    .fetch_all(store.pool())
    .await?;
    let settled = settled.into_iter().map(|(r,)| r).collect();
    // Workers on other machines claim at the same moment. SQLite serialises writers, so the
    // subquery and the update see one state. Postgres does not: two claims could pick the
    // same row and both update it after the first commits (the update rechecks its row,
    // not the subquery), so there the subquery locks the row it picks and skips rows
    // another claim has locked.
    let lock = match store.backend() {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
    };
    let row: Option<(i64, i64, i64)> = sqlx::query_as(&format!(
        "UPDATE jobs SET status = 'running', locked_by = $1, lease_until = $2, heartbeat_at = $3,
                attempts = attempts + 1, error = NULL, started_at = COALESCE(started_at, $4)
         WHERE id = (SELECT id FROM jobs
                     WHERE cancel_requested = 0 AND attempts < max_attempts
                       AND (status = 'queued' OR (status = 'running' AND lease_until < $3))
                     ORDER BY id LIMIT 1{lock})
         RETURNING id, run_id, attempts"
    ))
    .bind(worker)
    .bind(lease_until)
    .bind(now)
    .bind(&stamp)
    .fetch_optional(store.pool())
    .await?;
    Ok((row.map(|(job_id, run_id, attempt)| Claimed { job_id, run_id, attempt }), settled))
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
        "UPDATE jobs SET lease_until = $1, heartbeat_at = $2
         WHERE id = $3 AND locked_by = $4 AND status = 'running' RETURNING cancel_requested",
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
    conn: &mut Connection,
    job_id: i64,
    worker: &str,
    status: JobStatus,
    error: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE jobs SET status = $1, error = $2, locked_by = NULL, lease_until = NULL, finished_at = $5
         WHERE id = $3 AND locked_by = $4 AND status = 'running'",
    )
    .bind(status.as_str())
    .bind(error)
    .bind(job_id)
    .bind(worker)
    .bind(now_text())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Cancels the jobs that `filter` (SQL with one `$1`, bound to `id`) selects, in one
/// transaction: queued ones at once, running ones at their worker's next heartbeat.
/// Returns how many jobs were affected and the runs of the queued ones (ended here, so
/// the caller cleans up after them; a running one's worker does that itself).
async fn cancel_where(store: &Store, filter: &str, id: i64) -> Result<(u64, Vec<i64>), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    let ended: Vec<(i64,)> = sqlx::query_as(&format!(
        "UPDATE jobs SET status = 'cancelled', finished_at = $2 WHERE status = 'queued' AND {filter} RETURNING run_id"
    ))
    .bind(id)
    .bind(now_text())
    .fetch_all(&mut *tx)
    .await?;
    let b = sqlx::query(&format!("UPDATE jobs SET cancel_requested = 1 WHERE status = 'running' AND {filter}"))
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok((ended.len() as u64 + b, ended.into_iter().map(|(r,)| r).collect()))
}

pub async fn cancel_run(store: &Store, run_id: i64) -> Result<(u64, Vec<i64>), sqlx::Error> {
    cancel_where(store, "run_id = $1", run_id).await
}

pub async fn cancel_experiment(store: &Store, experiment_id: i64) -> Result<(u64, Vec<i64>), sqlx::Error> {
    cancel_where(store, "run_id IN (SELECT id FROM runs WHERE experiment_id = $1)", experiment_id).await
}

/// Puts a failed, interrupted or cancelled run back in the queue with fresh attempts.
pub async fn retry_run(store: &Store, run_id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE jobs SET status = 'queued', attempts = 0, cancel_requested = 0, error = NULL, locked_by = NULL,
                lease_until = NULL, finished_at = NULL
         WHERE run_id = $1 AND status IN ('failed', 'interrupted', 'cancelled')",
    )
    .bind(run_id)
    .execute(store.pool())
    .await?;
    if done.rows_affected() == 1 {
        announce_on(store).await?;
    }
    Ok(done.rows_affected() == 1)
}

/// How many of an experiment's jobs are queued or running.
pub async fn active_in_experiment(conn: &mut Connection, experiment_id: i64) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')
           AND run_id IN (SELECT id FROM runs WHERE experiment_id = $1)",
    )
    .bind(experiment_id)
    .fetch_one(conn)
    .await?;
    Ok(n)
}

/// Puts an experiment's done runs back in the queue with fresh attempts (inside the
/// caller's transaction). Returns how many.
pub async fn requeue_done(conn: &mut Connection, experiment_id: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE jobs SET status = 'queued', attempts = 0, cancel_requested = 0, error = NULL, locked_by = NULL,
                lease_until = NULL, finished_at = NULL
         WHERE status = 'done' AND run_id IN (SELECT id FROM runs WHERE experiment_id = $1)",
    )
    .bind(experiment_id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() > 0 {
        announce(conn).await?;
    }
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
    /// 0 or 1.
    pub cancel_requested: i64,
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
    sqlx::query_as(&format!("{JOB_SELECT} ORDER BY j.id DESC LIMIT $1")).bind(limit).fetch_all(store.pool()).await
}

/// The jobs of one experiment, in run order.
pub async fn for_experiment(store: &Store, experiment_id: i64) -> Result<Vec<JobRow>, sqlx::Error> {
    sqlx::query_as(&format!("{JOB_SELECT} WHERE e.id = $1 ORDER BY r.id"))
        .bind(experiment_id)
        .fetch_all(store.pool())
        .await
}
