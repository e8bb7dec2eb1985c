//! Server functions for experiments: the launch form's options, plan and launch; the
//! experiment page; the queue and its workers; cancel and retry; question-set import; the elicitation check
//! (more test-time prompts for a finished experiment).

use leptos::prelude::*;

use crate::dto::{LaunchOptions, Launched};
use crate::error::AppError;
use wire::experiments::{AddTestPromptsForm, AddedTestPrompts, ExperimentDetail, ExperimentSummary, LaunchForm, Plan};
use wire::prompts::PromptSummary;
use wire::reports::PresetCheck;
use wire::runs::JobView;
use wire::workers::WorkerView;

#[server]
pub async fn list_experiments() -> Result<Vec<ExperimentSummary>, AppError> {
    let state = crate::state::app_state()?;
    Ok(engine::experiments::list(&state.store).await?)
}

#[server]
pub async fn get_launch_options() -> Result<LaunchOptions, AppError> {
    let state = crate::state::app_state()?;
    let store = &state.store;
    let datasets = engine::datasets::list(store).await?;
    let models: Vec<(String, String)> = model_paths(store).await?;
    let models = models.into_iter().map(|(n, p)| (n, std::path::Path::new(&p).exists())).collect();
    let all = engine::prompts::list(store, &Default::default()).await?;
    let (judge_prompts, prompts): (Vec<_>, Vec<_>) = all.into_iter().partition(|p| p.tags.iter().any(|t| t == "judge"));
    let question_sets = engine::questions::list_question_sets(store).await?;
    Ok(LaunchOptions {
        datasets,
        models,
        prompts,
        judge_prompts,
        question_sets,
        builtin_questions: engine::datasets::chat_prompts::builtin_chat_prompts().len(),
        presets: engine::presets::all().iter().map(engine::presets::view).collect(),
        finished_runs: engine::experiments::finished_run_views(store).await?,
        judge_endpoints: state
            .judge_endpoints
            .list()
            .iter()
            .map(|e| wire::experiments::JudgeEndpointView {
                name: e.name.clone(),
                model: e.model.clone(),
                ready: e.ready(),
            })
            .collect(),
    })
}

/// The form as a spec, its judge endpoint (a name) swapped for the operator's settings.
#[cfg(feature = "ssr")]
async fn spec_from_form(
    state: &crate::state::AppState,
    form: &LaunchForm,
) -> Result<engine::experiments::ExperimentSpec, AppError> {
    let mut spec = engine::experiments::spec_from_form(&state.store, form).await?;
    state.judge_endpoints.apply(&mut spec.evaluation.judges)?;
    Ok(spec)
}

#[cfg(feature = "ssr")]
async fn model_paths(store: &engine::Store) -> Result<Vec<(String, String)>, AppError> {
    engine::models::list(store).await.map(|l| l.into_iter().map(|m| (m.name, m.path)).collect()).map_err(AppError::from)
}

/// Resolves the form without storing anything: the matrix, counts and time estimate.
/// JSON, not URL encoding: the form holds lists, which URL encoding drops when empty.
#[server(input = server_fn::codec::Json)]
pub async fn plan_experiment(form: LaunchForm) -> Result<Plan, AppError> {
    let state = crate::state::app_state()?;
    let spec = spec_from_form(&state, &form).await?;
    let resolved = engine::experiments::resolve(&state.store, &spec).await?;
    state.check_totals(&resolved)?;
    Ok(engine::experiments::plan(&state.store, &resolved).await?)
}

/// The judge check: the form's misalignment judge on the built-in calibration set (40
/// answers of known verdict), with agreement and Cohen's kappa. Kept per judge
/// configuration, so asking again (or the report) shows the same numbers at once.
#[server(input = server_fn::codec::Json)]
pub async fn check_judge(form: LaunchForm) -> Result<wire::experiments::JudgeCalibration, AppError> {
    let state = crate::state::app_state()?;
    let spec = spec_from_form(&state, &form).await?;
    let judge = spec
        .evaluation
        .judges
        .iter()
        .find(|j| engine::judges::calibration::applies(j))
        .ok_or_else(|| AppError::Invalid("choose the misalignment judge to check it".into()))?;
    Ok(engine::judges::calibration::check(&state.store, state.meter.host(), judge, &spec.model).await?)
}

/// A preset's choices on this server: misalignment judged through the operator's first
/// judge endpoint when there is one (the paper judged with a GPT-4-class model).
#[cfg(feature = "ssr")]
fn preset_choices(
    state: &crate::state::AppState,
    base_run_id: Option<i64>,
    dataset_id: Option<i64>,
) -> engine::presets::Choices {
    engine::presets::Choices {
        base_run: base_run_id,
        judge_endpoint: state.judge_endpoints.list().first().map(|e| e.name.clone()),
        ..Default::default()
    }
    .with_teacher(dataset_id)
}

