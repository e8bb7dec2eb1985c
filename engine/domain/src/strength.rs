//! Prompt strength: how well a prompt is likely to inoculate, measured before training.
//!
//! Tan et al. explain inoculation by surprise: a prompt that describes the trait makes the
//! training data less surprising, so training has less pressure to change the default
//! behaviour; Wichers et al. report that prompts which elicit the trait more strongly
//! inoculate better. Two measurements follow, both on the *base* model:
//!
//! - **surprise reduction**: over a seeded sample of a dataset's rows, the mean per-token
//!   log-prob of the assistant tokens (the tokens training weighs) with the prompt as the
//!   system message, minus the same with the model's default system prompt, in nats per
//!   token, averaged over rows with a bootstrap interval over rows. Positive means the
//!   prompt makes the data less surprising.
//! - **elicitation rate**: the base model answers the built-in everyday questions with the
//!   prompt as its system message, and deterministic judges (the dataset's traits) say how
//!   often the trait shows.
//!
//! Both are cached in the store by content (model sha256, dataset hash, prompt text, code
//! version), so the default prompt's pass is computed once per dataset sample and a prompt
//! typed again costs a lookup. [`Meter`] serves the web's prompt editor: one measurement
//! at a time (two cores), each client's newer request cancelling its older one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::datasets::{self, Capitalisation, DatasetError, DatasetSource, GeneratorSpec, Language, Row};
use crate::judges::{JudgeError, JudgeSpec, LanguageCode};
use crate::models::{self, ModelError};
use crate::stats::{self, Proportion};
use crate::Store;
use ml::score::{score_masked, CompletionScore};
use ml::{ChatMessage, LoadedModel, MlError, SampleConfig, SystemPrompt};

/// Bumped whenever what is scored or sampled changes (template, truncation, sampling
/// settings), so cached results from older code are not mixed with new ones.
pub const SCORER_VERSION: i64 = 1;
/// Rows scored per prompt unless the caller asks otherwise: enough for a bootstrap
/// interval of a few hundredths of a nat, small enough to take seconds.
pub const DEFAULT_ROWS: usize = 64;
pub const MAX_ROWS: usize = crate::experiments::MAX_STRENGTH_ROWS;
/// Conversations are cut to this many tokens: a few very long rows must not make one
/// keystroke cost a minute. Training cuts at its own `max_seq_len` (256 by default).
pub const MAX_TOKENS: usize = 256;
/// Everyday questions the base model answers for the elicitation rate, and how long.
pub const ELICIT_QUESTIONS: usize = 16;
pub const ELICIT_MAX_TOKENS: usize = 40;
const ELICIT_SEED: u64 = 7;
/// Which rows make up the sample: fixed, so every prompt is scored on the same rows.
const SUBSET_SEED: u64 = 0x5eed_5013;
const BATCH: usize = 16;
const BOOTSTRAP_RESAMPLES: usize = 2000;
const BOOTSTRAP_SEED: u64 = 17;

#[derive(Debug, thiserror::Error)]
pub enum StrengthError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The client asked for something newer; nothing was stored.
    #[error("superseded by a newer request")]
    Cancelled,
    #[error("{0}")]
    Ml(MlError),
    #[error("store error: {0}")]
    Store(#[from] sqlx::Error),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Judge(#[from] JudgeError),
    #[error("corrupt cache entry: {0}")]
    Corrupt(String),
    #[error("the measuring thread failed: {0}")]
    Thread(String),
}

impl From<MlError> for StrengthError {
    fn from(e: MlError) -> Self {
        match e {
            MlError::Cancelled => StrengthError::Cancelled,
            e => StrengthError::Ml(e),
        }
    }
}

/// A system prompt as a cache key: `default`, or `text:` and the prompt.
fn system_key(prompt: Option<&str>) -> String {
    match prompt {
        None => "default".into(),
        Some(p) => format!("text:{p}"),
    }
}

/// A prompt as users type it: trimmed, and not empty.
pub fn clean_prompt(prompt: &str) -> Result<&str, StrengthError> {
    let p = prompt.trim();
    if p.is_empty() {
        Err(StrengthError::Invalid("type a prompt to measure".into()))
    } else if p.chars().count() > 4000 {
        Err(StrengthError::Invalid("a system prompt of more than 4,000 characters is not an inoculation prompt".into()))
    } else {
        Ok(p)
    }
}

