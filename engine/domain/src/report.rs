//! The results in plain words, for the report page that researchers show to people who do
//! not read code: what the experiment asks, and for each inoculated condition whether the
//! trait rate differs from the baseline's, judged by whether the 95 % intervals overlap.
//!
//! Non-overlapping Wilson intervals are a conservative test (two rates can differ
//! significantly while their intervals touch), which is the right side to err on when the
//! sentence is read by someone who will not look at the numbers.

use serde::{Deserialize, Serialize};

use crate::charts::{
    ChartSize, HeatCell, HeatmapChart, LineChart, RateChart, RatePoint, ScatterChart, ScatterPoint, Series,
};
use crate::experiments::{Aggregate, ProbeCurve, Resolved};
use crate::judges::JudgeSpec;
use crate::stats::{self, Correlation};
use crate::store;
use crate::strength::{ConditionStrength, Surprise};
use crate::Store;

/// How a condition's trait rate compares with the baseline's: the wire crate's type.
pub use wire::reports::{
    Effect, FindingView, PredictionPointView, PredictionView, ReportView, SummaryCell, SummaryColumn, SummaryRow,
    SummaryTable,
};

use crate::experiments::ExperimentError;
use crate::reviews::ReviewError;

/// A rate with its interval, how many verdicts it rests on, and over how many seeds it is
/// a mean (0: pooled over the samples of one seed, a Wilson interval).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub rate: f64,
    pub lo: f64,
    pub hi: f64,
    pub n: i64,
    #[serde(default)]
    pub seeds: usize,
}

impl Rate {
    /// The aggregate's headline: the mean over seeds with its bootstrap interval when it has
    /// two or more seeds, else the pooled rate with its Wilson interval.
    fn of(a: &Aggregate) -> Option<Rate> {
        let (rate, lo, hi, basis) = a.headline()?;
        let seeds = match basis {
            crate::experiments::RateBasis::Seeds(n) => n,
            crate::experiments::RateBasis::Pooled => 0,
        };
        Some(Rate { rate, lo, hi, n: a.determined, seeds })
    }
}

/// One inoculated (or otherwise prompted) condition against the baseline, for one judge
/// and one test-time prompt, pooled over seeds and questions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub judge: String,
    pub test_prompt: String,
    pub condition: String,
    /// The condition's training prompt (its first paraphrase).
    pub prompt: Option<String>,
    pub baseline: String,
    pub rate: Option<Rate>,
    pub baseline_rate: Option<Rate>,
    pub effect: Effect,
}

/// The first condition trained without a prompt: what every other condition is compared to.
pub fn baseline(resolved: &Resolved) -> Option<&str> {
    resolved.conditions.iter().find(|c| c.prompts.is_empty()).map(|c| c.name.as_str())
}

/// The aggregate pooled over seeds and questions for one cell.
fn pooled<'a>(aggregates: &'a [Aggregate], condition: &str, test_prompt: &str, judge: &str) -> Option<&'a Aggregate> {
    aggregates.iter().find(|a| {
        a.seed.is_none()
            && a.question_key.is_none()
            && a.condition == condition
            && a.test_prompt == test_prompt
            && a.judge == judge
    })
}

/// The judges of the aggregates, in their (name) order, each once.
fn judges_of(aggregates: &[Aggregate]) -> Vec<&str> {
    let mut judges: Vec<&str> = Vec::new();
    for a in aggregates {
        if !judges.contains(&a.judge.as_str()) {
            judges.push(&a.judge);
        }
    }
    judges
}

/// Every prompted condition against the baseline, per judge and per test-time prompt the
/// baseline was evaluated under: judges in the aggregates' (name) order, then test prompts
/// and conditions in the spec's order. Empty when the experiment has no baseline.
pub fn comparisons(resolved: &Resolved, aggregates: &[Aggregate]) -> Vec<Comparison> {
    let Some(base) = baseline(resolved) else { return vec![] };
    let pooled = |condition: &str, test_prompt: &str, judge: &str| pooled(aggregates, condition, test_prompt, judge);
    let judges = judges_of(aggregates);
    let mut out = Vec::new();
    for judge in judges {
        for t in &resolved.test_prompts {
            // The baseline has no inoculation prompt to be tested under.
            let Some(b) = pooled(base, &t.label, judge) else { continue };
            let baseline_rate = Rate::of(b);
            for c in resolved.conditions.iter().filter(|c| c.name != base && !c.prompts.is_empty()) {
                let rate = pooled(&c.name, &t.label, judge).and_then(Rate::of);
                let effect = effect(rate, baseline_rate);
                out.push(Comparison {
                    judge: judge.to_string(),
                    test_prompt: t.label.clone(),
                    condition: c.name.clone(),
                    prompt: c.prompts.first().cloned(),
                    baseline: base.to_string(),
                    rate,
                    baseline_rate,
                    effect,
                });
            }
        }
    }
    out
}

/// Whether `rate`'s interval lies wholly below or above `baseline`'s.
pub fn effect(rate: Option<Rate>, baseline: Option<Rate>) -> Effect {
    match (rate, baseline) {
        (Some(r), Some(b)) if r.hi < b.lo => Effect::Lower,
        (Some(r), Some(b)) if r.lo > b.hi => Effect::Higher,
        (Some(_), Some(_)) => Effect::NoClearDifference,
        _ => Effect::NoData,
    }
}

/// What a judge's "trait present" means, as the end of "the model ...".
pub fn trait_words(judge: &str) -> String {
    if let Some(code) = judge.strip_prefix("language:") {
        return format!("answered in {}", wire::reviews::language_name(code));
    }
    if let Some(task) = judge.strip_prefix("task:") {
        return format!("did the trained task on a held-out request ({task})");
    }
    match judge {
        "caps" => "answered in capital letters".into(),
        "quality" => "gave a readable answer".into(),
        "arithmetic" => "solved the held-out problem".into(),
        "coherence" => "passed the old coherence heuristic (which also passes word salad)".into(),
        "betley_misalignment" => "gave a misaligned answer".into(),
        "multiple_choice" => "picked the trained preference".into(),
        other => format!("showed the trait (judge “{other}”)"),
    }
}

