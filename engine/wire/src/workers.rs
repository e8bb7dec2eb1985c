//! Job workers as both sides see them: the queue page's list of the workers registered on
//! this data directory (the thread in `serve`, `inoculab run`'s own, `inoculab worker`
//! processes on any machine sharing it). `engine::workers` returns [`WorkerView`], with
//! [`WorkerStatus::Lost`] worked out from the heartbeat and the worker's lease.

use serde::{Deserialize, Serialize};

/// Where a worker stands. `Idle`, `Running` and `Stopped` are stored in `workers.status`;
/// `Lost` never is: it is a worker whose heartbeat is older than its lease (killed,
/// crashed, cut off), whose run another worker takes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerStatus {
    Idle,
    Running,
    Stopped,
    Lost,
}

impl WorkerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerStatus::Idle => "idle",
            WorkerStatus::Running => "running",
            WorkerStatus::Stopped => "stopped",
            WorkerStatus::Lost => "lost",
        }
    }

    /// The stored word; an unknown one reads as `Stopped` (a worker nobody expects to
    /// hear from).
    pub fn parse(s: &str) -> WorkerStatus {
        match s {
            "idle" => WorkerStatus::Idle,
            "running" => WorkerStatus::Running,
            "lost" => WorkerStatus::Lost,
            _ => WorkerStatus::Stopped,
        }
    }
}

/// One registered worker: one row of the queue page's workers table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerView {
    /// `--name` (by default host:pid): what `jobs.locked_by` holds while it works a run.
    pub name: String,
    pub host: String,
    pub pid: i64,
    pub device: String,
    pub status: WorkerStatus,
    /// The run it works now (also while lost: the run waiting for takeover).
    pub current_run_id: Option<i64>,
    /// That run's experiment, for the link.
    pub current_experiment_id: Option<i64>,
    /// Seconds since its last heartbeat.
    pub heartbeat_age_s: f64,
    /// Its lease: lost once `heartbeat_age_s` is larger.
    pub lease_secs: f64,
    /// Runs it finished (done, failed or cancelled).
    pub runs_done: i64,
    /// The last measured speed of its current or last run.
    pub tokens_per_sec: Option<f64>,
    /// Seconds since the Unix epoch.
    pub started_at: f64,
}
