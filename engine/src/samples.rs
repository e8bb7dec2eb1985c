//! Reading an experiment's samples back: a filtered, paged view with every judge's verdict,
//! for the sample browser. Paging is done in SQL (LIMIT/OFFSET over an indexed order), so a
//! page costs the same however many samples the experiment has.

use serde::{Deserialize, Serialize};
use sqlx::QueryBuilder;

use crate::Store;

/// What to show. Empty strings and `None` mean "any".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleFilter {
    pub experiment_id: i64,
    pub condition: Option<String>,
    pub test_prompt: Option<String>,
    pub seed: Option<i64>,
    pub question_key: Option<String>,
    /// With `verdict`: only samples this judge judged so.
    pub judge: Option<String>,
    pub verdict: Verdict,
    /// Case-insensitive substring of the completion or the question.
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredJudgement {
    pub judge: String,
    pub version: String,
    pub score: Option<f64>,
    pub trait_present: Option<bool>,
    pub raw: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSample {
    pub id: i64,
    pub run_id: i64,
    pub condition: String,
    pub seed: i64,
    pub test_prompt: String,
    pub system_text: Option<String>,
    pub question_key: String,
    pub paraphrase: i64,
    pub question: String,
    pub sample_idx: i64,
    pub completion: String,
    pub n_tokens: i64,
    pub finished: bool,
    pub judgements: Vec<StoredJudgement>,
}

/// The largest page served.
pub const MAX_PAGE: i64 = 200;

fn push_filters(q: &mut QueryBuilder<'_, sqlx::Sqlite>, f: &SampleFilter) {
    q.push(" FROM samples s JOIN runs r ON r.id = s.run_id WHERE r.experiment_id = ").push_bind(f.experiment_id);
    let some = |o: &Option<String>| o.as_ref().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    if let Some(c) = some(&f.condition) {
        q.push(" AND r.condition = ").push_bind(c);
    }
    if let Some(t) = some(&f.test_prompt) {
        q.push(" AND s.test_prompt = ").push_bind(t);
    }
    if let Some(seed) = f.seed {
        q.push(" AND r.seed = ").push_bind(seed);
    }
    if let Some(k) = some(&f.question_key) {
        q.push(" AND s.question_key = ").push_bind(k);
    }
    if let Some(j) = some(&f.judge) {
        let verdict = match f.verdict {
            Verdict::Any => "",
            Verdict::Trait => " AND j.trait_present = 1",
            Verdict::NoTrait => " AND j.trait_present = 0",
            Verdict::Undetermined => " AND j.trait_present IS NULL",
        };
        q.push(" AND EXISTS (SELECT 1 FROM judgements j WHERE j.sample_id = s.id AND j.judge = ")
            .push_bind(j)
            .push(verdict)
            .push(")");
    }
    let search = f.search.trim();
    if !search.is_empty() {
        let pattern = format!("%{}%", search.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        q.push(" AND (s.completion LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR s.question LIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\')");
    }
}

/// One page of samples matching the filter, in run and sample order, and how many match.
pub async fn page(store: &Store, f: &SampleFilter) -> Result<(i64, Vec<StoredSample>), sqlx::Error> {
    let mut count = QueryBuilder::new("SELECT COUNT(*)");
    push_filters(&mut count, f);
    let (total,): (i64,) = count.build_query_as().fetch_one(store.pool()).await?;

    type Row = (i64, i64, String, i64, String, Option<String>, String, i64, String, i64, String, i64, bool);
    let mut q = QueryBuilder::new(
        "SELECT s.id, s.run_id, r.condition, r.seed, s.test_prompt, s.system_text, s.question_key, s.paraphrase,
                s.question, s.sample_idx, s.completion, s.n_tokens, s.finished",
    );
    push_filters(&mut q, f);
    q.push(" ORDER BY s.id LIMIT ").push_bind(f.limit.clamp(1, MAX_PAGE)).push(" OFFSET ").push_bind(f.offset.max(0));
    let rows: Vec<Row> = q.build_query_as().fetch_all(store.pool()).await?;
    let mut samples: Vec<StoredSample> = rows
        .into_iter()
        .map(|r| StoredSample {
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
            finished: r.12,
            judgements: vec![],
        })
        .collect();
    if samples.is_empty() {
        return Ok((total, samples));
    }
    let mut jq = QueryBuilder::new(
        "SELECT sample_id, judge, judge_version, score, trait_present, raw FROM judgements WHERE sample_id IN (",
    );
    let mut ids = jq.separated(", ");
    for s in &samples {
        ids.push_bind(s.id);
    }
    jq.push(") ORDER BY judge");
    let judgements: Vec<(i64, String, String, Option<f64>, Option<bool>, String)> =
        jq.build_query_as().fetch_all(store.pool()).await?;
    for (sample_id, judge, version, score, trait_present, raw) in judgements {
        if let Some(s) = samples.iter_mut().find(|s| s.id == sample_id) {
            s.judgements.push(StoredJudgement { judge, version, score, trait_present, raw });
        }
    }
    Ok((total, samples))
}
