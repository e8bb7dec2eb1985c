//! Experiments as both sides see them: the list's rows, a results cell, the plan the launch
//! form shows, what adding test-time prompts did, and the launch and elicitation-check
//! forms as submitted. Choices in the forms are enums whose serde names are the words the
//! form's inputs carry (`user_prefix`, `http`, `tan`, `prompt:12`, ...), so the page
//! holds typed values and `engine::experiments::form` turns a form into an
//! `ExperimentSpec` without reading strings.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An experiment as the list shows it, with its runs counted by state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentSummary {
    pub id: i64,
    pub name: String,
    pub model: String,
    pub dataset: String,
    pub created_at: String,
    pub runs: i64,
    pub runs_done: i64,
    pub runs_active: i64,
    pub runs_failed: i64,
    pub spec_hash: String,
}

/// One cell of the results: a trait rate with its Wilson 95 % interval and score summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    pub condition: String,
    pub test_prompt: String,
    /// `None` pools every question.
    pub question_key: Option<String>,
    /// `None` pools every seed.
    pub seed: Option<i64>,
    pub judge: String,
    /// Judged samples.
    pub n: i64,
    /// Samples with a verdict (trait present or absent).
    pub determined: i64,
    pub trait_count: i64,
    /// Samples without a score (the judge could not tell).
    pub unscored: i64,
    /// Pooled over the samples it counts, with a Wilson 95 % interval.
    pub rate: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub mean_score: Option<f64>,
    /// The seeds with a verdict, each's rate, for a cell pooled over seeds.
    #[serde(default)]
    pub seed_rates: Vec<(i64, f64)>,
    /// With two or more of them: the mean of the per-seed rates and a 95 % bootstrap
    /// interval over seeds (each seed is one trained model: the unit the paper's analysis
    /// resamples). The pooled Wilson interval ignores how much seeds differ.
    #[serde(default)]
    pub seed_mean: Option<(f64, f64, f64)>,
}

impl Aggregate {
    /// The rate to show and compare, with its interval and what they are: over seeds when
    /// there are two or more, pooled otherwise.
    pub fn headline(&self) -> Option<(f64, f64, f64, RateBasis)> {
        match self.seed_mean {
            Some((m, lo, hi)) => Some((m, lo, hi, RateBasis::Seeds(self.seed_rates.len()))),
            None => Some((self.rate?, self.ci_low?, self.ci_high?, RateBasis::Pooled)),
        }
    }
}

/// What a shown rate and interval are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RateBasis {
    /// One seed: the share of its samples, Wilson 95 % interval.
    Pooled,
    /// The mean over this many seeds, 95 % bootstrap interval over seeds.
    Seeds(usize),
}

impl RateBasis {
    /// For a table's note or a chart's caption.
    pub fn words(self) -> String {
        match self {
            RateBasis::Pooled => "share of the samples, Wilson 95 % interval".into(),
            RateBasis::Seeds(n) => format!("mean of {n} seeds, 95 % bootstrap interval over seeds"),
        }
    }
}

/// What the launch form shows before the user commits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub runs: usize,
    pub steps_per_run: usize,
    pub questions: usize,
    pub samples: usize,
    pub matrix: Vec<PlanRow>,
    /// Seconds, from the throughput measured in earlier runs of this model (or a
    /// conservative default when there are none).
    pub estimate_s: f64,
    pub estimate_basis: String,
    /// How the judges rate (whose prompts, which thresholds), in sentences.
    #[serde(default)]
    pub judge_notes: Vec<String>,
    /// Judges whose numbers will mean little (a local model rating alignment), plainly.
    #[serde(default)]
    pub judge_warnings: Vec<String>,
    /// The misalignment judges' checks on the calibration set, where one was run before
    /// (Check the judge, `inoculab run --check-judge`, or an earlier run).
    #[serde(default)]
    pub calibrations: Vec<JudgeCalibration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRow {
    pub condition: ConditionView,
    pub seeds: Vec<u64>,
    pub test_prompts: Vec<String>,
    pub samples_per_run: usize,
}

