//! The prompt designer's meter: measurements for the web, run on the model host.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{
    cached_elicitation, cached_scores, cached_surprise, clean_prompt, elicit, judge_samples, put_elicitation,
    put_scores, sample_order, score_rows, surprise, Elicitation, ScoreKey, StrengthError, Surprise, MAX_ROWS,
};
use crate::datasets::{self, Row};
use crate::judges::JudgeSpec;
use crate::{models, Store};
use ml::score::CompletionScore;
use ml::LoadedModel;

/// What to measure a prompt against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub model_id: i64,
    pub dataset_id: i64,
    pub n_rows: usize,
}

pub use wire::strength::Measured;

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

    /// The model host its work runs on (also the judge check's, on the local model).
    pub fn host(&self) -> &ml::Host {
        &self.host
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

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter").finish_non_exhaustive()
    }
}
