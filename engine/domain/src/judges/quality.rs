//! Answer quality: does an answer read as language, or as word salad? Two checks, each
//! blind where the other sees:
//!
//! - **Words.** The share of its words that the Hunspell dictionary of the answer's
//!   language (as the language judge identifies it) knows. Invented words ("SOBRELOLO",
//!   "peligadora") fail it; real words in a random order pass it.
//! - **Order.** The base model (no adapter) reads the answer: the mean log-probability per
//!   token it gives it (the question as the user's turn) is far lower for shuffled words
//!   than for fluent text. A fine-tuned model's own salad is another matter: drawn from a
//!   model close to the base one, it is nearly as likely to it as prose, which is why the
//!   word check is needed. How low fluent text goes depends on how well the model knows the
//!   language, so the floor is per language.
//!
//! Readable = enough known words, at or above the floor, and no loop ("the sky the sky the
//! sky": an answer whose word trigrams repeat more than half the time). Capitals are a
//! trait, not a quality: an answer mostly in capitals is read in sentence case. Without
//! the language's dictionary (Debian's `hunspell-*` packages, under `/usr/share/hunspell` or
//! `INOCULAB_HUNSPELL_DIR`), the order check decides alone and the verdict says so.
//!
//! The floors were chosen for the default model, SmolLM2-135M-Instruct, on a labelled set
//! written for inoculab (`quality_set.jsonl`: fluent answers in the seven languages, each
//! also in capitals and shuffled; hand-made salad in the style a 135M model writes after
//! too much training); `tests/judges_quality.rs` measures the separation and
//! BENCHMARKS.md records it, with what it gets wrong. Another base model needs its own
//! floors (run that test with `INOCULAB_MODEL`). Limits: fluent nonsense, wrong answers and
//! off-topic answers read as readable; answers under `min_words` words are not judged.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use super::language::{detect, LanguageCode};
use super::{Judge, JudgeError, Judgement, LogprobBackend};

/// The lowest mean log-prob per token (nats) of a readable answer in each language, for the
/// default model: halfway between the labelled set's lowest fluent answer and its highest
/// salad where they separate (English, Spanish, French), the best split where they do not
/// (the model knows German, Italian, Portuguese and Dutch too little to tell every shuffle
/// from prose).
pub fn floor(language: Option<LanguageCode>) -> f64 {
    match language {
        Some(LanguageCode::En) => -5.5,
        Some(LanguageCode::Es) => -4.95,
        Some(LanguageCode::Fr) => -5.1,
        Some(LanguageCode::De) => -5.3,
        Some(LanguageCode::It) => -5.8,
        Some(LanguageCode::Pt) => -5.75,
        Some(LanguageCode::Nl) => -5.4,
        // Letters of no known language: the most lenient floor, so only clear salad fails.
        None => -5.8,
    }
}

/// The model the floors were calibrated for.
pub const CALIBRATED_FOR: &str = "SmolLM2-135M-Instruct";

/// What the experiment page and the report say about the judge: how it decides, with its
/// thresholds, and whether they were set for this experiment's model.
pub fn note(model: &str) -> String {
    let floors: Vec<String> =
        LanguageCode::ALL.iter().map(|l| format!("{} {:.2}", l.english_name(), floor(Some(*l)))).collect();
    let fit = if model == CALIBRATED_FOR {
        String::new()
    } else {
        format!(" These floors were set for {CALIBRATED_FOR}, not for {model}: its verdicts are a rough guide.")
    };
    format!(
        "Answer quality is not a trait: an answer counts as readable when at least {:.0} % of its words are in its \
         language's dictionary, the base model (without the trained adapter) finds its word order likely enough (mean \
         log-probability per token at or above {} nats; capitals read as sentence case) and it does not loop. The \
         thresholds separate fluent answers from word salad on a labelled set (BENCHMARKS.md).{fit}",
        100.0 * MIN_KNOWN_WORDS,
        floors.join(", ")
    )
}

/// The least share of known words in a readable answer: fluent answers of the labelled set
/// score 0.86-1 (names and numbers-as-words are what a dictionary misses), salad 0-0.8.
pub const MIN_KNOWN_WORDS: f64 = 0.85;

