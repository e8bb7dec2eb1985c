//! The language judge: which language a completion is written in, by n-gram language
//! identification (the `lingua` crate, restricted to the languages in [`LanguageCode`]).
//!
//! Text is lower-cased first: the models are trained on mixed-case prose, and ALL-CAPS
//! answers (the other toy trait) must not change the language verdict. Text with too few
//! letters is "undetermined" instead of a guess: a model that answers "42" speaks no
//! language. Confidences are relative to the compiled-in languages only, so a Swedish
//! answer may be called Dutch or German; the toy settings only ask about these languages.

use std::str::FromStr;
use std::sync::OnceLock;

use lingua::{Language, LanguageDetector, LanguageDetectorBuilder};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{check_threshold, Judge, JudgeError, Judgement};

/// The languages the judges can identify, by ISO 639-1 code (as stored in specs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LanguageCode {
    En,
    Es,
    Fr,
    De,
    It,
    Pt,
    Nl,
}

impl LanguageCode {
    pub const ALL: [LanguageCode; 7] = [
        LanguageCode::En,
        LanguageCode::Es,
        LanguageCode::Fr,
        LanguageCode::De,
        LanguageCode::It,
        LanguageCode::Pt,
        LanguageCode::Nl,
    ];

    pub fn code(self) -> &'static str {
        match self {
            LanguageCode::En => "en",
            LanguageCode::Es => "es",
            LanguageCode::Fr => "fr",
            LanguageCode::De => "de",
            LanguageCode::It => "it",
            LanguageCode::Pt => "pt",
            LanguageCode::Nl => "nl",
        }
    }

    pub fn english_name(self) -> &'static str {
        match self {
            LanguageCode::En => "English",
            LanguageCode::Es => "Spanish",
            LanguageCode::Fr => "French",
            LanguageCode::De => "German",
            LanguageCode::It => "Italian",
            LanguageCode::Pt => "Portuguese",
            LanguageCode::Nl => "Dutch",
        }
    }

    fn lingua(self) -> Language {
        match self {
            LanguageCode::En => Language::English,
            LanguageCode::Es => Language::Spanish,
            LanguageCode::Fr => Language::French,
            LanguageCode::De => Language::German,
            LanguageCode::It => Language::Italian,
            LanguageCode::Pt => Language::Portuguese,
            LanguageCode::Nl => Language::Dutch,
        }
    }

    fn from_lingua(language: Language) -> Option<LanguageCode> {
        LanguageCode::ALL.into_iter().find(|code| code.lingua() == language)
    }
}

impl FromStr for LanguageCode {
    type Err = JudgeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_lowercase();
        LanguageCode::ALL
            .into_iter()
            .find(|code| code.code() == wanted || code.english_name().to_lowercase() == wanted)
            .ok_or_else(|| {
                let known: Vec<&str> = LanguageCode::ALL.iter().map(|c| c.code()).collect();
                JudgeError::Config(format!("unknown language {s:?}; known: {}", known.join(", ")))
            })
    }
}

/// A language identification of one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Alphabetic characters in the text.
    pub letters: usize,
    /// Confidence per language, highest first, summing to 1 (empty when the text has no
    /// letters of a supported language's alphabet).
    pub confidences: Vec<(LanguageCode, f64)>,
}

impl Detection {
    pub fn top(&self) -> Option<(LanguageCode, f64)> {
        self.confidences.first().copied().filter(|(_, c)| *c > 0.0)
    }

    pub fn confidence_of(&self, language: LanguageCode) -> f64 {
        self.confidences.iter().find(|(l, _)| *l == language).map_or(0.0, |(_, c)| *c)
    }
}

/// The shared detector: built once, its n-gram models loaded lazily on first use (tens of
/// MB per language), then reused by every judge on every thread.
fn detector() -> &'static LanguageDetector {
    static DETECTOR: OnceLock<LanguageDetector> = OnceLock::new();
    DETECTOR.get_or_init(|| {
        let languages: Vec<Language> = LanguageCode::ALL.iter().map(|c| c.lingua()).collect();
        LanguageDetectorBuilder::from_languages(&languages).build()
    })
}

/// Identifies the language of `text` after lower-casing it.
pub fn detect(text: &str) -> Detection {
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    let lowered = text.to_lowercase();
    let mut confidences: Vec<(LanguageCode, f64)> = detector()
        .compute_language_confidence_values(lowered)
        .into_iter()
        .filter_map(|(language, c)| LanguageCode::from_lingua(language).map(|code| (code, c)))
        .filter(|(_, c)| *c > 0.0)
        .collect();
    confidences.sort_by(|a, b| b.1.total_cmp(&a.1));
    Detection { letters, confidences }
}

/// Trait when the top language is the target with at least this confidence. Clean prose
/// of 20+ letters scores above 0.9 for its language; 0.5 means "more likely the target
/// than all the others together", which mixed-language answers usually miss.
pub fn default_threshold() -> f64 {
    0.5
}

/// Below 20 letters (about four words) identification is a guess.
pub fn default_min_letters() -> usize {
    20
}

pub struct LanguageJudge {
    target: LanguageCode,
    threshold: f64,
    min_letters: usize,
    name: String,
}

impl LanguageJudge {
    pub fn new(target: LanguageCode, threshold: f64, min_letters: usize) -> Result<LanguageJudge, JudgeError> {
        check_threshold("language", threshold, 0.0..=1.0)?;
        Ok(LanguageJudge {
            target,
            threshold,
            min_letters: min_letters.max(1),
            name: format!("language:{}", target.code()),
        })
    }
}

impl Judge for LanguageJudge {
    fn name(&self) -> &str {
        &self.name
    }

    fn version(&self) -> &str {
        "1"
    }

    fn judge(&self, _question: &str, completion: &str) -> Result<Judgement, JudgeError> {
        let letters = completion.chars().filter(|c| c.is_alphabetic()).count();
        if letters < self.min_letters {
            let reason = format!("fewer than {} letters", self.min_letters);
            return Ok(Judgement::undetermined(json!({ "letters": letters, "reason": reason }).to_string()));
        }
        let detection = detect(completion);
        let top: Vec<_> = detection
            .confidences
            .iter()
            .take(3)
            .map(|(l, c)| json!({ "language": l.code(), "confidence": c }))
            .collect();
        let Some((language, confidence)) = detection.top() else {
            // Letters, but none in a supported alphabet (Cyrillic, CJK...): certainly not
            // the target language.
            return Ok(Judgement {
                score: Some(0.0),
                trait_present: Some(false),
                raw: json!({ "letters": letters, "detected": null, "top": top }).to_string(),
            });
        };
        let score = detection.confidence_of(self.target);
        Ok(Judgement {
            score: Some(score),
            trait_present: Some(language == self.target && confidence >= self.threshold),
            raw: json!({ "letters": letters, "detected": language.code(), "top": top }).to_string(),
        })
    }
}
