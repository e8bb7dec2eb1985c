//! The models page. Model management arrives with the experiment loop; until then this
//! page says so plainly rather than showing anything that does not work yet.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn ModelsPage() -> impl IntoView {
    view! {
        <Title text="Models" />
        <h1>"Models"</h1>
        <section class="card placeholder">
            <h2>"Coming next"</h2>
            <p>
                "This page will list the embedded default model (SmolLM2-135M-Instruct, fetched once into the data directory) "
                "and any local Hugging Face model folders you register, with their architecture, size, file hash and readiness."
            </p>
            <p class="muted">"Nothing is listed yet because model management is not built yet."</p>
        </section>
    }
}
