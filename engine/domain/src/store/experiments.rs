//! The `experiments` table and `experiment_test_prompts` (test-time prompts added after an
//! experiment's runs finished): what `crate::samples` reads of them to order a question's
//! columns. (`crate::experiments` still holds its own queries.)

use super::Store;

/// The stored spec (JSON) alone.
pub async fn spec(store: &Store, id: i64) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT spec FROM experiments WHERE id = ?").bind(id).fetch_optional(store.pool()).await?;
    Ok(row.map(|(spec,)| spec))
}

/// The labels of the test-time prompts added after the fact, in the order they were added.
pub async fn added_test_prompt_labels(store: &Store, experiment_id: i64) -> Result<Vec<String>, sqlx::Error> {
    let added: Vec<(String,)> =
        sqlx::query_as("SELECT label FROM experiment_test_prompts WHERE experiment_id = ? ORDER BY position")
            .bind(experiment_id)
            .fetch_all(store.pool())
            .await?;
    Ok(added.into_iter().map(|(l,)| l).collect())
}
