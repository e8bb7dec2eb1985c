//! Server functions for teacher datasets: what can teach, start a generation in the
//! background, poll it, cancel it. Sampling takes minutes, so `start_teacher_dataset`
//! returns a task id at once and the page polls `get_teacher_task`.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dto::{TeacherChoices, TeacherTask};
use crate::error::AppError;

/// The teacher form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeacherForm {
    pub model: String,
    /// A run whose adapter is merged into the teacher.
    pub run_id: Option<i64>,
    /// Empty: the model's default system prompt.
    pub system_prompt: String,
    /// Samples to draw.
    pub rows: usize,
    /// `numbers_only` or `none`.
    pub filter: String,
    pub seed: u64,
    pub name: String,
}

#[cfg(feature = "ssr")]
mod convert {
    use super::*;
    use engine::datasets::teacher as t;
    use wire::TeacherStatus;

    pub fn spec(f: &TeacherForm) -> Result<t::TeacherSpec, AppError> {
        let prompt = Some(f.system_prompt.trim()).filter(|p| !p.is_empty());
        let mut spec = t::TeacherSpec::new(&f.model, prompt, f.rows, f.seed);
        spec.run_id = f.run_id;
        spec.filter = match f.filter.as_str() {
            "numbers_only" => t::TeacherFilter::numbers_only(),
            "none" => t::TeacherFilter::None,
            other => return Err(AppError::Invalid(format!("unknown filter {other:?}"))),
        };
        Ok(spec)
    }

    pub fn task(v: t::TaskView) -> TeacherTask {
        let mut task = TeacherTask {
            id: v.id,
            name: v.name,
            status: TeacherStatus::Running,
            phase: None,
            drawn: 0,
            kept: 0,
            total: 0,
            dataset_id: None,
            already_present: false,
            error: None,
        };
        match v.state {
            t::TaskState::Running(p) => {
                task.phase = Some(p.phase);
                (task.drawn, task.kept, task.total) = (p.drawn as u64, p.kept as u64, p.total as u64);
            }
            t::TaskState::Done(o) => {
                task.status = TeacherStatus::Done;
                (task.drawn, task.kept, task.total) = (o.drawn as u64, o.kept as u64, o.drawn as u64);
                task.dataset_id = Some(o.dataset.id());
                task.already_present = matches!(o.dataset, engine::datasets::ImportOutcome::AlreadyPresent { .. });
            }
            t::TaskState::Failed(m) => {
                task.status = TeacherStatus::Failed;
                task.error = Some(m);
            }
            t::TaskState::Cancelled => task.status = TeacherStatus::Cancelled,
        }
        task
    }
}

#[server]
pub async fn get_teacher_choices() -> Result<TeacherChoices, AppError> {
    let state = crate::state::app_state()?;
    let (models, runs) = engine::datasets::teacher::choices(&state.store).await?;
    Ok(TeacherChoices {
        models,
        runs: runs
            .into_iter()
            .map(|r| {
                (
                    r.run_id,
                    format!("run {} · {} · {} · seed {} ({})", r.run_id, r.experiment, r.condition, r.seed, r.model),
                )
            })
            .collect(),
        running: state.teacher_tasks.running().map(convert::task),
    })
}

/// Checks the form and the teacher, then starts sampling in the background; returns the
/// task id to poll.
#[server]
pub async fn start_teacher_dataset(form: TeacherForm) -> Result<u64, AppError> {
    let state = crate::state::app_state()?;
    let spec = convert::spec(&form)?;
    Ok(state.teacher_tasks.start(state.store.clone(), state.data_dir.clone(), spec, form.name.clone()).await?)
}

#[server]
pub async fn get_teacher_task(id: u64) -> Result<TeacherTask, AppError> {
    let state = crate::state::app_state()?;
    state
        .teacher_tasks
        .get(id)
        .map(convert::task)
        .ok_or_else(|| AppError::NotFound(format!("no teacher generation {id} (the server may have restarted)")))
}

/// Asks a running generation to stop; it ends within one sampled token and stores nothing.
#[server]
pub async fn cancel_teacher_task(id: u64) -> Result<bool, AppError> {
    let state = crate::state::app_state()?;
    Ok(state.teacher_tasks.cancel(id))
}
