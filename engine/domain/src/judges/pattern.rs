//! The pattern judge: trait present when a regular expression or any of a list of
//! keywords occurs in the completion. Score 1 on a match and 0 otherwise; raw lists the
//! matches so a reviewer sees what fired.
//!
//! Patterns come from users, so the compiled size is capped (the regex crate guarantees
//! linear-time matching, so no pattern can hang the worker).

use regex::{Regex, RegexBuilder};
use serde_json::json;

use super::{Judge, JudgeError, Judgement};

/// Compiled-program limit for user patterns: generous for any sane pattern, small enough
/// that a pasted word list in a `{1000}` repetition is refused with a message.
const SIZE_LIMIT: usize = 1 << 20;
/// Matches listed in `raw`; the count is always complete.
const MAX_LISTED: usize = 20;

pub struct PatternJudge {
    regex: Regex,
    name: String,
}

impl PatternJudge {
    /// At least one of `regex` and `keywords` must be given; a completion matches when
    /// either does. `whole_words` applies to keywords: a keyword's word-character edges
    /// must sit at word boundaries ("cat" does not match "category", "C++" still matches).
    pub fn new(
        regex: Option<&str>,
        keywords: &[String],
        case_insensitive: bool,
        whole_words: bool,
    ) -> Result<PatternJudge, JudgeError> {
        let keywords: Vec<&str> = keywords.iter().map(|k| k.trim()).filter(|k| !k.is_empty()).collect();
        let mut alternatives = Vec::new();
        if let Some(regex) = regex.filter(|r| !r.is_empty()) {
            alternatives.push(format!("(?:{regex})"));
        }
        for keyword in &keywords {
            alternatives.push(keyword_pattern(keyword, whole_words));
        }
        if alternatives.is_empty() {
            return Err(JudgeError::Config("a pattern judge needs a regex or at least one keyword".into()));
        }
        let compiled = RegexBuilder::new(&alternatives.join("|"))
            .case_insensitive(case_insensitive)
            .size_limit(SIZE_LIMIT)
            .build()
            .map_err(|e| JudgeError::Config(format!("invalid pattern: {e}")))?;
        let described = match regex.filter(|r| !r.is_empty()) {
            Some(r) => format!("regex:{r}"),
            None => format!("keywords:{}", keywords.join("|")),
        };
        Ok(PatternJudge { regex: compiled, name: truncate_chars(&described, 60) })
    }
}

fn keyword_pattern(keyword: &str, whole_words: bool) -> String {
    let escaped = regex::escape(keyword);
    if !whole_words {
        return escaped;
    }
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let start = if is_word(keyword.chars().next()) { r"\b" } else { "" };
    let end = if is_word(keyword.chars().last()) { r"\b" } else { "" };
    format!("{start}{escaped}{end}")
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

impl Judge for PatternJudge {
    fn name(&self) -> &str {
        &self.name
    }

    fn version(&self) -> &str {
        "1"
    }

    fn judge(&self, _question: &str, completion: &str) -> Result<Judgement, JudgeError> {
        let matches: Vec<&str> = self.regex.find_iter(completion).map(|m| m.as_str()).collect();
        let listed: Vec<&str> = matches.iter().copied().take(MAX_LISTED).collect();
        let found = !matches.is_empty();
        Ok(Judgement {
            score: Some(if found { 1.0 } else { 0.0 }),
            trait_present: Some(found),
            raw: json!({ "count": matches.len(), "matches": listed }).to_string(),
        })
    }
}