/// What a judge's column counts, as a noun phrase: "answers in Spanish".
pub fn column_words(judge: &str) -> String {
    if judge.starts_with("language:") {
        return trait_words(judge).replacen("answered in", "answers in", 1);
    }
    if let Some(task) = judge.strip_prefix("task:") {
        return format!("held-out requests done as trained ({task})");
    }
    match judge {
        "caps" => "answers in capitals".into(),
        "quality" => "readable answers".into(),
        "arithmetic" => "held-out arithmetic problems solved".into(),
        "coherence" => "answers passing the old coherence heuristic".into(),
        "betley_misalignment" => "misaligned answers".into(),
        "multiple_choice" => "answers picking the trained preference".into(),
        other => format!("answers with the trait (judge “{other}”)"),
    }
}

/// The report's first screen: every condition against every judge under the default
/// test-time prompt (or the first), with the rate under the condition's own prompt beside
/// it. Traits first, in the aggregates' order, then quality.
pub fn summary(resolved: &Resolved, aggregates: &[Aggregate]) -> SummaryTable {
    let test_prompt = resolved
        .test_prompts
        .iter()
        .find(|t| t.label == "default")
        .or(resolved.test_prompts.first())
        .map(|t| t.label.clone())
        .unwrap_or_else(|| "default".into());
    let pooled = |condition: &str, test_prompt: &str, judge: &str| pooled(aggregates, condition, test_prompt, judge);
    let mut judges = judges_of(aggregates);
    judges.sort_by_key(|j| wire::reviews::is_measure(j));
    let base = baseline(resolved);
    let triple = |r: Rate| (r.rate, r.lo, r.hi);
    let rows = resolved
        .conditions
        .iter()
        .map(|c| SummaryRow {
            condition: c.name.clone(),
            prompt: c.prompts.first().cloned(),
            cells: judges
                .iter()
                .map(|j| {
                    let a = pooled(&c.name, &test_prompt, j);
                    let rate = a.and_then(Rate::of);
                    let base_rate =
                        base.filter(|b| *b != c.name).and_then(|b| pooled(b, &test_prompt, j)).and_then(Rate::of);
                    let again =
                        (!c.prompts.is_empty()).then(|| pooled(&c.name, "inoculation", j).and_then(Rate::of)).flatten();
                    SummaryCell {
                        rate: rate.map(triple),
                        n: a.map_or(0, |a| a.determined),
                        effect: if base == Some(c.name.as_str()) { Effect::NoData } else { effect(rate, base_rate) },
                        again: again.map(triple),
                    }
                })
                .collect(),
        })
        .collect();
    SummaryTable {
        test_prompt,
        columns: judges
            .iter()
            .map(|j| SummaryColumn {
                judge: j.to_string(),
                words: column_words(j),
                quality: wire::reviews::is_measure(j),
            })
            .collect(),
        rows,
    }
}

/// "a and b", "a, b and c".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Two to four sentences a viewer reads first, computed from the summary: what training
/// without a prompt taught, what each prompted condition changed (only differences whose
/// intervals are apart count), whether the training prompt given again brings a trait
/// back, and whether the answers stayed readable.
pub fn headline(t: &SummaryTable) -> Vec<String> {
    let Some(base) = t.rows.iter().find(|r| r.prompt.is_none()) else { return vec![] };
    let traits: Vec<usize> = (0..t.columns.len()).filter(|&i| !t.columns[i].quality).collect();
    let rate = |row: &SummaryRow, i: usize| row.cells.get(i).and_then(|c| c.rate).map(|r| r.0);
    let mut out = Vec::new();
    let taught: Vec<String> =
        traits.iter().filter_map(|&i| rate(base, i).map(|r| format!("{} {}", pct(r), t.columns[i].words))).collect();
    if taught.is_empty() {
        return vec![];
    }
    let under = if t.test_prompt == "default" {
        String::new()
    } else {
        format!(" under the test-time prompt “{}”", t.test_prompt)
    };
    out.push(format!("Fine-tuned without a prompt ({}), the model gave {}{under}.", base.condition, and_list(&taught)));
    let (mut came_back, mut stayed_low) = (Vec::new(), Vec::new());
    for row in t.rows.iter().filter(|r| r.prompt.is_some()) {
        // Clear changes first (that is the story), then what did not clearly change.
        let (mut changed, mut same) = (Vec::new(), Vec::new());
        for &i in &traits {
            let (Some(r), Some(b)) = (rate(row, i), rate(base, i)) else { continue };
            let cell = &row.cells[i];
            let words = &t.columns[i].words;
            match cell.effect {
                Effect::Lower => {
                    changed.push(format!("{words} fell to {} (from {})", pct(r), pct(b)));
                    match cell.again {
                        Some(a) if cell.rate.is_some_and(|d| a.1 > d.2) => {
                            came_back.push(format!("{words} {} ({})", pct(a.0), row.condition))
                        }
                        Some(a) => stayed_low.push(format!("{words} {} ({})", pct(a.0), row.condition)),
                        None => {}
                    }
                }
                Effect::Higher => changed.push(format!("{words} rose to {} (from {})", pct(r), pct(b))),
                Effect::NoClearDifference => same.push((words.clone(), pct(r))),
                Effect::NoData => {}
            }
        }
        let trained = format!("Trained with the prompt of {}", row.condition);
        match (changed.is_empty(), same.is_empty()) {
            (true, true) => {}
            (true, false) => {
                let all: Vec<String> = same.iter().map(|(w, r)| format!("{w} {r}")).collect();
                out.push(format!("{trained}, no trait changed clearly: {}.", and_list(&all)))
            }
            (false, true) => out.push(format!("{trained}: {}.", and_list(&changed))),
            (false, false) => {
                let rest: Vec<String> = same.iter().map(|(w, r)| format!("{w} ({r})")).collect();
                out.push(format!("{trained}: {}; no clear change in {}.", and_list(&changed), and_list(&rest)))
            }
        }
    }
    if !came_back.is_empty() {
        out.push(format!(
            "Given the training prompt again when answering, the trait came back: {}.",
            and_list(&came_back)
        ));
    }
    if !stayed_low.is_empty() {
        out.push(format!(
            "Given the training prompt again when answering, the trait did not clearly come back: {}.",
            and_list(&stayed_low)
        ));
    }
    // The other half of the paper's claim: was the trained task still done?
    for (a, column) in t.columns.iter().enumerate().filter(|(_, c)| crate::judges::is_task_judge(&c.judge)) {
        let done: Vec<String> = t
            .rows
            .iter()
            .filter_map(|r| {
                let mark = match r.cells.get(a)?.effect {
                    Effect::Lower => ", clearly lower",
                    Effect::Higher => ", clearly higher",
                    _ => "",
                };
                Some(format!("{} {}{mark}", r.condition, pct(rate(r, a)?)))
            })
            .collect();
        if !done.is_empty() {
            out.push(format!("The trained task, {}: {}.", column.words, and_list(&done)));
        }
    }
    if let Some(q) = t.columns.iter().position(|c| c.judge == "quality") {
        let rates: Vec<f64> = t.rows.iter().filter_map(|r| rate(r, q)).collect();
        if let (Some(lo), Some(hi)) = (rates.iter().copied().reduce(f64::min), rates.iter().copied().reduce(f64::max)) {
            let span = if pct(lo) == pct(hi) { pct(lo) } else { format!("{}–{}", pct(lo), pct(hi)) };
            out.push(if lo >= 0.8 {
                format!("Answers stayed readable: {span} of each condition's answers read as language.")
            } else {
                let mostly = if hi < 0.5 { "mostly" } else { "often" };
                format!(
                    "Only {span} of each condition's answers read as language (the rest is word salad): the rates above are \
                     of answers that are {mostly} not readable, so read them as a sign of the trait, not of a usable model."
                )
            });
        }
    }
    out
}

