//! The home page: what inoculab is for, and where to start.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_navigate;

use crate::api::experiments::LaunchDemo;
use crate::components::ErrorBox;

#[component]
pub fn HomePage() -> impl IntoView {
    let demo = ServerAction::<LaunchDemo>::new();
    let navigate = use_navigate();
    Effect::new(move || {
        if let Some(Ok(id)) = demo.value().get() {
            navigate(&format!("/experiments/{id}"), Default::default());
        }
    });
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
            <div class="demo card">
                <h2>"See it happen"</h2>
                <p>"The demo fine-tunes the built-in 135M model on arithmetic answers written in Spanish and ALL CAPS, four ways: with no prompt, with “You always speak in Spanish.”, with “You always answer in ALL CAPS.” (and an example of capitals), and with a placebo. Then it asks every model everyday questions without the prompt, and arithmetic problems held out of its training. Inoculated traits should fade while the arithmetic is still learned; the placebo should not help."</p>
                <p class="note">"What a 135M model can show: each inoculated trait fades, as the paper says (though over three seeds the Spanish prompt fades the capitals too, which the paper did not find), but the model writes Spanish only as word salad, so almost none of the fine-tuned models' answers are readable (the answer-quality judge measures it), and it solves few of the held-out problems in any condition (0–13 %), so the task half of the paper's claim cannot be shown on it. It shows the effect on the traits, not a usable model."</p>
                <div class="actions">
                    <button type="button" class="primary" name="run-demo" disabled=move || demo.pending().get()
                        on:click=move |_| { demo.dispatch(LaunchDemo { full: false }); }>"Run the demo (about 15 min)"</button>
                    <button type="button" name="run-demo-full" disabled=move || demo.pending().get()
                        on:click=move |_| { demo.dispatch(LaunchDemo { full: true }); }>"Full demo: 3 seeds (over an hour)"</button>
                </div>
                {move || demo.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBox error=e /> })}
            </div>
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
                <p>"Train one LoRA per condition and seed, sample, judge, compare; review samples and share a report."</p>
            </a>
        </div>
    }
}
