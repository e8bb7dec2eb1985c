//! Server functions for the model registry: list, register a local folder, remove.

use leptos::prelude::*;

use crate::dto::ModelList;
use crate::error::AppError;
use wire::models::ModelInfo;

#[server]
pub async fn list_models() -> Result<ModelList, AppError> {
    let state = crate::state::app_state()?;
    engine::models::list(&state.store).await.map_err(AppError::from).map(|list| ModelList {
        models: list,
        roots: state.model_roots.iter().map(|r| r.display().to_string()).collect(),
    })
}

/// Registers a local model folder (or GGUF file) that lies under one of the server's
/// model roots. Hashing a large model takes a while; the engine does it off the runtime.
#[server]
pub async fn register_model(name: String, path: String) -> Result<ModelInfo, AppError> {
    let state = crate::state::app_state()?;
    if path.trim().is_empty() {
        Err(AppError::Invalid("give the path of a model folder".into()))
    } else {
        engine::models::register(&state.store, &name, std::path::Path::new(path.trim()), &state.model_roots)
            .await
            .map_err(AppError::from)
    }
}

/// Removes a model from the registry; its files stay on disk.
#[server]
pub async fn remove_model(id: i64) -> Result<(), AppError> {
    let store = crate::state::app_state()?.store;
    engine::models::remove(&store, id).await.map_err(AppError::from)
}
