//! What an experiment will do before it is launched: the matrix, counts and a time
//! estimate from the throughput earlier runs measured.

use super::*;
use crate::judges::JudgeSpec;
use crate::store;
use crate::Store;

/// What the launch form shows before the user commits: the wire crate's types.
pub use wire::experiments::{Plan, PlanRow, WorkRates};

/// Default costs when nothing was measured yet: a 135M-model LoRA step of 8 short rows and
/// sampling with a merged adapter at batch 16-40, on a 2-core VM (the demo measured
/// 147-162 tokens/s; see BENCHMARKS.md), rounded down.
const DEFAULT_STEP_S: f64 = 10.0;
const DEFAULT_SAMPLE_TOKENS_PER_S: f64 = 120.0;

pub async fn plan(store: &Store, resolved: &Resolved) -> Result<Plan, ExperimentError> {
    let steps = resolved.steps_per_run();
    let per_condition = resolved.samples_per_condition();
    let seeds = &resolved.spec.seeds;
    let matrix: Vec<PlanRow> = resolved
        .conditions
        .iter()
        .zip(&per_condition)
        .map(|(c, n)| PlanRow {
            condition: c.view(resolved.train_rows.len()),
            seeds: seeds.clone(),
            test_prompts: resolved.test_prompts_for(c).iter().map(|t| t.label.clone()).collect(),
            samples_per_run: *n,
        })
        .collect();
    let samples: usize = per_condition.iter().sum::<usize>() * seeds.len();
    let runs = resolved.conditions.len() * seeds.len();

    let (rates, mut estimate_basis) = work_rates(store, resolved).await?;
    let estimate_s = runs as f64 * steps as f64 * rates.step_s + samples as f64 * rates.sample_s;
    // Seeds multiply the work: say what one costs, so a first look can drop the others.
    if seeds.len() > 1 {
        estimate_basis.push_str(&format!(
            "; {} seeds, each about {} of it (the report's intervals are over seeds from two on)",
            seeds.len(),
            wire::fmt_duration(estimate_s / seeds.len() as f64)
        ));
    }
    Ok(Plan {
        runs,
        steps_per_run: steps,
        questions: resolved.questions.len(),
        samples,
        matrix,
        estimate_s,
        estimate_basis,
        judge_notes: resolved.judge_notes(),
        judge_warnings: resolved.judge_warnings().into_iter().chain(judge_fit(store, resolved).await?).collect(),
        calibrations: crate::judges::calibration::stored_all(store, &resolved.judges).await?,
    })
}

/// The speeds the plan and the work-left estimates use, and what they rest on in words:
/// throughput measured on this machine for this model (seconds per step at a similar batch
/// size, sampled tokens per second), or conservative defaults.
pub async fn work_rates(store: &Store, resolved: &Resolved) -> Result<(WorkRates, String), ExperimentError> {
    let measured = store::runs::measured_speed(store, resolved.model.id).await?;
    let bs_ratio = resolved.spec.training.batch_size as f64 * resolved.spec.training.grad_accum as f64 / 8.0;
    let (step_s, basis_train) = match measured.0 {
        Some(s) => (s, "measured training speed"),
        None => (DEFAULT_STEP_S * bs_ratio, "default training speed"),
    };
    let (tok_s, basis_sample) = match measured.1 {
        Some(t) => (t, "measured sampling speed"),
        None => (DEFAULT_SAMPLE_TOKENS_PER_S, "default sampling speed"),
    };
    // Answers stop early on average; 60 % of max_tokens is a fair guess for short chats.
    let sample_s = resolved.spec.evaluation.max_tokens as f64 * 0.6 / tok_s;
    let rates = WorkRates {
        step_s,
        sample_s,
        steps_per_run: resolved.steps_per_run() as i64,
        samples_per_run: resolved
            .conditions
            .iter()
            .map(|c| c.name.clone())
            .zip(resolved.samples_per_condition())
            .collect(),
    };
    Ok((rates, format!("{basis_train} {step_s:.1} s/step, {basis_sample} {tok_s:.0} tokens/s")))
}

