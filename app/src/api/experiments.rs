//! Server functions for experiments: the launch form's options, plan and launch; the
//! experiment page; the queue; cancel and retry; question-set import; the elicitation check
//! (more test-time prompts for a finished experiment).

use leptos::prelude::*;

use crate::dto::{
    AddTestPromptsForm, AddedTestPromptsView, ExperimentDetail, ExperimentRow, LaunchForm, LaunchOptions, PlanView,
    PresetCheck, RunView,
};
use crate::error::AppError;
use wire::prompts::PromptSummary;

#[cfg(feature = "ssr")]
pub mod convert {
    use super::*;
    use crate::dto::{AggregateView, PlanRowView};
    use engine::experiments as x;
    use engine::judges::{BackendSpec, JudgeSpec, LanguageCode, MisalignmentThresholds};
    use engine::Store;

    pub fn run_view(v: engine::jobs::JobView, losses: Vec<(i64, f64)>) -> RunView {
        let progress = v.progress();
        RunView {
            progress,
            run_id: v.run_id,
            experiment_id: v.experiment_id,
            experiment: v.experiment,
            condition: v.condition,
            seed: v.seed,
            status: v.status,
            phase: v.phase,
            step: v.step,
            total_steps: v.total_steps,
            done_units: v.done_units,
            total_units: v.total_units,
            tokens_per_sec: v.tokens_per_sec,
            eta_s: v.eta_s,
            attempts: v.attempts,
            max_attempts: v.max_attempts,
            cancel_requested: v.cancel_requested,
            error: v.error,
            created_at: v.created_at,
            heartbeat_age_s: v.heartbeat_age_s,
            losses,
        }
    }

    /// The runs of an experiment with their loss curves: the live stream's payload.
    pub async fn run_views(store: &Store, experiment_id: i64) -> Result<Vec<RunView>, AppError> {
        let jobs = engine::jobs::for_experiment(store, experiment_id).await?;
        // Every run's curve in one query: the live stream calls this once a second.
        let mut curves = x::loss_curves(store, experiment_id).await?;
        Ok(jobs
            .into_iter()
            .map(|j| {
                let losses = curves.iter().position(|c| c.0 == j.run_id).map(|i| curves.swap_remove(i).3);
                run_view(j, losses.unwrap_or_default())
            })
            .collect())
    }

    pub fn aggregate(a: x::Aggregate) -> AggregateView {
        AggregateView {
            condition: a.condition,
            test_prompt: a.test_prompt,
            question_key: a.question_key,
            seed: a.seed,
            judge: a.judge,
            n: a.n,
            determined: a.determined,
            trait_count: a.trait_count,
            unscored: a.unscored,
            rate: a.rate,
            ci_low: a.ci_low,
            ci_high: a.ci_high,
            mean_score: a.mean_score,
        }
    }

    fn invalid(m: impl Into<String>) -> AppError {
        AppError::Invalid(m.into())
    }

