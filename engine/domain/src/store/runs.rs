//! A run's own rows: where it stands (phase, units done, speed, ETA), its training steps
//! and probe log-probs, and its adapter's folder. Only the job runner writes them.

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
        sqlx::query_as("SELECT experiment_id, condition_idx, seed FROM runs WHERE id = ?")
            .bind(run_id)
            .fetch_one(store.pool())
            .await?;
    Ok(RunKey { experiment_id, condition_idx, seed })
}

/// Enters a phase with `done` of `total` units behind it; the previous phase's ETA no
/// longer applies.
pub async fn set_phase(store: &Store, run_id: i64, phase: RunPhase, done: i64, total: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE runs SET phase = ?, done_units = ?, total_units = ?, eta_s = NULL WHERE id = ?")
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
        "INSERT OR REPLACE INTO train_steps (run_id, step, loss, lr, grad_norm, tokens_per_sec, elapsed_s)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
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
    sqlx::query("UPDATE runs SET step = ?, total_steps = ?, tokens_per_sec = ?, eta_s = ? WHERE id = ?")
        .bind(s.step)
        .bind(s.total_steps)
        .bind(s.tokens_per_sec)
        .bind(s.eta_s)
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
    for (step, probe, logprob) in probes {
        sqlx::query("INSERT OR REPLACE INTO probe_logprobs (run_id, step, probe, logprob) VALUES (?, ?, ?, ?)")
            .bind(run_id)
            .bind(step)
            .bind(probe)
            .bind(logprob)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// Records the run's adapter folder, relative to the data directory.
pub async fn set_adapter(store: &Store, run_id: i64, relative_dir: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE runs SET adapter_dir = ? WHERE id = ?")
        .bind(relative_dir)
        .bind(run_id)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// A run's condition, seed and adapter folder (relative to the data directory; `None`
/// when it has none yet); `None` when the run does not exist.
pub async fn adapter_of(store: &Store, run_id: i64) -> Result<Option<(String, i64, Option<String>)>, sqlx::Error> {
    sqlx::query_as("SELECT condition, seed, adapter_dir FROM runs WHERE id = ?")
        .bind(run_id)
        .fetch_optional(store.pool())
        .await
}