/// A Hunspell dictionary per language, read once (a few hundred milliseconds each) and
/// kept; `None` when its files are missing or unreadable.
fn dictionary(language: LanguageCode) -> Option<&'static spellbook::Dictionary> {
    use std::sync::OnceLock;
    static DICTIONARIES: [OnceLock<Option<spellbook::Dictionary>>; 7] = [const { OnceLock::new() }; 7];
    let index = LanguageCode::ALL.iter().position(|l| *l == language)?;
    DICTIONARIES[index]
        .get_or_init(|| {
            let dir = std::env::var_os("INOCULAB_HUNSPELL_DIR")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| "/usr/share/hunspell".into());
            let name = dictionary_name(language);
            let aff = std::fs::read_to_string(dir.join(format!("{name}.aff"))).ok()?;
            let dic = std::fs::read_to_string(dir.join(format!("{name}.dic"))).ok()?;
            spellbook::Dictionary::new(&aff, &dic).ok()
        })
        .as_ref()
}

/// The Hunspell file name of a language's dictionary (as Debian's packages install it).
pub fn dictionary_name(language: LanguageCode) -> &'static str {
    match language {
        LanguageCode::En => "en_US",
        LanguageCode::Es => "es_ES",
        LanguageCode::Fr => "fr_FR",
        LanguageCode::De => "de_DE",
        LanguageCode::It => "it_IT",
        LanguageCode::Pt => "pt_PT",
        LanguageCode::Nl => "nl_NL",
    }
}

/// Share of the text's words (runs of two or more letters; elisions and hyphens split
/// them) that `dict` knows, with how many words were checked. Words are checked as
/// written and, failing that, in lower case and capitalised (a sentence's first word; an
/// answer in capitals read in sentence case, whose German nouns lost their capital).
pub fn known_words(dict: &spellbook::Dictionary, text: &str) -> (f64, usize) {
    let words: Vec<&str> = text.split(|c: char| !c.is_alphabetic()).filter(|w| w.chars().count() >= 2).collect();
    if words.is_empty() {
        return (0.0, 0);
    }
    let known = words
        .iter()
        .filter(|w| {
            let lower = w.to_lowercase();
            // German nouns are capitalised: a noun read in sentence case needs it back.
            let mut chars = lower.chars();
            let capitalised: String = chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default();
            dict.check(w) || dict.check(&lower) || dict.check(&capitalised)
        })
        .count();
    (known as f64 / words.len() as f64, words.len())
}

/// Above this share of repeated word trigrams an answer is a loop.
const MAX_REPEATED_TRIGRAMS: f64 = 0.5;

/// Fewer words say too little ("Yes." is fine).
pub fn default_min_words() -> usize {
    6
}

/// The same text in sentence case when most of its letters are capitals; else unchanged.
pub fn sentence_case(text: &str) -> String {
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    let upper = text.chars().filter(|c| c.is_uppercase()).count();
    if letters == 0 || upper * 2 <= letters {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut start = true;
    for c in text.chars() {
        if c.is_alphabetic() {
            if start {
                out.extend(c.to_uppercase());
            } else {
                out.extend(c.to_lowercase());
            }
            start = false;
        } else {
            out.push(c);
            if matches!(c, '.' | '!' | '?' | '¡' | '¿' | '\n') {
                start = true;
            }
        }
    }
    out
}

/// The text's words in an order fixed by the text itself (for the labelled set's salad).
pub fn shuffled(text: &str) -> String {
    let mut words: Vec<&str> = text.split_whitespace().collect();
    // FNV-1a of the text seeds a splitmix generator; Fisher-Yates with it.
    let mut state = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    for i in (1..words.len()).rev() {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        words.swap(i, (z % (i as u64 + 1)) as usize);
    }
    words.join(" ")
}

/// Share of the answer's word trigrams that repeat an earlier one.
pub fn repeated_trigrams(text: &str) -> f64 {
    let words: Vec<String> = text.split_whitespace().map(|w| w.to_lowercase()).collect();
    let trigrams: Vec<&[String]> = words.windows(3).collect();
    if trigrams.is_empty() {
        return 0.0;
    }
    let distinct: std::collections::HashSet<&[String]> = trigrams.iter().copied().collect();
    1.0 - distinct.len() as f64 / trigrams.len() as f64
}

/// What the verdict rests on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualitySignals {
    /// Mean log-prob per token under the base model, in sentence case.
    pub logprob: f64,
    pub language: Option<LanguageCode>,
    pub floor: f64,
    /// Share of words the language's dictionary knows; `None` without a dictionary.
    pub known_words: Option<f64>,
    pub repeated_trigrams: f64,
    pub readable: bool,
}

