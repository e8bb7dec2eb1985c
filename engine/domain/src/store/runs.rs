//! A run's own rows (`runs`, `train_steps`, `probe_logprobs`): where it stands (phase,
//! units done, speed, ETA), its training steps and probe log-probs, and its adapter's
//! folder. Only the job runner writes them; `crate::experiments` (curves, measured speed,
//! finished runs and a second stage's base) and `crate::export` (the adapter) read them.

use serde::{Deserialize, Serialize};
use wire::RunPhase;

use super::Store;

/// Which condition and seed of which experiment a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunKey {
    pub experiment_id: i64,
    pub condition_idx: i64,
    pub seed: i64,
}

pub async fn key(store: &Store, run_id: i64) -> Result<RunKey, sqlx::Error> {
    let (experiment_id, condition_idx, seed): (i64, i64, i64) =
        sqlx::query_as("SELECT experiment_id, condition_idx, seed FROM runs WHERE id = $1")
            .bind(run_id)
            .fetch_one(store.pool())
            .await?;
    Ok(RunKey { experiment_id, condition_idx, seed })
}

/// Enters a phase with `done` of `total` units behind it; the previous phase's ETA no
/// longer applies.
pub async fn set_phase(store: &Store, run_id: i64, phase: RunPhase, done: i64, total: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE runs SET phase = $1, done_units = $2, total_units = $3, eta_s = NULL WHERE id = $4")
        .bind(phase.as_str())
        .bind(done)
        .bind(total)
        .bind(run_id)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// One training step as the pages show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub step: i64,
    pub total_steps: i64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub tokens_per_sec: f64,
    pub elapsed_s: f64,
    /// Seconds left in training, from the recent steps' pace.
    pub eta_s: f64,
}

/// Records a step, the run's progress, and the probes' mean log-probs at the given steps
/// (`(step, probe, logprob)`), in one transaction: a page never sees a step without its
/// progress. Recording a step again replaces it (a resumed run repeats none, but may
/// rewrite its probes' step-0 values).
pub async fn record_step(
    store: &Store,
    run_id: i64,
    s: &Step,
    probes: &[(i64, String, f64)],
) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    sqlx::query(
        "INSERT INTO train_steps (run_id, step, loss, lr, grad_norm, tokens_per_sec, elapsed_s)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (run_id, step) DO UPDATE SET loss = excluded.loss, lr = excluded.lr,
             grad_norm = excluded.grad_norm, tokens_per_sec = excluded.tokens_per_sec, elapsed_s = excluded.elapsed_s",
    )
    .bind(run_id)
    .bind(s.step)
    .bind(s.loss)
    .bind(s.lr)
    .bind(s.grad_norm)
    .bind(s.tokens_per_sec)
    .bind(s.elapsed_s)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE runs SET step = $1, total_steps = $2, tokens_per_sec = $3, eta_s = $4 WHERE id = $5")
        .bind(s.step)
        .bind(s.total_steps)
        .bind(s.tokens_per_sec)
        .bind(s.eta_s)
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
    for (step, probe, logprob) in probes {
        sqlx::query(
            "INSERT INTO probe_logprobs (run_id, step, probe, logprob) VALUES ($1, $2, $3, $4)
             ON CONFLICT (run_id, probe, step) DO UPDATE SET logprob = excluded.logprob",
        )
        .bind(run_id)
        .bind(step)
        .bind(probe)
        .bind(logprob)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Records the run's adapter folder: its key in the artefact store.
pub async fn set_adapter(store: &Store, run_id: i64, relative_dir: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE runs SET adapter_dir = $1 WHERE id = $2")
        .bind(relative_dir)
        .bind(run_id)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// A finished run that a second stage can start from (it has an adapter).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinishedRun {
    pub run_id: i64,
    pub experiment_id: i64,
    pub experiment: String,
    pub condition: String,
    pub seed: i64,
    pub model: String,
}

/// Every finished run with an adapter, newest first.
pub async fn finished_with_adapter(store: &Store) -> Result<Vec<FinishedRun>, sqlx::Error> {
    let rows: Vec<(i64, i64, String, String, i64, String)> = sqlx::query_as(
        "SELECT r.id, e.id, e.name, r.condition, r.seed, m.name
         FROM runs r JOIN jobs j ON j.run_id = r.id JOIN experiments e ON e.id = r.experiment_id
         JOIN models m ON m.id = e.model_id
         WHERE j.status = 'done' AND r.adapter_dir IS NOT NULL ORDER BY r.id DESC",
    )
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| FinishedRun {
            run_id: r.0,
            experiment_id: r.1,
            experiment: r.2,
            condition: r.3,
            seed: r.4,
            model: r.5,
        })
        .collect())
}

/// What a second stage needs to know of the run it starts from.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOrigin {
    pub experiment_id: i64,
    pub condition: String,
    pub seed: i64,
    /// Relative to the data directory; `None` until training saved it.
    pub adapter_dir: Option<String>,
    /// Its job's status, as stored.
    pub status: String,
    pub model_id: i64,
    pub experiment_name: String,
}

