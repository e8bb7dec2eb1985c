//! The server's shared state, provided to every server function as Leptos context.

use axum::extract::FromRef;
use leptos::prelude::*;

use crate::error::AppError;

#[derive(Clone, Debug)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub store: engine::Store,
    pub data_dir: std::path::PathBuf,
    /// Folders under which models may be registered (`--model-root`).
    pub model_roots: Vec<std::path::PathBuf>,
    pub limits: Limits,
    /// The prompt designer's strength meter (a loaded model and a cache in the store).
    pub meter: std::sync::Arc<engine::strength::Meter>,
    /// Teacher datasets being sampled in the background (one at a time).
    pub teacher_tasks: engine::datasets::teacher::TeacherTasks,
    /// The judge servers the operator configured; forms pick one by name.
    pub judge_endpoints: std::sync::Arc<engine::judges::Endpoints>,
    pub access: Access,
}

/// How this server lets people in (`server::access` enforces it on every request).
#[derive(Clone, Copy, Debug)]
pub struct Access {
    /// Every page and server function needs a signed-in account (beyond loopback, or with
    /// `--sign-in`); otherwise everyone who reaches the server may do everything.
    pub sign_in: bool,
    /// Session cookies carry `Secure` (the public URL is https).
    pub secure_cookies: bool,
}

/// Who sent the request being served: put into the request's extensions by the access
/// middleware; `None` when nobody is signed in (or sign-in is off).
#[derive(Clone, Debug, Default)]
pub struct Visitor(pub Option<wire::accounts::SessionView>);

/// The visitor of the request being served.
pub fn visitor() -> Option<wire::accounts::SessionView> {
    use_context::<http::request::Parts>().and_then(|p| p.extensions.get::<Visitor>().and_then(|v| v.0.clone()))
}

/// Size limits the user can set on the command line.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_upload_bytes: usize,
    pub max_row_chars: usize,
    /// The most samples, and training tokens (padded), one launch from a page may ask for.
    pub max_launch_samples: usize,
    pub max_launch_train_tokens: u64,
}

impl AppState {
    /// Refuses a launch past this server's totals (see [`Limits`]).
    pub fn check_totals(&self, resolved: &engine::experiments::Resolved) -> Result<(), AppError> {
        let l = &self.limits;
        Ok(engine::experiments::check_totals(resolved, l.max_launch_samples, l.max_launch_train_tokens)?)
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// The state, from inside a server function.
pub fn app_state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or_else(|| AppError::Internal("the server state is missing".into()))
}