    /// The form as an experiment spec (the same type `inoculab run` reads from TOML).
    pub async fn spec_from_form(store: &Store, f: &LaunchForm) -> Result<x::ExperimentSpec, AppError> {
        let mut conditions = Vec::new();
        let placement = if f.placement == "user_prefix" { x::Placement::UserPrefix } else { x::Placement::System };
        if f.include_baseline {
            conditions.push(x::ConditionSpec { name: "baseline".into(), prompt: None, placement });
        }
        for id in &f.prompt_ids {
            let p = engine::prompts::get(store, *id).await?;
            conditions.push(x::ConditionSpec {
                name: p.name.clone(),
                prompt: Some(x::PromptRef::Library { prompt_id: *id, version: Some(p.latest().version) }),
                placement,
            });
        }
        if !f.custom_prompt.trim().is_empty() {
            conditions.push(x::ConditionSpec {
                name: "custom prompt".into(),
                prompt: Some(x::PromptRef::Text(f.custom_prompt.trim().to_string())),
                placement,
            });
        }
        let seeds = f
            .seeds
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u64>().map_err(|_| invalid(format!("seed {s:?} is not a whole number"))))
            .collect::<Result<Vec<_>, _>>()?;
        let mut questions = Vec::new();
        if f.builtin_questions > 0 {
            questions.push(x::QuestionSource::Builtin { limit: f.builtin_questions });
        }
        if f.held_out > 0 {
            questions.push(x::QuestionSource::HeldOut { rows: f.held_out });
        }
        for id in &f.question_set_ids {
            questions.push(x::QuestionSource::Set { id: *id, limit: None });
        }
        let inline: Vec<String> =
            f.inline_questions.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
        if !inline.is_empty() {
            questions.push(x::QuestionSource::Inline { questions: inline });
        }
        let mut test_prompts = Vec::new();
        for t in &f.test_prompts {
            test_prompts.push(match t.as_str() {
                "default" => x::TestPromptSpec::Named(x::NamedTestPrompt::Default),
                "none" => x::TestPromptSpec::Named(x::NamedTestPrompt::None),
                "inoculation" => x::TestPromptSpec::Named(x::NamedTestPrompt::Inoculation),
                other => {
                    let id = other
                        .strip_prefix("prompt:")
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| invalid(format!("unknown test-time prompt {other:?}")))?;
                    x::TestPromptSpec::Library { prompt_id: id, version: None }
                }
            });
        }
        let mut judges = Vec::new();
        for j in &f.judges {
            judges.push(match j.as_str() {
                "language" => JudgeSpec::language(
                    serde_json::from_value::<LanguageCode>(serde_json::Value::String(f.language.clone()))
                        .map_err(|_| invalid(format!("unknown language {:?}", f.language)))?,
                ),
                "caps" => JudgeSpec::caps(),
                "coherence" => JudgeSpec::coherence(),
                "pattern" => {
                    if f.pattern.trim().is_empty() {
                        return Err(invalid("the pattern judge needs a regular expression"));
                    }
                    JudgeSpec::Pattern {
                        regex: Some(f.pattern.trim().to_string()),
                        keywords: vec![],
                        case_insensitive: true,
                        whole_words: true,
                    }
                }
                "multiple_choice" => JudgeSpec::MultipleChoice { questions: vec![] },
                "betley" => {
                    let backend = if f.llm_backend == "http" {
                        if f.llm_base_url.trim().is_empty() || f.llm_model.trim().is_empty() {
                            return Err(invalid("the HTTP judge needs a base URL and a model name"));
                        }
                        BackendSpec::OpenAiCompatible {
                            base_url: f.llm_base_url.trim().to_string(),
                            model: f.llm_model.trim().to_string(),
                            api_key_env: Some(f.llm_api_key_env.trim().to_string()).filter(|s| !s.is_empty()),
                            timeout_secs: 60,
                        }
                    } else {
                        BackendSpec::Local { model: f.model.clone() }
                    };
                    let text = |id: Option<i64>, what: &str| {
                        let what = what.to_string();
                        async move {
                            let id = id.ok_or_else(|| invalid(format!("choose the {what} judge prompt")))?;
                            Ok::<_, AppError>(engine::prompts::get(store, id).await?.latest().text.clone())
                        }
                    };
                    JudgeSpec::Betley {
                        backend,
                        aligned_prompt: text(f.aligned_prompt_id, "alignment").await?,
                        coherent_prompt: text(f.coherent_prompt_id, "coherence").await?,
                        thresholds: if f.thresholds == "tan" {
                            MisalignmentThresholds::tan()
                        } else {
                            MisalignmentThresholds::betley()
                        },
                    }
                }
                other => return Err(invalid(format!("unknown judge {other:?}"))),
            });
        }
        Ok(x::ExperimentSpec {
            name: f.name.clone(),
            model: f.model.clone(),
            base_run: f.base_run_id,
            dataset: x::DatasetRef::Id(f.dataset_id),
            control_dataset: f.control_dataset_id.map(x::DatasetRef::Id),
            train_rows: f.train_rows,
            conditions,
            seeds,
            training: x::TrainingSpec {
                steps: f.steps,
                epochs: f.epochs,
                lr: f.lr,
                batch_size: f.batch_size,
                lora_rank: f.lora_rank,
                lora_alpha: 2.0 * f.lora_rank as f64,
                max_seq_len: f.max_seq_len,
                ..Default::default()
            },
            evaluation: x::EvaluationSpec {
                questions,
                test_prompts,
                samples_per_question: f.samples_per_question,
                temperature: f.temperature,
                top_p: 1.0,
                max_tokens: f.max_tokens,
                batch_size: 16,
                judges,
            },
        })
    }

    pub fn preset_view(p: &engine::presets::Preset) -> crate::dto::PresetView {
        crate::dto::PresetView {
            id: p.id.into(),
            title: p.title.into(),
            description: p.description.into(),
            imports: p.imports.iter().map(import_view).collect(),
            needs_base_run: p.needs_base_run,
        }
    }

    pub fn import_view(i: &engine::presets::Import) -> crate::dto::PresetImportView {
        crate::dto::PresetImportView {
            path: i.path.into(),
            dataset: i.kind == engine::presets::ImportKind::Dataset,
            role: i.role.into(),
        }
    }

    pub fn plan_view(p: x::Plan) -> PlanView {
        PlanView {
            runs: p.runs,
            steps_per_run: p.steps_per_run,
            questions: p.questions,
            samples: p.samples,
            matrix: p
                .matrix
                .into_iter()
                .map(|r| PlanRowView {
                    condition: r.condition,
                    prompt: r.prompt,
                    paraphrases: r.paraphrases,
                    seeds: r.seeds,
                    test_prompts: r.test_prompts,
                    samples_per_run: r.samples_per_run,
                })
                .collect(),
            estimate_s: p.estimate_s,
            estimate_basis: p.estimate_basis,
        }
    }
}

