//! The experiments page. The experiment loop (conditions x seeds, queue, live progress)
//! is the next piece of work; until then this page says what is coming.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn ExperimentsPage() -> impl IntoView {
    view! {
        <Title text="Experiments" />
        <h1>"Experiments"</h1>
        <section class="card placeholder">
            <h2>"Coming next"</h2>
            <p>
                "An experiment trains one LoRA fine-tune per condition (a baseline without inoculation, and one per inoculation prompt) "
                "and seed, then samples evaluation questions without the prompt and scores the answers with judges."
            </p>
            <p class="muted">"You can already prepare its two inputs: " <a href="/prompts">"prompts"</a> " and " <a href="/datasets">"datasets"</a> "."</p>
        </section>
    }
}
