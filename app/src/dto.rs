//! Wire types: what server functions send to pages. Plain serde structs, compiled into
//! both the server and the wasm bundle; conversions from engine types live in `api`.

use serde::{Deserialize, Serialize};
use wire::datasets::DatasetSummary;
use wire::models::ModelInfo;
use wire::prompts::PromptSummary;
use wire::questions::QuestionSetSummary;
use wire::samples::Sample;
use wire::strength::Surprise;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub max_upload_bytes: usize,
    pub data_dir: String,
}

// --- experiments ---

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentRow {
    pub id: i64,
    pub name: String,
    pub model: String,
    pub dataset: String,
    pub created_at: String,
    pub runs: i64,
    pub runs_done: i64,
    pub runs_active: i64,
    pub runs_failed: i64,
}

/// A run and its job, as the experiment page, the queue page and the live stream show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    pub run_id: i64,
    pub experiment_id: i64,
    pub experiment: String,
    pub condition: String,
    pub seed: i64,
    pub status: wire::JobStatus,
    pub phase: wire::RunPhase,
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
    pub heartbeat_age_s: Option<f64>,
    /// Overall progress, 0 to 1 (`engine::jobs::JobView::progress`).
    pub progress: f64,
    /// (step, loss), in step order.
    pub losses: Vec<(i64, f64)>,
}

impl RunView {
    pub fn is_final(&self) -> bool {
        self.status.is_final()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregateView {
    pub condition: String,
    pub test_prompt: String,
    pub question_key: Option<String>,
    pub seed: Option<i64>,
    pub judge: String,
    pub n: i64,
    pub determined: i64,
    pub trait_count: i64,
    pub unscored: i64,
    pub rate: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub mean_score: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentDetail {
    pub id: i64,
    pub name: String,
    pub model: String,
    pub dataset: String,
    pub dataset_id: i64,
    pub spec_hash: String,
    pub created_at: String,
    /// The stored resolved spec, pretty-printed.
    pub spec_json: String,
    /// (name, inoculation prompt or None for the baseline, paraphrase count)
    pub conditions: Vec<(String, Option<String>, usize)>,
    pub test_prompts: Vec<String>,
    pub judges: Vec<String>,
    pub questions: usize,
    pub steps_per_run: usize,
    pub runs: Vec<RunView>,
    pub aggregates: Vec<AggregateView>,
    /// A second stage's starting point: (run id, experiment id, "experiment · condition ·
    /// seed N", adapter sha256 of that run).
    #[serde(default)]
    pub base_run: Option<(i64, i64, String, String)>,
}

/// Test-time prompts to add to a finished experiment (the elicitation check): library
/// prompts by id (their latest version) and, when `label` or `text` is filled in, one
/// written here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AddTestPromptsForm {
    pub experiment_id: i64,
    pub prompt_ids: Vec<i64>,
    pub label: String,
    pub text: String,
}

/// What adding test-time prompts did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddedTestPromptsView {
    pub labels: Vec<String>,
    /// Finished runs queued again to sample and judge under the new prompts.
    pub requeued: u64,
    /// Failed or cancelled runs, which get the new prompts when retried.
    pub not_requeued: u64,
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresetView {
    pub id: String,
    pub title: String,
    pub description: String,
    pub imports: Vec<PresetImportView>,
    pub needs_base_run: bool,
}

/// A file a preset needs imported: its path under the shared data folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresetImportView {
    pub path: String,
    /// A training dataset (the Datasets page); otherwise evaluation questions (this page).
    pub dataset: bool,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinishedRunView {
    pub run_id: i64,
    pub experiment_id: i64,
    /// "run 12 · experiment name · condition · seed 0 · model"
    pub label: String,
}

/// A preset checked against the store: the imports still missing, or the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresetCheck {
    pub missing: Vec<PresetImportView>,
    pub plan: Option<PlanView>,
}

/// The launch form as submitted. Lists come as the form holds them (comma-separated seeds,
/// one inline question a line) and are checked on the server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LaunchForm {
    pub name: String,
    pub model: String,
    pub dataset_id: i64,
    pub control_dataset_id: Option<i64>,
    pub train_rows: Option<usize>,
    pub include_baseline: bool,
    /// Library prompts, one condition each (named after the prompt).
    pub prompt_ids: Vec<i64>,
    /// A condition with this literal prompt, when not blank.
    pub custom_prompt: String,
    /// system | user_prefix
    pub placement: String,
    pub seeds: String,
    pub steps: Option<usize>,
    pub epochs: usize,
    pub lr: f64,
    pub batch_size: usize,
    pub lora_rank: usize,
    pub max_seq_len: usize,
    pub builtin_questions: usize,
    pub held_out: usize,
    pub question_set_ids: Vec<i64>,
    pub inline_questions: String,
    /// default | none | inoculation | prompt:ID
    pub test_prompts: Vec<String>,
    pub samples_per_question: usize,
    pub temperature: f64,
    pub max_tokens: usize,
    /// language | caps | coherence | pattern | multiple_choice | betley
    pub judges: Vec<String>,
    pub language: String,
    pub pattern: String,
    /// local | http
    pub llm_backend: String,
    pub llm_base_url: String,
    pub llm_model: String,
    pub llm_api_key_env: String,
    pub aligned_prompt_id: Option<i64>,
    pub coherent_prompt_id: Option<i64>,
    /// betley | tan
    pub thresholds: String,
    /// Two-stage: start every run from this finished run's model.
    #[serde(default)]
    pub base_run_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRowView {
    pub condition: String,
    pub prompt: Option<String>,
    pub paraphrases: usize,
    pub seeds: Vec<u64>,
    pub test_prompts: Vec<String>,
    pub samples_per_run: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanView {
    pub runs: usize,
    pub steps_per_run: usize,
    pub questions: usize,
    pub samples: usize,
    pub matrix: Vec<PlanRowView>,
    pub estimate_s: f64,
    pub estimate_basis: String,
}

/// The models page's data: the registry and where new models may come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    pub models: Vec<ModelInfo>,
    /// The folders (`--model-root`) a registered path must lie under.
    pub roots: Vec<String>,
}

// --- review, comparison, report ---

/// One question, one column per condition x test-time prompt, rows aligned by seed and
/// sample index; a cell is empty where that sample does not exist (yet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SideBySideView {
    pub question_key: String,
    pub question: String,
    /// (condition, test prompt)
    pub columns: Vec<(String, String)>,
    /// (seed, sample index, one cell per column)
    pub rows: Vec<(i64, i64, Vec<Option<Sample>>)>,
}