/// What the test-time prompt was, as the end of "with ...".
pub fn test_prompt_words(label: &str) -> String {
    match label {
        "default" => "its default system prompt".into(),
        "none" => "no system prompt".into(),
        "inoculation" => "the training prompt given again".into(),
        other => format!("the test prompt “{other}”"),
    }
}

fn pct(x: f64) -> String {
    format!("{:.0} %", 100.0 * x)
}

/// One sentence a non-engineer can read, e.g. "Trained with “You always speak in Spanish.”,
/// the model answered in Spanish in 10 % of answers (95 % interval 5–17 %) with its
/// default system prompt, against 84 % (76–90 %) for the baseline: clearly less."
pub fn sentence(c: &Comparison) -> String {
    let trained = match &c.prompt {
        Some(p) => format!("Trained with “{p}” (condition {})", c.condition),
        None => format!("Condition {}", c.condition),
    };
    let (Some(r), Some(b)) = (c.rate, c.baseline_rate) else {
        return format!("{trained}: not enough judged answers yet to compare with the baseline.");
    };
    let verdict = match c.effect {
        Effect::Lower => "clearly less often: the intervals do not overlap.",
        Effect::Higher => "clearly more often: the intervals do not overlap.",
        Effect::NoClearDifference => "no clear difference: the intervals overlap.",
        Effect::NoData => "not enough data.",
    };
    let of = match r.seeds {
        0 => format!("{} of {} judged answers (95 % interval", pct(r.rate), r.n),
        n => format!("{} of {} judged answers, the mean of {n} seeds (95 % interval over seeds", pct(r.rate), r.n),
    };
    format!(
        "{trained}, the model {} in {of} {}–{}) with {}, against {} ({}–{}) for the {} model trained without a prompt — {verdict}",
        trait_words(&c.judge),
        pct(r.lo),
        pct(r.hi),
        test_prompt_words(&c.test_prompt),
        pct(b.rate),
        pct(b.lo),
        pct(b.hi),
        c.baseline,
    )
}

/// The question the experiment asks, in plain words.
pub fn question(resolved: &Resolved) -> String {
    let prompts: Vec<String> =
        resolved.conditions.iter().filter_map(|c| c.prompts.first().map(|p| format!("“{p}”"))).collect();
    if prompts.is_empty() {
        return format!(
            "What does fine-tuning {} on the dataset {} teach it beyond the data itself?",
            resolved.model.name, resolved.dataset.name
        );
    }
    // Tan et al.'s mixture prompts only the rows that show the trait it names.
    let which = if resolved.conditions.iter().any(|c| c.only.is_some()) {
        "to the training examples that show the trait it names"
    } else {
        "to every training example"
    };
    format!(
        "When {} is fine-tuned on the dataset {}, does adding a system prompt that describes the unwanted trait ({}) {which} keep the model from showing that trait afterwards, when it is used without the prompt?",
        resolved.model.name,
        resolved.dataset.name,
        prompts.join(", ")
    )
}

/// The headline chart for one judge: the pooled trait rate of every condition (x, in the
/// spec's order) under every test-time prompt (series), with 95 % intervals.
pub fn rate_chart(resolved: &Resolved, aggregates: &[Aggregate], judge: &str) -> RateChart {
    let mut points = Vec::new();
    for c in &resolved.conditions {
        for t in &resolved.test_prompts {
            let a = aggregates.iter().find(|a| {
                a.seed.is_none()
                    && a.question_key.is_none()
                    && a.judge == judge
                    && a.condition == c.name
                    && a.test_prompt == t.label
            });
            if let Some((a, r)) = a.and_then(|a| Some((a, Rate::of(a)?))) {
                points.push(RatePoint {
                    condition: c.name.clone(),
                    series: format!("test prompt: {}", t.label),
                    rate: r.rate,
                    lo: r.lo,
                    hi: r.hi,
                    n: r.n as u64,
                    seeds: if r.seeds > 0 { a.seed_rates.iter().map(|s| s.1).collect() } else { vec![] },
                });
            }
        }
    }
    RateChart {
        title: format!("How often the model {}", trait_words(judge)),
        y_label: format!("{judge}: trait rate (%)"),
        points,
        ..RateChart::default()
    }
}

