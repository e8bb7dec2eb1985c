//! Server functions for an experiment's results: the sample browser, human review and
//! pins, the side-by-side comparison, and the read-only report.

use leptos::prelude::*;

use crate::dto::{QuestionOption, ReportView, ReviewSummary, SampleQuery, SamplesPage, SideBySideView};
use crate::error::AppError;

/// Samples per page of the sample browser.
pub const SAMPLES_PAGE: i64 = 20;

#[cfg(feature = "ssr")]
mod convert {
    use std::collections::{BTreeMap, HashSet};

    use crate::dto::{JudgementView, SampleView};
    use crate::error::AppError;
    use engine::reviews::Review;
    use engine::samples::StoredSample;

    pub fn sample(s: StoredSample, reviews: &BTreeMap<i64, Review>, pins: &HashSet<i64>) -> SampleView {
        SampleView {
            review: reviews.get(&s.id).map(|r| (r.label.as_str().to_string(), r.note.clone())),
            pinned: pins.contains(&s.id),
            id: s.id,
            condition: s.condition,
            seed: s.seed,
            test_prompt: s.test_prompt,
            system_text: s.system_text,
            question_key: s.question_key,
            question: s.question,
            sample_idx: s.sample_idx,
            completion: s.completion,
            n_tokens: s.n_tokens,
            finished: s.finished,
            judgements: s
                .judgements
                .into_iter()
                .map(|j| JudgementView {
                    judge: j.judge,
                    version: j.version,
                    score: j.score,
                    trait_present: j.trait_present,
                    raw: j.raw,
                })
                .collect(),
        }
    }

    /// The review labels and pin marks of these samples, to show beside them.
    pub async fn marks(
        store: &engine::Store,
        experiment_id: i64,
        ids: &[i64],
    ) -> Result<(BTreeMap<i64, Review>, HashSet<i64>), AppError> {
        let reviews = engine::reviews::labels(store, ids).await?;
        let pins = engine::reviews::pinned_ids(store, experiment_id).await?;
        Ok((reviews, pins.into_iter().collect()))
    }
}

/// One page of an experiment's samples with every judge's verdict and the human label.
#[server(input = server_fn::codec::Json)]
pub async fn list_samples(query: SampleQuery) -> Result<SamplesPage, AppError> {
    use engine::samples::{ReviewFilter, SampleFilter, SampleSort, Verdict};
    let state = crate::state::app_state()?;
    let nonempty = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let verdict = match query.verdict.as_str() {
        "trait" => Verdict::Trait,
        "no_trait" => Verdict::NoTrait,
        "undetermined" => Verdict::Undetermined,
        _ => Verdict::Any,
    };
    let sort = match query.sort.as_str() {
        "score_asc" => SampleSort::ScoreAsc,
        "score_desc" => SampleSort::ScoreDesc,
        _ => SampleSort::Id,
    };
    let review = match query.review.as_str() {
        "unreviewed" => ReviewFilter::Unreviewed,
        "misaligned" => ReviewFilter::Misaligned,
        "aligned" => ReviewFilter::Aligned,
        "unsure" => ReviewFilter::Unsure,
        _ => ReviewFilter::Any,
    };
    let judge = nonempty(&query.judge);
    if judge.is_none() && (query.min_score.is_some() || query.max_score.is_some() || sort != SampleSort::Id) {
        return Err(AppError::Invalid("choose a judge to filter or sort by its score".into()));
    }
    let filter = SampleFilter {
        experiment_id: query.experiment_id,
        condition: nonempty(&query.condition),
        test_prompt: nonempty(&query.test_prompt),
        seed: query.seed,
        question_key: nonempty(&query.question_key),
        judge,
        verdict,
        min_score: query.min_score,
        max_score: query.max_score,
        sort,
        review,
        search: query.search.clone(),
        offset: query.offset,
        limit: SAMPLES_PAGE,
    };
    let (total, samples) = engine::samples::page(&state.store, &filter).await?;
    let ids: Vec<i64> = samples.iter().map(|s| s.id).collect();
    let (reviews, pins) = convert::marks(&state.store, query.experiment_id, &ids).await?;
    // Only a text search stops counting (at COUNT_CAP + 1).
    let at_least = !query.search.trim().is_empty() && total > engine::samples::COUNT_CAP;
    Ok(SamplesPage {
        at_least,
        total: if at_least { engine::samples::COUNT_CAP } else { total },
        offset: query.offset,
        limit: SAMPLES_PAGE,
        samples: samples.into_iter().map(|s| convert::sample(s, &reviews, &pins)).collect(),
    })
}