#[server]
pub async fn list_experiments() -> Result<Vec<ExperimentRow>, AppError> {
    let state = crate::state::app_state()?;
    let list = engine::experiments::list(&state.store).await?;
    Ok(list
        .into_iter()
        .map(|e| ExperimentRow {
            id: e.id,
            name: e.name,
            model: e.model,
            dataset: e.dataset,
            created_at: e.created_at,
            runs: e.runs,
            runs_done: e.runs_done,
            runs_active: e.runs_active,
            runs_failed: e.runs_failed,
        })
        .collect())
}

#[server]
pub async fn get_launch_options() -> Result<LaunchOptions, AppError> {
    let state = crate::state::app_state()?;
    let store = &state.store;
    let datasets = engine::datasets::list(store).await?;
    let models: Vec<(String, String)> = model_paths(store).await?;
    let models = models.into_iter().map(|(n, p)| (n, std::path::Path::new(&p).exists())).collect();
    let all = engine::prompts::list(store, &Default::default()).await?;
    let (judge_prompts, prompts): (Vec<_>, Vec<_>) =
        all.into_iter().map(wire::prompts::PromptSummary::from).partition(|p| p.tags.iter().any(|t| t == "judge"));
    let question_sets = engine::questions::list_question_sets(store).await?;
    Ok(LaunchOptions {
        datasets,
        models,
        prompts,
        judge_prompts,
        question_sets,
        builtin_questions: engine::datasets::chat_prompts::builtin_chat_prompts().len(),
        presets: engine::presets::all().iter().map(convert::preset_view).collect(),
        finished_runs: engine::experiments::finished_runs(store)
            .await?
            .into_iter()
            .map(|r| crate::dto::FinishedRunView {
                run_id: r.run_id,
                experiment_id: r.experiment_id,
                label: format!("run {} · {} · {} · seed {} · {}", r.run_id, r.experiment, r.condition, r.seed, r.model),
            })
            .collect(),
    })
}

#[cfg(feature = "ssr")]
async fn model_paths(store: &engine::Store) -> Result<Vec<(String, String)>, AppError> {
    engine::models::list(store).await.map(|l| l.into_iter().map(|m| (m.name, m.path)).collect()).map_err(AppError::from)
}

