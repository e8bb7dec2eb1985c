//! Who may reach what: the signed-in account of every request (from its session cookie),
//! and, when sign-in is on, the refusals: nobody signed in gets the sign-in page (pages) or
//! 401 (everything else), a viewer gets 403 on any server function that changes something.
//!
//! Deny by default: a viewer may call only the server functions `app::api::read_only_paths`
//! lists, so a server function added later is closed to viewers until someone decides it
//! only reads. Open to all: the sign-in page and its server function, the web bundle, and
//! what a share link opens (its report page, its charts, `get_shared_report`).

use std::collections::HashSet;
use std::sync::Arc;

use app::state::Visitor;
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use engine::accounts::Role;

pub struct Access {
    store: engine::Store,
    sign_in: bool,
    read_only: HashSet<&'static str>,
    public: HashSet<&'static str>,
}

impl Access {
    pub fn new(store: engine::Store, sign_in: bool) -> Access {
        Access {
            store,
            sign_in,
            read_only: app::api::read_only_paths().into_iter().collect(),
            public: app::api::public_paths().into_iter().collect(),
        }
    }

    fn is_public(&self, method: &Method, path: &str) -> bool {
        let get = matches!(*method, Method::GET | Method::HEAD);
        self.public.contains(path)
            || (get && (path == "/sign-in" || path == "/favicon.svg" || path.starts_with("/pkg/")))
            || (get && path.starts_with("/share/"))
    }
}

/// The axum middleware (`from_fn_with_state`).
pub async fn check(
    axum::extract::State(access): axum::extract::State<Arc<Access>>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = app::api::accounts::cookie(request.headers(), app::api::accounts::COOKIE);
    let user = match token {
        Some(t) => match engine::accounts::session(&access.store, &t).await {
            Ok(user) => user,
            Err(e) => {
                tracing::error!("cannot read a session: {e}");
                return (StatusCode::SERVICE_UNAVAILABLE, "the store cannot be read; try again").into_response();
            }
        },
        None => None,
    };
    request.extensions_mut().insert(Visitor(user.clone()));
    if !access.sign_in {
        return next.run(request).await;
    }
    let path = request.uri().path().to_owned();
    if access.is_public(request.method(), &path) {
        return next.run(request).await;
    }
    let Some(user) = user else {
        if request.method() == Method::GET && !path.starts_with("/api/") {
            let back = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
            return Redirect::to(&format!("/sign-in?next={}", urlencode(back))).into_response();
        }
        return refuse(StatusCode::UNAUTHORIZED, "sign in first");
    };
    let reads = matches!(*request.method(), Method::GET | Method::HEAD) || access.read_only.contains(path.as_str());
    if user.role == Role::Viewer && !reads {
        return refuse(StatusCode::FORBIDDEN, "a viewer account can read, not change anything");
    }
    next.run(request).await
}

fn refuse(status: StatusCode, message: &'static str) -> Response {
    // The pages read a server function's refusal as the app's JSON error.
    let body = match status {
        StatusCode::UNAUTHORIZED => serde_json::json!({ "Unauthorized": message }),
        _ => serde_json::json!({ "Forbidden": message }),
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
