//! The `question_sets` table: imported evaluation questions, stored whole as JSON by
//! content hash. `crate::questions` calls it and keeps parsing, hashing and (de)serialising
//! the questions.

use super::Store;

pub use wire::questions::QuestionSetSummary;

/// The set stored with this content hash, if any.
pub async fn id_by_hash(store: &Store, content_hash: &str) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query_as::<_, (i64,)>("SELECT id FROM question_sets WHERE content_hash = $1")
        .bind(content_hash)
        .fetch_optional(store.pool())
        .await?;
    Ok(row.map(|(id,)| id))
}

/// Stores a set (`questions`: its JSON) and returns its id.
pub async fn insert(
    store: &Store,
    name: &str,
    format: &str,
    content_hash: &str,
    questions: &str,
    n_questions: i64,
) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO question_sets (name, format, content_hash, questions, n_questions) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(name)
    .bind(format)
    .bind(content_hash)
    .bind(questions)
    .bind(n_questions)
    .fetch_one(store.pool())
    .await?;
    Ok(id)
}

/// Every set, newest first.
pub async fn list(store: &Store) -> Result<Vec<QuestionSetSummary>, sqlx::Error> {
    let rows: Vec<(i64, String, String, i64, String, String)> = sqlx::query_as(
        "SELECT id, name, format, n_questions, content_hash, created_at FROM question_sets ORDER BY id DESC",
    )
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, format, n_questions, content_hash, created_at)| QuestionSetSummary {
            id,
            name,
            format,
            n_questions,
            content_hash,
            created_at,
        })
        .collect())
}

/// One set and its questions' JSON.
pub async fn get(store: &Store, id: i64) -> Result<Option<(QuestionSetSummary, String)>, sqlx::Error> {
    let row: Option<(i64, String, String, i64, String, String, String)> = sqlx::query_as(
        "SELECT id, name, format, n_questions, content_hash, created_at, questions FROM question_sets WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    Ok(row.map(|(id, name, format, n_questions, content_hash, created_at, json)| {
        (QuestionSetSummary { id, name, format, n_questions, content_hash, created_at }, json)
    }))
}
