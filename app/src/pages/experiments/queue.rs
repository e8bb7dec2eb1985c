//! The queue: the job workers on this data directory, and every run of every experiment.

use leptos::prelude::*;
use leptos_meta::Title;

use super::fmt_duration;
use super::runs::RunsTable;
use crate::api::experiments::*;
use crate::components::{ErrorBox, Loading};
use wire::workers::{WorkerStatus, WorkerView};

#[component]
pub fn QueuePage() -> impl IntoView {
    let changed = RwSignal::new(0u32);
    let jobs = Resource::new(move || changed.get(), |_| list_queue());
    let workers = Resource::new(move || changed.get(), |_| list_workers());
    let left = Resource::new(move || changed.get(), |_| queue_work_left());
    // The queue page refreshes itself every two seconds while it is open.
    #[cfg(feature = "hydrate")]
    {
        let handle = set_interval_with_handle(move || changed.update(|n| *n += 1), std::time::Duration::from_secs(2));
        if let Ok(h) = handle {
            on_cleanup(move || h.clear());
        }
    }
    view! {
        <Title text="Queue" />
        <h1>"Queue"</h1>
        <p class="muted">"Every run of every experiment, newest first. Each worker runs one run at a time, in order; a run whose worker was lost is taken over by another worker and resumed from its last checkpoint."</p>
        <section class="card">
            <h2>"Workers"</h2>
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    match workers.await {
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                        Ok(l) if l.is_empty() => view! { <p class="empty">"No worker has registered yet: start "<code>"inoculab serve"</code>" or "<code>"inoculab worker"</code>"."</p> }.into_any(),
                        Ok(list) => view! { <WorkersTable workers=list /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                left.await.ok().filter(|l| !l.is_empty()).map(|l| view! {
                    <section class="card work-left" data-testid="queue-work-left">
                        <h2>"Work left"</h2>
                        <ul>
                            {l.into_iter().map(|(id, name, s)| view! {
                                <li><a href=format!("/experiments/{id}")>{name}</a>{format!(": about {}", fmt_duration(s))}</li>
                            }).collect_view()}
                        </ul>
                        <p class="muted small">"Training and sampling of every run not yet done, at each model's measured speed, one run after another; several workers share it."</p>
                    </section>
                })
            })}
        </Transition>
        <section class="card">
            <h2>"Runs"</h2>
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    match jobs.await {
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                        Ok(l) if l.is_empty() => view! { <p class="empty">"The queue is empty."</p> }.into_any(),
                        Ok(runs) => view! { <RunsTable runs show_experiment=true changed /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// One row per worker: name, host, device, current run, last heartbeat, speed, status.
/// Names and hosts are whatever the workers said: rendered as text.
#[component]
fn WorkersTable(workers: Vec<WorkerView>) -> impl IntoView {
    view! {
        <div class="scroll" tabindex="0"><table class="workers">
            <thead><tr>
                <th>"worker"</th><th>"host"</th><th>"device"</th><th>"status"</th><th>"current run"</th>
                <th>"last heartbeat"</th><th>"speed"</th><th class="num">"runs done"</th>
            </tr></thead>
            <tbody>
                {workers.into_iter().map(|w| {
                    let lost = w.status == WorkerStatus::Lost;
                    let run = match (w.current_run_id, w.current_experiment_id) {
                        (Some(run), Some(exp)) => view! { <a href=format!("/experiments/{exp}")>{format!("run {run}")}</a> }.into_any(),
                        (Some(run), None) => view! { <span>{format!("run {run}")}</span> }.into_any(),
                        _ => view! { <span class="muted">"—"</span> }.into_any(),
                    };
                    let speed = w.tokens_per_sec.filter(|_| w.status == WorkerStatus::Running).map(|t| format!("{t:.0} tok/s")).unwrap_or_default();
                    let age = format!("{} ago", fmt_duration(w.heartbeat_age_s));
                    view! {
                        <tr data-worker=w.name.clone() data-status=w.status.as_str()>
                            <td>{w.name.clone()}</td>
                            <td>{w.host.clone()}<span class="muted small">{format!(" pid {}", w.pid)}</span></td>
                            <td>{w.device.clone()}</td>
                            <td>
                                <span class=format!("badge {}", w.status.as_str())>{w.status.as_str()}</span>
                                {lost.then(|| view! { <div class="error small">{format!("no heartbeat for longer than its {:.0} s lease", w.lease_secs)}</div> })}
                            </td>
                            <td>{run}{(lost && w.current_run_id.is_some()).then(|| view! { <span class="muted small">" waiting for takeover"</span> })}</td>
                            <td class="small">{age}</td>
                            <td class="small">{speed}</td>
                            <td class="num">{w.runs_done}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table></div>
    }
}
