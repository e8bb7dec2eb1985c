//! The report's and the launch form's shared words: how a condition's trait rate compares
//! with the baseline's (`engine::report` decides it; the report page styles each finding
//! by it), the paper's presets as the launch form offers them, a preset checked against
//! the store, the finished runs a second stage can start from, a sweep's predictor check,
//! and everything the read-only report shows (`engine::report::view` builds it).

use serde::{Deserialize, Serialize};

use crate::experiments::{Aggregate, Plan};
use crate::samples::Sample;

/// How a condition's trait rate compares with the baseline's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The condition's interval lies wholly below the baseline's.
    Lower,
    /// Wholly above.
    Higher,
    /// The intervals overlap.
    NoClearDifference,
    /// One side has no verdicts yet.
    NoData,
}

impl Effect {
    /// The serde name, which the report page also uses as the finding's CSS class.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Lower => "lower",
            Effect::Higher => "higher",
            Effect::NoClearDifference => "no_clear_difference",
            Effect::NoData => "no_data",
        }
    }
}

/// One of the paper's settings as a ready experiment (`engine::presets::Preset`, described).
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

/// A preset checked against the store: the imports still missing, or the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresetCheck {
    pub missing: Vec<PresetImportView>,
    pub plan: Option<Plan>,
}

/// A finished run with an adapter, which a second stage can start from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinishedRunView {
    pub run_id: i64,
    pub experiment_id: i64,
    /// "run 12 · experiment name · condition · seed 0 · model"
    pub label: String,
}

/// A sweep's check for one judge: did predicted strength rank prompts as their observed
/// effects did? (`engine::report::prediction_views`.)
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

/// One prompted condition of the check, as numbers the table shows.
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

/// A plain-words comparison of one condition with the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingView {
    pub judge: String,
    pub test_prompt: String,
    pub condition: String,
    pub effect: Effect,
    pub sentence: String,
}

/// The report's first screen: one row per condition, one column per judge, under the
/// default test-time prompt (`engine::report::summary` builds it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SummaryTable {
    /// The test-time prompt the cells were answered under (`default` when there is one).
    pub test_prompt: String,
    pub columns: Vec<SummaryColumn>,
    pub rows: Vec<SummaryRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryColumn {
    pub judge: String,
    /// What the column counts, in words: "answers in Spanish".
    pub words: String,
    /// Answer quality, not a trait: shown apart, in a neutral colour.
    pub quality: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub condition: String,
    /// Its training prompt (the first paraphrase); `None` for a condition without one.
    pub prompt: Option<String>,
    pub cells: Vec<SummaryCell>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryCell {
    /// Rate, interval low, interval high; `None` before anything is judged.
    pub rate: Option<(f64, f64, f64)>,
    /// Answers judged.
    pub n: i64,
    /// Against the baseline's cell (`NoData` on the baseline's own row).
    pub effect: Effect,
    /// The rate and interval when the condition's training prompt was given again at
    /// test time.
    pub again: Option<(f64, f64, f64)>,
}

/// Everything the read-only report shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportView {
    pub id: i64,
    pub name: String,
    pub question: String,
    /// What the results say, in two to four sentences computed from them.
    #[serde(default)]
    pub headline: Vec<String>,
    #[serde(default)]
    pub summary: SummaryTable,
    pub model: String,
    pub dataset: String,
    pub train_rows: usize,
    pub created_at: String,
    pub spec_hash: String,
    pub conditions: Vec<crate::experiments::ConditionView>,
    /// (name, value) of the training and evaluation settings.
    pub settings: Vec<(String, String)>,
    pub test_prompts: Vec<String>,
    /// (judge name, what its "trait present" means in words)
    pub judges: Vec<(String, String)>,
    /// Runs done out of all runs: a report of an unfinished experiment says so.
    pub runs_done: usize,
    pub runs_total: usize,
    /// Judges whose numbers mean little (a local model rating alignment), said first.
    #[serde(default)]
    pub judge_warnings: Vec<String>,
    /// The misalignment judges' check on the calibration set (answers of known verdict).
    #[serde(default)]
    pub calibrations: Vec<crate::experiments::JudgeCalibration>,
    /// Findings under the default test-time prompt first: the headline.
    pub findings: Vec<FindingView>,
    /// Pooled over seeds and questions.
    pub aggregates: Vec<Aggregate>,
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
