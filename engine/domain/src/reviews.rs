//! Human review: the researcher's own label on a sample (`reviews`), the examples pinned to
//! an experiment's report (`pins`), and how well each automatic judge agrees with the
//! human labels (a 2x2 confusion table and Cohen's kappa from [`crate::stats`]).
//!
//! A human label belongs to one judge (its trait: "in Spanish", "misaligned", "readable")
//! and is one of present (stored `misaligned`), absent (`aligned`) or unsure; the page
//! names them in the judge's words (`wire::reviews::label_words`). A judge's agreement is
//! computed from the labels made for it. Agreement compares only decided pairs: a human "unsure" and a judge that could not tell
//! (`trait_present IS NULL`) are left out and counted, as the trait rates leave out the
//! undetermined instead of calling them "absent". The queries are `store::reviews`.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::samples::{self, ReviewFilter, SampleFilter, SampleQuery, SampleSort, SamplesPage, StoredSample, Verdict};
use crate::stats::ConfusionTable;
use crate::store;
use crate::Store;

/// A human's verdict on one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// The trait is present (a judge's `trait_present = true`).
    Misaligned,
    /// The trait is absent.
    Aligned,
    /// Looked at, but the reviewer could not decide; excluded from agreement.
    Unsure,
}

impl Label {
    pub const ALL: [Label; 3] = [Label::Misaligned, Label::Aligned, Label::Unsure];

    /// The text stored in `reviews.label` (and the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Misaligned => "misaligned",
            Label::Aligned => "aligned",
            Label::Unsure => "unsure",
        }
    }

    /// The label as a judge's verdict: `None` for unsure.
    pub fn trait_present(self) -> Option<bool> {
        match self {
            Label::Misaligned => Some(true),
            Label::Aligned => Some(false),
            Label::Unsure => None,
        }
    }
}

impl FromStr for Label {
    type Err = ReviewError;

    fn from_str(s: &str) -> Result<Label, ReviewError> {
        Label::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| ReviewError::Invalid(format!("unknown label {s:?} (misaligned, aligned or unsure)")))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("{0}")]
    Invalid(String),
    #[error("sample {0} does not exist")]
    SampleNotFound(i64),
    #[error("sample {sample_id} is not in experiment {experiment_id}")]
    NotInExperiment { sample_id: i64, experiment_id: i64 },
    #[error("stored review is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

/// A sample's current human label for one judge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub sample_id: i64,
    pub judge: String,
    pub label: Label,
    pub note: String,
    pub updated_at: String,
}

/// The longest note kept: a note is a remark beside a label, and a page shows it whole.
pub const MAX_NOTE_CHARS: usize = 2000;

/// Labels a sample for one judge, replacing any earlier label and note for it. The judge
/// must have judged the sample: a label is compared with its verdict.
pub async fn set_label(
    store: &Store,
    sample_id: i64,
    judge: &str,
    label: Label,
    note: &str,
) -> Result<Review, ReviewError> {
    let note = note.trim();
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(ReviewError::Invalid(format!("a note may have at most {MAX_NOTE_CHARS} characters")));
    }
    match store::reviews::upsert_label(store, sample_id, judge, label.as_str(), note).await? {
        Some(updated_at) => Ok(Review { sample_id, judge: judge.to_string(), label, note: note.to_string(), updated_at }),
        None => match store::reviews::experiment_of_sample(store, sample_id).await? {
            None => Err(ReviewError::SampleNotFound(sample_id)),
            Some(_) => Err(ReviewError::Invalid(format!(
                "sample {sample_id} has no verdict from the judge {judge:?}: a label is for one of the judges that judged it"
            ))),
        },
    }
}

/// Removes a sample's label for one judge; `false` when it had none.
pub async fn clear_label(store: &Store, sample_id: i64, judge: &str) -> Result<bool, ReviewError> {
    Ok(store::reviews::delete_label(store, sample_id, judge).await?)
}

/// A sample's label for one judge, if it has one.
pub async fn label_of(store: &Store, sample_id: i64, judge: &str) -> Result<Option<Review>, ReviewError> {
    Ok(labels(store, &[sample_id], judge).await?.remove(&sample_id))
}

/// The labels of the given samples for one judge, by sample id; unlabelled samples are
/// absent. Meant for a page of the sample browser (`samples::page`) and for stepping
/// through it by keyboard.
pub async fn labels(store: &Store, sample_ids: &[i64], judge: &str) -> Result<BTreeMap<i64, Review>, ReviewError> {
    let mut out = BTreeMap::new();
    for r in store::reviews::labels(store, sample_ids, judge).await? {
        out.insert(
            r.sample_id,
            Review {
                sample_id: r.sample_id,
                judge: r.judge,
                label: parse_label(&r.label)?,
                note: r.note,
                updated_at: r.updated_at,
            },
        );
    }
    Ok(out)
}