/// How many training answers `judge_fit` reads: enough to tell "none" from "half".
const FIT_ROWS: i64 = 200;

/// Warnings for rule judges (language, capitals, pattern) that find their trait in under a
/// fifth of the training answers: the data does not teach that trait, so its rate has
/// nothing for an inoculation prompt to suppress (the Spanish judge on aesthetic
/// preferences, say). The model judges are not run here: they would take minutes.
async fn judge_fit(store: &Store, resolved: &Resolved) -> Result<Vec<String>, ExperimentError> {
    let rule =
        |j: &&JudgeSpec| matches!(j, JudgeSpec::Language { .. } | JudgeSpec::Caps { .. } | JudgeSpec::Pattern { .. });
    let judges: Vec<JudgeSpec> = resolved.judges.iter().filter(rule).cloned().collect();
    if judges.is_empty() {
        return Ok(vec![]);
    }
    let rows = store::datasets::rows_range(store, resolved.dataset.id, 0, FIT_ROWS).await?;
    let answers: Vec<String> = rows
        .iter()
        .filter_map(|(_, messages, _, _)| {
            let messages: Vec<crate::datasets::Message> = serde_json::from_str(messages).ok()?;
            messages.into_iter().rev().find(|m| m.role == crate::datasets::Role::Assistant).map(|m| m.content)
        })
        .collect();
    if answers.is_empty() {
        return Ok(vec![]);
    }
    let dataset = resolved.dataset.name.clone();
    // Language identification over 200 answers is CPU work (tens of ms, more on a first
    // load of the language models): off the async threads that serve pages.
    let warnings = tokio::task::spawn_blocking(move || {
        let mut warnings = Vec::new();
        for spec in judges {
            let Ok(judge) = spec.build(None) else { continue };
            let found =
                answers.iter().filter(|a| judge.judge("", a).is_ok_and(|j| j.trait_present == Some(true))).count();
            if found * 5 < answers.len() {
                warnings.push(format!(
                    "The {} judge finds its trait in {found} of the first {} training answers of “{dataset}”: the \
                     data does not teach it, so its rate cannot show an inoculation prompt suppressing it. Choose \
                     the judges for the trait this dataset teaches.",
                    judge.name(),
                    answers.len(),
                ));
            }
        }
        warnings
    })
    .await
    .map_err(|e| invalid(format!("checking the judges against the data failed: {e}")))?;
    Ok(warnings)
}

/// What a launch puts through the machines: the samples it draws, and the training tokens
/// it processes (an upper bound: every row padded to `max_seq_len`, as the budget a
/// server's operator sets is about the worst case).
pub fn totals(resolved: &Resolved) -> (usize, u64) {
    let seeds = resolved.spec.seeds.len();
    let samples =
        resolved.samples_per_condition().iter().fold(0usize, |a, n| a.saturating_add(*n)).saturating_mul(seeds);
    let t = &resolved.spec.training;
    let runs = (resolved.conditions.len() * seeds) as u64;
    let per_step = (t.batch_size as u64).saturating_mul(t.grad_accum as u64).saturating_mul(t.max_seq_len as u64);
    (samples, runs.saturating_mul(resolved.steps_per_run() as u64).saturating_mul(per_step))
}

/// Refuses a launch past a server's totals (`serve --max-launch-samples`,
/// `--max-launch-train-tokens`), with the numbers.
pub fn check_totals(resolved: &Resolved, max_samples: usize, max_train_tokens: u64) -> Result<(), ExperimentError> {
    let (samples, tokens) = totals(resolved);
    if samples > max_samples {
        return Err(invalid(format!(
            "this launch would draw {samples} samples; this server allows at most {max_samples} per launch \
             (its operator sets --max-launch-samples)"
        )));
    }
    if tokens > max_train_tokens {
        return Err(invalid(format!(
            "this launch would train on up to {tokens} tokens; this server allows at most {max_train_tokens} \
             per launch (its operator sets --max-launch-train-tokens)"
        )));
    }
    Ok(())
}
