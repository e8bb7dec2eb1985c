//! The prompt library's tables: `prompts`, `prompt_versions`, `prompt_paraphrases`,
//! `prompt_tags`, and the `meta` flags that record seeding. `crate::prompts` calls it and
//! keeps validation, diffs and the seeded texts; a create or an edit is one transaction
//! here (prompt, version, paraphrases and tags together).

use sqlx::{AnyPool, FromRow};

use super::{now_text, Backend, Connection, Store};

pub use wire::prompts::{Prompt, PromptSummary, PromptVersion};

/// A `prompt_versions` row as read, before its paraphrases are added.
#[derive(FromRow)]
struct VersionRow {
    id: i64,
    prompt_id: i64,
    version: i64,
    text: String,
    note: String,
    created_at: String,
}

impl VersionRow {
    fn with(self, paraphrases: Vec<String>) -> PromptVersion {
        let VersionRow { id, prompt_id, version, text, note, created_at } = self;
        PromptVersion { id, prompt_id, version, text, note, created_at, paraphrases }
    }
}

/// A new version's content: text, note and paraphrase set.
#[derive(Debug, Clone, Copy)]
pub struct NewVersion<'a> {
    pub text: &'a str,
    pub note: &'a str,
    pub paraphrases: &'a [String],
}

async fn insert_version(tx: &mut Connection, prompt_id: i64, v: NewVersion<'_>) -> Result<i64, sqlx::Error> {
    let (version_id,): (i64,) = sqlx::query_as(
        "INSERT INTO prompt_versions (prompt_id, version, text, note)
         VALUES ($1, (SELECT COALESCE(MAX(version), 0) + 1 FROM prompt_versions WHERE prompt_id = $1), $2, $3)
         RETURNING id",
    )
    .bind(prompt_id)
    .bind(v.text)
    .bind(v.note)
    .fetch_one(&mut *tx)
    .await?;
    for (idx, p) in v.paraphrases.iter().enumerate() {
        sqlx::query("INSERT INTO prompt_paraphrases (version_id, idx, text) VALUES ($1, $2, $3)")
            .bind(version_id)
            .bind(idx as i64)
            .bind(p)
            .execute(&mut *tx)
            .await?;
    }
    Ok(version_id)
}