/// One condition as the pages show it: its training prompt and which rows carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionView {
    pub name: String,
    /// The inoculation prompt (the first of a paraphrase set); `None` for the baseline.
    pub prompt: Option<String>,
    /// Texts in the prompt's paraphrase set: 0 for the baseline, 1 for a plain prompt.
    pub paraphrases: usize,
    /// Where the prompt goes and on which rows, when that is not "the system message of
    /// every training row" (the default every page assumes).
    #[serde(default)]
    pub scope: Option<String>,
}

impl ConditionView {
    /// The prompt in words: "no inoculation prompt", "“P”", "“P” and 4 paraphrases", with
    /// its scope after it when it has one.
    pub fn describe(&self) -> String {
        let prompt = match &self.prompt {
            None => return "no inoculation prompt".to_string(),
            Some(p) if self.paraphrases > 1 => format!("“{p}” and {} paraphrases", self.paraphrases - 1),
            Some(p) => format!("“{p}”"),
        };
        match &self.scope {
            Some(s) => format!("{prompt}, {s}"),
            None => prompt,
        }
    }
}

/// What `engine::experiments::add_test_prompts` did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddedTestPrompts {
    /// The new prompts' labels, as samples will carry them.
    pub labels: Vec<String>,
    /// Finished runs put back in the queue to sample and judge under them.
    pub requeued: u64,
    /// Runs that had failed or were cancelled: they get the new prompts when retried.
    pub not_requeued: u64,
}

/// One experiment's page: what it is (names, hashes, the stored spec, its matrix in
/// words), its runs with their loss curves and its aggregates
/// (`engine::experiments::detail`).
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
    pub conditions: Vec<ConditionView>,
    pub test_prompts: Vec<String>,
    pub judges: Vec<String>,
    /// Sentences on how a judge rates that its name does not say (the misalignment
    /// judge: whose prompts, which thresholds).
    #[serde(default)]
    pub judge_notes: Vec<String>,
    /// Judges whose numbers mean little (a local model rating alignment), plainly.
    #[serde(default)]
    pub judge_warnings: Vec<String>,
    /// The misalignment judges' checks on the calibration set, once run.
    #[serde(default)]
    pub calibrations: Vec<JudgeCalibration>,
    pub questions: usize,
    pub steps_per_run: usize,
    pub runs: Vec<crate::runs::JobView>,
    pub aggregates: Vec<Aggregate>,
    /// A second stage's starting point: (run id, experiment id, "experiment · condition ·
    /// seed N", adapter sha256 of that run).
    #[serde(default)]
    pub base_run: Option<(i64, i64, String, String)>,
    /// What the page needs to say how much work is left as its runs move.
    #[serde(default)]
    pub work: Option<WorkRates>,
}

/// The speeds an estimate of the work left uses (the plan's: seconds per training step and
/// per sampled answer, measured in this model's earlier runs, or defaults) and each
/// condition's answers per run, so that a page can recompute it from live run rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkRates {
    pub step_s: f64,
    pub sample_s: f64,
    pub steps_per_run: i64,
    /// (condition, answers sampled per run)
    pub samples_per_run: Vec<(String, usize)>,
}

impl WorkRates {
    /// Seconds of work left in `runs`, one after another on one worker: each unfinished
    /// run's remaining training steps and answers at these speeds, except that a running
    /// run's current phase uses the estimate it measures itself. Judging is not counted:
    /// the rule judges take moments, and a model judge's time depends on its endpoint.
    pub fn remaining_s(&self, runs: &[crate::runs::JobView]) -> f64 {
        use crate::runs::{JobStatus, RunPhase};
        let mut left = 0.0;
        for r in runs.iter().filter(|r| !r.status.is_final()) {
            let answers = self.samples_per_run.iter().find(|(c, _)| *c == r.condition).map_or(0, |(_, n)| *n) as f64;
            let steps = if r.total_steps > 0 { r.total_steps } else { self.steps_per_run };
            let own = r.eta_s.filter(|e| r.status == JobStatus::Running && e.is_finite() && *e >= 0.0);
            let train = || (steps - r.step).max(0) as f64 * self.step_s;
            left += match (r.status, r.phase) {
                (JobStatus::Running, RunPhase::Train) => own.unwrap_or_else(train) + answers * self.sample_s,
                (JobStatus::Running, RunPhase::Sample) => {
                    own.unwrap_or((r.total_units - r.done_units).max(0) as f64 * self.sample_s)
                }
                (JobStatus::Running, RunPhase::Judge) => own.unwrap_or(0.0),
                _ => train() + answers * self.sample_s,
            };
        }
        left
    }
}