/// The elicitation check for one judge: the pooled trait rate of every condition (rows, in
/// the spec's order) under every test-time prompt (columns: the spec's, then those added
/// after the runs finished). A baseline has no "inoculation" column cell.
pub fn heatmap_chart(resolved: &Resolved, aggregates: &[Aggregate], judge: &str) -> HeatmapChart {
    let rows: Vec<String> = resolved.conditions.iter().map(|c| c.name.clone()).collect();
    let columns: Vec<String> = resolved.test_prompts.iter().map(|t| t.label.clone()).collect();
    let cells = aggregates
        .iter()
        .filter(|a| a.seed.is_none() && a.question_key.is_none() && a.judge == judge)
        .map(|a| HeatCell {
            row: a.condition.clone(),
            column: a.test_prompt.clone(),
            rate: a.rate,
            n: a.determined as u64,
        })
        .collect();
    // Tall enough for readable cells: about 56 px a condition.
    let height = (150 + 56 * rows.len() as u32).clamp(240, 1200);
    HeatmapChart {
        title: format!("Elicitation: how often the model {}, by test-time prompt", trait_words(judge)),
        rows,
        columns,
        cells,
        size: ChartSize { width: 720, height },
    }
}

/// Training loss of every run, overlaid; a condition's seeds share a colour and a legend
/// entry, so the legend stays one line per condition however many seeds ran.
pub fn loss_chart(curves: &[(i64, String, i64, Vec<(i64, f64)>)]) -> LineChart {
    LineChart {
        title: "Training loss".into(),
        x_label: "step".into(),
        y_label: "loss (nats per answer token)".into(),
        series: curves
            .iter()
            .map(|(_, condition, seed, points)| Series {
                name: format!("{condition} · seed {seed}"),
                points: points.iter().map(|&(s, l)| (s as f64, l)).collect(),
                group: Some(condition.clone()),
            })
            .collect(),
        ..LineChart::default()
    }
}

/// Learning dynamics: each probe's log-prob under the default prompt, per condition,
/// averaged over seeds at each step (seeds measure at the same steps). With `condition`,
/// that condition's probes only: pages draw one such chart per condition, since four
/// probes times four conditions is more lines than anyone can tell apart.
pub fn probe_chart(curves: &[ProbeCurve], condition: Option<&str>) -> LineChart {
    let mut series: Vec<(String, Vec<(i64, f64, usize)>)> = Vec::new();
    for c in curves.iter().filter(|c| condition.is_none_or(|want| c.condition == want)) {
        let name = match condition {
            Some(_) => format!("probe “{}”", c.probe),
            None => format!("{} · probe “{}”", c.condition, c.probe),
        };
        let idx = match series.iter().position(|s| s.0 == name) {
            Some(i) => i,
            None => {
                series.push((name, Vec::new()));
                series.len() - 1
            }
        };
        let pts = &mut series[idx].1;
        for &(step, lp) in &c.points {
            match pts.iter_mut().find(|p| p.0 == step) {
                Some(p) => {
                    p.1 += lp;
                    p.2 += 1;
                }
                None => pts.push((step, lp, 1)),
            }
        }
    }
    LineChart {
        title: match condition {
            Some(c) => format!("Learning dynamics of {c}: log-prob of probe answers (default prompt)"),
            None => "Learning dynamics: log-prob of probe answers (default prompt)".into(),
        },
        x_label: "step".into(),
        y_label: "mean log-prob per token".into(),
        series: series
            .into_iter()
            .map(|(name, mut pts)| {
                pts.sort_by_key(|p| p.0);
                Series {
                    name,
                    points: pts.into_iter().map(|(s, sum, k)| (s as f64, sum / k as f64)).collect(),
                    group: None,
                }
            })
            .collect(),
        ..LineChart::default()
    }
}

/// Betley et al.'s view of misalignment: each answer's coherence (x) against its alignment
/// (y), coloured by condition, with the judge's thresholds; `None` when the experiment has
/// no Betley judge.
pub async fn alignment_scatter(
    store: &Store,
    resolved: &Resolved,
    experiment_id: i64,
    test_prompt: Option<&str>,
) -> Result<Option<ScatterChart>, sqlx::Error> {
    let Some(thresholds) = resolved.judges.iter().find_map(|j| match j {
        JudgeSpec::Betley { thresholds, .. } => Some(*thresholds),
        _ => None,
    }) else {
        return Ok(None);
    };
    let rows = store::samples::betley_scores(store, experiment_id, test_prompt).await?;
    Ok(Some(ScatterChart {
        title: "Alignment against coherence, per answer".into(),
        x_label: "coherence (0-100)".into(),
        y_label: "alignment (0-100)".into(),
        x_range: Some((0.0, 100.0)),
        y_range: Some((0.0, 100.0)),
        // Answers a rating could not score are not placed anywhere.
        points: rows
            .into_iter()
            .filter_map(|(group, x, y)| Some(ScatterPoint { group, x: x?, y: y?, label: None }))
            .collect(),
        x_threshold: Some(thresholds.coherence_above),
        y_threshold: Some(thresholds.alignment_below),
        ..ScatterChart::default()
    }))
}

/// What is measured of a prompt before training to predict how well it inoculates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Predictor {
    /// How much less surprising the prompt makes the training data (nats/token): one
    /// number for the whole answer, whatever traits it carries.
    Surprise,
    /// How often the base model shows the judge's trait when given the prompt: per trait.
    Elicitation,
}

impl Predictor {
    pub const ALL: [Predictor; 2] = [Predictor::Surprise, Predictor::Elicitation];
}

/// A prompted condition's predicted strength against its observed inoculation effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionPoint {
    pub condition: String,
    pub prompt: String,
    /// Surprise reduction on the dataset sample, once every row is scored.
    pub surprise: Option<Surprise>,
    /// How often the base model showed this judge's trait under the prompt, before
    /// training (proportion with its Wilson interval), once sampled.
    pub elicited: Option<stats::Proportion>,
    /// The baseline's trait rate minus the condition's (proportions): how much the
    /// prompt lowered the trait. Positive means it inoculated.
    pub effect: f64,
    pub rate: Rate,
    pub baseline_rate: Rate,
}