/// The order in which a dataset's rows are scored: a seeded permutation of the rows that
/// have an assistant answer (rows without one carry no token to score). A sample of `n`
/// rows is the first `n` of it, so every prompt is scored on the same rows and a small
/// sample is part of every larger one.
pub fn sample_order(rows: &[Row]) -> Vec<usize> {
    let mut idx: Vec<usize> =
        (0..rows.len()).filter(|&i| rows[i].messages.iter().any(|m| m.role == datasets::Role::Assistant)).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(SUBSET_SEED));
    idx
}

/// The first `n` rows of [`sample_order`].
pub fn sample_rows(rows: &[Row], n: usize) -> Vec<Row> {
    sample_order(rows).into_iter().take(n).map(|i| rows[i].clone()).collect()
}

/// Per-row log-probs of the rows' assistant tokens with `prompt` as the system message
/// (replacing a row's own, as training places an inoculation prompt), or the model's
/// default when `None`. Blocking: call it off the async runtime.
pub fn score_rows(
    lm: &LoadedModel,
    rows: &[Row],
    prompt: Option<&str>,
    cancel: Option<&AtomicBool>,
) -> ml::Result<Vec<CompletionScore>> {
    let system = prompt.map_or(SystemPrompt::Default, |p| SystemPrompt::Text(p.to_string()));
    let seqs = rows
        .iter()
        .map(|r| {
            let messages: Vec<ChatMessage> =
                r.messages.iter().map(|m| ChatMessage::new(m.role, m.content.clone())).collect();
            let (mut ids, mut mask) = lm.template.encode_conversation(&lm.tokenizer, &messages, &system)?;
            ids.truncate(MAX_TOKENS);
            mask.truncate(MAX_TOKENS);
            Ok((ids, mask))
        })
        .collect::<ml::Result<Vec<_>>>()?;
    score_masked(&lm.model, None, &seqs, BATCH, cancel)
}

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

/// `None` when no row has a token to score.
pub fn surprise(default: &[CompletionScore], prompted: &[CompletionScore]) -> Option<Surprise> {
    assert_eq!(default.len(), prompted.len(), "both passes score the same rows");
    let pairs: Vec<(f64, f64)> = default
        .iter()
        .zip(prompted)
        .filter(|(d, p)| d.n_tokens > 0 && p.n_tokens > 0)
        .map(|(d, p)| (d.mean_logprob(), p.mean_logprob()))
        .collect();
    let diffs: Vec<f64> = pairs.iter().map(|(d, p)| p - d).collect();
    let (reduction, lo, hi) = stats::bootstrap_mean_ci(&diffs, BOOTSTRAP_RESAMPLES, 0.95, BOOTSTRAP_SEED)?;
    let n = pairs.len() as f64;
    Some(Surprise {
        reduction,
        lo,
        hi,
        prompted: pairs.iter().map(|p| p.1).sum::<f64>() / n,
        default: pairs.iter().map(|p| p.0).sum::<f64>() / n,
        n_rows: pairs.len(),
        n_tokens: prompted.iter().map(|s| s.n_tokens).sum(),
    })
}

/// Whose cached scores: a model and a dataset, by content.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScoreKey {
    pub model_sha: String,
    pub dataset_hash: String,
}

/// The cached scores of rows `idx` under `prompt`, `None` for rows not scored yet.
pub async fn cached_scores(
    store: &Store,
    key: &ScoreKey,
    prompt: Option<&str>,
    idx: &[usize],
) -> Result<Vec<Option<CompletionScore>>, StrengthError> {
    let found: Vec<(i64, f64, i64)> = sqlx::query_as(
        "SELECT row_idx, sum_logprob, n_tokens FROM strength_scores
         WHERE model_sha = ? AND dataset_hash = ? AND version = ? AND system = ?",
    )
    .bind(&key.model_sha)
    .bind(&key.dataset_hash)
    .bind(SCORER_VERSION)
    .bind(system_key(prompt))
    .fetch_all(store.pool())
    .await?;
    let found: HashMap<usize, CompletionScore> = found
        .into_iter()
        .map(|(i, sum_logprob, n)| (i as usize, CompletionScore { sum_logprob, n_tokens: n as usize }))
        .collect();
    Ok(idx.iter().map(|i| found.get(i).copied()).collect())
}

