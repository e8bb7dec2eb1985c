//! The measurement cache as the domain sees it: scores and elicited answers looked up by
//! content (the SQL is `store::strength`), and what an experiment's runs measured of its
//! prompts.

use std::collections::HashMap;

use super::{
    is_deterministic, judge_samples, sample_order, surprise, system_key, ElicitedSample, JudgeRate, StrengthError,
    Surprise, DEFAULT_ROWS, ELICIT_MAX_TOKENS, ELICIT_QUESTIONS, ELICIT_SEED, SCORER_VERSION,
};
use crate::datasets;
use crate::judges::JudgeSpec;
use crate::store::strength::{self as sql, ElicitationKey, RowScore, ScoresKey};
use crate::Store;
use ml::score::CompletionScore;
use serde::{Deserialize, Serialize};

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
    let system = system_key(prompt);
    let found = sql::scores(store, scores_key(key, &system)).await?;
    let found: HashMap<usize, CompletionScore> = found
        .into_iter()
        .map(|s| (s.row_idx as usize, CompletionScore { sum_logprob: s.sum_logprob, n_tokens: s.n_tokens as usize }))
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
    let system = system_key(prompt);
    let rows: Vec<RowScore> = idx
        .iter()
        .zip(scores)
        .map(|(&i, s)| RowScore { row_idx: i as i64, sum_logprob: s.sum_logprob, n_tokens: s.n_tokens as i64 })
        .collect();
    sql::put_scores(store, scores_key(key, &system), &rows).await?;
    Ok(())
}

fn scores_key<'a>(key: &'a ScoreKey, system: &'a str) -> ScoresKey<'a> {
    ScoresKey { model_sha: &key.model_sha, dataset_hash: &key.dataset_hash, version: SCORER_VERSION, system }
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

fn elicitation_key<'a>(model_sha: &'a str, system: &'a str) -> ElicitationKey<'a> {
    ElicitationKey {
        model_sha,
        version: SCORER_VERSION,
        system,
        n_questions: ELICIT_QUESTIONS as i64,
        max_tokens: ELICIT_MAX_TOKENS as i64,
        seed: ELICIT_SEED as i64,
    }
}

/// The base model's cached answers under `prompt` (the default when `None`), if sampled.
pub async fn cached_elicitation(
    store: &Store,
    model_sha: &str,
    prompt: Option<&str>,
) -> Result<Option<Vec<ElicitedSample>>, StrengthError> {
    let system = system_key(prompt);
    sql::elicitation(store, elicitation_key(model_sha, &system)).await?.map(|json| elicited(&json)).transpose()
}

/// Elicited samples as the cache stores them (JSON).
fn elicited(json: &str) -> Result<Vec<ElicitedSample>, StrengthError> {
    serde_json::from_str(json).map_err(|e| StrengthError::Corrupt(format!("elicitation samples: {e}")))
}

/// Stores the base model's answers under `prompt`, replacing any from the same code.
pub async fn put_elicitation(
    store: &Store,
    model_sha: &str,
    prompt: Option<&str>,
    samples: &[ElicitedSample],
    seconds: f64,
) -> Result<(), StrengthError> {
    let system = system_key(prompt);
    let json = serde_json::to_string(samples).expect("strings serialise");
    sql::put_elicitation(store, elicitation_key(model_sha, &system), &json, seconds).await?;
    Ok(())
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
    let order = scoring_order(store, resolved.dataset.id, &resolved.dataset.content_hash).await?;
    let idx: Vec<usize> = order.iter().copied().take(n).collect();
    let identity = model_identity(resolved);
    let key = ScoreKey { model_sha: identity.clone(), dataset_hash: resolved.dataset.content_hash.clone() };
    let judges: Vec<JudgeSpec> = resolved.judges.iter().filter(|j| is_deterministic(j)).cloned().collect();
    let mut out = Vec::new();
    for c in prompted {
        let prompt = &c.prompts[0];
        let surprise = cached_surprise(store, &key, prompt, &idx).await?;
        let system = system_key(Some(prompt));
        let elicitation = match sql::elicitation(store, elicitation_key(&identity, &system)).await? {
            Some(json) => judged_elicitation(&json, &judges)?,
            None => vec![],
        };
        out.push(ConditionStrength { condition: c.name.clone(), prompt: prompt.clone(), surprise, elicitation });
    }
    Ok(out)
}

/// Small process-wide memos for what the experiment page and report ask on every view and
/// that only changes with content: entries are keyed by that content, so a stale entry is
/// impossible (web nodes sharing a database each keep their own). Emptied when full.
struct Memo<K, V> {
    map: std::sync::Mutex<HashMap<K, std::sync::Arc<V>>>,
}

impl<K: std::hash::Hash + Eq, V> Memo<K, V> {
    const MAX: usize = 64;

    fn new() -> Memo<K, V> {
        Memo { map: std::sync::Mutex::new(HashMap::new()) }
    }

    fn get(&self, k: &K) -> Option<std::sync::Arc<V>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).get(k).cloned()
    }

    fn put(&self, k: K, v: V) -> std::sync::Arc<V> {
        let v = std::sync::Arc::new(v);
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(k, v.clone());
        v
    }
}

/// [`sample_order`] of a dataset, remembered by its content hash: finding it reads every
/// row (5,000 rows of messages for a large import), which a page view must not.
pub async fn scoring_order(
    store: &Store,
    dataset_id: i64,
    content_hash: &str,
) -> Result<std::sync::Arc<Vec<usize>>, StrengthError> {
    static ORDERS: std::sync::OnceLock<Memo<String, Vec<usize>>> = std::sync::OnceLock::new();
    let memo = ORDERS.get_or_init(Memo::new);
    if let Some(order) = memo.get(&content_hash.to_string()) {
        return Ok(order);
    }
    let rows = datasets::all_rows(store, dataset_id).await?;
    Ok(memo.put(content_hash.to_string(), sample_order(&rows)))
}

/// [`judge_samples`] of stored elicitation samples (their JSON), remembered by the samples'
/// and the judges' content: the language judge costs milliseconds per answer.
fn judged_elicitation(json: &str, judges: &[JudgeSpec]) -> Result<Vec<JudgeRate>, StrengthError> {
    static JUDGED: std::sync::OnceLock<Memo<(String, String), Vec<JudgeRate>>> = std::sync::OnceLock::new();
    let memo = JUDGED.get_or_init(Memo::new);
    let key = (serde_json::to_string(judges).expect("specs serialise"), json.to_string());
    if let Some(rates) = memo.get(&key) {
        return Ok(rates.as_ref().clone());
    }
    Ok(memo.put(key, judge_samples(&elicited(json)?, judges)?).as_ref().clone())
}
