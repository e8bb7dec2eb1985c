//! Reading and reviewing an experiment's samples: the sample browser (server-paged
//! filters, human labels and pins from the keyboard), the agreement between the human
//! labels and each judge, and the side-by-side page (one question, one column per
//! condition). Completions are untrusted text: rendered as text nodes, never as HTML.

use std::collections::HashMap;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::results::*;
use crate::components::{ErrorBox, Loading};
use crate::error::AppError;
use wire::experiments::ExperimentDetail;
use wire::reviews::ReviewSummary;
use wire::samples::{QuestionSummary, Sample, SampleQuery, SamplesPage};

/// The review marks changed on this page since it loaded: sample id -> (label and note,
/// pinned). Cards read these before the values they were rendered with, so a label shows
/// at once without reloading (and losing the keyboard position).
type Marks = RwSignal<HashMap<i64, (Option<(String, String)>, bool)>>;

/// A completion with its fenced code blocks shown as code; all of it as text.
#[component]
pub fn Completion(text: String) -> impl IntoView {
    let parts: Vec<(bool, String)> = text
        .split("```")
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                // The fence's first line names the language; the code starts after it.
                let code = match part.split_once('\n') {
                    Some((first, rest)) if !first.trim().contains(' ') => rest.to_string(),
                    _ => part.to_string(),
                };
                (true, code)
            } else {
                (false, part.to_string())
            }
        })
        .filter(|(_, p)| !p.is_empty())
        .collect();
    parts
        .into_iter()
        .map(|(code, p)| {
            if code {
                view! { <pre class="code"><code>{p}</code></pre> }.into_any()
            } else {
                view! { <span class="prose">{p}</span> }.into_any()
            }
        })
        .collect_view()
}

