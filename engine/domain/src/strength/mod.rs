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
//! typed again costs a lookup (`cache`; the SQL is `store::strength`). [`Meter`] (`meter`)
//! serves the web's prompt editor on the model host, each client's newer request
//! cancelling its older one; `sweep` turns a list of prompts into an experiment that
//! measures each before training.

mod cache;
mod meter;
mod sweep;

pub use cache::{
    cached_elicitation, cached_scores, cached_surprise, condition_strengths, model_identity, put_elicitation,
    put_scores, ConditionStrength, ScoreKey,
};
pub use meter::{Measured, Meter, Target};
pub use sweep::{sweep_experiment, sweep_from_form, SweepForm, SweepSpec, MAX_SWEEP_PROMPTS};

use std::sync::atomic::AtomicBool;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::datasets::{self, Capitalisation, DatasetError, DatasetSource, GeneratorSpec, Language, Row};
use crate::judges::{JudgeError, JudgeSpec, LanguageCode};
use crate::models::ModelError;
use crate::stats::{self, Proportion};
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

/// Surprise reduction with its interval: the wire crate's type, shared with the pages.
pub use wire::strength::Surprise;

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
    !matches!(spec, JudgeSpec::Betley { .. } | JudgeSpec::LlmRating { .. } | JudgeSpec::Quality { .. })
}