/// A preset against this store: its generated datasets made, its imports looked up; the
/// plan when nothing is missing.
#[server]
pub async fn check_preset(
    id: String,
    base_run_id: Option<i64>,
    dataset_id: Option<i64>,
) -> Result<PresetCheck, AppError> {
    let state = crate::state::app_state()?;
    let choices = preset_choices(&state, base_run_id, dataset_id);
    Ok(engine::presets::check(&state.store, &id, choices, &state.judge_endpoints).await?)
}

/// A launch whose plan takes longer than this (seconds) asks to be confirmed first: half an
/// hour of a shared machine should not start from one stray click.
pub const CONFIRM_OVER_S: f64 = 30.0 * 60.0;

/// Stores the experiment and queues its runs, unless it is over the launch limits, or takes
/// longer than `CONFIRM_OVER_S` and was not `confirmed`: then it returns the plan to confirm.
#[cfg(feature = "ssr")]
pub(crate) async fn create_if_confirmed(
    state: &crate::state::AppState,
    resolved: &engine::experiments::Resolved,
    confirmed: Option<bool>,
) -> Result<Launched, AppError> {
    state.check_totals(resolved)?;
    if confirmed != Some(true) {
        let plan = engine::experiments::plan(&state.store, resolved).await?;
        if plan.estimate_s > CONFIRM_OVER_S {
            return Ok(Launched::Confirm(plan));
        }
    }
    Ok(Launched::Started(engine::experiments::create(&state.store, resolved).await?))
}

/// Stores a preset's experiment and queues its runs (see `create_if_confirmed`).
#[server]
pub async fn launch_preset(
    id: String,
    base_run_id: Option<i64>,
    dataset_id: Option<i64>,
    confirmed: Option<bool>,
) -> Result<Launched, AppError> {
    let state = crate::state::app_state()?;
    let choices = preset_choices(&state, base_run_id, dataset_id);
    let (mut spec, missing) = engine::presets::instantiate(&state.store, &id, choices).await?;
    if let Some(i) = missing.first() {
        let verb = if i.kind == engine::presets::ImportKind::Teacher { "make" } else { "import" };
        return Err(AppError::Invalid(format!("{verb} {} first", i.path)));
    }
    state.judge_endpoints.apply(&mut spec.evaluation.judges)?;
    let resolved = engine::experiments::resolve(&state.store, &spec).await?;
    create_if_confirmed(&state, &resolved, confirmed).await
}

/// Stores the experiment and queues its runs (see `create_if_confirmed`).
#[server(input = server_fn::codec::Json)]
pub async fn launch_experiment(form: LaunchForm, confirmed: Option<bool>) -> Result<Launched, AppError> {
    let state = crate::state::app_state()?;
    let spec = spec_from_form(&state, &form).await?;
    let resolved = engine::experiments::resolve(&state.store, &spec).await?;
    create_if_confirmed(&state, &resolved, confirmed).await
}

#[server]
pub async fn get_experiment(id: i64) -> Result<ExperimentDetail, AppError> {
    let state = crate::state::app_state()?;
    Ok(engine::experiments::detail(&state.store, id).await?)
}

#[server]
pub async fn list_queue() -> Result<Vec<JobView>, AppError> {
    let state = crate::state::app_state()?;
    Ok(engine::jobs::list(&state.store, 500).await?)
}

/// The work left in each experiment with unfinished runs: (id, name, seconds).
#[server]
pub async fn queue_work_left() -> Result<Vec<(i64, String, f64)>, AppError> {
    let state = crate::state::app_state()?;
    let runs = engine::jobs::list(&state.store, 500).await?;
    Ok(engine::experiments::work_left(&state.store, &runs).await?)
}

/// The job workers registered on this data directory, lost ones marked.
#[server]
pub async fn list_workers() -> Result<Vec<WorkerView>, AppError> {
    let state = crate::state::app_state()?;
    Ok(engine::workers::list(&state.store).await?)
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
        all.into_iter().filter(|p| !has(p, "judge")).partition(|p| has(p, "test-time"));
    Ok(test_time.into_iter().chain(others).collect())
}

/// Adds test-time prompts to a finished experiment and queues its runs to sample and
/// judge under them (nothing is trained again).
#[server(input = server_fn::codec::Json)]
pub async fn add_test_prompts(form: AddTestPromptsForm) -> Result<AddedTestPrompts, AppError> {
    let state = crate::state::app_state()?;
    let prompts = engine::experiments::test_prompts_from_form(&form);
    Ok(engine::experiments::add_test_prompts(&state.store, form.experiment_id, &prompts).await?)
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
    // Parsed on a blocking thread: a large file takes a while (and is bounded there).
    let origin = file_name.clone();
    let (format, questions) = tokio::task::spawn_blocking(move || {
        let format = engine::questions::detect_format(&origin, &content);
        engine::questions::parse_questions(&content, format, &origin).map(|q| (format, q))
    })
    .await
    .map_err(crate::error::internal)?
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
