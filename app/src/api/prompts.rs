//! Server functions for the prompt library.

use leptos::prelude::*;

use crate::error::AppError;
use wire::prompts::{DiffLine, Prompt, PromptSummary};

pub use wire::prompts::PromptForm;

#[server]
pub async fn list_prompts(search: String, tag: String) -> Result<Vec<PromptSummary>, AppError> {
    let store = crate::state::app_state()?.store;
    let query = engine::prompts::PromptQuery { search, tag: Some(tag).filter(|t| !t.is_empty()) };
    engine::prompts::list(&store, &query).await.map_err(AppError::from)
}

#[server]
pub async fn prompt_tags() -> Result<Vec<String>, AppError> {
    let store = crate::state::app_state()?.store;
    engine::prompts::all_tags(&store).await.map_err(AppError::from)
}

#[server]
pub async fn get_prompt(id: i64) -> Result<Prompt, AppError> {
    let store = crate::state::app_state()?.store;
    match engine::prompts::get(&store, id).await {
        Ok(p) if p.deleted => Err(AppError::NotFound(format!("prompt {id} was deleted"))),
        Ok(p) => Ok(p),
        Err(e) => Err(e.into()),
    }
}

#[server]
pub async fn create_prompt(form: PromptForm) -> Result<i64, AppError> {
    let store = crate::state::app_state()?.store;
    engine::prompts::create(&store, &engine::prompts::draft(&form)).await.map_err(AppError::from)
}

/// Saves an edit; returns the latest version number.
#[server]
pub async fn update_prompt(id: i64, form: PromptForm) -> Result<i64, AppError> {
    let store = crate::state::app_state()?.store;
    engine::prompts::update(&store, id, &engine::prompts::draft(&form)).await.map_err(AppError::from)
}

#[server]
pub async fn delete_prompt(id: i64) -> Result<(), AppError> {
    let store = crate::state::app_state()?.store;
    engine::prompts::delete(&store, id).await.map_err(AppError::from)
}

#[server]
pub async fn diff_prompt_versions(id: i64, from: i64, to: i64) -> Result<Vec<DiffLine>, AppError> {
    let store = crate::state::app_state()?.store;
    let old = engine::prompts::version(&store, id, from).await?;
    let new = engine::prompts::version(&store, id, to).await?;
    Ok(engine::prompts::diff(&old, &new))
}
