//! Files an experiment's pages link to: charts (SVG for the page and the report, PNG for
//! slides), exports (samples as CSV or JSONL, aggregates as CSV) and a run's adapter as a
//! PEFT folder in a zip. Plain GET routes, so a link, an `<img>` and `curl` all work.

use std::collections::HashMap;

use app::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

type Params = Query<HashMap<String, String>>;

/// A plain-text error with its status: what a failed download shows.
fn fail(status: StatusCode, message: impl Into<String>) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message.into()).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!("download failed: {e}");
    fail(StatusCode::INTERNAL_SERVER_ERROR, "something went wrong on the server; the log has the details")
}

/// A file name safe in a header: user-chosen names (conditions) keep only plain characters.
fn safe_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

fn file(content_type: &'static str, name: String, body: impl Into<axum::body::Body>, attachment: bool) -> Response {
    let name = safe_name(&name);
    let disposition =
        if attachment { format!("attachment; filename=\"{name}\"") } else { format!("inline; filename=\"{name}\"") };
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            // Chart URLs carry the results' version, so a cached copy is never stale for long.
            (header::CACHE_CONTROL, "private, max-age=60".to_string()),
        ],
        body.into(),
    )
        .into_response()
}

async fn resolved(state: &AppState, id: i64) -> Result<engine::experiments::Resolved, Response> {
    match engine::experiments::get(&state.store, id).await {
        Ok((r, _, _)) => Ok(r),
        Err(engine::experiments::ExperimentError::NotFound(_)) => {
            Err(fail(StatusCode::NOT_FOUND, format!("experiment {id} does not exist")))
        }
        Err(e) => Err(internal(e)),
    }
}

/// A chart of the experiment a live share link shows (`/share/TOKEN/charts/FILE`): what
/// the shared report's images load, with no session.
pub async fn shared_chart(
    State(state): State<AppState>,
    Path((token, file_name)): Path<(String, String)>,
    query: Params,
) -> Response {
    match engine::accounts::shared_experiment(&state.store, &token).await {
        Ok(Some(id)) => chart(State(state), Path((id, file_name)), query).await,
        Ok(None) => fail(StatusCode::NOT_FOUND, "this link does not exist, was revoked or has expired"),
        Err(e) => internal(e),
    }
}