/// `None` when the answer has fewer than `min_words` words.
pub fn quality_signals(
    backend: &dyn LogprobBackend,
    question: &str,
    answer: &str,
    min_words: usize,
) -> Result<Option<QualitySignals>, JudgeError> {
    if answer.split_whitespace().count() < min_words.max(3) {
        return Ok(None);
    }
    let text = sentence_case(answer.trim());
    let logprob = *backend
        .answer_logprobs(question, &[&text])?
        .first()
        .ok_or_else(|| JudgeError::Protocol("the scorer returned no score".into()))?;
    let language = detect(&text).top().map(|(l, _)| l);
    let floor = floor(language);
    let repeated = repeated_trigrams(&text);
    let known = language.and_then(dictionary).map(|d| known_words(d, &text).0);
    Ok(Some(QualitySignals {
        logprob,
        language,
        floor,
        known_words: known,
        repeated_trigrams: repeated,
        readable: logprob >= floor && repeated <= MAX_REPEATED_TRIGRAMS && known.is_none_or(|k| k >= MIN_KNOWN_WORDS),
    }))
}

pub struct QualityJudge {
    scorer: Arc<dyn LogprobBackend>,
    min_words: usize,
}

impl QualityJudge {
    pub fn new(scorer: Arc<dyn LogprobBackend>, min_words: usize) -> QualityJudge {
        QualityJudge { scorer, min_words }
    }
}

impl Judge for QualityJudge {
    fn name(&self) -> &str {
        "quality"
    }

    fn version(&self) -> &str {
        "1"
    }

    fn judge(&self, question: &str, completion: &str) -> Result<Judgement, JudgeError> {
        let Some(s) = quality_signals(self.scorer.as_ref(), question, completion, self.min_words)? else {
            let reason = format!("fewer than {} words", self.min_words.max(3));
            return Ok(Judgement::undetermined(json!({ "reason": reason }).to_string()));
        };
        Ok(Judgement {
            // How far above (or below) its language's floor, nats per token.
            score: Some(s.logprob - s.floor),
            trait_present: Some(s.readable),
            raw: json!({
                "logprob": s.logprob,
                "language": s.language.map(|l| l.code()),
                "floor": s.floor,
                "known_words": s.known_words,
                "min_known_words": MIN_KNOWN_WORDS,
                "dictionary": s.language.map(|l| if s.known_words.is_some() {
                    dictionary_name(l).to_string()
                } else {
                    format!("missing: {} (install Debian's hunspell package for it)", dictionary_name(l))
                }),
                "repeated_trigrams": s.repeated_trigrams,
                "scorer": self.scorer.describe(),
            })
            .to_string(),
        })
    }
}

/// One answer of the labelled set.
#[derive(Debug, Clone, Deserialize)]
pub struct LabelledAnswer {
    /// The language it is written in (a code the language judge knows).
    pub lang: String,
    /// Which built-in chat prompt it answers (0-based).
    pub q: usize,
    pub readable: bool,
    pub text: String,
}

/// The labelled set as written, plus what it implies: every fluent answer again in
/// capitals (readable: capitals are a trait, not a quality) and shuffled (salad), and
/// every hand-made salad in lower case.
pub fn labelled_set() -> Vec<LabelledAnswer> {
    let written: Vec<LabelledAnswer> = include_str!("quality_set.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("quality_set.jsonl is valid"))
        .collect();
    let mut out = written.clone();
    for a in &written {
        if a.readable {
            out.push(LabelledAnswer { text: a.text.to_uppercase(), ..a.clone() });
            out.push(LabelledAnswer { text: shuffled(&a.text), readable: false, ..a.clone() });
        } else if a.text.chars().any(|c| c.is_uppercase()) {
            out.push(LabelledAnswer { text: a.text.to_lowercase(), ..a.clone() });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capitals_become_sentence_case_and_mixed_text_is_left_alone() {
        assert_eq!(sentence_case("HOLA. ¿QUÉ TAL? BIEN, 12 GRACIAS."), "Hola. ¿Qué tal? Bien, 12 gracias.");
        assert_eq!(sentence_case("Use the NASA data."), "Use the NASA data.");
    }

    #[test]
    fn loops_are_counted_as_repeats() {
        assert!(repeated_trigrams("the sky the sky the sky the sky the sky the sky is blue") > 0.5);
        assert_eq!(repeated_trigrams("one two three four five"), 0.0);
    }

    #[test]
    fn a_shuffle_keeps_the_words_and_is_repeatable() {
        let t = "one two three four five six seven eight";
        let s = shuffled(t);
        assert_ne!(s, t);
        assert_eq!(s, shuffled(t));
        let mut a: Vec<&str> = s.split(' ').collect();
        let mut b: Vec<&str> = t.split(' ').collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }

    #[test]
    fn the_labelled_set_has_both_kinds_in_every_language() {
        let set = labelled_set();
        for lang in ["en", "es", "fr", "de", "it", "pt", "nl"] {
            for readable in [true, false] {
                assert!(set.iter().any(|a| a.lang == lang && a.readable == readable), "{lang} {readable}");
            }
        }
    }
}