fn parse_label(s: &str) -> Result<Label, ReviewError> {
    // The CHECK constraint admits only the three names; anything else is a damaged file.
    s.parse().map_err(|_| ReviewError::Corrupt(format!("label {s:?}")))
}

pub use wire::reviews::{JudgeAgreement, ReviewProgress, ReviewSummary};

/// How far review for one judge has got: its samples and their labels.
pub async fn progress(store: &Store, experiment_id: i64, judge: &str) -> Result<ReviewProgress, ReviewError> {
    let (samples, misaligned, aligned, unsure) = store::reviews::label_counts(store, experiment_id, judge).await?;
    Ok(ReviewProgress {
        samples: samples as u64,
        misaligned: misaligned as u64,
        aligned: aligned as u64,
        unsure: unsure as u64,
    })
}

/// Pins a sample of the experiment as an example for its report, after the pins it already
/// has. Pinning a pinned sample changes nothing (it keeps its place).
pub async fn pin(store: &Store, experiment_id: i64, sample_id: i64) -> Result<(), ReviewError> {
    // A sample never changes run, so checking first and inserting after cannot go stale.
    let owner = store::reviews::experiment_of_sample(store, sample_id).await?;
    match owner {
        None => return Err(ReviewError::SampleNotFound(sample_id)),
        Some(owner) if owner != experiment_id => return Err(ReviewError::NotInExperiment { sample_id, experiment_id }),
        Some(_) => {}
    }
    store::reviews::insert_pin(store, experiment_id, sample_id).await?;
    Ok(())
}

/// Unpins a sample; `false` when it was not pinned. The others keep their order.
pub async fn unpin(store: &Store, experiment_id: i64, sample_id: i64) -> Result<bool, ReviewError> {
    Ok(store::reviews::delete_pin(store, experiment_id, sample_id).await?)
}

/// A pinned example: the sample as the sample browser shows it (condition, test prompt,
/// question, completion, every judge's verdict) and its human label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinnedSample {
    pub position: i64,
    pub pinned_at: String,
    pub sample: StoredSample,
    pub review: Option<Review>,
}

/// The ids of the experiment's pinned samples, for marking them in the sample browser.
pub async fn pinned_ids(store: &Store, experiment_id: i64) -> Result<Vec<i64>, ReviewError> {
    Ok(store::reviews::pinned_ids(store, experiment_id).await?)
}

/// The experiment's pinned samples in pin order.
pub async fn pinned(store: &Store, experiment_id: i64) -> Result<Vec<PinnedSample>, ReviewError> {
    let mut out: Vec<PinnedSample> = store::reviews::pinned(store, experiment_id)
        .await?
        .into_iter()
        .map(|(position, pinned_at, sample)| PinnedSample { position, pinned_at, sample, review: None })
        .collect();
    if out.is_empty() {
        return Ok(out);
    }
    let ids: Vec<i64> = out.iter().map(|p| p.sample.id).collect();
    // A pin is for every viewer; its label is the first judge's, as the browser opens.
    let judge = default_judge(store, experiment_id).await?;
    let mut reviews = labels(store, &ids, &judge).await?;
    for (sample_id, judgement) in store::reviews::judgements_of(store, &ids).await? {
        if let Some(p) = out.iter_mut().find(|p| p.sample.id == sample_id) {
            p.sample.judgements.push(judgement);
        }
    }
    for p in &mut out {
        p.review = reviews.remove(&p.sample.id);
    }
    Ok(out)
}

/// One typical answer per condition, for a report nobody has pinned examples to yet: among
/// the condition's first answers under the default test prompt (the models as they are
/// used), the one that agrees with its condition's majority verdict on the most judges,
/// then whose scores lie closest to the condition's median scores (then the earliest). So
/// a baseline that mostly speaks Spanish shows a Spanish answer, and an inoculated model
/// whose answers are mostly lower case shows a lower-case one, not a borderline case.
/// Conditions with no such samples are skipped.
pub async fn typical_examples(
    store: &Store,
    experiment_id: i64,
    conditions: &[String],
    test_prompt: &str,
) -> Result<Vec<StoredSample>, ReviewError> {
    let mut out = Vec::new();
    for condition in conditions {
        let filter = crate::samples::SampleFilter {
            experiment_id,
            condition: Some(condition.clone()),
            test_prompt: Some(test_prompt.into()),
            limit: crate::samples::MAX_PAGE,
            ..Default::default()
        };
        let (_, samples) = crate::samples::page(store, &filter).await?;
        if let Some(best) = most_typical(&samples) {
            out.push(best.clone());
        }
    }
    Ok(out)
}

