//! Server functions for teacher datasets: what can teach, start a generation in the
//! background, poll it, cancel it. Sampling takes minutes, so `start_teacher_dataset`
//! returns a task id at once and the page polls `get_teacher_task`.

use leptos::prelude::*;

use crate::error::AppError;
use wire::teacher::{TeacherChoices, TeacherTask};

pub use wire::teacher::TeacherForm;

#[server]
pub async fn get_teacher_choices() -> Result<TeacherChoices, AppError> {
    let state = crate::state::app_state()?;
    Ok(engine::datasets::teacher::choices_view(&state.store, &state.teacher_tasks).await?)
}

/// Checks the form and the teacher, then starts sampling in the background; returns the
/// task id to poll.
#[server]
pub async fn start_teacher_dataset(form: TeacherForm) -> Result<u64, AppError> {
    let state = crate::state::app_state()?;
    let spec = engine::datasets::teacher::spec_from_form(&form)?;
    Ok(state.teacher_tasks.start(state.store.clone(), spec, form.name.clone()).await?)
}

#[server]
pub async fn get_teacher_task(id: u64) -> Result<TeacherTask, AppError> {
    let state = crate::state::app_state()?;
    state
        .teacher_tasks
        .get(id)
        .map(engine::datasets::teacher::TaskView::task)
        .ok_or_else(|| AppError::NotFound(format!("no teacher generation {id} (the server may have restarted)")))
}

/// Asks a running generation to stop; it ends within one sampled token and stores nothing.
#[server]
pub async fn cancel_teacher_task(id: u64) -> Result<bool, AppError> {
    let state = crate::state::app_state()?;
    Ok(state.teacher_tasks.cancel(id))
}
