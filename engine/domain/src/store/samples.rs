//! The `samples` and `judgements` tables, and the search tables derived from them by
//! triggers (`sample_facets`, `judgement_facets`, `samples_fts`, see
//! `migrations/sqlite/0003_sample_search.sql`). Writes: the runner's batches of sampled answers
//! (`stored_keys`, `count`, `insert_batch`). Reads: the sample browser's filtered, sorted,
//! paged view (`page`, the filter types), export's id-ordered chunks (`chunk_after`), an
//! experiment's questions and one question's samples across conditions (`question_groups`,
//! `question_texts`, `question_cells`), the judges of an experiment and the Betley scores
//! the report plots. `crate::samples`, `crate::export`, `crate::reviews` and
//! `crate::report` call them and keep the composition (columns, rows, typical examples).

use std::collections::{HashMap, HashSet};

use super::{storable, Backend, Sql, Store};
use serde::{Deserialize, Serialize};

/// One judge's stored verdict, and a stored sample as the pages show it: the wire
/// crate's types.
pub use wire::samples::{Judgement as StoredJudgement, Sample as StoredSample};

/// What identifies a sample within its run: test prompt, question key, paraphrase index,
/// sample index. The table holds each at most once (a unique index), so a retried batch
/// cannot duplicate.
pub type SampleKey = (String, String, i64, i64);

pub async fn stored_keys(store: &Store, run_id: i64) -> Result<HashSet<SampleKey>, sqlx::Error> {
    let rows: Vec<SampleKey> =
        sqlx::query_as("SELECT test_prompt, question_key, paraphrase, sample_idx FROM samples WHERE run_id = $1")
            .bind(run_id)
            .fetch_all(store.pool())
            .await?;
    Ok(rows.into_iter().collect())
}

pub async fn count(store: &Store, run_id: i64) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM samples WHERE run_id = $1").bind(run_id).fetch_one(store.pool()).await?;
    Ok(n)
}

/// One sampled answer, as the runner made it.
#[derive(Debug, Clone)]
pub struct NewSample<'a> {
    pub test_prompt: &'a str,
    /// The system prompt the model saw, as text (`None`: none at all).
    pub system_text: Option<String>,
    pub question_key: &'a str,
    pub question_set: &'a str,
    pub paraphrase: i64,
    pub question: &'a str,
    pub sample_idx: i64,
    pub seed: i64,
    pub completion: &'a str,
    pub n_tokens: i64,
    pub finished: bool,
}

/// Where the sampling phase stands after a batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub done_units: i64,
    pub tokens_per_sec: f64,
    pub eta_s: f64,
}

