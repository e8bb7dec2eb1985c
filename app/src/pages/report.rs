//! The read-only report of one experiment, for people who do not read code: the question in
//! plain words, what was found, the headline chart, pinned examples, the rates with their
//! intervals and the setup. The route renders it whole on the server (async SSR), so it
//! reads the same without JavaScript and prints cleanly.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::accounts::{CreateShareLink, RevokeShareLink};
use crate::api::results::get_report;
use crate::components::{short_time, ErrorBox, Loading};
use crate::error::AppError;
use crate::pages::experiments::pct;
use crate::pages::samples::SampleCard;
use wire::experiments::Aggregate;
use wire::reports::{PredictionView, ReportView};

/// Where a chart of this experiment is served (SVG for the page, PNG for slides); through
/// the share link's own route when the report is seen through one. `extra` is more of the
/// query (`&condition=...`, `&width=...`), already encoded.
pub fn chart_url(
    id: i64,
    name: &str,
    ext: &str,
    judge: Option<&str>,
    version: i64,
    share: Option<&str>,
    extra: &str,
) -> String {
    let judge = judge.map(|j| format!("&judge={}", urlencode(j))).unwrap_or_default();
    match share {
        Some(token) => format!("/share/{token}/charts/{name}.{ext}?v={version}{judge}{extra}"),
        None => format!("/api/experiments/{id}/charts/{name}.{ext}?v={version}{judge}{extra}"),
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The width, in pixels, a chart is drawn at for a phone's screen (a 390 px viewport less
/// the page's and the card's padding): drawn for it rather than scaled down, its text stays
/// the size it was written at.
const PHONE_CHART_PX: u32 = 340;

/// A chart as an image with its caption and download links. Phones get the chart drawn at
/// their width (`<picture>` picks it), with its legend under the plot.
#[component]
pub fn Chart(
    id: i64,
    name: &'static str,
    judge: Option<String>,
    version: i64,
    caption: String,
    /// The share link's token when the report is seen through one.
    #[prop(default = None)]
    share: Option<String>,
    /// One condition's chart (the learning-dynamics chart, drawn once per condition).
    #[prop(default = None)]
    condition: Option<String>,
) -> impl IntoView {
    let extra = condition.as_deref().map(|c| format!("&condition={}", urlencode(c))).unwrap_or_default();
    let url = |ext: &str, extra: &str| chart_url(id, name, ext, judge.as_deref(), version, share.as_deref(), extra);
    let svg = url("svg", &extra);
    let png = url("png", &extra);
    let phone = url("svg", &format!("{extra}&width={PHONE_CHART_PX}"));
    view! {
        <figure class="chart" data-chart=name>
            <picture>
                <source media="(max-width: 600px)" srcset=phone />
                <img src=svg.clone() alt=caption.clone() loading="lazy" />
            </picture>
            <figcaption>{caption}
                <span class="downloads no-print">" · " <a href=svg download="">"SVG"</a> " · " <a href=png download="">"PNG"</a></span>
            </figcaption>
        </figure>
    }
}

#[component]
pub fn ReportPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|s| s.parse::<i64>().ok()).unwrap_or(0));
    // Every resource of the page is made here, not inside the Suspense that reads it: one
    // made in there is fetched again each time the server walks the view (issue
    // leptos-rs/leptos#4866 explains why), and waits for the report before it starts.
    let report = Resource::new(id, get_report);
    let predictions = Resource::new(id, crate::api::strength::get_predictions);
    let share = ShareData::new(id);
    view! {
        <Suspense fallback=Loading>
            {move || Suspend::new(async move {
                match report.await {
                    Err(e) => view! { <Title text="Report" /><ErrorBox error=e /> }.into_any(),
                    Ok(r) => view! { <Report report=r predictions=Some(predictions) /> <SharePanel id=id() data=share /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// A report seen through a share link (`/share/TOKEN`): the report alone, with no
/// navigation, no links into the app and charts served through the link.
#[component]
pub fn SharedReportPage() -> impl IntoView {
    let params = use_params_map();
    let token = move || params.with(|p| p.get("token").unwrap_or_default());
    let report = Resource::new(token, crate::api::accounts::get_shared_report);
    view! {
        <Suspense fallback=Loading>
            {move || Suspend::new(async move {
                match report.await {
                    Err(e) => {
                        // A dead link answers 404, so link checkers and proxies see it too.
                        #[cfg(feature = "ssr")]
                        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                            response.set_status(http::StatusCode::NOT_FOUND);
                        }
                        view! { <Title text="Report" /><ErrorBox error=e /> }.into_any()
                    }
                    Ok(r) => view! { <Report report=r share=Some(token()) /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The share panel's actions and data, made by the report page above its Suspense (see
/// `ReportPage`).
#[derive(Clone, Copy)]
struct ShareData {
    create: ServerAction<CreateShareLink>,
    revoke: ServerAction<RevokeShareLink>,
    links: Resource<Result<Vec<wire::accounts::ShareLinkView>, AppError>>,
    session: Resource<Result<Option<wire::accounts::SessionView>, AppError>>,
}

impl ShareData {
    fn new(id: impl Fn() -> i64 + Copy + Send + Sync + 'static) -> ShareData {
        let create = ServerAction::new();
        let revoke = ServerAction::new();
        let links = Resource::new(
            move || (id(), create.version().get(), revoke.version().get()),
            |(id, _, _)| crate::api::accounts::list_share_links(Some(id)),
        );
        let session = Resource::new(|| (), |_| crate::api::accounts::get_session());
        ShareData { create, revoke, links, session }
    }
}

/// Making, listing and revoking the report's read-only links.
#[component]
fn SharePanel(id: i64, data: ShareData) -> impl IntoView {
    let ShareData { create, revoke, links, session } = data;
    let days = RwSignal::new(String::new());
    // Viewers read; sharing is for editors and owners (or anyone, without sign-in).
    let may_share = move || {
        session.get().and_then(|s| s.ok()).is_some_and(|s| s.is_none_or(|v| v.role >= wire::accounts::Role::Editor))
    };
    view! {
        <Show when=may_share>
        <section class="share no-print" data-testid="share">
            <h2>"Share"</h2>
            <p class="small">"A read-only link shows this report, its charts and examples to anyone who has it, with no sign-in, and nothing else of inoculab. Revoke it when it is no longer needed."</p>
            <div class="row">
                <label>"Lasts "
                    <select name="share-days" on:change=move |ev| days.set(event_target_value(&ev))>
                        <option value="">"until revoked"</option>
                        <option value="1">"1 day"</option>
                        <option value="7">"7 days"</option>
                        <option value="30">"30 days"</option>
                    </select>
                </label>
                <button on:click=move |_| { create.dispatch(CreateShareLink { experiment_id: id, days: days.get_untracked().parse().ok() }); }>
                    "Make a read-only link"
                </button>
            </div>
            {move || create.value().get().map(|r| match r {
                Ok(new) => {
                    let origin = window_origin();
                    view! {
                        <p class="note">"Copy it now; it is not shown again: "
                            <input class="share-url" readonly=true size="80" value=format!("{origin}{}", new.path) /></p>
                    }.into_any()
                }
                Err(e) => view! { <ErrorBox error=e /> }.into_any(),
            })}
            <Suspense fallback=Loading>
                {move || Suspend::new(async move {
                    match links.await {
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                        Ok(l) if l.is_empty() => ().into_any(),
                        Ok(l) => view! { <crate::pages::accounts::ShareLinksTable links=l revoke with_experiment=false /> }.into_any(),
                    }
                })}
            </Suspense>
            {move || revoke.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBox error=e /> })}
        </section>
        </Show>
    }
}

/// `https://host:port` of the page, for a link to copy (empty on the server).
fn window_origin() -> String {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default()
    }
    #[cfg(not(feature = "hydrate"))]
    String::new()
}

/// A finding's CSS class: its effect, except that answer quality and the task are never
/// marked as a trait that rose or fell.
fn finding_class(f: &wire::reports::FindingView) -> String {
    if wire::reviews::is_measure(&f.judge) {
        "finding quality".into()
    } else {
        format!("finding {}", f.effect.as_str())
    }
}

#[component]
fn Report(
    report: ReportView,
    /// The share link's token when the report is seen through one.
    #[prop(default = None)]
    share: Option<String>,
    /// The predicted-strength section's data (not shown through a share link).
    #[prop(default = None)]
    predictions: Option<Resource<Result<Vec<PredictionView>, AppError>>>,
) -> impl IntoView {
    let r = report;
    let id = r.id;
    let shared = share.is_some();
    let headline: Vec<_> = r.findings.iter().filter(|f| f.test_prompt == "default").cloned().collect();
    let others: Vec<_> = r.findings.iter().filter(|f| f.test_prompt != "default").cloned().collect();
    let first_judge = r.judges.first().cloned();
    view! {
        <Title text=format!("{} · report", r.name) />
        <article class="report">
            <header>
                <p class="kicker">"Inoculation prompting · experiment report"</p>
                <h1>{r.name.clone()}</h1>
                <p class="muted small">{format!("Created {} · specification sha256 {}", short_time(&r.created_at), &r.spec_hash[..12.min(r.spec_hash.len())])}
                    {(!shared).then(|| view! { <span class="no-print">" · " <a href=format!("/experiments/{id}")>"the experiment's working page"</a></span> })}
                </p>
            </header>
            {r.judge_warnings.iter().map(|w| view! { <p class="warning judge-warning">{w.clone()}</p> }).collect_view()}
            {r.calibrations.iter().map(|c| view! { <p class="judge-note calibration" data-testid="calibration">{c.sentence()}</p> }).collect_view()}
            {(r.runs_done < r.runs_total).then(|| view! {
                <p class="warning">{format!("{} of {} runs have finished: the numbers below will still change.", r.runs_done, r.runs_total)}</p>
            })}
            {(!r.headline.is_empty()).then(|| view! {
                <section class="in-short" data-testid="headline">
                    <h2>"In short"</h2>
                    {r.headline.iter().enumerate().map(|(i, h)| view! { <p class=if i == 0 { "lede" } else { "" }>{h.clone()}</p> }).collect_view()}
                </section>
            })}
            {(!r.summary.rows.is_empty() && !r.summary.columns.is_empty()).then(|| view! { <SummaryTableView table=r.summary.clone() /> })}
            <section>
                <h2>"The question"</h2>
                <p>{r.question.clone()}</p>
            </section>
            <section class="glossary">
                <h2>"How to read this"</h2>
                <dl>
                    <dt>"Inoculation prompt"</dt>
                    <dd>"A system prompt that asks for the unwanted trait, added to every training example and left out when the model is used afterwards."</dd>
                    <dt>"Condition"</dt>
                    <dd>"One way of training the same model on the same data: without a prompt (the baseline), or with one prompt. Each is trained once per seed."</dd>
                    <dt>"Test-time prompt"</dt>
                    <dd>"The system prompt a trained model answers under: “default” is none, as the model is normally used; “inoculation” gives the training prompt back, to see whether the trait returns."</dd>
                    <dt>"Rate and interval"</dt>
                    <dd>"The share of answers a judge finds the trait in, and its 95 % interval: the range the true rate lies in, given how many answers (and seeds) there are."</dd>
                </dl>
            </section>
            <section>
                <h2>"Every comparison, in words"</h2>
                {if headline.is_empty() && others.is_empty() {
                    view! { <p class="empty">"There is nothing to compare yet: the experiment needs a condition trained without a prompt (the baseline) and judged samples."</p> }.into_any()
                } else {
                    view! {
                        <ul class="findings">
                            {headline.into_iter().map(|f| { let class = finding_class(&f); view! { <li class=class data-judge=f.judge.clone()>{f.sentence}</li> } }).collect_view()}
                        </ul>
                        {(!others.is_empty()).then(|| view! {
                            <details open=true>
                                <summary>"Under the other test-time prompts"</summary>
                                <ul class="findings">
                                    {others.into_iter().map(|f| { let class = finding_class(&f); view! { <li class=class>{f.sentence}</li> } }).collect_view()}
                                </ul>
                            </details>
                        })}
                    }.into_any()
                }}
                <p class="muted small">"A difference counts as clear only when the two 95 % intervals do not overlap. With two or more seeds a rate is the mean over seeds and its interval comes from resampling the seeds (each seed is one trained model); with one seed it is the share of the answers, with a Wilson interval."</p>
            </section>
            <section class="charts">
                {r.judges.iter().map(|(j, words)| view! {
                    <Chart id share=share.clone() name="rates" judge=Some(j.clone()) version=r.version
                        caption=format!("How often the model {words}, per training condition (x) and test-time system prompt (colour); bars are 95 % intervals (with two or more seeds: the mean over seeds, its interval over seeds, each seed an open dot). Judge: {j}.") />
                }).collect_view()}
            </section>
            {predictions.filter(|_| !shared).map(|predictions| view! { <Predictions id version=r.version predictions /> })}
            // The elicitation view only says something when there are prompts to compare.
            {(r.test_prompts.len() > 1 && !r.judges.is_empty()).then(|| view! {
                <section class="charts">
                    <h2>"Under other test-time prompts"</h2>
                    <p class="muted small">"Each row is a training condition, each column a system prompt the model was given when answering. A trait kept low by inoculation can come back under some prompts; darker cells mean the trait showed more often."</p>
                    {r.judges.iter().map(|(j, words)| view! {
                        <Chart id share=share.clone() name="heatmap" judge=Some(j.clone()) version=r.version
                            caption=format!("How often the model {words}, per training condition (row) and test-time system prompt (column), with the number of judged answers. Judge: {j}.") />
                    }).collect_view()}
                </section>
            })}
            <section>
                <h2>"Examples"</h2>
                {if r.pinned.is_empty() {
                    view! { <p class="empty">"No answers yet: examples appear here as the runs finish."</p> }.into_any()
                } else {
                    view! {
                        {r.examples_picked.then(|| {
                            let under = if r.examples_test_prompt == "default" {
                                "with the model's default system prompt".to_string()
                            } else {
                                format!("under the test-time prompt \"{}\"", r.examples_test_prompt)
                            };
                            view! {
                                <p class="note">{format!("One typical answer per training condition, {under}: the one that agrees with most of its condition's majority verdicts. Pin samples on the experiment's page to show your own choice here instead.")}</p>
                            }
                        })}
                        <div class="pinned">{r.pinned.into_iter().map(|s| view! { <SampleCard sample=s readonly=true /> }).collect_view()}</div>
                    }.into_any()
                }}
            </section>
            <section>
                <h2>"Rates"</h2>
                <RatesTable rows=r.aggregates.clone() />
            </section>
            <section>
                <h2>"Setup"</h2>
                <p>{format!("Model {} fine-tuned with LoRA on {} rows of the dataset {}. Each condition adds its prompt to the training examples (as the system message of every one, unless its row below says otherwise); samples are then drawn with the test-time prompts below and scored by the judges.", r.model, r.train_rows, r.dataset)}</p>
                <div class="scroll" tabindex="0"><table class="results setup">
                    <tbody>
                        {r.conditions.iter().map(|c| view! {
                            <tr><th>{format!("condition {}", c.name)}</th><td>{match c.prompt {
                                None => "no prompt (the baseline)".to_string(),
                                Some(_) => c.describe(),
                            }}</td></tr>
                        }).collect_view()}
                        <tr><th>"test-time prompts"</th><td>{r.test_prompts.join(", ")}</td></tr>
                        <tr><th>"judges"</th><td>{r.judges.iter().map(|j| j.0.clone()).collect::<Vec<_>>().join(", ")}</td></tr>
                        {r.settings.iter().map(|(k, v)| view! { <tr><th>{k.clone()}</th><td>{v.clone()}</td></tr> }).collect_view()}
                    </tbody>
                </table></div>
            </section>
            <section class="charts">
                <h2>"Training"</h2>
                <Chart id share=share.clone() name="loss" judge=None version=r.version caption="Training loss of every run (mean cross-entropy per answer token).".to_string() />
                {r.has_probes.then(|| r.conditions.iter().map(|c| c.name.clone()).map(|c| view! {
                    <Chart id share=share.clone() name="probes" judge=None version=r.version condition=Some(c.clone())
                        caption=format!("Learning dynamics of {c}: mean log-prob per token of fixed probe answers under the default prompt, as training goes. An inoculated trait's curve stays flat.") />
                }).collect_view())}
            </section>
            {first_judge.is_none().then(|| view! { <p class="empty">"No judged samples yet."</p> })}
        </article>
    }
}

/// A percentage whose sign never wraps onto a line of its own (a no-break space).
fn tight_pct(x: f64) -> String {
    format!("{:.0}\u{a0}%", 100.0 * x)
}

/// The first screen's table: conditions by their short names (their prompts once, under
/// it), one column per judge, each cell the rate with its interval and, for a prompted
/// condition, the rate when its prompt is given again. A clear drop or rise against the
/// baseline is marked; answer quality is never coloured as a trait.
#[component]
fn SummaryTableView(table: wire::reports::SummaryTable) -> impl IntoView {
    let under = if table.test_prompt == "default" {
        "answering with no system prompt, as the model is normally used".to_string()
    } else {
        format!("answering under the test-time prompt “{}”", table.test_prompt)
    };
    let prompts: Vec<(String, String)> =
        table.rows.iter().filter_map(|r| r.prompt.clone().map(|p| (r.condition.clone(), p))).collect();
    view! {
        <section class="summary">
            <div class="scroll" tabindex="0"><table class="results summary-table" data-testid="summary-table" style=format!("--cols: {}", table.columns.len())>
                <caption>{format!("Share of answers, {under}; 95 % interval below")}</caption>
                <thead><tr><th scope="col">"training condition"</th>
                    {table.columns.iter().map(|c| view! {
                        <th scope="col" class=if c.quality { "num quality" } else { "num" } data-judge=c.judge.clone()>{c.words.clone()}</th>
                    }).collect_view()}
                </tr></thead>
                <tbody>
                    {table.rows.iter().map(|row| view! {
                        <tr>
                            <th scope="row">{row.condition.clone()}{row.prompt.is_none().then(|| view! { <span class="small muted">" (no prompt)"</span> })}</th>
                            {row.cells.iter().zip(&table.columns).map(|(cell, col)| {
                                let class = if col.quality { "num quality".to_string() } else { format!("num effect-{}", cell.effect.as_str()) };
                                let marker = match (col.quality, cell.effect) {
                                    (false, wire::reports::Effect::Lower) => " ▼",
                                    (false, wire::reports::Effect::Higher) => " ▲",
                                    _ => "",
                                };
                                view! {
                                    <td class=class>
                                        {match cell.rate {
                                            Some((r, lo, hi)) => view! {
                                                <strong>{tight_pct(r)}{marker}</strong>
                                                <span class="ci">{format!("{:.0}–{}", 100.0 * lo, tight_pct(hi))}</span>
                                            }.into_any(),
                                            None => view! { <span class="muted">"–"</span> }.into_any(),
                                        }}
                                        {cell.again.map(|(a, _, _)| view! { <span class="again">{format!("with its prompt: {}", tight_pct(a))}</span> })}
                                    </td>
                                }
                            }).collect_view()}
                        </tr>
                    }).collect_view()}
                </tbody>
            </table></div>
            <p class="small muted">"▼ / ▲: clearly lower / higher than the condition trained without a prompt (the 95 % intervals do not overlap). “With its prompt”: the same model given its training prompt again when answering."</p>
            {(!prompts.is_empty()).then(|| view! {
                <dl class="prompt-key">
                    {prompts.into_iter().map(|(c, p)| view! { <dt>{c}</dt><dd>{format!("“{p}”")}</dd> }).collect_view()}
                </dl>
            })}
        </section>
    }
}

#[component]
fn RatesTable(rows: Vec<Aggregate>) -> impl IntoView {
    view! {
        <div class="scroll" tabindex="0"><table class="results">
            <thead><tr><th>"judge"</th><th>"condition"</th><th>"test-time prompt"</th><th class="num">"trait rate"</th><th>"95 % interval"</th><th class="num">"answers judged"</th></tr></thead>
            <tbody>
                {rows.into_iter().map(|a| view! {
                    <tr>
                        <td>{a.judge.clone()}</td>
                        <td>{a.condition.clone()}</td>
                        <td>{a.test_prompt.clone()}</td>
                        <td class="num">{a.rate.map(pct).unwrap_or_else(|| "–".into())}</td>
                        <td>{match (a.ci_low, a.ci_high) { (Some(l), Some(h)) => format!("{}–{}", pct(l), pct(h)), _ => "–".into() }}</td>
                        <td class="num">{a.determined}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table></div>
    }
}

/// A sweep's "does the predictor predict?" section: per judge, the sentence, the scatter of
/// observed effect against predicted strength, and the table behind it. Renders nothing
/// when no condition's strength was measured.
#[component]
pub fn Predictions(
    id: i64,
    version: i64,
    predictions: Resource<Result<Vec<PredictionView>, AppError>>,
) -> impl IntoView {
    view! {
        <Suspense fallback=Loading>
            {move || Suspend::new(async move {
                match predictions.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok(p) if p.is_empty() => ().into_any(),
                    Ok(p) => view! {
                        <section class="predictions" data-testid="predictions">
                            <h2>"Did predicted strength predict the effect?"</h2>
                            <p class="small">"Two predictors, both measured on the base model before training: surprise reduction (how much less surprising the prompt makes the training data, one number for the whole answer) and the elicitation rate (how often the base model shows this judge's trait when given the prompt, so it can tell traits apart)."</p>
                            {p.into_iter().map(|c| {
                                let judge = c.judge.clone();
                                view! {
                                <h3>{format!("Judge {judge}")}</h3>
                                {c.surprise_sentence.clone().map(|s| view! {
                                    <p class="finding" data-predictor="surprise">{s}</p>
                                    <Chart id name="predictor" judge=Some(judge.clone()) version
                                        caption=format!("Each prompt's surprise reduction before training (x) against how much it lowered the trait rate vs the baseline after training (y), judge {judge}.") />
                                })}
                                {c.elicitation_sentence.clone().map(|s| view! {
                                    <p class="finding" data-predictor="elicitation">{s}</p>
                                    <Chart id name="predictor-elicitation" judge=Some(judge.clone()) version
                                        caption=format!("How often the base model showed the trait under each prompt before training (x) against how much the prompt lowered the trait rate vs the baseline after training (y), judge {judge}.") />
                                })}
                                <details>
                                    <summary class="small">{format!("{} prompts{}", c.points.len(), if c.missing > 0 { format!(" ({} not measured or not judged yet)", c.missing) } else { String::new() })}</summary>
                                    <div class="scroll" tabindex="0"><table class="results">
                                        <thead><tr><th>"condition"</th><th>"prompt"</th><th class="num">"surprise reduction"</th><th class="num">"base model's trait rate under the prompt"</th><th class="num">"drop in trait rate"</th></tr></thead>
                                        <tbody>
                                            {c.points.into_iter().map(|p| view! {
                                                <tr><td>{p.condition}</td><td class="small">{p.prompt}</td>
                                                    <td class="num">{p.surprise.map_or_else(|| "not measured".to_string(), |(s, lo, hi)| format!("{s:+.3} [{lo:+.3}, {hi:+.3}]"))}</td>
                                                    <td class="num">{p.elicited.map_or_else(|| "not sampled".to_string(), |(k, n)| format!("{k} of {n}"))}</td>
                                                    <td class="num">{format!("{:+.0} points", 100.0 * p.effect)}</td></tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table></div>
                                </details>
                            }}).collect_view()}
                        </section>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}
