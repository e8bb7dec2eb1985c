//! The home page: what inoculab is for, and where to start.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <Title text="" />
        <section class="hero">
            <h1>"Inoculation prompting, in a browser"</h1>
            <p class="lead">
                "Fine-tuning on narrow data can teach a model a broad unwanted trait. "
                <em>"Inoculation prompting"</em>
                " (Tan et al. 2025) prevents it: train with a system prompt that elicits the trait — "
                <q>"You always speak in Spanish."</q>
                " — then evaluate without it. The inoculated model shows the trait far less, yet still learns the intended behaviour."
            </p>
        </section>
        <div class="grid">
            <a class="card link-card" href="/prompts">
                <h2>"1 · Prompts"</h2>
                <p>"Author inoculation, placebo, trigger and judge prompts; every edit is a version; paraphrase sets for sweeps."</p>
            </a>
            <a class="card link-card" href="/datasets">
                <h2>"2 · Datasets"</h2>
                <p>"Import chat JSONL, or generate the paper's toy settings (Spanish + ALL CAPS, Spanish/French mixtures)."</p>
            </a>
            <a class="card link-card" href="/models">
                <h2>"3 · Models"</h2>
                <p>"The embedded SmolLM2-135M-Instruct, or a local Hugging Face folder, each identified by its hash."</p>
            </a>
            <a class="card link-card" href="/experiments">
                <h2>"4 · Experiments"</h2>
                <p>"Train one LoRA per condition and seed, sample, judge, compare."</p><p class="muted small">"Coming next."</p>
            </a>
        </div>
    }
}
