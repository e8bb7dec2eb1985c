//! Server functions for an experiment's results: the sample browser, human review and
//! pins, the side-by-side comparison, and the read-only report.

use leptos::prelude::*;

use crate::dto::{ReportView, SideBySideView};
use crate::error::AppError;
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
    use crate::dto::FindingView;
    let state = crate::state::app_state()?;
    let store = &state.store;
    let (r, spec_hash, created_at) = engine::experiments::get(store, id).await?;
    let aggregates = engine::experiments::aggregates(store, id).await?;
    let mut comparisons = engine::report::comparisons(&r, &aggregates);
    // The headline first: how the models behave with their default prompt.
    // Clear differences lead (that is the story), then overlaps, and judges that
    // could not decide say so last.
    comparisons.sort_by_key(|c| {
        use engine::report::Effect;
        let rank = match c.effect {
            Effect::Lower | Effect::Higher => 0,
            Effect::NoClearDifference => 1,
            Effect::NoData => 2,
        };
        (c.test_prompt != "default", rank)
    });
    let findings = comparisons
        .iter()
        .map(|c| FindingView {
            judge: c.judge.clone(),
            test_prompt: c.test_prompt.clone(),
            condition: c.condition.clone(),
            effect: c.effect,
            sentence: engine::report::sentence(c),
        })
        .collect();
    let runs = engine::jobs::for_experiment(store, id).await?;
    let pinned = engine::reviews::pinned(store, id).await?;
    // A report is shown to people who will not open the sample browser: until
    // someone pins examples, it shows one typical answer per condition.
    let examples_picked = pinned.is_empty();
    let examples_test_prompt = r
        .test_prompts
        .iter()
        .find(|t| t.label == "default")
        .or(r.test_prompts.first())
        .map(|t| t.label.clone())
        .unwrap_or_else(|| "default".into());
    let mut examples: Vec<engine::samples::StoredSample> = if examples_picked {
        let names: Vec<String> = r.conditions.iter().map(|c| c.name.clone()).collect();
        engine::reviews::typical_examples(store, id, &names, &examples_test_prompt).await?
    } else {
        pinned.into_iter().map(|p| p.sample).collect()
    };
    engine::reviews::mark(store, id, &mut examples).await?;
    let t = &r.spec.training;
    let e = &r.spec.evaluation;
    let settings = vec![
        ("seeds".to_string(), r.spec.seeds.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")),
        ("training steps per run".into(), r.steps_per_run().to_string()),
        ("learning rate".into(), format!("{}", t.lr)),
        ("batch size × accumulation".into(), format!("{} × {}", t.batch_size, t.grad_accum)),
        ("LoRA rank / alpha".into(), format!("{} / {}", t.lora_rank, t.lora_alpha)),
        ("max tokens per example".into(), t.max_seq_len.to_string()),
        ("evaluation questions".into(), r.questions.len().to_string()),
        ("samples per question".into(), e.samples_per_question.to_string()),
        ("sampling temperature / top-p".into(), format!("{} / {}", e.temperature, e.top_p)),
        ("max new tokens".into(), e.max_tokens.to_string()),
    ];
    // Every judgement counted once: grows whenever a result arrives.
    let version: i64 = aggregates.iter().filter(|a| a.seed.is_none() && a.question_key.is_none()).map(|a| a.n).sum();
    let has_probes = !engine::experiments::probe_curves(store, id).await?.is_empty();
    // Judges that decided something first: the headline chart is the first one.
    let mut judges: Vec<(String, String)> = Vec::new();
    for a in &aggregates {
        if !judges.iter().any(|j| j.0 == a.judge) {
            judges.push((a.judge.clone(), engine::report::trait_words(&a.judge)));
        }
    }
    let decided = |judge: &str| aggregates.iter().any(|a| a.judge == judge && a.determined > 0);
    judges.sort_by_key(|j| !decided(&j.0));
    Ok(ReportView {
        id,
        name: r.spec.name.clone(),
        question: engine::report::question(&r),
        model: r.model.name.clone(),
        dataset: r.dataset.name.clone(),
        train_rows: r.train_rows.len(),
        created_at,
        spec_hash,
        conditions: r
            .conditions
            .iter()
            .map(|c| (c.name.clone(), c.prompts.first().cloned(), c.prompts.len()))
            .collect(),
        settings,
        test_prompts: r.test_prompts.iter().map(|t| t.label.clone()).collect(),
        judges,
        runs_done: runs.iter().filter(|v| v.status == engine::jobs::JobStatus::Done).count(),
        runs_total: runs.len(),
        findings,
        aggregates: aggregates.into_iter().filter(|a| a.seed.is_none() && a.question_key.is_none()).collect(),
        pinned: examples,
        examples_picked,
        examples_test_prompt,
        version,
        has_probes,
    })
}