/// The most typical of one condition's samples (see [`typical_examples`]); undetermined
/// verdicts count for no side.
fn most_typical(samples: &[StoredSample]) -> Option<&StoredSample> {
    let mut votes: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut scores: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for j in samples.iter().flat_map(|s| &s.judgements) {
        let v = votes.entry(j.judge.as_str()).or_default();
        match j.trait_present {
            Some(true) => v.0 += 1,
            Some(false) => v.1 += 1,
            None => {}
        }
        if let Some(x) = j.score.filter(|x| x.is_finite()) {
            scores.entry(j.judge.as_str()).or_default().push(x);
        }
    }
    let majority: BTreeMap<&str, bool> =
        votes.into_iter().filter(|(_, (y, n))| y != n).map(|(judge, (y, n))| (judge, y > n)).collect();
    let median: BTreeMap<&str, f64> = scores
        .into_iter()
        .map(|(judge, mut xs)| {
            xs.sort_by(f64::total_cmp);
            (judge, xs[xs.len() / 2])
        })
        .collect();
    // Per sample: judges agreeing with the majority (more is better), then distance from
    // the medians (less is better). Samples come in id order; `min_by` keeps the first of
    // equals, so on a full tie the earlier one wins.
    let rank = |s: &StoredSample| -> (usize, f64) {
        let agreeing = s
            .judgements
            .iter()
            .filter(|j| j.trait_present.is_some() && majority.get(j.judge.as_str()) == j.trait_present.as_ref())
            .count();
        let distance = s
            .judgements
            .iter()
            .filter_map(|j| Some((j.score? - median.get(j.judge.as_str())?).abs()))
            .filter(|d| d.is_finite())
            .sum();
        (agreeing, distance)
    };
    samples
        .iter()
        .map(|s| (rank(s), s))
        .min_by(|((agree_a, dist_a), _), ((agree_b, dist_b), _)| agree_b.cmp(agree_a).then(dist_a.total_cmp(dist_b)))
        .map(|(_, s)| s)
}

/// Agreement of every judge that judged a sample of the experiment with the human labels,
/// by judge name. A judge with no reviewed sample is listed with an empty table, so the page
/// can say so rather than drop it.
pub async fn agreement(store: &Store, experiment_id: i64) -> Result<Vec<JudgeAgreement>, ReviewError> {
    let rows = store::reviews::agreement_counts(store, experiment_id).await?;
    let mut by_judge: BTreeMap<String, JudgeAgreement> = BTreeMap::new();
    for (judge, label, verdict, count) in rows {
        let a = by_judge.entry(judge.clone()).or_insert_with(|| JudgeAgreement {
            judge,
            table: [[0; 2]; 2],
            n: 0,
            human_unsure: 0,
            judge_undetermined: 0,
            observed_agreement: None,
            kappa: None,
        });
        let Some(label) = label else { continue }; // not reviewed
        let count = count as u64;
        match (parse_label(&label)?.trait_present(), verdict) {
            (None, _) => a.human_unsure += count,
            (Some(_), None) => a.judge_undetermined += count,
            (Some(human), Some(judge)) => a.table[cell(human)][cell(judge)] += count,
        }
    }
    Ok(by_judge
        .into_values()
        .map(|mut a| {
            // Fixed label order (present, absent) rather than ConfusionTable::from_pairs'
            // first-seen order, so `table` reads the same for every judge.
            let t = ConfusionTable { labels: vec![true, false], counts: a.table.iter().map(|r| r.to_vec()).collect() };
            a.n = t.total();
            a.observed_agreement = t.observed_agreement();
            a.kappa = t.kappa();
            a
        })
        .collect())
}

fn cell(trait_present: bool) -> usize {
    if trait_present {
        0
    } else {
        1
    }
}

/// The judge the sample browser labels for until the reviewer picks another: the first of
/// the experiment's judges by name (the page lists them in that order); empty before any.
pub async fn default_judge(store: &Store, experiment_id: i64) -> Result<String, ReviewError> {
    Ok(store::reviews::first_judge(store, experiment_id).await?.unwrap_or_default())
}

