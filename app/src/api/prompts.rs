//! Server functions for the prompt library.

use leptos::prelude::*;

use crate::dto::{DiffLine, Prompt, PromptSummary};
use crate::error::AppError;

/// What the prompt editor submits. Tags come as one comma-separated string and
/// paraphrases as one-per-line text, the shapes a form holds.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PromptForm {
    pub name: String,
    pub text: String,
    pub tags: String,
    pub paraphrases: String,
    pub note: String,
}

#[cfg(feature = "ssr")]
mod convert {
    use super::*;
    use engine::prompts as p;

    impl From<&PromptForm> for p::PromptDraft {
        fn from(f: &PromptForm) -> Self {
            p::PromptDraft {
                name: f.name.clone(),
                text: f.text.clone(),
                tags: f.tags.split(',').map(str::to_owned).collect(),
                paraphrases: p::parse_paraphrases(&f.paraphrases),
                note: f.note.clone(),
            }
        }
    }

    impl From<p::PromptSummary> for PromptSummary {
        fn from(s: p::PromptSummary) -> Self {
            PromptSummary {
                id: s.id,
                name: s.name,
                text: s.text,
                version: s.version,
                tags: s.tags,
                paraphrase_count: s.paraphrase_count,
                updated_at: s.updated_at,
            }
        }
    }

    impl From<p::PromptVersion> for crate::dto::PromptVersion {
        fn from(v: p::PromptVersion) -> Self {
            crate::dto::PromptVersion {
                version: v.version,
                text: v.text,
                note: v.note,
                created_at: v.created_at,
                paraphrases: v.paraphrases,
            }
        }
    }

    impl From<p::DiffLine> for DiffLine {
        fn from(d: p::DiffLine) -> Self {
            match d {
                p::DiffLine::Same(s) => DiffLine::Same(s),
                p::DiffLine::Added(s) => DiffLine::Added(s),
                p::DiffLine::Removed(s) => DiffLine::Removed(s),
            }
        }
    }
}

#[server]
pub async fn list_prompts(search: String, tag: String) -> Result<Vec<PromptSummary>, AppError> {
    let store = crate::state::app_state()?.store;
    let query = engine::prompts::PromptQuery { search, tag: Some(tag).filter(|t| !t.is_empty()) };
    let found = engine::prompts::list(&store, &query).await.map_err(AppError::from);
    found.map(|v| v.into_iter().map(Into::into).collect())
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
        Ok(p) => Ok(Prompt {
            id: p.id,
            name: p.name,
            tags: p.tags,
            created_at: p.created_at,
            versions: p.versions.into_iter().map(Into::into).collect(),
        }),
        Err(e) => Err(e.into()),
    }
}

#[server]
pub async fn create_prompt(form: PromptForm) -> Result<i64, AppError> {
    let store = crate::state::app_state()?.store;
    engine::prompts::create(&store, &(&form).into()).await.map_err(AppError::from)
}

/// Saves an edit; returns the latest version number.
#[server]
pub async fn update_prompt(id: i64, form: PromptForm) -> Result<i64, AppError> {
    let store = crate::state::app_state()?.store;
    engine::prompts::update(&store, id, &(&form).into()).await.map_err(AppError::from)
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
    Ok(engine::prompts::diff(&old, &new).into_iter().map(Into::into).collect())
}
