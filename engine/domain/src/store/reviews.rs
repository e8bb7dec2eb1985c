//! The human review tables: `reviews` (a researcher's label and note on a sample, for one
//! judge) and
//! `pins` (the examples pinned to an experiment's report), and the counts the agreement
//! table is built from. `crate::reviews` calls it and keeps the labels' meaning, the
//! choice of typical examples and the statistics. Labels travel as the text stored in
//! `reviews.label`; `crate::reviews::Label` parses them.

use super::samples::{StoredJudgement, StoredSample};
use super::{now_text, Sql, Store};

/// A stored label: sample id, the judge it is for, label text, note, when it was last set.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewRow {
    pub sample_id: i64,
    pub judge: String,
    pub label: String,
    pub note: String,
    pub updated_at: String,
}

/// Sets a sample's label and note for one judge, replacing any earlier ones; returns when,
/// or `None` (and writes nothing) when the sample has no verdict from that judge.
pub async fn upsert_label(
    store: &Store,
    sample_id: i64,
    judge: &str,
    label: &str,
    note: &str,
) -> Result<Option<String>, sqlx::Error> {
    // One statement, so "did this judge judge the sample" and the write cannot be split by
    // another writer; the SELECT yields no row otherwise, so nothing is written.
    let row: Option<(String,)> = sqlx::query_as(
        "INSERT INTO reviews (sample_id, judge, label, note)
         SELECT sample_id, judge, $1, $2 FROM judgements WHERE sample_id = $3 AND judge = $4
         ON CONFLICT (sample_id, judge) DO UPDATE SET label = excluded.label, note = excluded.note, updated_at = $5
         RETURNING updated_at",
    )
    .bind(label)
    .bind(note)
    .bind(sample_id)
    .bind(judge)
    .bind(now_text())
    .fetch_optional(store.pool())
    .await?;
    Ok(row.map(|(updated_at,)| updated_at))
}

/// Removes a sample's label for one judge; `false` when it had none.
pub async fn delete_label(store: &Store, sample_id: i64, judge: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM reviews WHERE sample_id = $1 AND judge = $2")
        .bind(sample_id)
        .bind(judge)
        .execute(store.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The labels of the given samples for one judge; unlabelled samples have no row.
pub async fn labels(store: &Store, sample_ids: &[i64], judge: &str) -> Result<Vec<ReviewRow>, sqlx::Error> {
    let mut out = Vec::new();
    // Chunks keep each query far below SQLite's limit on bound parameters.
    for chunk in sample_ids.chunks(500) {
        let mut q = Sql::new("SELECT sample_id, judge, label, note, updated_at FROM reviews WHERE judge = ");
        q.bind(judge.to_string()).push(" AND sample_id IN ");
        q.bind_list(chunk.iter().copied());
        let rows: Vec<(i64, String, String, String, String)> = q.query_as().fetch_all(store.pool()).await?;
        out.extend(rows.into_iter().map(|(sample_id, judge, label, note, updated_at)| ReviewRow {
            sample_id,
            judge,
            label,
            note,
            updated_at,
        }));
    }
    Ok(out)
}

/// An experiment's samples that `judge` judged, and how many carry each of its labels:
/// (samples, misaligned, aligned, unsure).
pub async fn label_counts(store: &Store, experiment_id: i64, judge: &str) -> Result<(i64, i64, i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE v.label = 'misaligned'), COUNT(*) FILTER (WHERE v.label = 'aligned'),
                COUNT(*) FILTER (WHERE v.label = 'unsure')
         FROM judgements j JOIN samples s ON s.id = j.sample_id JOIN runs r ON r.id = s.run_id
         LEFT JOIN reviews v ON v.sample_id = j.sample_id AND v.judge = j.judge
         WHERE r.experiment_id = $1 AND j.judge = $2",
    )
    .bind(experiment_id)
    .bind(judge)
    .fetch_one(store.pool())
    .await
}

/// The first (by name) judge that judged a sample of the experiment.
pub async fn first_judge(store: &Store, experiment_id: i64) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT MIN(j.judge) FROM judgements j JOIN samples s ON s.id = j.sample_id JOIN runs r ON r.id = s.run_id
         WHERE r.experiment_id = $1",
    )
    .bind(experiment_id)
    .fetch_one(store.pool())
    .await
}

/// The experiment a sample belongs to (through its run); `None` when there is no such
/// sample.
pub async fn experiment_of_sample(store: &Store, sample_id: i64) -> Result<Option<i64>, sqlx::Error> {
    let owner: Option<(i64,)> =
        sqlx::query_as("SELECT r.experiment_id FROM samples s JOIN runs r ON r.id = s.run_id WHERE s.id = $1")
            .bind(sample_id)
            .fetch_optional(store.pool())
            .await?;
    Ok(owner.map(|(id,)| id))
}

