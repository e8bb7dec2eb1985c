//! Server functions for an experiment's results: the sample browser, human review and
//! pins, the side-by-side comparison, and the read-only report.

use leptos::prelude::*;

use crate::dto::SideBySideView;
use crate::error::AppError;
use wire::reports::ReportView;
use wire::reviews::ReviewSummary;
use wire::samples::{QuestionSummary, SampleQuery, SamplesPage};

/// Samples per page of the sample browser.
pub const SAMPLES_PAGE: i64 = 20;

/// One page of an experiment's samples with every judge's verdict and the human label.
#[server(input = server_fn::codec::Json)]
pub async fn list_samples(query: SampleQuery) -> Result<SamplesPage, AppError> {
    let state = crate::state::app_state()?;
    Ok(engine::reviews::sample_page(&state.store, &query, SAMPLES_PAGE).await?)
}

/// Labels a sample (misaligned | aligned | unsure) with an optional note; an empty label
/// clears it.
#[server]
pub async fn set_review(sample_id: i64, label: String, note: String) -> Result<(), AppError> {
    let state = crate::state::app_state()?;
    Ok(engine::reviews::set_label_word(&state.store, sample_id, &label, &note).await?)
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

/// How far review has got, and how the human labels agree with each judge.
#[server]
pub async fn get_review_summary(experiment_id: i64) -> Result<ReviewSummary, AppError> {
    let state = crate::state::app_state()?;
    Ok(engine::reviews::summary(&state.store, experiment_id).await?)
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
pub async fn get_side_by_side(experiment_id: i64, question_key: String) -> Result<SideBySideView, AppError> {
    let state = crate::state::app_state()?;
    // No question chosen yet: the first one (the picker shows it first too).
    let question_key = if question_key.trim().is_empty() {
        match engine::samples::questions(&state.store, experiment_id).await?.into_iter().next() {
            Some(q) => q.key,
            None => {
                return Ok(SideBySideView {
                    question_key: String::new(),
                    question: String::new(),
                    columns: vec![],
                    rows: vec![],
                })
            }
        }
    } else {
        question_key
    };
    let mut s = engine::samples::side_by_side(&state.store, experiment_id, &question_key, None).await?;
    engine::reviews::mark(&state.store, experiment_id, s.rows.iter_mut().flat_map(|r| r.cells.iter_mut().flatten()))
        .await?;
    Ok(SideBySideView {
        question_key: s.question_key,
        question: s.question,
        columns: s.columns.into_iter().map(|c| (c.condition, c.test_prompt)).collect(),
        rows: s.rows.into_iter().map(|r| (r.seed, r.sample_idx, r.cells)).collect(),
    })
}

/// The read-only report: the question in plain words, the setup, the findings, the rates
/// and the pinned examples.
#[server]
pub async fn get_report(id: i64) -> Result<ReportView, AppError> {
    let state = crate::state::app_state()?;
    Ok(engine::report::view(&state.store, id).await?)
}
