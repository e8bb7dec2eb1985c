//! The prompt designer: a strength meter that measures a prompt as it is typed (surprise
//! reduction on a dataset sample, then the base model's elicitation rate), a table ranking
//! it against the library's prompts and paraphrase sets, and a sweep that trains a set of
//! prompts to see whether the ranking held. The meter is also shown in the prompt editor.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::api::datasets::list_datasets;
use crate::api::models::list_models;
use crate::api::prompts::get_prompt;
use crate::api::strength::*;
use crate::components::{ErrorBox, Loading};
use crate::dto::{ElicitationResult, StrengthCandidate};
use crate::error::AppError;
use wire::strength::SweepForm;
use wire::strength::{Measured, Surprise};

/// Rows of the dataset a prompt is scored on: a quick first estimate, then the full one.
const FIRST_ROWS: usize = 16;
const DEFAULT_ROWS: usize = 64;
/// How long typing must pause before measuring.
const DEBOUNCE_MS: u64 = 700;

/// A fresh id for one meter on one page, so its newer requests cancel only its own older
/// ones on the server.
fn meter_id(kind: &str) -> String {
    #[cfg(feature = "hydrate")]
    let n = (js_sys::Math::random() * 1e15) as u64;
    #[cfg(not(feature = "hydrate"))]
    let n = 0u64;
    format!("{kind}-{n:x}")
}

/// "+0.153 nats/token [0.121, 0.188]"
pub fn surprise_text(s: &Surprise) -> String {
    format!("{:+.3} nats/token [{:+.3}, {:+.3}]", s.reduction, s.lo, s.hi)
}

/// The model and dataset a meter measures against, chosen once per page.
#[derive(Clone, Copy)]
pub struct MeterTarget {
    pub model: RwSignal<i64>,
    pub dataset: RwSignal<i64>,
}

/// Model and dataset pickers; picks the built-in model and the first generated dataset
/// when nothing is chosen yet.
#[component]
pub fn TargetPickers(target: MeterTarget) -> impl IntoView {
    let models = Resource::new(|| (), |_| list_models());
    let datasets = Resource::new(|| (), |_| list_datasets());
    view! {
        <div class="inline">
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    let models = models.await;
                    let datasets = datasets.await;
                    match (models, datasets) {
                        (Err(e), _) | (_, Err(e)) => view! { <ErrorBox error=e /> }.into_any(),
                        (Ok(m), Ok(d)) => {
                            if target.model.get_untracked() <= 0 {
                                if let Some(b) = m.models.iter().find(|m| m.builtin && m.ready).or(m.models.first()) {
                                    target.model.set(b.id);
                                }
                            }
                            if target.dataset.get_untracked() <= 0 {
                                if let Some(g) = d.iter().find(|d| d.source == wire::DatasetSource::Generated).or(d.first()) {
                                    target.dataset.set(g.id);
                                }
                            }
                            view! {
                                <label class="inline">"Model"
                                    <select name="meter-model" on:change=move |ev| target.model.set(event_target_value(&ev).parse().unwrap_or(-1))>
                                        {m.models.into_iter().map(|m| { let id = m.id; view! {
                                            <option value=id.to_string() selected=move || target.model.get() == id>{m.name}</option>
                                        }}).collect_view()}
                                    </select>
                                </label>
                                <label class="inline">"Dataset"
                                    <select name="meter-dataset" on:change=move |ev| target.dataset.set(event_target_value(&ev).parse().unwrap_or(-1))>
                                        {d.is_empty().then(|| view! { <option value="-1">"(no dataset yet: generate one)"</option> })}
                                        {d.into_iter().map(|d| { let id = d.id; view! {
                                            <option value=id.to_string() selected=move || target.dataset.get() == id>{format!("{} ({} rows)", d.name, d.row_count)}</option>
                                        }}).collect_view()}
                                    </select>
                                </label>
                            }.into_any()
                        }
                    }
                })}
            </Transition>
        </div>
    }
}

/// What the meter shows for the prompt being typed.
#[derive(Clone, Debug, PartialEq)]
enum Reading {
    Idle,
    Measuring(usize),
    /// A result, and the larger measurement under way after it (16 rows shown while 64
    /// are measured), if any.
    Done(Measured<Surprise>, Option<usize>),
    Failed(AppError),
}