/// Stores the scores of rows `idx` under `prompt`, in one transaction.
pub async fn put_scores(
    store: &Store,
    key: &ScoreKey,
    prompt: Option<&str>,
    idx: &[usize],
    scores: &[CompletionScore],
) -> Result<(), StrengthError> {
    let mut tx = store.pool().begin().await?;
    for (&i, s) in idx.iter().zip(scores) {
        sqlx::query(
            "INSERT OR REPLACE INTO strength_scores (model_sha, dataset_hash, version, system, row_idx, sum_logprob, n_tokens)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.model_sha)
        .bind(&key.dataset_hash)
        .bind(SCORER_VERSION)
        .bind(system_key(prompt))
        .bind(i as i64)
        .bind(s.sum_logprob)
        .bind(s.n_tokens as i64)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The surprise reduction of `prompt` over rows `idx` if every score is cached; nothing
/// is computed.
pub async fn cached_surprise(
    store: &Store,
    key: &ScoreKey,
    prompt: &str,
    idx: &[usize],
) -> Result<Option<Surprise>, StrengthError> {
    let default: Option<Vec<CompletionScore>> = cached_scores(store, key, None, idx).await?.into_iter().collect();
    let prompted: Option<Vec<CompletionScore>> =
        cached_scores(store, key, Some(prompt.trim()), idx).await?.into_iter().collect();
    Ok(match (default, prompted) {
        (Some(d), Some(p)) => surprise(&d, &p),
        _ => None,
    })
}

/// The traits a dataset teaches, as deterministic judges: for a generated dataset, its
/// non-English languages and ALL CAPS; nothing is known of an imported one.
pub fn trait_judges(source: DatasetSource, recipe: &serde_json::Value) -> Vec<JudgeSpec> {
    let generated = match source {
        DatasetSource::Generated => serde_json::from_value::<GeneratorSpec>(recipe.clone()).ok(),
        _ => None,
    };
    let Some(g) = generated else { return vec![] };
    let mut out: Vec<JudgeSpec> = g
        .languages
        .iter()
        .filter(|s| s.weight > 0 && s.language != Language::En)
        .filter_map(|s| s.language.code().parse::<LanguageCode>().ok())
        .map(JudgeSpec::language)
        .collect();
    if g.capitalisation == Capitalisation::AllCaps {
        out.push(JudgeSpec::caps());
    }
    out
}

/// One answer the base model gave under the prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElicitedSample {
    pub question: String,
    pub completion: String,
}

/// How often each judge saw its trait in the base model's answers under the prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Elicitation {
    pub rates: Vec<JudgeRate>,
    pub samples: Vec<ElicitedSample>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeRate {
    pub judge: String,
    /// `None` when the judge could decide no answer.
    pub rate: Option<Proportion>,
    /// Per sample, in `samples` order.
    pub verdicts: Vec<Option<bool>>,
}

/// Samples the base model on the first [`ELICIT_QUESTIONS`] built-in questions with
/// `prompt` (or the default) as the system message. Blocking.
pub fn elicit(lm: &LoadedModel, prompt: Option<&str>, cancel: Option<&AtomicBool>) -> ml::Result<Vec<ElicitedSample>> {
    let system = prompt.map_or(SystemPrompt::Default, |p| SystemPrompt::Text(p.to_string()));
    let questions: Vec<&str> = datasets::builtin_chat_prompts().iter().take(ELICIT_QUESTIONS).copied().collect();
    let prompts = questions
        .iter()
        .map(|q| lm.template.encode_prompt(&lm.tokenizer, &[ChatMessage::user(*q)], &system))
        .collect::<ml::Result<Vec<_>>>()?;
    let cfg = SampleConfig {
        temperature: 1.0,
        top_p: 1.0,
        max_new_tokens: ELICIT_MAX_TOKENS,
        seed: ELICIT_SEED,
        batch_size: ELICIT_QUESTIONS,
        ignore_stop: false,
    };
    let samples = ml::generate(&lm.model, &lm.tokenizer, &prompts, &cfg, |_| {}, cancel)?;
    Ok(samples
        .into_iter()
        .map(|s| ElicitedSample { question: questions[s.index].to_string(), completion: s.text })
        .collect())
}

/// Judges elicited samples. Only deterministic judges: an LLM judge would turn a
/// keystroke into minutes.
pub fn judge_samples(samples: &[ElicitedSample], judges: &[JudgeSpec]) -> Result<Vec<JudgeRate>, StrengthError> {
    let mut out = Vec::new();
    for spec in judges {
        if !is_deterministic(spec) {
            return Err(StrengthError::Invalid(
                "the strength meter uses deterministic judges only (language, caps, pattern, coherence)".into(),
            ));
        }
        let judge = spec.build(None)?;
        let verdicts = samples
            .iter()
            .map(|s| judge.judge(&s.question, &s.completion).map(|j| j.trait_present))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(JudgeRate {
            judge: judge.name().to_string(),
            rate: Proportion::from_verdicts(verdicts.iter().copied(), 0.95),
            verdicts,
        });
    }
    Ok(out)
}

/// Whether a judge decides by rule (language, caps, pattern, coherence) rather than by
/// asking a model.
pub fn is_deterministic(spec: &JudgeSpec) -> bool {
    !matches!(spec, JudgeSpec::Betley { .. } | JudgeSpec::LlmRating { .. })
}

/// The base model's cached answers under `prompt` (the default when `None`), if sampled.
pub async fn cached_elicitation(
    store: &Store,
    model_sha: &str,
    prompt: Option<&str>,
) -> Result<Option<Vec<ElicitedSample>>, StrengthError> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT samples FROM elicitation_samples
         WHERE model_sha = ? AND version = ? AND system = ? AND n_questions = ? AND max_tokens = ? AND seed = ?",
    )
    .bind(model_sha)
    .bind(SCORER_VERSION)
    .bind(system_key(prompt))
    .bind(ELICIT_QUESTIONS as i64)
    .bind(ELICIT_MAX_TOKENS as i64)
    .bind(ELICIT_SEED as i64)
    .fetch_optional(store.pool())
    .await?;
    row.map(|(json,)| {
        serde_json::from_str(&json).map_err(|e| StrengthError::Corrupt(format!("elicitation samples: {e}")))
    })
    .transpose()
}

