//! Server functions for the model registry: list, register a local folder, remove.

use leptos::prelude::*;

use crate::dto::{ModelList, ModelSummary};
use crate::error::AppError;

#[cfg(feature = "ssr")]
mod convert {
    use super::*;
    use engine::models as m;

    pub fn summary(i: m::ModelInfo) -> ModelSummary {
        ModelSummary {
            id: i.id,
            name: i.name,
            kind: i.kind,
            path: i.path,
            architecture: i.architecture,
            n_params: i.n_params,
            size_bytes: i.size_bytes,
            sha256: i.sha256,
            builtin: i.builtin,
            ready: i.ready,
            created_at: i.created_at,
        }
    }
}

#[server]
pub async fn list_models() -> Result<ModelList, AppError> {
    let state = crate::state::app_state()?;
    engine::models::list(&state.store).await.map_err(AppError::from).map(|list| ModelList {
        models: list.into_iter().map(convert::summary).collect(),
        roots: state.model_roots.iter().map(|r| r.display().to_string()).collect(),
    })
}

/// Registers a local model folder (or GGUF file) that lies under one of the server's
/// model roots. Hashing a large model takes a while; the engine does it off the runtime.
#[server]
pub async fn register_model(name: String, path: String) -> Result<ModelSummary, AppError> {
    let state = crate::state::app_state()?;
    if path.trim().is_empty() {
        Err(AppError::Invalid("give the path of a model folder".into()))
    } else {
        engine::models::register(&state.store, &name, std::path::Path::new(path.trim()), &state.model_roots)
            .await
            .map(convert::summary)
            .map_err(AppError::from)
    }
}

/// Removes a model from the registry; its files stay on disk.
#[server]
pub async fn remove_model(id: i64) -> Result<(), AppError> {
    let store = crate::state::app_state()?.store;
    engine::models::remove(&store, id).await.map_err(AppError::from)
}
