//! The `experiments` table (a resolved spec stored as JSON with its hash, the model and
//! dataset it uses) and `experiment_test_prompts` (test-time prompts added after its runs
//! finished). `crate::experiments` calls it and keeps resolving, planning and the
//! statistics; `crate::samples` reads a spec's test-prompt order here. Creating an
//! experiment with its runs and their jobs is one transaction here; adding test-time
//! prompts is one transaction that `crate::experiments` begins with `Store::begin` and
//! drives through the functions taking a connection.

use super::{Connection, Store};

/// An experiment to store.
#[derive(Debug, Clone, Copy)]
pub struct NewExperiment<'a> {
    pub name: &'a str,
    /// The resolved experiment as JSON, and its sha256.
    pub spec: &'a str,
    pub spec_hash: &'a str,
    pub model_id: i64,
    pub dataset_id: i64,
}

/// One run (a condition x seed) of a new experiment.
#[derive(Debug, Clone, Copy)]
pub struct NewRun<'a> {
    pub condition_idx: i64,
    pub condition: &'a str,
    pub seed: i64,
    pub total_steps: i64,
    pub total_units: i64,
}

/// Stores an experiment, its runs and one queued job per run, in one transaction: the
/// worker never sees an experiment without its runs. Returns the experiment's id.
pub async fn create(store: &Store, e: &NewExperiment<'_>, runs: &[NewRun<'_>]) -> Result<i64, sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO experiments (name, spec, spec_hash, model_id, dataset_id) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(e.name)
    .bind(e.spec)
    .bind(e.spec_hash)
    .bind(e.model_id)
    .bind(e.dataset_id)
    .fetch_one(&mut *tx)
    .await?;
    for r in runs {
        let (run_id,): (i64,) = sqlx::query_as(
            "INSERT INTO runs (experiment_id, condition_idx, condition, seed, total_steps, total_units)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(id)
        .bind(r.condition_idx)
        .bind(r.condition)
        .bind(r.seed)
        .bind(r.total_steps)
        .bind(r.total_units)
        .fetch_one(&mut *tx)
        .await?;
        super::jobs::enqueue(&mut tx, run_id).await?;
    }
    tx.commit().await?;
    Ok(id)
}

pub use wire::experiments::ExperimentSummary;

/// Every experiment, newest first.
pub async fn list(store: &Store) -> Result<Vec<ExperimentSummary>, sqlx::Error> {
    let rows: Vec<(i64, String, String, String, String, i64, i64, i64, i64, String)> = sqlx::query_as(
        "SELECT e.id, e.name, m.name, d.name, e.created_at,
                COUNT(j.id),
                COUNT(*) FILTER (WHERE j.status = 'done'),
                COUNT(*) FILTER (WHERE j.status IN ('queued', 'running')),
                COUNT(*) FILTER (WHERE j.status IN ('failed', 'interrupted')),
                e.spec_hash
         FROM experiments e JOIN models m ON m.id = e.model_id JOIN datasets d ON d.id = e.dataset_id
         LEFT JOIN runs r ON r.experiment_id = e.id LEFT JOIN jobs j ON j.run_id = r.id
         GROUP BY e.id, m.name, d.name ORDER BY e.id DESC",
    )
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ExperimentSummary {
            id: r.0,
            name: r.1,
            model: r.2,
            dataset: r.3,
            created_at: r.4,
            runs: r.5,
            runs_done: r.6,
            runs_active: r.7,
            runs_failed: r.8,
            spec_hash: r.9,
        })
        .collect())
}

/// The stored spec (JSON), its hash and creation time.
pub async fn get(store: &Store, id: i64) -> Result<Option<(String, String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT spec, spec_hash, created_at FROM experiments WHERE id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await
}

/// The stored spec (JSON) alone.
pub async fn spec(store: &Store, id: i64) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT spec FROM experiments WHERE id = $1").bind(id).fetch_optional(store.pool()).await?;
    Ok(row.map(|(spec,)| spec))
}

/// The test-time prompts added after the fact, in the order they were added, as (label,
/// kind, text).
pub async fn added_test_prompts(
    store: &Store,
    experiment_id: i64,
) -> Result<Vec<(String, String, Option<String>)>, sqlx::Error> {
    sqlx::query_as("SELECT label, kind, text FROM experiment_test_prompts WHERE experiment_id = $1 ORDER BY position")
        .bind(experiment_id)
        .fetch_all(store.pool())
        .await
}

/// The labels of the test-time prompts added after the fact, in the order they were added.
pub async fn added_test_prompt_labels(store: &Store, experiment_id: i64) -> Result<Vec<String>, sqlx::Error> {
    let added: Vec<(String,)> =
        sqlx::query_as("SELECT label FROM experiment_test_prompts WHERE experiment_id = $1 ORDER BY position")
            .bind(experiment_id)
            .fetch_all(store.pool())
            .await?;
    Ok(added.into_iter().map(|(l,)| l).collect())
}

/// The position the next added test-time prompt takes.
pub async fn next_test_prompt_position(conn: &mut Connection, experiment_id: i64) -> Result<i64, sqlx::Error> {
    let (start,): (i64,) =
        sqlx::query_as("SELECT COALESCE(MAX(position) + 1, 0) FROM experiment_test_prompts WHERE experiment_id = $1")
            .bind(experiment_id)
            .fetch_one(conn)
            .await?;
    Ok(start)
}

/// A test-time prompt added to a finished experiment.
#[derive(Debug, Clone, Copy)]
pub struct NewTestPrompt<'a> {
    pub position: i64,
    pub label: &'a str,
    /// `default`, `none`, `inoculation` or `text` (then with `text`).
    pub kind: &'a str,
    pub text: Option<&'a str>,
    pub prompt_version_id: Option<i64>,
}

/// Adds a test-time prompt; a label the experiment already has is a unique violation.
pub async fn insert_test_prompt(
    conn: &mut Connection,
    experiment_id: i64,
    t: &NewTestPrompt<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO experiment_test_prompts (experiment_id, position, label, kind, text, prompt_version_id)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(experiment_id)
    .bind(t.position)
    .bind(t.label)
    .bind(t.kind)
    .bind(t.text)
    .bind(t.prompt_version_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// How many of the experiment's jobs failed, were cancelled or interrupted.
pub async fn unfinished_jobs(conn: &mut Connection, experiment_id: i64) -> Result<i64, sqlx::Error> {
    let (others,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM jobs j JOIN runs r ON r.id = j.run_id
         WHERE r.experiment_id = $1 AND j.status IN ('failed', 'cancelled', 'interrupted')",
    )
    .bind(experiment_id)
    .fetch_one(conn)
    .await?;
    Ok(others)
}
