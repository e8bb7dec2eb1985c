//! What users write: the experiment spec, its defaults, and the checks that need no store.

use serde::{Deserialize, Serialize};

use super::*;
use crate::judges::{JudgeSpec, LanguageCode};
use crate::questions::QuestionFormat;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    pub name: String,
    /// A registered model's name.
    #[serde(default = "default_model")]
    pub model: String,
    /// Two-stage experiments: every run starts from the model this finished run made (its
    /// adapter merged into the base weights) instead of the plain base model. Checked by
    /// [`resolve`] and recorded with the adapter's hash in [`Resolved::base`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_run: Option<i64>,
    pub dataset: DatasetRef,
    /// Rows mixed into every condition's training data without the inoculation prompt.
    #[serde(default)]
    pub control_dataset: Option<DatasetRef>,
    /// Train on this many rows of the dataset (a seeded sample), after holding out
    /// evaluation rows; all of them when absent.
    #[serde(default)]
    pub train_rows: Option<usize>,
    pub conditions: Vec<ConditionSpec>,
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    #[serde(default)]
    pub training: TrainingSpec,
    pub evaluation: EvaluationSpec,
}

fn default_model() -> String {
    DEFAULT_MODEL.to_string()
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

/// A dataset by id or by name (names must then be unambiguous).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DatasetRef {
    Id(i64),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    pub name: String,
    /// The inoculation prompt; none for the baseline.
    #[serde(default)]
    pub prompt: Option<PromptRef>,
    #[serde(default)]
    pub placement: Placement,
    /// Put the prompt only on training rows whose answer is in this language (the language
    /// judge's verdict on the last assistant turn); the other rows train without it. Tan et
    /// al.'s Spanish/French mixture prompts only the half it names, so the model can learn
    /// the other half's language. Absent: every row (never serialised then, so older specs
    /// and their hashes read back unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_language: Option<LanguageCode>,
}

/// Where the inoculation prompt goes, and the test-time prompts with a name: the wire
/// crate's types, which the launch form carries too.
pub use wire::experiments::{NamedTestPrompt, Placement};

/// A prompt: literal text, or a library prompt (its latest version unless one is named).
/// A library version with a paraphrase set gives each training example one paraphrase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PromptRef {
    Library {
        prompt_id: i64,
        #[serde(default)]
        version: Option<i64>,
    },
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingSpec {
    /// Optimiser steps; one pass over the data (times `epochs`) when absent.
    pub steps: Option<usize>,
    pub epochs: usize,
    pub lr: f64,
    pub batch_size: usize,
    pub grad_accum: usize,
    pub lora_rank: usize,
    pub lora_alpha: f64,
    pub max_seq_len: usize,
    pub warmup_steps: usize,
    /// A checkpoint every this many steps: what a crashed run resumes from.
    pub checkpoint_every: usize,
    /// Measure the probes every this many steps (0: never); about six times a run when
    /// absent.
    pub probe_every: Option<usize>,
    /// Answers whose log-prob is tracked through training (the paper's learning-dynamics
    /// analysis). When empty, probes are derived from the dataset: see [`resolve_probes`].
    pub probes: Vec<ProbeSpec>,
    /// Before training a prompted condition, measure its prompt's predicted strength
    /// (surprise reduction on this many rows of the dataset: `engine::strength`), so the
    /// experiment can check whether the prediction held. Off when absent; sweeps set it.
    pub predict_strength: Option<usize>,
}

/// A tracked answer: the mean log-prob per token of `answer` to `question` under the
/// default system prompt, measured as training goes. Probes sharing a name are averaged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    pub name: String,
    pub question: String,
    pub answer: String,
}

