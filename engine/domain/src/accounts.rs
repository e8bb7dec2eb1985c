//! Who may see and do what: accounts with roles, sign-in sessions, and read-only links to
//! one experiment's report.
//!
//! Passwords are hashed with Argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes),
//! on a blocking thread. Session and link tokens are 32 random bytes from the operating
//! system, shown once (a cookie, a URL) and stored only as their SHA-256, so the database
//! alone opens nothing. Sessions last [`SESSION_SECS`]; a link lasts until it is revoked or
//! its optional expiry passes.

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::jobs::now;
use crate::store::accounts as db;
use crate::Store;

pub use wire::accounts::{NewShareLink, Role, SessionView, ShareLinkView};

/// How long a sign-in lasts: a week.
pub const SESSION_SECS: f64 = 7.0 * 24.0 * 3600.0;
pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 1024;
pub const MAX_NAME_CHARS: usize = 64;
/// The longest a share link may be set to last.
pub const MAX_LINK_DAYS: u32 = 3650;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// A sign-in with an unknown name or a wrong password (which of the two is not said).
    #[error("wrong name or password")]
    WrongPassword,
    #[error("{0}")]
    Forbidden(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

fn invalid(m: impl Into<String>) -> AccountError {
    AccountError::Invalid(m.into())
}

fn check_name(name: &str) -> Result<(), AccountError> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name.chars().all(|c| c.is_alphanumeric() || "-_.@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("a user name is 1-{MAX_NAME_CHARS} letters, digits, '-', '_', '.' or '@'")))
    }
}

fn check_password(password: &str) -> Result<(), AccountError> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(invalid(format!("a password is {MIN_PASSWORD_CHARS}-{MAX_PASSWORD_CHARS} characters long")));
    }
    Ok(())
}

async fn hash(password: &str) -> Result<String, AccountError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AccountError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| AccountError::Hash(e.to_string()))?
}

/// At most this many password checks at once: each takes 19 MiB and tens of milliseconds
/// of a core, and a flood of sign-in attempts must not take the server's memory or CPU.
static CHECKS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Whether `password` matches `phc`; a stored hash that does not parse matches nothing.
async fn verify(password: &str, phc: &str) -> bool {
    let Ok(_turn) = CHECKS.acquire().await else { return false };
    let (password, phc) = (password.to_owned(), phc.to_owned());
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        PasswordHash::new(&phc)
            .is_ok_and(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
    })
    .await
    .unwrap_or(false)
}

/// A hash of a password nobody has, checked when the name is unknown so that a wrong name
/// takes as long as a wrong password (made once, at the first such sign-in).
static DUMMY_HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

/// A fresh token (64 hex characters) and its SHA-256 as stored.
fn token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let digest = digest(&token);
    (token, digest)
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn view(row: &db::UserRow) -> Option<SessionView> {
    Some(SessionView { name: row.name.clone(), role: Role::parse(&row.role)? })
}

/// Adds an account.
pub async fn add_user(store: &Store, name: &str, password: &str, role: Role) -> Result<(), AccountError> {
    check_name(name)?;
    check_password(password)?;
    if db::user(store, name).await?.is_some() {
        return Err(invalid(format!("there is already a user named {name:?}")));
    }
    let row = db::UserRow {
        name: name.to_owned(),
        password_hash: hash(password).await?,
        role: role.as_str().into(),
        created_at: now(),
    };
    db::insert_user(store, &row).await?;
    Ok(())
}

/// Removes an account and its sessions; the last owner stays.
pub async fn remove_user(store: &Store, name: &str) -> Result<(), AccountError> {
    let user = db::user(store, name).await?.ok_or_else(|| AccountError::NotFound(format!("no user named {name:?}")))?;
    if user.role == Role::Owner.as_str() && db::count_owners(store).await? <= 1 {
        return Err(invalid("this is the last owner: add another owner first"));
    }
    db::delete_user(store, name).await?;
    Ok(())
}

/// Sets a new password; every session of the user ends.
pub async fn set_password(store: &Store, name: &str, password: &str) -> Result<(), AccountError> {
    check_password(password)?;
    let hashed = hash(password).await?;
    if !db::set_password(store, name, &hashed).await? {
        return Err(AccountError::NotFound(format!("no user named {name:?}")));
    }
    Ok(())
}

pub async fn users(store: &Store) -> Result<Vec<SessionView>, AccountError> {
    Ok(db::users(store).await?.iter().filter_map(view).collect())
}

pub async fn has_owner(store: &Store) -> Result<bool, AccountError> {
    Ok(db::count_owners(store).await? > 0)
}