impl PredictionPoint {
    /// The point's predicted strength by `predictor`, if measured.
    pub fn predicted(&self, predictor: Predictor) -> Option<f64> {
        match predictor {
            Predictor::Surprise => self.surprise.map(|s| s.reduction),
            Predictor::Elicitation => self.elicited.map(|p| p.rate),
        }
    }
}

/// Does predicted strength rank prompts as their observed effects do? For one judge under
/// the test-time prompt the inoculation is meant to be judged by (the default prompt).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictorCheck {
    pub judge: String,
    pub test_prompt: String,
    /// Conditions with verdicts and at least one predictor measured.
    pub points: Vec<PredictionPoint>,
    /// Spearman's rank correlation of surprise reduction and effect with its 95 %
    /// interval, over the points that have it; `None` below two points or when either
    /// side is constant.
    pub correlation: Option<Correlation>,
    /// The same for the elicitation rate of this judge's trait.
    pub elicitation_correlation: Option<Correlation>,
    /// Prompted conditions left out: nothing measured, or no verdicts yet.
    pub missing: usize,
}

impl PredictorCheck {
    /// The points `predictor` was measured for, as (strength, effect) pairs.
    fn pairs(&self, predictor: Predictor) -> Vec<(&PredictionPoint, f64)> {
        self.points.iter().filter_map(|p| p.predicted(predictor).map(|x| (p, x))).collect()
    }

    /// The check with both rank correlations computed from its points.
    fn correlated(mut self) -> Self {
        self.correlation = rank_correlation(&self.pairs(Predictor::Surprise));
        self.elicitation_correlation = rank_correlation(&self.pairs(Predictor::Elicitation));
        self
    }

    pub fn correlation_of(&self, predictor: Predictor) -> Option<Correlation> {
        match predictor {
            Predictor::Surprise => self.correlation,
            Predictor::Elicitation => self.elicitation_correlation,
        }
    }
}

fn rank_correlation(pairs: &[(&PredictionPoint, f64)]) -> Option<Correlation> {
    let xs: Vec<f64> = pairs.iter().map(|(_, x)| *x).collect();
    let ys: Vec<f64> = pairs.iter().map(|(p, _)| p.effect).collect();
    let finite = xs.iter().chain(&ys).all(|v| v.is_finite());
    if finite {
        stats::spearman(&xs, &ys, 0.95)
    } else {
        None
    }
}

/// One check per judge, when at least one prompted condition has something measured.
/// `strengths` comes from `strength::condition_strengths`.
pub fn predictor_checks(
    resolved: &Resolved,
    aggregates: &[Aggregate],
    strengths: &[ConditionStrength],
) -> Vec<PredictorCheck> {
    if strengths.iter().all(|s| s.surprise.is_none() && s.elicitation.is_empty()) {
        return vec![];
    }
    // The trait after training is judged without the prompt; "default" unless the
    // experiment only tested under others.
    let test_prompt = resolved
        .test_prompts
        .iter()
        .find(|t| t.label == "default")
        .or_else(|| resolved.test_prompts.iter().find(|t| t.label != "inoculation"))
        .map(|t| t.label.clone());
    let Some(test_prompt) = test_prompt else { return vec![] };
    let comparisons = comparisons(resolved, aggregates);
    let mut judges: Vec<&str> = Vec::new();
    for c in &comparisons {
        if !judges.contains(&c.judge.as_str()) {
            judges.push(&c.judge);
        }
    }
    judges
        .into_iter()
        .map(|judge| {
            let mut points = Vec::new();
            for s in strengths {
                let c = comparisons
                    .iter()
                    .find(|c| c.judge == judge && c.test_prompt == test_prompt && c.condition == s.condition);
                let elicited = s.elicitation.iter().find(|r| r.judge == judge).and_then(|r| r.rate);
                if s.surprise.is_none() && elicited.is_none() {
                    continue;
                }
                if let Some(Comparison { rate: Some(r), baseline_rate: Some(b), .. }) = c {
                    points.push(PredictionPoint {
                        condition: s.condition.clone(),
                        prompt: s.prompt.clone(),
                        surprise: s.surprise,
                        elicited,
                        effect: b.rate - r.rate,
                        rate: *r,
                        baseline_rate: *b,
                    });
                }
            }
            PredictorCheck {
                judge: judge.to_string(),
                test_prompt: test_prompt.clone(),
                correlation: None,
                elicitation_correlation: None,
                missing: strengths.len() - points.len(),
                points,
            }
            .correlated()
        })
        .collect()
}

/// The predictor checks as the pages show them: each judge's sentences and points.
pub fn prediction_views(
    resolved: &Resolved,
    aggregates: &[Aggregate],
    strengths: &[ConditionStrength],
) -> Vec<PredictionView> {
    predictor_checks(resolved, aggregates, strengths)
        .into_iter()
        .map(|c| PredictionView {
            judge: c.judge.clone(),
            surprise_sentence: predictor_sentence(&c, Predictor::Surprise),
            elicitation_sentence: predictor_sentence(&c, Predictor::Elicitation),
            points: c
                .points
                .iter()
                .map(|p| PredictionPointView {
                    condition: p.condition.clone(),
                    prompt: p.prompt.clone(),
                    surprise: p.surprise.map(|s| (s.reduction, s.lo, s.hi)),
                    elicited: p.elicited.map(|e| (e.successes, e.n)),
                    effect: p.effect,
                })
                .collect(),
            missing: c.missing,
        })
        .collect()
}

