//! The runner's writes of sampled answers. (Reading them back for the pages, with filters
//! and search, is `crate::samples`.)

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::Store;

/// One judge's stored verdict on a sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredJudgement {
    pub judge: String,
    pub version: String,
    pub score: Option<f64>,
    pub trait_present: Option<bool>,
    pub raw: String,
}

/// A stored sample as the pages show it: its run's condition and seed, and every judge's
/// verdict (sorted by judge name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSample {
    pub id: i64,
    pub run_id: i64,
    pub condition: String,
    pub seed: i64,
    pub test_prompt: String,
    pub system_text: Option<String>,
    pub question_key: String,
    pub paraphrase: i64,
    pub question: String,
    pub sample_idx: i64,
    pub completion: String,
    pub n_tokens: i64,
    pub finished: bool,
    pub judgements: Vec<StoredJudgement>,
}

/// What identifies a sample within its run: test prompt, question key, paraphrase index,
/// sample index. The table holds each at most once (a unique index), so a retried batch
/// cannot duplicate.
pub type SampleKey = (String, String, i64, i64);

pub async fn stored_keys(store: &Store, run_id: i64) -> Result<HashSet<SampleKey>, sqlx::Error> {
    let rows: Vec<SampleKey> =
        sqlx::query_as("SELECT test_prompt, question_key, paraphrase, sample_idx FROM samples WHERE run_id = ?")
            .bind(run_id)
            .fetch_all(store.pool())
            .await?;
    Ok(rows.into_iter().collect())
}

pub async fn count(store: &Store, run_id: i64) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM samples WHERE run_id = ?").bind(run_id).fetch_one(store.pool()).await?;
    Ok(n)
}

/// One sampled answer, as the runner made it.
#[derive(Debug, Clone)]
pub struct NewSample<'a> {
    pub test_prompt: &'a str,
    /// The system prompt the model saw, as text (`None`: none at all).
    pub system_text: Option<String>,
    pub question_key: &'a str,
    pub question_set: &'a str,
    pub paraphrase: i64,
    pub question: &'a str,
    pub sample_idx: i64,
    pub seed: i64,
    pub completion: &'a str,
    pub n_tokens: i64,
    pub finished: bool,
}

/// Where the sampling phase stands after a batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub done_units: i64,
    pub tokens_per_sec: f64,
    pub eta_s: f64,
}

/// Stores a batch of samples and the run's progress in one transaction: a sample row is
/// whole or absent, and progress never counts a sample that is not stored.
pub async fn insert_batch(
    store: &Store,
    run_id: i64,
    batch: &[NewSample<'_>],
    progress: Progress,
) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    for s in batch {
        sqlx::query(
            "INSERT INTO samples (run_id, test_prompt, system_text, question_key, question_set, paraphrase,
                                  question, sample_idx, seed, completion, n_tokens, finished)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(run_id)
        .bind(s.test_prompt)
        .bind(&s.system_text)
        .bind(s.question_key)
        .bind(s.question_set)
        .bind(s.paraphrase)
        .bind(s.question)
        .bind(s.sample_idx)
        .bind(s.seed)
        .bind(s.completion)
        .bind(s.n_tokens)
        .bind(s.finished)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE runs SET done_units = ?, tokens_per_sec = ?, eta_s = ? WHERE id = ?")
        .bind(progress.done_units)
        .bind(progress.tokens_per_sec)
        .bind(progress.eta_s)
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}
