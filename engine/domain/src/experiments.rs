//! Experiments: a training dataset x model x conditions (baseline and inoculation prompts)
//! x seeds, with an evaluation plan (questions, test-time system prompts, sampling
//! settings, judges).
//!
//! Users write an [`ExperimentSpec`] (a TOML file for `inoculab run`, the launch form in the
//! browser). [`create`] resolves every reference in it (prompt texts and versions, dataset
//! and model hashes, the full question list) into a [`Resolved`] experiment, stores that as
//! JSON with its hash, and enqueues one run per condition x seed, all in one transaction.
//! The worker reads only the resolved form: editing a prompt or importing a dataset later
//! never changes what an existing experiment runs. Its queries are `store::experiments`
//! (and, for runs' curves and verdict counts, `store::runs` and `store::judgements`).

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::datasets::{self, Capitalisation, GeneratorSpec, Language, Role, Row};
use crate::judges::{JudgeSpec, LanguageCode};
use crate::questions::{self, Question, QuestionFormat};
use crate::stats::Proportion;
use crate::store::{
    self,
    experiments::{NewExperiment, NewRun, NewTestPrompt},
};
use crate::{jobs, prompts, Store};

/// The name of the embedded default model in the registry.
pub const DEFAULT_MODEL: &str = "SmolLM2-135M-Instruct";

/// The most dataset rows a prompt-strength measurement scores, here (a run's
/// `training.predict_strength`) and in the designer's meter (`strength::MAX_ROWS`). It lives
/// here because `strength` builds on experiments, not the other way round.
pub const MAX_STRENGTH_ROWS: usize = 512;

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
}

/// Where the inoculation prompt goes in each training example.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    #[default]
    System,
    UserPrefix,
}

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamedTestPrompt {
    Default,
    None,
    Inoculation,
}

/// What the worker runs: the spec with every reference resolved to content and hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolved {
    pub spec: ExperimentSpec,
    pub model: ResolvedModel,
    pub dataset: ResolvedDataset,
    pub control_dataset: Option<ResolvedDataset>,
    /// Indices of the dataset rows trained on (held-out rows excluded), in order.
    pub train_rows: Vec<usize>,
    pub conditions: Vec<ResolvedCondition>,
    pub test_prompts: Vec<ResolvedTestPrompt>,
    pub questions: Vec<Question>,
    pub judges: Vec<JudgeSpec>,
    /// Tracked through training; absent from experiments stored before probes existed.
    #[serde(default)]
    pub probes: Vec<ProbeSpec>,
    /// The finished run a two-stage experiment starts from; `None` for the plain base model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<ResolvedBase>,
}

/// The run a two-stage experiment starts from, and every adapter merged into the base
/// weights to rebuild its model, oldest first: a base run that itself started from another
/// run brings that run's adapters along, so any depth of stages is reproducible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedBase {
    pub run_id: i64,
    pub experiment_id: i64,
    pub experiment_name: String,
    pub condition: String,
    pub seed: i64,
    pub adapters: Vec<BaseAdapter>,
}

/// One stage's adapter: where it lies and what it was when the experiment was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaseAdapter {
    pub run_id: i64,
    /// The PEFT folder, relative to the data directory.
    pub dir: String,
    /// [`adapter_sha256`] of the folder; the worker refuses an adapter that changed since.
    pub sha256: String,
}

/// The identity of a PEFT adapter folder: sha256 over the names and bytes of
/// `adapter_config.json` and `adapter_model.safetensors` (other files, such as a README,
/// do not change the weights and are left out).
pub fn adapter_sha256(dir: &std::path::Path) -> std::io::Result<String> {
    let mut h = Sha256::new();
    for name in ["adapter_config.json", "adapter_model.safetensors"] {
        let mut f = std::fs::File::open(dir.join(name))?;
        h.update(name.as_bytes());
        h.update([0u8]);
        std::io::copy(&mut f, &mut h)?;
    }
    Ok(hex::encode(h.finalize()))
}