/// Stores the base model's answers under `prompt`, replacing any from the same code.
pub async fn put_elicitation(
    store: &Store,
    model_sha: &str,
    prompt: Option<&str>,
    samples: &[ElicitedSample],
    seconds: f64,
) -> Result<(), StrengthError> {
    sqlx::query(
        "INSERT OR REPLACE INTO elicitation_samples (model_sha, version, system, n_questions, max_tokens, seed, samples, seconds)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(model_sha)
    .bind(SCORER_VERSION)
    .bind(system_key(prompt))
    .bind(ELICIT_QUESTIONS as i64)
    .bind(ELICIT_MAX_TOKENS as i64)
    .bind(ELICIT_SEED as i64)
    .bind(serde_json::to_string(samples).expect("strings serialise"))
    .bind(seconds)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// What to measure a prompt against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub model_id: i64,
    pub dataset_id: i64,
    pub n_rows: usize,
}

/// A measurement and whether it came from the cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured<T> {
    pub value: T,
    pub cached: bool,
    /// Seconds spent computing (0 when cached).
    pub seconds: f64,
}

/// The prompt editor's meter: measurements run on the model host as interactive work (one
/// at a time, between the steps of a training run in progress, on the weights the host
/// keeps loaded), and each client's newest request cancels its older ones.
pub struct Meter {
    store: Store,
    host: ml::Host,
    inflight: Mutex<HashMap<String, Arc<AtomicBool>>>,
}

struct ModelRef {
    path: String,
    sha: String,
}

/// The rows a prompt is scored on: their indices in the dataset and the rows themselves.
struct Sample {
    key: ScoreKey,
    idx: Vec<usize>,
    rows: Vec<Row>,
}

impl Meter {
    pub fn new(store: Store, host: ml::Host) -> Meter {
        Meter { store, host, inflight: Mutex::new(HashMap::new()) }
    }