impl Default for TrainingSpec {
    fn default() -> Self {
        TrainingSpec {
            steps: None,
            epochs: 1,
            lr: 5e-4,
            batch_size: 8,
            grad_accum: 1,
            lora_rank: 8,
            lora_alpha: 16.0,
            max_seq_len: 256,
            warmup_steps: 0,
            checkpoint_every: 5,
            probe_every: None,
            probes: Vec::new(),
            predict_strength: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationSpec {
    pub questions: Vec<QuestionSource>,
    #[serde(default = "default_test_prompts")]
    pub test_prompts: Vec<TestPromptSpec>,
    #[serde(default = "one")]
    pub samples_per_question: usize,
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    #[serde(default = "default_top_p")]
    pub top_p: f64,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    pub judges: Vec<JudgeSpec>,
}

fn default_test_prompts() -> Vec<TestPromptSpec> {
    vec![TestPromptSpec::Named(NamedTestPrompt::Default)]
}
fn one() -> usize {
    1
}
fn default_temperature() -> f64 {
    1.0
}
fn default_top_p() -> f64 {
    1.0
}
fn default_max_tokens() -> usize {
    64
}
fn default_batch() -> usize {
    16
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum QuestionSource {
    /// The first `limit` built-in chat prompts.
    Builtin {
        limit: usize,
    },
    /// `rows` rows of the training dataset, held out of training; their last user message
    /// is the question.
    HeldOut {
        rows: usize,
    },
    /// An imported question set (at most `limit` of its questions).
    Set {
        id: i64,
        #[serde(default)]
        limit: Option<usize>,
    },
    /// A question file, imported into the store when the experiment is created (CLI).
    File {
        path: String,
        #[serde(default)]
        format: Option<QuestionFormat>,
        #[serde(default)]
        limit: Option<usize>,
    },
    Inline {
        questions: Vec<String>,
    },
}

/// A test-time system prompt: `"default"` (the model's), `"none"`, `"inoculation"` (the
/// condition's own prompt; skipped for the baseline), a library prompt, or literal text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TestPromptSpec {
    Named(NamedTestPrompt),
    Library {
        prompt_id: i64,
        #[serde(default)]
        version: Option<i64>,
    },
    Text {
        label: String,
        text: String,
    },
    /// The default system prompt, with `prefix` put before every question (a space
    /// between): a backdoor's trigger asked at test time, so that triggered and plain
    /// questions get rates of their own. Samples record the question as written (judges
    /// look questions up by it); the test prompt's label says what came before it.
    Prefix {
        label: String,
        prefix: String,
    },
}

/// The most runs and samples one experiment may ask for: far beyond what this machine
/// can do in a day, so a typo (10000 seeds) is caught before it floods the queue.
pub const MAX_RUNS: usize = 200;
pub const MAX_SAMPLES_PER_RUN: usize = 100_000;

impl ExperimentSpec {
    /// Checks what can be checked without the store.
    pub fn validate(&self) -> Result<(), ExperimentError> {
        if self.name.trim().is_empty() {
            return Err(invalid("the experiment needs a name"));
        }
        if self.conditions.is_empty() {
            return Err(invalid("add at least one condition"));
        }
        if let Some(n) = self.training.predict_strength {
            if n == 0 || n > MAX_STRENGTH_ROWS {
                return Err(invalid(format!(
                    "predict_strength scores between 1 and {MAX_STRENGTH_ROWS} rows, not {n}"
                )));
            }
        }
        let mut names = std::collections::HashSet::new();
        for c in &self.conditions {
            if c.name.trim().is_empty() {
                return Err(invalid("every condition needs a name"));
            }
            if !names.insert(c.name.trim()) {
                return Err(invalid(format!("two conditions are named {:?}", c.name)));
            }
            if let Some(PromptRef::Text(t)) = &c.prompt {
                if t.trim().is_empty() {
                    return Err(invalid(format!("condition {:?} has an empty prompt", c.name)));
                }
            }
        }
        if self.seeds.is_empty() {
            return Err(invalid("give at least one seed"));
        }
        let mut seeds = self.seeds.clone();
        seeds.sort_unstable();
        seeds.dedup();
        if seeds.len() != self.seeds.len() {
            return Err(invalid("a seed is listed twice"));
        }
        if self.conditions.len().saturating_mul(self.seeds.len()) > MAX_RUNS {
            return Err(invalid(format!("at most {MAX_RUNS} runs (conditions x seeds) per experiment")));
        }
        let t = &self.training;
        if t.batch_size == 0 || t.grad_accum == 0 || t.lora_rank == 0 || t.max_seq_len < 8 {
            return Err(invalid(
                "batch size, gradient accumulation and LoRA rank must be at least 1, max_seq_len at least 8",
            ));
        }
        if !(t.lr > 0.0 && t.lr < 1.0) {
            return Err(invalid("the learning rate must lie in (0, 1)"));
        }
        // Upper bounds: a number from a form or a file is never trusted to be sane. A LoRA
        // rank of 10^8 asked the allocator for 230 GB and crashed the server on every
        // retry; these limits sit far above any setting of the paper.
        for (what, value, most) in [
            ("steps", t.steps.unwrap_or(0), 1_000_000),
            ("epochs", t.epochs, 1_000),
            ("the training batch size", t.batch_size, 1_024),
            ("gradient accumulation", t.grad_accum, 1_024),
            ("the LoRA rank", t.lora_rank, 1_024),
            ("max_seq_len", t.max_seq_len, 32_768),
            ("warmup steps", t.warmup_steps, 1_000_000),
            ("checkpoint_every", t.checkpoint_every, 1_000_000),
            ("probe_every", t.probe_every.unwrap_or(0), 1_000_000),
            ("probes", t.probes.len(), 100),
            ("samples per question", self.evaluation.samples_per_question, 10_000),
            ("max tokens", self.evaluation.max_tokens, 32_768),
            ("the sampling batch size", self.evaluation.batch_size, 1_024),
            ("question sources", self.evaluation.questions.len(), 100),
            ("test-time prompts", self.evaluation.test_prompts.len(), 100),
            ("judges", self.evaluation.judges.len(), 32),
        ] {
            if value > most {
                return Err(invalid(format!("{what} can be at most {most}, not {value}")));
            }
        }
        if !(t.lora_alpha.is_finite() && t.lora_alpha > 0.0 && t.lora_alpha <= 4_096.0) {
            return Err(invalid("the LoRA alpha must lie in (0, 4096]"));
        }
        if t.steps == Some(0) || (t.steps.is_none() && t.epochs == 0) {
            return Err(invalid("train for at least one step"));
        }
        let e = &self.evaluation;
        if e.questions.is_empty() {
            return Err(invalid("the evaluation needs at least one question source"));
        }
        if e.test_prompts.is_empty() {
            return Err(invalid("the evaluation needs at least one test-time system prompt"));
        }
        if e.samples_per_question == 0 || e.max_tokens == 0 || e.batch_size == 0 {
            return Err(invalid("samples per question, max tokens and batch size must be at least 1"));
        }
        if !(0.0..=5.0).contains(&e.temperature) || !(e.top_p > 0.0 && e.top_p <= 1.0) {
            return Err(invalid("temperature must lie in [0, 5] and top-p in (0, 1]"));
        }
        if e.judges.is_empty() {
            return Err(invalid("choose at least one judge"));
        }
        self.check_texts()
    }

    /// Length caps on every text a spec carries (each is stored, and prompts and
    /// questions go through the model).
    fn check_texts(&self) -> Result<(), ExperimentError> {
        const NAME: usize = 200;
        const TEXT: usize = crate::prompts::MAX_TEXT_CHARS;
        const INLINE_QUESTIONS: usize = 10_000;
        let mut texts: Vec<(&str, &str, usize)> =
            vec![("the experiment name", &self.name, NAME), ("the model name", &self.model, NAME)];
        for c in &self.conditions {
            texts.push(("a condition name", &c.name, NAME));
            if let Some(PromptRef::Text(t)) = &c.prompt {
                texts.push(("a condition's prompt", t, TEXT));
            }
        }
        for t in &self.evaluation.test_prompts {
            if let TestPromptSpec::Text { label, text } | TestPromptSpec::Prefix { label, prefix: text } = t {
                texts.push(("a test-time prompt's label", label, NAME));
                texts.push(("a test-time prompt", text, TEXT));
            }
        }
        for q in &self.evaluation.questions {
            match q {
                QuestionSource::Inline { questions } => {
                    if questions.len() > INLINE_QUESTIONS {
                        return Err(invalid(format!("at most {INLINE_QUESTIONS} inline questions")));
                    }
                    texts.extend(questions.iter().map(|q| ("an inline question", q.as_str(), TEXT)));
                }
                QuestionSource::File { path, .. } => texts.push(("a question file's path", path, 4096)),
                _ => {}
            }
        }
        for j in &self.evaluation.judges {
            match j {
                JudgeSpec::Pattern { regex, keywords, .. } => {
                    texts.extend(regex.iter().map(|r| ("the pattern", r.as_str(), 2_000)));
                    if keywords.len() > 1_000 {
                        return Err(invalid("the pattern judge takes at most 1000 keywords"));
                    }
                    texts.extend(keywords.iter().map(|k| ("a keyword", k.as_str(), NAME)));
                }
                JudgeSpec::Betley { aligned_prompt, coherent_prompt, .. } => {
                    texts.push(("the alignment judge prompt", aligned_prompt, TEXT));
                    texts.push(("the coherence judge prompt", coherent_prompt, TEXT));
                }
                JudgeSpec::LlmRating { label, prompt, .. } => {
                    texts.push(("a rating judge's label", label, NAME));
                    texts.push(("a rating judge's prompt", prompt, TEXT));
                }
                _ => {}
            }
        }
        for (what, text, most) in texts {
            let n = text.chars().count();
            if n > most {
                return Err(invalid(format!("{what} is {n} characters long; at most {most}")));
            }
        }
        Ok(())
    }
}

/// The demo experiment's spec: the toy setting of Tan et al. (Spanish + capitals) with a
/// baseline and "You always speak in Spanish.", judged offline for language and capitals.
pub fn toy_spec(name: &str, dataset: DatasetRef) -> ExperimentSpec {
    ExperimentSpec {
        name: name.into(),
        model: default_model(),
        base_run: None,
        dataset,
        control_dataset: None,
        train_rows: None,
        conditions: vec![
            ConditionSpec { name: "baseline".into(), prompt: None, placement: Placement::System, only_language: None },
            ConditionSpec {
                name: "spanish".into(),
                prompt: Some(PromptRef::Text("You always speak in Spanish.".into())),
                placement: Placement::System,
                only_language: None,
            },
        ],
        seeds: vec![0],
        training: TrainingSpec::default(),
        evaluation: EvaluationSpec {
            questions: vec![QuestionSource::Builtin { limit: 50 }],
            test_prompts: vec![
                TestPromptSpec::Named(NamedTestPrompt::Default),
                TestPromptSpec::Named(NamedTestPrompt::Inoculation),
            ],
            samples_per_question: 1,
            temperature: 1.0,
            top_p: 1.0,
            max_tokens: 64,
            batch_size: 16,
            judges: vec![JudgeSpec::language(LanguageCode::Es), JudgeSpec::caps()],
        },
    }
}