/// Checks that a run can be a second stage's starting point (it exists, finished, was
/// trained on the same model, and its adapter is on disk) and records its adapter chain.
async fn resolve_base(store: &Store, run_id: i64, model: &ResolvedModel) -> Result<ResolvedBase, ExperimentError> {
    let store::runs::RunOrigin { experiment_id, condition, seed, adapter_dir, status, model_id, experiment_name } =
        store::runs::origin(store, run_id)
            .await?
            .ok_or_else(|| invalid(format!("base run {run_id} does not exist")))?;
    let what = format!("run {run_id} ({experiment_name:?}, condition {condition:?}, seed {seed})");
    if status != "done" {
        return Err(invalid(format!(
            "{what} has not finished (it is {status}); a second stage can only start from a finished run"
        )));
    }
    let (base, _, _) = get(store, experiment_id).await?;
    if model_id != model.id || base.model.sha256 != model.sha256 {
        return Err(invalid(format!(
            "{what} was trained on model {:?}, but this experiment uses {:?}; a second stage must use the same model",
            base.model.name, model.name
        )));
    }
    let dir = adapter_dir.ok_or_else(|| invalid(format!("{what} has no adapter recorded")))?;
    let path = store.data_dir().join(&dir);
    let sha256 = adapter_sha256(&path)
        .map_err(|e| invalid(format!("the adapter of {what} is missing or unreadable ({}: {e})", path.display())))?;
    let mut adapters = base.base.map(|b| b.adapters).unwrap_or_default();
    adapters.push(BaseAdapter { run_id, dir, sha256 });
    Ok(ResolvedBase { run_id, experiment_id, experiment_name, condition, seed, adapters })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedModel {
    pub id: i64,
    pub name: String,
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedDataset {
    pub id: i64,
    pub name: String,
    pub content_hash: String,
    pub row_count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedCondition {
    pub name: String,
    /// Empty for the baseline; several for a paraphrase set (one per example, seeded).
    pub prompts: Vec<String>,
    /// The library prompt version, when the prompt came from the library.
    pub prompt_version_id: Option<i64>,
    pub placement: Placement,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedTestPrompt {
    /// Stored with each sample: `default`, `none`, `inoculation`, a library prompt's
    /// `NAME vN` (experiments made before it: `prompt:ID@vN`), or the user's label.
    pub label: String,
    pub kind: TestPromptKind,
    /// Added after the runs finished (the elicitation check, [`add_test_prompts`]); stored
    /// beside the spec, not in it. Never serialised when false, so specs stored before it
    /// existed, and their hashes, read back unchanged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub added: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "text", rename_all = "snake_case")]
pub enum TestPromptKind {
    Default,
    None,
    Inoculation,
    Text(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error("{0}")]
    Invalid(String),
    #[error("experiment {0} does not exist")]
    NotFound(i64),
    #[error("{0}")]
    Dataset(#[from] datasets::DatasetError),
    #[error("{0}")]
    Prompt(#[from] prompts::PromptError),
    #[error("{0}")]
    Questions(#[from] questions::QuestionError),
    #[error("stored experiment is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

fn invalid(message: impl Into<String>) -> ExperimentError {
    ExperimentError::Invalid(message.into())
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
        if self.conditions.len() * self.seeds.len() > MAX_RUNS {
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
        Ok(())
    }
}

async fn resolve_dataset(store: &Store, r: &DatasetRef) -> Result<ResolvedDataset, ExperimentError> {
    let summary = match r {
        DatasetRef::Id(id) => datasets::get(store, *id).await?,
        DatasetRef::Name(name) => {
            let all = datasets::list(store).await?;
            let matching: Vec<_> = all.into_iter().filter(|d| d.name == *name).collect();
            match matching.len() {
                0 => return Err(invalid(format!("no dataset is named {name:?}"))),
                1 => matching.into_iter().next().expect("one"),
                n => return Err(invalid(format!("{n} datasets are named {name:?}; use its id"))),
            }
        }
    };
    Ok(ResolvedDataset {
        id: summary.id,
        name: summary.name,
        content_hash: summary.content_hash,
        row_count: summary.row_count,
    })
}

/// A library prompt at one version, as an experiment uses it.
struct LibraryPrompt {
    name: String,
    /// The version's text, then its distinct non-empty paraphrases.
    texts: Vec<String>,
    version_id: i64,
    version: i64,
}

/// A library prompt's text (and paraphrases) at a version, with the version's id.
async fn resolve_library_prompt(
    store: &Store,
    prompt_id: i64,
    version: Option<i64>,
) -> Result<LibraryPrompt, ExperimentError> {
    let prompt = prompts::get(store, prompt_id).await?;
    let v = match version {
        Some(n) => prompts::version(store, prompt_id, n).await?,
        None => prompt.latest().clone(),
    };
    let mut texts = vec![v.text.clone()];
    texts.extend(v.paraphrases.iter().filter(|p| !p.trim().is_empty() && **p != v.text).cloned());
    Ok(LibraryPrompt { name: prompt.name, texts, version_id: v.id, version: v.version })
}

/// How many problems a derived probe averages over: two smooth one answer's quirks, and
/// keep a measurement (every probe, forward only) to a few seconds on a CPU.
const PROBE_ITEMS: usize = 2;

/// The probes a run tracks. The spec's own, if it lists any. Otherwise, for a generated
/// dataset, the same problems answered with and without each of its traits (plain English,
/// each answer language, and their ALL-CAPS forms when the data is capitalised): the paper's
/// learning-dynamics view, where an inoculated trait's log-prob stays flat. For any other
/// dataset, the answers of a few held-out (or else training) rows.
async fn resolve_probes(
    store: &Store,
    spec: &ExperimentSpec,
    dataset_id: i64,
    rows: &[Row],
    held_out: &[usize],
    train_rows: &[usize],
) -> Result<Vec<ProbeSpec>, ExperimentError> {
    if spec.training.probe_every == Some(0) {
        return Ok(vec![]);
    }
    if !spec.training.probes.is_empty() {
        for p in &spec.training.probes {
            if p.name.trim().is_empty() || p.question.trim().is_empty() || p.answer.trim().is_empty() {
                return Err(invalid("a probe needs a name, a question and an answer"));
            }
        }
        return Ok(spec.training.probes.clone());
    }
    let summary = datasets::get(store, dataset_id).await?;
    let generated = match summary.source {
        datasets::DatasetSource::Generated => serde_json::from_value::<GeneratorSpec>(summary.recipe).ok(),
        _ => None,
    };
    if let Some(g) = generated {
        // Persona datasets (two-stage stage 1) carry their traits per persona.
        let any_caps = g.capitalisation == Capitalisation::AllCaps
            || g.personas.iter().any(|p| p.weight > 0 && p.capitalisation == Capitalisation::AllCaps);
        let caps_options: &[bool] = if any_caps { &[false, true] } else { &[false] };
        let mut languages = vec![Language::En];
        let traits = g
            .languages
            .iter()
            .filter(|s| s.weight > 0)
            .map(|s| s.language)
            .chain(g.personas.iter().filter(|p| p.weight > 0).map(|p| p.language));
        for l in traits {
            if !languages.contains(&l) {
                languages.push(l);
            }
        }
        // A seed of its own, so the probe problems are not the training rows.
        let problems = datasets::generate::parallel_answers(g.seed ^ 0x5eed_0f_9b0be, PROBE_ITEMS);
        let mut out = Vec::new();
        for &caps in caps_options {
            for &lang in &languages {
                let name =
                    if caps { format!("{}, ALL CAPS", lang.english_name()) } else { lang.english_name().to_string() };
                for p in &problems {
                    let answer = p.answers.iter().find(|(l, _)| *l == lang).map(|(_, a)| a.clone()).unwrap_or_default();
                    let answer = if caps { answer.to_uppercase() } else { answer };
                    out.push(ProbeSpec { name: name.clone(), question: p.question.clone(), answer });
                }
            }
        }
        return Ok(out);
    }
    let source = if held_out.is_empty() { train_rows } else { held_out };
    Ok(source
        .iter()
        .filter_map(|&i| {
            let row = &rows[i];
            let question = row_question(row)?;
            let answer = row.messages.iter().rev().find(|m| m.role == Role::Assistant)?;
            Some(ProbeSpec { name: "dataset answer".into(), question: question.into(), answer: answer.content.clone() })
        })
        .take(PROBE_ITEMS)
        .collect())
}

/// The last user message of a row: the question a held-out row asks.
fn row_question(row: &Row) -> Option<&str> {
    row.messages.iter().rev().find(|m| m.role == Role::User).map(|m| m.content.as_str())
}

/// One test-time prompt as content, with the library version it came from (if any).
async fn resolve_test_prompt(
    store: &Store,
    t: &TestPromptSpec,
) -> Result<(ResolvedTestPrompt, Option<i64>), ExperimentError> {
    let plain = |label: &str, kind| (ResolvedTestPrompt { label: label.into(), kind, added: false }, None);
    Ok(match t {
        TestPromptSpec::Named(NamedTestPrompt::Default) => plain("default", TestPromptKind::Default),
        TestPromptSpec::Named(NamedTestPrompt::None) => plain("none", TestPromptKind::None),
        TestPromptSpec::Named(NamedTestPrompt::Inoculation) => plain("inoculation", TestPromptKind::Inoculation),
        TestPromptSpec::Library { prompt_id, version } => {
            let LibraryPrompt { name, texts, version_id, version: v } =
                resolve_library_prompt(store, *prompt_id, *version).await?;
            // Charts and tables show the label, so it is the prompt's name and version; the
            // id is added only when another prompt has the same name.
            let namesakes = store::prompts::count_named(store, &name).await?;
            let label = if namesakes > 1 { format!("{name} v{v} (#{prompt_id})") } else { format!("{name} v{v}") };
            (ResolvedTestPrompt { label, kind: TestPromptKind::Text(texts[0].clone()), added: false }, Some(version_id))
        }
        TestPromptSpec::Text { label, text } => {
            if label.trim().is_empty() || text.trim().is_empty() {
                return Err(invalid("a test-time prompt needs a label and a text"));
            }
            if ["default", "none", "inoculation"].contains(&label.trim()) {
                return Err(invalid(format!("the label {label:?} is reserved")));
            }
            plain(label.trim(), TestPromptKind::Text(text.trim().into()))
        }
    })
}

/// Resolves a spec against the store (see the module comment). Files named by
/// [`QuestionSource::File`] are imported as question sets on the way.
pub async fn resolve(store: &Store, spec: &ExperimentSpec) -> Result<Resolved, ExperimentError> {
    spec.validate()?;
    let model = store::models::identity_by_name(store, &spec.model).await?;
    let (id, name, path, sha256) =
        model.ok_or_else(|| invalid(format!("no model is registered as {:?}; see the Models page", spec.model)))?;
    if !std::path::Path::new(&path).exists() {
        return Err(invalid(format!("model {name:?} is not ready: {path} is missing")));
    }
    let model = ResolvedModel { id, name, path, sha256 };
    let base = match spec.base_run {
        Some(run_id) => Some(resolve_base(store, run_id, &model).await?),
        None => None,
    };

    let dataset = resolve_dataset(store, &spec.dataset).await?;
    let control_dataset = match &spec.control_dataset {
        Some(r) => Some(resolve_dataset(store, r).await?),
        None => None,
    };
    let rows = datasets::all_rows(store, dataset.id).await?;

    // Held-out rows come from a fixed shuffle, so the same spec holds out the same rows.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(0x1c0ffee));
    let mut held_out: Vec<usize> = Vec::new();
    let mut questions: Vec<Question> = Vec::new();
    for source in &spec.evaluation.questions {
        match source {
            QuestionSource::Builtin { limit } => {
                if *limit == 0 {
                    return Err(invalid("the built-in question limit must be at least 1"));
                }
                questions.extend(questions::builtin_questions(*limit));
            }
            QuestionSource::HeldOut { rows: n } => {
                if !held_out.is_empty() {
                    return Err(invalid("hold out rows only once"));
                }
                if *n == 0 || *n >= rows.len() {
                    return Err(invalid(format!(
                        "hold out between 1 and {} rows of {:?} (it has {})",
                        rows.len().saturating_sub(1),
                        dataset.name,
                        rows.len()
                    )));
                }
                held_out = order[..*n].to_vec();
                held_out.sort_unstable();
                for &i in &held_out {
                    let q = row_question(&rows[i])
                        .ok_or_else(|| invalid(format!("held-out row {} has no user message", i + 1)))?;
                    questions.push(Question::plain(format!("row-{}", i + 1), q));
                }
            }
            QuestionSource::Set { id, limit } => {
                let (_, qs) = questions::get_question_set(store, *id).await?;
                questions.extend(qs.into_iter().take(limit.unwrap_or(usize::MAX)));
            }
            QuestionSource::File { path, format, limit } => {
                let text = std::fs::read_to_string(path).map_err(|e| invalid(format!("cannot read {path}: {e}")))?;
                let format = format.unwrap_or_else(|| questions::detect_format(path, &text));
                let qs = questions::parse_questions(&text, format, path)?;
                let name = std::path::Path::new(path).file_name().map(|n| n.to_string_lossy().into_owned());
                questions::import_question_set(store, name.as_deref().unwrap_or(path), format, &qs).await?;
                questions.extend(qs.into_iter().take(limit.unwrap_or(usize::MAX)));
            }
            QuestionSource::Inline { questions: qs } => {
                for (i, q) in qs.iter().enumerate().filter(|(_, q)| !q.trim().is_empty()) {
                    questions.push(Question::plain(format!("inline-{}", i + 1), q.trim()));
                }
            }
        }
    }
    if questions.is_empty() {
        return Err(invalid("the evaluation has no questions"));
    }
    let mut seen = std::collections::HashSet::new();
    for q in &questions {
        if !seen.insert((q.key.as_str(), q.paraphrase)) {
            return Err(invalid(format!("question {:?} appears twice (two sources give the same questions?)", q.key)));
        }
    }

    let mut train_rows: Vec<usize> = order.iter().copied().filter(|i| held_out.binary_search(i).is_err()).collect();
    if let Some(n) = spec.train_rows {
        if n == 0 || n > train_rows.len() {
            return Err(invalid(format!("train_rows must lie in 1..={} for this dataset", train_rows.len())));
        }
        train_rows.truncate(n);
    }
    train_rows.sort_unstable();

    let mut conditions = Vec::new();
    for c in &spec.conditions {
        let (prompts, prompt_version_id) = match &c.prompt {
            None => (vec![], None),
            Some(PromptRef::Text(t)) => (vec![t.trim().to_string()], None),
            Some(PromptRef::Library { prompt_id, version }) => {
                let p = resolve_library_prompt(store, *prompt_id, *version).await?;
                (p.texts, Some(p.version_id))
            }
        };
        conditions.push(ResolvedCondition {
            name: c.name.trim().to_string(),
            prompts,
            prompt_version_id,
            placement: c.placement,
        });
    }

    let mut test_prompts = Vec::new();
    for t in &spec.evaluation.test_prompts {
        test_prompts.push(resolve_test_prompt(store, t).await?.0);
    }
    let mut labels = std::collections::HashSet::new();
    if !test_prompts.iter().all(|t| labels.insert(t.label.clone())) {
        return Err(invalid("a test-time prompt is listed twice"));
    }

    // Multiple-choice judges given no questions take them from the plan's question sets.
    let mut judges = spec.evaluation.judges.clone();
    for j in &mut judges {
        if let JudgeSpec::MultipleChoice { questions: qs } = j {
            if qs.is_empty() {
                *qs = questions.iter().filter_map(|q| q.choice.clone()).collect();
                if qs.is_empty() {
                    return Err(invalid("the multiple-choice judge needs a multiple-choice question set"));
                }
            }
        }
        j.build(None).map(|_| ()).or_else(|e| match e {
            // LLM judges on the local model are built by the worker, which has the model.
            crate::judges::JudgeError::Config(m) if m.contains("local judge model") => Ok(()),
            e => Err(invalid(format!("judge: {e}"))),
        })?;
    }

    let probes = resolve_probes(store, spec, dataset.id, &rows, &held_out, &train_rows).await?;
    let resolved = Resolved {
        spec: spec.clone(),
        model,
        dataset,
        control_dataset,
        train_rows,
        conditions,
        test_prompts,
        questions,
        judges,
        probes,
        base,
    };
    let per_run = resolved.samples_per_run(resolved.conditions.iter().any(|c| !c.prompts.is_empty()));
    if per_run > MAX_SAMPLES_PER_RUN {
        return Err(invalid(format!("{per_run} samples per run; at most {MAX_SAMPLES_PER_RUN}")));
    }
    Ok(resolved)
}

impl Resolved {
    /// The test-time prompts that apply to a condition (no "inoculation" for a baseline).
    pub fn test_prompts_for(&self, condition: &ResolvedCondition) -> Vec<&ResolvedTestPrompt> {
        self.test_prompts
            .iter()
            .filter(|t| !(t.kind == TestPromptKind::Inoculation && condition.prompts.is_empty()))
            .collect()
    }

    /// Samples per question (a question's own count wins).
    pub fn samples_for(&self, q: &Question) -> usize {
        q.samples.map(|n| n as usize).unwrap_or(self.spec.evaluation.samples_per_question).max(1)
    }

    fn samples_per_run(&self, inoculated: bool) -> usize {
        let per_prompt: usize = self.questions.iter().map(|q| self.samples_for(q)).sum();
        let prompts = self.test_prompts.iter().filter(|t| inoculated || t.kind != TestPromptKind::Inoculation).count();
        per_prompt * prompts
    }

    /// Optimiser steps per run.
    pub fn steps_per_run(&self) -> usize {
        let t = &self.spec.training;
        let control = self.control_dataset.as_ref().map(|d| d.row_count as usize).unwrap_or(0);
        t.steps.unwrap_or_else(|| (self.train_rows.len() + control).div_ceil(t.batch_size * t.grad_accum) * t.epochs)
    }

    /// Samples each condition's run draws.
    pub fn samples_per_condition(&self) -> Vec<usize> {
        self.conditions.iter().map(|c| self.samples_per_run(!c.prompts.is_empty())).collect()
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRow {
    pub condition: String,
    pub prompt: Option<String>,
    pub paraphrases: usize,
    pub seeds: Vec<u64>,
    pub test_prompts: Vec<String>,
    pub samples_per_run: usize,
}

/// Default costs when nothing was measured yet: a 135M-model LoRA step of 8 short rows and
/// sampling with a merged adapter at batch 16-40, on a 2-core VM (the demo measured
/// 147-162 tokens/s; see BENCHMARKS.md), rounded down.
const DEFAULT_STEP_S: f64 = 10.0;
const DEFAULT_SAMPLE_TOKENS_PER_S: f64 = 120.0;

pub async fn plan(store: &Store, resolved: &Resolved) -> Result<Plan, ExperimentError> {
    let steps = resolved.steps_per_run();
    let per_condition = resolved.samples_per_condition();
    let seeds = &resolved.spec.seeds;
    let matrix: Vec<PlanRow> = resolved
        .conditions
        .iter()
        .zip(&per_condition)
        .map(|(c, n)| PlanRow {
            condition: c.name.clone(),
            prompt: c.prompts.first().cloned(),
            paraphrases: c.prompts.len(),
            seeds: seeds.clone(),
            test_prompts: resolved.test_prompts_for(c).iter().map(|t| t.label.clone()).collect(),
            samples_per_run: *n,
        })
        .collect();
    let samples: usize = per_condition.iter().sum::<usize>() * seeds.len();
    let runs = resolved.conditions.len() * seeds.len();

    // Throughput measured on this machine for this model: seconds per step (at a similar
    // batch size) and sampled tokens per second.
    let measured = store::runs::measured_speed(store, resolved.model.id).await?;
    let bs_ratio = resolved.spec.training.batch_size as f64 * resolved.spec.training.grad_accum as f64 / 8.0;
    let (step_s, basis_train) = match measured.0 {
        Some(s) => (s, "measured training speed"),
        None => (DEFAULT_STEP_S * bs_ratio, "default training speed"),
    };
    let (tok_s, basis_sample) = match measured.1 {
        Some(t) => (t, "measured sampling speed"),
        None => (DEFAULT_SAMPLE_TOKENS_PER_S, "default sampling speed"),
    };
    // Answers stop early on average; half of max_tokens is a fair guess for short chats.
    let sample_tokens = samples as f64 * resolved.spec.evaluation.max_tokens as f64 * 0.6;
    let estimate_s = runs as f64 * steps as f64 * step_s + sample_tokens / tok_s;
    Ok(Plan {
        runs,
        steps_per_run: steps,
        questions: resolved.questions.len(),
        samples,
        matrix,
        estimate_s,
        estimate_basis: format!("{basis_train} {step_s:.1} s/step, {basis_sample} {tok_s:.0} tokens/s"),
    })
}

/// Stores a resolved experiment and enqueues its runs (conditions x seeds), atomically.
pub async fn create(store: &Store, resolved: &Resolved) -> Result<i64, ExperimentError> {
    let json = serde_json::to_string(resolved).expect("resolved experiments serialise");
    let hash = hex::encode(Sha256::digest(json.as_bytes()));
    let steps = resolved.steps_per_run() as i64;
    let per_condition = resolved.samples_per_condition();
    let mut runs = Vec::new();
    for (ci, c) in resolved.conditions.iter().enumerate() {
        for &seed in &resolved.spec.seeds {
            runs.push(NewRun {
                condition_idx: ci as i64,
                condition: &c.name,
                seed: seed as i64,
                total_steps: steps,
                total_units: per_condition[ci] as i64,
            });
        }
    }
    let experiment = NewExperiment {
        name: resolved.spec.name.trim(),
        spec: &json,
        spec_hash: &hash,
        model_id: resolved.model.id,
        dataset_id: resolved.dataset.id,
    };
    Ok(store::experiments::create(store, &experiment, &runs).await?)
}

/// An experiment as the list shows it: the store's row type.
pub use crate::store::experiments::ExperimentSummary;

pub async fn list(store: &Store) -> Result<Vec<ExperimentSummary>, ExperimentError> {
    Ok(store::experiments::list(store).await?)
}

/// The stored resolved experiment, with its hash and creation time.
pub async fn get(store: &Store, id: i64) -> Result<(Resolved, String, String), ExperimentError> {
    let row = store::experiments::get(store, id).await?;
    let (json, hash, created_at) = row.ok_or(ExperimentError::NotFound(id))?;
    let mut resolved: Resolved =
        serde_json::from_str(&json).map_err(|e| ExperimentError::Corrupt(format!("experiment {id}: {e}")))?;
    resolved.test_prompts.extend(added_test_prompts(store, id).await?);
    Ok((resolved, hash, created_at))
}

/// The test-time prompts added after the fact, in the order they were added.
async fn added_test_prompts(store: &Store, id: i64) -> Result<Vec<ResolvedTestPrompt>, ExperimentError> {
    let rows = store::experiments::added_test_prompts(store, id).await?;
    rows.into_iter()
        .map(|(label, kind, text)| {
            let kind = match (kind.as_str(), text) {
                ("default", _) => TestPromptKind::Default,
                ("none", _) => TestPromptKind::None,
                ("inoculation", _) => TestPromptKind::Inoculation,
                ("text", Some(t)) => TestPromptKind::Text(t),
                (k, _) => {
                    return Err(ExperimentError::Corrupt(format!(
                        "experiment {id}: test prompt {label:?} of kind {k:?}"
                    )))
                }
            };
            Ok(ResolvedTestPrompt { label, kind, added: true })
        })
        .collect()
}

/// What [`add_test_prompts`] did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddedTestPrompts {
    /// The new prompts' labels, as samples will carry them.
    pub labels: Vec<String>,
    /// Finished runs put back in the queue to sample and judge under them.
    pub requeued: u64,
    /// Runs that had failed or were cancelled: they get the new prompts when retried.
    pub not_requeued: u64,
}

/// The elicitation check: evaluates a finished experiment under more test-time prompts.
/// The prompts are stored beside the spec (which, with its hash, stays what was launched)
/// and every finished run goes back in the queue; the worker finds its adapter trained
/// and its earlier samples and verdicts stored, so it samples and judges only the new
/// (test prompt, question, sample) items. Refused while any run is queued or running (a
/// run in flight would finish without them, and be marked done as if it had them); a
/// label the experiment already has is an error. All or nothing: one transaction.
pub async fn add_test_prompts(
    store: &Store,
    experiment_id: i64,
    prompts: &[TestPromptSpec],
) -> Result<AddedTestPrompts, ExperimentError> {
    if prompts.is_empty() {
        return Err(invalid("choose or write at least one test-time prompt to add"));
    }
    let (resolved, _, _) = get(store, experiment_id).await?;
    let mut labels: std::collections::HashSet<String> = resolved.test_prompts.iter().map(|t| t.label.clone()).collect();
    let mut new = Vec::new();
    for t in prompts {
        let (tp, version_id) = resolve_test_prompt(store, t).await?;
        if !labels.insert(tp.label.clone()) {
            return Err(invalid(format!(
                "the experiment already has a test-time prompt labelled {:?}; give this one another label",
                tp.label
            )));
        }
        if tp.kind == TestPromptKind::Inoculation && resolved.conditions.iter().all(|c| c.prompts.is_empty()) {
            return Err(invalid("no condition was trained with a prompt, so there is no inoculation prompt to give"));
        }
        new.push((tp, version_id));
    }
    let mut extended = resolved.clone();
    extended.test_prompts.extend(new.iter().map(|(t, _)| t.clone()));
    let per_run = extended.samples_per_run(extended.conditions.iter().any(|c| !c.prompts.is_empty()));
    if per_run > MAX_SAMPLES_PER_RUN {
        return Err(invalid(format!("{per_run} samples per run; at most {MAX_SAMPLES_PER_RUN}")));
    }

    let mut tx = store.begin().await?;
    // Written first, so this transaction holds SQLite's write lock before it reads the
    // jobs' state: no worker can claim, nor a user retry, a run between the check and the
    // requeue (a read-then-write transaction could also fail to upgrade its lock).
    let start = store::experiments::next_test_prompt_position(&mut tx, experiment_id).await?;
    for (i, (t, version_id)) in new.iter().enumerate() {
        let (kind, text) = match &t.kind {
            TestPromptKind::Default => ("default", None),
            TestPromptKind::None => ("none", None),
            TestPromptKind::Inoculation => ("inoculation", None),
            TestPromptKind::Text(s) => ("text", Some(s.as_str())),
        };
        let row =
            NewTestPrompt { position: start + i as i64, label: &t.label, kind, text, prompt_version_id: *version_id };
        store::experiments::insert_test_prompt(&mut tx, experiment_id, &row).await.map_err(|e| match e {
            // Another request added the same label since the check above.
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                invalid(format!("the experiment already has a test-time prompt labelled {:?}", t.label))
            }
            e => e.into(),
        })?;
    }
    let active = jobs::active_in_experiment(&mut tx, experiment_id).await?;
    if active > 0 {
        // Dropping the transaction rolls the inserts back.
        return Err(invalid(format!(
            "{active} run(s) of this experiment are still queued or running; add test-time prompts once every run has finished (or cancel them first)"
        )));
    }
    let requeued = jobs::requeue_done(&mut tx, experiment_id).await?;
    let others = store::experiments::unfinished_jobs(&mut tx, experiment_id).await?;
    tx.commit().await?;
    Ok(AddedTestPrompts {
        labels: new.into_iter().map(|(t, _)| t.label).collect(),
        requeued,
        not_requeued: others as u64,
    })
}

/// A finished run that a second stage can start from (it has an adapter): the store's row
/// type.
pub use crate::store::runs::FinishedRun;

/// Every finished run with an adapter, newest first: the launch form's "start from" choices.
pub async fn finished_runs(store: &Store) -> Result<Vec<FinishedRun>, ExperimentError> {
    Ok(store::runs::finished_with_adapter(store).await?)
}

/// One run's series for one probe: (step, mean log-prob per token), step 0 before training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeCurve {
    pub run_id: i64,
    pub condition: String,
    pub seed: i64,
    pub probe: String,
    pub points: Vec<(i64, f64)>,
}

/// Every run's tracked log-probs, by condition, seed and probe name, in one query for all
/// runs.
pub async fn probe_curves(store: &Store, experiment_id: i64) -> Result<Vec<ProbeCurve>, ExperimentError> {
    let rows = store::runs::probe_points(store, experiment_id).await?;
    let mut out: Vec<ProbeCurve> = Vec::new();
    for (run_id, condition, seed, probe, step, logprob) in rows {
        match out.last_mut() {
            Some(c) if c.run_id == run_id && c.probe == probe => c.points.push((step, logprob)),
            _ => out.push(ProbeCurve { run_id, condition, seed, probe, points: vec![(step, logprob)] }),
        }
    }
    Ok(out)
}

/// Every run's training loss, (run id, condition, seed, [(step, loss)]), in one query.
pub async fn loss_curves(
    store: &Store,
    experiment_id: i64,
) -> Result<Vec<(i64, String, i64, Vec<(i64, f64)>)>, ExperimentError> {
    let rows = store::runs::loss_points(store, experiment_id).await?;
    let mut out: Vec<(i64, String, i64, Vec<(i64, f64)>)> = Vec::new();
    for (run_id, condition, seed, step, loss) in rows {
        match out.last_mut() {
            Some(c) if c.0 == run_id => c.3.push((step, loss)),
            _ => out.push((run_id, condition, seed, vec![(step, loss)])),
        }
    }
    Ok(out)
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
    pub rate: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub mean_score: Option<f64>,
}

/// Counts for one (condition, seed, test prompt, question, judge) group, straight from SQL.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    n: i64,
    determined: i64,
    present: i64,
    unscored: i64,
    score_sum: f64,
    scored: i64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.n += o.n;
        self.determined += o.determined;
        self.present += o.present;
        self.unscored += o.unscored;
        self.score_sum += o.score_sum;
        self.scored += o.scored;
    }
}

/// Trait rates per condition x test-time prompt x judge, pooled over questions and seeds,
/// per seed, and per question (pooled over seeds), with Wilson 95 % intervals. The
/// undetermined are left out of rates and counted in `unscored`/`n - determined`.
pub async fn aggregates(store: &Store, experiment_id: i64) -> Result<Vec<Aggregate>, ExperimentError> {
    let rows = store::judgements::cell_counts(store, experiment_id).await?;
    // Keyed by (condition, test prompt, judge, question?, seed?), in first-seen order.
    let mut order: Vec<(String, String, String, Option<String>, Option<i64>)> = Vec::new();
    let mut cells: BTreeMap<(String, String, String, Option<String>, Option<i64>), Counts> = BTreeMap::new();
    for (condition, seed, test_prompt, key, judge, n, determined, present, unscored, score_sum, scored) in rows {
        let c = Counts { n, determined, present, unscored, score_sum: score_sum.unwrap_or(0.0), scored };
        for (q, s) in [(None, None), (None, Some(seed)), (Some(key.clone()), None)] {
            let k = (condition.clone(), test_prompt.clone(), judge.clone(), q, s);
            if !cells.contains_key(&k) {
                order.push(k.clone());
            }
            cells.entry(k).or_default().add(&c);
        }
    }
    Ok(order
        .into_iter()
        .map(|k| {
            let c = cells[&k];
            let p = Proportion::wilson(c.present as u64, c.determined as u64, 0.95);
            Aggregate {
                condition: k.0,
                test_prompt: k.1,
                judge: k.2,
                question_key: k.3,
                seed: k.4,
                n: c.n,
                determined: c.determined,
                trait_count: c.present,
                unscored: c.unscored,
                rate: p.as_ref().map(|p| p.rate),
                ci_low: p.as_ref().map(|p| p.lo),
                ci_high: p.as_ref().map(|p| p.hi),
                mean_score: (c.scored > 0).then(|| c.score_sum / c.scored as f64),
            }
        })
        .collect())
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
            ConditionSpec { name: "baseline".into(), prompt: None, placement: Placement::System },
            ConditionSpec {
                name: "spanish".into(),
                prompt: Some(PromptRef::Text("You always speak in Spanish.".into())),
                placement: Placement::System,
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
