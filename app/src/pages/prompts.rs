//! The prompt library: list with search and tag filter, the new-prompt form, and one
//! prompt's page with its editor, version history and diffs.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::api::prompts::*;
use crate::components::{short_time, ErrorBox, Loading, Tags};
use crate::pages::designer::{MeterTarget, StrengthMeter, TargetPickers};
use wire::prompts::{DiffLine, Prompt, PromptVersion};

#[component]
pub fn PromptsPage() -> impl IntoView {
    let search = RwSignal::new(String::new());
    let tag = RwSignal::new(String::new());
    let prompts = Resource::new(move || (search.get(), tag.get()), |(s, t)| list_prompts(s, t));
    let tags = Resource::new(|| (), |_| prompt_tags());
    let show_new = RwSignal::new(false);

    view! {
        <Title text="Prompts" />
        <div class="page-head">
            <h1>"Prompts"</h1>
            <button class="primary" on:click=move |_| show_new.update(|v| *v = !*v)>
                {move || if show_new.get() { "Close" } else { "New prompt" }}
            </button>
        </div>
        <Show when=move || show_new.get()>
            <NewPrompt />
        </Show>
        <div class="filters">
            <input
                type="search"
                name="search"
                placeholder="Search names, texts and paraphrases"
                aria-label="Search prompts"
                prop:value=move || search.get()
                on:input=move |ev| search.set(event_target_value(&ev))
            />
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let all = tags.await.unwrap_or_default();
                    view! {
                        <div class="chips" role="group" aria-label="Filter by tag">
                            <button class:active=move || tag.get().is_empty() on:click=move |_| tag.set(String::new())>"all"</button>
                            {all.into_iter().map(|t| {
                                let t2 = t.clone();
                                let t3 = t.clone();
                                view! { <button class:active=move || tag.get() == t2 on:click=move |_| tag.set(t3.clone())>{t}</button> }
                            }).collect_view()}
                        </div>
                    }
                })}
            </Suspense>
        </div>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match prompts.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="empty">"No prompt matches."</p> }.into_any(),
                    Ok(list) => view! {
                        <ul class="prompt-list">
                            {list.into_iter().map(|p| view! {
                                <li class="card">
                                    <div class="row-head">
                                        <a class="title" href=format!("/prompts/{}", p.id)>{p.name.clone()}</a>
                                        <Tags tags=p.tags.clone() />
                                    </div>
                                    <p class="prompt-text">{p.text.clone()}</p>
                                    <p class="muted small">
                                        {format!("v{} · updated {}", p.version, short_time(&p.updated_at))}
                                        {(p.paraphrase_count > 0).then(|| format!(" · {} paraphrases", p.paraphrase_count))}
                                    </p>
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The form fields shared by "new" and "edit".
#[derive(Clone, Copy)]
struct FormSignals {
    name: RwSignal<String>,
    text: RwSignal<String>,
    tags: RwSignal<String>,
    paraphrases: RwSignal<String>,
    note: RwSignal<String>,
}

impl FormSignals {
    fn new(form: PromptForm) -> Self {
        FormSignals {
            name: RwSignal::new(form.name),
            text: RwSignal::new(form.text),
            tags: RwSignal::new(form.tags),
            paraphrases: RwSignal::new(form.paraphrases),
            note: RwSignal::new(form.note),
        }
    }
    fn get(&self) -> PromptForm {
        PromptForm {
            name: self.name.get_untracked(),
            text: self.text.get_untracked(),
            tags: self.tags.get_untracked(),
            paraphrases: self.paraphrases.get_untracked(),
            note: self.note.get_untracked(),
        }
    }
}

#[component]
fn PromptFields(f: FormSignals, show_note: bool) -> impl IntoView {
    let file_input = NodeRef::<leptos::html::Input>::new();
    let file_error = RwSignal::new(None::<String>);
    let load_file = move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(input) = file_input.get() {
            leptos::task::spawn_local(async move {
                match crate::components::read_file_text(&input).await {
                    Ok(Some((_, text))) => {
                        file_error.set(None);
                        f.paraphrases.set(text);
                    }
                    Ok(None) => {}
                    Err(e) => file_error.set(Some(e)),
                }
            });
        }
    };
    let count = move || f.paraphrases.get().lines().filter(|l| !l.trim().is_empty()).count();
    view! {
        <label>"Name" <input name="name" required prop:value=move || f.name.get() on:input=move |ev| f.name.set(event_target_value(&ev)) /></label>
        <label>"Text (the system prompt, exactly as the model will see it)"
            <textarea name="text" rows="4" prop:value=move || f.text.get() on:input=move |ev| f.text.set(event_target_value(&ev))></textarea>
        </label>
        <label>"Tags (comma-separated: inoculation, placebo, trigger, test-time, judge, or your own)"
            <input name="tags" prop:value=move || f.tags.get() on:input=move |ev| f.tags.set(event_target_value(&ev)) />
        </label>
        <label>{move || format!("Paraphrase set — one variant per line ({} now)", count())}
            <textarea name="paraphrases" rows="4" prop:value=move || f.paraphrases.get() on:input=move |ev| f.paraphrases.set(event_target_value(&ev))></textarea>
        </label>
        <div class="inline">
            <span class="muted small">"Load paraphrases from a text file, one per line:"</span>
            <input type="file" name="paraphrase-file" aria-label="paraphrases file" accept=".txt,text/plain" node_ref=file_input on:change=load_file />
        </div>
        {move || file_error.get().map(|e| view! { <p class="error">{e}</p> })}
        {show_note.then(|| view! {
            <label>"Note for this version (optional)"
                <input name="note" prop:value=move || f.note.get() on:input=move |ev| f.note.set(event_target_value(&ev)) />
            </label>
        })}
    }
}

#[component]
fn NewPrompt() -> impl IntoView {
    let f = FormSignals::new(PromptForm { tags: "inoculation".into(), ..Default::default() });
    let create = ServerAction::<CreatePrompt>::new();
    let navigate = use_navigate();
    Effect::new(move || {
        if let Some(Ok(id)) = create.value().get() {
            navigate(&format!("/prompts/{id}"), Default::default());
        }
    });
    view! {
        <form class="card form" on:submit=move |ev| {
            ev.prevent_default();
            create.dispatch(CreatePrompt { form: f.get() });
        }>
            <h2>"New prompt"</h2>
            <PromptFields f show_note=false />
            {move || create.value().get().and_then(Result::err).map(|e| view! { <ErrorBox error=e /> })}
            <button class="primary" type="submit" disabled=move || create.pending().get()>"Create"</button>
        </form>
    }
}

#[component]
pub fn PromptPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|s| s.parse::<i64>().ok()).unwrap_or(-1);
    let update = ServerAction::<UpdatePrompt>::new();
    let prompt = Resource::new(move || (id(), update.version().get()), |(id, _)| get_prompt(id));
    view! {
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match prompt.await {
                    Err(e) => view! { <Title text="Prompt" /><h1>"Prompt"</h1><ErrorBox error=e /> }.into_any(),
                    Ok(p) => view! { <PromptView prompt=p update /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn PromptView(prompt: Prompt, update: ServerAction<UpdatePrompt>) -> impl IntoView {
    let latest = prompt.latest().clone();
    let id = prompt.id;
    let f = FormSignals::new(PromptForm {
        name: prompt.name.clone(),
        text: latest.text.clone(),
        tags: prompt.tags.join(", "),
        paraphrases: latest.paraphrases.join("\n"),
        note: String::new(),
    });
    let delete = ServerAction::<DeletePrompt>::new();
    let meter_target = MeterTarget { model: RwSignal::new(-1), dataset: RwSignal::new(-1) };
    let confirm_delete = RwSignal::new(false);
    let navigate = use_navigate();
    Effect::new(move || {
        if let Some(Ok(())) = delete.value().get() {
            navigate("/prompts", Default::default());
        }
    });
    let n_versions = prompt.versions.len() as i64;
    let shown = RwSignal::new(latest.version);
    let diff_from = RwSignal::new((latest.version - 1).max(1));
    let diff_to = RwSignal::new(latest.version);
    let diff = Resource::new(move || (diff_from.get(), diff_to.get()), move |(a, b)| diff_prompt_versions(id, a, b));
    let versions = prompt.versions.clone();
    let shown_version = move || versions.iter().find(|v| v.version == shown.get()).cloned();

    view! {
        <Title text=prompt.name.clone() />
        <div class="page-head">
            <h1>{prompt.name.clone()}</h1>
            <Tags tags=prompt.tags.clone() />
        </div>
        <p class="muted">{format!("{} · created {}", crate::components::counted(n_versions as u64, "version", "versions"), short_time(&prompt.created_at))}</p>
        <div class="two-col">
            <form class="card form" on:submit=move |ev| {
                ev.prevent_default();
                update.dispatch(UpdatePrompt { id, form: f.get() });
            }>
                <h2>"Edit"</h2>
                <p class="muted small">"Saving a changed text or paraphrase set adds a new version; older versions stay as they were."</p>
                <PromptFields f show_note=true />
                {move || update.value().get().and_then(Result::err).map(|e| view! { <ErrorBox error=e /> })}
                <div class="inline">
                    <button class="primary" type="submit" disabled=move || update.pending().get()>"Save"</button>
                    <Show
                        when=move || confirm_delete.get()
                        fallback=move || view! { <button type="button" class="danger" on:click=move |_| confirm_delete.set(true)>"Delete"</button> }
                    >
                        <button type="button" class="danger" on:click=move |_| { delete.dispatch(DeletePrompt { id }); }>"Really delete"</button>
                        <button type="button" on:click=move |_| confirm_delete.set(false)>"Keep"</button>
                    </Show>
                </div>
                {move || delete.value().get().and_then(Result::err).map(|e| view! { <ErrorBox error=e /> })}
                <h3>"Strength"</h3>
                <TargetPickers target=meter_target />
                <StrengthMeter text=f.text.into() target=meter_target />
                <p class="small">
                    <a href=format!("/designer?prompt={id}")>
                        {if latest.paraphrases.is_empty() { "Rank it against the library in the designer →".to_string() } else { format!("Rank it in the designer, or sweep its paraphrase set ({}) →", latest.paraphrases.len()) }}
                    </a>
                </p>
            </form>
            <section class="card">
                <h2>"Versions"</h2>
                <div class="scroll" tabindex="0"><table class="versions">
                    <thead><tr><th>"version"</th><th>"saved"</th><th>"note"</th><th></th></tr></thead>
                    <tbody>
                        {prompt.versions.iter().rev().map(|v| {
                            let n = v.version;
                            view! {
                                <tr class:current=move || shown.get() == n>
                                    <td>{format!("v{n}")}</td>
                                    <td>{short_time(&v.created_at)}</td>
                                    <td>{v.note.clone()}</td>
                                    <td><button class="link" on:click=move |_| shown.set(n)>"view"</button></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table></div>
                {move || shown_version().map(|v| view! { <VersionView v /> })}
                <Show when=move || { n_versions > 1 }>
                    <h3>"Compare"</h3>
                    <div class="inline">
                        <VersionSelect label="from" n=n_versions value=diff_from />
                        <VersionSelect label="to" n=n_versions value=diff_to />
                    </div>
                    <Transition fallback=Loading>
                        {move || Suspend::new(async move {
                            match diff.await {
                                Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                                Ok(lines) => view! { <DiffView lines /> }.into_any(),
                            }
                        })}
                    </Transition>
                </Show>
            </section>
        </div>
    }
}

#[component]
fn VersionSelect(label: &'static str, n: i64, value: RwSignal<i64>) -> impl IntoView {
    view! {
        <label class="inline">{label}
            <select name=label on:change=move |ev| value.set(event_target_value(&ev).parse().unwrap_or(1))>
                {(1..=n).map(|v| view! { <option value=v.to_string() selected=move || value.get() == v>{format!("v{v}")}</option> }).collect_view()}
            </select>
        </label>
    }
}

#[component]
fn VersionView(v: PromptVersion) -> impl IntoView {
    view! {
        <div class="version-view">
            <h3>{format!("v{} text", v.version)}</h3>
            <pre class="prompt-text">{v.text}</pre>
            {(!v.paraphrases.is_empty()).then(|| view! {
                <details>
                    <summary>{format!("{} paraphrases", v.paraphrases.len())}</summary>
                    <ol class="paraphrases">{v.paraphrases.into_iter().map(|p| view! { <li>{p}</li> }).collect_view()}</ol>
                </details>
            })}
        </div>
    }
}

#[component]
fn DiffView(lines: Vec<DiffLine>) -> impl IntoView {
    view! {
        <pre class="diff">
            {lines.into_iter().map(|l| match l {
                DiffLine::Same(s) => view! { <div class="same">{format!("  {s}")}</div> },
                DiffLine::Added(s) => view! { <div class="added">{format!("+ {s}")}</div> },
                DiffLine::Removed(s) => view! { <div class="removed">{format!("- {s}")}</div> },
            }).collect_view()}
        </pre>
    }
}
