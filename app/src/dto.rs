//! Page-shaped composites that server functions return and that have no counterpart in the
//! engine: each is built from `wire` types (the launch form's options, the models page's
//! list and roots, the strength meter's results, the server's limits), never a copy of
//! one. A value the store or
//! the domain returns is defined once in `wire` and used as it is; `scripts/check-layers`
//! refuses a type here with the name of one there.

use serde::{Deserialize, Serialize};
use wire::datasets::DatasetSummary;
use wire::experiments::JudgeEndpointView;
use wire::models::ModelInfo;
use wire::prompts::PromptSummary;
use wire::questions::QuestionSetSummary;
use wire::reports::{FinishedRunView, PresetView};
use wire::strength::Surprise;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub max_upload_bytes: usize,
    pub data_dir: String,
}

// --- experiments ---

/// What a launch did: started the experiment (its id), or stopped to ask first, because
/// its plan takes longer than `api::experiments::CONFIRM_OVER_S`; the page shows the plan's
/// numbers and launches again, confirmed, when asked to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Launched {
    Started(i64),
    Confirm(wire::experiments::Plan),
}

/// Everything the launch form offers to choose from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchOptions {
    pub datasets: Vec<DatasetSummary>,
    /// (name, ready)
    pub models: Vec<(String, bool)>,
    pub prompts: Vec<PromptSummary>,
    pub judge_prompts: Vec<PromptSummary>,
    pub question_sets: Vec<QuestionSetSummary>,
    pub builtin_questions: usize,
    /// The paper's settings as templates (engine::presets).
    #[serde(default)]
    pub presets: Vec<PresetView>,
    /// Finished runs with an adapter: what a second stage can start from.
    #[serde(default)]
    pub finished_runs: Vec<FinishedRunView>,
    /// The judge endpoints the operator configured (`--judge-endpoints`).
    #[serde(default)]
    pub judge_endpoints: Vec<JudgeEndpointView>,
}

/// The models page's data: the registry and where new models may come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    pub models: Vec<ModelInfo>,
    /// The folders (`--model-root`) a registered path must lie under.
    pub roots: Vec<String>,
}

// --- prompt strength ---

/// How often the base model showed each trait under the prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElicitationResult {
    /// (judge, what its trait means in words, hits, decided answers)
    pub rates: Vec<(String, String, u64, u64)>,
    /// (question, completion: untrusted model output)
    pub samples: Vec<(String, String)>,
    pub cached: bool,
    pub seconds: f64,
}

/// One prompt the ranking table can place: a library prompt or one paraphrase of a set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrengthCandidate {
    /// "Spanish", or "Evil assistant · paraphrase 3".
    pub label: String,
    /// The paraphrase set it belongs to (the prompt's name), if it is a paraphrase.
    pub set: Option<String>,
    pub prompt_id: i64,
    pub text: String,
    pub surprise: Option<Surprise>,
}
