//! Value types that cross the wire between the server and the browser and that the domain
//! also uses, defined once: the store returns them, the domain re-exports them at its own
//! paths, and the pages use them as they are, so a new field is written in one place.
//! serde (and serde_json, for a dataset's free-form recipe) only: this crate compiles to
//! wasm, and every crate of ours may import it (it imports none of them).
//!
//! Statuses, phases, kinds and a form's choices are enums rather than strings, so a page
//! compares `status == JobStatus::Running`, never `status == "running"`, and a new variant
//! is a compile error wherever it is not handled. Each serialises to the word the store
//! keeps in its TEXT column (or the form's input carries); `as_str` and `parse` are that
//! mapping, in one place. One module per noun; the most used enums are re-exported here.

pub mod accounts;
pub mod datasets;
pub mod experiments;
pub mod models;
pub mod prompts;
pub mod questions;
pub mod reports;
pub mod reviews;
pub mod runs;
pub mod samples;
pub mod strength;
pub mod teacher;
pub mod workers;

/// "1 run", "3 runs": a count with its noun in the right number, for every message that
/// counts something (pages, the command line, errors), so none says "1 run(s)".
pub fn counted(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A duration in words: "1 h 05 min", "12 min 30 s", "45 s" (pages, plans, the CLI).
pub fn fmt_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

pub use datasets::DatasetSource;
pub use models::ModelKind;
pub use runs::{JobStatus, RunPhase};
pub use teacher::{TeacherPhase, TeacherStatus};
pub use workers::WorkerStatus;

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
        for w in [WorkerStatus::Idle, WorkerStatus::Running, WorkerStatus::Stopped, WorkerStatus::Lost] {
            assert_eq!(serde_json::to_string(&w).unwrap(), format!("\"{}\"", w.as_str()));
            assert_eq!(WorkerStatus::parse(w.as_str()), w);
        }
        assert_eq!(JobStatus::parse("nonsense"), JobStatus::Interrupted);
        assert_eq!(RunPhase::parse("nonsense"), None);
    }
}