/// Labels a sample (misaligned | aligned | unsure) with an optional note; an empty label
/// clears it.
#[server]
pub async fn set_review(sample_id: i64, label: String, note: String) -> Result<(), AppError> {
    use engine::reviews::Label;
    let state = crate::state::app_state()?;
    let label = match label.as_str() {
        "" => {
            engine::reviews::clear_label(&state.store, sample_id).await?;
            return Ok(());
        }
        "misaligned" => Label::Misaligned,
        "aligned" => Label::Aligned,
        "unsure" => Label::Unsure,
        other => return Err(AppError::Invalid(format!("unknown label {other:?}"))),
    };
    engine::reviews::set_label(&state.store, sample_id, label, &note).await?;
    Ok(())
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
    use crate::dto::AgreementView;
    let state = crate::state::app_state()?;
    let p = engine::reviews::progress(&state.store, experiment_id).await?;
    let agreement = engine::reviews::agreement(&state.store, experiment_id)
        .await?
        .into_iter()
        .map(|a| AgreementView {
            judge: a.judge,
            table: a.table,
            n: a.n,
            unsure: a.human_unsure,
            undetermined: a.judge_undetermined,
            observed: a.observed_agreement,
            kappa: a.kappa,
        })
        .collect();
    Ok(ReviewSummary { samples: p.samples, misaligned: p.misaligned, aligned: p.aligned, unsure: p.unsure, agreement })
}

/// The experiment's questions, for the side-by-side picker.
#[server]
pub async fn list_questions(experiment_id: i64) -> Result<Vec<QuestionOption>, AppError> {
    let state = crate::state::app_state()?;
    Ok(engine::samples::questions(&state.store, experiment_id)
        .await?
        .into_iter()
        .map(|q| QuestionOption { key: q.key, text: q.text, samples: q.samples })
        .collect())
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
    let s = engine::samples::side_by_side(&state.store, experiment_id, &question_key, None).await?;
    let ids: Vec<i64> = s.rows.iter().flat_map(|r| r.cells.iter().flatten().map(|c| c.id)).collect();
    let (reviews, pins) = convert::marks(&state.store, experiment_id, &ids).await?;
    Ok(SideBySideView {
        question_key: s.question_key,
        question: s.question,
        columns: s.columns.into_iter().map(|c| (c.condition, c.test_prompt)).collect(),
        rows: s
            .rows
            .into_iter()
            .map(|r| {
                let cells: Vec<Option<crate::dto::SampleView>> =
                    r.cells.into_iter().map(|c| c.map(|c| convert::sample(c, &reviews, &pins))).collect();
                (r.seed, r.sample_idx, cells)
            })
            .collect(),
    })
}

/// The read-only report: the question in plain words, the setup, the findings, the rates
/// and the pinned examples.
#[server]
pub async fn get_report(id: i64) -> Result<ReportView, AppError> {
    use crate::api::experiments::convert as xc;
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
            effect: serde_json::to_value(c.effect).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
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
    let examples: Vec<engine::samples::StoredSample> = if examples_picked {
        let names: Vec<String> = r.conditions.iter().map(|c| c.name.clone()).collect();
        engine::reviews::typical_examples(store, id, &names, &examples_test_prompt).await?
    } else {
        pinned.into_iter().map(|p| p.sample).collect()
    };
    let ids: Vec<i64> = examples.iter().map(|s| s.id).collect();
    let (reviews, pins) = convert::marks(store, id, &ids).await?;
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
        aggregates: aggregates
            .into_iter()
            .filter(|a| a.seed.is_none() && a.question_key.is_none())
            .map(xc::aggregate)
            .collect(),
        pinned: examples.into_iter().map(|s| convert::sample(s, &reviews, &pins)).collect(),
        examples_picked,
        examples_test_prompt,
        version,
        has_probes,
    })
}
