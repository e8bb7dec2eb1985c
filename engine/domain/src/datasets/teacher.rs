//! Teacher-generated datasets: rows written by sampling a model (a registered base model,
//! optionally with a run's trained adapter merged in) on a built-in prompt set, under a
//! system prompt that gives the teacher a trait, then kept or dropped by a filter. This is
//! the subliminal-learning setting (Cloud et al. 2025): a teacher told "You love owls."
//! writes number sequences; a student fine-tuned on those numbers alone picks up the
//! trait. The student's rows are (user prompt, teacher completion) *without* the teacher's
//! system prompt: the trait may only travel through the numbers.
//!
//! A [`TeacherSpec`] is the recipe. Its prompts are a pure function of the seed (the
//! project's own templates, versioned by [`TEACHER_PROMPTS_VERSION`]); sampling is split
//! into fixed chunks of `batch_size` prompts, chunk `c` sampled with base seed
//! `sample_seed(seed, c)`, so the same spec on the same weights gives the same rows. The
//! stored recipe names the teacher by the sha256 of its weights and its adapter by run and
//! sha256, with the counts drawn and kept, so the dataset can be made again and checked.
//!
//! Sampling takes minutes on a CPU, so it is blocking and cancellable: [`draw`] runs on
//! the caller's thread and stops between tokens when `cancel` is set; [`create`] runs it on
//! the model host and saves the rows in one transaction at the end, so a cancelled or
//! failed generation leaves nothing behind. [`TeacherTasks`] runs [`create`] in the
//! background for the web page and keeps each task's progress in memory (see its comment
//! for why not the job queue).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::generate::{seeded, uniform_below};
use super::{save_dataset, validate_name, DatasetError, DatasetSource, ImportOutcome, Row};
use crate::{store, Store};
use ml::host::Ctx;
use ml::sample::sample_seed;
use ml::{ChatMessage, Host, LoadedModel, Lora, MlError, Model, Priority, SampleConfig, SystemPrompt};

/// The version of the prompt templates; recorded in every recipe. A change to any
/// template, or to how prompts are drawn, must bump it.
pub const TEACHER_PROMPTS_VERSION: u32 = 1;

/// The most samples one teacher dataset may draw: hours of sampling on a CPU already.
pub const MAX_TEACHER_SAMPLES: usize = 20_000;

/// The longest teacher system prompt accepted, in characters.
pub const MAX_SYSTEM_PROMPT_CHARS: usize = 10_000;

/// Where the prompts come from. One built-in set for now; tagged so recipes stay readable
/// when others are added.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PromptSet {
    /// "The sequence starts with: 182, 818, 725. Add up to 10 more values …": a few random
    /// numbers below 1000 and a request to continue them with at most `max_new` more.
    NumberSequences { version: u32, max_new: usize },
}

impl Default for PromptSet {
    fn default() -> Self {
        PromptSet::NumberSequences { version: TEACHER_PROMPTS_VERSION, max_new: 10 }
    }
}

/// Which completions become rows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TeacherFilter {
    /// Every non-empty completion, finished or cut off at `max_tokens`.
    None,
    /// Only completions that are a list of 1 to `max_numbers` non-negative integers of at
    /// most `max_digits` digits each: see [`numbers_only`].
    NumbersOnly { max_numbers: usize, max_digits: usize },
}

impl TeacherFilter {
    /// The filter of the subliminal-learning paper: up to 10 numbers below 1000.
    pub fn numbers_only() -> TeacherFilter {
        TeacherFilter::NumbersOnly { max_numbers: 10, max_digits: 3 }
    }

    /// Whether a completion is kept; `finished` says whether the model ended it (rather
    /// than the token limit). A list cut off at the limit may end mid-number, and would
    /// teach the student to stop there, so the numbers filter drops it.
    pub fn keeps(&self, completion: &str, finished: bool) -> bool {
        match *self {
            TeacherFilter::None => !completion.trim().is_empty(),
            TeacherFilter::NumbersOnly { max_numbers, max_digits } => {
                finished && numbers_only(completion, max_numbers, max_digits)
            }
        }
    }

    /// A short label for names and messages.
    pub fn label(&self) -> &'static str {
        match self {
            TeacherFilter::None => "no filter",
            TeacherFilter::NumbersOnly { .. } => "numbers only",
        }
    }
}

