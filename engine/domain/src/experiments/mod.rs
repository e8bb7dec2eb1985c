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
//!
//! By concern: `spec` (what users write, its defaults and the checks that need no store),
//! `resolve` (every reference made content, `Resolved`), `plan` (the matrix, counts and a
//! time estimate), this module (storing, listing and reading experiments, test-time prompts
//! added later) and `results` (learning curves and trait-rate aggregates).

mod form;
mod plan;
mod resolve;
mod results;
mod spec;

pub use form::*;
pub use plan::*;
pub use resolve::*;
pub use results::*;
pub use spec::*;

use sha2::{Digest, Sha256};

use crate::datasets;
use crate::questions;
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

/// Stores a resolved experiment and enqueues its runs (conditions x seeds), atomically.
pub async fn create(store: &Store, resolved: &Resolved) -> Result<i64, ExperimentError> {
    let (json, hash) = stored_form(resolved);
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

/// The resolved experiment as stored, and its sha256 (`experiments.spec_hash`): the same
/// resolution of the same spec against the same store gives the same hash.
pub fn stored_form(resolved: &Resolved) -> (String, String) {
    let json = serde_json::to_string(resolved).expect("resolved experiments serialise");
    let hash = hex::encode(Sha256::digest(json.as_bytes()));
    (json, hash)
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

/// What [`add_test_prompts`] did: the wire crate's type.
pub use wire::experiments::AddedTestPrompts;

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
            // The form that adds test prompts offers system prompts only.
            TestPromptKind::Prefix(_) => {
                return Err(invalid("a question prefix cannot be added as a test prompt after the runs"))
            }
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
            "{} still queued or running; add test-time prompts once every run has finished (or cancel them first)",
            wire::counted(active.unsigned_abs(), "run of this experiment is", "runs of this experiment are")
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

/// The same runs as the launch form offers them, each with a label.
pub async fn finished_run_views(store: &Store) -> Result<Vec<FinishedRunView>, ExperimentError> {
    let label = |r: &FinishedRun| {
        format!("run {} · {} · {} · seed {} · {}", r.run_id, r.experiment, r.condition, r.seed, r.model)
    };
    Ok(finished_runs(store)
        .await?
        .iter()
        .map(|r| FinishedRunView { run_id: r.run_id, experiment_id: r.experiment_id, label: label(r) })
        .collect())
}

pub use wire::reports::FinishedRunView;