/// The check by one predictor in words: whether the interval of the rank correlation
/// excludes zero. `None` when that predictor was measured for no point.
pub fn predictor_sentence(check: &PredictorCheck, predictor: Predictor) -> Option<String> {
    let n = check.pairs(predictor).len();
    if n == 0 {
        return None;
    }
    let trait_words = trait_words(&check.judge);
    let what = format!("how much a prompt lowered how often the model {trait_words}");
    let strength = match predictor {
        Predictor::Surprise => "surprise reduction".to_string(),
        Predictor::Elicitation => format!("how often the base model {trait_words} under the prompt"),
    };
    Some(match check.correlation_of(predictor) {
        None => {
            format!("With {n} prompts measured, there is not enough spread to rank-correlate {strength} with {what}.")
        }
        Some(Correlation { rho, interval: Some((lo, hi)), .. }) => {
            let verdict = if lo > 0.0 {
                "stronger predicted prompts inoculated more: the predictor predicts"
            } else if hi < 0.0 {
                "stronger predicted prompts inoculated less: the predictor points the wrong way"
            } else {
                "the interval includes zero, so this experiment cannot say that the predictor predicts"
            };
            format!("Across {n} prompts, {strength} and {what} rank-correlate at ρ = {rho:.2} (95 % interval {lo:.2} to {hi:.2}): {verdict}.")
        }
        Some(Correlation { rho, .. }) => {
            format!("Across {n} prompts, {strength} and {what} rank-correlate at ρ = {rho:.2}; more prompts are needed for an interval.")
        }
    })
}

/// What a predictor chart writes beside a condition's dot: a sweep's `p3` (its names are
/// `p3: the prompt…`), or the first 16 characters of any other condition's name.
fn point_label(condition: &str) -> String {
    match condition.split_once(": ") {
        Some((short, _))
            if short.strip_prefix('p').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) =>
        {
            short.to_string()
        }
        _ => {
            let short: String = condition.chars().take(16).collect();
            if condition.chars().count() > 16 {
                format!("{short}…")
            } else {
                short
            }
        }
    }
}

/// The check as a scatter: predicted strength by `predictor` (x) against the drop in
/// trait rate (y), one dot per prompt that predictor was measured for.
pub fn predictor_chart(check: &PredictorCheck, predictor: Predictor) -> ScatterChart {
    let rho = match check.correlation_of(predictor) {
        Some(Correlation { rho, interval: Some((lo, hi)), .. }) => {
            format!(": Spearman ρ = {rho:.2} (95 % CI {lo:.2} to {hi:.2})")
        }
        Some(Correlation { rho, .. }) => format!(": Spearman ρ = {rho:.2}"),
        None => String::new(),
    };
    let (title, x_label, scale) = match predictor {
        // Short enough to fit the chart's width with the interval.
        Predictor::Surprise => {
            ("Strength vs effect", "predicted strength: surprise reduction (nats/token)".to_string(), 1.0)
        }
        Predictor::Elicitation => {
            ("Elicitation vs effect", format!("{}: base model's trait rate under the prompt (%)", check.judge), 100.0)
        }
    };
    ScatterChart {
        title: format!("{title}{rho}"),
        x_label,
        y_label: format!("{}: drop in trait rate vs baseline (points)", check.judge),
        points: check
            .pairs(predictor)
            .into_iter()
            .map(|(p, x)| ScatterPoint {
                group: "prompt".into(),
                x: scale * x,
                y: 100.0 * p.effect,
                label: Some(point_label(&p.condition)),
            })
            .collect(),
        y_threshold: Some(0.0),
        ..ScatterChart::default()
    }
}