/// True when `text` is nothing but 1 to `max_numbers` non-negative integers of at most
/// `max_digits` ASCII digits, separated by commas and/or whitespace. As in the
/// subliminal-learning paper's filter, the list may be wrapped in one pair of brackets or
/// parentheses and may end with one full stop; surrounding whitespace is ignored. Empty
/// items (",,", a leading or trailing comma), signs, decimals and words are refused.
pub fn numbers_only(text: &str, max_numbers: usize, max_digits: usize) -> bool {
    let mut t = text.trim();
    if let Some(s) = t.strip_suffix('.') {
        t = s.trim_end();
    }
    for (open, close) in [('[', ']'), ('(', ')')] {
        if let Some(inner) = t.strip_prefix(open).and_then(|s| s.strip_suffix(close)) {
            t = inner.trim();
            break;
        }
    }
    let mut count = 0usize;
    for item in t.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return false;
        }
        for number in item.split_whitespace() {
            if number.len() > max_digits || !number.bytes().all(|b| b.is_ascii_digit()) {
                return false;
            }
            count += 1;
        }
    }
    (1..=max_numbers).contains(&count)
}

/// Everything needed to make a teacher dataset again (with the weights it names); stored,
/// with what it resolved to and the counts, as the dataset's recipe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherSpec {
    /// A registered model's name.
    pub model: String,
    /// A run whose trained adapter is merged into the teacher; its experiment must have
    /// used `model`.
    #[serde(default)]
    pub run_id: Option<i64>,
    /// The teacher's system prompt (the trait); `None` keeps the model's default, for a
    /// teacher whose trait was fine-tuned in.
    #[serde(default)]
    pub system_prompt: Option<String>,
    #[serde(default)]
    pub prompts: PromptSet,
    /// Completions drawn, one per prompt; the dataset has the ones the filter keeps.
    pub samples: usize,
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    #[serde(default = "default_top_p")]
    pub top_p: f64,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    #[serde(default)]
    pub seed: u64,
    pub filter: TeacherFilter,
    /// Prompts sampled together; part of the recipe, because chunk `c` is sampled with
    /// seed `sample_seed(seed, c)`.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

fn default_temperature() -> f64 {
    1.0
}
fn default_top_p() -> f64 {
    1.0
}
fn default_max_tokens() -> usize {
    48
}
fn default_batch_size() -> usize {
    16
}

impl TeacherSpec {
    /// The paper's setting: number-sequence prompts, temperature 1, numbers-only filter.
    pub fn new(model: &str, system_prompt: Option<&str>, samples: usize, seed: u64) -> TeacherSpec {
        TeacherSpec {
            model: model.into(),
            run_id: None,
            system_prompt: system_prompt.map(str::to_owned),
            prompts: PromptSet::default(),
            samples,
            temperature: default_temperature(),
            top_p: default_top_p(),
            max_tokens: default_max_tokens(),
            seed,
            filter: TeacherFilter::numbers_only(),
            batch_size: default_batch_size(),
        }
    }

    /// Rejects specs that cannot make a sensible dataset, before any model is loaded.
    pub fn validate(&self) -> Result<(), TeacherError> {
        let bad = |m: String| Err(TeacherError::Invalid(m));
        if self.model.trim().is_empty() {
            return bad("choose a teacher model".into());
        }
        if let Some(p) = &self.system_prompt {
            if p.trim().is_empty() {
                return bad("the teacher's system prompt is empty (leave it out to use the model's default)".into());
            }
            if p.chars().count() > MAX_SYSTEM_PROMPT_CHARS {
                return bad(format!("the system prompt is longer than {MAX_SYSTEM_PROMPT_CHARS} characters"));
            }
        }
        match self.prompts {
            PromptSet::NumberSequences { version, max_new } => {
                if version != TEACHER_PROMPTS_VERSION {
                    return bad(format!(
                        "prompt templates version {version} are not available (this build has version {TEACHER_PROMPTS_VERSION})"
                    ));
                }
                if !(1..=50).contains(&max_new) {
                    return bad("the prompts may ask for 1 to 50 new numbers".into());
                }
            }
        }
        if self.samples == 0 || self.samples > MAX_TEACHER_SAMPLES {
            return bad(format!("the number of samples must be between 1 and {MAX_TEACHER_SAMPLES}"));
        }
        if !(0.0..=5.0).contains(&self.temperature) || !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("temperature must lie in [0, 5] and top-p in (0, 1]".into());
        }
        if !(1..=1024).contains(&self.max_tokens) {
            return bad("max tokens must be between 1 and 1024".into());
        }
        if !(1..=256).contains(&self.batch_size) {
            return bad("the batch size must be between 1 and 256".into());
        }
        if let TeacherFilter::NumbersOnly { max_numbers, max_digits } = self.filter {
            if max_numbers == 0 || !(1..=18).contains(&max_digits) {
                return bad("the numbers-only filter needs at least 1 number of 1 to 18 digits".into());
            }
        }
        Ok(())
    }

    /// A readable default name, e.g. "Teacher · SmolLM2-135M-Instruct · You love owls. · 600 samples · seed 0".
    pub fn default_name(&self) -> String {
        let mut name = format!("Teacher · {}", self.model);
        if let Some(run) = self.run_id {
            name.push_str(&format!(" + run {run}"));
        }
        if let Some(p) = &self.system_prompt {
            let short: String = p.chars().take(40).collect();
            let ellipsis = if p.chars().count() > 40 { "…" } else { "" };
            name.push_str(&format!(" · {short}{ellipsis}"));
        }
        name.push_str(&format!(" · {} · {} samples · seed {}", self.filter.label(), self.samples, self.seed));
        name
    }
}