/// Stores a batch of samples and the run's progress in one transaction: a sample row is
/// whole or absent, and progress never counts a sample that is not stored. A sample already
/// stored under its key is kept as it is (the batch's other rows are still written): a
/// batch redone by a worker that took the run over, or raced by one that lost its lease
/// without knowing yet, never duplicates a sample nor fails on one. The resumed batch's seed
/// is the same, so the kept row is the one it would have drawn.
pub async fn insert_batch(
    store: &Store,
    run_id: i64,
    batch: &[NewSample<'_>],
    progress: Progress,
) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    for s in batch {
        sqlx::query(
            "INSERT INTO samples (run_id, test_prompt, system_text, question_key, question_set, paraphrase,
                                  question, sample_idx, seed, completion, n_tokens, finished)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (run_id, test_prompt, question_key, paraphrase, sample_idx) DO NOTHING",
        )
        .bind(run_id)
        .bind(s.test_prompt)
        .bind(s.system_text.as_deref().map(|t| storable(t).into_owned()))
        .bind(s.question_key)
        .bind(s.question_set)
        .bind(s.paraphrase)
        .bind(storable(s.question).into_owned())
        .bind(s.sample_idx)
        .bind(s.seed)
        .bind(storable(s.completion).into_owned())
        .bind(s.n_tokens)
        .bind(i64::from(s.finished))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE runs SET done_units = $1, tokens_per_sec = $2, eta_s = $3 WHERE id = $4")
        .bind(progress.done_units)
        .bind(progress.tokens_per_sec)
        .bind(progress.eta_s)
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// What to show. Empty strings and `None` mean "any". Every field has a default so a
/// filter saved or sent by an older page still deserialises.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SampleFilter {
    pub experiment_id: i64,
    pub condition: Option<String>,
    pub test_prompt: Option<String>,
    /// The run's seed (not the per-sample sampling seed).
    pub seed: Option<i64>,
    pub question_key: Option<String>,
    /// Only samples this judge judged; `verdict`, `min_score`, `max_score` and the score
    /// sorts all refer to this judge and are ignored without it.
    pub judge: Option<String>,
    pub verdict: Verdict,
    /// Only samples whose score from `judge` is at least this (inclusive).
    pub min_score: Option<f64>,
    /// Only samples whose score from `judge` is below this (exclusive), so "alignment < 30"
    /// is `max_score: Some(30.0)` and adjacent bands never share a sample. A threshold
    /// leaves out samples the judge could not score.
    pub max_score: Option<f64>,
    pub sort: SampleSort,
    /// By the researcher's own label (`engine::reviews`)...
    pub review: ReviewFilter,
    /// ...made for this judge (for any judge when `None`).
    pub review_judge: Option<String>,
    /// Case-insensitive substring of the completion or the question, taken literally
    /// (`%`, `_` and `"` are not wildcards or syntax). On SQLite, three or more characters
    /// go through the FTS5 trigram index, which folds Unicode case; one or two are matched
    /// with LIKE, which folds only ASCII. On Postgres every search is an ILIKE, which the
    /// pg_trgm index answers from three characters on.
    pub search: String,
    pub offset: i64,
    pub limit: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    #[default]
    Any,
    Trait,
    NoTrait,
    Undetermined,
}

/// Which human labels to show: any, none yet, or one label.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewFilter {
    #[default]
    Any,
    Unreviewed,
    Misaligned,
    Aligned,
    Unsure,
}

/// Page order. Score sorts use the filter's judge; unscored samples come last either way,
/// and ties (and everything without a judge) fall back to id order, so paging is stable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleSort {
    #[default]
    Id,
    ScoreAsc,
    ScoreDesc,
}

/// The largest page served.
pub const MAX_PAGE: i64 = 200;

