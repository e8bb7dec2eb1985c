//! Server functions for datasets: import, generate, transform, browse, delete.

use leptos::prelude::*;

use crate::error::AppError;
use wire::datasets::{DatasetDetail, DatasetSummary, ImportResult, RowsPage};

/// Rows per page in the dataset browser.
pub const PAGE_ROWS: i64 = 20;

pub use wire::datasets::{GenerateForm, TransformForm};

#[server]
pub async fn list_datasets() -> Result<Vec<DatasetSummary>, AppError> {
    let store = crate::state::app_state()?.store;
    Ok(engine::datasets::list(&store).await?)
}

#[server]
pub async fn get_dataset(id: i64) -> Result<DatasetDetail, AppError> {
    let store = crate::state::app_state()?.store;
    Ok(engine::datasets::detail(&store, id).await?)
}

#[server]
pub async fn dataset_rows(id: i64, offset: i64) -> Result<RowsPage, AppError> {
    let store = crate::state::app_state()?.store;
    Ok(engine::datasets::rows_view(&store, id, offset, PAGE_ROWS).await?)
}

/// Imports an uploaded file. The browser reads the file and sends its text as JSON; the
/// server's body limit (`--max-upload-mb`) bounds it.
#[server(input = server_fn::codec::Json)]
pub async fn import_dataset(name: String, file_name: String, content: String) -> Result<ImportResult, AppError> {
    let state = crate::state::app_state()?;
    let limits = engine::datasets::ImportLimits { max_chars_per_row: state.limits.max_row_chars, ..Default::default() };
    let result = engine::datasets::import(&state.store, &name, &file_name, content.as_bytes(), &limits).await;
    match result {
        Ok(o) => {
            let rows = engine::datasets::get(&state.store, o.id()).await.map(|d| d.row_count).unwrap_or(0);
            Ok(ImportResult::new(o, rows))
        }
        Err(e) => Err(AppError::from(e)),
    }
}

#[server]
pub async fn generate_dataset(form: GenerateForm) -> Result<ImportResult, AppError> {
    let store = crate::state::app_state()?.store;
    async {
        let spec = engine::datasets::generator_spec(&form)?;
        let name = if form.name.trim().is_empty() { spec.default_name() } else { form.name.clone() };
        let outcome = engine::datasets::create_generated(&store, &spec, &name).await?;
        Ok(ImportResult::new(outcome, spec.rows as i64))
    }
    .await
}

/// Applies a transform; returns the new dataset ids (two for a split).
#[server]
pub async fn transform_dataset(form: TransformForm) -> Result<Vec<i64>, AppError> {
    let store = crate::state::app_state()?.store;
    async {
        let spec = engine::datasets::transform_spec(&form)?;
        Ok(engine::datasets::apply_transform(&store, &spec).await?)
    }
    .await
}

#[server]
pub async fn delete_dataset(id: i64) -> Result<(), AppError> {
    let store = crate::state::app_state()?.store;
    engine::datasets::delete(&store, id).await.map_err(AppError::from)
}