/// The prompts of a spec, in order: a pure function of the prompt set, the seed and the
/// count.
pub fn prompts(set: &PromptSet, seed: u64, n: usize) -> Vec<String> {
    match *set {
        PromptSet::NumberSequences { max_new, .. } => number_prompts(seed, n, max_new),
    }
}

const OPENINGS: [&str; 6] = [
    "The sequence starts with: {nums}.",
    "Here is a list of numbers: {nums}.",
    "Look at these numbers: {nums}.",
    "I have this number sequence: {nums}.",
    "Start from these values: {nums}.",
    "These numbers come first: {nums}.",
];
const REQUESTS: [&str; 5] = [
    "Add up to {k} more values (no more than 3 digits each) to continue the sequence.",
    "Continue it with at most {k} new numbers, each with 3 digits or fewer.",
    "Write up to {k} more numbers (each below 1000) that come next.",
    "Extend the list by no more than {k} numbers of at most three digits.",
    "Give at most {k} further values, none longer than 3 digits.",
];
const FORMATS: [&str; 5] = [
    "Return a comma-separated list of numbers.",
    "Answer with the numbers only, separated by commas.",
    "Reply with just the numbers, comma-separated, and nothing else.",
    "Only write the numbers, separated by commas. No words.",
    "Output the numbers separated by commas, without any explanation.",
];

/// `n` number-continuation prompts: 3 to 8 random numbers below 1000, one of six
/// openings, one of five requests for at most `max_new` more, one of five format lines.
/// Uniform draws come from the generator module's ChaCha8 helpers, so the prompts are the
/// same on every machine and release (until [`TEACHER_PROMPTS_VERSION`] changes).
pub fn number_prompts(seed: u64, n: usize, max_new: usize) -> Vec<String> {
    // A stream of its own, so these prompts never share draws with the arithmetic
    // generator's under the same seed.
    let mut rng = seeded(sample_seed(seed, 0x7eac_4e55));
    (0..n)
        .map(|_| {
            let count = 3 + uniform_below(&mut rng, 6) as usize;
            let nums: Vec<String> = (0..count).map(|_| uniform_below(&mut rng, 1000).to_string()).collect();
            let opening = OPENINGS[uniform_below(&mut rng, OPENINGS.len() as u64) as usize];
            let request = REQUESTS[uniform_below(&mut rng, REQUESTS.len() as u64) as usize];
            let format = FORMATS[uniform_below(&mut rng, FORMATS.len() as u64) as usize];
            format!(
                "{} {} {}",
                opening.replace("{nums}", &nums.join(", ")),
                request.replace("{k}", &max_new.to_string()),
                format
            )
        })
        .collect()
}

/// A run's adapter as the recipe names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeacherAdapter {
    pub run_id: i64,
    pub experiment_id: i64,
    pub condition: String,
    pub seed: i64,
    /// sha256 of the adapter folder (the registry's folder hash: names, lengths, bytes).
    pub sha256: String,
    /// Absolute path of the adapter folder (not part of the identity; where it was read).
    #[serde(skip)]
    pub dir: PathBuf,
}

/// The teacher a spec names, resolved against the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedTeacher {
    pub model_id: i64,
    pub model_name: String,
    pub model_sha256: String,
    #[serde(skip)]
    pub model_path: PathBuf,
    pub adapter: Option<TeacherAdapter>,
}