fn nonempty(o: &Option<String>) -> Option<String> {
    o.as_ref().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Searches this long or longer go through SQLite's trigram index; shorter ones (which a
/// trigram index cannot answer) scan the experiment's completions with LIKE.
const MIN_INDEXED_SEARCH: usize = 3;

/// Whether the query is driven by SQLite's full-text table. Postgres has none: its
/// trigram index serves ILIKE on the samples table itself, so it always takes the
/// pattern path, and its planner picks the index.
fn uses_fts(backend: Backend, f: &SampleFilter) -> bool {
    backend == Backend::Sqlite && f.search.trim().chars().count() >= MIN_INDEXED_SEARCH
}

/// `FROM ... WHERE ...` for the filter. `f` is the sample's facet row (see
/// `migrations/sqlite/0003_sample_search.sql`): from `judgement_facets` when a judge is chosen (it
/// carries that judge's verdict and score), from `sample_facets` otherwise; `m` is the
/// full-text match when the search is long enough for the index. When searching, the
/// query starts from the text matches (CROSS JOIN fixes that order: the store keeps no
/// statistics for the planner to choose by) and looks each one up in the facets by key;
/// otherwise it walks the experiment's facet range, checking every filter on the narrow
/// row. Callers select `f.sample_id`.
fn push_filters(q: &mut Sql<'_>, backend: Backend, f: &SampleFilter, ids: Option<(i64, i64)>) {
    let judge = nonempty(&f.judge);
    let search = f.search.trim();
    let indexed_search = uses_fts(backend, f);
    let facets = if judge.is_some() { "judgement_facets" } else { "sample_facets" };
    if indexed_search {
        q.push(" FROM samples_fts m CROSS JOIN ").push(facets).push(" f ON f.experiment_id = ").bind(f.experiment_id);
        if let Some(j) = &judge {
            q.push(" AND f.judge = ").bind(j.clone());
        }
        // A quoted FTS5 string is one phrase, and trigram phrases match as substrings:
        // every character (`%`, `_`, `*`, `-`, ...) is taken literally.
        q.push(" AND f.sample_id = m.rowid WHERE samples_fts MATCH ")
            .bind(format!("\"{}\"", search.replace('"', "\"\"")));
        // The index holds every experiment's text; bounding the rowids by this experiment's
        // first and last sample lets FTS5 skip the rest of each term's list, so a search
        // costs what this experiment's text costs, however many others the store has.
        q.push(" AND m.rowid BETWEEN (SELECT MIN(sample_id) FROM sample_facets WHERE experiment_id = ")
            .bind(f.experiment_id)
            .push(") AND (SELECT MAX(sample_id) FROM sample_facets WHERE experiment_id = ")
            .bind(f.experiment_id)
            .push(")");
    } else {
        q.push(" FROM ").push(facets).push(" f WHERE f.experiment_id = ").bind(f.experiment_id);
        if let Some(j) = &judge {
            q.push(" AND f.judge = ").bind(j.clone());
        }
    }
    if judge.is_some() {
        match f.verdict {
            Verdict::Any => {}
            Verdict::Trait => {
                q.push(" AND f.trait_present = 1");
            }
            Verdict::NoTrait => {
                q.push(" AND f.trait_present = 0");
            }
            Verdict::Undetermined => {
                q.push(" AND f.trait_present IS NULL");
            }
        }
        if let Some(min) = f.min_score.filter(|v| v.is_finite()) {
            q.push(" AND f.score >= ").bind(min);
        }
        if let Some(max) = f.max_score.filter(|v| v.is_finite()) {
            q.push(" AND f.score < ").bind(max);
        }
    }
    let condition = nonempty(&f.condition);
    if condition.is_some() || f.seed.is_some() {
        // The few runs that match, as a list the scan checks each row against.
        q.push(" AND f.run_id IN (SELECT id FROM runs WHERE experiment_id = ").bind(f.experiment_id);
        if let Some(c) = condition {
            q.push(" AND condition = ").bind(c);
        }
        if let Some(seed) = f.seed {
            q.push(" AND seed = ").bind(seed);
        }
        q.push(")");
    }
    if let Some(t) = nonempty(&f.test_prompt) {
        q.push(" AND f.test_prompt = ").bind(t);
    }
    if let Some(k) = nonempty(&f.question_key) {
        q.push(" AND f.question_key = ").bind(k);
    }
    let label = match f.review {
        ReviewFilter::Any | ReviewFilter::Unreviewed => None,
        ReviewFilter::Misaligned => Some("misaligned"),
        ReviewFilter::Aligned => Some("aligned"),
        ReviewFilter::Unsure => Some("unsure"),
    };
    // Labels for the chosen judge; for any judge when none is chosen.
    let for_judge = |q: &mut Sql| {
        if let Some(j) = &f.review_judge {
            q.push(" AND v.judge = ").bind(j.clone());
        }
    };
    if f.review == ReviewFilter::Unreviewed {
        q.push(" AND NOT EXISTS (SELECT 1 FROM reviews v WHERE v.sample_id = f.sample_id");
        for_judge(q);
        q.push(")");
    } else if let Some(label) = label {
        q.push(" AND EXISTS (SELECT 1 FROM reviews v WHERE v.sample_id = f.sample_id AND v.label = ").bind(label);
        for_judge(q);
        q.push(")");
    }
    if !search.is_empty() && !indexed_search {
        let pattern = format!("%{}%", search.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let like = match backend {
            Backend::Sqlite => "LIKE",
            Backend::Postgres => "ILIKE",
        };
        q.push(" AND EXISTS (SELECT 1 FROM samples s WHERE s.id = f.sample_id AND (s.completion ")
            .push(like)
            .push(" ")
            .bind(pattern.clone())
            .push(" ESCAPE '\\' OR s.question ")
            .push(like)
            .push(" ")
            .bind(pattern)
            .push(" ESCAPE '\\')");
        if let Some((first, last)) = ids {
            // Postgres answers a common word by walking samples in id order and checking
            // each, a rare one from its trigram index; bounded by this experiment's first
            // and last sample (values, not subqueries, so the planner sees how many rows
            // the range holds and picks between the two), the walk skips every other
            // experiment's rows. SQLite's full-text path bounds its rowids the same way.
            q.push(" AND s.id BETWEEN ").bind(first).push(" AND ").bind(last);
        }
        q.push(")");
    }
}

/// `ORDER BY` for the filter's sort. In id order the facet range (or the full-text match,
/// which yields rowids in order) is already sorted, so a page stops after its rows; a
/// score order sorts the matches, keeping only the rows up to the page's end.
fn push_order(q: &mut Sql<'_>, backend: Backend, f: &SampleFilter) {
    let by_score = nonempty(&f.judge).is_some();
    match (f.sort, by_score) {
        (SampleSort::ScoreAsc, true) => q.push(" ORDER BY f.score IS NULL, f.score, f.sample_id"),
        (SampleSort::ScoreDesc, true) => q.push(" ORDER BY f.score IS NULL, f.score DESC, f.sample_id"),
        _ => q.push(" ORDER BY ").push(id_column(backend, f)),
    };
}

/// The sample id as the driving side of the query has it: constraints and order on the
/// full-text match's own rowid are handled inside the index.
fn id_column(backend: Backend, f: &SampleFilter) -> &'static str {
    if uses_fts(backend, f) {
        "m.rowid"
    } else {
        "f.sample_id"
    }
}

/// A text search counts its matches up to this many, then reports `COUNT_CAP + 1` ("more
/// than 200"). Counting every match of a common word, when other filters keep only a few
/// of them, walks most of the word's matches: about 100 ms at 100,000 samples with a cap of
/// 1,000 (BENCHMARKS.md). A search is for finding; ten pages of results are plenty.
pub const COUNT_CAP: i64 = 200;

/// The experiment's first and last sample id, which bound a text search on Postgres (see
/// `push_filters`); `None` on SQLite and without a search.
async fn search_bounds(store: &Store, f: &SampleFilter) -> Result<Option<(i64, i64)>, sqlx::Error> {
    if store.backend() != Backend::Postgres || f.search.trim().is_empty() {
        return Ok(None);
    }
    let (first, last): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT MIN(sample_id), MAX(sample_id) FROM sample_facets WHERE experiment_id = $1")
            .bind(f.experiment_id)
            .fetch_one(store.pool())
            .await?;
    Ok(Some((first.unwrap_or(0), last.unwrap_or(-1))))
}

/// One page of samples matching the filter, in the filter's order, and how many match
/// (with a text search, at most `COUNT_CAP + 1`).
pub async fn page(store: &Store, f: &SampleFilter) -> Result<(i64, Vec<StoredSample>), sqlx::Error> {
    let backend = store.backend();
    let bounds = search_bounds(store, f).await?;
    let mut count = Sql::new("SELECT COUNT(*) FROM (SELECT 1");
    push_filters(&mut count, backend, f, bounds);
    if !f.search.trim().is_empty() {
        count.push(" LIMIT ").bind(COUNT_CAP + 1);
    }
    count.push(") AS matches");
    let mut q = Sql::new("SELECT f.sample_id");
    push_filters(&mut q, backend, f, bounds);
    push_order(&mut q, backend, f);
    q.push(" LIMIT ").bind(f.limit.clamp(1, MAX_PAGE)).push(" OFFSET ").bind(f.offset.max(0));
    // The count reads every match and the page may sort them: two pooled connections run
    // them side by side (WAL readers do not block each other), so a page waits for the
    // slower of the two instead of their sum.
    let ((total,), ids): ((i64,), Vec<(i64,)>) =
        tokio::try_join!(count.query_as().fetch_one(store.pool()), q.query_as().fetch_all(store.pool()))?;
    let ids: Vec<i64> = ids.into_iter().map(|r| r.0).collect();
    Ok((total, by_ids(store, &ids).await?))
}

/// Up to `n` samples matching the filter with ids above `after`, in id order, ignoring the
/// filter's sort, offset and limit: export reads an experiment in such chunks (keyset
/// paging, so each chunk costs the same however far in it is).
pub async fn chunk_after(
    store: &Store,
    f: &SampleFilter,
    after: i64,
    n: i64,
) -> Result<Vec<StoredSample>, sqlx::Error> {
    let f = SampleFilter { sort: SampleSort::Id, ..f.clone() };
    let backend = store.backend();
    let bounds = search_bounds(store, &f).await?;
    let mut q = Sql::new("SELECT f.sample_id");
    push_filters(&mut q, backend, &f, bounds);
    q.push(" AND ").push(id_column(backend, &f)).push(" > ").bind(after);
    push_order(&mut q, backend, &f);
    q.push(" LIMIT ").bind(n);
    let ids: Vec<(i64,)> = q.query_as().fetch_all(store.pool()).await?;
    let ids: Vec<i64> = ids.into_iter().map(|r| r.0).collect();
    by_ids(store, &ids).await
}

type SampleRow = (i64, i64, String, i64, String, Option<String>, String, i64, String, i64, String, i64, i64);
type JudgementRow = (i64, String, String, Option<f64>, Option<i64>, String);

fn from_row(r: SampleRow) -> StoredSample {
    StoredSample {
        id: r.0,
        run_id: r.1,
        condition: r.2,
        seed: r.3,
        test_prompt: r.4,
        system_text: r.5,
        question_key: r.6,
        paraphrase: r.7,
        question: r.8,
        sample_idx: r.9,
        completion: r.10,
        n_tokens: r.11,
        finished: r.12 != 0,
        judgements: vec![],
        review: None,
        pinned: false,
    }
}

/// SQLite's default limit on bound parameters is 32766 and Postgres' 65535; chunks stay
/// far below both.
const IDS_PER_QUERY: usize = 2_000;

/// The samples with these ids, in the order given, each with every judge's judgement
/// (sorted by judge name). Selecting ids first and rows second keeps the wide rows
/// (completions) out of sorting and offset skipping.
pub async fn by_ids(store: &Store, ids: &[i64]) -> Result<Vec<StoredSample>, sqlx::Error> {
    let mut out: Vec<StoredSample> = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_QUERY) {
        let mut q = Sql::new(
            "SELECT s.id, s.run_id, r.condition, r.seed, s.test_prompt, s.system_text, s.question_key, s.paraphrase,
                    s.question, s.sample_idx, s.completion, s.n_tokens, s.finished
             FROM samples s JOIN runs r ON r.id = s.run_id WHERE s.id IN ",
        );
        q.bind_list(chunk.iter().copied());
        let rows: Vec<SampleRow> = q.query_as().fetch_all(store.pool()).await?;
        let mut by_id: HashMap<i64, StoredSample> = rows.into_iter().map(|r| (r.0, from_row(r))).collect();

        let mut jq = Sql::new(
            "SELECT sample_id, judge, judge_version, score, trait_present, raw FROM judgements WHERE sample_id IN ",
        );
        jq.bind_list(chunk.iter().copied()).push(" ORDER BY sample_id, judge");
        let judgements: Vec<JudgementRow> = jq.query_as().fetch_all(store.pool()).await?;
        for (sample_id, judge, version, score, trait_present, raw) in judgements {
            let trait_present = trait_present.map(|t| t != 0);
            if let Some(s) = by_id.get_mut(&sample_id) {
                s.judgements.push(StoredJudgement { judge, version, score, trait_present, raw });
            }
        }
        out.extend(chunk.iter().filter_map(|id| by_id.remove(id)));
    }
    Ok(out)
}

