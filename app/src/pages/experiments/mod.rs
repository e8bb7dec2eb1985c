//! Experiments: the list (here), the launch form (`launch`: matrix, counts and time
//! estimate before launching), one experiment's page with live progress (server-sent
//! events), trait rates, charts, the elicitation check and exports (`detail`), the queue of
//! every run (`queue`), and the runs table both of those show (`runs`).

mod detail;
mod launch;
mod queue;
mod runs;

pub use detail::ExperimentPage;
pub use launch::{ConfirmLaunch, NewExperimentPage};
pub use queue::QueuePage;

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::experiments::*;
use crate::components::{short_time, ErrorBox, Loading};

pub use wire::fmt_duration;

pub fn pct(x: f64) -> String {
    format!("{:.0} %", 100.0 * x)
}

#[component]
pub fn ExperimentsPage() -> impl IntoView {
    let list = Resource::new(|| (), |_| list_experiments());
    view! {
        <Title text="Experiments" />
        <h1>"Experiments"</h1>
        <p class="actions">
            <a class="button primary" href="/experiments/new">"New experiment"</a>
            " "
            <a class="button" href="/queue">"Queue"</a>
        </p>
        <section class="card">
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    match list.await {
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                        Ok(l) if l.is_empty() => view! {
                            <p class="empty">"No experiments yet. " <a href="/experiments/new">"Design one"</a> "."</p>
                        }.into_any(),
                        Ok(l) => view! {
                            <div class="scroll" tabindex="0"><table class="experiments">
                                <thead><tr><th>"name"</th><th>"model"</th><th>"dataset"</th><th>"runs"</th><th>"created"</th></tr></thead>
                                <tbody>
                                    {l.into_iter().map(|e| view! {
                                        <tr>
                                            <td><a href=format!("/experiments/{}", e.id)>{e.name}</a></td>
                                            <td>{e.model}</td>
                                            <td>{e.dataset}</td>
                                            <td>
                                                {format!("{} / {} done", e.runs_done, e.runs)}
                                                {(e.runs_active > 0).then(|| view! { <span class="badge running">{format!("{} active", e.runs_active)}</span> })}
                                                {(e.runs_failed > 0).then(|| view! { <span class="badge failed">{format!("{} failed", e.runs_failed)}</span> })}
                                            </td>
                                            <td>{short_time(&e.created_at)}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table></div>
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// Adds or removes `item` from a list held in the form.
pub(crate) fn toggle<T: PartialEq>(list: &mut Vec<T>, item: T, on: bool) {
    let present = list.contains(&item);
    if on && !present {
        list.push(item);
    } else if !on && present {
        list.retain(|x| *x != item);
    }
}