pub async fn origin(store: &Store, run_id: i64) -> Result<Option<RunOrigin>, sqlx::Error> {
    let row: Option<(i64, String, i64, Option<String>, String, i64, String)> = sqlx::query_as(
        "SELECT r.experiment_id, r.condition, r.seed, r.adapter_dir, j.status, e.model_id, e.name
         FROM runs r JOIN jobs j ON j.run_id = r.id JOIN experiments e ON e.id = r.experiment_id WHERE r.id = $1",
    )
    .bind(run_id)
    .fetch_optional(store.pool())
    .await?;
    Ok(row.map(|(experiment_id, condition, seed, adapter_dir, status, model_id, experiment_name)| RunOrigin {
        experiment_id,
        condition,
        seed,
        adapter_dir,
        status,
        model_id,
        experiment_name,
    }))
}

/// A run's condition, seed and adapter folder (its key in the artefact store; `None`
/// when it has none yet); `None` when the run does not exist.
pub async fn adapter_of(store: &Store, run_id: i64) -> Result<Option<(String, i64, Option<String>)>, sqlx::Error> {
    sqlx::query_as("SELECT condition, seed, adapter_dir FROM runs WHERE id = $1")
        .bind(run_id)
        .fetch_optional(store.pool())
        .await
}

/// What a teacher generation needs of the run whose adapter it samples.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterSource {
    pub experiment_id: i64,
    pub condition: String,
    pub seed: i64,
    /// Relative to the data directory; `None` until training saved it.
    pub adapter_dir: Option<String>,
    /// The base model it was trained on.
    pub model_id: i64,
    pub model_name: String,
}

pub async fn adapter_source(store: &Store, run_id: i64) -> Result<Option<AdapterSource>, sqlx::Error> {
    let run: Option<(i64, String, i64, Option<String>, i64, String)> = sqlx::query_as(
        "SELECT r.experiment_id, r.condition, r.seed, r.adapter_dir, e.model_id, m.name
         FROM runs r JOIN experiments e ON e.id = r.experiment_id JOIN models m ON m.id = e.model_id
         WHERE r.id = $1",
    )
    .bind(run_id)
    .fetch_optional(store.pool())
    .await?;
    Ok(run.map(|(experiment_id, condition, seed, adapter_dir, model_id, model_name)| AdapterSource {
        experiment_id,
        condition,
        seed,
        adapter_dir,
        model_id,
        model_name,
    }))
}

/// A run whose adapter can teach: its training finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeacherRun {
    pub run_id: i64,
    pub experiment: String,
    pub condition: String,
    pub seed: i64,
    /// The base model the adapter belongs to.
    pub model: String,
}

/// The newest `limit` runs with a saved adapter, whatever their job's status.
pub async fn with_adapter(store: &Store, limit: i64) -> Result<Vec<TeacherRun>, sqlx::Error> {
    let runs: Vec<(i64, String, String, i64, String)> = sqlx::query_as(
        "SELECT r.id, e.name, r.condition, r.seed, m.name
         FROM runs r JOIN experiments e ON e.id = r.experiment_id JOIN models m ON m.id = e.model_id
         WHERE r.adapter_dir IS NOT NULL ORDER BY r.id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    Ok(runs
        .into_iter()
        .map(|(run_id, experiment, condition, seed, model)| TeacherRun { run_id, experiment, condition, seed, model })
        .collect())
}

/// Throughput measured on this machine for a model's earlier runs: mean seconds per
/// training step (over finished trainings) and mean sampled tokens per second (over done
/// runs); `None` where nothing was measured.
pub async fn measured_speed(store: &Store, model_id: i64) -> Result<(Option<f64>, Option<f64>), sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT AVG(t.elapsed_s / t.step) FROM train_steps t JOIN runs r ON r.id = t.run_id
                 JOIN experiments e ON e.id = r.experiment_id
                 WHERE e.model_id = $1 AND t.step = r.total_steps AND t.step > 0),
                (SELECT AVG(r.tokens_per_sec) FROM runs r JOIN experiments e ON e.id = r.experiment_id
                 JOIN jobs j ON j.run_id = r.id
                 WHERE e.model_id = $2 AND j.status = 'done' AND r.tokens_per_sec > 0)",
    )
    .bind(model_id)
    .bind(model_id)
    .fetch_one(store.pool())
    .await
}

/// Every probe log-prob of an experiment's runs as (run id, condition, seed, probe, step,
/// log-prob), by condition, seed, probe and step.
pub async fn probe_points(
    store: &Store,
    experiment_id: i64,
) -> Result<Vec<(i64, String, i64, String, i64, f64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.id, r.condition, r.seed, p.probe, p.step, p.logprob
         FROM probe_logprobs p JOIN runs r ON r.id = p.run_id
         WHERE r.experiment_id = $1 ORDER BY r.condition_idx, r.seed, p.probe, p.step",
    )
    .bind(experiment_id)
    .fetch_all(store.pool())
    .await
}

/// Every training step's loss of an experiment's runs as (run id, condition, seed, step,
/// loss), by condition, seed and step.
pub async fn loss_points(store: &Store, experiment_id: i64) -> Result<Vec<(i64, String, i64, i64, f64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.id, r.condition, r.seed, t.step, t.loss
         FROM train_steps t JOIN runs r ON r.id = t.run_id
         WHERE r.experiment_id = $1 ORDER BY r.condition_idx, r.seed, t.step",
    )
    .bind(experiment_id)
    .fetch_all(store.pool())
    .await
}