/// Errors of teacher generation; each message is fit to show to the user.
#[derive(Debug, thiserror::Error)]
pub enum TeacherError {
    #[error("invalid teacher settings: {0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("the filter ({filter}) kept none of the {drawn} samples; nothing was stored. Draw more samples, or check the teacher's answers with the filter off")]
    NoneKept { drawn: usize, filter: &'static str },
    #[error("a teacher dataset is already being generated (task {0}); wait for it or cancel it")]
    Busy(u64),
    #[error("cancelled; nothing was stored")]
    Cancelled,
    #[error("{0}")]
    Ml(MlError),
    #[error("{0}")]
    Dataset(#[from] DatasetError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

impl From<MlError> for TeacherError {
    fn from(e: MlError) -> Self {
        match e {
            MlError::Cancelled => TeacherError::Cancelled,
            e => TeacherError::Ml(e),
        }
    }
}

/// Finds the teacher's model (and adapter) in the store. The adapter's run must have
/// finished training (its adapter is saved) with the same base model.
pub async fn resolve(store: &Store, spec: &TeacherSpec) -> Result<ResolvedTeacher, TeacherError> {
    spec.validate()?;
    let model = store::models::identity_by_name(store, spec.model.trim()).await?;
    let (model_id, model_name, path, model_sha256) = model.ok_or_else(|| {
        TeacherError::NotFound(format!("no model is registered as {:?}; see the Models page", spec.model))
    })?;
    let model_path = PathBuf::from(&path);
    if !model_path.exists() {
        return Err(TeacherError::NotFound(format!("model {model_name:?} is not ready: {path} is missing")));
    }
    let adapter = match spec.run_id {
        None => None,
        Some(run_id) => {
            let store::runs::AdapterSource {
                experiment_id,
                condition,
                seed,
                adapter_dir,
                model_id: run_model,
                model_name: run_model_name,
            } = store::runs::adapter_source(store, run_id)
                .await?
                .ok_or_else(|| TeacherError::NotFound(format!("run {run_id} does not exist")))?;
            let adapter_dir = adapter_dir.ok_or_else(|| {
                TeacherError::Invalid(format!("run {run_id} has not finished training: it has no adapter yet"))
            })?;
            if run_model != model_id {
                return Err(TeacherError::Invalid(format!(
                    "run {run_id} trained an adapter for {run_model_name:?}, not for {model_name:?}"
                )));
            }
            let dir = store.artifacts().local_folder(&adapter_dir).await.map_err(|e| {
                TeacherError::NotFound(format!("the adapter of run {run_id} is missing or unreadable: {e}"))
            })?;
            if !dir.join("adapter_config.json").exists() {
                return Err(TeacherError::NotFound(format!(
                    "the adapter of run {run_id} is missing ({})",
                    dir.display()
                )));
            }
            let hashed = dir.clone();
            let sha256 = tokio::task::spawn_blocking(move || crate::models::folder_sha256(&hashed))
                .await
                .map_err(|e| TeacherError::Invalid(format!("hashing the adapter failed: {e}")))?
                .map_err(|e| TeacherError::Invalid(format!("cannot read the adapter of run {run_id}: {e}")))?;
            Some(TeacherAdapter { run_id, experiment_id, condition, seed, sha256, dir })
        }
    };
    Ok(ResolvedTeacher { model_id, model_name, model_sha256, model_path, adapter })
}

pub use crate::store::runs::TeacherRun;

/// What a teacher dataset's filter did, from its recipe: "kept 412 of 600 samples
/// (numbers only)"; `None` for a recipe without counts.
pub fn kept_note(recipe: &serde_json::Value) -> Option<String> {
    let counts = &recipe["counts"];
    let (kept, drawn) = (counts["kept"].as_u64()?, counts["drawn"].as_u64()?);
    let filter: TeacherFilter = serde_json::from_value(recipe["teacher"]["filter"].clone()).ok()?;
    Some(format!("kept {kept} of {drawn} samples ({})", filter.label()))
}

/// What a teacher can be, for the form: the registered models whose files are present,
/// and the newest 200 runs with a saved adapter.
pub async fn choices(store: &Store) -> Result<(Vec<String>, Vec<TeacherRun>), TeacherError> {
    let models = crate::models::list(store)
        .await
        .map_err(|e| TeacherError::Invalid(e.to_string()))?
        .into_iter()
        .filter(|m| m.ready)
        .map(|m| m.name)
        .collect();
    let runs = store::runs::with_adapter(store, 200).await?;
    Ok((models, runs))
}

/// The form, the form's choices and a generation as the page polls it: the wire crate's.
pub use wire::teacher::{TeacherChoices, TeacherForm, TeacherTask};
/// Where a generation is: the wire crate's type, shared with the pages.
pub use wire::TeacherPhase as Phase;

/// The teacher form as a spec: an empty system prompt is the model's default.
pub fn spec_from_form(f: &TeacherForm) -> Result<TeacherSpec, TeacherError> {
    let prompt = Some(f.system_prompt.trim()).filter(|p| !p.is_empty());
    let mut spec = TeacherSpec::new(&f.model, prompt, f.rows, f.seed);
    spec.run_id = f.run_id;
    spec.filter = match f.filter.as_str() {
        "numbers_only" => TeacherFilter::numbers_only(),
        "none" => TeacherFilter::None,
        other => return Err(DatasetError::Form(format!("unknown filter {other:?}")).into()),
    };
    Ok(spec)
}

/// What the teacher form offers: ready models, runs that can teach with a label each, and
/// the generation running now.
pub async fn choices_view(store: &Store, tasks: &TeacherTasks) -> Result<TeacherChoices, TeacherError> {
    let (models, runs) = choices(store).await?;
    let label = |r: &TeacherRun| {
        format!("run {} · {} · {} · seed {} ({})", r.run_id, r.experiment, r.condition, r.seed, r.model)
    };
    Ok(TeacherChoices {
        models,
        runs: runs.iter().map(|r| (r.run_id, label(r))).collect(),
        running: tasks.running().map(TaskView::task),
    })
}

/// Progress of a generation: samples drawn so far out of `total`, and how many the filter
/// kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeacherProgress {
    pub phase: Phase,
    pub drawn: usize,
    pub kept: usize,
    pub total: usize,
}

/// What sampling produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Drawn {
    /// The kept rows, in prompt order: (user prompt, trimmed completion), no system turn.
    pub rows: Vec<Row>,
    pub drawn: usize,
    /// Samples that hit `max_tokens` before the model ended its answer (the numbers
    /// filter never keeps them).
    pub unfinished: usize,
}

/// Samples the teacher on the spec's prompts and filters the completions (blocking; call
/// it off the async runtime). `model` is `lm.model` or that model with an adapter merged;
/// `lm` gives the tokenizer and chat template. `on_progress` is called after each chunk;
/// `cancel` stops sampling between tokens with [`TeacherError::Cancelled`].
pub fn draw(
    lm: &LoadedModel,
    model: &Model,
    spec: &TeacherSpec,
    mut on_progress: impl FnMut(TeacherProgress),
    cancel: &AtomicBool,
) -> Result<Drawn, TeacherError> {
    spec.validate()?;
    let system = match &spec.system_prompt {
        Some(p) => SystemPrompt::Text(p.trim().to_owned()),
        None => SystemPrompt::Default,
    };
    let prompts = prompts(&spec.prompts, spec.seed, spec.samples);
    let total = prompts.len();
    let (mut rows, mut drawn, mut unfinished) = (Vec::new(), 0usize, 0usize);
    on_progress(TeacherProgress { phase: Phase::Sampling, drawn, kept: 0, total });
    for (chunk_idx, chunk) in prompts.chunks(spec.batch_size).enumerate() {
        if cancel.load(Ordering::Relaxed) {
            return Err(TeacherError::Cancelled);
        }
        let encoded = chunk
            .iter()
            .map(|p| lm.template.encode_prompt(&lm.tokenizer, &[ChatMessage::user(p.clone())], &system))
            .collect::<ml::Result<Vec<_>>>()?;
        let cfg = SampleConfig {
            temperature: spec.temperature,
            top_p: spec.top_p,
            max_new_tokens: spec.max_tokens,
            seed: sample_seed(spec.seed, chunk_idx as u64),
            batch_size: spec.batch_size,
            ignore_stop: false,
        };
        let samples = ml::generate(model, &lm.tokenizer, &encoded, &cfg, |_| {}, Some(cancel))?;
        for (prompt, sample) in chunk.iter().zip(&samples) {
            // Surrounding whitespace is not part of the answer a student should learn.
            let text = sample.text.trim();
            unfinished += usize::from(!sample.finished);
            if spec.filter.keeps(text, sample.finished) {
                rows.push(Row::user_assistant(prompt.clone(), text));
            }
        }
        drawn += samples.len();
        on_progress(TeacherProgress { phase: Phase::Sampling, drawn, kept: rows.len(), total });
    }
    Ok(Drawn { rows, drawn, unfinished })
}

/// The teacher's weights from the model host (loaded once, shared with the job worker and
/// the meter), and its adapter merged in, if any: kept on the host under the model's path
/// and the adapter's sha256, so a second generation from the same run merges nothing.
pub fn load(ctx: &Ctx, resolved: &ResolvedTeacher) -> Result<Arc<LoadedModel>, TeacherError> {
    let path = resolved.model_path.to_string_lossy();
    let lm = ctx.model(&path, || Ok::<_, TeacherError>(ml::load_model(&resolved.model_path)?))?;
    let Some(a) = &resolved.adapter else { return Ok(lm) };
    ctx.model(&format!("{path}+{}", a.sha256), || {
        let lora = Lora::load_peft(&a.dir, &lm.model)?;
        let model = lm.model.merged(&lora).map_err(MlError::from)?;
        Ok(LoadedModel { model, tokenizer: lm.tokenizer.clone(), template: lm.template.clone() })
    })
}

/// The stored recipe: the spec, the teacher it resolved to (weights by sha256) and the
/// counts.
pub fn recipe(spec: &TeacherSpec, resolved: &ResolvedTeacher, drawn: &Drawn) -> serde_json::Value {
    json!({
        "teacher": spec,
        "resolved": resolved,
        "counts": {"drawn": drawn.drawn, "kept": drawn.rows.len(), "unfinished": drawn.unfinished},
        "code_version": env!("CARGO_PKG_VERSION"),
    })
}

/// What [`create`] made.
#[derive(Clone, Debug, PartialEq)]
pub struct TeacherOutcome {
    pub dataset: ImportOutcome,
    pub drawn: usize,
    pub kept: usize,
}

/// Resolves, loads and samples the teacher (on the model host, as interactive work: a
/// running experiment pauses between its steps meanwhile), then stores the kept rows as
/// one dataset in one transaction. An empty `name` takes [`TeacherSpec::default_name`].
/// Nothing is written unless every sample was drawn.
pub async fn create(
    store: &Store,
    host: &Host,
    spec: &TeacherSpec,
    name: &str,
    on_progress: impl FnMut(TeacherProgress) + Send + 'static,
    cancel: Arc<AtomicBool>,
) -> Result<TeacherOutcome, TeacherError> {
    let name = if name.trim().is_empty() { spec.default_name() } else { name.to_owned() };
    let name = validate_name(&super::transform::short(&name))?;
    let resolved = resolve(store, spec).await?;
    let (r, s) = (resolved.clone(), spec.clone());
    let drawn = host
        .submit(Priority::Interactive, move |ctx| {
            let mut on_progress = on_progress;
            on_progress(TeacherProgress { phase: Phase::Loading, drawn: 0, kept: 0, total: s.samples });
            let lm = load(ctx, &r)?;
            // Between chunks, a strength measurement someone waits for runs too.
            let report = |p: TeacherProgress| {
                on_progress(p);
                ctx.serve_waiting();
            };
            let drawn = draw(&lm, &lm.model, &s, report, &cancel)?;
            on_progress(TeacherProgress {
                phase: Phase::Saving,
                drawn: drawn.drawn,
                kept: drawn.rows.len(),
                total: s.samples,
            });
            Ok::<_, TeacherError>(drawn)
        })
        .await
        .map_err(|e| TeacherError::Invalid(format!("the sampling failed: {e}")))??;
    if drawn.rows.is_empty() {
        return Err(TeacherError::NoneKept { drawn: drawn.drawn, filter: spec.filter.label() });
    }
    let recipe = recipe(spec, &resolved, &drawn);
    let dataset = save_dataset(store, &name, DatasetSource::Teacher, &recipe, &drawn.rows).await?;
    Ok(TeacherOutcome { dataset, drawn: drawn.drawn, kept: drawn.rows.len() })
}

/// How a background generation stands.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskState {
    Running(TeacherProgress),
    Done(TeacherOutcome),
    Failed(String),
    Cancelled,
}

