//! The `judgements` table: the judges' verdicts on a run's samples, written by the runner
//! (pending work, a chunk with its progress), and counted per cell for
//! `crate::experiments::aggregates`.

use serde::{Deserialize, Serialize};

use super::{storable, Store};

/// What a judge says about one completion (`crate::judges::Judgement`, which re-exports it
/// and adds its constructors).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// The judge's measurement; its range is the judge's own (documented on each judge:
    /// [0, 1] for the deterministic ones, 0-100 for LLM ratings). `None` when the judge
    /// could not tell (too little text, no number from the LLM).
    pub score: Option<f64>,
    /// Whether the trait is expressed; `None` when undetermined. Rates must leave the
    /// undetermined out rather than count them as "absent" (see `stats::Proportion`).
    pub trait_present: Option<bool>,
    /// What the judge saw or said, JSON or text, shown to users next to the verdict.
    pub raw: String,
}

/// Verdicts already stored for the run's samples, over all judges.
pub async fn count_for_run(store: &Store, run_id: i64) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM judgements j JOIN samples s ON s.id = j.sample_id WHERE s.run_id = $1")
            .bind(run_id)
            .fetch_one(store.pool())
            .await?;
    Ok(n)
}

/// A sample still to judge: its id, the question and the answer.
pub type Pending = (i64, String, String);

/// The run's samples that lack a verdict from `judge` (its `name()`), oldest first.
pub async fn pending(store: &Store, run_id: i64, judge: &str) -> Result<Vec<Pending>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.id, s.question, s.completion FROM samples s
         WHERE s.run_id = $1 AND NOT EXISTS
           (SELECT 1 FROM judgements j WHERE j.sample_id = s.id AND j.judge = $2)
         ORDER BY s.id",
    )
    .bind(run_id)
    .bind(judge)
    .fetch_all(store.pool())
    .await
}

/// Stores one judge's verdicts (`(sample id, judgement)`) and the run's units done in one
/// transaction; a verdict is unique per sample and judge, and one already stored is kept,
/// so a retried chunk (a worker that took over a run) cannot duplicate or fail.
pub async fn insert_batch(
    store: &Store,
    run_id: i64,
    judge: &str,
    judge_version: &str,
    verdicts: &[(i64, Judgement)],
    done_units: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    for (id, j) in verdicts {
        sqlx::query(
            "INSERT INTO judgements (sample_id, judge, judge_version, score, trait_present, raw)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (sample_id, judge) DO NOTHING",
        )
        .bind(id)
        .bind(judge)
        .bind(judge_version)
        .bind(j.score)
        .bind(j.trait_present.map(i64::from))
        .bind(storable(&j.raw).into_owned())
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE runs SET done_units = $1 WHERE id = $2")
        .bind(done_units)
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// Verdict counts for one (condition, seed, test prompt, question, judge) group: condition,
/// seed, test prompt, question key, judge, judged, determined, trait present, unscored,
/// score sum (`None` when none scored), scored.
pub type CellCounts = (String, i64, String, String, String, i64, i64, i64, i64, Option<f64>, i64);

/// An experiment's verdicts counted per (condition, seed, test prompt, question, judge), in
/// condition, test prompt and judge order.
pub async fn cell_counts(store: &Store, experiment_id: i64) -> Result<Vec<CellCounts>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.condition, r.seed, s.test_prompt, s.question_key, j.judge,
                COUNT(*), COUNT(j.trait_present), COUNT(*) FILTER (WHERE j.trait_present = 1),
                COUNT(*) FILTER (WHERE j.score IS NULL), SUM(j.score), COUNT(j.score)
         FROM judgements j JOIN samples s ON s.id = j.sample_id JOIN runs r ON r.id = s.run_id
         WHERE r.experiment_id = $1
         GROUP BY r.condition_idx, r.condition, r.seed, s.test_prompt, s.question_key, j.judge
         ORDER BY r.condition_idx, s.test_prompt, j.judge",
    )
    .bind(experiment_id)
    .fetch_all(store.pool())
    .await
}
