//! The workers registry: every job worker (the thread in `serve`, `inoculab run`'s own, an
//! `inoculab worker` process on any machine sharing the data directory) registers under a
//! name, heartbeats with its job's heartbeat (and at each poll while idle), and records the
//! run it works and that run's speed.
//!
//! The rule: a worker is **lost** when its last heartbeat is older than its own lease (it
//! was killed, crashed or cut off from the data directory). Its job's lease, renewed by the
//! same heartbeats, has run out too, so the job is claimable: the next worker to poll takes
//! it over and resumes it from its newest checkpoint (the queue page says "waiting for
//! takeover" meanwhile). A name is unique among live workers: registering one that a live
//! worker on another process holds is refused.
//!
//! The statements are `store::workers`; this module keeps the clock and the rules.

use std::time::Duration;

use crate::jobs::now;
use crate::store::workers::{NewWorker, WorkerRow};
use crate::store::{self, Store};

/// Where a worker stands, and one row of the queue page: the wire crate's types.
pub use wire::workers::{WorkerStatus, WorkerView};

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("a live worker is already named {name:?} (on {host}, pid {pid}, last heard {age:.0} s ago); choose another --name")]
    NameTaken { name: String, host: String, pid: i64, age: f64 },
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

/// This machine's name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`, else "localhost").
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The default name of this process's worker: host:pid.
pub fn default_name() -> String {
    format!("{}:{}", host_name(), std::process::id())
}

/// Whether a stored worker is lost at `now`: not stopped, and silent for longer than its lease.
pub fn is_lost(row: &WorkerRow, now: f64) -> bool {
    row.status != WorkerStatus::Stopped.as_str() && now - row.heartbeat_at > row.lease_secs
}

fn view(row: WorkerRow, now: f64) -> WorkerView {
    let status = if is_lost(&row, now) { WorkerStatus::Lost } else { WorkerStatus::parse(&row.status) };
    WorkerView {
        status,
        heartbeat_age_s: (now - row.heartbeat_at).max(0.0),
        name: row.name,
        host: row.host,
        pid: row.pid,
        device: row.device,
        current_run_id: row.current_run_id,
        current_experiment_id: row.current_experiment_id,
        lease_secs: row.lease_secs,
        runs_done: row.runs_done,
        tokens_per_sec: row.tokens_per_sec,
        started_at: row.started_at,
    }
}

/// Registers this process's worker `name` (see the module comment for when a name is
/// refused). A row of the same name that is stopped, lost, or this very process's is
/// replaced.
pub async fn register(store: &Store, name: &str, device: &str, lease: Duration) -> Result<(), WorkerError> {
    let (host, pid, now) = (host_name(), i64::from(std::process::id()), now());
    if let Some(old) = store::workers::get(store, name).await? {
        let live = old.status != WorkerStatus::Stopped.as_str() && !is_lost(&old, now);
        if live && (old.host != host || old.pid != pid) {
            let age = (now - old.heartbeat_at).max(0.0);
            return Err(WorkerError::NameTaken { name: name.into(), host: old.host, pid: old.pid, age });
        }
    }
    let w = NewWorker { name, host: &host, pid, device, lease_secs: lease.as_secs_f64() };
    Ok(store::workers::register(store, &w, now).await?)
}

/// A heartbeat: idle (`run_id` `None`) or working `run_id`.
pub async fn beat(store: &Store, name: &str, run_id: Option<i64>) -> Result<(), sqlx::Error> {
    store::workers::beat(store, name, now(), run_id).await
}

/// `name` claimed `job_id` (run `run_id`): recorded in `worker_runs`, closing the hold of
/// a lost worker it takes the job over from.
pub async fn claimed(store: &Store, name: &str, job_id: i64, run_id: i64) -> Result<(), sqlx::Error> {
    store::workers::claimed(store, name, job_id, run_id, now()).await
}

/// `name`'s training of `run_id` resumed from the checkpoint of `step`.
pub async fn resumed(store: &Store, name: &str, run_id: i64, step: i64) -> Result<(), sqlx::Error> {
    store::workers::resumed(store, name, run_id, step).await
}