async fn replace_tags(tx: &mut Connection, prompt_id: i64, tags: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM prompt_tags WHERE prompt_id = $1").bind(prompt_id).execute(&mut *tx).await?;
    for tag in tags {
        sqlx::query("INSERT INTO prompt_tags (prompt_id, tag) VALUES ($1, $2)")
            .bind(prompt_id)
            .bind(tag)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Creates a prompt with its first version and tags, in one transaction; returns its id.
pub async fn create(store: &Store, name: &str, first: NewVersion<'_>, tags: &[String]) -> Result<i64, sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    let (id,): (i64,) =
        sqlx::query_as("INSERT INTO prompts (name) VALUES ($1) RETURNING id").bind(name).fetch_one(&mut *tx).await?;
    insert_version(&mut tx, id, first).await?;
    replace_tags(&mut tx, id, tags).await?;
    tx.commit().await?;
    Ok(id)
}

/// Renames a prompt, replaces its tags and, when given, adds a version, in one
/// transaction.
pub async fn update(
    store: &Store,
    id: i64,
    name: &str,
    new_version: Option<NewVersion<'_>>,
    tags: &[String],
) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    if let Some(v) = new_version {
        insert_version(&mut tx, id, v).await?;
    }
    sqlx::query("UPDATE prompts SET name = $1, updated_at = $3 WHERE id = $2")
        .bind(name)
        .bind(id)
        .bind(now_text())
        .execute(&mut *tx)
        .await?;
    replace_tags(&mut tx, id, tags).await?;
    tx.commit().await
}

/// Marks a live prompt deleted; false when there was none.
pub async fn soft_delete(store: &Store, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE prompts SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL")
        .bind(id)
        .bind(now_text())
        .execute(store.pool())
        .await?;
    Ok(done.rows_affected() != 0)
}

/// A prompt with all its versions (oldest first), deleted or not; `None` when absent.
pub async fn get(store: &Store, id: i64) -> Result<Option<Prompt>, sqlx::Error> {
    let pool = store.pool();
    let head: Option<(i64, String, String, Option<String>)> =
        sqlx::query_as("SELECT id, name, created_at, deleted_at FROM prompts WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    let Some((id, name, created_at, deleted_at)) = head else {
        return Ok(None);
    };
    let rows: Vec<VersionRow> = sqlx::query_as(
        "SELECT id, prompt_id, version, text, note, created_at FROM prompt_versions
         WHERE prompt_id = $1 ORDER BY version",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let mut versions = Vec::with_capacity(rows.len());
    for v in rows {
        let paraphrases = paraphrases_of(pool, v.id).await?;
        versions.push(v.with(paraphrases));
    }
    Ok(Some(Prompt { id, name, tags: tags_of(pool, id).await?, created_at, deleted: deleted_at.is_some(), versions }))
}

/// One version of a prompt, by number, with its paraphrases.
pub async fn version(store: &Store, prompt_id: i64, version: i64) -> Result<Option<PromptVersion>, sqlx::Error> {
    let v: Option<VersionRow> = sqlx::query_as(
        "SELECT id, prompt_id, version, text, note, created_at FROM prompt_versions
         WHERE prompt_id = $1 AND version = $2",
    )
    .bind(prompt_id)
    .bind(version)
    .fetch_optional(store.pool())
    .await?;
    let Some(v) = v else {
        return Ok(None);
    };
    let paraphrases = paraphrases_of(store.pool(), v.id).await?;
    Ok(Some(v.with(paraphrases)))
}

async fn paraphrases_of(pool: &AnyPool, version_id: i64) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT text FROM prompt_paraphrases WHERE version_id = $1 ORDER BY idx")
        .bind(version_id)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

async fn tags_of(pool: &AnyPool, prompt_id: i64) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT tag FROM prompt_tags WHERE prompt_id = $1 ORDER BY tag")
        .bind(prompt_id)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Live prompts whose name, latest text or paraphrases match the LIKE `pattern` (escaped
/// with `\`) and that carry `tag` when given, most recently updated first.
pub async fn list(store: &Store, pattern: &str, tag: Option<&str>) -> Result<Vec<PromptSummary>, sqlx::Error> {
    // Tags come in the same query (tags cannot contain a comma, see
    // `prompts::normalise_tags`), so a long library is one round trip, not one per prompt.
    // SQLite's LIKE ignores ASCII case; Postgres' needs ILIKE for the same.
    let like = match store.backend() {
        Backend::Sqlite => "LIKE",
        Backend::Postgres => "ILIKE",
    };
    let rows: Vec<(i64, String, String, i64, i64, String, Option<String>)> = sqlx::query_as(&format!(
        "SELECT p.id, p.name, v.text, v.version,
                (SELECT COUNT(*) FROM prompt_paraphrases pp WHERE pp.version_id = v.id),
                p.updated_at,
                (SELECT string_agg(t.tag, ',') FROM prompt_tags t WHERE t.prompt_id = p.id)
         FROM prompts p
         JOIN prompt_versions v ON v.prompt_id = p.id
              AND v.version = (SELECT MAX(version) FROM prompt_versions WHERE prompt_id = p.id)
         WHERE p.deleted_at IS NULL
           AND (p.name {like} $1 ESCAPE '\\' OR v.text {like} $1 ESCAPE '\\'
                OR EXISTS (SELECT 1 FROM prompt_paraphrases pp
                           WHERE pp.version_id = v.id AND pp.text {like} $1 ESCAPE '\\'))
           AND ($2 IS NULL OR EXISTS (SELECT 1 FROM prompt_tags t WHERE t.prompt_id = p.id AND t.tag = $2))
         ORDER BY p.updated_at DESC, p.id DESC"
    ))
    .bind(pattern)
    .bind(tag)
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, text, version, paraphrase_count, updated_at, tags)| {
            let mut tags: Vec<String> =
                tags.as_deref().unwrap_or_default().split(',').filter(|t| !t.is_empty()).map(str::to_owned).collect();
            tags.sort();
            PromptSummary { id, name, text, version, tags, paraphrase_count, updated_at }
        })
        .collect())
}

/// Every tag in use on a live prompt, sorted.
pub async fn tags_in_use(store: &Store) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT t.tag FROM prompt_tags t JOIN prompts p ON p.id = t.prompt_id
         WHERE p.deleted_at IS NULL ORDER BY t.tag",
    )
    .fetch_all(store.pool())
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Records in `meta` that the canonical prompts were seeded (read with `Store::meta`).
pub async fn mark_canonical_seeded(store: &Store) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO meta (key, value) VALUES ('seeded_prompts', '1') ON CONFLICT (key) DO NOTHING")
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Records in `meta` that the judge prompts were seeded.
pub async fn mark_judge_prompts_seeded(store: &Store) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO meta (key, value) VALUES ('seeded_judge_prompts', '1') ON CONFLICT (key) DO NOTHING")
        .execute(store.pool())
        .await?;
    Ok(())
}

/// How many prompts (deleted or not) have this name.
pub async fn count_named(store: &Store, name: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM prompts WHERE name = $1").bind(name).fetch_one(store.pool()).await
}