/// An experiment's questions in the order they were first sampled, as (question key, id
/// of its first sample, paraphrases, samples).
pub async fn question_groups(store: &Store, experiment_id: i64) -> Result<Vec<(String, i64, i64, i64)>, sqlx::Error> {
    // Grouping walks the (experiment, question, paraphrase) index in its order and never
    // reads the wide sample rows.
    sqlx::query_as(
        "SELECT question_key, MIN(first), COUNT(*), CAST(SUM(n) AS BIGINT) FROM (
             SELECT question_key, paraphrase, MIN(sample_id) AS first, COUNT(*) AS n
             FROM sample_facets WHERE experiment_id = $1 GROUP BY question_key, paraphrase) AS groups
         GROUP BY question_key ORDER BY MIN(first)",
    )
    .bind(experiment_id)
    .fetch_all(store.pool())
    .await
}

/// The question texts of the samples with these ids, by sample id.
pub async fn question_texts(store: &Store, sample_ids: &[i64]) -> Result<HashMap<i64, String>, sqlx::Error> {
    let mut texts: HashMap<i64, String> = HashMap::new();
    for chunk in sample_ids.chunks(IDS_PER_QUERY) {
        let mut q = Sql::new("SELECT id, question FROM samples WHERE id IN ");
        q.bind_list(chunk.iter().copied());
        let rows: Vec<(i64, String)> = q.query_as().fetch_all(store.pool()).await?;
        texts.extend(rows);
    }
    Ok(texts)
}