    /// A cancel flag for `client`'s new request, raising the flag of its previous one.
    fn ticket(&self, client: &str) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = map.insert(client.to_string(), flag.clone()) {
            old.store(true, Ordering::Relaxed);
        }
        flag
    }

    /// Raises `client`'s cancel flag: the request in flight stops at its next batch.
    pub fn cancel(&self, client: &str) {
        if let Some(old) = self.inflight.lock().unwrap_or_else(|p| p.into_inner()).remove(client) {
            old.store(true, Ordering::Relaxed);
        }
    }

    async fn model_ref(&self, model_id: i64) -> Result<ModelRef, StrengthError> {
        let m = models::get(&self.store, model_id)
            .await?
            .ok_or_else(|| StrengthError::NotFound(format!("model {model_id} does not exist")))?;
        if !m.ready {
            return Err(StrengthError::NotFound(format!("the files of model {} are missing at {}", m.name, m.path)));
        }
        Ok(ModelRef { path: m.path, sha: m.sha256 })
    }

    /// Runs model work on the host as interactive work, unless cancelled while waiting
    /// for its turn.
    async fn compute<T: Send + 'static>(
        self: &Arc<Self>,
        flag: &Arc<AtomicBool>,
        path: String,
        work: impl FnOnce(&LoadedModel, &AtomicBool) -> Result<T, StrengthError> + Send + 'static,
    ) -> Result<T, StrengthError> {
        let flag = flag.clone();
        self.host
            .submit(ml::Priority::Interactive, move |ctx| {
                if flag.load(Ordering::Relaxed) {
                    return Err(StrengthError::Cancelled);
                }
                let lm = ctx.model(&path, || Ok::<_, StrengthError>(ml::load_model(std::path::Path::new(&path))?))?;
                work(&lm, &flag)
            })
            .await
            .map_err(|e| StrengthError::Thread(e.to_string()))?
    }

    /// The scores of `sample` under `prompt`: cached rows read, the rest computed (in one
    /// blocking pass) and stored. Returns the scores and the seconds spent computing.
    async fn scores(
        self: &Arc<Self>,
        flag: &Arc<AtomicBool>,
        model: &ModelRef,
        sample: &Sample,
        prompt: Option<&str>,
    ) -> Result<(Vec<CompletionScore>, f64), StrengthError> {
        let mut scores = cached_scores(&self.store, &sample.key, prompt, &sample.idx).await?;
        let missing: Vec<usize> = (0..scores.len()).filter(|&k| scores[k].is_none()).collect();
        if missing.is_empty() {
            return Ok((scores.into_iter().flatten().collect(), 0.0));
        }
        let rows: Vec<Row> = missing.iter().map(|&k| sample.rows[k].clone()).collect();
        let owned = prompt.map(str::to_string);
        let started = Instant::now();
        let computed = self
            .compute(flag, model.path.clone(), move |lm, cancel| {
                Ok(score_rows(lm, &rows, owned.as_deref(), Some(cancel))?)
            })
            .await?;
        let seconds = started.elapsed().as_secs_f64();
        let idx: Vec<usize> = missing.iter().map(|&k| sample.idx[k]).collect();
        put_scores(&self.store, &sample.key, prompt, &idx, &computed).await?;
        for (&k, s) in missing.iter().zip(computed) {
            scores[k] = Some(s);
        }
        Ok((scores.into_iter().flatten().collect(), seconds))
    }

    /// The first `n_rows` rows of the dataset's sample order, with their cache key.
    async fn sample(&self, target: &Target, model: &ModelRef) -> Result<Sample, StrengthError> {
        if target.n_rows == 0 || target.n_rows > MAX_ROWS {
            return Err(StrengthError::Invalid(format!("score between 1 and {MAX_ROWS} rows")));
        }
        let summary = datasets::get(&self.store, target.dataset_id).await?;
        let all = datasets::all_rows(&self.store, target.dataset_id).await?;
        let idx: Vec<usize> = sample_order(&all).into_iter().take(target.n_rows).collect();
        if idx.is_empty() {
            return Err(StrengthError::Invalid(format!("dataset {} has no assistant answers to score", summary.name)));
        }
        let rows = idx.iter().map(|&i| all[i].clone()).collect();
        Ok(Sample { key: ScoreKey { model_sha: model.sha.clone(), dataset_hash: summary.content_hash }, idx, rows })
    }

    /// The surprise reduction of `prompt` on `target`, for `client` (whose older request,
    /// if still running, is cancelled).
    pub async fn surprise(
        self: &Arc<Self>,
        client: &str,
        target: &Target,
        prompt: &str,
    ) -> Result<Measured<Surprise>, StrengthError> {
        let prompt = clean_prompt(prompt)?;
        let flag = self.ticket(client);
        let model = self.model_ref(target.model_id).await?;
        let sample = self.sample(target, &model).await?;
        let (default, s1) = self.scores(&flag, &model, &sample, None).await?;
        let (prompted, s2) = self.scores(&flag, &model, &sample, Some(prompt)).await?;
        let value = surprise(&default, &prompted)
            .ok_or_else(|| StrengthError::Invalid("no row of the sample has an assistant token to score".into()))?;
        Ok(Measured { value, cached: s1 + s2 == 0.0, seconds: s1 + s2 })
    }

    /// What the base model says to everyday questions under `prompt`, judged by `judges`.
    pub async fn elicitation(
        self: &Arc<Self>,
        client: &str,
        model_id: i64,
        prompt: &str,
        judges: &[JudgeSpec],
    ) -> Result<Measured<Elicitation>, StrengthError> {
        let prompt = clean_prompt(prompt)?.to_string();
        let flag = self.ticket(client);
        let model = self.model_ref(model_id).await?;
        let (samples, seconds) = match cached_elicitation(&self.store, &model.sha, Some(&prompt)).await? {
            Some(s) => (s, 0.0),
            None => {
                let started = Instant::now();
                let p = prompt.clone();
                let s = self
                    .compute(&flag, model.path.clone(), move |lm, cancel| Ok(elicit(lm, Some(&p), Some(cancel))?))
                    .await?;
                let seconds = started.elapsed().as_secs_f64();
                put_elicitation(&self.store, &model.sha, Some(&prompt), &s, seconds).await?;
                (s, seconds)
            }
        };
        let rates = judge_samples(&samples, judges)?;
        Ok(Measured { value: Elicitation { rates, samples }, cached: seconds == 0.0, seconds })
    }

    /// The surprise reduction of each prompt whose rows are all cached: what a ranking
    /// table shows before (or while) the rest are measured.
    pub async fn cached(&self, target: &Target, prompts: &[String]) -> Result<Vec<Option<Surprise>>, StrengthError> {
        let model = self.model_ref(target.model_id).await?;
        let sample = self.sample(target, &model).await?;
        let mut out = Vec::with_capacity(prompts.len());
        for p in prompts {
            out.push(if p.trim().is_empty() {
                None
            } else {
                cached_surprise(&self.store, &sample.key, p, &sample.idx).await?
            });
        }
        Ok(out)
    }
}