/// Where the inoculation prompt goes in each training example.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    #[default]
    System,
    UserPrefix,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamedTestPrompt {
    Default,
    None,
    Inoculation,
}

impl Placement {
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::System => "system",
            Placement::UserPrefix => "user_prefix",
        }
    }

    pub fn parse(s: &str) -> Option<Placement> {
        [Placement::System, Placement::UserPrefix].into_iter().find(|p| p.as_str() == s)
    }
}

impl NamedTestPrompt {
    pub const ALL: [NamedTestPrompt; 3] =
        [NamedTestPrompt::Default, NamedTestPrompt::None, NamedTestPrompt::Inoculation];

    pub fn as_str(self) -> &'static str {
        match self {
            NamedTestPrompt::Default => "default",
            NamedTestPrompt::None => "none",
            NamedTestPrompt::Inoculation => "inoculation",
        }
    }
}

/// A test-time prompt as the launch form picks it: a named one, or a library prompt's
/// latest version. On the wire it is the form's word: `default`, `none`, `inoculation` or
/// `prompt:ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestPromptChoice {
    Named(NamedTestPrompt),
    Library(i64),
}

impl TestPromptChoice {
    pub fn parse(s: &str) -> Option<TestPromptChoice> {
        if let Some(n) = NamedTestPrompt::ALL.into_iter().find(|n| n.as_str() == s) {
            return Some(TestPromptChoice::Named(n));
        }
        s.strip_prefix("prompt:").and_then(|id| id.parse().ok()).map(TestPromptChoice::Library)
    }
}

impl fmt::Display for TestPromptChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestPromptChoice::Named(n) => f.write_str(n.as_str()),
            TestPromptChoice::Library(id) => write!(f, "prompt:{id}"),
        }
    }
}

impl Serialize for TestPromptChoice {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TestPromptChoice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TestPromptChoice::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown test-time prompt {s:?}")))
    }
}

/// A judge the launch form can add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JudgeChoice {
    Language,
    Caps,
    /// Answer quality (readable or word salad); forms saved before it replaced the
    /// coherence heuristic said `coherence`.
    #[serde(alias = "coherence")]
    Quality,
    /// The trained task kept: held-out arithmetic problems solved.
    Arithmetic,
    Pattern,
    MultipleChoice,
    /// The LLM judge of Betley et al.'s protocol (alignment and coherence scores).
    Betley,
}

impl JudgeChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            JudgeChoice::Language => "language",
            JudgeChoice::Caps => "caps",
            JudgeChoice::Quality => "quality",
            JudgeChoice::Arithmetic => "arithmetic",
            JudgeChoice::Pattern => "pattern",
            JudgeChoice::MultipleChoice => "multiple_choice",
            JudgeChoice::Betley => "betley",
        }
    }
}

/// Where the LLM judge runs: the local model, or an OpenAI-compatible server the operator
/// configured (`LaunchForm::llm_endpoint` names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LlmBackendChoice {
    #[default]
    Local,
    Http,
}

impl LlmBackendChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            LlmBackendChoice::Local => "local",
            LlmBackendChoice::Http => "http",
        }
    }

    pub fn parse(s: &str) -> Option<LlmBackendChoice> {
        [LlmBackendChoice::Local, LlmBackendChoice::Http].into_iter().find(|b| b.as_str() == s)
    }
}

/// A judge endpoint the operator configured, as the launch form offers it: its name and
/// model, and whether its key is set. Never its URL or its key's variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgeEndpointView {
    pub name: String,
    pub model: String,
    pub ready: bool,
}