/// One sample: the chat, each judge's verdict with its raw output one click away, and
/// (unless `readonly`) the review buttons (for `judge`, in its words) and the pin.
#[component]
pub fn SampleCard(
    sample: Sample,
    #[prop(optional)] readonly: bool,
    #[prop(optional)] focused: Option<Signal<bool>>,
    #[prop(optional)] marks: Option<Marks>,
    #[prop(optional)] experiment_id: i64,
    /// The judge labels are made for.
    #[prop(optional)]
    judge: String,
) -> impl IntoView {
    let s = sample;
    let id = s.id;
    let initial = (s.review.clone(), s.pinned);
    // The review as it is now: a change made on this page wins over what it was rendered with.
    let current = Signal::derive(move || match marks {
        Some(m) => m.with(|m| m.get(&id).cloned()).unwrap_or_else(|| initial.clone()),
        None => initial.clone(),
    });
    // These capture only the (Copy) signal, so they are Copy too.
    let label = move || current.with(|c| c.0.as_ref().map(|r| r.0.clone()).unwrap_or_default());
    let saved_note = move || current.with(|c| c.0.as_ref().map(|r| r.1.clone()).unwrap_or_default());
    let pinned = move || current.with(|c| c.1);
    let is_focused = move || focused.map(|f| f.get()).unwrap_or(false);
    let (present, absent) = wire::reviews::label_words(&judge);
    // The stored word, its words for this judge, and the key that sets it.
    let words: HashMap<&'static str, String> =
        [("misaligned", present.clone()), ("aligned", absent.clone()), ("unsure", "unsure".to_string())].into();
    let shown = move |l: String| words.get(l.as_str()).cloned().unwrap_or(l);
    let judge = StoredValue::new(judge);
    let review_controls = (!readonly).then(|| {
        let marks = marks.unwrap_or_else(|| RwSignal::new(HashMap::new()));
        let note = RwSignal::new(String::new());
        view! {
            <div class="review" role="group" aria-label=format!("label for {}", judge.get_value())>
                {[("misaligned", present.clone(), "y"), ("aligned", absent.clone(), "n"), ("unsure", "unsure".to_string(), "u")].into_iter().map(|(l, text, key)| {
                    view! {
                        <button type="button" class=move || if label() == l { format!("small label-{l} active") } else { format!("small label-{l}") }
                            name=format!("label-{l}") title=format!("{text} ({key})")
                            on:click=move |_| apply_label(marks, id, judge.get_value(), l.to_string(), note.get_untracked())>
                            {text.clone()}
                        </button>
                    }
                }).collect_view()}
                <input type="text" name="review-note" aria-label="review note" class="note" placeholder="note (Enter saves with the label)"
                    prop:value=move || { let n = note.get(); if n.is_empty() { saved_note() } else { n } }
                    on:input=move |ev| note.set(event_target_value(&ev))
                    on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                        if ev.key() == "Enter" {
                            // A note without a label is recorded as "unsure".
                            let l = Some(label()).filter(|l| !l.is_empty()).unwrap_or_else(|| "unsure".into());
                            apply_label(marks, id, judge.get_value(), l, note.get_untracked());
                        }
                    } />
                <button type="button" name="pin" class=move || if pinned() { "small pin active" } else { "small pin" }
                    title="pin to the report (p)"
                    on:click=move |_| toggle_pin(marks, experiment_id, id)>
                    {move || if pinned() { "pinned" } else { "pin" }}
                </button>
            </div>
        }
    });
    view! {
        <article class=move || if is_focused() { "sample focused" } else { "sample" } data-sample=id.to_string()
            data-review=label tabindex="-1">
            <div class="row-head small muted">
                <span>{format!("{} · seed {} · test prompt {} · {} #{}", s.condition, s.seed, s.test_prompt, s.question_key, s.sample_idx + 1)}</span>
                <span>{format!("{} tokens{}", s.n_tokens, if s.finished { "" } else { ", cut at the limit" })}</span>
                {(!readonly).then(|| view! {
                    <span class="review-state">{move || { let l = label(); if l.is_empty() { "not reviewed".to_string() } else { shown(l) } }}</span>
                })}
            </div>
            <div class="chat">
                {s.system_text.clone().map(|t| view! { <div class="turn turn-system"><span class="role">"system"</span>{t}</div> })}
                <div class="turn turn-user"><span class="role">"user"</span>{s.question.clone()}</div>
                <div class="turn turn-assistant completion"><span class="role">"assistant"</span><Completion text=s.completion.clone() /></div>
            </div>
            <div class="verdicts">
                {s.judgements.into_iter().map(|j| {
                    // Answer quality and the task are not traits: never coloured as one.
                    let quality = wire::reviews::is_measure(&j.judge);
                    let class = match (quality, j.trait_present) {
                        (true, Some(_)) => "verdict quality",
                        (false, Some(true)) => "verdict trait",
                        (false, Some(false)) => "verdict absent",
                        (_, None) => "verdict undetermined",
                    };
                    let (present, absent) = wire::reviews::label_words(&j.judge);
                    let label = format!(
                        "{}: {}{}",
                        j.judge,
                        match j.trait_present { Some(true) => present, Some(false) => absent, None => "undetermined".into() },
                        j.score.map(|x| format!(" ({x:.2})")).unwrap_or_default()
                    );
                    view! {
                        <details class=class>
                            <summary>{label}</summary>
                            <pre class="raw">{format!("{} v{}\n{}", j.judge, j.version, j.raw)}</pre>
                        </details>
                    }
                }).collect_view()}
            </div>
            {review_controls}
        </article>
    }
}

/// Saves a label for `judge` (an empty one clears it) and shows it at once.
fn apply_label(marks: Marks, id: i64, judge: String, label: String, note: String) {
    let pinned = marks.with_untracked(|m| m.get(&id).map(|x| x.1));
    leptos::task::spawn_local(async move {
        match set_review(id, judge, label.clone(), note.clone()).await {
            Ok(()) => marks.update(|m| {
                let e = m.entry(id).or_insert((None, pinned.unwrap_or(false)));
                e.0 = (!label.is_empty()).then_some((label, note));
            }),
            Err(e) => leptos::logging::error!("label not saved: {e}"),
        }
    });
}

