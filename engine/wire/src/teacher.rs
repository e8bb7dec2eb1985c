//! Teacher generations as both sides see them: where a background generation stands and
//! what it is doing, the form that starts one, and what the form offers.
//! `engine::datasets::teacher` reads the form, runs the generation and reports it in these
//! types; the datasets page polls them.

use serde::{Deserialize, Serialize};

/// Where a background teacher generation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeacherStatus {
    Running,
    Done,
    Failed,
    Cancelled,
}

/// What a running teacher generation is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeacherPhase {
    Loading,
    Sampling,
    Saving,
}

/// What the teacher form offers: ready models, and runs whose adapter can teach
/// (id, label), newest first; and the generation running now, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeacherChoices {
    pub models: Vec<String>,
    pub runs: Vec<(i64, String)>,
    pub running: Option<TeacherTask>,
}

/// A background teacher generation as the datasets page polls it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeacherTask {
    pub id: u64,
    pub name: String,
    pub status: TeacherStatus,
    /// While running: what it is doing.
    pub phase: Option<TeacherPhase>,
    pub drawn: u64,
    pub kept: u64,
    pub total: u64,
    /// When done: the dataset made (or the existing one with the same rows).
    pub dataset_id: Option<i64>,
    pub already_present: bool,
    pub error: Option<String>,
}

/// The teacher form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeacherForm {
    pub model: String,
    /// A run whose adapter is merged into the teacher.
    pub run_id: Option<i64>,
    /// Empty: the model's default system prompt.
    pub system_prompt: String,
    /// Samples to draw.
    pub rows: usize,
    /// `numbers_only` or `none`.
    pub filter: String,
    pub seed: u64,
    pub name: String,
}
