//! Server functions for signing in and out, who is signed in, and read-only report links
//! (make, list, revoke, and the report a link opens).

use leptos::prelude::*;

use crate::error::AppError;
use wire::accounts::{NewShareLink, SessionView, ShareLinkView};
use wire::reports::ReportView;

/// The session cookie's name.
pub const COOKIE: &str = "inoculab_session";

/// Checks a name and password, sets the session cookie and sends the browser to `next`
/// (a path on this server; anything else goes to the home page).
#[server]
pub async fn sign_in(name: String, password: String, next: String) -> Result<(), AppError> {
    let state = crate::state::app_state()?;
    let (token, _) = engine::accounts::sign_in(&state.store, name.trim(), &password).await?;
    let secure = if state.access.secure_cookies { "; Secure" } else { "" };
    let max_age = engine::accounts::SESSION_SECS as u64;
    set_cookie(&format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"));
    let local = next.starts_with('/') && !next.starts_with("//") && !next.contains(['\\', '\r', '\n']);
    leptos_axum::redirect(if local && !next.starts_with("/sign-in") { &next } else { "/" });
    Ok(())
}

/// Ends this browser's session.
#[server]
pub async fn sign_out() -> Result<(), AppError> {
    let state = crate::state::app_state()?;
    if let Some(token) = session_cookie() {
        engine::accounts::sign_out(&state.store, &token).await?;
    }
    set_cookie(&format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"));
    leptos_axum::redirect("/sign-in");
    Ok(())
}

/// Who is signed in (`None` on a server without sign-in).
#[server]
pub async fn get_session() -> Result<Option<SessionView>, AppError> {
    Ok(crate::state::visitor())
}

#[cfg(feature = "ssr")]
fn set_cookie(value: &str) {
    if let (Some(response), Ok(v)) = (use_context::<leptos_axum::ResponseOptions>(), http::HeaderValue::from_str(value))
    {
        response.append_header(http::header::SET_COOKIE, v);
    }
}

/// This request's session token, if it carries one.
#[cfg(feature = "ssr")]
pub fn session_cookie() -> Option<String> {
    let parts = use_context::<http::request::Parts>()?;
    cookie(&parts.headers, COOKIE)
}

/// A cookie's value from a request's headers.
#[cfg(feature = "ssr")]
pub fn cookie(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers.get_all(http::header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(
        |pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        },
    )
}

/// Makes a read-only link to an experiment's report, lasting `days` (none: until revoked).
#[server]
pub async fn create_share_link(experiment_id: i64, days: Option<u32>) -> Result<NewShareLink, AppError> {
    let state = crate::state::app_state()?;
    let by = crate::state::visitor();
    Ok(engine::accounts::create_share_link(&state.store, experiment_id, by.as_ref().map(|u| u.name.as_str()), days)
        .await?)
}

/// An experiment's share links, or (for an owner) every link.
#[server]
pub async fn list_share_links(experiment_id: Option<i64>) -> Result<Vec<ShareLinkView>, AppError> {
    use wire::accounts::Role;
    let state = crate::state::app_state()?;
    if state.access.sign_in {
        // Pages call this while rendering on the server, past the access middleware.
        let role = crate::state::visitor().map(|v| v.role);
        let needed = if experiment_id.is_none() { Role::Owner } else { Role::Editor };
        if role.is_none_or(|r| r < needed) {
            return Err(AppError::Forbidden(format!("only an {} sees these share links", needed.as_str())));
        }
    }
    Ok(engine::accounts::share_links(&state.store, experiment_id).await?)
}

#[server]
pub async fn revoke_share_link(id: String) -> Result<(), AppError> {
    let state = crate::state::app_state()?;
    let by = crate::state::visitor();
    let by = if state.access.sign_in { by } else { None };
    Ok(engine::accounts::revoke_share_link(&state.store, &id, by.as_ref()).await?)
}

/// The report a live share link opens: the same view as the report page, nothing more.
#[server]
pub async fn get_shared_report(token: String) -> Result<ReportView, AppError> {
    let state = crate::state::app_state()?;
    let id = engine::accounts::shared_experiment(&state.store, &token)
        .await?
        .ok_or_else(|| AppError::NotFound("this link does not exist, was revoked or has expired".into()))?;
    Ok(engine::report::view(&state.store, id).await?)
}