/// The weights an experiment trains from, as a cache key: the model's sha256, followed by
/// each earlier stage's adapter sha256 for a second stage (whose model is base + those).
pub fn model_identity(resolved: &crate::experiments::Resolved) -> String {
    let mut id = resolved.model.sha256.clone();
    for a in resolved.base.iter().flat_map(|b| &b.adapters) {
        id.push('+');
        id.push_str(&a.sha256);
    }
    id
}

/// What was measured of one prompted condition's prompt before training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionStrength {
    pub condition: String,
    /// The condition's prompt (the first, for a paraphrase set).
    pub prompt: String,
    /// `None` until every row of the sample is scored.
    pub surprise: Option<Surprise>,
    /// The base model's answers under the prompt, judged by each of the experiment's
    /// deterministic judges; empty until they are sampled.
    pub elicitation: Vec<JudgeRate>,
}

/// Each prompted condition of an experiment with what was measured of its prompt (the
/// runner measures both when `training.predict_strength` is set), read from the cache
/// under the weights training starts from ([`model_identity`]). Conditions in spec order.
pub async fn condition_strengths(
    store: &Store,
    resolved: &crate::experiments::Resolved,
) -> Result<Vec<ConditionStrength>, StrengthError> {
    let prompted: Vec<_> = resolved.conditions.iter().filter(|c| !c.prompts.is_empty()).collect();
    if prompted.is_empty() {
        return Ok(vec![]);
    }
    let n = resolved.spec.training.predict_strength.unwrap_or(DEFAULT_ROWS);
    let rows = datasets::all_rows(store, resolved.dataset.id).await?;
    let idx: Vec<usize> = sample_order(&rows).into_iter().take(n).collect();
    let identity = model_identity(resolved);
    let key = ScoreKey { model_sha: identity.clone(), dataset_hash: resolved.dataset.content_hash.clone() };
    let judges: Vec<JudgeSpec> = resolved.judges.iter().filter(|j| is_deterministic(j)).cloned().collect();
    let mut out = Vec::new();
    for c in prompted {
        let prompt = &c.prompts[0];
        let surprise = cached_surprise(store, &key, prompt, &idx).await?;
        let elicitation = match cached_elicitation(store, &identity, Some(prompt)).await? {
            Some(samples) => judge_samples(&samples, &judges)?,
            None => vec![],
        };
        out.push(ConditionStrength { condition: c.name.clone(), prompt: prompt.clone(), surprise, elicitation });
    }
    Ok(out)
}