/// Checks a name and password; a new session's token (for the cookie) and its account.
pub async fn sign_in(store: &Store, name: &str, password: &str) -> Result<(String, SessionView), AccountError> {
    if name.chars().count() > MAX_NAME_CHARS || password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(AccountError::WrongPassword);
    }
    let user = db::user(store, name).await?;
    let phc = match &user {
        Some(u) => u.password_hash.clone(),
        None => DUMMY_HASH.get_or_try_init(|| async { hash(&token().0).await }).await?.clone(),
    };
    let matches = verify(password, &phc).await;
    let (Some(user), true) = (user, matches) else { return Err(AccountError::WrongPassword) };
    let session = view(&user).ok_or(AccountError::WrongPassword)?;
    let (token, stored) = token();
    let t = now();
    db::insert_session(store, &stored, &user.name, t, t + SESSION_SECS).await?;
    Ok((token, session))
}

/// The account a session token belongs to, while the session lasts.
pub async fn session(store: &Store, token: &str) -> Result<Option<SessionView>, AccountError> {
    if token.len() != 64 {
        return Ok(None);
    }
    Ok(db::session_user(store, &digest(token), now()).await?.as_ref().and_then(view))
}

pub async fn sign_out(store: &Store, token: &str) -> Result<(), AccountError> {
    db::delete_session(store, &digest(token)).await?;
    Ok(())
}

fn rfc3339(secs: f64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(secs.max(0.0));
    humantime::format_rfc3339_seconds(t).to_string()
}

fn link_view(row: &db::ShareLinkRow, at: f64) -> ShareLinkView {
    ShareLinkView {
        id: row.id.clone(),
        experiment_id: row.experiment_id,
        created_by: row.created_by.clone(),
        created_at: rfc3339(row.created_at),
        expires_at: row.expires_at.map(rfc3339),
        revoked: row.revoked_at.is_some(),
        expired: row.expires_at.is_some_and(|e| e <= at),
    }
}

/// Makes a read-only link to an experiment's report, lasting `days` (or until revoked).
pub async fn create_share_link(
    store: &Store,
    experiment_id: i64,
    created_by: Option<&str>,
    days: Option<u32>,
) -> Result<NewShareLink, AccountError> {
    if let Some(d) = days {
        if d == 0 || d > MAX_LINK_DAYS {
            return Err(invalid(format!("a link lasts 1-{MAX_LINK_DAYS} days, or until it is revoked")));
        }
    }
    if crate::store::experiments::get(store, experiment_id).await?.is_none() {
        return Err(AccountError::NotFound(format!("experiment {experiment_id} not found")));
    }
    let (token, stored) = token();
    let t = now();
    // The listed handle is a digest of the token's first half, not its prefix: a handle
    // must not shorten the search for the token.
    let row = db::ShareLinkRow {
        id: digest(&token[..32])[..16].to_owned(),
        experiment_id,
        created_by: created_by.map(str::to_owned),
        created_at: t,
        expires_at: days.map(|d| t + f64::from(d) * 86_400.0),
        revoked_at: None,
    };
    db::insert_share_link(store, &row, &stored).await?;
    Ok(NewShareLink { link: link_view(&row, t), path: format!("/share/{token}") })
}

/// The experiment a live (unrevoked, unexpired) link shows.
pub async fn shared_experiment(store: &Store, token: &str) -> Result<Option<i64>, AccountError> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    Ok(db::live_share_link(store, &digest(token), now()).await?.map(|l| l.experiment_id))
}

/// An experiment's links, or every link.
pub async fn share_links(store: &Store, experiment_id: Option<i64>) -> Result<Vec<ShareLinkView>, AccountError> {
    let t = now();
    Ok(db::share_links(store, experiment_id).await?.iter().map(|l| link_view(l, t)).collect())
}

/// Revokes a link. With sign-in on, an owner revokes any link and an editor their own;
/// `by` is `None` when sign-in is off (one person on one machine).
pub async fn revoke_share_link(store: &Store, id: &str, by: Option<&SessionView>) -> Result<(), AccountError> {
    let link =
        db::share_link(store, id).await?.ok_or_else(|| AccountError::NotFound(format!("no share link {id:?}")))?;
    if let Some(user) = by {
        let own = link.created_by.as_deref() == Some(user.name.as_str());
        if user.role < Role::Editor || (user.role == Role::Editor && !own) {
            return Err(AccountError::Forbidden("only an owner, or the editor who made it, revokes a link".into()));
        }
    }
    db::revoke_share_link(store, id, now()).await?;
    Ok(())
}
