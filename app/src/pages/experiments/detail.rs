//! One experiment's page: live progress, trait rates, charts, the elicitation check and
//! exports.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use super::runs::RunsTable;
use super::*;
use crate::api::experiments::*;
use crate::components::{short_time, ErrorBox, Loading};
use crate::error::AppError;
use crate::pages::report::Chart;
use crate::pages::samples::SampleBrowser;
use wire::experiments::{AddTestPromptsForm, Aggregate, ExperimentDetail, RateBasis};
use wire::prompts::PromptSummary;
use wire::reports::PredictionView;
use wire::runs::JobView;
use wire::JobStatus;

/// Subscribes to the experiment's live progress stream; each message replaces `live`,
/// and the final `done` event bumps `finished` so the results reload, but only when
/// something was still queued or running: on the page shown (`shown_active`) or in a
/// message since. An experiment that was already over when the page opened is not
/// reloaded: that reload would rebuild the page under the user, resetting the sample
/// filters they had just picked.
#[cfg(feature = "hydrate")]
fn subscribe(
    id: i64,
    live: RwSignal<Option<Vec<JobView>>>,
    finished: RwSignal<u32>,
    shown_active: impl Fn() -> bool + 'static,
) {
    use std::cell::Cell;
    use std::rc::Rc;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    let Ok(source) = web_sys::EventSource::new(&format!("/api/experiments/{id}/events")) else { return };
    let saw_active = Rc::new(Cell::new(false));
    let saw = saw_active.clone();
    let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
        if let Some(runs) = ev.data().as_string().and_then(|t| serde_json::from_str::<Vec<JobView>>(&t).ok()) {
            if runs.iter().any(|r| !r.is_final()) {
                saw.set(true);
            }
            live.set(Some(runs));
        }
    });
    source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    let closer = source.clone();
    let on_done = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_: web_sys::MessageEvent| {
        // The stream ends when every run is final; closing stops the browser reconnecting.
        closer.close();
        if saw_active.get() || shown_active() {
            finished.update(|n| *n += 1);
        }
    });
    let _ = source.add_event_listener_with_callback("done", on_done.as_ref().unchecked_ref());
    on_done.forget();
    let source = send_wrapper::SendWrapper::new(source);
    on_cleanup(move || source.close());
}

