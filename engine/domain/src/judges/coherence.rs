//! A cheap, deterministic coherence signal for the toy demo, where a 135M model's answers
//! can turn into gibberish after fine-tuning. Not a substitute for an LLM judge.
//!
//! The score in [0, 1] is the product of three shares, each 1 for ordinary prose:
//! - **word-likeness**: share of tokens that look like words (letters with at most an
//!   inner apostrophe or hyphen, at most 20 letters, a vowel, no letter three times in a
//!   row) or numbers;
//! - **non-repetition**: distinct word trigrams over all word trigrams, which catches the
//!   loops small models fall into ("the cat the cat the cat");
//! - **language clarity**: twice the language identifier's confidence in its top
//!   language, capped at 1. Clean prose scores 0.56-1.0 for its language (English lowest),
//!   so this only bites when the letters fit no language or spread over several.
//!
//! Trait present means *coherent* (score at or above the threshold). Limits: fluent
//! nonsense, wrong answers and off-topic answers all pass; "French-looking" pseudo-words
//! built from real French n-grams pass word-likeness and clarity; languages outside
//! [`super::LanguageCode`] get low clarity; code and tables score low.

use std::collections::HashSet;

use serde_json::json;

use super::language::detect;
use super::{check_threshold, Judge, JudgeError, Judgement};

/// Clean answers score above 0.8 and loops or letter soup below 0.3 (see the tests);
/// 0.5 splits them with room on both sides.
pub fn default_threshold() -> f64 {
    0.5
}

/// Fewer words than this say too little about coherence ("Yes." is fine).
pub fn default_min_words() -> usize {
    5
}

/// The three signals and their product.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoherenceSignals {
    pub words: usize,
    pub word_like: f64,
    pub distinct_trigrams: f64,
    pub language_clarity: f64,
    pub score: f64,
}

/// `None` when the text has fewer than `min_words` tokens.
pub fn coherence_signals(text: &str, min_words: usize) -> Option<CoherenceSignals> {
    let tokens: Vec<&str> = text
        .split_whitespace()
        .map(|t| t.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.len() < min_words.max(3) {
        return None;
    }
    let word_like = tokens.iter().filter(|t| looks_like_word(t)).count() as f64 / tokens.len() as f64;
    let lowered: Vec<String> = tokens.iter().map(|t| t.to_lowercase()).collect();
    let trigrams: Vec<&[String]> = lowered.windows(3).collect();
    let distinct: HashSet<&[String]> = trigrams.iter().copied().collect();
    let distinct_trigrams = distinct.len() as f64 / trigrams.len() as f64;
    let language_clarity = detect(text).top().map_or(0.0, |(_, c)| (2.0 * c).min(1.0));
    Some(CoherenceSignals {
        words: tokens.len(),
        word_like,
        distinct_trigrams,
        language_clarity,
        score: word_like * distinct_trigrams * language_clarity,
    })
}

fn looks_like_word(token: &str) -> bool {
    if token.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '%')) {
        return true;
    }
    let letters: Vec<char> = token.chars().filter(|c| c.is_alphabetic()).collect();
    let only_word_chars = token.chars().all(|c| c.is_alphabetic() || matches!(c, '\'' | '’' | '-'));
    if !only_word_chars || letters.is_empty() || letters.len() > 20 {
        return false;
    }
    let lower: Vec<char> = letters.iter().flat_map(|c| c.to_lowercase()).collect();
    let tripled = lower.windows(3).any(|w| w[0] == w[1] && w[1] == w[2]);
    let has_vowel = lower.iter().any(|c| "aeiouyàáâãäåèéêëìíîïòóôõöùúûüýÿæœ".contains(*c));
    // Scripts without Latin vowels (Greek, Cyrillic, CJK) are not judged letter by letter.
    let latin = lower.iter().all(|c| c.is_ascii() || ('\u{00C0}'..='\u{024F}').contains(c));
    !tripled && (has_vowel || !latin)
}

pub struct CoherenceJudge {
    threshold: f64,
    min_words: usize,
}

impl CoherenceJudge {
    pub fn new(threshold: f64, min_words: usize) -> Result<CoherenceJudge, JudgeError> {
        check_threshold("coherence", threshold, 0.0..=1.0)?;
        Ok(CoherenceJudge { threshold, min_words })
    }
}

impl Judge for CoherenceJudge {
    fn name(&self) -> &str {
        "coherence"
    }

    fn version(&self) -> &str {
        "1"
    }

    fn judge(&self, _question: &str, completion: &str) -> Result<Judgement, JudgeError> {
        let Some(s) = coherence_signals(completion, self.min_words) else {
            let reason = format!("fewer than {} words", self.min_words.max(3));
            return Ok(Judgement::undetermined(json!({ "reason": reason }).to_string()));
        };
        Ok(Judgement {
            score: Some(s.score),
            trait_present: Some(s.score >= self.threshold),
            raw: json!({
                "words": s.words,
                "word_like": s.word_like,
                "distinct_trigrams": s.distinct_trigrams,
                "language_clarity": s.language_clarity,
            })
            .to_string(),
        })
    }
}
