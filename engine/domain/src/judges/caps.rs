//! The capital-letters judge: share of upper-case letters among cased letters.
//!
//! Letters without case (digits, punctuation, CJK, emoji) are not counted, so "42 + 7" has
//! no score rather than a score of 0. The default threshold 0.9 leaves room for the few
//! lower-case letters an otherwise shouted answer keeps (units like "km", a URL, an
//! identifier in code), while ordinary prose (2-5 % capitals) and Title Case headings
//! (20-40 %) stay far below it.

use serde_json::json;

use super::{check_threshold, Judge, JudgeError, Judgement};

pub fn default_threshold() -> f64 {
    0.9
}

/// Below this many cased letters the share is noise ("OK" would be 100 % caps).
pub fn default_min_letters() -> usize {
    10
}

pub struct CapsJudge {
    threshold: f64,
    min_letters: usize,
}

impl CapsJudge {
    pub fn new(threshold: f64, min_letters: usize) -> Result<CapsJudge, JudgeError> {
        check_threshold("caps", threshold, 0.0..=1.0)?;
        Ok(CapsJudge { threshold, min_letters: min_letters.max(1) })
    }
}

/// (upper-case letters, cased letters) in `text`.
pub fn count_cased(text: &str) -> (usize, usize) {
    let (mut upper, mut cased) = (0, 0);
    for c in text.chars() {
        if c.is_uppercase() {
            upper += 1;
            cased += 1;
        } else if c.is_lowercase() {
            cased += 1;
        }
    }
    (upper, cased)
}

impl Judge for CapsJudge {
    fn name(&self) -> &str {
        "caps"
    }

    fn version(&self) -> &str {
        "1"
    }

    fn judge(&self, _question: &str, completion: &str) -> Result<Judgement, JudgeError> {
        let (upper, cased) = count_cased(completion);
        if cased < self.min_letters {
            let reason = format!("fewer than {} cased letters", self.min_letters);
            return Ok(Judgement::undetermined(
                json!({ "upper": upper, "cased": cased, "reason": reason }).to_string(),
            ));
        }
        let share = upper as f64 / cased as f64;
        Ok(Judgement {
            score: Some(share),
            trait_present: Some(share >= self.threshold),
            raw: json!({ "upper": upper, "cased": cased, "share": share }).to_string(),
        })
    }
}