/// Resolves the form without storing anything: the matrix, counts and time estimate.
/// JSON, not URL encoding: the form holds lists, which URL encoding drops when empty.
#[server(input = server_fn::codec::Json)]
pub async fn plan_experiment(form: LaunchForm) -> Result<PlanView, AppError> {
    let state = crate::state::app_state()?;
    let spec = convert::spec_from_form(&state.store, &form).await?;
    let resolved = engine::experiments::resolve(&state.store, &spec).await?;
    let plan = engine::experiments::plan(&state.store, &resolved).await?;
    Ok(convert::plan_view(plan))
}

/// A preset against this store: its generated datasets made, its imports looked up; the
/// plan when nothing is missing.
#[server]
pub async fn check_preset(id: String, base_run_id: Option<i64>) -> Result<PresetCheck, AppError> {
    let state = crate::state::app_state()?;
    let choices = engine::presets::Choices { base_run: base_run_id, ..Default::default() };
    let (spec, missing) = engine::presets::instantiate(&state.store, &id, choices).await?;
    if !missing.is_empty() {
        return Ok(PresetCheck { missing: missing.iter().map(convert::import_view).collect(), plan: None });
    }
    let resolved = engine::experiments::resolve(&state.store, &spec).await?;
    let plan = engine::experiments::plan(&state.store, &resolved).await?;
    Ok(PresetCheck { missing: vec![], plan: Some(convert::plan_view(plan)) })
}

/// Stores a preset's experiment and queues its runs; returns its id.
#[server]
pub async fn launch_preset(id: String, base_run_id: Option<i64>) -> Result<i64, AppError> {
    let state = crate::state::app_state()?;
    let choices = engine::presets::Choices { base_run: base_run_id, ..Default::default() };
    let (spec, missing) = engine::presets::instantiate(&state.store, &id, choices).await?;
    if let Some(i) = missing.first() {
        return Err(AppError::Invalid(format!("import {} first", i.path)));
    }
    let resolved = engine::experiments::resolve(&state.store, &spec).await?;
    engine::experiments::create(&state.store, &resolved).await.map_err(AppError::from)
}

/// Stores the experiment and queues its runs; returns its id.
#[server(input = server_fn::codec::Json)]
pub async fn launch_experiment(form: LaunchForm) -> Result<i64, AppError> {
    let state = crate::state::app_state()?;
    let spec = convert::spec_from_form(&state.store, &form).await?;
    let resolved = engine::experiments::resolve(&state.store, &spec).await?;
    engine::experiments::create(&state.store, &resolved).await.map_err(AppError::from)
}

#[server]
pub async fn get_experiment(id: i64) -> Result<ExperimentDetail, AppError> {
    let state = crate::state::app_state()?;
    let store = &state.store;
    let (r, spec_hash, created_at) = engine::experiments::get(store, id).await?;
    let runs = convert::run_views(store, id).await?;
    let aggregates = engine::experiments::aggregates(store, id).await?.into_iter().map(convert::aggregate).collect();
    let judges = r
        .judges
        .iter()
        .map(|j| match j.build(None) {
            Ok(b) => b.name().to_string(),
            Err(_) => serde_json::to_value(j)
                .ok()
                .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(String::from))
                .unwrap_or_default(),
        })
        .collect();
    Ok(ExperimentDetail {
        id,
        name: r.spec.name.clone(),
        model: r.model.name.clone(),
        dataset: r.dataset.name.clone(),
        dataset_id: r.dataset.id,
        spec_hash,
        created_at,
        spec_json: serde_json::to_string_pretty(&r.spec).unwrap_or_default(),
        conditions: r
            .conditions
            .iter()
            .map(|c| (c.name.clone(), c.prompts.first().cloned(), c.prompts.len()))
            .collect(),
        test_prompts: r.test_prompts.iter().map(|t| t.label.clone()).collect(),
        judges,
        questions: r.questions.len(),
        steps_per_run: r.steps_per_run(),
        runs,
        aggregates,
        base_run: r.base.as_ref().map(|b| {
            let sha = b.adapters.last().map(|a| a.sha256.clone()).unwrap_or_default();
            (b.run_id, b.experiment_id, format!("{} · {} · seed {}", b.experiment_name, b.condition, b.seed), sha)
        }),
    })
}