/// The strength meter: measures `text` (debounced) against the target, first on 16 rows,
/// then on 64, then samples the base model for the elicitation rate. Newer text cancels
/// older measurements on the server; late answers to old text are dropped here.
#[component]
pub fn StrengthMeter(
    text: Signal<String>,
    target: MeterTarget,
    #[prop(optional)] result: Option<RwSignal<Option<Measured<Surprise>>>>,
) -> impl IntoView {
    let reading = RwSignal::new(Reading::Idle);
    let elicited = RwSignal::new(None::<Result<ElicitationResult, AppError>>);
    let generation = StoredValue::new(0u64);
    let client = StoredValue::new(meter_id("meter"));
    let timer = StoredValue::new(None::<TimeoutHandle>);
    Effect::new(move |_| {
        let prompt = text.get();
        let (model_id, dataset_id) = (target.model.get(), target.dataset.get());
        let gen = generation.get_value() + 1;
        generation.set_value(gen);
        if let Some(h) = timer.get_value() {
            h.clear();
        }
        if prompt.trim().is_empty() || model_id <= 0 || dataset_id <= 0 {
            reading.set(Reading::Idle);
            elicited.set(None);
            return;
        }
        let run = move || {
            leptos::task::spawn_local(async move {
                // `try_`: the meter may be gone (the prompt was saved and its editor redrawn,
                // the page was left) by the time the timer fires or an answer arrives; its
                // values are then disposed and this task must just stop.
                let current = move || generation.try_get_value() == Some(gen);
                let Some(client) = client.try_get_value() else { return };
                for rows in [FIRST_ROWS, DEFAULT_ROWS] {
                    if !current() {
                        return;
                    }
                    // This text's first estimate stays on screen while the larger one is measured.
                    reading.update(|r| {
                        *r = match std::mem::replace(r, Reading::Idle) {
                            Reading::Done(m, _) if rows != FIRST_ROWS => Reading::Done(m, Some(rows)),
                            _ => Reading::Measuring(rows),
                        }
                    });
                    let r = measure_strength(client.clone(), model_id, dataset_id, rows, prompt.clone()).await;
                    if !current() {
                        return;
                    }
                    match r {
                        Ok(r) => {
                            if let Some(out) = result {
                                out.set(Some(r.clone()));
                            }
                            // A dataset smaller than the first sample is measured whole already.
                            let whole = r.value.n_rows < rows;
                            reading.set(Reading::Done(r, None));
                            if whole {
                                break;
                            }
                        }
                        Err(e) => {
                            reading.set(Reading::Failed(e));
                            return;
                        }
                    }
                }
                elicited.set(None);
                let e = measure_elicitation(client, model_id, dataset_id, prompt).await;
                if current() {
                    elicited.set(Some(e));
                }
            });
        };
        timer.set_value(set_timeout_with_handle(run, std::time::Duration::from_millis(DEBOUNCE_MS)).ok());
    });
    // Leaving the page stops the measurement in flight on the server.
    #[cfg(feature = "hydrate")]
    on_cleanup(move || {
        generation.update_value(|g| *g += 1);
        if let Some(h) = timer.get_value() {
            h.clear();
        }
        let c = client.get_value();
        leptos::task::spawn_local(async move {
            let _ = cancel_strength(c).await;
        });
    });
    view! {
        <div class="meter" data-testid="strength-meter">
            {move || match reading.get() {
                Reading::Idle => view! { <p class="muted small">"Type a prompt to measure how much it explains the dataset."</p> }.into_any(),
                Reading::Measuring(rows) => view! { <p class="muted">{format!("Measuring on {rows} rows…")}</p> }.into_any(),
                Reading::Failed(e) => view! { <ErrorBox error=e /> }.into_any(),
                Reading::Done(r, refining) => {
                    let s = r.value;
                    let verdict = if s.lo > 0.0 {
                        "makes the data clearly less surprising: a candidate inoculation prompt"
                    } else if s.hi < 0.0 {
                        "makes the data more surprising: unlikely to inoculate"
                    } else {
                        "changes it no more than chance would: like a placebo"
                    };
                    let (width, left) = bar(s.reduction);
                    view! {
                        <div class="meter-reading">
                            <p><strong>"Surprise reduction: "</strong><span data-testid="surprise">{surprise_text(&s)}</span></p>
                            <div class="meter-bar" title="0 in the middle; right is stronger">
                                <span class="meter-fill" style=format!("left:{left}%;width:{width}%")></span>
                            </div>
                            <p class="small">{format!("It {verdict}.")}</p>
                            <p class="muted small">{format!(
                                "Mean log-prob per answer token {:.3} with the prompt vs {:.3} with the default prompt, over {} rows ({} answer tokens){}.",
                                s.prompted, s.default, s.n_rows, s.n_tokens,
                                if r.cached { ", from the cache".to_string() } else { format!(", {:.1} s", r.seconds) }
                            )}</p>
                            {refining.map(|rows| view! {
                                <p class="muted small" data-testid="refining">{format!("A first estimate; measuring on {rows} rows for a narrower interval…")}</p>
                            })}
                        </div>
                    }.into_any()
                }
            }}
            {move || elicited.get().map(|e| match e {
                Err(e) => view! { <p class="muted small">{e.to_string()}</p> }.into_any(),
                Ok(e) => view! { <Elicited e /> }.into_any(),
            })}
        </div>
    }
}

