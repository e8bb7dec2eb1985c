//! `users`, `sessions` and `share_links`: the SQL of sign-in and read-only report links.
//! `crate::accounts` keeps the rules (hashing, token making, expiry, roles).
//!
//! Written for both backends: `$N` placeholders, times are epoch seconds bound from Rust.

use super::Store;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UserRow {
    pub name: String,
    pub password_hash: String,
    pub role: String,
    pub created_at: f64,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ShareLinkRow {
    pub id: String,
    pub experiment_id: i64,
    pub created_by: Option<String>,
    pub created_at: f64,
    pub expires_at: Option<f64>,
    pub revoked_at: Option<f64>,
}

pub async fn insert_user(store: &Store, u: &UserRow) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO users (name, password_hash, role, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&u.name)
        .bind(&u.password_hash)
        .bind(&u.role)
        .bind(u.created_at)
        .execute(store.pool())
        .await
        .map(|_| ())
}

pub async fn user(store: &Store, name: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as("SELECT name, password_hash, role, created_at FROM users WHERE name = $1")
        .bind(name)
        .fetch_optional(store.pool())
        .await
}

pub async fn users(store: &Store) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as("SELECT name, password_hash, role, created_at FROM users ORDER BY name")
        .fetch_all(store.pool())
        .await
}

pub async fn count_owners(store: &Store) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'owner'").fetch_one(store.pool()).await
}

/// Deletes a user (their sessions go with them); whether one was there.
pub async fn delete_user(store: &Store, name: &str) -> Result<bool, sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    sqlx::query("DELETE FROM sessions WHERE user_name = $1").bind(name).execute(&mut *tx).await?;
    sqlx::query("UPDATE share_links SET created_by = NULL WHERE created_by = $1").bind(name).execute(&mut *tx).await?;
    let n = sqlx::query("DELETE FROM users WHERE name = $1").bind(name).execute(&mut *tx).await?.rows_affected();
    tx.commit().await?;
    Ok(n > 0)
}

/// Sets a password and ends every session of the user.
pub async fn set_password(store: &Store, name: &str, password_hash: &str) -> Result<bool, sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    let n = sqlx::query("UPDATE users SET password_hash = $1 WHERE name = $2")
        .bind(password_hash)
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM sessions WHERE user_name = $1").bind(name).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(n > 0)
}

/// Stores a session, and drops expired ones on the way (sign-ins are rare).
pub async fn insert_session(
    store: &Store,
    token_sha256: &str,
    user: &str,
    now: f64,
    expires_at: f64,
) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now).execute(&mut *tx).await?;
    sqlx::query("INSERT INTO sessions (token_sha256, user_name, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(token_sha256)
        .bind(user)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// The user of an unexpired session.
pub async fn session_user(store: &Store, token_sha256: &str, now: f64) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.name, u.password_hash, u.role, u.created_at FROM sessions s JOIN users u ON u.name = s.user_name
         WHERE s.token_sha256 = $1 AND s.expires_at > $2",
    )
    .bind(token_sha256)
    .bind(now)
    .fetch_optional(store.pool())
    .await
}

pub async fn delete_session(store: &Store, token_sha256: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE token_sha256 = $1")
        .bind(token_sha256)
        .execute(store.pool())
        .await
        .map(|_| ())
}

pub async fn insert_share_link(store: &Store, link: &ShareLinkRow, token_sha256: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO share_links (id, token_sha256, experiment_id, created_by, created_at, expires_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, NULL)",
    )
    .bind(&link.id)
    .bind(token_sha256)
    .bind(link.experiment_id)
    .bind(&link.created_by)
    .bind(link.created_at)
    .bind(link.expires_at)
    .execute(store.pool())
    .await
    .map(|_| ())
}

const LINK_SELECT: &str = "SELECT id, experiment_id, created_by, created_at, expires_at, revoked_at FROM share_links";

/// The link a token opens, if it is neither revoked nor expired at `now`.
pub async fn live_share_link(store: &Store, token_sha256: &str, now: f64) -> Result<Option<ShareLinkRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{LINK_SELECT} WHERE token_sha256 = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)"
    ))
    .bind(token_sha256)
    .bind(now)
    .fetch_optional(store.pool())
    .await
}

/// An experiment's links (or every link), newest first.
pub async fn share_links(store: &Store, experiment_id: Option<i64>) -> Result<Vec<ShareLinkRow>, sqlx::Error> {
    match experiment_id {
        Some(id) => {
            sqlx::query_as(&format!("{LINK_SELECT} WHERE experiment_id = $1 ORDER BY created_at DESC"))
                .bind(id)
                .fetch_all(store.pool())
                .await
        }
        None => sqlx::query_as(&format!("{LINK_SELECT} ORDER BY created_at DESC")).fetch_all(store.pool()).await,
    }
}

pub async fn share_link(store: &Store, id: &str) -> Result<Option<ShareLinkRow>, sqlx::Error> {
    sqlx::query_as(&format!("{LINK_SELECT} WHERE id = $1")).bind(id).fetch_optional(store.pool()).await
}

/// Revokes a link at `now` (a revoked link stays listed); whether it was live.
pub async fn revoke_share_link(store: &Store, id: &str, now: f64) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("UPDATE share_links SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(store.pool())
        .await?
        .rows_affected();
    Ok(n > 0)
}
