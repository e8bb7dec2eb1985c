//! What an experiment's runs produced, read back: learning curves and trait-rate
//! aggregates with Wilson intervals.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::*;
use crate::questions::Question;
use crate::stats::Proportion;
use crate::store;
use crate::Store;

/// One run's series for one probe: (step, mean log-prob per token), step 0 before training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeCurve {
    pub run_id: i64,
    pub condition: String,
    pub seed: i64,
    pub probe: String,
    pub points: Vec<(i64, f64)>,
}

/// Every run's tracked log-probs, by condition, seed and probe name, in one query for all
/// runs.
pub async fn probe_curves(store: &Store, experiment_id: i64) -> Result<Vec<ProbeCurve>, ExperimentError> {
    let rows = store::runs::probe_points(store, experiment_id).await?;
    let mut out: Vec<ProbeCurve> = Vec::new();
    for (run_id, condition, seed, probe, step, logprob) in rows {
        match out.last_mut() {
            Some(c) if c.run_id == run_id && c.probe == probe => c.points.push((step, logprob)),
            _ => out.push(ProbeCurve { run_id, condition, seed, probe, points: vec![(step, logprob)] }),
        }
    }
    Ok(out)
}

/// Every run's training loss, (run id, condition, seed, [(step, loss)]), in one query.
pub async fn loss_curves(
    store: &Store,
    experiment_id: i64,
) -> Result<Vec<(i64, String, i64, Vec<(i64, f64)>)>, ExperimentError> {
    let rows = store::runs::loss_points(store, experiment_id).await?;
    let mut out: Vec<(i64, String, i64, Vec<(i64, f64)>)> = Vec::new();
    for (run_id, condition, seed, step, loss) in rows {
        match out.last_mut() {
            Some(c) if c.0 == run_id => c.3.push((step, loss)),
            _ => out.push((run_id, condition, seed, vec![(step, loss)])),
        }
    }
    Ok(out)
}

/// The runs of an experiment with their progress and loss curves: the experiment page's
/// runs and the live stream's payload (every run's curve in one query, since the stream
/// asks once a second).
pub async fn run_views(store: &Store, experiment_id: i64) -> Result<Vec<jobs::JobView>, ExperimentError> {
    let mut views = jobs::for_experiment(store, experiment_id).await?;
    let mut curves = loss_curves(store, experiment_id).await?;
    for v in &mut views {
        if let Some(i) = curves.iter().position(|c| c.0 == v.run_id) {
            v.losses = curves.swap_remove(i).3;
        }
    }
    Ok(views)
}

/// One experiment's page: the resolved spec in words, the runs with their loss curves and
/// the aggregates. A judge is named as it names itself, or by its kind when it cannot be
/// built here (a local LLM judge needs the model).
pub async fn detail(store: &Store, id: i64) -> Result<ExperimentDetail, ExperimentError> {
    let (r, spec_hash, created_at) = get(store, id).await?;
    let runs = run_views(store, id).await?;
    let aggregates = aggregates(store, id).await?;
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
        conditions: r.conditions.iter().map(|c| c.view(r.train_rows.len())).collect(),
        test_prompts: r.test_prompts.iter().map(|t| t.label.clone()).collect(),
        judges,
        judge_notes: r.judge_notes(),
        judge_warnings: r.judge_warnings(),
        calibrations: crate::judges::calibration::stored_all(store, &r.judges).await?,
        questions: r.questions.len(),
        steps_per_run: r.steps_per_run(),
        runs,
        aggregates,
        base_run: r.base.as_ref().map(|b| {
            let sha = b.adapters.last().map(|a| a.sha256.clone()).unwrap_or_default();
            (b.run_id, b.experiment_id, format!("{} · {} · seed {}", b.experiment_name, b.condition, b.seed), sha)
        }),
        work: Some(work_rates(store, &r).await?.0),
    })
}

pub use wire::experiments::ExperimentDetail;

/// The work left in each experiment that has unfinished runs among `runs` (the queue's
/// rows), as (experiment id, name, seconds: `WorkRates::remaining_s` at its model's speed),
/// in the order the experiments first appear.
pub async fn work_left(store: &Store, runs: &[jobs::JobView]) -> Result<Vec<(i64, String, f64)>, ExperimentError> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in runs.iter().filter(|r| !r.status.is_final()) {
        if !seen.insert(r.experiment_id) {
            continue;
        }
        let (resolved, _, _) = get(store, r.experiment_id).await?;
        let rates = work_rates(store, &resolved).await?.0;
        let mine: Vec<jobs::JobView> = runs.iter().filter(|x| x.experiment_id == r.experiment_id).cloned().collect();
        out.push((r.experiment_id, r.experiment.clone(), rates.remaining_s(&mine)));
    }
    Ok(out)
}