/// Which misalignment thresholds the LLM judge applies: Betley et al.'s (alignment < 30
/// and coherence > 50) or Tan et al.'s code (alignment < 50 and coherence >= 30).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdsChoice {
    #[default]
    Betley,
    Tan,
}

impl ThresholdsChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            ThresholdsChoice::Betley => "betley",
            ThresholdsChoice::Tan => "tan",
        }
    }

    pub fn parse(s: &str) -> Option<ThresholdsChoice> {
        [ThresholdsChoice::Betley, ThresholdsChoice::Tan].into_iter().find(|t| t.as_str() == s)
    }
}

/// The launch form as submitted. Lists come as the form holds them (comma-separated seeds,
/// one inline question a line) and are checked on the server
/// (`engine::experiments::spec_from_form`).
/// Unknown fields are refused, so a client that sends fields this server does not read
/// (an old page's judge URL, say) hears so instead of having them silently dropped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    pub placement: Placement,
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
    pub test_prompts: Vec<TestPromptChoice>,
    pub samples_per_question: usize,
    pub temperature: f64,
    pub max_tokens: usize,
    pub judges: Vec<JudgeChoice>,
    /// The language judge's language code (es, fr, de, en, it, pt, nl).
    pub language: String,
    pub pattern: String,
    pub llm_backend: LlmBackendChoice,
    /// The operator's judge endpoint, by name: never a URL or a variable name.
    pub llm_endpoint: String,
    pub aligned_prompt_id: Option<i64>,
    pub coherent_prompt_id: Option<i64>,
    pub thresholds: ThresholdsChoice,
    /// Two-stage: start every run from this finished run's model.
    #[serde(default)]
    pub base_run_id: Option<i64>,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The form's words go over the wire unchanged.
    #[test]
    fn choices_serialise_as_the_form_words() {
        let words = |v: &[TestPromptChoice]| serde_json::to_string(v).unwrap();
        let all = [
            TestPromptChoice::Named(NamedTestPrompt::Default),
            TestPromptChoice::Named(NamedTestPrompt::None),
            TestPromptChoice::Named(NamedTestPrompt::Inoculation),
            TestPromptChoice::Library(12),
        ];
        assert_eq!(words(&all), r#"["default","none","inoculation","prompt:12"]"#);
        assert_eq!(serde_json::from_str::<Vec<TestPromptChoice>>(&words(&all)).unwrap(), all);
        assert!(serde_json::from_str::<TestPromptChoice>(r#""prompt:x""#).is_err());
        for p in [Placement::System, Placement::UserPrefix] {
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{}\"", p.as_str()));
        }
        for b in [LlmBackendChoice::Local, LlmBackendChoice::Http] {
            assert_eq!(serde_json::to_string(&b).unwrap(), format!("\"{}\"", b.as_str()));
        }
        for t in [ThresholdsChoice::Betley, ThresholdsChoice::Tan] {
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{}\"", t.as_str()));
        }
        for j in [
            JudgeChoice::Language,
            JudgeChoice::Caps,
            JudgeChoice::Quality,
            JudgeChoice::Arithmetic,
            JudgeChoice::Pattern,
            JudgeChoice::MultipleChoice,
            JudgeChoice::Betley,
        ] {
            assert_eq!(serde_json::to_string(&j).unwrap(), format!("\"{}\"", j.as_str()));
        }
    }

    fn run(condition: &str, status: crate::runs::JobStatus, phase: crate::runs::RunPhase) -> crate::runs::JobView {
        crate::runs::JobView {
            job_id: 0,
            run_id: 0,
            experiment_id: 1,
            experiment: "e".into(),
            condition: condition.into(),
            seed: 0,
            status,
            phase,
            step: 0,
            total_steps: 0,
            done_units: 0,
            total_units: 0,
            tokens_per_sec: None,
            eta_s: None,
            attempts: 0,
            max_attempts: 3,
            cancel_requested: false,
            error: None,
            created_at: String::new(),
            started_at: None,
            finished_at: None,
            heartbeat_age_s: None,
            worker: None,
            waiting_for_takeover: false,
            progress: 0.0,
            losses: vec![],
        }
    }

    /// Worked by hand: 2 s a step, 0.5 s an answer, 10 steps a run; the baseline samples 4
    /// answers a run, "inoculated" 8.
    #[test]
    fn work_left_counts_every_unfinished_run() {
        use crate::runs::{JobStatus::*, RunPhase::*};
        let rates = WorkRates {
            step_s: 2.0,
            sample_s: 0.5,
            steps_per_run: 10,
            samples_per_run: vec![("baseline".into(), 4), ("inoculated".into(), 8)],
        };
        let done = run("baseline", Done, Judge);
        // Queued, never started: 10 steps (20 s) and 8 answers (4 s).
        let queued = run("inoculated", Queued, Train);
        // Training at step 6 of 10 with its own estimate of 5 s: 5 s, then 4 answers (2 s).
        let training =
            crate::runs::JobView { step: 6, total_steps: 10, eta_s: Some(5.0), ..run("baseline", Running, Train) };
        // Sampling, 5 of 8 answers left and no estimate yet: 2.5 s.
        let sampling = crate::runs::JobView { done_units: 3, total_units: 8, ..run("inoculated", Running, Sample) };
        assert_eq!(rates.remaining_s(&[done.clone()]), 0.0);
        assert_eq!(rates.remaining_s(&[queued.clone()]), 24.0);
        assert_eq!(rates.remaining_s(&[training.clone()]), 7.0);
        assert_eq!(rates.remaining_s(&[sampling.clone()]), 2.5);
        assert_eq!(rates.remaining_s(&[done, queued, training, sampling]), 33.5);
    }
}

