//! The prompt-strength cache (`strength_scores`, `elicitation_samples`): per-row scores of
//! a dataset sample under a system prompt, and the base model's answers under a prompt,
//! both keyed by content. `crate::strength` composes the keys; the meter and the runner
//! read and fill it.

use super::Store;

/// Which cached scores: a model's weights and a dataset by content, the scorer's version
/// and the system prompt as a key (`default` or `text:` and the prompt).
#[derive(Debug, Clone, Copy)]
pub struct ScoresKey<'a> {
    pub model_sha: &'a str,
    pub dataset_hash: &'a str,
    pub version: i64,
    pub system: &'a str,
}

/// One row's cached score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowScore {
    pub row_idx: i64,
    pub sum_logprob: f64,
    pub n_tokens: i64,
}

/// Every row scored under `key`.
pub async fn scores(store: &Store, key: ScoresKey<'_>) -> Result<Vec<RowScore>, sqlx::Error> {
    let found: Vec<(i64, f64, i64)> = sqlx::query_as(
        "SELECT row_idx, sum_logprob, n_tokens FROM strength_scores
         WHERE model_sha = $1 AND dataset_hash = $2 AND version = $3 AND system = $4",
    )
    .bind(key.model_sha)
    .bind(key.dataset_hash)
    .bind(key.version)
    .bind(key.system)
    .fetch_all(store.pool())
    .await?;
    Ok(found.into_iter().map(|(row_idx, sum_logprob, n_tokens)| RowScore { row_idx, sum_logprob, n_tokens }).collect())
}

/// Stores rows' scores under `key` in one transaction, replacing any stored.
pub async fn put_scores(store: &Store, key: ScoresKey<'_>, rows: &[RowScore]) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    for s in rows {
        sqlx::query(
            "INSERT INTO strength_scores (model_sha, dataset_hash, version, system, row_idx, sum_logprob, n_tokens)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (model_sha, dataset_hash, version, system, row_idx)
             DO UPDATE SET sum_logprob = excluded.sum_logprob, n_tokens = excluded.n_tokens",
        )
        .bind(key.model_sha)
        .bind(key.dataset_hash)
        .bind(key.version)
        .bind(key.system)
        .bind(s.row_idx)
        .bind(s.sum_logprob)
        .bind(s.n_tokens)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Which cached answers: the weights, the sampler's version, the system prompt as a key
/// and the sampling settings.
#[derive(Debug, Clone, Copy)]
pub struct ElicitationKey<'a> {
    pub model_sha: &'a str,
    pub version: i64,
    pub system: &'a str,
    pub n_questions: i64,
    pub max_tokens: i64,
    pub seed: i64,
}

/// The answers stored under `key`, as the JSON they were stored as.
pub async fn elicitation(store: &Store, key: ElicitationKey<'_>) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT samples FROM elicitation_samples
         WHERE model_sha = $1 AND version = $2 AND system = $3 AND n_questions = $4 AND max_tokens = $5 AND seed = $6",
    )
    .bind(key.model_sha)
    .bind(key.version)
    .bind(key.system)
    .bind(key.n_questions)
    .bind(key.max_tokens)
    .bind(key.seed)
    .fetch_optional(store.pool())
    .await?;
    Ok(row.map(|(json,)| json))
}

/// Stores answers (JSON) under `key`, replacing any stored, with the seconds they took.
pub async fn put_elicitation(
    store: &Store,
    key: ElicitationKey<'_>,
    samples_json: &str,
    seconds: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO elicitation_samples (model_sha, version, system, n_questions, max_tokens, seed, samples, seconds)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (model_sha, version, system, n_questions, max_tokens, seed)
         DO UPDATE SET samples = excluded.samples, seconds = excluded.seconds, created_at = excluded.created_at",
    )
    .bind(key.model_sha)
    .bind(key.version)
    .bind(key.system)
    .bind(key.n_questions)
    .bind(key.max_tokens)
    .bind(key.seed)
    .bind(samples_json)
    .bind(seconds)
    .execute(store.pool())
    .await?;
    Ok(())
}