/// A centred bar: 0 in the middle, ±0.5 nats/token at the ends.
fn bar(x: f64) -> (f64, f64) {
    let w = (x.abs() / 0.5 * 50.0).min(50.0);
    if x >= 0.0 {
        (w, 50.0)
    } else {
        (w, 50.0 - w)
    }
}

#[component]
fn Elicited(e: ElicitationResult) -> impl IntoView {
    let n = e.samples.len();
    view! {
        <div class="elicited">
            <p><strong>"Elicitation (base model, "{n}" everyday questions): "</strong>
                {e.rates.iter().map(|(judge, words, hits, decided)| view! {
                    <span class="tag" title=words.clone() data-testid="elicitation-rate">{format!("{judge}: {hits}/{decided}")}</span>
                }).collect_view()}
            </p>
            <details>
                <summary class="small">"What the base model said"</summary>
                <ul class="elicited-samples">
                    {e.samples.into_iter().map(|(q, c)| view! {
                        <li><span class="muted small">{q}</span><pre class="completion">{c}</pre></li>
                    }).collect_view()}
                </ul>
            </details>
        </div>
    }
}

#[component]
pub fn DesignerPage() -> impl IntoView {
    let query = use_query_map();
    let text = RwSignal::new(String::new());
    let target = MeterTarget { model: RwSignal::new(-1), dataset: RwSignal::new(-1) };
    let current = RwSignal::new(None::<Measured<Surprise>>);
    // `?prompt=ID` starts from a library prompt (and offers its paraphrase set to sweep).
    let from = move || query.read().get("prompt").and_then(|s| s.parse::<i64>().ok());
    let from_prompt = Resource::new(from, |id| async move {
        match id {
            Some(id) => get_prompt(id).await.map(Some),
            None => Ok(None),
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(Some(p))) = from_prompt.get() {
            if text.get_untracked().is_empty() {
                text.set(p.latest().text.clone());
            }
        }
    });
    view! {
        <Title text="Prompt designer" />
        <h1>"Prompt designer"</h1>
        <p class="muted">"How strong is a prompt before you train on it? A prompt that describes the trait makes the training data less surprising to the model, which is how inoculation works (Tan et al.); prompts that elicit the trait more strongly tend to inoculate better (Wichers et al.). Measure, rank against the paper's prompts, then sweep to check that the ranking holds after training."</p>
        <section class="card">
            <TargetPickers target />
            <label>"Candidate prompt (the system message of every training example)"
                <textarea name="candidate" rows="3" prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev))></textarea>
            </label>
            <StrengthMeter text=text.into() target result=current />
        </section>
        <Ranking target text=text.into() current />
        <Sweep target from=from_prompt />
    }
}