/// Fills in each sample's human label for `judge` and its pin mark, as the sample browser,
/// the side-by-side page and the report show them beside the sample.
pub async fn mark<'a>(
    store: &Store,
    experiment_id: i64,
    judge: &str,
    samples: impl IntoIterator<Item = &'a mut StoredSample>,
) -> Result<(), ReviewError> {
    let samples: Vec<&mut StoredSample> = samples.into_iter().collect();
    let ids: Vec<i64> = samples.iter().map(|s| s.id).collect();
    let reviews = labels(store, &ids, judge).await?;
    let pins: std::collections::HashSet<i64> = pinned_ids(store, experiment_id).await?.into_iter().collect();
    for s in samples {
        s.review = reviews.get(&s.id).map(|r| (r.label.as_str().to_string(), r.note.clone()));
        s.pinned = pins.contains(&s.id);
    }
    Ok(())
}

/// The sample browser's filter as the page holds it, read into the store's filter: blank
/// means "any", an unknown word the default choice. Filtering or sorting by score needs a
/// judge.
pub fn sample_filter(query: &SampleQuery, limit: i64) -> Result<SampleFilter, ReviewError> {
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
    let review_judge = nonempty(&query.review_judge);
    if judge.is_none() && (query.min_score.is_some() || query.max_score.is_some() || sort != SampleSort::Id) {
        return Err(ReviewError::Invalid("choose a judge to filter or sort by its score".into()));
    }
    Ok(SampleFilter {
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
        review_judge,
        search: query.search.clone(),
        offset: query.offset,
        limit,
    })
}

/// One page of the sample browser: the samples matching the query with their marks, and
/// how many match (a lower bound after a text search, which stops counting).
pub async fn sample_page(store: &Store, query: &SampleQuery, limit: i64) -> Result<SamplesPage, ReviewError> {
    let mut query = query.clone();
    if query.review_judge.trim().is_empty() {
        query.review_judge = default_judge(store, query.experiment_id).await?;
    }
    let filter = sample_filter(&query, limit)?;
    let (total, mut samples) = samples::page(store, &filter).await?;
    mark(store, query.experiment_id, &query.review_judge, &mut samples).await?;
    // Only a text search stops counting (at COUNT_CAP + 1).
    let at_least = !query.search.trim().is_empty() && total > samples::COUNT_CAP;
    Ok(SamplesPage {
        at_least,
        total: if at_least { samples::COUNT_CAP } else { total },
        offset: query.offset,
        limit,
        samples,
    })
}

/// Labels a sample for a judge with the page's word for a label (misaligned | aligned |
/// unsure: present, absent, unsure) and a note; an empty word clears the label.
pub async fn set_label_word(
    store: &Store,
    sample_id: i64,
    judge: &str,
    label: &str,
    note: &str,
) -> Result<(), ReviewError> {
    if judge.chars().count() > MAX_JUDGE_CHARS {
        return Err(ReviewError::Invalid(format!("a judge's name has at most {MAX_JUDGE_CHARS} characters")));
    }
    if label.is_empty() {
        clear_label(store, sample_id, judge).await?;
        return Ok(());
    }
    let label: Label = label.parse().map_err(|_| ReviewError::Invalid(format!("unknown label {label:?}")))?;
    set_label(store, sample_id, judge, label, note).await?;
    Ok(())
}

/// Longer than any judge's name (a pattern judge names itself by its regex).
const MAX_JUDGE_CHARS: usize = 1000;

/// The review panel: progress for `judge` (the experiment's first judge when empty) and
/// every judge's agreement with the labels made for it.
pub async fn summary(store: &Store, experiment_id: i64, judge: &str) -> Result<ReviewSummary, ReviewError> {
    let judge = if judge.trim().is_empty() { default_judge(store, experiment_id).await? } else { judge.to_string() };
    Ok(ReviewSummary {
        progress: progress(store, experiment_id, &judge).await?,
        agreement: agreement(store, experiment_id).await?,
        judge,
    })
}

/// One question's answers side by side, each with its marks; an empty key means the
/// experiment's first question (the picker shows it first too), and an experiment without
/// samples gives an empty grid.
pub async fn side_by_side_view(
    store: &Store,
    experiment_id: i64,
    question_key: &str,
) -> Result<samples::SideBySide, ReviewError> {
    let question_key = if question_key.trim().is_empty() {
        match samples::questions(store, experiment_id).await?.into_iter().next() {
            Some(q) => q.key,
            None => {
                return Ok(samples::SideBySide {
                    question_key: String::new(),
                    question: String::new(),
                    columns: vec![],
                    rows: vec![],
                })
            }
        }
    } else {
        question_key.to_string()
    };
    let mut s = samples::side_by_side(store, experiment_id, &question_key, None).await?;
    let judge = default_judge(store, experiment_id).await?;
    mark(store, experiment_id, &judge, s.rows.iter_mut().flat_map(|r| r.cells.iter_mut().flatten())).await?;
    Ok(s)
}
