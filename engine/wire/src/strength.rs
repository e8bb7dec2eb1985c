//! Prompt strength as both sides see it: a prompt's surprise reduction on a dataset with
//! its bootstrap interval. `engine::strength` measures it (and caches it by content); the
//! prompt designer and the ranking table show it as is.

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