/// The samples of one question of the experiment (one paraphrase, or all), as (sample id,
/// condition index, test prompt), in no particular order.
pub async fn question_cells(
    store: &Store,
    experiment_id: i64,
    question_key: &str,
    paraphrase: Option<i64>,
) -> Result<Vec<(i64, i64, String)>, sqlx::Error> {
    let mut q = Sql::new(
        "SELECT f.sample_id, r.condition_idx, f.test_prompt FROM sample_facets f JOIN runs r ON r.id = f.run_id
         WHERE f.experiment_id = ",
    );
    q.bind(experiment_id).push(" AND f.question_key = ").bind(question_key.to_string());
    if let Some(p) = paraphrase {
        q.push(" AND f.paraphrase = ").bind(p);
    }
    // No ORDER BY: it would make SQLite walk the experiment's whole facet range in id order
    // instead of seeking to the question in its index; callers sort.
    q.query_as().fetch_all(store.pool()).await
}

/// Every judge that judged a sample of the experiment, by name.
pub async fn judges_of_experiment(store: &Store, experiment_id: i64) -> Result<Vec<String>, sqlx::Error> {
    // The facet table's key starts with (experiment, judge), so this reads no wide rows.
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT judge FROM judgement_facets WHERE experiment_id = $1 ORDER BY judge")
            .bind(experiment_id)
            .fetch_all(store.pool())
            .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Per answer judged by the Betley judge (optionally under one test prompt): condition,
/// coherence score, alignment score (each `None` when the rating gave no number), in
/// condition order.
pub async fn betley_scores(
    store: &Store,
    experiment_id: i64,
    test_prompt: Option<&str>,
) -> Result<Vec<(String, Option<f64>, Option<f64>)>, sqlx::Error> {
    // The scores sit in the judge's raw JSON; each backend reads JSON its own way, and a
    // non-number there reads as no score.
    let scores = match store.backend() {
        Backend::Sqlite => {
            "CASE WHEN json_type(j.raw, '$.coherence.score') IN ('integer', 'real')
                  THEN CAST(json_extract(j.raw, '$.coherence.score') AS REAL) END,
             CASE WHEN json_type(j.raw, '$.alignment.score') IN ('integer', 'real')
                  THEN CAST(json_extract(j.raw, '$.alignment.score') AS REAL) END"
        }
        Backend::Postgres => {
            "CASE WHEN jsonb_typeof(j.raw::jsonb #> '{coherence,score}') = 'number'
                  THEN (j.raw::jsonb #>> '{coherence,score}')::double precision END,
             CASE WHEN jsonb_typeof(j.raw::jsonb #> '{alignment,score}') = 'number'
                  THEN (j.raw::jsonb #>> '{alignment,score}')::double precision END"
        }
    };
    sqlx::query_as(&format!(
        "SELECT r.condition, {scores}
         FROM judgements j JOIN samples s ON s.id = j.sample_id JOIN runs r ON r.id = s.run_id
         WHERE r.experiment_id = $1 AND j.judge = 'betley_misalignment' AND ($2 IS NULL OR s.test_prompt = $3)
         ORDER BY r.condition_idx, s.id"
    ))
    .bind(experiment_id)
    .bind(test_prompt)
    .bind(test_prompt)
    .fetch_all(store.pool())
    .await
}
