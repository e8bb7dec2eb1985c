//! Imported evaluation question sets as both sides see them: a set's summary without its
//! questions, which the store lists and the launch form offers to choose from.

use serde::{Deserialize, Serialize};

/// A stored question set without its questions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuestionSetSummary {
    pub id: i64,
    pub name: String,
    /// The file format's word (`betley_yaml`, `lines`, ...: `engine::questions::QuestionFormat`).
    pub format: String,
    pub n_questions: i64,
    pub content_hash: String,
    pub created_at: String,
}