#[component]
pub fn ExperimentPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|s| s.parse::<i64>().ok()).unwrap_or(0));
    // `changed` bumps after the user acts (cancel, retry): reload and listen again.
    // `finished` bumps when the stream ends (every run final): reload the results only.
    let changed = RwSignal::new(0u32);
    let finished = RwSignal::new(0u32);
    let detail = Resource::new(move || (id(), changed.get(), finished.get()), |(id, _, _)| get_experiment(id));
    // Made here, not in the sections that read them: a resource made inside the Suspense is
    // fetched again each time the server walks the view (leptos-rs/leptos#4866), and only
    // starts once the experiment has loaded.
    let predictions = Resource::new(
        move || (id(), changed.get(), finished.get()),
        |(id, _, _)| crate::api::strength::get_predictions(id),
    );
    let library = Resource::new(|| (), |_| elicitation_prompts());
    let samples = crate::pages::samples::SampleData::new(id, move || changed.get() + finished.get());
    let live = RwSignal::new(None::<Vec<JobView>>);
    #[cfg(feature = "hydrate")]
    Effect::new(move || {
        changed.track();
        let id = id();
        live.set(None);
        // The page on screen (or the one it is reloading from, which a Resource keeps).
        let shown_active = move || {
            detail.with_untracked(|d| match d {
                Some(Ok(d)) => d.runs.iter().any(|r| !r.is_final()),
                _ => true,
            })
        };
        subscribe(id, live, finished, shown_active);
    });
    let cancel_all = ServerAction::<CancelExperiment>::new();
    Effect::new(move || {
        if cancel_all.version().get() > 0 {
            changed.update(|n| *n += 1);
        }
    });
    // Made here, not in the section: its answer must outlive the reload it causes.
    let add_prompts = ServerAction::<AddTestPrompts>::new();
    Effect::new(move || {
        if let Some(Ok(_)) = add_prompts.value().get() {
            changed.update(|n| *n += 1);
        }
    });
    view! {
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(e) => view! { <Title text="Experiment" /><ErrorBox error=e /> }.into_any(),
                    Ok(d) => {
                        let eid = d.id;
                        let stored_runs = d.runs.clone();
                        let active_runs = d.runs.clone();
                        let work = d.work.clone();
                        view! {
                            <Title text=d.name.clone() />
                            <ExperimentHeader detail=d.clone() />
                            <section class="card">
                                <h2>"Runs"
                                    // Only while something can still be cancelled: queued or running runs.
                                    {move || {
                                        let runs = live.get().unwrap_or_else(|| active_runs.clone());
                                        runs.iter().any(|r| r.status.is_active()).then(|| view! {
                                            <button type="button" class="small right" name="cancel-experiment" on:click=move |_| { cancel_all.dispatch(CancelExperiment { id: eid }); }>"Cancel experiment"</button>
                                        })
                                    }}
                                </h2>
                                {move || {
                                    let runs = live.get().unwrap_or_else(|| stored_runs.clone());
                                    let left = work.as_ref().filter(|_| runs.iter().any(|r| !r.status.is_final())).map(|w| w.remaining_s(&runs));
                                    view! {
                                        {left.map(|s| view! {
                                            <p class="work-left" data-testid="work-left"><strong>{format!("About {} of work left", fmt_duration(s))}</strong>
                                                <span class="muted small">" (training and sampling of every run not yet done, one after another on one worker, at this model's measured speed)"</span></p>
                                        })}
                                        <RunsTable runs show_experiment=false changed />
                                    }
                                }}
                            </section>
                            <Results aggregates=d.aggregates.clone() />
                            <Charts detail=d.clone() predictions />
                            <Elicitation detail=d.clone() action=add_prompts library />
                            <Exports detail=d.clone() />
                            <SampleBrowser detail=d.clone() data=samples />
                            <section class="card">
                                <details>
                                    <summary>{format!("Stored specification (sha256 {})", &d.spec_hash[..12.min(d.spec_hash.len())])}</summary>
                                    <pre class="spec">{d.spec_json.clone()}</pre>
                                </details>
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[component]
fn ExperimentHeader(detail: ExperimentDetail) -> impl IntoView {
    let d = detail;
    view! {
        <h1>{d.name.clone()}</h1>
        <p class="muted">
            {format!("Model {} · dataset ", d.model)}
            <a href=format!("/datasets/{}", d.dataset_id)>{d.dataset.clone()}</a>
            {format!(" · {} per run · {} · test-time prompts: {} · judges: {} · created {}",
                crate::components::counted(d.steps_per_run as u64, "training step", "training steps"),
                crate::components::counted(d.questions as u64, "question", "questions"),
                d.test_prompts.join(", "), d.judges.join(", "), short_time(&d.created_at))}
        </p>
        {d.judge_notes.iter().map(|n| view! { <p class="muted small judge-note">{n.clone()}</p> }).collect_view()}
        {d.judge_warnings.iter().map(|w| view! { <p class="warning judge-warning">{w.clone()}</p> }).collect_view()}
        {d.calibrations.iter().map(|c| view! { <p class="muted small judge-note calibration" data-testid="calibration">{c.sentence()}</p> }).collect_view()}
        {d.base_run.clone().map(|(run, experiment, what, sha)| view! {
            <p class="base-run">"Starts from run " {run.to_string()} " of "
                <a href=format!("/experiments/{experiment}")>{what}</a>
                <span class="muted small">{format!(" (its adapter merged into the model; sha256 {})", &sha[..12.min(sha.len())])}</span>
            </p>
        })}
        <ul class="conditions">
            {d.conditions.iter().map(|c| view! {
                <li><strong>{c.name.clone()}</strong>": " {c.describe()}</li>
            }).collect_view()}
        </ul>
    }
}

/// A rate with its 95 % interval as a bar with whiskers.
#[component]
fn RateBar(rate: Option<f64>, lo: Option<f64>, hi: Option<f64>) -> impl IntoView {
    match (rate, lo, hi) {
        (Some(r), Some(lo), Some(hi)) => view! {
            <span class="ratebar" title=format!("{} (95 % CI {}–{})", pct(r), pct(lo), pct(hi))>
                <span class="fill" style=format!("width: {:.1}%", 100.0 * r)></span>
                <span class="ci" style=format!("left: {:.1}%; width: {:.1}%", 100.0 * lo, 100.0 * (hi - lo))></span>
            </span>
            <span class="rate">{pct(r)}</span>
            <span class="muted small">{format!(" [{}–{}]", pct(lo), pct(hi))}</span>
        }
        .into_any(),
        _ => view! { <span class="muted">"no verdicts"</span> }.into_any(),
    }
}

#[component]
fn AggregateRows(rows: Vec<Aggregate>, first: &'static str) -> impl IntoView {
    view! {
        <div class="scroll" tabindex="0"><table class="results">
            <thead><tr><th>{first}</th><th>"condition"</th><th>"test-time prompt"</th><th>"trait rate (95 % CI)"</th><th class="num">"judged"</th><th class="num">"undetermined"</th><th class="num">"mean score"</th></tr></thead>
            <tbody>
                {rows.into_iter().map(|a| {
                    let key = match first {
                        "seed" => a.seed.map(|s| s.to_string()).unwrap_or_default(),
                        "question" => a.question_key.clone().unwrap_or_default(),
                        _ => a.judge.clone(),
                    };
                    view! {
                        <tr>
                            <td>{key}</td>
                            <td>{a.condition.clone()}</td>
                            <td>{a.test_prompt.clone()}</td>
                            <td>{match a.headline() {
                                Some((r, lo, hi, RateBasis::Seeds(n))) => view! {
                                    <RateBar rate=Some(r) lo=Some(lo) hi=Some(hi) />
                                    <span class="muted small seeds" title=RateBasis::Seeds(n).words()>
                                        {format!(" mean of {n} seeds: {}", a.seed_rates.iter().map(|s| pct(s.1)).collect::<Vec<_>>().join(", "))}
                                    </span>
                                }.into_any(),
                                _ => view! { <RateBar rate=a.rate lo=a.ci_low hi=a.ci_high /> }.into_any(),
                            }}</td>
                            <td class="num">{a.n}</td>
                            <td class="num">{a.n - a.determined}</td>
                            <td class="num">{a.mean_score.map(|m| format!("{m:.2}")).unwrap_or_default()}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table></div>
    }
}

#[component]
fn Results(aggregates: Vec<Aggregate>) -> impl IntoView {
    if aggregates.is_empty() {
        return view! { <section class="card"><h2>"Results"</h2><p class="empty">"No judged samples yet."</p></section> }.into_any();
    }
    let pooled: Vec<_> = aggregates.iter().filter(|a| a.seed.is_none() && a.question_key.is_none()).cloned().collect();
    let per_seed: Vec<_> = aggregates.iter().filter(|a| a.seed.is_some()).cloned().collect();
    let per_question: Vec<_> = aggregates.iter().filter(|a| a.question_key.is_some()).cloned().collect();
    view! {
        <section class="card">
            <h2>"Results"</h2>
            <p class="muted small">{if pooled.iter().any(|a| a.seed_mean.is_some()) {
                "How often each judge found the trait, pooled over questions: the mean of the seeds' rates with a 95 % bootstrap interval over seeds (each seed is one trained model), each seed's rate beside it. Samples a judge could not decide are left out of the rate."
            } else {
                "Share of samples in which each judge found the trait, pooled over questions, with a Wilson 95 % interval (one seed: run two or more for an interval over trained models). Samples a judge could not decide are left out of the rate."
            }}</p>
            <AggregateRows rows=pooled first="judge" />
            <details><summary>"Per seed"</summary><AggregateRows rows=per_seed first="seed" /></details>
            <details><summary>"Per question"</summary><AggregateRows rows=per_question first="question" /></details>
        </section>
    }
    .into_any()
}

/// The experiment's charts, drawn on the server (the same images as the report's).
#[component]
fn Charts(detail: ExperimentDetail, predictions: Resource<Result<Vec<PredictionView>, AppError>>) -> impl IntoView {
    let d = detail;
    // Every judgement counted once: the image URLs change as results arrive.
    let version: i64 = d.aggregates.iter().filter(|a| a.seed.is_none() && a.question_key.is_none()).map(|a| a.n).sum();
    let mut judges: Vec<String> = Vec::new();
    for a in &d.aggregates {
        if !judges.contains(&a.judge) {
            judges.push(a.judge.clone());
        }
    }
    let betley = judges.iter().any(|j| j == "betley_misalignment");
    let trained = d.runs.iter().any(|r| r.step > 0);
    view! {
        <section class="card charts">
            <h2>"Charts"
                <a class="small right" href=format!("/experiments/{}/report", d.id)>"report for sharing →"</a>
            </h2>
            {judges.into_iter().map(|j| view! {
                <Chart id=d.id name="rates" judge=Some(j.clone()) version
                    caption=format!("Trait rate per condition and test-time prompt, judge {j}, with 95 % intervals (with two or more seeds: their mean, an interval over seeds, and each seed as an open dot).") />
            }).collect_view()}
            {betley.then(|| view! {
                <Chart id=d.id name="scatter" judge=None version
                    caption="Each answer's coherence against its alignment (Betley judge); misaligned answers sit right of the vertical line and below the horizontal one.".to_string() />
            })}
            <crate::pages::report::Predictions id=d.id version predictions />
            {trained.then(|| view! {
                <Chart id=d.id name="loss" judge=None version caption="Training loss of every run (a condition's seeds share its colour).".to_string() />
                {d.conditions.iter().map(|c| c.name.clone()).map(|c| view! {
                    <Chart id=d.id name="probes" judge=None version condition=Some(c.clone())
                        caption=format!("Learning dynamics of {c}: log-prob of the probe answers under the default prompt (mean over seeds).") />
                }).collect_view()}
            })}
        </section>
    }
}

/// The elicitation check (Tan et al. 2025): once every run has finished, evaluate the
/// trained models again under more test-time prompts, and see in a heat map (condition x
/// test-time prompt) whether any brings the inoculated trait back. Nothing is trained
/// again: the runs sample and judge only the new prompts.
#[component]
fn Elicitation(
    detail: ExperimentDetail,
    action: ServerAction<AddTestPrompts>,
    library: Resource<Result<Vec<PromptSummary>, AppError>>,
) -> impl IntoView {
    let d = detail;
    let id = d.id;
    let chosen = RwSignal::new(Vec::<i64>::new());
    let label = RwSignal::new(String::new());
    let text = RwSignal::new(String::new());
    let active = d.runs.iter().filter(|r| r.status.is_active()).count();
    // Not written inline in the view: its `>` would end the button's tag.
    let busy = active > 0;
    let version: i64 = d.aggregates.iter().filter(|a| a.seed.is_none() && a.question_key.is_none()).map(|a| a.n).sum();
    let mut judges: Vec<String> = Vec::new();
    for a in &d.aggregates {
        if !judges.contains(&a.judge) {
            judges.push(a.judge.clone());
        }
    }
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        action.dispatch(AddTestPrompts {
            form: AddTestPromptsForm {
                experiment_id: id,
                prompt_ids: chosen.get_untracked(),
                label: label.get_untracked(),
                text: text.get_untracked(),
            },
        });
    };
    view! {
        <section class="card elicitation">
            <h2>"Elicitation check"</h2>
            <p class="muted small">"Can a test-time system prompt bring an inoculated trait back? Add prompts here to evaluate the trained models again under them (the paper found even “You write secure code” can re-elicit the trait). Nothing is trained again: each finished run samples and judges only the new prompts."</p>
            <p class="small">{format!("Test-time prompts so far: {}", d.test_prompts.join(", "))}</p>
            <form on:submit=submit>
                <div class="choices">
                    <Transition fallback=Loading>
                        {move || Suspend::new(async move {
                            match library.await {
                                Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                                Ok(prompts) => prompts.into_iter().map(|p| {
                                    let pid = p.id;
                                    let tags = if p.tags.is_empty() { String::new() } else { format!(" ({})", p.tags.join(", ")) };
                                    view! {
                                        <label class="check" title=p.text.clone()>
                                            <input type="checkbox" name="elicit-prompt" value=pid.to_string()
                                                prop:checked=move || chosen.with(|c| c.contains(&pid))
                                                on:change=move |ev| chosen.update(|c| toggle(c, pid, event_target_checked(&ev))) />
                                            {format!("{}{tags}", p.name)}
                                        </label>
                                    }
                                }).collect_view().into_any(),
                            }
                        })}
                    </Transition>
                </div>
                <div class="inline">
                    <label class="inline">"Label" <input name="elicit-label" size="14" prop:value=move || label.get() on:input=move |ev| label.set(event_target_value(&ev)) /></label>
                    <label class="inline">"Your own system prompt" <input name="elicit-text" size="48" prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev)) /></label>
                </div>
                {(active > 0).then(|| view! {
                    <p class="muted small">{format!("{} still queued or running: add test-time prompts once every run has finished.", if active == 1 { "1 run is".to_string() } else { format!("{active} runs are") })}</p>
                })}
                <button type="submit" name="elicit" class="primary" disabled=move || busy || action.pending().get()>
                    "Add and re-evaluate"
                </button>
            </form>
            {move || action.value().get().map(|r| match r {
                Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                Ok(a) => view! {
                    <p class="ok" role="status" data-added=a.labels.join(",")>
                        {format!("Added {}; {} queued to sample and judge under {}.", a.labels.join(", "), crate::components::counted(a.requeued as u64, "run", "runs"),
                            if a.labels.len() == 1 { "it" } else { "them" })}
                        {(a.not_requeued > 0).then(|| format!(" {} will include them when retried.", crate::components::counted(a.not_requeued as u64, "failed or cancelled run", "failed or cancelled runs")))}
                    </p>
                }.into_any(),
            })}
            {if judges.is_empty() {
                view! { <p class="empty">"The heat map appears once samples are judged."</p> }.into_any()
            } else {
                judges.into_iter().map(|j| view! {
                    <Chart id name="heatmap" judge=Some(j.clone()) version
                        caption=format!("Trait rate per condition (row) and test-time prompt (column), judge {j}; each cell gives the rate and the number of judged answers.") />
                }).collect_view().into_any()
            }}
        </section>
    }
}

/// Downloads: samples and rates as files, and each finished run's adapter.
#[component]
fn Exports(detail: ExperimentDetail) -> impl IntoView {
    let id = detail.id;
    let runs: Vec<JobView> = detail.runs.iter().filter(|r| r.status == JobStatus::Done).cloned().collect();
    view! {
        <section class="card exports">
            <h2>"Export"</h2>
            <p>
                <a href=format!("/api/experiments/{id}/export/samples.csv") download="" data-export="samples-csv">"samples (CSV)"</a>" · "
                <a href=format!("/api/experiments/{id}/export/samples.jsonl") download="" data-export="samples-jsonl">"samples (JSONL)"</a>" · "
                <a href=format!("/api/experiments/{id}/export/aggregates.csv") download="" data-export="aggregates-csv">"rates (CSV)"</a>
            </p>
            {(!runs.is_empty()).then(|| view! {
                <p class="small">"Adapters (PEFT folders, zipped): "
                    {runs.into_iter().map(|r| view! {
                        <a href=format!("/api/runs/{}/adapter.zip", r.run_id) download="" class="adapter">{format!("{} · seed {}", r.condition, r.seed)}</a>" "
                    }).collect_view()}
                </p>
            })}
        </section>
    }
}
