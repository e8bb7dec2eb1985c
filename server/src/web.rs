//! The web server: axum router with the Leptos app, server functions, static assets
//! and an upload size limit.

use std::path::Path;

use anyhow::Context;
use app::state::{AppState, Limits};
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};

use crate::cli::{ModelPaths, ServeArgs};

pub async fn serve(
    data_dir: &Path,
    places: &crate::cli::Places,
    models: &ModelPaths,
    judge_endpoints: engine::judges::Endpoints,
    args: ServeArgs,
    max_pass_tokens: usize,
    host: ml::Host,
) -> anyhow::Result<()> {
    let guard = std::sync::Arc::new(crate::guard::Guard::new(args.public_url.as_deref(), &args.allowed_hosts)?);
    let store = places.connect(data_dir).await?;
    // Beyond loopback everyone must sign in (unless the operator says a proxy does it);
    // a server that would need accounts and has no owner does not start.
    let sign_in = args.sign_in || (!args.host.is_loopback() && !args.insecure_no_sign_in);
    if sign_in && !engine::accounts::has_owner(&store).await? {
        anyhow::bail!(
            "{} needs sign-in, and there is no owner account yet: create one with `echo PASSWORD | \
             inoculab user add NAME --role owner` (same --data-dir or --database-url), then start again. \
             (Behind a proxy that authenticates, --insecure-no-sign-in serves without accounts.)",
            if args.sign_in { "--sign-in".to_string() } else { format!("--host {}", args.host) }
        );
    }
    tracing::info!("run artefacts in {}", store.artifacts().describe());
    engine::prompts::seed_canonical(&store).await?;
    engine::prompts::seed_judge_prompts(&store).await?;
    register_default_model(&store, &models.default_model).await;
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
        store: store.clone(),
        data_dir: data_dir.to_owned(),
        model_roots: models.roots.clone(),
        limits: Limits {
            max_upload_bytes: args.max_upload_mb * 1024 * 1024,
            max_row_chars: args.max_row_chars,
            max_launch_samples: args.max_launch_samples,
            max_launch_train_tokens: args.max_launch_train_tokens,
        },
        // The meter and teacher generation share the worker's model host: one copy of a
        // model, and their work runs between a training run's steps.
        meter: std::sync::Arc::new(engine::strength::Meter::new(store.clone(), host.clone())),
        teacher_tasks: engine::datasets::teacher::TeacherTasks::new(host.clone()),
        judge_endpoints: std::sync::Arc::new(judge_endpoints),
        access: app::state::Access {
            sign_in,
            secure_cookies: args.public_url.as_deref().is_some_and(|u| u.trim().starts_with("https://")),
        },
    };
    let access = std::sync::Arc::new(crate::access::Access::new(store.clone(), sign_in));
    // The worker shares the store and the model host; `--no-worker` makes a web-only node.
    let worker = if args.no_worker {
        None
    } else {
        Some(crate::worker::WorkerThread::spawn(
            state.store.clone(),
            data_dir,
            std::time::Duration::from_secs(args.lease_secs.max(1)),
            max_pass_tokens,
            host,
        )?)
    };
    // The first Ctrl-C or SIGTERM starts a graceful shutdown and ends every live-progress
    // stream (which would otherwise hold it open for as long as a page stays open); a
    // second exits at once.
    let (stopping, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: the run in progress goes back to the queue; signal again to exit now");
        let _ = stopping.send(true);
        shutdown_signal().await;
        eprintln!("second signal: exiting now");
        std::process::exit(130);
    });
    let app = router(state)
        .layer(axum::Extension(Shutdown(shutdown.clone())))
        .layer(axum::middleware::from_fn_with_state(access, crate::access::check))
        // Outermost: a request for an unknown host or from another site goes no further.
        .layer(axum::middleware::from_fn_with_state(guard, crate::guard::check));
    if !sign_in && !args.host.is_loopback() {
        tracing::warn!("listening beyond this machine with no sign-in (--insecure-no-sign-in)");
    }
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!("inoculab is listening on http://{addr} (data in {})", data_dir.display());
    let mut until = shutdown.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = until.wait_for(|stop| *stop).await;
        })
        .await?;
    // The run in progress stops between steps and goes back to the queue for the next
    // start (or another worker); a step that takes longer is left to its lease.
    if let Some(worker) = worker {
        worker.stop(std::time::Duration::from_secs(10)).await;
    }
    Ok(())
}