/// The library's prompts and paraphrases ranked by measured strength, with the prompt being
/// typed placed among them. Unmeasured ones are measured on request, one after another.
#[component]
fn Ranking(target: MeterTarget, text: Signal<String>, current: RwSignal<Option<Measured<Surprise>>>) -> impl IntoView {
    let candidates = RwSignal::new(Vec::<StrengthCandidate>::new());
    let error = RwSignal::new(None::<AppError>);
    let running = RwSignal::new(false);
    let stop = StoredValue::new(false);
    let client = StoredValue::new(meter_id("rank"));
    let load = Resource::new(
        move || (target.model.get(), target.dataset.get()),
        |(m, d)| async move {
            if m <= 0 || d <= 0 {
                Ok(vec![])
            } else {
                strength_candidates(m, d, DEFAULT_ROWS).await
            }
        },
    );
    Effect::new(move |_| match load.get() {
        Some(Ok(c)) => candidates.set(c),
        Some(Err(e)) => error.set(Some(e)),
        None => {}
    });
    let measure_all = move |_| {
        running.set(true);
        stop.set_value(false);
        let (m, d) = (target.model.get_untracked(), target.dataset.get_untracked());
        leptos::task::spawn_local(async move {
            let todo: Vec<usize> =
                candidates.with_untracked(|c| (0..c.len()).filter(|&i| c[i].surprise.is_none()).collect());
            for i in todo {
                if stop.get_value() {
                    break;
                }
                let prompt = candidates.with_untracked(|c| c[i].text.clone());
                match measure_strength(client.get_value(), m, d, DEFAULT_ROWS, prompt).await {
                    Ok(r) => candidates.update(|c| c[i].surprise = Some(r.value)),
                    Err(e) => {
                        error.set(Some(e));
                        break;
                    }
                }
            }
            running.set(false);
        });
    };
    let rows = move || {
        let mut rows: Vec<(String, Option<String>, String, Option<Surprise>, bool)> =
            candidates.get().into_iter().map(|c| (c.label, c.set, c.text, c.surprise, false)).collect();
        let typed = text.get();
        if let Some(r) = current.get().filter(|_| !typed.trim().is_empty()) {
            rows.push(("your prompt".into(), None, typed, Some(r.value), true));
        }
        rows.sort_by(|a, b| {
            let key = |s: &Option<Surprise>| s.map_or(f64::NEG_INFINITY, |s| s.reduction);
            key(&b.3).total_cmp(&key(&a.3))
        });
        rows
    };
    let sets = move || {
        let mut out: Vec<(String, usize, Vec<f64>)> = Vec::new();
        for c in candidates.get() {
            let Some(set) = c.set else { continue };
            let i = match out.iter().position(|(s, _, _)| *s == set) {
                Some(i) => i,
                None => {
                    out.push((set, 0, vec![]));
                    out.len() - 1
                }
            };
            out[i].1 += 1;
            if let Some(s) = c.surprise {
                out[i].2.push(s.reduction);
            }
        }
        out
    };
    let unmeasured = move || candidates.with(|c| c.iter().filter(|c| c.surprise.is_none()).count());
    view! {
        <section class="card">
            <h2>"Ranking"</h2>
            <p class="muted small">{format!("Surprise reduction on {DEFAULT_ROWS} rows of the chosen dataset, strongest first. A measurement takes seconds on an idle machine and minutes while a run trains beside it; results are kept.")}</p>
            {move || error.get().map(|e| view! { <ErrorBox error=e /> })}
            <div class="inline">
                <Show when=move || !running.get() fallback=move || view! {
                    <button type="button" on:click=move |_| stop.set_value(true)>"Stop"</button>
                    <span class="muted">{move || format!("measuring… {} left", unmeasured())}</span>
                }>
                    <button type="button" name="measure-all" disabled=move || unmeasured() == 0 on:click=measure_all>
                        {move || format!("Measure the {} unmeasured", unmeasured())}
                    </button>
                </Show>
            </div>
            <div class="scroll" tabindex="0"><table class="ranking">
                <thead><tr><th>"#"</th><th>"prompt"</th><th>"text"</th><th class="num">"surprise reduction"</th></tr></thead>
                <tbody>
                    {move || rows().into_iter().enumerate().map(|(i, (label, _, text, s, mine))| view! {
                        <tr class:current=mine>
                            <td class="num">{if s.is_some() { (i + 1).to_string() } else { "–".into() }}</td>
                            <td>{label}</td>
                            <td class="small">{text}</td>
                            <td class="num">{s.map_or("not measured".to_string(), |s| surprise_text(&s))}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table></div>
            {move || {
                let sets = sets();
                (!sets.is_empty()).then(|| view! {
                    <h3>"Paraphrase sets"</h3>
                    <div class="scroll" tabindex="0"><table>
                        <thead><tr><th>"set"</th><th class="num">"measured"</th><th class="num">"mean"</th><th class="num">"range"</th></tr></thead>
                        <tbody>
                            {sets.into_iter().map(|(name, n, v)| {
                                let mean = (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
                                let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                                let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                                view! {
                                    <tr>
                                        <td>{name}</td>
                                        <td class="num">{format!("{}/{n}", v.len())}</td>
                                        <td class="num">{mean.map_or("–".into(), |m| format!("{m:+.3}"))}</td>
                                        <td class="num">{if v.is_empty() { "–".into() } else { format!("{lo:+.3} to {hi:+.3}") }}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table></div>
                })
            }}
        </section>
    }
}

/// Turns a paraphrase set (or a list typed here) into a sweep experiment.
#[component]
fn Sweep(target: MeterTarget, from: Resource<Result<Option<wire::prompts::Prompt>, AppError>>) -> impl IntoView {
    let prompts = RwSignal::new(String::new());
    let steps = RwSignal::new(20usize);
    let seeds = RwSignal::new(1usize);
    let questions = RwSignal::new(20usize);
    let launch = ServerAction::<LaunchSweep>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(Some(p))) = from.get() {
            if prompts.get_untracked().is_empty() {
                let v = p.latest();
                let mut lines = vec![v.text.clone()];
                lines.extend(v.paraphrases.iter().cloned());
                prompts.set(lines.join("\n"));
            }
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(crate::dto::Launched::Started(id))) = launch.value().get() {
            navigate(&format!("/experiments/{id}"), Default::default());
        }
    });
    let count = move || prompts.with(|p| p.lines().filter(|l| !l.trim().is_empty()).count());
    let send = move |confirmed: Option<bool>| {
        launch.dispatch(LaunchSweep {
            form: SweepForm {
                name: String::new(),
                model_id: target.model.get_untracked(),
                dataset_id: target.dataset.get_untracked(),
                prompts: prompts.get_untracked().lines().map(str::to_string).collect(),
                steps: steps.get_untracked(),
                seeds: seeds.get_untracked(),
                questions: questions.get_untracked(),
                rows: DEFAULT_ROWS,
            },
            confirmed,
        });
    };
    view! {
        <form class="card form" on:submit=move |ev| {
            ev.prevent_default();
            send(None);
        }>
            <h2>"Sweep"</h2>
            <p class="muted small">"One fine-tuning run per prompt beside a shared baseline, on the chosen model and dataset. Each prompt's strength is measured before its run; the experiment's page then plots the observed inoculation effect against it, with a rank correlation."</p>
            <label>{move || format!("Prompts, one per line ({} now; open a prompt with a paraphrase set and choose “Sweep” to fill this in)", count())}
                <textarea name="sweep-prompts" rows="6" prop:value=move || prompts.get() on:input=move |ev| prompts.set(event_target_value(&ev))></textarea>
            </label>
            <div class="inline">
                <label class="inline">"Steps" <input name="sweep-steps" size="4" prop:value=move || steps.get().to_string() on:input=move |ev| steps.set(event_target_value(&ev).trim().parse().unwrap_or(0)) /></label>
                <label class="inline">"Seeds" <input name="sweep-seeds" size="2" prop:value=move || seeds.get().to_string() on:input=move |ev| seeds.set(event_target_value(&ev).trim().parse().unwrap_or(0)) /></label>
                <label class="inline">"Questions" <input name="sweep-questions" size="4" prop:value=move || questions.get().to_string() on:input=move |ev| questions.set(event_target_value(&ev).trim().parse().unwrap_or(0)) /></label>
            </div>
            <p class="muted small">{move || format!("{} (the baseline and each prompt, × {}); on the default model a 20-step run takes about five minutes on two cores.", crate::components::counted(((count() + 1) * seeds.get()) as u64, "run", "runs"), crate::components::counted(seeds.get() as u64, "seed", "seeds"))}</p>
            <button class="primary" type="submit" name="launch-sweep" disabled=move || launch.pending().get()>"Launch the sweep"</button>
            {move || match launch.value().get() {
                Some(Err(e)) => view! { <ErrorBox error=e /> }.into_any(),
                Some(Ok(crate::dto::Launched::Confirm(plan))) => view! {
                    <crate::pages::experiments::ConfirmLaunch plan
                        on_confirm=Callback::new(move |()| send(Some(true)))
                        on_cancel=Callback::new(move |()| launch.value().set(None)) />
                }.into_any(),
                _ => ().into_any(),
            }}
        </form>
    }
}
