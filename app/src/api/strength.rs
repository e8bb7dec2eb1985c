//! Server functions for the prompt designer: the strength meter, the ranking table and
//! the sweep. The measuring itself runs in `engine::strength::Meter` (cached, one at a
//! time, a client's newer request cancelling its older one).

use leptos::prelude::*;

use crate::dto::{ElicitationResult, StrengthCandidate};
use crate::error::AppError;
use wire::reports::PredictionView;
use wire::strength::{Measured, Surprise, SweepForm};

#[cfg(feature = "ssr")]
mod convert {
    use super::*;

    /// Client ids come from the page; bound them so the cancel map stays small.
    pub fn client(c: &str) -> Result<&str, AppError> {
        if c.is_empty() || c.len() > 64 {
            Err(AppError::Invalid("a meter id of 1-64 characters is required".into()))
        } else {
            Ok(c)
        }
    }
}

/// The surprise reduction of `prompt` on a sample of `rows` rows of the dataset.
#[server]
pub async fn measure_strength(
    client: String,
    model_id: i64,
    dataset_id: i64,
    rows: usize,
    prompt: String,
) -> Result<Measured<Surprise>, AppError> {
    let state = crate::state::app_state()?;
    let target = engine::strength::Target { model_id, dataset_id, n_rows: rows };
    Ok(state.meter.surprise(convert::client(&client)?, &target, &prompt).await?)
}

/// How often the base model shows the dataset's traits under `prompt`.
#[server]
pub async fn measure_elicitation(
    client: String,
    model_id: i64,
    dataset_id: i64,
    prompt: String,
) -> Result<ElicitationResult, AppError> {
    let state = crate::state::app_state()?;
    let d = engine::datasets::get(&state.store, dataset_id).await?;
    let judges = engine::strength::trait_judges(d.source, &d.recipe);
    if judges.is_empty() {
        return Err(AppError::Invalid(
            "this dataset's trait has no built-in judge (it was imported), so only surprise is measured".into(),
        ));
    }
    let m = state.meter.elicitation(convert::client(&client)?, model_id, &prompt, &judges).await?;
    Ok(ElicitationResult {
        rates: m
            .value
            .rates
            .iter()
            .map(|r| {
                let (hits, n) = r.rate.map_or((0, 0), |p| (p.successes, p.n));
                (r.judge.clone(), engine::report::trait_words(&r.judge), hits, n)
            })
            .collect(),
        samples: m.value.samples.into_iter().map(|s| (s.question, s.completion)).collect(),
        cached: m.cached,
        seconds: m.seconds,
    })
}

/// Stops the client's measurement in flight (the page was left, or the text cleared).
#[server]
pub async fn cancel_strength(client: String) -> Result<(), AppError> {
    let state = crate::state::app_state()?;
    state.meter.cancel(convert::client(&client)?);
    Ok(())
}

/// Every library prompt (judge prompts aside) and every paraphrase of their latest
/// versions, with the strength already measured for this model, dataset and sample size.
#[server]
pub async fn strength_candidates(
    model_id: i64,
    dataset_id: i64,
    rows: usize,
) -> Result<Vec<StrengthCandidate>, AppError> {
    let state = crate::state::app_state()?;
    let mut out = Vec::new();
    for s in engine::prompts::list(&state.store, &engine::prompts::PromptQuery::default()).await? {
        if s.tags.iter().any(|t| t == "judge") {
            continue;
        }
        out.push(StrengthCandidate {
            label: s.name.clone(),
            set: None,
            prompt_id: s.id,
            text: s.text.clone(),
            surprise: None,
        });
        if s.paraphrase_count > 0 {
            let p = engine::prompts::get(&state.store, s.id).await?;
            for (i, text) in p.latest().paraphrases.iter().enumerate() {
                out.push(StrengthCandidate {
                    label: format!("{} · paraphrase {}", s.name, i + 1),
                    set: Some(s.name.clone()),
                    prompt_id: s.id,
                    text: text.clone(),
                    surprise: None,
                });
            }
        }
    }
    let target = engine::strength::Target { model_id, dataset_id, n_rows: rows };
    let texts: Vec<String> = out.iter().map(|c| c.text.clone()).collect();
    let cached = state.meter.cached(&target, &texts).await?;
    for (c, s) in out.iter_mut().zip(cached) {
        c.surprise = s;
    }
    Ok(out)
}

/// Creates a sweep: a shared baseline and one condition per prompt, each prompt's
/// strength measured before its training (a long one asks to be confirmed first:
/// `api::experiments::create_if_confirmed`).
#[server]
pub async fn launch_sweep(form: SweepForm, confirmed: Option<bool>) -> Result<crate::dto::Launched, AppError> {
    let state = crate::state::app_state()?;
    let spec = engine::strength::sweep_from_form(&state.store, &form).await?;
    let resolved = engine::experiments::resolve(&state.store, &spec).await?;
    crate::api::experiments::create_if_confirmed(&state, &resolved, confirmed).await
}

/// The predictor check of an experiment, one per judge; empty when no condition's
/// strength was measured.
#[server]
pub async fn get_predictions(experiment_id: i64) -> Result<Vec<PredictionView>, AppError> {
    let state = crate::state::app_state()?;
    let (r, _, _) = engine::experiments::get(&state.store, experiment_id).await?;
    let aggregates = engine::experiments::aggregates(&state.store, experiment_id).await?;
    let strengths = engine::strength::condition_strengths(&state.store, &r).await?;
    Ok(engine::report::prediction_views(&r, &aggregates, &strengths))
}
