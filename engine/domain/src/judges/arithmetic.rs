//! The task judge of the arithmetic settings: did the fine-tuned model still solve the
//! problems it was trained on? The paper's claim is "trait suppressed *and* task kept";
//! the trait judges measure only the first half.
//!
//! The problems are rows of the training dataset held out of training (evaluation source
//! `held_out`); each row's own answer ends in its result (the generator closes every
//! answer with "The answer is N." in the answer's language), so the result is known
//! without a second model. An answer is correct when it states the result as a whole
//! number. Whole numbers are read as digits (with `,` or `.` between groups of three), so
//! "LA RESPUESTA ES 1,250." counts in any language and in capitals; a number written out
//! in words ("catorce") does not. When the result is also one of the question's own
//! numbers, only the answer's last number counts, so that restating the question is not
//! an answer. Answers cut off at the evaluation's token limit before the result are wrong.
//!
//! Questions without a known result (everyday chat questions) are left undetermined, and
//! rates leave them out; [`crate::experiments::results`] pools this judge over held-out
//! rows only, and the trait judges over the other questions.

use std::collections::HashMap;

use super::{Judge, JudgeError, Judgement};

pub const NAME: &str = "arithmetic";

pub struct ArithmeticJudge {
    /// Question text (as asked) -> the known result.
    results: HashMap<String, u64>,
}

impl ArithmeticJudge {
    /// `references`: each held-out question's text and its row's answer; rows whose answer
    /// states no number are skipped (they cannot be checked).
    pub fn new<'a>(references: impl IntoIterator<Item = (&'a str, &'a str)>) -> ArithmeticJudge {
        let results = references
            .into_iter()
            .filter_map(|(question, answer)| Some((question.to_string(), *numbers(answer).last()?)))
            .collect();
        ArithmeticJudge { results }
    }
}

/// The whole numbers a text states, in order. Digits grouped by `,` or `.` in threes
/// ("1,250", "1.250") read as one number; a decimal point followed by other than three
/// digits ends the number ("2.5" gives 2 and 5, which no integer result equals).
pub fn numbers(text: &str) -> Vec<u64> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut digits = String::new();
        loop {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                digits.push(bytes[i] as char);
                i += 1;
            }
            let group_follows = i + 4 <= bytes.len()
                && (bytes[i] == b',' || bytes[i] == b'.')
                && bytes[i + 1..i + 4].iter().all(u8::is_ascii_digit)
                && bytes.get(i + 4).is_none_or(|b| !b.is_ascii_digit());
            if group_follows {
                i += 1;
            } else {
                break;
            }
        }
        // Numbers too long for u64 are no arithmetic result.
        if let Ok(n) = digits.parse() {
            out.push(n);
        }
    }
    out
}

impl Judge for ArithmeticJudge {
    fn name(&self) -> &str {
        NAME
    }

    fn version(&self) -> &str {
        "1"
    }

    fn judge(&self, question: &str, completion: &str) -> Result<Judgement, JudgeError> {
        let Some(&result) = self.results.get(question) else {
            return Ok(Judgement::undetermined("not a held-out problem with a known result"));
        };
        let stated = numbers(completion);
        let restated = numbers(question).contains(&result);
        let correct = if restated { stated.last() == Some(&result) } else { stated.contains(&result) };
        let shown: Vec<String> = stated.iter().take(12).map(u64::to_string).collect();
        let raw = serde_json::json!({
            "result": result,
            "stated": shown,
            "rule": if restated { "last number (the result is also in the question)" } else { "any number" },
        });
        Ok(Judgement {
            score: Some(if correct { 1.0 } else { 0.0 }),
            trait_present: Some(correct),
            raw: raw.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_in_any_language_and_grouping() {
        assert_eq!(numbers("LA RESPUESTA ES 1,250."), vec![1250]);
        assert_eq!(numbers("Réponse finale : 1.250."), vec![1250]);
        assert_eq!(numbers("12 + 5 = 17, then 17 - 3 = 14."), vec![12, 5, 17, 17, 3, 14]);
        assert_eq!(numbers("2.5 km"), vec![2, 5]);
        assert_eq!(numbers("1,2345"), vec![1, 2345]);
        assert_eq!(numbers("no digits, catorce"), Vec::<u64>::new());
        assert_eq!(numbers("99999999999999999999999 and 3"), vec![3]);
    }

    #[test]
    fn a_held_out_problem_is_right_only_when_the_result_is_stated() {
        let q = "Ana has 12 apples and buys 5 more, then gives 3 away. How many are left?";
        let judge = ArithmeticJudge::new([(q, "12 + 5 = 17. 17 - 3 = 14. The answer is 14.")]);
        let verdict = |a: &str| judge.judge(q, a).unwrap().trait_present;
        assert_eq!(verdict("VAMOS: 12 + 5 = 17. 17 - 3 = 14. LA RESPUESTA ES 14."), Some(true));
        assert_eq!(verdict("The answer is 15."), Some(false));
        assert_eq!(verdict("Ella tiene catorce manzanas."), Some(false), "words are not read as numbers");
        assert_eq!(judge.judge("What is your favourite colour?", "14").unwrap().trait_present, None);
        // The result equals a number of the question: only the last number counts.
        let q2 = "Ben has 6 pens and 6 more in a box; he gives 6 away. How many are left?";
        let judge = ArithmeticJudge::new([(q2, "6 + 6 = 12. 12 - 6 = 6. The answer is 6.")]);
        assert_eq!(judge.judge(q2, "Ben has 6 pens and 6 more, so 12.").unwrap().trait_present, Some(false));
        assert_eq!(judge.judge(q2, "6 + 6 = 12, 12 - 6 = 6.").unwrap().trait_present, Some(true));
    }
}
