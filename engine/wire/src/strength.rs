//! Prompt strength as both sides see it: a prompt's surprise reduction on a dataset with
//! its bootstrap interval, and the sweep form. `engine::strength` measures it (and caches
//! it by content) and turns the form into an experiment (`strength::sweep_from_form`);
//! the prompt designer and the ranking table show it as is.

use serde::{Deserialize, Serialize};

/// Surprise reduction with its 95 % bootstrap interval over rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Surprise {
    /// Mean over rows of (prompted − default) per-token log-prob, nats/token.
    pub reduction: f64,
    pub lo: f64,
    pub hi: f64,
    /// Mean per-token log-prob with the prompt, and with the default prompt.
    pub prompted: f64,
    pub default: f64,
    pub n_rows: usize,
    /// Assistant tokens scored per pass.
    pub n_tokens: usize,
}

/// A measurement and whether it came from the cache: what the meter answers, and what the
/// designer shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured<T> {
    pub value: T,
    pub cached: bool,
    /// Seconds spent computing (0 when cached).
    pub seconds: f64,
}

/// The sweep form: one fine-tuning run per prompt beside a shared baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepForm {
    pub name: String,
    pub model_id: i64,
    pub dataset_id: i64,
    pub prompts: Vec<String>,
    pub steps: usize,
    pub seeds: usize,
    pub questions: usize,
    pub rows: usize,
}
