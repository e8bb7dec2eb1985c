//! Server functions for an experiment's results: the sample browser, human review and
//! pins, the side-by-side comparison, and the read-only report.

use leptos::prelude::*;

use crate::error::AppError;
use wire::reports::ReportView;
use wire::reviews::ReviewSummary;
use wire::samples::{QuestionSummary, SampleQuery, SamplesPage, SideBySide};

/// Samples per page of the sample browser.
pub const SAMPLES_PAGE: i64 = 20;

/// One page of an experiment's samples with every judge's verdict and the human label.
#[server(input = server_fn::codec::Json)]
pub async fn list_samples(query: SampleQuery) -> Result<SamplesPage, AppError> {
    let state = crate::state::app_state()?;
    Ok(engine::reviews::sample_page(&state.store, &query, SAMPLES_PAGE).await?)
}

/// Labels a sample for one judge (misaligned | aligned | unsure: the judge's trait present,
/// absent, unsure) with an optional note; an empty label clears it.
#[server]
pub async fn set_review(sample_id: i64, judge: String, label: String, note: String) -> Result<(), AppError> {
    let state = crate::state::app_state()?;
    Ok(engine::reviews::set_label_word(&state.store, sample_id, &judge, &label, &note).await?)
}

/// Pins a sample to the experiment's report, or unpins it.
#[server]
pub async fn set_pinned(experiment_id: i64, sample_id: i64, pinned: bool) -> Result<(), AppError> {
    let state = crate::state::app_state()?;
    if pinned {
        engine::reviews::pin(&state.store, experiment_id, sample_id).await?;
    } else {
        engine::reviews::unpin(&state.store, experiment_id, sample_id).await?;
    }
    Ok(())
}

/// How far review for `judge` has got (the first judge's when empty), and how the human
/// labels agree with each judge.
#[server]
pub async fn get_review_summary(experiment_id: i64, judge: String) -> Result<ReviewSummary, AppError> {
    let state = crate::state::app_state()?;
    Ok(engine::reviews::summary(&state.store, experiment_id, &judge).await?)
}

/// The experiment's questions, for the side-by-side picker.
#[server]
pub async fn list_questions(experiment_id: i64) -> Result<Vec<QuestionSummary>, AppError> {
    let state = crate::state::app_state()?;
    Ok(engine::samples::questions(&state.store, experiment_id).await?)
}

/// One question's samples, one column per condition x test-time prompt; an empty key means
/// the experiment's first question.
#[server]
pub async fn get_side_by_side(experiment_id: i64, question_key: String) -> Result<SideBySide, AppError> {
    let state = crate::state::app_state()?;
    Ok(engine::reviews::side_by_side_view(&state.store, experiment_id, &question_key).await?)
}

/// The read-only report: the question in plain words, the setup, the findings, the rates
/// and the pinned examples.
#[server]
pub async fn get_report(id: i64) -> Result<ReportView, AppError> {
    let state = crate::state::app_state()?;
    Ok(engine::report::view(&state.store, id).await?)
}