/// `/api/experiments/{id}/charts/{name}.{svg|png}`: `rates` and `heatmap` (condition x
/// test-time prompt; both with `judge`, the first judge when absent), `loss`,
/// `probes` (one `condition`'s, or all), `scatter` (with an optional `test_prompt`); any of
/// them `width` and `height` pixels (see `resize`).
pub async fn chart(
    State(state): State<AppState>,
    Path((id, file_name)): Path<(i64, String)>,
    Query(q): Params,
) -> Response {
    let Some((name, ext)) = file_name.rsplit_once('.') else {
        return fail(StatusCode::NOT_FOUND, "a chart ends in .svg or .png");
    };
    if ext != "svg" && ext != "png" {
        return fail(StatusCode::NOT_FOUND, "a chart ends in .svg or .png");
    }
    let r = match resolved(&state, id).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let store = &state.store;
    let svg = match name {
        "rates" => {
            let aggregates = match engine::experiments::aggregates(store, id).await {
                Ok(a) => a,
                Err(e) => return internal(e),
            };
            let judge = match q.get("judge") {
                Some(j) => j.clone(),
                None => match aggregates.first() {
                    Some(a) => a.judge.clone(),
                    None => String::new(),
                },
            };
            let mut chart = engine::report::rate_chart(&r, &aggregates, &judge);
            resize(&mut chart.size, &q);
            engine::charts::rate_chart(&chart)
        }
        "heatmap" => {
            let aggregates = match engine::experiments::aggregates(store, id).await {
                Ok(a) => a,
                Err(e) => return internal(e),
            };
            let judge = match q.get("judge") {
                Some(j) => j.clone(),
                None => aggregates.first().map(|a| a.judge.clone()).unwrap_or_default(),
            };
            let mut chart = engine::report::heatmap_chart(&r, &aggregates, &judge);
            resize(&mut chart.size, &q);
            engine::charts::heatmap_chart(&chart)
        }
        "loss" => match engine::experiments::loss_curves(store, id).await {
            Ok(c) => {
                let mut chart = engine::report::loss_chart(&c);
                resize(&mut chart.size, &q);
                engine::charts::line_chart(&chart)
            }
            Err(e) => return internal(e),
        },
        "probes" => match engine::experiments::probe_curves(store, id).await {
            Ok(c) => {
                let mut chart = engine::report::probe_chart(&c, q.get("condition").map(|s| s.as_str()));
                resize(&mut chart.size, &q);
                engine::charts::line_chart(&chart)
            }
            Err(e) => return internal(e),
        },
        "scatter" => {
            match engine::report::alignment_scatter(store, &r, id, q.get("test_prompt").map(|s| s.as_str())).await {
                Ok(Some(mut c)) => {
                    resize(&mut c.size, &q);
                    engine::charts::scatter_chart(&c)
                }
                Ok(None) => return fail(StatusCode::NOT_FOUND, "this experiment has no Betley judge to plot"),
                Err(e) => return internal(e),
            }
        }
        "predictor" | "predictor-elicitation" => {
            let predictor = match name {
                "predictor" => engine::report::Predictor::Surprise,
                _ => engine::report::Predictor::Elicitation,
            };
            let (aggregates, strengths) = match (
                engine::experiments::aggregates(store, id).await,
                engine::strength::condition_strengths(store, &r).await,
            ) {
                (Ok(a), Ok(s)) => (a, s),
                (Err(e), _) => return internal(e),
                (_, Err(e)) => return internal(e),
            };
            let checks = engine::report::predictor_checks(&r, &aggregates, &strengths);
            let check = match q.get("judge") {
                Some(j) => checks.iter().find(|c| &c.judge == j),
                None => checks.first(),
            };
            match check {
                Some(c) => {
                    let mut chart = engine::report::predictor_chart(c, predictor);
                    resize(&mut chart.size, &q);
                    engine::charts::scatter_chart(&chart)
                }
                None => {
                    return fail(StatusCode::NOT_FOUND, "no prompt strength was measured for this experiment's judge")
                }
            }
        }
        other => return fail(StatusCode::NOT_FOUND, format!("no chart called {other:?}")),
    };
    let base = format!("experiment-{id}-{name}");
    if ext == "svg" {
        return file("image/svg+xml", format!("{base}.svg"), svg.into_bytes(), false);
    }
    // Rasterising is CPU work: off the async runtime.
    match tokio::task::spawn_blocking(move || engine::charts::svg_to_png(&svg, 2.0)).await {
        Ok(Ok(png)) => file("image/png", format!("{base}.png"), png, false),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

/// A chart drawn for the width it is shown at (`width`, `height` in the query: a phone's
/// page asks for a narrow one, so that its text is not scaled down to a few pixels). The
/// chart module clamps both; a value that is not a number is ignored.
fn resize(size: &mut engine::charts::ChartSize, q: &std::collections::HashMap<String, String>) {
    if let Some(w) = q.get("width").and_then(|w| w.parse::<u32>().ok()) {
        size.width = w;
    }
    if let Some(h) = q.get("height").and_then(|h| h.parse::<u32>().ok()) {
        size.height = h;
    }
}

/// `/api/experiments/{id}/export/{samples.csv|samples.jsonl|aggregates.csv}`. Samples take
/// the sample browser's simple filters: `condition`, `test_prompt`, `judge` + `verdict`.
pub async fn export(
    State(state): State<AppState>,
    Path((id, file_name)): Path<(i64, String)>,
    Query(q): Params,
) -> Response {
    use engine::samples::{SampleFilter, Verdict};
    if let Err(resp) = resolved(&state, id).await {
        return resp;
    }
    let nonempty = |k: &str| q.get(k).map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let filter = SampleFilter {
        experiment_id: id,
        condition: nonempty("condition"),
        test_prompt: nonempty("test_prompt"),
        judge: nonempty("judge"),
        verdict: match q.get("verdict").map(|s| s.as_str()) {
            Some("trait") => Verdict::Trait,
            Some("no_trait") => Verdict::NoTrait,
            Some("undetermined") => Verdict::Undetermined,
            _ => Verdict::Any,
        },
        ..SampleFilter::default()
    };
    let content_type = match file_name.as_str() {
        "samples.csv" | "aggregates.csv" => "text/csv; charset=utf-8",
        "samples.jsonl" => "application/x-ndjson",
        other => return fail(StatusCode::NOT_FOUND, format!("no export called {other:?}")),
    };
    // Streamed: written chunk by chunk (2,000 samples each) while the client reads, so an
    // export of any size costs the server one chunk of memory. A failure after the first
    // bytes breaks the download (and is logged) rather than ending it short.
    let (mut spool, body) = engine::export::spool();
    let store = state.store.clone();
    let name = file_name.clone();
    tokio::spawn(async move {
        let result = match name.as_str() {
            "samples.csv" => engine::export::samples_csv(&store, &filter, &mut spool).await,
            "samples.jsonl" => engine::export::samples_jsonl(&store, &filter, &mut spool).await,
            _ => engine::export::aggregates_csv(&store, id, &mut spool).await,
        };
        if let Err(e) = result {
            tracing::error!("export {name} of experiment {id} failed: {e}");
            spool.fail(e).await;
        }
    });
    file(content_type, format!("experiment-{id}-{file_name}"), axum::body::Body::from_stream(body), true)
}

/// `/api/runs/{run_id}/adapter.zip`: the run's LoRA adapter as PEFT saves it.
pub async fn adapter(State(state): State<AppState>, Path(run_id): Path<i64>) -> Response {
    let (condition, seed, adapter_dir) = match engine::export::run_adapter(&state.store, run_id).await {
        Ok(Some(v)) => v,
        Ok(None) => return fail(StatusCode::NOT_FOUND, format!("run {run_id} does not exist")),
        Err(e) => return internal(e),
    };
    let Some(rel) = adapter_dir else {
        return fail(StatusCode::NOT_FOUND, format!("run {run_id} has no adapter yet"));
    };
    let name = safe_name(&format!("run-{run_id}-{condition}-seed{seed}-adapter"));
    match engine::export::adapter_zip(state.store.artifacts(), &rel, &name).await {
        Ok(stream) => file("application/zip", format!("{name}.zip"), axum::body::Body::from_stream(stream), true),
        Err(engine::export::ExportError::Artifacts(e)) if e.is_missing() => {
            tracing::warn!("run {run_id}'s adapter is missing: {e}");
            fail(StatusCode::NOT_FOUND, format!("the adapter of run {run_id} is missing from the artifact store"))
        }
        Err(e) => internal(e),
    }
}
