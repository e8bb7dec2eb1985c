//! Samples as both sides see them: a sampled answer with every judge's verdict (and, in the
//! sample browser, the human label and pin), the browser's filter as the page holds it, a
//! page of results, an experiment's questions for the side-by-side picker and one
//! question's answers side by side. The store
//! returns [`Sample`] (`engine::samples::StoredSample`), `engine::reviews` adds the marks
//! and reads the filter, so the pages only render.

use serde::{Deserialize, Serialize};

/// One judge's stored verdict on a sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub judge: String,
    pub version: String,
    pub score: Option<f64>,
    pub trait_present: Option<bool>,
    pub raw: String,
}

/// A stored sample as the pages show it: its run's condition and seed, and every judge's
/// verdict (sorted by judge name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
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
    pub judgements: Vec<Judgement>,
    /// The researcher's own label (misaligned | aligned | unsure) and note; filled in by
    /// `engine::reviews::mark` where a page shows it, `None` as the store reads it.
    /// Left out of the JSON when unset, so the samples export (one sample a line), which
    /// reads no marks, stays as it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<(String, String)>,
    /// Pinned to the experiment's report; filled in with `review`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pinned: bool,
}

/// The sample browser's filter, as the page holds it (empty strings mean "any");
/// `engine::reviews::sample_page` reads it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleQuery {
    pub experiment_id: i64,
    pub condition: String,
    pub test_prompt: String,
    pub seed: Option<i64>,
    pub question_key: String,
    /// The judge that `verdict`, the score bounds and the score sort refer to.
    pub judge: String,
    /// any | trait | no_trait | undetermined
    pub verdict: String,
    pub min_score: Option<f64>,
    pub max_score: Option<f64>,
    /// id | score_asc | score_desc
    pub sort: String,
    /// any | unreviewed | misaligned | aligned | unsure (present, absent, unsure)...
    pub review: String,
    /// ...for this judge, which is also the one labels are made for (the experiment's first
    /// judge when empty).
    #[serde(default)]
    pub review_judge: String,
    pub search: String,
    pub offset: i64,
}

/// One page of the sample browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplesPage {
    /// How many match; a lower bound when `at_least` (a text search stops counting).
    pub total: i64,
    pub at_least: bool,
    pub offset: i64,
    pub limit: i64,
    pub samples: Vec<Sample>,
}

/// One of an experiment's questions, for a picker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuestionSummary {
    pub key: String,
    /// The text of its first sample (the first paraphrase sampled).
    pub text: String,
    pub paraphrases: i64,
    /// Samples of this question over every run and test-time prompt.
    pub samples: i64,
}

/// One question's answers across the experiment: a column per (condition, test-time
/// prompt), a row per (run seed, paraphrase, sample index).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SideBySide {
    pub question_key: String,
    /// The question's text (its first paraphrase shown, when several are).
    pub question: String,
    pub columns: Vec<SideBySideColumn>,
    pub rows: Vec<SideBySideRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideBySideColumn {
    pub condition: String,
    pub test_prompt: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SideBySideRow {
    pub seed: i64,
    pub paraphrase: i64,
    pub sample_idx: i64,
    /// One per column, `None` where that column has no such sample (not sampled yet, a
    /// test prompt a condition does not have, a failed run).
    pub cells: Vec<Option<Sample>>,
}
