//! Reading an experiment's samples back: a filtered, sorted, paged view with every judge's
//! verdict for the sample browser, the list of an experiment's questions, and one
//! question's answers side by side across conditions and test-time prompts.
//!
//! Everything is filtered, counted and paged in SQL over the narrow search tables of
//! `migrations/sqlite/0003_sample_search.sql` (per-experiment facet rows and a trigram full-text
//! index), so a page of a 100,000-sample experiment costs tens of milliseconds
//! (`examples/bench_samples.rs` measures it; `BENCHMARKS.md` has the numbers); the wide
//! rows (completions, raw judge output) are read only for the page shown. Export
//! (`crate::export`) reads through the same filters in id-ordered chunks. The queries are
//! `store::samples`; this module composes the pages from them.

use std::collections::HashMap;

use serde::Deserialize;

use crate::store;
use crate::Store;

/// What to show, how to order it, and the stored rows: the store's types, since its
/// queries are built from them.
pub use crate::store::samples::{
    ReviewFilter, SampleFilter, SampleSort, StoredJudgement, StoredSample, Verdict, COUNT_CAP, MAX_PAGE,
};

/// One page of samples matching the filter, in the filter's order, and how many match
/// (with a text search, at most `COUNT_CAP + 1`).
pub async fn page(store: &Store, f: &SampleFilter) -> Result<(i64, Vec<StoredSample>), sqlx::Error> {
    store::samples::page(store, f).await
}

/// Up to `n` samples matching the filter with ids above `after`, in id order, ignoring the
/// filter's sort, offset and limit: export reads an experiment in such chunks (keyset
/// paging, so each chunk costs the same however far in it is).
pub(crate) async fn chunk_after(
    store: &Store,
    f: &SampleFilter,
    after: i64,
    n: i64,
) -> Result<Vec<StoredSample>, sqlx::Error> {
    store::samples::chunk_after(store, f, after, n).await
}

pub use wire::samples::{QuestionSummary, SampleQuery, SamplesPage};

/// Every question the experiment has samples for, in the order they were first sampled.
pub async fn questions(store: &Store, experiment_id: i64) -> Result<Vec<QuestionSummary>, sqlx::Error> {
    // The texts are fetched for one sample per question, never the wide rows of the rest.
    let groups = store::samples::question_groups(store, experiment_id).await?;
    let firsts: Vec<i64> = groups.iter().map(|g| g.1).collect();
    let mut texts = store::samples::question_texts(store, &firsts).await?;
    Ok(groups
        .into_iter()
        .map(|(key, first, paraphrases, samples)| QuestionSummary {
            text: texts.remove(&first).unwrap_or_default(),
            key,
            paraphrases,
            samples,
        })
        .collect())
}

/// One question's answers across the experiment: the wire crate's types.
pub use wire::samples::{SideBySide, SideBySideColumn, SideBySideRow};

/// Columns follow the spec: conditions in their order, and within a condition the
/// test-time prompts in the spec's order (then those added later, in order); only pairs with at least one sample of this
/// question get a column. `paraphrase: None` shows every paraphrase (as separate rows).
pub async fn side_by_side(
    store: &Store,
    experiment_id: i64,
    question_key: &str,
    paraphrase: Option<i64>,
) -> Result<SideBySide, sqlx::Error> {
    let spec = store::experiments::spec(store, experiment_id).await?.ok_or(sqlx::Error::RowNotFound)?;
    let mut test_order = test_prompt_order(&spec);
    // Then the test prompts added after the runs finished, in the order they were added.
    test_order.extend(store::experiments::added_test_prompt_labels(store, experiment_id).await?);

    // Sorted here rather than in SQL (see `store::samples::question_cells`).
    let mut keys = store::samples::question_cells(store, experiment_id, question_key, paraphrase).await?;
    keys.sort_unstable_by_key(|k| k.0);
    let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
    let samples = store::samples::by_ids(store, &ids).await?;
    let column_of: HashMap<i64, (i64, String)> = keys.into_iter().map(|(id, c, t)| (id, (c, t))).collect();

    // Column order: (condition index, position of the test prompt in the spec; labels the
    // spec does not list go after, by name).
    let rank = |label: &str| test_order.iter().position(|l| l == label).unwrap_or(usize::MAX);
    let mut column_keys: Vec<(i64, usize, String, String)> = Vec::new();
    for s in &samples {
        let (condition_idx, test_prompt) = &column_of[&s.id];
        let k = (*condition_idx, rank(test_prompt), test_prompt.clone(), s.condition.clone());
        if !column_keys.contains(&k) {
            column_keys.push(k);
        }
    }
    column_keys.sort();
    let columns: Vec<SideBySideColumn> =
        column_keys.iter().map(|k| SideBySideColumn { condition: k.3.clone(), test_prompt: k.2.clone() }).collect();

    let question = samples.first().map(|s| s.question.clone()).unwrap_or_default();
    let mut rows: Vec<SideBySideRow> = Vec::new();
    let mut row_of: HashMap<(i64, i64, i64), usize> = HashMap::new();
    let mut row_keys: Vec<(i64, i64, i64)> = samples.iter().map(|s| (s.seed, s.paraphrase, s.sample_idx)).collect();
    row_keys.sort();
    row_keys.dedup();
    for k in row_keys {
        row_of.insert(k, rows.len());
        rows.push(SideBySideRow { seed: k.0, paraphrase: k.1, sample_idx: k.2, cells: vec![None; columns.len()] });
    }
    for s in samples {
        let (condition_idx, test_prompt) = &column_of[&s.id];
        let col = column_keys
            .iter()
            .position(|k| k.0 == *condition_idx && k.2 == *test_prompt)
            .expect("every sample's column was collected above");
        let row = row_of[&(s.seed, s.paraphrase, s.sample_idx)];
        rows[row].cells[col] = Some(s);
    }
    Ok(SideBySide { question_key: question_key.to_string(), question, columns, rows })
}

/// The test-time prompt labels in the stored spec's order. Only that list is read, so a
/// spec written by an older or newer version still gives an order (or none).
fn test_prompt_order(spec: &str) -> Vec<String> {
    #[derive(Deserialize)]
    struct Spec {
        #[serde(default)]
        test_prompts: Vec<Label>,
    }
    #[derive(Deserialize)]
    struct Label {
        label: String,
    }
    serde_json::from_str::<Spec>(spec)
        .map(|s| s.test_prompts.into_iter().map(|l| l.label).collect())
        .unwrap_or_default()
}
