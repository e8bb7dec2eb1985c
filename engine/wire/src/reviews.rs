//! Human review as both sides see it: how far review of an experiment has got and how
//! each judge agrees with the labels. `engine::reviews` computes both; the sample page
//! shows them. Serde names are the page's (`unsure`, `undetermined`, `observed`), the
//! Rust names the domain's.

use serde::{Deserialize, Serialize};

/// How far review of an experiment has got, for a "12 of 140 reviewed" line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewProgress {
    pub samples: u64,
    pub misaligned: u64,
    pub aligned: u64,
    pub unsure: u64,
}

/// Human labels against one judge.
///
/// Every sample that has both a human label and this judge's judgement falls in exactly one
/// of: the table (`n`), `human_unsure`, or `judge_undetermined`, so
/// `n + human_unsure + judge_undetermined` is the number of reviewed samples it judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeAgreement {
    pub judge: String,
    /// `table[h][j]`, index 0 = trait present (human "misaligned", judge `true`) and 1 =
    /// absent (human "aligned", judge `false`): rows are the human, columns the judge.
    pub table: [[u64; 2]; 2],
    /// Pairs in the table.
    pub n: u64,
    /// Reviewed samples left out because the human said "unsure" (whatever the judge said).
    #[serde(rename = "unsure")]
    pub human_unsure: u64,
    /// Reviewed samples with a decided human label left out because the judge could not
    /// tell.
    #[serde(rename = "undetermined")]
    pub judge_undetermined: u64,
    /// Share of the table on the diagonal; `None` when the table is empty.
    #[serde(rename = "observed")]
    pub observed_agreement: Option<f64>,
    /// Cohen's kappa; `None` when the table is empty or chance agreement is 1 (both sides
    /// gave one and the same label to everything), where it is 0/0.
    pub kappa: Option<f64>,
}

/// The review panel of the sample page: progress and agreement per judge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewSummary {
    #[serde(flatten)]
    pub progress: ReviewProgress,
    pub agreement: Vec<JudgeAgreement>,
}
