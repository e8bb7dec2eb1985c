//! The one error type the web layer shows users. Server functions map engine errors into
//! it; pages render its message. A user sees a sentence, never a panic or a bare 500.

use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;
use server_fn::error::{FromServerFnError, ServerFnErrorErr};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// The thing asked for does not exist (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// The user's input is wrong; the message says how (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// A dataset import with line-numbered problems (HTTP 422).
    #[error("the file has {total} bad line{}; nothing was imported", plural_s(.total))]
    BadLines { total: usize, lines: Vec<(usize, String)> },
    /// Sign-in needed, or a wrong name or password (HTTP 401).
    #[error("{0}")]
    Unauthorized(String),
    /// The account's role does not allow it (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// Something broke on our side; logged on the server (HTTP 500).
    #[error("{0}")]
    Internal(String),
    /// The request never reached a server function or its answer could not be read.
    #[error("{0}")]
    Transport(String),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let message = value.to_string();
        // axum's body limit answers 413 with a plain-text body that cannot be decoded as
        // our error; say what happened instead of a decoding error.
        if message.contains("length limit") || message.contains("413") {
            return AppError::Invalid("the upload is larger than the server's limit (--max-upload-mb)".into());
        }
        AppError::Transport(message)
    }
}

#[cfg(feature = "ssr")]
impl AppError {
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Invalid(_) => StatusCode::BAD_REQUEST,
            AppError::BadLines { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Internal(_) | AppError::Transport(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The one table from the domain's errors to what users see: every engine error a server
/// function can meet converts here, so server functions just use `?`, and the HTTP status
/// follows from the variant ([`AppError::status`], applied to every server function's
/// response by [`set_status`]). Causes that are the server's fault are logged, never shown.
#[cfg(feature = "ssr")]
mod from_engine {
    use super::AppError;
    use engine::datasets::teacher::TeacherError;
    use engine::datasets::DatasetError;
    use engine::experiments::ExperimentError;
    use engine::models::ModelError;
    use engine::presets::PresetError;
    use engine::prompts::PromptError;
    use engine::questions::QuestionError;
    use engine::report::ReportError;
    use engine::reviews::ReviewError;
    use engine::strength::StrengthError;

    impl From<PromptError> for AppError {
        fn from(e: PromptError) -> Self {
            match e {
                PromptError::NotFound(_) | PromptError::NoSuchVersion { .. } => AppError::NotFound(e.to_string()),
                PromptError::Invalid(m) => AppError::Invalid(m),
                PromptError::Sql(_) => internal(e),
            }
        }
    }

    impl From<DatasetError> for AppError {
        fn from(e: DatasetError) -> Self {
            match e {
                DatasetError::NotFound(_) => AppError::NotFound(e.to_string()),
                DatasetError::Import(errors) => AppError::BadLines {
                    total: errors.total,
                    lines: errors.errors.iter().map(|l| (l.line, l.problem.to_string())).collect(),
                },
                DatasetError::Empty
                | DatasetError::InvalidName(_)
                | DatasetError::InvalidSpec(_)
                | DatasetError::InvalidTransform(_)
                | DatasetError::Form(_)
                | DatasetError::InUse(_) => AppError::Invalid(e.to_string()),
                DatasetError::Corrupt(_) | DatasetError::Sql(_) => internal(e),
            }
        }
    }

    /// Refusals are the user's to fix and their messages say how, so they are shown as
    /// they are; only failures on our side are hidden behind the generic message.
    impl From<ModelError> for AppError {
        fn from(e: ModelError) -> Self {
            match e {
                ModelError::NotFound(_) => AppError::NotFound(e.to_string()),
                ModelError::OutsideRoots { .. }
                | ModelError::Duplicate(_)
                | ModelError::Invalid { .. }
                | ModelError::InvalidName(_)
                | ModelError::Builtin { .. }
                | ModelError::InUse { .. }
                // Reading a path the user gave (a permission, a vanished file) is about that
                // path, not about the server.
                | ModelError::Io { .. } => AppError::Invalid(e.to_string()),
                ModelError::Corrupt(_) | ModelError::Sql(_) => internal(e),
            }
        }
    }

    impl From<QuestionError> for AppError {
        fn from(q: QuestionError) -> Self {
            match q {
                QuestionError::NotFound(_) => AppError::NotFound(q.to_string()),
                QuestionError::Sql(_) => internal(q),
                q => AppError::Invalid(q.to_string()),
            }
        }
    }

    impl From<ExperimentError> for AppError {
        fn from(e: ExperimentError) -> Self {
            match e {
                ExperimentError::Invalid(m) => AppError::Invalid(m),
                ExperimentError::NotFound(_) => AppError::NotFound(e.to_string()),
                ExperimentError::Dataset(d) => d.into(),
                ExperimentError::Prompt(p) => p.into(),
                ExperimentError::Questions(q) => q.into(),
                ExperimentError::Corrupt(_) | ExperimentError::Sql(_) => internal(e),
            }
        }
    }

    impl From<ReportError> for AppError {
        fn from(e: ReportError) -> Self {
            match e {
                ReportError::Experiment(e) => e.into(),
                ReportError::Review(e) => e.into(),
            }
        }
    }

    impl From<PresetError> for AppError {
        fn from(e: PresetError) -> Self {
            match e {
                PresetError::Experiment(e) => e.into(),
                PresetError::Unknown(..) => AppError::Invalid(e.to_string()),
                PresetError::Judge(j) => j.into(),
                e => internal(e),
            }
        }
    }

    impl From<ReviewError> for AppError {
        fn from(e: ReviewError) -> Self {
            match e {
                ReviewError::Invalid(m) => AppError::Invalid(m),
                ReviewError::NotInExperiment { .. } => AppError::Invalid(e.to_string()),
                ReviewError::SampleNotFound(_) => AppError::NotFound(e.to_string()),
                e => internal(e),
            }
        }
    }

    impl From<StrengthError> for AppError {
        fn from(e: StrengthError) -> Self {
            match e {
                StrengthError::Invalid(m) => AppError::Invalid(m),
                StrengthError::NotFound(m) => AppError::NotFound(m),
                StrengthError::Cancelled => AppError::Invalid("superseded by a newer request".into()),
                StrengthError::Dataset(e) => e.into(),
                StrengthError::Model(e) => e.into(),
                e => internal(e),
            }
        }
    }

    impl From<TeacherError> for AppError {
        fn from(e: TeacherError) -> Self {
            match e {
                TeacherError::NotFound(m) => AppError::NotFound(m),
                TeacherError::Invalid(_)
                | TeacherError::NoneKept { .. }
                | TeacherError::Busy(_)
                | TeacherError::Cancelled => AppError::Invalid(e.to_string()),
                TeacherError::Dataset(d) => d.into(),
                TeacherError::Ml(_) | TeacherError::Sql(_) => internal(e),
            }
        }
    }

    impl From<engine::accounts::AccountError> for AppError {
        fn from(e: engine::accounts::AccountError) -> Self {
            use engine::accounts::AccountError;
            match e {
                AccountError::Invalid(m) => AppError::Invalid(m),
                AccountError::NotFound(m) => AppError::NotFound(m),
                AccountError::WrongPassword => AppError::Unauthorized(e.to_string()),
                AccountError::Forbidden(m) => AppError::Forbidden(m),
                AccountError::Hash(_) | AccountError::Sql(_) => internal(e),
            }
        }
    }

    /// Judge settings (an endpoint name no one configured) are the user's to fix.
    impl From<engine::judges::JudgeError> for AppError {
        fn from(e: engine::judges::JudgeError) -> Self {
            match e {
                engine::judges::JudgeError::Config(m) => AppError::Invalid(m),
                e => internal(e),
            }
        }
    }

    /// The judge check: a judge that cannot be reached or configured is the user's to
    /// fix (the message says which server); a broken store is ours.
    impl From<engine::judges::calibration::CheckError> for AppError {
        fn from(e: engine::judges::calibration::CheckError) -> Self {
            use engine::judges::calibration::CheckError;
            match e {
                CheckError::Judge(j) => match j {
                    engine::judges::JudgeError::Config(m) => AppError::Invalid(m),
                    j => AppError::Invalid(format!("the judge check failed: {j}")),
                },
                CheckError::NotApplicable | CheckError::Model(_) => AppError::Invalid(e.to_string()),
                CheckError::Db(_) => internal(e),
            }
        }
    }

    /// The queue's and the sample browser's reads fail only when the store does.
    impl From<engine::SqlError> for AppError {
        fn from(e: engine::SqlError) -> Self {
            internal(e)
        }
    }

    /// Logs the cause and gives the user a message without internals.
    pub fn internal(e: impl std::fmt::Display) -> AppError {
        tracing::error!("internal error: {e}");
        AppError::Internal("something went wrong on the server; the log has the details".into())
    }
}
#[cfg(feature = "ssr")]
pub use from_engine::internal;

/// Middleware on the router, acting on server-function responses only: server_fn answers
/// every error with status 500 and a `serverfnerror` header, the error as JSON in the body;
/// this sets the status the error's variant names, so scripts and tests calling server
/// functions see 4xx/5xx that mean something. The one place where errors meet status codes.
#[cfg(feature = "ssr")]
pub async fn set_status(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use leptos::server_fn::error::SERVER_FN_ERROR_HEADER;
    let res = next.run(req).await;
    if !res.headers().contains_key(SERVER_FN_ERROR_HEADER) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    // An error body is a sentence or the bad lines the importer reports (a capped list).
    let Ok(bytes) = axum::body::to_bytes(body, 4 * 1024 * 1024).await else {
        parts.status = http::StatusCode::INTERNAL_SERVER_ERROR;
        return axum::response::Response::from_parts(parts, axum::body::Body::empty());
    };
    if let Ok(e) = serde_json::from_slice::<AppError>(&bytes) {
        parts.status = e.status();
    }
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// "s" unless there is exactly one.
fn plural_s(n: &usize) -> &'static str {
    if *n == 1 {
        ""
    } else {
        "s"
    }
}