fn toggle_pin(marks: Marks, experiment_id: i64, id: i64) {
    let now = marks.with_untracked(|m| m.get(&id).map(|x| x.1)).unwrap_or(false);
    leptos::task::spawn_local(async move {
        if set_pinned(experiment_id, id, !now).await.is_ok() {
            marks.update(|m| {
                m.entry(id).or_insert((None, now)).1 = !now;
            });
        }
    });
}

/// Every completion of the experiment, filtered and paged on the server, labelled for one
/// judge from the keyboard: j/k move, y/n/u label (then move on), x clears, p pins, /
/// searches.
/// The sample browser's filters and data, made by the experiment page above the Suspense
/// that shows the browser: a resource made inside it is fetched again each time the server
/// walks the view (leptos-rs/leptos#4866), and only starts once the experiment has loaded.
#[derive(Clone, Copy)]
pub struct SampleData {
    query: RwSignal<SampleQuery>,
    page: Resource<Result<SamplesPage, AppError>>,
    reviewed: RwSignal<u32>,
    summary: Resource<Result<ReviewSummary, AppError>>,
    questions: Resource<Result<Vec<QuestionSummary>, AppError>>,
}

impl SampleData {
    /// For the experiment `id` names (the page's parameter, which changes when a link leads
    /// to another experiment), fetched again whenever `reload` changes (the page reloads
    /// the experiment: a run finished, the user acted).
    pub fn new(
        id: impl Fn() -> i64 + Copy + Send + Sync + 'static,
        reload: impl Fn() -> u32 + Copy + Send + Sync + 'static,
    ) -> SampleData {
        let query = RwSignal::new(SampleQuery { verdict: "any".into(), ..Default::default() });
        let page = Resource::new(
            move || {
                let mut q = query.get();
                q.experiment_id = id();
                (q, reload())
            },
            |(q, _)| list_samples(q),
        );
        let reviewed = RwSignal::new(0u32);
        let summary = Resource::new(
            move || (id(), reviewed.get(), reload(), query.with(|q| q.review_judge.clone())),
            |(id, _, _, judge)| get_review_summary(id, judge),
        );
        let questions = Resource::new(move || (id(), reload()), |(id, _)| list_questions(id));
        SampleData { query, page, reviewed, summary, questions }
    }
}

