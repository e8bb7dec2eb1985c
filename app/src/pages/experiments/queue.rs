//! The queue: every run of every experiment.

use leptos::prelude::*;
use leptos_meta::Title;

use super::runs::RunsTable;
use crate::api::experiments::*;
use crate::components::{ErrorBox, Loading};

#[component]
pub fn QueuePage() -> impl IntoView {
    let changed = RwSignal::new(0u32);
    let jobs = Resource::new(move || changed.get(), |_| list_queue());
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
        <p class="muted">"Every run of every experiment, newest first. One worker runs them in order; a run whose worker died is resumed from its last checkpoint."</p>
        <section class="card">
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
