//! Runs as both sides see them: where a run's job stands, which phase it is in, and one
//! run with its job, progress and loss curve as the experiment page, the queue page and the
//! live stream show it. `engine::jobs` returns [`JobView`] (progress filled in; the loss
//! curve by `engine::experiments::run_views`).

use serde::{Deserialize, Serialize};

/// Where a run's job stands; stored in `jobs.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
    /// Its last attempt died (a killed worker, a crash); a retry resets it.
    Interrupted,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Interrupted => "interrupted",
        }
    }

    /// The store's word for a status; an unknown word reads as `Interrupted`, a state
    /// from which a retry recovers.
    pub fn parse(s: &str) -> JobStatus {
        match s {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "done" => JobStatus::Done,
            "failed" => JobStatus::Failed,
            "cancelled" => JobStatus::Cancelled,
            _ => JobStatus::Interrupted,
        }
    }

    /// Finished one way or another: nothing will happen to it without a retry.
    pub fn is_final(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }

    /// Waiting or working: what the queue and the "Cancel" buttons are about.
    pub fn is_active(self) -> bool {
        !self.is_final()
    }

    /// Ended without finishing, so "Retry" applies.
    pub fn can_retry(self) -> bool {
        matches!(self, JobStatus::Failed | JobStatus::Interrupted | JobStatus::Cancelled)
    }
}

/// Which phase a run is in (while running) or reached last; stored in `runs.phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunPhase {
    Train,
    Sample,
    Judge,
}

impl RunPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            RunPhase::Train => "train",
            RunPhase::Sample => "sample",
            RunPhase::Judge => "judge",
        }
    }

    pub fn parse(s: &str) -> Option<RunPhase> {
        match s {
            "train" => Some(RunPhase::Train),
            "sample" => Some(RunPhase::Sample),
            "judge" => Some(RunPhase::Judge),
            _ => None,
        }
    }
}

/// A run and its job: one line of the queue page, one row of an experiment's runs.
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
    /// The worker holding it (`jobs.locked_by`), for running jobs.
    #[serde(default)]
    pub worker: Option<String>,
    /// Running, but its lease ran out: its worker is lost (killed, crashed, cut off) and
    /// the next worker to poll takes the run over from its last checkpoint.
    #[serde(default)]
    pub waiting_for_takeover: bool,
    /// Overall progress, 0 to 1 ([`JobView::overall_progress`]), for the pages.
    pub progress: f64,
    /// (step, loss), in step order; empty where the page does not plot it (the queue).
    #[serde(default)]
    pub losses: Vec<(i64, f64)>,
}

impl JobView {
    /// How far the run is, 0 to 1, for progress bars: training is most of a run's time,
    /// sampling and judging share the rest.
    pub fn overall_progress(&self) -> f64 {
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

    pub fn is_final(&self) -> bool {
        self.status.is_final()
    }
}
