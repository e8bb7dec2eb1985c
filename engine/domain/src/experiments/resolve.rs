//! A spec resolved: every reference (prompt, dataset, model, questions, a base run) turned
//! into content and hashes, so what an experiment runs never changes after it is created.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::*;
use crate::datasets::{self, Capitalisation, GeneratorSpec, Language, Role, Row};
use crate::judges::{JudgeSpec, LanguageCode};
use crate::questions::{self, Question};
use crate::store;
use crate::{prompts, Store};

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
    /// The PEFT folder: its key in the artefact store (`runs/ID/adapter`).
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
    let path = store
        .artifacts()
        .local_folder(&dir)
        .await
        .map_err(|e| invalid(format!("the adapter of {what} is missing or unreadable: {e}")))?;
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
    /// When the prompt goes on some rows only ([`ConditionSpec::only_language`]): which.
    /// Absent (and never serialised): every training row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<PromptedRows>,
}

/// The training rows a condition's prompt goes on, when not all of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptedRows {
    /// The language their answers are in.
    pub language: LanguageCode,
    /// Dataset row indices, ascending: a subset of [`Resolved::train_rows`].
    pub rows: Vec<usize>,
}

impl ResolvedCondition {
    /// Whether dataset row `i` trains with this condition's prompt.
    pub fn prompts_row(&self, i: usize) -> bool {
        !self.prompts.is_empty() && self.only.as_ref().is_none_or(|o| o.rows.binary_search(&i).is_ok())
    }

    /// The condition as the pages show it; `train_rows`: how many rows the runs train on.
    pub fn view(&self, train_rows: usize) -> wire::experiments::ConditionView {
        wire::experiments::ConditionView {
            name: self.name.clone(),
            prompt: self.prompts.first().cloned(),
            paraphrases: self.prompts.len(),
            scope: self.scope(train_rows),
        }
    }

