//! The runs table: one row per run with its progress, loss curve and actions.

use leptos::prelude::*;

use super::*;
use crate::api::experiments::*;
use crate::components::ErrorBox;
use wire::runs::JobView;
use wire::{JobStatus, RunPhase};

/// A loss curve as a small inline SVG line.
#[component]
fn Sparkline(points: Vec<(i64, f64)>, total: i64) -> impl IntoView {
    let (w, h) = (160.0, 36.0);
    if points.is_empty() {
        return view! { <span class="muted small">"no steps yet"</span> }.into_any();
    }
    let max = points.iter().map(|p| p.1).fold(f64::MIN, f64::max);
    let min = points.iter().map(|p| p.1).fold(f64::MAX, f64::min);
    let span = (max - min).max(1e-9);
    let total = total.max(points.last().map(|p| p.0).unwrap_or(1)).max(1) as f64;
    let coords: Vec<String> = points
        .iter()
        .map(|(s, l)| format!("{:.1},{:.1}", w * *s as f64 / total, 2.0 + (h - 4.0) * (1.0 - (l - min) / span)))
        .collect();
    let last = points.last().map(|p| p.1).unwrap_or(0.0);
    view! {
        <span class="sparkline" title=format!("loss {:.3} → {:.3}", points[0].1, last)>
            <svg width=w height=h viewBox=format!("0 0 {w} {h}") role="img" aria-label="loss curve">
                <polyline fill="none" stroke="currentColor" stroke-width="1.5" points=coords.join(" ") />
            </svg>
            <span class="small">{format!("{last:.3}")}</span>
        </span>
    }
    .into_any()
}

fn progress_text(r: &JobView) -> String {
    match (r.status, r.phase) {
        (JobStatus::Queued, _) => "waiting".into(),
        (_, RunPhase::Train) if r.total_steps > 0 => format!("training: step {} / {}", r.step, r.total_steps),
        (_, RunPhase::Sample) => format!("sampling: {} / {}", r.done_units, r.total_units),
        (_, RunPhase::Judge) => format!("judging: {} / {}", r.done_units, r.total_units),
        (_, p) => p.as_str().to_string(),
    }
}

/// The runs table: status, progress bar, phase, speed, ETA, loss curve, actions.
#[component]
pub(super) fn RunsTable(runs: Vec<JobView>, show_experiment: bool, changed: RwSignal<u32>) -> impl IntoView {
    let cancel = ServerAction::<CancelRun>::new();
    let retry = ServerAction::<RetryRun>::new();
    Effect::new(move || {
        if cancel.version().get() + retry.version().get() > 0 {
            changed.update(|n| *n += 1);
        }
    });
    view! {
        <div class="scroll" tabindex="0"><table class="runs">
            <thead><tr>
                {show_experiment.then(|| view! { <th>"experiment"</th> })}
                <th>"condition"</th><th class="num">"seed"</th><th>"status"</th><th>"progress"</th><th>"speed"</th><th>"ETA"</th>
                {(!show_experiment).then(|| view! { <th>"loss"</th> })}
                <th></th>
            </tr></thead>
            <tbody>
                {runs.into_iter().map(|r| {
                    let run_id = r.run_id;
                    let status_class = format!("badge {}", r.status.as_str());
                    let fraction = r.progress;
                    let speed = r.tokens_per_sec.filter(|_| r.status == JobStatus::Running).map(|t| format!("{t:.0} tok/s")).unwrap_or_default();
                    let eta = r.eta_s.filter(|_| r.status == JobStatus::Running).map(fmt_duration).unwrap_or_default();
                    let can_cancel = !r.is_final() && !r.cancel_requested;
                    let can_retry = r.status.can_retry();
                    view! {
                        <tr data-run=run_id.to_string() data-status=r.status.as_str()>
                            {show_experiment.then(|| view! { <td><a href=format!("/experiments/{}", r.experiment_id)>{r.experiment.clone()}</a></td> })}
                            <td>{r.condition.clone()}</td>
                            <td class="num">{r.seed}</td>
                            <td>
                                <span class=status_class>{r.status.as_str()}</span>
                                {r.waiting_for_takeover.then(|| view! { <span class="badge lost" title="its worker stopped sending heartbeats; the next worker to poll resumes it from its last checkpoint">"waiting for takeover"</span> })}
                                {r.cancel_requested.then(|| view! { <span class="muted small">" cancelling…"</span> })}
                                {(r.attempts > 1).then(|| view! { <span class="muted small">{format!(" attempt {} of {}", r.attempts, r.max_attempts)}</span> })}
                                {r.error.clone().map(|e| view! { <div class="error small">{e}</div> })}
                            </td>
                            <td>
                                <div class="bar" title=pct(fraction)><div class="fill" style=format!("width: {:.1}%", 100.0 * fraction)></div></div>
                                <span class="small">{progress_text(&r)}</span>
                            </td>
                            <td class="small">{speed}</td>
                            <td class="small">{eta}</td>
                            {(!show_experiment).then(|| view! { <td><Sparkline points=r.losses.clone() total=r.total_steps /></td> })}
                            <td>
                                {can_cancel.then(|| view! { <button type="button" class="small" name="cancel-run" on:click=move |_| { cancel.dispatch(CancelRun { run_id }); }>"Cancel"</button> })}
                                {can_retry.then(|| view! { <button type="button" class="small" name="retry-run" on:click=move |_| { retry.dispatch(RetryRun { run_id }); }>"Retry"</button> })}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table></div>
        {move || retry.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBox error=e /> })}
    }
}