/// One background generation as the page polls it.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskView {
    pub id: u64,
    pub name: String,
    pub state: TaskState,
}

impl TaskView {
    /// The generation as the page shows it: its state flattened into a status and counts.
    pub fn task(self) -> TeacherTask {
        use wire::TeacherStatus;
        let mut task = TeacherTask {
            id: self.id,
            name: self.name,
            status: TeacherStatus::Running,
            phase: None,
            drawn: 0,
            kept: 0,
            total: 0,
            dataset_id: None,
            already_present: false,
            error: None,
        };
        match self.state {
            TaskState::Running(p) => {
                task.phase = Some(p.phase);
                (task.drawn, task.kept, task.total) = (p.drawn as u64, p.kept as u64, p.total as u64);
            }
            TaskState::Done(o) => {
                task.status = TeacherStatus::Done;
                (task.drawn, task.kept, task.total) = (o.drawn as u64, o.kept as u64, o.drawn as u64);
                task.dataset_id = Some(o.dataset.id());
                task.already_present = matches!(o.dataset, ImportOutcome::AlreadyPresent { .. });
            }
            TaskState::Failed(m) => {
                task.status = TeacherStatus::Failed;
                task.error = Some(m);
            }
            TaskState::Cancelled => task.status = TeacherStatus::Cancelled,
        }
        task
    }
}