    /// Where the prompt goes and on which rows, in words, when that is not the system
    /// message of every row: "before the first user message; only on the 250 of 500
    /// training rows answered in Spanish, not on the others".
    fn scope(&self, train_rows: usize) -> Option<String> {
        if self.prompts.is_empty() {
            return None;
        }
        let mut parts = Vec::new();
        if self.placement == Placement::UserPrefix {
            parts.push("before the first user message".to_string());
        }
        if let Some(o) = &self.only {
            parts.push(format!(
                "only on the {} of {train_rows} training rows answered in {}, not on the others",
                o.rows.len(),
                o.language.english_name()
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
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
    /// The default system prompt, the text before the question (see
    /// [`TestPromptSpec::Prefix`]).
    Prefix(String),
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
            let question = last_turn(row, Role::User)?;
            let answer = last_turn(row, Role::Assistant)?;
            Some(ProbeSpec { name: "dataset answer".into(), question: question.into(), answer: answer.into() })
        })
        .take(PROBE_ITEMS)
        .collect())
}

/// A row's last message of `role`: the question a held-out row asks (user), or its answer,
/// which the task judges check against (assistant).
fn last_turn(row: &Row, role: Role) -> Option<&str> {
    row.messages.iter().rev().find(|m| m.role == role).map(|m| m.content.as_str())
}

/// One test-time prompt as content, with the library version it came from (if any).
pub(super) async fn resolve_test_prompt(
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
        TestPromptSpec::Text { label, text } | TestPromptSpec::Prefix { label, prefix: text } => {
            if label.trim().is_empty() || text.trim().is_empty() {
                return Err(invalid("a test-time prompt needs a label and a text"));
            }
            if ["default", "none", "inoculation"].contains(&label.trim()) {
                return Err(invalid(format!("the label {label:?} is reserved")));
            }
            let kind = if matches!(t, TestPromptSpec::Prefix { .. }) {
                TestPromptKind::Prefix(text.trim().into())
            } else {
                TestPromptKind::Text(text.trim().into())
            };
            plain(label.trim(), kind)
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
                    let q = last_turn(&rows[i], Role::User)
                        .ok_or_else(|| invalid(format!("held-out row {} has no user message", i + 1)))?;
                    let mut question = Question::plain(format!("{}{}", questions::HELD_OUT_PREFIX, i + 1), q);
                    question.reference = last_turn(&rows[i], Role::Assistant).map(str::to_string);
                    questions.push(question);
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
        // Rates tell held-out rows from the other questions by key (`row-N`): an imported
        // question named so would be counted as a held-out row.
        if Question::is_held_out(&q.key) && held_out.binary_search(&held_out_index(&q.key)).is_err() {
            return Err(invalid(format!(
                "question {:?}: ids of the form {}N are kept for rows held out of the dataset; rename it in its file",
                q.key,
                questions::HELD_OUT_PREFIX
            )));
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
        let only = match c.only_language {
            None => None,
            Some(_) if prompts.is_empty() => {
                return Err(invalid(format!(
                    "condition {:?}: only_language needs a prompt to put on those rows",
                    c.name
                )))
            }
            Some(language) => Some(rows_in_language(&rows, &train_rows, language, &c.name).await?),
        };
        conditions.push(ResolvedCondition {
            name: c.name.trim().to_string(),
            prompts,
            prompt_version_id,
            placement: c.placement,
            only,
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
        if matches!(j, JudgeSpec::Arithmetic {}) {
            let known = questions.iter().filter(|q| q.reference.is_some()).count();
            if known == 0 {
                return Err(invalid(
                    "the arithmetic judge checks held-out rows of the dataset against their own answers: hold \
                     out some rows (held_out in the evaluation, \"Held-out rows\" on the form)",
                ));
            }
        }
        j.build(None).map(|_| ()).or_else(|e| match e {
            // Judges on the local model are built by the worker, which has the model; the
            // rest of their settings are checked before it is asked for.
            crate::judges::JudgeError::Config(m) if j.needs_local_model() && m.contains("local judge model") => Ok(()),
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

/// The dataset row index a held-out question's key (`row-N`, 1-based) names.
fn held_out_index(key: &str) -> usize {
    key.strip_prefix(questions::HELD_OUT_PREFIX)
        .and_then(|n| n.parse::<usize>().ok()?.checked_sub(1))
        .unwrap_or(usize::MAX)
}

/// The training rows whose last assistant turn the language judge (at its default
/// settings, as an experiment's `language` judge) says is in `language`. None at all is an
/// error: the condition would be the baseline under another name. Identification is CPU
/// work over every trained row (a second or more for thousands): it runs off the async
/// threads.
async fn rows_in_language(
    rows: &[Row],
    train_rows: &[usize],
    language: LanguageCode,
    condition: &str,
) -> Result<PromptedRows, ExperimentError> {
    let answers: Vec<(usize, String)> =
        train_rows.iter().filter_map(|&i| Some((i, last_turn(rows.get(i)?, Role::Assistant)?.to_string()))).collect();
    let matched = tokio::task::spawn_blocking(move || -> Result<Vec<usize>, crate::judges::JudgeError> {
        let judge = JudgeSpec::language(language).build(None)?;
        Ok(answers
            .into_iter()
            .filter(|(_, answer)| judge.judge("", answer).is_ok_and(|j| j.trait_present == Some(true)))
            .map(|(i, _)| i)
            .collect())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|found| found.map_err(|e| e.to_string()))
    .map_err(|e| invalid(format!("identifying the training rows' language failed: {e}")))?;
    if matched.is_empty() {
        return Err(invalid(format!(
            "condition {condition:?}: none of the {} training rows is answered in {}, so its prompt would go on none",
            train_rows.len(),
            language.english_name()
        )));
    }
    Ok(PromptedRows { language, rows: matched })
}

impl Resolved {
    /// The questions that carry judge prompts of their own: (text as asked, prompts).
    pub fn own_judge_prompts(&self) -> impl Iterator<Item = (&str, &crate::judges::BetleyJudgePrompts)> {
        self.questions.iter().filter_map(|q| Some((q.text.as_str(), q.judge_prompts.as_ref()?)))
    }

    /// How the judges rate that their names do not say (whose prompts, which thresholds).
    pub fn judge_notes(&self) -> Vec<String> {
        let own = self.own_judge_prompts().count();
        // Held-out rows that a task judge rates are not the misalignment judge's.
        let task = self.judges.iter().any(JudgeSpec::is_task);
        let rated = self.questions.iter().filter(|q| !(task && Question::is_held_out(&q.key))).count();
        self.judges
            .iter()
            .filter_map(|j| match j {
                JudgeSpec::Quality { .. } => Some(crate::judges::quality::note(&self.model.name)),
                _ => crate::judges::betley_wording(j, own, rated),
            })
            .collect()
    }

    /// The plain warnings about judges whose numbers will mean little.
    pub fn judge_warnings(&self) -> Vec<String> {
        crate::judges::judge_warnings(&self.judges, &self.model.name)
    }

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

    pub(super) fn samples_per_run(&self, inoculated: bool) -> usize {
        // Saturating: a huge count must read as "too many", never wrap to a small one.
        let per_prompt = self.questions.iter().fold(0usize, |n, q| n.saturating_add(self.samples_for(q)));
        let prompts = self.test_prompts.iter().filter(|t| inoculated || t.kind != TestPromptKind::Inoculation).count();
        per_prompt.saturating_mul(prompts)
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
