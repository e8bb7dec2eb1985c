//! The web server: axum router with the Leptos app, server functions, static assets
//! and an upload size limit.

use std::path::Path;

use anyhow::Context;
use app::state::{AppState, Limits};
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};

use crate::cli::ServeArgs;

pub async fn serve(data_dir: &Path, args: ServeArgs) -> anyhow::Result<()> {
    let store = engine::Store::open(data_dir).await?;
    engine::prompts::seed_canonical(&store).await?;
    let addr = std::net::SocketAddr::new(args.host, args.port);
    let site_root = args.site_root.display().to_string();
    if !args.site_root.join("pkg").join("inoculab.js").exists() {
        tracing::warn!(
            "no web bundle in {site_root}/pkg: pages will render but not be interactive; run scripts/build-site"
        );
    }
    let leptos_options = LeptosOptions::builder()
        .output_name("inoculab")
        .site_root(site_root)
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build();
    let state = AppState {
        leptos_options: leptos_options.clone(),
        store,
        data_dir: data_dir.to_owned(),
        limits: Limits { max_upload_bytes: args.max_upload_mb * 1024 * 1024, max_row_chars: args.max_row_chars },
    };
    let app = router(state);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!("inoculab is listening on http://{addr} (data in {})", data_dir.display());
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    Ok(())
}

pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(app::App);
    let context_state = state.clone();
    // The JSON envelope of an upload is a little larger than the file itself.
    let body_limit = state.limits.max_upload_bytes + state.limits.max_upload_bytes / 8 + 64 * 1024;
    Router::new()
        .leptos_routes_with_context(&state, routes, move || provide_context(context_state.clone()), {
            let options = state.leptos_options.clone();
            move || app::shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(app::shell))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