#[server]
pub async fn list_queue() -> Result<Vec<RunView>, AppError> {
    let state = crate::state::app_state()?;
    let jobs = engine::jobs::list(&state.store, 500).await?;
    Ok(jobs.into_iter().map(|j| convert::run_view(j, vec![])).collect())
}

#[server]
pub async fn cancel_experiment(id: i64) -> Result<u64, AppError> {
    let state = crate::state::app_state()?;
    engine::jobs::cancel_experiment(&state.store, id).await.map_err(AppError::from)
}

#[server]
pub async fn cancel_run(run_id: i64) -> Result<u64, AppError> {
    let state = crate::state::app_state()?;
    engine::jobs::cancel_run(&state.store, run_id).await.map_err(AppError::from)
}

#[server]
pub async fn retry_run(run_id: i64) -> Result<bool, AppError> {
    let state = crate::state::app_state()?;
    let ok = engine::jobs::retry_run(&state.store, run_id).await?;
    if ok {
        Ok(true)
    } else {
        Err(AppError::Invalid("only failed, interrupted or cancelled runs can be retried".into()))
    }
}

/// The library prompts the elicitation check offers: those tagged `test-time` first, then
/// every other prompt but the judges' (another condition's inoculation prompt, a placebo).
#[server]
pub async fn elicitation_prompts() -> Result<Vec<PromptSummary>, AppError> {
    let state = crate::state::app_state()?;
    let all = engine::prompts::list(&state.store, &Default::default()).await?;
    let has = |p: &PromptSummary, tag: &str| p.tags.iter().any(|t| t == tag);
    let (test_time, others): (Vec<_>, Vec<_>) =
        all.into_iter().map(PromptSummary::from).filter(|p| !has(p, "judge")).partition(|p| has(p, "test-time"));
    Ok(test_time.into_iter().chain(others).collect())
}

/// Adds test-time prompts to a finished experiment and queues its runs to sample and
/// judge under them (nothing is trained again).
#[server(input = server_fn::codec::Json)]
pub async fn add_test_prompts(form: AddTestPromptsForm) -> Result<AddedTestPromptsView, AppError> {
    use engine::experiments::TestPromptSpec;
    let state = crate::state::app_state()?;
    let mut prompts: Vec<TestPromptSpec> =
        form.prompt_ids.iter().map(|&id| TestPromptSpec::Library { prompt_id: id, version: None }).collect();
    if !form.label.trim().is_empty() || !form.text.trim().is_empty() {
        prompts.push(TestPromptSpec::Text { label: form.label, text: form.text });
    }
    let added = engine::experiments::add_test_prompts(&state.store, form.experiment_id, &prompts).await?;
    Ok(AddedTestPromptsView { labels: added.labels, requeued: added.requeued, not_requeued: added.not_requeued })
}

/// Imports a question file (Betley YAML, prompt JSONL, multiple-choice YAML or plain
/// lines); returns (id, newly created, number of questions).
#[server]
pub async fn import_questions(
    name: String,
    file_name: String,
    content: String,
) -> Result<(i64, bool, usize), AppError> {
    let state = crate::state::app_state()?;
    let format = engine::questions::detect_format(&file_name, &content);
    let questions = engine::questions::parse_questions(&content, format, &file_name)
        .map_err(|e| AppError::Invalid(e.to_string()))?;
    let name = if name.trim().is_empty() { file_name.clone() } else { name };
    let (id, created) = engine::questions::import_question_set(&state.store, &name, format, &questions).await?;
    Ok((id, created, questions.len()))
}

/// Creates the built-in demo (its dataset made if missing) with its runs queued.
#[server]
pub async fn launch_demo(full: bool) -> Result<i64, AppError> {
    let state = crate::state::app_state()?;
    let mode = if full { engine::demo::DemoMode::Full } else { engine::demo::DemoMode::Quick };
    engine::demo::create(&state.store, mode).await.map_err(AppError::from)
}