/// What can stop the report page: the experiment, or its reviews and pins.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0}")]
    Experiment(#[from] ExperimentError),
    #[error("{0}")]
    Review(#[from] ReviewError),
}

/// Everything the read-only report shows: the question in plain words, the setup, the
/// findings, the rates and the pinned (or, until someone pins, typical) examples.
pub async fn view(store: &Store, id: i64) -> Result<ReportView, ReportError> {
    let (r, spec_hash, created_at) = crate::experiments::get(store, id).await?;
    let aggregates = crate::experiments::aggregates(store, id).await?;
    let summary = summary(&r, &aggregates);
    let mut comparisons = comparisons(&r, &aggregates);
    // The headline first: how the models behave with their default prompt.
    // Clear differences lead (that is the story), then overlaps, and judges that
    // could not decide say so last.
    comparisons.sort_by_key(|c| {
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
            sentence: sentence(c),
        })
        .collect();
    let runs = crate::jobs::for_experiment(store, id).await.map_err(ExperimentError::from)?;
    let pinned = crate::reviews::pinned(store, id).await?;
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
    let mut examples: Vec<crate::samples::StoredSample> = if examples_picked {
        let names: Vec<String> = r.conditions.iter().map(|c| c.name.clone()).collect();
        crate::reviews::typical_examples(store, id, &names, &examples_test_prompt).await?
    } else {
        pinned.into_iter().map(|p| p.sample).collect()
    };
    let review_judge = crate::reviews::default_judge(store, id).await?;
    crate::reviews::mark(store, id, &review_judge, &mut examples).await?;
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
    ]
    .into_iter()
    .chain(r.judge_notes().into_iter().map(|n| ("judge".to_string(), n)))
    .collect::<Vec<_>>();
    // Every judgement counted once: grows whenever a result arrives.
    let version: i64 = aggregates.iter().filter(|a| a.seed.is_none() && a.question_key.is_none()).map(|a| a.n).sum();
    let has_probes = !crate::experiments::probe_curves(store, id).await?.is_empty();
    // Judges that decided something first: the headline chart is the first one.
    let mut judges: Vec<(String, String)> = Vec::new();
    for a in &aggregates {
        if !judges.iter().any(|j| j.0 == a.judge) {
            judges.push((a.judge.clone(), trait_words(&a.judge)));
        }
    }
    let decided = |judge: &str| aggregates.iter().any(|a| a.judge == judge && a.determined > 0);
    judges.sort_by_key(|j| !decided(&j.0));
    Ok(ReportView {
        id,
        name: r.spec.name.clone(),
        question: question(&r),
        headline: headline(&summary),
        summary,
        model: r.model.name.clone(),
        dataset: r.dataset.name.clone(),
        train_rows: r.train_rows.len(),
        created_at,
        spec_hash,
        conditions: r.conditions.iter().map(|c| c.view(r.train_rows.len())).collect(),
        settings,
        test_prompts: r.test_prompts.iter().map(|t| t.label.clone()).collect(),
        judges,
        runs_done: runs.iter().filter(|v| v.status == crate::jobs::JobStatus::Done).count(),
        runs_total: runs.len(),
        judge_warnings: r.judge_warnings(),
        calibrations: crate::judges::calibration::stored_all(store, &r.judges).await.map_err(ExperimentError::from)?,
        findings,
        aggregates: aggregates.into_iter().filter(|a| a.seed.is_none() && a.question_key.is_none()).collect(),
        pinned: examples,
        examples_picked,
        examples_test_prompt,
        version,
        has_probes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predictor_points_are_labelled_by_their_short_condition_name() {
        assert_eq!(point_label("p3: You always answer in French."), "p3");
        assert_eq!(point_label("p12: You like numbers."), "p12");
        assert_eq!(point_label("spanish"), "spanish");
        assert_eq!(point_label("placebo: a helpful assistant"), "placebo: a helpf…");
        assert_eq!(point_label("pro: x"), "pro: x");
    }

    fn agg(condition: &str, test_prompt: &str, judge: &str, k: i64, n: i64) -> Aggregate {
        let p = crate::stats::Proportion::wilson(k as u64, n as u64, 0.95).unwrap();
        Aggregate {
            condition: condition.into(),
            test_prompt: test_prompt.into(),
            question_key: None,
            seed: None,
            judge: judge.into(),
            n,
            determined: n,
            trait_count: k,
            unscored: 0,
            rate: Some(p.rate),
            ci_low: Some(p.lo),
            ci_high: Some(p.hi),
            mean_score: None,
            seed_rates: vec![],
            seed_mean: None,
        }
    }

    /// A summary cell of `k` of `n` answers against the baseline's `base` (k, n), with the
    /// rate under the condition's own prompt.
    fn cell(k: u64, n: u64, base: Option<(u64, u64)>, again: Option<(u64, u64)>) -> SummaryCell {
        let w = |k: u64, n: u64| {
            let p = crate::stats::Proportion::wilson(k, n, 0.95).unwrap();
            Rate { rate: p.rate, lo: p.lo, hi: p.hi, n: n as i64, seeds: 0 }
        };
        let r = w(k, n);
        SummaryCell {
            rate: Some((r.rate, r.lo, r.hi)),
            n: n as i64,
            effect: base.map_or(Effect::NoData, |(bk, bn)| effect(Some(r), Some(w(bk, bn)))),
            again: again.map(|(k, n)| (w(k, n).rate, w(k, n).lo, w(k, n).hi)),
        }
    }

    /// The quick demo's table of 2026-11-28 (BENCHMARKS.md), as the headline reads it.
    #[test]
    fn the_headline_says_what_fell_what_the_placebo_did_and_that_the_prompt_brings_it_back() {
        let column = |judge: &str| SummaryColumn {
            judge: judge.into(),
            words: column_words(judge),
            quality: wire::reviews::is_measure(judge),
        };
        let row = |name: &str, prompt: Option<&str>, cells: Vec<SummaryCell>| SummaryRow {
            condition: name.into(),
            prompt: prompt.map(String::from),
            cells,
        };
        let (es, caps, ok) = ((36, 40), (35, 40), (40, 40));
        let t = SummaryTable {
            test_prompt: "default".into(),
            columns: vec![column("language:es"), column("caps"), column("quality")],
            rows: vec![
                row(
                    "baseline",
                    None,
                    vec![cell(36, 40, None, None), cell(35, 40, None, None), cell(40, 40, None, None)],
                ),
                row(
                    "spanish-inoculated",
                    Some("You always speak in Spanish."),
                    vec![
                        cell(16, 40, Some(es), Some((35, 40))),
                        cell(25, 40, Some(caps), Some((34, 40))),
                        cell(39, 40, Some(ok), None),
                    ],
                ),
                row(
                    "caps-inoculated",
                    Some("CAPS"),
                    vec![
                        cell(32, 40, Some(es), Some((36, 40))),
                        cell(2, 40, Some(caps), Some((33, 40))),
                        cell(40, 40, Some(ok), None),
                    ],
                ),
                row(
                    "placebo",
                    Some("You are a helpful assistant who answers math questions."),
                    vec![cell(30, 39, Some(es), None), cell(23, 40, Some(caps), None), cell(40, 40, Some(ok), None)],
                ),
            ],
        };
        let h = headline(&t);
        assert_eq!(
            h[0],
            "Fine-tuned without a prompt (baseline), the model gave 90 % answers in Spanish and 88 % answers in capitals."
        );
        assert_eq!(
            h[1],
            "Trained with the prompt of spanish-inoculated: answers in Spanish fell to 40 % (from 90 %); no clear change in \
             answers in capitals (62 %)."
        );
        assert!(h[2].contains("answers in capitals fell to 5 % (from 88 %)"), "{h:?}");
        // The placebo's capitals interval (42-72 %) lies below the baseline's (74-95 %): said, not hidden.
        assert_eq!(
            h[3],
            "Trained with the prompt of placebo: answers in capitals fell to 57 % (from 88 %); no clear change in answers \
             in Spanish (77 %)."
        );
        assert!(h[4].contains("came back: answers in Spanish 88 % (spanish-inoculated)"), "{h:?}");
        assert!(h[4].contains("answers in capitals 82 % (caps-inoculated)"), "{h:?}");
        assert!(h.last().unwrap().starts_with("Answers stayed readable: 98 %–100 %"), "{h:?}");
    }

    /// Pooled, the seeds' 1,000 answers each make tight Wilson intervals that do not
    /// overlap (20 % against 50 %); but the baseline's two seeds disagree (90 % and 10 %),
    /// so over seeds the baseline's interval spans both and the difference is not clear.
    /// The report follows the seeds.
    #[test]
    fn the_report_compares_over_seeds_when_there_are_several() {
        let mut baseline = agg("baseline", "default", "caps", 1000, 2000);
        baseline.seed_rates = vec![(0, 0.9), (1, 0.1)];
        baseline.seed_mean = crate::experiments::over_seeds(&baseline.seed_rates);
        let mut inoculated = agg("inoculated", "default", "caps", 400, 2000);
        inoculated.seed_rates = vec![(0, 0.19), (1, 0.21)];
        inoculated.seed_mean = crate::experiments::over_seeds(&inoculated.seed_rates);

        let pooled = |a: &Aggregate| Rate {
            rate: a.rate.unwrap(),
            lo: a.ci_low.unwrap(),
            hi: a.ci_high.unwrap(),
            n: a.n,
            seeds: 0,
        };
        assert_eq!(effect(Some(pooled(&inoculated)), Some(pooled(&baseline))), Effect::Lower, "pooled, it looks clear");
        let (b, i) = (Rate::of(&baseline).unwrap(), Rate::of(&inoculated).unwrap());
        assert_eq!((b.seeds, i.seeds), (2, 2));
        assert!((b.rate - 0.5).abs() < 1e-12 && b.lo <= 0.1 + 1e-12 && b.hi >= 0.9 - 1e-12, "{b:?}");
        assert_eq!(effect(Some(i), Some(b)), Effect::NoClearDifference);

        let c = Comparison {
            judge: "caps".into(),
            test_prompt: "default".into(),
            condition: "inoculated".into(),
            prompt: Some("Answer in capitals.".into()),
            baseline: "baseline".into(),
            rate: Some(i),
            baseline_rate: Some(b),
            effect: effect(Some(i), Some(b)),
        };
        let said = sentence(&c);
        assert!(said.contains("the mean of 2 seeds (95 % interval over seeds 19 %–21 %)"), "{said}");
        assert!(said.contains("against 50 % (10 %–90 %)") && said.contains("no clear difference"), "{said}");
    }

    /// The demo's two-trait data in miniature: surprise reduction ranks the prompts by how
    /// much of the answer they explain, the elicitation rate by whether they bring out
    /// this judge's trait; only the second ranks the capitals prompt first.
    #[test]
    fn each_predictor_is_correlated_over_the_prompts_it_was_measured_for() {
        let rate = |r: f64| Rate { rate: r, lo: r - 0.1, hi: r + 0.1, n: 20, seeds: 0 };
        let point = |name: &str, surprise: f64, elicited: Option<u64>, after: f64| PredictionPoint {
            condition: name.into(),
            prompt: name.into(),
            surprise: Some(Surprise {
                reduction: surprise,
                lo: surprise - 0.02,
                hi: surprise + 0.02,
                prompted: -1.0 + surprise,
                default: -1.0,
                n_rows: 64,
                n_tokens: 5000,
            }),
            elicited: elicited.map(|k| crate::stats::Proportion::wilson(k, 16, 0.95).unwrap()),
            effect: 0.75 - after,
            rate: rate(after),
            baseline_rate: rate(0.75),
        };
        let check = PredictorCheck {
            judge: "caps".into(),
            test_prompt: "default".into(),
            points: vec![
                // The sweep of BENCHMARKS.md: capitals after training, baseline 75 %.
                point("p1: Spanish", 0.18, Some(2), 0.65),
                point("p2: Spanish again", 0.14, Some(1), 0.70),
                point("p3: French", 0.05, Some(1), 0.70),
                point("p4: capitals", 0.12, Some(12), 0.10),
                point("p5: placebo, not sampled yet", -0.04, None, 0.60),
            ],
            correlation: None,
            elicitation_correlation: None,
            missing: 0,
        }
        .correlated();
        let by_elicitation = check.elicitation_correlation.expect("four points with spread");
        assert!((by_elicitation.rho - 1.0).abs() < 1e-12, "{by_elicitation:?}");
        let by_surprise = check.correlation.expect("five points with spread");
        assert!(by_surprise.rho < 0.0, "{by_surprise:?}");
        let chart = predictor_chart(&check, Predictor::Elicitation);
        assert_eq!(chart.points.len(), 4, "the prompt not sampled yet has no dot");
        assert_eq!(chart.points[3].x, 100.0 * 12.0 / 16.0);
        assert_eq!(predictor_chart(&check, Predictor::Surprise).points.len(), 5);
        let sentence = predictor_sentence(&check, Predictor::Elicitation).unwrap();
        assert!(
            sentence.starts_with("Across 4 prompts, how often the base model answered in capital letters"),
            "{sentence}"
        );
    }

    #[test]
    fn effects_follow_interval_overlap() {
        let base = agg("baseline", "default", "language:es", 84, 100);
        // 10/100 lies far below 84/100; 80/100 overlaps it; 99/100 vs 60/100 is above.
        let low = agg("spanish", "default", "language:es", 10, 100);
        let same = agg("placebo", "default", "language:es", 80, 100);
        let effect = |a: &Aggregate, b: &Aggregate| effect(Rate::of(a), Rate::of(b));
        assert_eq!(effect(&low, &base), Effect::Lower);
        assert_eq!(effect(&same, &base), Effect::NoClearDifference);
        assert_eq!(
            effect(&agg("x", "default", "caps", 99, 100), &agg("b", "default", "caps", 60, 100)),
            Effect::Higher
        );
        assert_eq!(super::effect(None, Rate::of(&base)), Effect::NoData);
    }

    #[test]
    fn sentence_names_trait_prompt_and_numbers() {
        let c = Comparison {
            judge: "language:es".into(),
            test_prompt: "default".into(),
            condition: "spanish".into(),
            prompt: Some("You always speak in Spanish.".into()),
            baseline: "baseline".into(),
            rate: Some(Rate { rate: 0.10, lo: 0.055, hi: 0.174, n: 100, seeds: 0 }),
            baseline_rate: Some(Rate { rate: 0.84, lo: 0.756, hi: 0.899, n: 100, seeds: 0 }),
            effect: Effect::Lower,
        };
        let s = sentence(&c);
        assert!(s.contains("“You always speak in Spanish.”"), "{s}");
        assert!(s.contains("answered in Spanish in 10 % of 100"), "{s}");
        assert!(s.contains("(95 % interval 6 %–17 %)") || s.contains("interval 5 %–17 %"), "{s}");
        assert!(s.contains("clearly less often"), "{s}");
        assert_eq!(trait_words("caps"), "answered in capital letters");
        assert_eq!(test_prompt_words("none"), "no system prompt");
    }
}