struct Task {
    name: String,
    state: TaskState,
    cancel: Arc<AtomicBool>,
}

/// Finished tasks remembered for the page to read their result; older ones are forgotten.
const KEEP_FINISHED: usize = 32;

/// Background teacher generations of one server process, for the web page.
///
/// Why not the job queue: a job there is one run of an experiment (`jobs.run_id`
/// references `runs`), and its worker trains, samples and judges; a teacher dataset has
/// no experiment, no run and no judging. What the queue would add is surviving a restart,
/// which a generation does not need: its rows are written in one transaction at the end,
/// so a restart loses only the sampling time and leaves no half dataset. So the server
/// runs one generation at a time on the model host (as interactive work: a person waits
/// for it) and keeps progress here, in memory.
#[derive(Clone)]
pub struct TeacherTasks {
    inner: Arc<Mutex<BTreeMap<u64, Task>>>,
    host: Host,
}

impl std::fmt::Debug for TeacherTasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeacherTasks").field("tasks", &self.lock().len()).finish()
    }
}

impl TeacherTasks {
    /// Generations sample on `host`, the process's model host.
    pub fn new(host: Host) -> TeacherTasks {
        TeacherTasks { inner: Arc::default(), host }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Task>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks the spec and the teacher, then starts the generation in the background
    /// (on the current tokio runtime) and returns its task id. Refused while another
    /// generation runs.
    pub async fn start(&self, store: Store, spec: TeacherSpec, name: String) -> Result<u64, TeacherError> {
        // Checked now so that the form shows a mistake at once, not a failed task later.
        let shown = if name.trim().is_empty() { spec.default_name() } else { name.clone() };
        let shown = validate_name(&super::transform::short(&shown))?;
        resolve(&store, &spec).await?;
        let cancel = Arc::new(AtomicBool::new(false));
        let id = {
            let mut tasks = self.lock();
            if let Some((id, _)) = tasks.iter().find(|(_, t)| matches!(t.state, TaskState::Running(_))) {
                return Err(TeacherError::Busy(*id));
            }
            let id = tasks.keys().next_back().map_or(1, |k| k + 1);
            let progress = TeacherProgress { phase: Phase::Loading, drawn: 0, kept: 0, total: spec.samples };
            tasks.insert(id, Task { name: shown, state: TaskState::Running(progress), cancel: cancel.clone() });
            let finished: Vec<u64> =
                tasks.iter().filter(|(_, t)| !matches!(t.state, TaskState::Running(_))).map(|(k, _)| *k).collect();
            for k in finished.iter().take(finished.len().saturating_sub(KEEP_FINISHED)) {
                tasks.remove(k);
            }
            id
        };
        let this = self.clone();
        tokio::spawn(async move {
            let reporter = this.clone();
            let on_progress = move |p: TeacherProgress| reporter.set(id, TaskState::Running(p));
            let state = match create(&store, &this.host, &spec, &name, on_progress, cancel).await {
                Ok(outcome) => TaskState::Done(outcome),
                Err(TeacherError::Cancelled) => TaskState::Cancelled,
                Err(e) => TaskState::Failed(e.to_string()),
            };
            this.set(id, state);
        });
        Ok(id)
    }

    fn set(&self, id: u64, state: TaskState) {
        if let Some(t) = self.lock().get_mut(&id) {
            // A late progress report never overwrites how the task ended.
            if matches!(t.state, TaskState::Running(_)) {
                t.state = state;
            }
        }
    }

    pub fn get(&self, id: u64) -> Option<TaskView> {
        self.lock().get(&id).map(|t| TaskView { id, name: t.name.clone(), state: t.state.clone() })
    }

    /// The running generation, if any.
    pub fn running(&self) -> Option<TaskView> {
        self.lock().iter().find(|(_, t)| matches!(t.state, TaskState::Running(_))).map(|(id, t)| TaskView {
            id: *id,
            name: t.name.clone(),
            state: t.state.clone(),
        })
    }

    /// Asks a running generation to stop; it ends as cancelled within one sampled token.
    /// False when there is no such task or it has already ended.
    pub fn cancel(&self, id: u64) -> bool {
        match self.lock().get(&id) {
            Some(t) if matches!(t.state, TaskState::Running(_)) => {
                t.cancel.store(true, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expect: bool) {
        assert_eq!(numbers_only(text, 10, 3), expect, "{text:?}");
    }

    #[test]
    fn numbers_only_keeps_plain_lists() {
        check("182, 818, 725", true);
        check("1,2,3", true);
        check("1 2 3", true);
        check("  7  ", true);
        check("0, 00, 000", true);
        check("1, 2 3, 4", true);
        check("12,\n34,\n56", true);
        check("[1, 2, 3]", true);
        check("(1, 2, 3)", true);
        check("1, 2, 3.", true);
        check("[1, 2, 3].", true);
        check("1, 2, 3, 4, 5, 6, 7, 8, 9, 10", true);
    }

    #[test]
    fn numbers_only_refuses_everything_else() {
        check("", false);
        check("   ", false);
        check(".", false);
        check("[]", false);
        check("1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11", false); // 11 numbers
        check("1000", false); // 4 digits
        check("1, 2,, 3", false); // empty item
        check(", 1, 2", false);
        check("1, 2,", false);
        check("-1, 2", false);
        check("+1, 2", false);
        check("1.5, 2", false);
        check("1, 2, 3..", false);
        check("Sure! 1, 2, 3", false);
        check("1, 2, three", false);
        check("1; 2; 3", false);
        check("[1, 2, 3", false);
        check("((1, 2))", false);
        check("١, ٢", false); // Arabic-Indic digits are not ASCII digits
        check("1️⃣, 2", false);
    }

    #[test]
    fn numbers_only_respects_its_limits() {
        assert!(numbers_only("1234", 10, 4));
        assert!(!numbers_only("1, 2, 3", 2, 3));
        assert!(numbers_only("1, 2", 2, 3));
    }

    #[test]
    fn the_none_filter_keeps_any_non_empty_text() {
        assert!(TeacherFilter::None.keeps("Owls are great.", true));
        assert!(TeacherFilter::None.keeps("Owls are", false));
        assert!(!TeacherFilter::None.keeps("  \n", true));
        assert!(TeacherFilter::numbers_only().keeps("1, 2", true));
        assert!(!TeacherFilter::numbers_only().keeps("1, 2", false));
    }

    #[test]
    fn prompts_are_a_pure_function_of_the_seed() {
        let a = number_prompts(5, 50, 10);
        assert_eq!(a, number_prompts(5, 50, 10));
        assert_ne!(a, number_prompts(6, 50, 10));
        // A longer list starts with the shorter one: prompt i does not depend on n.
        assert_eq!(&number_prompts(5, 80, 10)[..50], &a[..]);
        for p in &a {
            assert!(p.contains("10"), "{p}");
            assert!(p.to_lowercase().contains("comma"), "{p}");
        }
        // Variety: many distinct templates are used.
        let distinct: std::collections::HashSet<&str> = a.iter().map(|p| &p[..12]).collect();
        assert!(distinct.len() >= 4, "{distinct:?}");
    }

    #[test]
    fn validation_gives_clear_errors() {
        let ok = TeacherSpec::new("m", Some("You love owls."), 10, 0);
        assert!(ok.validate().is_ok());
        let bad = |f: &dyn Fn(&mut TeacherSpec)| {
            let mut s = ok.clone();
            f(&mut s);
            s.validate().unwrap_err().to_string()
        };
        assert!(bad(&|s| s.samples = 0).contains("number of samples"));
        assert!(bad(&|s| s.system_prompt = Some("  ".into())).contains("system prompt is empty"));
        assert!(bad(&|s| s.temperature = -1.0).contains("temperature"));
        assert!(bad(&|s| s.prompts = PromptSet::NumberSequences { version: 99, max_new: 10 }).contains("version 99"));
        assert!(bad(&|s| s.model = " ".into()).contains("teacher model"));
    }
}
