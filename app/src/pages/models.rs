//! The models page: the registry (the built-in default and any registered local Hugging
//! Face folders) with what each model is and whether its files are still in place, and
//! the form that registers a folder under one of the server's model roots.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::models::*;
use crate::components::{short_time, ErrorBox, Loading};
use wire::models::ModelInfo;

#[component]
pub fn ModelsPage() -> impl IntoView {
    let register = ServerAction::<RegisterModel>::new();
    let remove = ServerAction::<RemoveModel>::new();
    // Each finished registration or removal bumps its action's version, which refetches.
    let models = Resource::new(move || (register.version().get(), remove.version().get()), |_| list_models());
    view! {
        <Title text="Models" />
        <h1>"Models"</h1>
        <p class="lead">
            "The base models experiments fine-tune: the embedded default and any local Hugging Face folders you register. "
            "Each is identified by the sha256 of its files, so a run always names the exact weights it started from."
        </p>
        <section class="card">
            <h2>"Registered models"</h2>
            {move || remove.value().get().and_then(Result::err).map(|e| view! { <ErrorBox error=e /> })}
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    match models.await {
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                        Ok(list) if list.models.is_empty() => view! {
                            <p class="empty">
                                "No models yet. The default model is registered when the server starts and finds it "
                                "(run scripts/fetch-model); you can also register a folder below."
                            </p>
                        }.into_any(),
                        Ok(list) => view! {
                            <div class="scroll" tabindex="0"><table class="models">
                                <thead>
                                    <tr>
                                        <th>"name"</th><th>"kind"</th><th>"architecture"</th><th class="num">"parameters"</th>
                                        <th class="num">"size"</th><th>"sha256"</th><th>"status"</th><th></th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {list.models.into_iter().map(|m| view! { <ModelRow m remove /> }).collect_view()}
                                </tbody>
                            </table></div>
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <RegisterForm register models />
    }
}

#[component]
fn ModelRow(m: ModelInfo, remove: ServerAction<RemoveModel>) -> impl IntoView {
    let id = m.id;
    let short_hash: String = m.sha256.chars().take(12).collect();
    let kind = match m.kind {
        wire::ModelKind::Gguf => "GGUF file",
        wire::ModelKind::Hf => "HF folder",
    };
    let status = if m.ready {
        view! { <span class="tag tag-ready" title="the files are in place">"Ready"</span> }.into_any()
    } else {
        view! { <span class="tag tag-missing" title="nothing is at this path any more">"Missing"</span> }.into_any()
    };
    view! {
        <tr>
            <td>
                <strong>{m.name}</strong>
                {m.builtin.then(|| view! { " " <span class="tag tag-builtin" title="the embedded default model">"built-in"</span> })}
                <div class="hash muted">{m.path}</div>
                <div class="muted small">{format!("registered {}", short_time(&m.created_at))}</div>
            </td>
            <td>{kind}</td>
            <td>{m.architecture}</td>
            <td class="num" title=m.n_params.to_string()>{wire::models::format_params(m.n_params)}</td>
            <td class="num" title=format!("{} bytes", m.size_bytes)>{wire::models::format_size(m.size_bytes)}</td>
            <td class="hash" title=m.sha256.clone()>{short_hash}</td>
            <td>{status}</td>
            <td>
                {(!m.builtin).then(|| view! {
                    <button
                        title="Remove from the registry; the files stay on disk"
                        disabled=move || remove.pending().get()
                        on:click=move |_| { remove.dispatch(RemoveModel { id }); }
                    >"Remove"</button>
                })}
            </td>
        </tr>
    }
}

#[component]
fn RegisterForm(
    register: ServerAction<RegisterModel>,
    models: Resource<Result<crate::dto::ModelList, crate::error::AppError>>,
) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let path = RwSignal::new(String::new());
    Effect::new(move || {
        if let Some(Ok(_)) = register.value().get() {
            name.set(String::new());
            path.set(String::new());
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        register.dispatch(RegisterModel { name: name.get_untracked(), path: path.get_untracked() });
    };
    view! {
        <form class="card form" on:submit=on_submit>
            <h2>"Register a local Hugging Face folder"</h2>
            <p class="muted small">
                "A folder with " <code>"config.json"</code> ", " <code>"tokenizer.json"</code> " and "
                <code>"model.safetensors"</code> " (or shards listed in " <code>"model.safetensors.index.json"</code>
                "), of the llama, qwen2 or mistral family. Registering reads and hashes the files; it never moves or copies them."
            </p>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    models.await.ok().map(|list| view! {
                        <p class="small roots">
                            "Allowed model roots: "
                            {list.roots.into_iter().enumerate().map(|(i, r)| view! {
                                {(i > 0).then_some(", ")}<code>{r}</code>
                            }).collect_view()}
                            ". Start the server with " <code>"--model-root"</code> " to allow another folder."
                        </p>
                    })
                })}
            </Transition>
            <label>"Name"
                <input name="model-name" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
            </label>
            <label>"Path of the folder on the server"
                <input name="model-path" placeholder="/path/to/models/SmolLM2-360M-Instruct" prop:value=move || path.get() on:input=move |ev| path.set(event_target_value(&ev)) />
            </label>
            <button class="primary" type="submit" disabled=move || register.pending().get()>
                {move || if register.pending().get() { "Registering… (hashing the files)" } else { "Register" }}
            </button>
            {move || register.value().get().map(|r| match r {
                Ok(m) => view! {
                    <p class="ok" role="status">
                        {format!("Registered “{}”: {}, {} parameters.", m.name, m.architecture, wire::models::format_params(m.n_params))}
                    </p>
                }.into_any(),
                Err(e) => view! { <ErrorBox error=e /> }.into_any(),
            })}
        </form>
    }
}