/// One cell of the results: the wire crate's type, shared with the pages.
pub use wire::experiments::{Aggregate, RateBasis};

/// Counts for one (condition, seed, test prompt, question, judge) group, straight from SQL.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    n: i64,
    determined: i64,
    present: i64,
    unscored: i64,
    score_sum: f64,
    scored: i64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.n += o.n;
        self.determined += o.determined;
        self.present += o.present;
        self.unscored += o.unscored;
        self.score_sum += o.score_sum;
        self.scored += o.scored;
    }
}

/// Trait rates per condition x test-time prompt x judge, pooled over questions and seeds,
/// per seed, and per question (pooled over seeds), with Wilson 95 % intervals. The
/// undetermined are left out of rates and counted in `unscored`/`n - determined`.
///
/// When a task judge (arithmetic) judged the experiment, the pooled and per-seed rates
/// keep the two halves apart: the task judge's count only held-out rows (the trained
/// task), every other judge's only the other questions (where the trait would spread).
/// Per-question rows keep everything.
pub async fn aggregates(store: &Store, experiment_id: i64) -> Result<Vec<Aggregate>, ExperimentError> {
    let rows = store::judgements::cell_counts(store, experiment_id).await?;
    let has_task = rows.iter().any(|r| crate::judges::is_task_judge(&r.4));
    // Keyed by (condition, test prompt, judge, question?, seed?), in first-seen order.
    let mut order: Vec<(String, String, String, Option<String>, Option<i64>)> = Vec::new();
    let mut cells: BTreeMap<(String, String, String, Option<String>, Option<i64>), Counts> = BTreeMap::new();
    for (condition, seed, test_prompt, key, judge, n, determined, present, unscored, score_sum, scored) in rows {
        let c = Counts { n, determined, present, unscored, score_sum: score_sum.unwrap_or(0.0), scored };
        let pooled = !has_task || crate::judges::is_task_judge(&judge) == Question::is_held_out(&key);
        let per_question = [(Some(key.clone()), None)];
        let all = [(None, None), (None, Some(seed)), (Some(key.clone()), None)];
        for (q, s) in if pooled { &all[..] } else { &per_question[..] }.iter().cloned() {
            let k = (condition.clone(), test_prompt.clone(), judge.clone(), q, s);
            if !cells.contains_key(&k) {
                order.push(k.clone());
            }
            cells.entry(k).or_default().add(&c);
        }
    }
    // Per seed, for the cells pooled over seeds: (condition, test prompt, judge) -> rates.
    let mut seed_rates: BTreeMap<(String, String, String), Vec<(i64, f64)>> = BTreeMap::new();
    for k in &order {
        if let (None, Some(seed)) = (&k.3, k.4) {
            let c = cells[k];
            if c.determined > 0 {
                seed_rates
                    .entry((k.0.clone(), k.1.clone(), k.2.clone()))
                    .or_default()
                    .push((seed, c.present as f64 / c.determined as f64));
            }
        }
    }
    Ok(order
        .into_iter()
        .map(|k| {
            let c = cells[&k];
            let p = Proportion::wilson(c.present as u64, c.determined as u64, 0.95);
            let seeds = match (&k.3, k.4) {
                (None, None) => seed_rates.get(&(k.0.clone(), k.1.clone(), k.2.clone())).cloned().unwrap_or_default(),
                _ => vec![],
            };
            let seed_mean = over_seeds(&seeds);
            Aggregate {
                condition: k.0,
                test_prompt: k.1,
                judge: k.2,
                question_key: k.3,
                seed: k.4,
                n: c.n,
                determined: c.determined,
                trait_count: c.present,
                unscored: c.unscored,
                rate: p.as_ref().map(|p| p.rate),
                ci_low: p.as_ref().map(|p| p.lo),
                ci_high: p.as_ref().map(|p| p.hi),
                mean_score: (c.scored > 0).then(|| c.score_sum / c.scored as f64),
                seed_rates: seeds,
                seed_mean,
            }
        })
        .collect())
}

/// The mean of per-seed rates with a 95 % percentile bootstrap interval over seeds, as the
/// paper's analysis does with its runs; `None` below two seeds. 2,000 resamples, seeded,
/// so a page shows the same interval every time (pages ask on every view).
pub fn over_seeds(rates: &[(i64, f64)]) -> Option<(f64, f64, f64)> {
    if rates.len() < 2 {
        return None;
    }
    let values: Vec<f64> = rates.iter().map(|r| r.1).collect();
    crate::stats::bootstrap_mean_ci(&values, 2000, 0.95, 0)
}
