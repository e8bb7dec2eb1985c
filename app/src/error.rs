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
    #[error("the file has {total} bad line(s); nothing was imported")]
    BadLines { total: usize, lines: Vec<(usize, String)> },
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
            AppError::Internal(_) | AppError::Transport(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[cfg(feature = "ssr")]
mod from_engine {
    use super::AppError;
    use engine::datasets::DatasetError;
    use engine::prompts::PromptError;

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
            crate::api::datasets::map_dataset_error(e)
        }
    }

    impl From<engine::models::ModelError> for AppError {
        fn from(e: engine::models::ModelError) -> Self {
            crate::api::models::map_model_error(e)
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