/// How a worker let a job go, as `worker_runs.outcome` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Let {
    /// The run ended with this status (done, failed, cancelled): a run done.
    Finished(wire::JobStatus),
    /// The worker stopped on a signal and handed the job back.
    Released,
    /// Another worker took the job over (this one was presumed dead).
    Lost,
}

/// `name` let `job_id` go.
pub async fn ended(store: &Store, name: &str, job_id: i64, how: Let) -> Result<(), sqlx::Error> {
    let (outcome, finished) = match how {
        Let::Finished(status) => (status.as_str(), true),
        Let::Released => ("released", false),
        Let::Lost => ("lost", false),
    };
    store::workers::ended(store, name, job_id, now(), outcome, finished).await
}

/// `name` exited on purpose.
pub async fn stopped(store: &Store, name: &str) -> Result<(), sqlx::Error> {
    store::workers::stopped(store, name, now()).await
}

/// Hands a job `name` holds back to the queue at once (a worker stopping on a signal):
/// claimable by the next poll, its attempt given back. False when `name` no longer held it.
pub async fn release_job(store: &Store, job_id: i64, name: &str) -> Result<bool, sqlx::Error> {
    store::workers::release_job(store, job_id, name, now() - 1.0).await
}

/// Every registered worker (working and idle first, then stopped), with lost ones marked.
pub async fn list(store: &Store) -> Result<Vec<WorkerView>, sqlx::Error> {
    let now = now();
    Ok(store::workers::list(store, 500).await?.into_iter().map(|r| view(r, now)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn register_heartbeat_and_lost() {
        rt().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).await.unwrap();
            register(&store, "w1", "cpu", Duration::from_secs(30)).await.unwrap();
            let w = list(&store).await.unwrap();
            assert_eq!(w.len(), 1);
            assert_eq!((w[0].name.as_str(), w[0].device.as_str(), w[0].status), ("w1", "cpu", WorkerStatus::Idle));
            assert_eq!(w[0].pid, i64::from(std::process::id()));
            assert_eq!(w[0].host, host_name());

            // The same process may register its name again (a restart of its worker).
            register(&store, "w1", "cpu", Duration::from_secs(30)).await.unwrap();

            // Another live process's name is refused.
            let row =
                store::workers::NewWorker { name: "w2", host: "elsewhere", pid: 7, device: "cpu", lease_secs: 2.0 };
            let t0 = now();
            store::workers::register(&store, &row, t0).await.unwrap();
            let err = register(&store, "w2", "cpu", Duration::from_secs(30)).await.unwrap_err();
            assert!(matches!(err, WorkerError::NameTaken { .. }), "{err}");
            assert!(err.to_string().contains("elsewhere"), "{err}");

            // Heartbeats keep it alive; silence past its lease makes it lost.
            store::workers::beat(&store, "w2", t0 + 1.5, None).await.unwrap();
            let at = |t: f64| {
                let store = store.clone();
                async move {
                    let r = store::workers::get(&store, "w2").await.unwrap().unwrap();
                    is_lost(&r, t)
                }
            };
            assert!(!at(t0 + 3.0).await);
            assert!(at(t0 + 3.6).await);
            // A lost worker's name can be taken; it also shows as lost in the list.
            store::workers::beat(&store, "w2", now() - 10.0, None).await.unwrap();
            let listed = list(&store).await.unwrap();
            assert_eq!(listed.iter().find(|w| w.name == "w2").unwrap().status, WorkerStatus::Lost);
            register(&store, "w2", "cpu", Duration::from_secs(30)).await.unwrap();

            // Stopped workers are never lost, and list after the others.
            stopped(&store, "w1").await.unwrap();
            store::workers::beat(&store, "w1", now() - 100.0, None).await.unwrap(); // ignored once stopped
            let listed = list(&store).await.unwrap();
            assert_eq!(listed.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(), ["w2", "w1"]);
            assert_eq!(listed[1].status, WorkerStatus::Stopped);
            assert_eq!(listed[0].status, WorkerStatus::Idle);
        });
    }
}
