//! The `models` table: the model registry's rows. `crate::models` calls it and keeps the
//! registry's rules (allowed roots, inspection and hashing, checking files on read, which
//! removals are refused).

use wire::ModelKind;

use super::Store;

/// A registry row as stored; `crate::models` turns it into a `ModelInfo` (parsed kind,
/// whether the files are still there).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ModelRecord {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub path: String,
    pub architecture: String,
    pub n_params: i64,
    pub size_bytes: i64,
    pub sha256: String,
    /// 1 for the embedded default model.
    pub builtin: i64,
    pub created_at: String,
}

/// A row to register, as `crate::models` inspected it.
#[derive(Debug, Clone, Copy)]
pub struct NewModel<'a> {
    pub name: &'a str,
    pub kind: ModelKind,
    pub path: &'a str,
    pub architecture: &'a str,
    pub n_params: i64,
    pub size_bytes: i64,
    pub sha256: &'a str,
    pub builtin: bool,
}

const COLUMNS: &str = "id, name, kind, path, architecture, n_params, size_bytes, sha256, builtin, created_at";

/// Inserts a model and returns its id; a name or path already registered is a unique
/// violation, which the caller turns into its own message.
pub async fn insert(store: &Store, m: &NewModel<'_>) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO models (name, kind, path, architecture, n_params, size_bytes, sha256, builtin)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(m.name)
    .bind(m.kind.as_str())
    .bind(m.path)
    .bind(m.architecture)
    .bind(m.n_params)
    .bind(m.size_bytes)
    .bind(m.sha256)
    .bind(i64::from(m.builtin))
    .fetch_one(store.pool())
    .await?;
    Ok(id)
}

/// The oldest built-in row with these weights (the data directory may have moved).
pub async fn builtin_with_sha256(store: &Store, sha256: &str) -> Result<Option<i64>, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM models WHERE builtin = 1 AND sha256 = $1 ORDER BY id")
        .bind(sha256)
        .fetch_optional(store.pool())
        .await?;
    Ok(row.map(|(id,)| id))
}

pub async fn set_path(store: &Store, id: i64, path: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE models SET path = $1 WHERE id = $2").bind(path).bind(id).execute(store.pool()).await?;
    Ok(())
}

pub async fn get(store: &Store, id: i64) -> Result<Option<ModelRecord>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM models WHERE id = $1")).bind(id).fetch_optional(store.pool()).await
}

/// The model whose name is `name` (UNIQUE).
pub async fn by_name(store: &Store, name: &str) -> Result<Option<ModelRecord>, sqlx::Error> {
    one_where(store, "name", name).await
}

/// The model registered at `path` (UNIQUE).
pub async fn by_path(store: &Store, path: &str) -> Result<Option<ModelRecord>, sqlx::Error> {
    one_where(store, "path", path).await
}

/// The model whose text `column` equals `value` (both callers' columns are UNIQUE).
async fn one_where(store: &Store, column: &str, value: &str) -> Result<Option<ModelRecord>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM models WHERE {column} = $1"))
        .bind(value)
        .fetch_optional(store.pool())
        .await
}

/// Every registered model: the built-in first, then the others by name.
pub async fn list(store: &Store) -> Result<Vec<ModelRecord>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM models ORDER BY builtin DESC, lower(name), id"))
        .fetch_all(store.pool())
        .await
}

/// Deletes a model unless it is the built-in or an experiment uses it; true when it went.
/// One statement decides and deletes, so an experiment created meanwhile cannot slip
/// between the check and the delete.
pub async fn delete_unused(store: &Store, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM models WHERE id = $1 AND builtin = 0
           AND NOT EXISTS (SELECT 1 FROM experiments WHERE model_id = models.id)",
    )
    .bind(id)
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How many experiments use the model.
pub async fn experiments_using(store: &Store, id: i64) -> Result<i64, sqlx::Error> {
    let (count,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM experiments WHERE model_id = $1").bind(id).fetch_one(store.pool()).await?;
    Ok(count)
}

/// A model's id, name, path and sha256 by name: what an experiment records of it.
pub async fn identity_by_name(store: &Store, name: &str) -> Result<Option<(i64, String, String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, path, sha256 FROM models WHERE name = $1")
        .bind(name)
        .fetch_optional(store.pool())
        .await
}