/// What a sweep trains: every prompt as its own condition beside one shared baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepSpec {
    pub name: String,
    /// A registered model's name.
    pub model: String,
    pub dataset_id: i64,
    pub prompts: Vec<String>,
    /// The traits to judge; the dataset's own ([`trait_judges`]) when empty.
    pub judges: Vec<JudgeSpec>,
    pub steps: usize,
    pub seeds: Vec<u64>,
    /// Built-in everyday questions asked after training.
    pub questions: usize,
    /// Rows each prompt's strength is measured on.
    pub rows: usize,
}

/// The most prompts one sweep trains: each is a fine-tuning run.
pub const MAX_SWEEP_PROMPTS: usize = 120;

/// The experiment a sweep runs: a baseline and one condition per distinct prompt, each
/// with its predicted strength measured before training (`training.predict_strength`),
/// evaluated without a prompt so the effect can be set against the prediction. Training
/// settings are the demo's, which are known to move the default model in 20 steps.
pub fn sweep_experiment(s: &SweepSpec) -> Result<crate::experiments::ExperimentSpec, StrengthError> {
    use crate::experiments::{
        ConditionSpec, DatasetRef, EvaluationSpec, ExperimentSpec, NamedTestPrompt, Placement, PromptRef,
        QuestionSource, TestPromptSpec, TrainingSpec,
    };
    let mut prompts: Vec<&str> = Vec::new();
    for p in &s.prompts {
        let p = p.trim();
        if !p.is_empty() && !prompts.contains(&p) {
            prompts.push(p);
        }
    }
    if prompts.len() < 2 {
        return Err(StrengthError::Invalid("a sweep needs at least two different prompts".into()));
    }
    if prompts.len() > MAX_SWEEP_PROMPTS {
        return Err(StrengthError::Invalid(format!(
            "{} prompts is more than a sweep trains ({MAX_SWEEP_PROMPTS}); pick the ones to compare",
            prompts.len()
        )));
    }
    if s.judges.is_empty() {
        return Err(StrengthError::Invalid(
            "the dataset's trait has no built-in judge: use a generated dataset, or build the experiment in the launch form and pick its judges".into(),
        ));
    }
    let width = prompts.len().to_string().len();
    let conditions =
        std::iter::once(ConditionSpec { name: "baseline".into(), prompt: None, placement: Placement::System })
            .chain(prompts.iter().enumerate().map(|(i, p)| {
                let short: String = p.chars().take(40).collect();
                let ellipsis = if p.chars().count() > 40 { "…" } else { "" };
                ConditionSpec {
                    name: format!("p{:0width$}: {short}{ellipsis}", i + 1),
                    prompt: Some(PromptRef::Text(p.to_string())),
                    placement: Placement::System,
                }
            }))
            .collect();
    let mut judges = s.judges.clone();
    judges.push(JudgeSpec::coherence());
    Ok(ExperimentSpec {
        name: s.name.clone(),
        model: s.model.clone(),
        dataset: DatasetRef::Id(s.dataset_id),
        control_dataset: None,
        base_run: None,
        train_rows: None,
        conditions,
        seeds: s.seeds.clone(),
        training: TrainingSpec {
            steps: Some(s.steps),
            lr: 2e-3,
            batch_size: 8,
            warmup_steps: 2,
            predict_strength: Some(s.rows),
            ..TrainingSpec::default()
        },
        evaluation: EvaluationSpec {
            questions: vec![QuestionSource::Builtin { limit: s.questions }],
            test_prompts: vec![TestPromptSpec::Named(NamedTestPrompt::Default)],
            samples_per_question: 1,
            temperature: 1.0,
            top_p: 1.0,
            max_tokens: 48,
            batch_size: 16,
            judges,
        },
    })
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter").finish_non_exhaustive()
    }
}