/// Registers the embedded default model as built-in. The web app is useful without it
/// (prompts, datasets), so a missing or unreadable file is a warning, not a failed start.
async fn register_default_model(store: &engine::Store, path: &Path) {
    match engine::models::ensure_builtin(store, path).await {
        Ok(Some(model)) => tracing::info!("default model {} ({})", model.name, model.path),
        Ok(None) => tracing::warn!(
            "the default model {} is missing; run scripts/fetch-model or pass --default-model",
            path.display()
        ),
        Err(e) => tracing::warn!("cannot register the default model {}: {e}", path.display()),
    }
}

pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(app::App);
    let context_state = state.clone();
    // The JSON envelope of an upload is a little larger than the file itself.
    let body_limit = state.limits.max_upload_bytes + state.limits.max_upload_bytes / 8 + 64 * 1024;
    Router::new()
        .route("/api/experiments/{id}/events", axum::routing::get(experiment_events))
        .route("/api/experiments/{id}/charts/{file}", axum::routing::get(crate::downloads::chart))
        .route("/api/experiments/{id}/export/{file}", axum::routing::get(crate::downloads::export))
        .route("/api/runs/{run_id}/adapter.zip", axum::routing::get(crate::downloads::adapter))
        .route("/share/{token}/charts/{file}", axum::routing::get(crate::downloads::shared_chart))
        .leptos_routes_with_context(&state, routes, move || provide_context(context_state.clone()), {
            let options = state.leptos_options.clone();
            move || app::shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(app::shell))
        .layer(axum::middleware::from_fn(app::error::set_status))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        // Pages, server functions, exports, SVG charts and the wasm bundle (13 MB in a
        // debug build) go compressed to a browser that asks (brotli at quality 4, or gzip).
        // Its default predicate leaves out bodies under 32 bytes, images and the live
        // progress stream (an event must arrive when it is sent, not when a buffer fills).
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(state)
}

/// Live progress of an experiment as server-sent events: a JSON array of its runs
/// (`wire::runs::JobView`) whenever it changes (polled from the store once a second, which is where
/// the worker writes progress), then a `done` event once every run is final. At most one
/// poll a second whatever changes: a view carries its heartbeat's age, which differs on
/// every poll, and without the pause a client received thousands of events a second.
async fn experiment_events(
    axum::extract::State(state): axum::extract::State<AppState>,
    axum::extract::Path(id): axum::extract::Path<i64>,
    shutdown: Option<axum::Extension<Shutdown>>,
) -> axum::response::sse::Sse<
    impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures_util::StreamExt;
    let mut shutdown = shutdown.map(|s| s.0 .0);
    let stream =
        futures_util::stream::unfold((state.store, None::<String>, false), move |(store, last, ended)| async move {
            if ended {
                return None;
            }
            if last.is_some() {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            loop {
                let runs = match engine::experiments::run_views(&store, id).await.map_err(app::error::AppError::from) {
                    Ok(runs) => runs,
                    Err(e) => {
                        return Some((Ok(Event::default().event("error").data(e.to_string())), (store, last, true)))
                    }
                };
                let json = serde_json::to_string(&runs).unwrap_or_else(|_| "[]".into());
                if last.as_deref() != Some(json.as_str()) {
                    return Some((Ok(Event::default().data(json.clone())), (store, Some(json), false)));
                }
                if runs.iter().all(|r| r.is_final()) {
                    // Browsers drop events with no data, so "done" carries a word.
                    return Some((Ok(Event::default().event("done").data("final")), (store, last, true)));
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
    // Ends when the server shuts down (the page reconnects to the next server).
    let stopped = async move {
        match shutdown.as_mut() {
            Some(rx) => {
                let _ = rx.wait_for(|stop| *stop).await;
            }
            None => std::future::pending().await,
        }
    };
    Sse::new(stream.take_until(stopped)).keep_alive(KeepAlive::default())
}

/// Set when the server begins to shut down (see `serve`).
#[derive(Clone)]
struct Shutdown(tokio::sync::watch::Receiver<bool>);

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut t) => {
                t.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