/// Pins a sample after the experiment's other pins; a pinned sample keeps its place.
pub async fn insert_pin(store: &Store, experiment_id: i64, sample_id: i64) -> Result<(), sqlx::Error> {
    // The next position is computed inside the INSERT, so two pins at once (SQLite has one
    // writer) never get the same one. The WHERE clause is what lets SQLite parse the
    // upsert after a SELECT.
    sqlx::query(
        "INSERT INTO pins (experiment_id, sample_id, position)
         SELECT $1, $2, COALESCE(MAX(position), 0) + 1 FROM pins WHERE experiment_id = $3
         ON CONFLICT (experiment_id, sample_id) DO NOTHING",
    )
    .bind(experiment_id)
    .bind(sample_id)
    .bind(experiment_id)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Unpins a sample; `false` when it was not pinned.
pub async fn delete_pin(store: &Store, experiment_id: i64, sample_id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM pins WHERE experiment_id = $1 AND sample_id = $2")
        .bind(experiment_id)
        .bind(sample_id)
        .execute(store.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The ids of the experiment's pinned samples in pin order.
pub async fn pinned_ids(store: &Store, experiment_id: i64) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT sample_id FROM pins WHERE experiment_id = $1 ORDER BY position")
        .bind(experiment_id)
        .fetch_all(store.pool())
        .await
}

/// A pin as stored: position, when it was pinned, and the sample (without judgements).
pub type PinRow = (i64, String, StoredSample);

/// The experiment's pins in pin order, each sample without its judgements
/// ([`judgements_of`] reads them).
pub async fn pinned(store: &Store, experiment_id: i64) -> Result<Vec<PinRow>, sqlx::Error> {
    type Row = (i64, String, i64, i64, String, i64, String, Option<String>, String, i64, String, i64, String, i64, i64);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT p.position, p.created_at, s.id, s.run_id, r.condition, r.seed, s.test_prompt, s.system_text,
                s.question_key, s.paraphrase, s.question, s.sample_idx, s.completion, s.n_tokens, s.finished
         FROM pins p JOIN samples s ON s.id = p.sample_id JOIN runs r ON r.id = s.run_id
         WHERE p.experiment_id = $1 ORDER BY p.position, s.id",
    )
    .bind(experiment_id)
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let sample = StoredSample {
                id: r.2,
                run_id: r.3,
                condition: r.4,
                seed: r.5,
                test_prompt: r.6,
                system_text: r.7,
                question_key: r.8,
                paraphrase: r.9,
                question: r.10,
                sample_idx: r.11,
                completion: r.12,
                n_tokens: r.13,
                finished: r.14 != 0,
                judgements: vec![],
                review: None,
                pinned: false,
            };
            (r.0, r.1, sample)
        })
        .collect())
}

/// Every judgement of the given (pinned, so few) samples, as (sample id, judgement),
/// ordered by judge.
pub async fn judgements_of(store: &Store, sample_ids: &[i64]) -> Result<Vec<(i64, StoredJudgement)>, sqlx::Error> {
    if sample_ids.is_empty() {
        return Ok(vec![]);
    }
    let mut q = Sql::new(
        "SELECT sample_id, judge, judge_version, score, trait_present, raw FROM judgements WHERE sample_id IN ",
    );
    q.bind_list(sample_ids.iter().copied()).push(" ORDER BY judge");
    let judgements: Vec<(i64, String, String, Option<f64>, Option<i64>, String)> =
        q.query_as().fetch_all(store.pool()).await?;
    Ok(judgements
        .into_iter()
        .map(|(sample_id, judge, version, score, trait_present, raw)| {
            let trait_present = trait_present.map(|t| t != 0);
            (sample_id, StoredJudgement { judge, version, score, trait_present, raw })
        })
        .collect())
}

/// Per judge, human label (`None`: not reviewed) and verdict, how many of the
/// experiment's judged samples fall in each combination, ordered by judge.
pub async fn agreement_counts(
    store: &Store,
    experiment_id: i64,
) -> Result<Vec<(String, Option<String>, Option<bool>, i64)>, sqlx::Error> {
    // Counted in SQL: a handful of rows per judge, however many samples there are.
    let rows: Vec<(String, Option<String>, Option<i64>, i64)> = sqlx::query_as(
        "SELECT j.judge, v.label, j.trait_present, COUNT(*)
         FROM judgements j JOIN samples s ON s.id = j.sample_id JOIN runs r ON r.id = s.run_id
         LEFT JOIN reviews v ON v.sample_id = j.sample_id AND v.judge = j.judge
         WHERE r.experiment_id = $1
         GROUP BY j.judge, v.label, j.trait_present
         ORDER BY j.judge",
    )
    .bind(experiment_id)
    .fetch_all(store.pool())
    .await?;
    Ok(rows.into_iter().map(|(judge, label, verdict, n)| (judge, label, verdict.map(|v| v != 0), n)).collect())
}