/// A plain-words comparison of one condition with the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingView {
    pub judge: String,
    pub test_prompt: String,
    pub condition: String,
    /// lower | higher | no_clear_difference | no_data
    pub effect: String,
    pub sentence: String,
}

/// Everything the read-only report shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportView {
    pub id: i64,
    pub name: String,
    pub question: String,
    pub model: String,
    pub dataset: String,
    pub train_rows: usize,
    pub created_at: String,
    pub spec_hash: String,
    /// (name, training prompt or None, paraphrase count)
    pub conditions: Vec<(String, Option<String>, usize)>,
    /// (name, value) of the training and evaluation settings.
    pub settings: Vec<(String, String)>,
    pub test_prompts: Vec<String>,
    /// (judge name, what its "trait present" means in words)
    pub judges: Vec<(String, String)>,
    /// Runs done out of all runs: a report of an unfinished experiment says so.
    pub runs_done: usize,
    pub runs_total: usize,
    /// Findings under the default test-time prompt first: the headline.
    pub findings: Vec<FindingView>,
    /// Pooled over seeds and questions.
    pub aggregates: Vec<AggregateView>,
    pub pinned: Vec<Sample>,
    /// The examples were picked automatically (one typical answer per condition) because
    /// none are pinned.
    pub examples_picked: bool,
    /// The test-time prompt the picked examples were answered under: `default` when the
    /// experiment has it, else its first.
    pub examples_test_prompt: String,
    /// Changes whenever results change, so chart URLs are not served stale from a cache.
    pub version: i64,
    pub has_probes: bool,
}

// --- prompt strength ---

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrengthResult {
    pub surprise: Surprise,
    pub cached: bool,
    pub seconds: f64,
}

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

/// The sweep form.
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

/// A sweep's check: did predicted strength rank prompts as their observed effects did?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionView {
    pub judge: String,
    /// The check by surprise reduction, in words; `None` when no prompt has it yet.
    pub surprise_sentence: Option<String>,
    /// The check by the base model's elicitation rate of this judge's trait.
    pub elicitation_sentence: Option<String>,
    pub points: Vec<PredictionPointView>,
    /// Prompted conditions without anything measured or without verdicts yet.
    pub missing: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionPointView {
    pub condition: String,
    pub prompt: String,
    /// Surprise reduction and its interval (nats/token).
    pub surprise: Option<(f64, f64, f64)>,
    /// The base model's trait rate under the prompt: (answers with the trait, answers judged).
    pub elicited: Option<(u64, u64)>,
    /// Drop in trait rate vs the baseline (proportion).
    pub effect: f64,
}
