//! Value types that cross the wire between the server and the browser and that the domain
//! also uses: statuses, phases and kinds as enums rather than strings, so a page compares
//! `status == JobStatus::Running`, never `status == "running"`, and a new variant is a
//! compile error wherever it is not handled. serde only: this crate compiles to wasm, and
//! every crate of ours may import it (it imports none of them).
//!
//! Each enum serialises to the same lower-case word the store keeps in its TEXT column;
//! `as_str` and `parse` are that mapping, in one place.

//!
//! Beside the enums, one module per noun holds the values the store returns and the pages
//! show, defined once here so that neither side keeps a copy of the other's.

use serde::{Deserialize, Serialize};

pub mod datasets;
pub mod models;
pub mod prompts;
pub mod questions;
pub mod reviews;
pub mod samples;
pub mod strength;
pub mod teacher;

pub use datasets::DatasetSource;
pub use models::ModelKind;
pub use teacher::{TeacherPhase, TeacherStatus};

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The serde names are the store's words: both go through `as_str`'s table.
    #[test]
    fn serde_names_are_the_stored_words() {
        for s in [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Done,
            JobStatus::Failed,
            JobStatus::Cancelled,
            JobStatus::Interrupted,
        ] {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.as_str()));
            assert_eq!(JobStatus::parse(s.as_str()), s);
        }
        for p in [RunPhase::Train, RunPhase::Sample, RunPhase::Judge] {
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{}\"", p.as_str()));
            assert_eq!(RunPhase::parse(p.as_str()), Some(p));
        }
        for d in [DatasetSource::Import, DatasetSource::Generated, DatasetSource::Transform, DatasetSource::Teacher] {
            assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{}\"", d.as_str()));
            assert_eq!(DatasetSource::parse(d.as_str()), Some(d));
        }
        for k in [ModelKind::Gguf, ModelKind::Hf] {
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{}\"", k.as_str()));
            assert_eq!(ModelKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(JobStatus::parse("nonsense"), JobStatus::Interrupted);
        assert_eq!(RunPhase::parse("nonsense"), None);
    }
}
