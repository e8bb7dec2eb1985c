//! The training-data tables: `datasets` (one row per dataset: name, source, recipe,
//! content hash) and `dataset_rows` (its chat rows as JSON, numbered from 0).
//! `crate::datasets` (and its import, generate, transform and teacher modules through it)
//! calls it and keeps the row types, the content hash, validation and parsing; rows arrive
//! here already encoded, so the store knows nothing of chat messages.

use wire::DatasetSource;

use super::{Backend, Connection, Sql, Store};

/// A dataset's row as stored, for [`insert_in`]: the messages' JSON and two counts the
/// pages show without parsing it.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedRow {
    pub messages: String,
    pub n_turns: i64,
    pub n_chars: i64,
}

pub use wire::datasets::ImportOutcome;

/// Rows per INSERT statement: 5 parameters each keeps a statement at 2,500 parameters,
/// far below SQLite's limit of 32,766, while 10,000 rows take only 20 statements.
const INSERT_BATCH: usize = 500;

/// Stores a dataset and its rows inside the caller's transaction (a transform making
/// several datasets makes all of them or none), or finds the one with the same content
/// hash. `encode` turns each row into what is stored, one batch at a time.
pub async fn insert_in<T>(
    conn: &mut Connection,
    name: &str,
    source: DatasetSource,
    recipe: &str,
    content_hash: &str,
    rows: &[T],
    encode: impl Fn(&T) -> EncodedRow,
) -> Result<ImportOutcome, sqlx::Error> {
    // The dataset row is written first, so the transaction takes SQLite's write lock at
    // once (waiting on busy_timeout) instead of failing to upgrade from a read later; a
    // concurrent import of the same rows then meets the UNIQUE hash and returns the winner.
    let inserted: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO datasets (name, source, recipe, content_hash, row_count) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (content_hash) DO NOTHING RETURNING id",
    )
    .bind(name)
    .bind(source.as_str())
    .bind(recipe)
    .bind(content_hash)
    .bind(rows.len() as i64)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((id,)) = inserted else {
        let (id, name): (i64, String) = sqlx::query_as("SELECT id, name FROM datasets WHERE content_hash = $1")
            .bind(content_hash)
            .fetch_one(&mut *conn)
            .await?;
        return Ok(ImportOutcome::AlreadyPresent { id, name });
    };
    for (chunk_no, chunk) in rows.chunks(INSERT_BATCH).enumerate() {
        let mut q = Sql::new("INSERT INTO dataset_rows (dataset_id, idx, messages, n_turns, n_chars) VALUES ");
        for (i, row) in chunk.iter().enumerate() {
            let idx = (chunk_no * INSERT_BATCH + i) as i64;
            let row = encode(row);
            if i > 0 {
                q.push(", ");
            }
            q.push("(").bind(id).push(", ").bind(idx).push(", ").bind(row.messages);
            q.push(", ").bind(row.n_turns).push(", ").bind(row.n_chars).push(")");
        }
        q.query().execute(&mut *conn).await?;
    }
    Ok(ImportOutcome::Created { id })
}

/// A `datasets` row as stored; `crate::datasets` parses it into a `DatasetSummary`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DatasetRecord {
    pub id: i64,
    pub name: String,
    pub source: String,
    pub recipe: String,
    pub content_hash: String,
    pub row_count: i64,
    pub created_at: String,
}

const SUMMARY_COLUMNS: &str = "id, name, source, recipe, content_hash, row_count, created_at";

/// All datasets, newest first.
pub async fn list(store: &Store) -> Result<Vec<DatasetRecord>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {SUMMARY_COLUMNS} FROM datasets ORDER BY id DESC")).fetch_all(store.pool()).await
}

pub async fn get(store: &Store, id: i64) -> Result<Option<DatasetRecord>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {SUMMARY_COLUMNS} FROM datasets WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await
}

/// Rows with `from <= idx < to`, in order, as (idx, messages JSON, turns, characters).
/// Rows are numbered densely from 0, so this is a range scan of the primary key
/// `(dataset_id, idx)`, equally fast on the last page as the first.
pub async fn rows_range(
    store: &Store,
    id: i64,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, String, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT idx, messages, n_turns, n_chars FROM dataset_rows
         WHERE dataset_id = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .fetch_all(store.pool())
    .await
}

/// Every row of a dataset in order, as (idx, messages JSON).
pub async fn all_rows(store: &Store, id: i64) -> Result<Vec<(i64, String)>, sqlx::Error> {
    sqlx::query_as("SELECT idx, messages FROM dataset_rows WHERE dataset_id = $1 ORDER BY idx")
        .bind(id)
        .fetch_all(store.pool())
        .await
}

/// Per row, in order: turns, system messages, characters of assistant content.
pub async fn row_shapes(store: &Store, id: i64) -> Result<Vec<(i64, i64, i64)>, sqlx::Error> {
    // The database's JSON functions measure the assistant turns where the rows are, so
    // only one small tuple per row crosses into Rust.
    let sql = match store.backend() {
        Backend::Sqlite => {
            "SELECT r.n_turns,
                    (SELECT count(*) FROM json_each(r.messages) m
                      WHERE json_extract(m.value, '$.role') = 'system'),
                    (SELECT coalesce(sum(length(json_extract(m.value, '$.content'))), 0) FROM json_each(r.messages) m
                      WHERE json_extract(m.value, '$.role') = 'assistant')
             FROM dataset_rows r WHERE r.dataset_id = $1 ORDER BY r.idx"
        }
        Backend::Postgres => {
            "SELECT r.n_turns,
                    (SELECT count(*) FROM jsonb_array_elements(r.messages::jsonb) m WHERE m->>'role' = 'system'),
                    (SELECT coalesce(sum(length(m->>'content')), 0) FROM jsonb_array_elements(r.messages::jsonb) m
                      WHERE m->>'role' = 'assistant')
             FROM dataset_rows r WHERE r.dataset_id = $1 ORDER BY r.idx"
        }
    };
    sqlx::query_as(sql).bind(id).fetch_all(store.pool()).await
}

/// Renames a dataset; false when there is none.
pub async fn rename(store: &Store, id: i64, name: &str) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE datasets SET name = $1 WHERE id = $2").bind(name).bind(id).execute(store.pool()).await?;
    Ok(done.rows_affected() != 0)
}

/// How many experiments train on the dataset.
pub async fn experiments_using(store: &Store, id: i64) -> Result<i64, sqlx::Error> {
    let (used,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM experiments WHERE dataset_id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await?;
    Ok(used)
}

/// Deletes a dataset and (by `ON DELETE CASCADE`) its rows; false when there is none.
pub async fn delete(store: &Store, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM datasets WHERE id = $1").bind(id).execute(store.pool()).await?;
    Ok(done.rows_affected() != 0)
}
