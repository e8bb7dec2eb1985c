//! Facts about the running server that pages need (limits, where data lives).

use leptos::prelude::*;

use crate::dto::ServerInfo;
use crate::error::AppError;

#[server]
pub async fn get_server_info() -> Result<ServerInfo, AppError> {
    let state = crate::state::app_state()?;
    Ok(ServerInfo { max_upload_bytes: state.limits.max_upload_bytes, data_dir: state.data_dir.display().to_string() })
}