#[component]
pub fn SampleBrowser(detail: ExperimentDetail, data: SampleData) -> impl IntoView {
    let eid = detail.id;
    let SampleData { query, page, reviewed, summary, questions } = data;
    let marks: Marks = RwSignal::new(HashMap::new());
    let focused = RwSignal::new(0usize);
    // The ids and initial marks of the page on screen, for the keyboard.
    let on_screen = RwSignal::new(Vec::<(i64, Option<(String, String)>, bool)>::new());
    // A new label changes the agreement table: fetch it again (not on the first run).
    Effect::watch(move || marks.track(), move |_, _, _| reviewed.update(|n| *n += 1), false);
    let mut judges: Vec<String> = detail.aggregates.iter().map(|a| a.judge.clone()).collect();
    judges.sort();
    judges.dedup();
    // Labels are for the chosen judge; the server opens on the first by name, as here.
    let first_judge = judges.first().cloned().unwrap_or_default();
    let review_judges = judges.clone();
    let review_judge = Signal::derive(move || {
        let j = query.with(|q| q.review_judge.clone());
        if j.is_empty() {
            first_judge.clone()
        } else {
            j
        }
    });
    // Another judge's labels are other labels: forget the ones made on this page.
    Effect::watch(move || review_judge.get(), move |_, _, _| marks.set(HashMap::new()), false);
    let mut seeds: Vec<i64> = detail.runs.iter().map(|r| r.seed).collect();
    seeds.sort();
    seeds.dedup();
    let set = move |f: fn(&mut SampleQuery, String)| {
        move |ev: leptos::ev::Event| {
            query.update(|q| {
                f(q, event_target_value(&ev));
                q.offset = 0;
            })
        }
    };
    let options = |values: Vec<String>| {
        values.into_iter().map(|v| view! { <option value=v.clone()>{v.clone()}</option> }).collect_view()
    };

    #[cfg(feature = "hydrate")]
    {
        let handle = window_event_listener(leptos::ev::keydown, move |ev: web_sys::KeyboardEvent| {
            use wasm_bindgen::JsCast;
            if ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
                return;
            }
            let typing = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                .map(|e| matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"))
                .unwrap_or(false);
            if typing {
                if ev.key() == "Escape" {
                    if let Some(el) =
                        document().active_element().and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
                    {
                        let _ = el.blur();
                    }
                }
                return;
            }
            let ids = on_screen.get_untracked();
            let n = ids.len();
            let i = focused.get_untracked().min(n.saturating_sub(1));
            let current = ids.get(i).map(|x| x.0);
            let go = |to: usize| {
                focused.set(to);
                if let Some((id, _, _)) = ids.get(to) {
                    if let Some(el) =
                        document().query_selector(&format!("article[data-sample=\"{id}\"]")).ok().flatten()
                    {
                        el.scroll_into_view_with_bool(false);
                    }
                }
            };
            let next_page = |forward: bool| {
                query.update(|q| {
                    q.offset = if forward { q.offset + SAMPLES_PAGE } else { (q.offset - SAMPLES_PAGE).max(0) }
                });
                focused.set(0);
            };
            match ev.key().as_str() {
                "j" | "ArrowDown" if n > 0 => {
                    if i + 1 < n {
                        go(i + 1)
                    } else if n as i64 == SAMPLES_PAGE {
                        next_page(true)
                    }
                }
                "k" | "ArrowUp" if n > 0 => {
                    if i > 0 {
                        go(i - 1)
                    } else if query.with_untracked(|q| q.offset > 0) {
                        next_page(false)
                    }
                }
                "y" | "m" | "n" | "a" | "u" | "x" => {
                    if let Some(id) = current {
                        // y / n: the judge's trait present / absent (m / a, for misaligned and
                        // aligned, as before labels had judges).
                        let label = match ev.key().as_str() {
                            "y" | "m" => "misaligned",
                            "n" | "a" => "aligned",
                            "u" => "unsure",
                            _ => "",
                        };
                        let note = marks
                            .with_untracked(|m| m.get(&id).and_then(|x| x.0.clone()))
                            .or_else(|| ids[i].1.clone())
                            .map(|r| r.1)
                            .unwrap_or_default();
                        apply_label(marks, id, review_judge.get_untracked(), label.to_string(), note);
                        if !label.is_empty() && i + 1 < n {
                            go(i + 1);
                        }
                    }
                }
                "p" => {
                    if let Some(id) = current {
                        marks.update(|m| {
                            m.entry(id).or_insert((ids[i].1.clone(), ids[i].2));
                        });
                        toggle_pin(marks, eid, id);
                    }
                }
                "/" => {
                    ev.prevent_default();
                    if let Some(el) = document()
                        .query_selector("input[name=sample-search]")
                        .ok()
                        .flatten()
                        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
                    {
                        let _ = el.focus();
                    }
                }
                _ => return,
            }
        });
        let handle = send_wrapper::SendWrapper::new(handle);
        on_cleanup(move || handle.take().remove());
    }

    view! {
        <section class="card samples" id="samples">
            <h2>"Samples"
                <a class="small right" href=format!("/experiments/{eid}/compare")>"side by side →"</a>
            </h2>
            <div class="filters">
                <select name="sample-condition" aria-label="condition" on:change=set(|q, v| q.condition = v)>
                    <option value="">"all conditions"</option>
                    {options(detail.conditions.iter().map(|c| c.name.clone()).collect())}
                </select>
                <select name="sample-test-prompt" aria-label="test-time prompt" on:change=set(|q, v| q.test_prompt = v)>
                    <option value="">"all test-time prompts"</option>
                    {options(detail.test_prompts.clone())}
                </select>
                <select name="sample-seed" aria-label="seed" on:change=set(|q, v| q.seed = v.parse().ok())>
                    <option value="">"all seeds"</option>
                    {options(seeds.iter().map(|s| s.to_string()).collect())}
                </select>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        let qs = questions.await.unwrap_or_default();
                        view! {
                            <select name="sample-question" aria-label="question" on:change=set(|q, v| q.question_key = v)>
                                <option value="">"all questions"</option>
                                {qs.into_iter().map(|q| {
                                    let text: String = q.text.chars().take(60).collect();
                                    view! { <option value=q.key.clone()>{format!("{}: {}", q.key, text)}</option> }
                                }).collect_view()}
                            </select>
                        }
                    })}
                </Transition>
                <select name="sample-judge" aria-label="judge" on:change=set(|q, v| {
                    q.judge = v;
                    if q.judge.is_empty() { q.sort = String::new(); q.min_score = None; q.max_score = None; }
                })>
                    <option value="">"any judge"</option>
                    {options(judges)}
                </select>
                <select name="sample-verdict" aria-label="verdict" on:change=set(|q, v| q.verdict = v)>
                    <option value="any">"any verdict"</option>
                    <option value="trait">"trait present (misaligned)"</option>
                    <option value="no_trait">"trait absent"</option>
                    <option value="undetermined">"undetermined"</option>
                </select>
                <input type="number" name="sample-min-score" aria-label="lowest score shown" step="any" placeholder="score ≥" class="narrow"
                    on:change=set(|q, v| q.min_score = v.parse().ok()) />
                <input type="number" name="sample-max-score" aria-label="shown below this score" step="any" placeholder="score <" class="narrow"
                    on:change=set(|q, v| q.max_score = v.parse().ok()) />
                <select name="sample-sort" aria-label="order" on:change=set(|q, v| q.sort = v)>
                    <option value="id">"in run order"</option>
                    <option value="score_desc">"highest score first"</option>
                    <option value="score_asc">"lowest score first"</option>
                </select>
                <select name="review-judge" aria-label="label answers for the judge" on:change=set(|q, v| q.review_judge = v)>
                    {review_judges.iter().map(|j| {
                        let (yes, _) = wire::reviews::label_words(j);
                        let j2 = j.clone();
                        view! { <option value=j.clone() selected=move || review_judge.get() == j2>{format!("label for {j} ({yes}?)")}</option> }
                    }).collect_view()}
                </select>
                <select name="sample-review" aria-label="review state" on:change=set(|q, v| q.review = v)>
                    <option value="any">"reviewed or not"</option>
                    <option value="unreviewed">"not reviewed yet"</option>
                    <option value="misaligned">{move || format!("labelled {}", wire::reviews::label_words(&review_judge.get()).0)}</option>
                    <option value="aligned">{move || format!("labelled {}", wire::reviews::label_words(&review_judge.get()).1)}</option>
                    <option value="unsure">"labelled unsure"</option>
                </select>
                <input type="search" name="sample-search" aria-label="search samples" placeholder="search completions and questions (/)"
                    on:change=set(|q, v| q.search = v) />
            </div>
            <p class="muted small keys">{move || {
                let (yes, no) = wire::reviews::label_words(&review_judge.get());
                format!("Keys: j/k or ↓/↑ move · y {yes} · n {no} · u unsure · x clear · p pin to the report · / search · Esc leaves a field. Labels are for the judge {} and count toward its agreement only.", review_judge.get())
            }}</p>
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    match page.await {
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                        Ok(p) if p.samples.is_empty() => {
                            on_screen.set(vec![]);
                            view! { <p class="empty">"No samples match."</p> }.into_any()
                        }
                        Ok(p) => {
                            let (offset, limit, total, at_least) = (p.offset, p.limit, p.total, p.at_least);
                            let last = (offset + limit).min(total);
                            let more = last < total || at_least;
                            on_screen.set(p.samples.iter().map(|s| (s.id, s.review.clone(), s.pinned)).collect());
                            view! {
                                <nav class="pager">
                                    <button type="button" name="samples-prev" disabled=offset == 0
                                        on:click=move |_| query.update(|q| q.offset = (offset - limit).max(0))>"← previous"</button>
                                    <span>{format!("{}–{} of {}{}", offset + 1, offset + p.samples.len() as i64, total, if at_least { "+" } else { "" })}</span>
                                    <button type="button" name="samples-next" disabled=!more
                                        on:click=move |_| query.update(|q| q.offset = offset + limit)>"next →"</button>
                                </nav>
                                {p.samples.into_iter().enumerate().map(|(i, s)| {
                                    let f = Signal::derive(move || focused.get() == i);
                                    view! { <SampleCard sample=s focused=f marks=marks experiment_id=eid judge=review_judge.get_untracked() /> }
                                }).collect_view()}
                            }.into_any()
                        }
                    }
                })}
            </Transition>
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    match summary.await {
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                        Ok(s) => view! { <Agreement summary=s /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// How many samples a human labelled, and how those labels agree with each judge.
#[component]
fn Agreement(summary: ReviewSummary) -> impl IntoView {
    let (s, agreement) = (summary.progress, summary.agreement);
    let labelled = s.misaligned + s.aligned + s.unsure;
    let (yes, no) = wire::reviews::label_words(&summary.judge);
    view! {
        <div class="agreement">
            <h3>"Human review"</h3>
            <p class="muted small" data-testid="review-progress">
                {format!("{labelled} of {} answers labelled for {}: {} {yes}, {} {no}, {} unsure.", s.samples, summary.judge, s.misaligned, s.aligned, s.unsure)}
            </p>
            {if agreement.iter().all(|a| a.n == 0) {
                view! { <p class="empty">"Label answers to see how each judge agrees with you (from the labels made for it)."</p> }.into_any()
            } else {
                view! {
                    <div class="scroll" tabindex="0"><table class="results agreement-table">
                        <thead><tr>
                            <th>"judge"</th><th class="num">"both: trait"</th><th class="num">"you: trait, judge: not"</th>
                            <th class="num">"you: not, judge: trait"</th><th class="num">"both: not"</th>
                            <th class="num">"compared"</th><th class="num">"agreement"</th><th class="num">"Cohen's κ"</th>
                        </tr></thead>
                        <tbody>
                            {agreement.into_iter().map(|a| view! {
                                <tr data-judge=a.judge.clone()>
                                    <td>{a.judge.clone()}</td>
                                    <td class="num">{a.table[0][0]}</td><td class="num">{a.table[0][1]}</td>
                                    <td class="num">{a.table[1][0]}</td><td class="num">{a.table[1][1]}</td>
                                    <td class="num" title=format!("{} left out as unsure, {} the judge could not decide", a.human_unsure, a.judge_undetermined)>{a.n}</td>
                                    <td class="num">{a.observed_agreement.map(|x| format!("{:.0} %", 100.0 * x)).unwrap_or_else(|| "–".into())}</td>
                                    <td class="num kappa">{a.kappa.map(|k| format!("{k:.2}")).unwrap_or_else(|| "undefined".into())}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table></div>
                }.into_any()
            }}
        </div>
    }
}

/// The side-by-side table of one question: a tick box per column (seven columns do not fit
/// any screen), the count of columns shown, and the table itself, which scrolls sideways
/// inside its card with a shadow on the side that has more.
#[component]
fn CompareTable(
    table: wire::samples::SideBySide,
    hidden: RwSignal<std::collections::HashSet<(String, String)>>,
) -> impl IntoView {
    let total = table.columns.len();
    let key = |c: &wire::samples::SideBySideColumn| (c.condition.clone(), c.test_prompt.clone());
    let keys: Vec<(String, String)> = table.columns.iter().map(key).collect();
    let shown_keys = keys.clone();
    let shown = move || hidden.with(|h| shown_keys.iter().filter(|k| !h.contains(*k)).count());
    let table = StoredValue::new(table);
    view! {
        <section class="card">
            <p class="question"><strong>"Question: "</strong>{table.with_value(|t| t.question.clone())}</p>
            <fieldset class="columns">
                <legend>"Columns"</legend>
                {keys.iter().cloned().map(|k| {
                    let (on, flip) = (k.clone(), k.clone());
                    view! {
                        <label class="check">
                            <input type="checkbox" name="compare-column" value=format!("{} · {}", k.0, k.1)
                                prop:checked=move || hidden.with(|h| !h.contains(&on))
                                on:change=move |_| hidden.update(|h| if !h.remove(&flip) { h.insert(flip.clone()); }) />
                            {format!("{} · test prompt {}", k.0, k.1)}
                        </label>
                    }
                }).collect_view()}
            </fieldset>
            <p class="muted small" data-testid="columns-shown">
                {move || format!("{} of {total} columns shown.", shown())}
                " Wider than the screen, the table scrolls sideways; a shadow marks the side with more."
            </p>
            {move || {
                let visible: Vec<usize> = hidden.with(|h| (0..total).filter(|&i| !h.contains(&keys[i])).collect());
                let cols = visible.len().max(1);
                table.with_value(|t| view! {
                    <div class="compare scroll" tabindex="0" style=format!("--cols: {cols}")>
                        <table class="side-by-side">
                            <thead><tr><th>"seed · sample"</th>
                                {visible.iter().map(|&i| {
                                    let c = &t.columns[i];
                                    view! { <th>{c.condition.clone()}<br /><span class="muted small">{format!("test prompt: {}", c.test_prompt)}</span></th> }
                                }).collect_view()}
                            </tr></thead>
                            <tbody>
                                {t.rows.iter().map(|r| view! {
                                    <tr>
                                        <th class="small">{format!("seed {} · #{}", r.seed, r.sample_idx + 1)}</th>
                                        {visible.iter().map(|&i| match r.cells.get(i).cloned().flatten() {
                                            None => view! { <td class="missing muted small">"—"</td> }.into_any(),
                                            Some(s) => view! { <td><SampleCard sample=s readonly=true /></td> }.into_any(),
                                        }).collect_view()}
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                })
            }}
        </section>
    }
}

/// One question, one column per condition x test-time prompt, samples aligned by seed.
#[component]
pub fn ComparePage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = move || params.with(|p| p.get("id").and_then(|s| s.parse::<i64>().ok()).unwrap_or(0));
    let questions = Resource::new(id, list_questions);
    // Empty until the user picks one: the server then shows the first question.
    let chosen = RwSignal::new(query.with_untracked(|q| q.get("q")).unwrap_or_default());
    let table = Resource::new(move || (id(), chosen.get()), |(id, key)| get_side_by_side(id, key));
    // Columns the viewer unticked, by condition and test-time prompt: kept when another
    // question is picked.
    let hidden = RwSignal::new(std::collections::HashSet::<(String, String)>::new());
    view! {
        <Title text="Side by side" />
        <h1>"Side by side"</h1>
        <p class="muted"><a href=move || format!("/experiments/{}", id())>"← back to the experiment"</a>
            " · one question, one column per condition and test-time prompt, samples aligned by seed."</p>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match questions.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok(qs) if qs.is_empty() => view! { <p class="empty">"No samples yet."</p> }.into_any(),
                    Ok(qs) => {
                        view! {
                            <label class="question-picker">"Question "
                                <select name="compare-question" on:change=move |ev| chosen.set(event_target_value(&ev))>
                                    // Nothing chosen yet: no option is marked, so the browser
                                    // shows the first, which is the question on screen.
                                    {qs.into_iter().map(|q| {
                                        let text: String = q.text.chars().take(90).collect();
                                        let key = q.key.clone();
                                        view! {
                                            <option value=q.key.clone() selected=move || chosen.get() == key>
                                                {format!("{} — {} ({} samples)", q.key, text, q.samples)}
                                            </option>
                                        }
                                    }).collect_view()}
                                </select>
                            </label>
                        }.into_any()
                    }
                }
            })}
        </Transition>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match table.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok(t) if t.columns.is_empty() => view! { <p class="empty">"No samples yet."</p> }.into_any(),
                    Ok(t) => view! { <CompareTable table=t hidden /> }.into_any(),
                }
            })}
        </Transition>
    }
}
