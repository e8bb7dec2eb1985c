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

/// The review panel of the sample page: progress for the judge being labelled for, and
/// every judge's agreement with the labels made for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewSummary {
    #[serde(flatten)]
    pub progress: ReviewProgress,
    pub agreement: Vec<JudgeAgreement>,
    /// The judge `progress` counts labels for.
    #[serde(default)]
    pub judge: String,
}

/// A language judge's code in English ("es": "Spanish"); an unknown code as it is.
pub fn language_name(code: &str) -> &str {
    match code {
        "en" => "English",
        "es" => "Spanish",
        "fr" => "French",
        "de" => "German",
        "it" => "Italian",
        "pt" => "Portuguese",
        "nl" => "Dutch",
        other => other,
    }
}

/// Judges that measure the answer itself (answer quality, or the trained task done)
/// rather than a trait: pages show them apart, in a neutral colour, and never as a finding
/// about the trait.
pub fn is_measure(judge: &str) -> bool {
    matches!(judge, "quality" | "coherence" | "arithmetic") || judge.starts_with("task:")
}

/// A judge's trait in words for the review buttons: (present, absent). Stored labels keep
/// the words `misaligned` (present) and `aligned` (absent) whatever the judge.
pub fn label_words(judge: &str) -> (String, String) {
    if let Some(code) = judge.strip_prefix("language:") {
        let language = language_name(code);
        return (format!("in {language}"), format!("not in {language}"));
    }
    if let Some(task) = judge.strip_prefix("task:") {
        return (task.to_string(), format!("not {task}"));
    }
    let (present, absent) = match judge {
        "caps" => ("capitals", "not capitals"),
        "quality" | "coherence" => ("readable", "word salad"),
        "arithmetic" => ("solved", "not solved"),
        "betley_misalignment" => ("misaligned", "aligned"),
        "multiple_choice" => ("picks the trained preference", "does not"),
        _ => ("trait", "no trait"),
    };
    (present.to_string(), absent.to_string())
}

#[cfg(test)]
mod tests {
    use super::label_words;

    #[test]
    fn labels_speak_of_the_judges_trait() {
        assert_eq!(label_words("language:es"), ("in Spanish".to_string(), "not in Spanish".to_string()));
        assert_eq!(label_words("betley_misalignment").0, "misaligned");
        assert_eq!(label_words("regex:zebra").1, "no trait");
    }
}
