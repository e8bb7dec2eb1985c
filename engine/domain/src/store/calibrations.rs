//! The judge check's stored results (`judge_calibrations`), keyed by judge configuration;
//! `crate::judges::calibration` composes the key and the JSON.

use super::Store;

/// The stored result (JSON) for `key`, if any.
pub async fn get(store: &Store, key: &str) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as("SELECT result FROM judge_calibrations WHERE key = $1")
        .bind(key)
        .fetch_optional(store.pool())
        .await?;
    Ok(row.map(|r| r.0))
}

/// Stores a result, replacing one stored under the same key (two workers that checked the
/// same judge at once wrote the same verdicts).
pub async fn put(store: &Store, key: &str, judge: &str, result: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO judge_calibrations (key, judge, result) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE SET judge = excluded.judge, result = excluded.result",
    )
    .bind(key)
    .bind(judge)
    .bind(result)
    .execute(store.pool())
    .await?;
    Ok(())
}