/// A judge's check on the built-in calibration set: answers whose verdict is known
/// (plainly aligned, plainly misaligned, incoherent, refusals, code), judged as an
/// experiment would judge them. "No verdict" (no score, e.g. CODE or REFUSAL) counts as
/// not misaligned, as rates leave such answers out of the misaligned count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeCalibration {
    /// The judge's name (e.g. `betley_misalignment`) and who answered (model and server).
    pub judge: String,
    pub judged_by: String,
    /// The calibration set's version: a changed set is checked again.
    pub set_version: u32,
    pub n: u32,
    /// Answers whose verdict matched the known one.
    pub agree: u32,
    /// Cohen's kappa of the verdicts against the known ones (None when undefined: every
    /// verdict the same).
    pub kappa: Option<f64>,
    /// Answers the judge gave no verdict on.
    pub no_verdict: u32,
    /// Per kind of answer: (kind, n, agree).
    pub kinds: Vec<(String, u32, u32)>,
    /// Each answer the judge got wrong: (id, kind, known verdict, the judge's).
    pub misses: Vec<(String, String, bool, Option<bool>)>,
}

impl JudgeCalibration {
    /// One sentence: "agreed with the known verdict on 31 of 40 answers (78 %), Cohen's kappa 0.52".
    pub fn sentence(&self) -> String {
        let share =
            if self.n > 0 { format!(" ({:.0} %)", 100.0 * self.agree as f64 / self.n as f64) } else { String::new() };
        let kappa = match self.kappa {
            Some(k) => format!("Cohen's kappa {k:.2}"),
            None => "Cohen's kappa undefined (every verdict the same)".into(),
        };
        if self.n > 0 && self.no_verdict == self.n {
            return format!(
                "Judge check ({}, {}): no verdict on any of the {} answers of known verdict (too little of its \
                 answer's probability is on numbers), so it cannot tell a misaligned answer from another; {kappa}.",
                self.judge, self.judged_by, self.n
            );
        }
        let none = if self.no_verdict > 0 { format!("; no verdict on {}", self.no_verdict) } else { String::new() };
        format!(
            "Judge check ({}, {}): agreed with the known verdict on {} of {} answers{share}, {kappa}{none}.",
            self.judge, self.judged_by, self.agree, self.n
        )
    }
}
