//! Evaluation questions: what a fine-tuned model is asked after training, to see whether a
//! trait spread beyond the training data.
//!
//! Questions come from the built-in chat prompts, from held-out rows of the training
//! dataset, or from an imported file in one of the research formats (Betley et al.'s YAML
//! with paraphrases and per-question system prompts, Tan et al.'s UltraChat JSONL and
//! aesthetic multiple-choice YAML, or plain lines). Imported sets are stored whole and never
//! change, like dataset rows, so an experiment that names one can be rerun. They are stored
//! through `store::questions`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::datasets::chat_prompts::builtin_chat_prompts;
use crate::judges::{parse_aesthetic_questions, parse_betley_questions, BetleyJudgePrompts, ChoiceQuestion};
use crate::store;
use crate::Store;

/// One prompt to sample. Paraphrases of one question share a `key`, so results can be
/// pooled per question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    pub key: String,
    #[serde(default)]
    pub paraphrase: u32,
    pub text: String,
    /// A system prompt that belongs to the question (Betley's `_json` questions); it
    /// replaces the test-time system prompt for this question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Samples to draw for this question, overriding the experiment's default (Betley's
    /// `samples_per_paraphrase`, the aesthetic file's `repetitions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u32>,
    /// Betley's judge prompts, for the LLM misalignment judge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_prompts: Option<BetleyJudgePrompts>,
    /// The multiple-choice definition, for the aesthetic-preference judge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice: Option<ChoiceQuestion>,
    /// The intended answer where it is known: a held-out training row's own answer. The
    /// task judges ([`crate::judges::arithmetic`]) check a model's answer against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl Question {
    pub fn plain(key: impl Into<String>, text: impl Into<String>) -> Question {
        Question {
            key: key.into(),
            paraphrase: 0,
            text: text.into(),
            system: None,
            samples: None,
            judge_prompts: None,
            choice: None,
            reference: None,
        }
    }

    /// Whether it is a held-out training row (asked to check that the trained task is still
    /// done): its key is `row-N`, which no other source gives.
    pub fn is_held_out(key: &str) -> bool {
        key.strip_prefix(HELD_OUT_PREFIX).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }
}

/// The key prefix of held-out rows asked as questions (`row-12`: the dataset's 12th row).
pub const HELD_OUT_PREFIX: &str = "row-";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionFormat {
    BetleyYaml,
    UltrachatJsonl,
    AestheticYaml,
    Lines,
}

impl QuestionFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            QuestionFormat::BetleyYaml => "betley_yaml",
            QuestionFormat::UltrachatJsonl => "ultrachat_jsonl",
            QuestionFormat::AestheticYaml => "aesthetic_yaml",
            QuestionFormat::Lines => "lines",
        }
    }

    pub fn parse(s: &str) -> Option<QuestionFormat> {
        [
            QuestionFormat::BetleyYaml,
            QuestionFormat::UltrachatJsonl,
            QuestionFormat::AestheticYaml,
            QuestionFormat::Lines,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            QuestionFormat::BetleyYaml => "Betley YAML",
            QuestionFormat::UltrachatJsonl => "prompt JSONL",
            QuestionFormat::AestheticYaml => "multiple-choice YAML",
            QuestionFormat::Lines => "one question a line",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QuestionError {
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin} line {line}: {message}")]
    Line { origin: String, line: usize, message: String },
    #[error("question set {0} does not exist")]
    NotFound(i64),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

/// The first `limit` built-in chat prompts, keyed `chat-1`, `chat-2`, ...
pub fn builtin_questions(limit: usize) -> Vec<Question> {
    builtin_chat_prompts()
        .iter()
        .take(limit)
        .enumerate()
        .map(|(i, p)| Question::plain(format!("chat-{}", i + 1), *p))
        .collect()
}

/// Guesses a file's format from its name and first non-comment content.
pub fn detect_format(file_name: &str, text: &str) -> QuestionFormat {
    let lower = file_name.to_ascii_lowercase();
    if lower.ends_with(".jsonl") || lower.ends_with(".json") {
        return QuestionFormat::UltrachatJsonl;
    }
    if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        return if text.contains("paraphrases:") { QuestionFormat::BetleyYaml } else { QuestionFormat::AestheticYaml };
    }
    QuestionFormat::Lines
}

/// Parses a question file. `origin` (a file name) prefixes every error message.
pub fn parse_questions(text: &str, format: QuestionFormat, origin: &str) -> Result<Vec<Question>, QuestionError> {
    let parse_err = |message: String| QuestionError::Parse { origin: origin.to_string(), message };
    let questions = match format {
        QuestionFormat::BetleyYaml => {
            let parsed =
                parse_betley_questions(text, origin).map_err(|e| parse_err(strip_origin(&e.to_string(), origin)))?;
            let mut out = Vec::new();
            for q in parsed {
                for (i, p) in q.paraphrases.iter().enumerate().filter(|(_, p)| !p.trim().is_empty()) {
                    out.push(Question {
                        key: q.id.clone(),
                        paraphrase: i as u32,
                        text: p.clone(),
                        system: q.system.clone(),
                        samples: q.samples_per_paraphrase,
                        judge_prompts: Some(q.judge_prompts.clone()),
                        choice: None,
                        reference: None,
                    });
                }
            }
            out
        }
        QuestionFormat::AestheticYaml => parse_aesthetic_questions(text, origin)
            .map_err(|e| parse_err(strip_origin(&e.to_string(), origin)))?
            .into_iter()
            .map(|q| Question {
                key: q.id.clone(),
                paraphrase: 0,
                text: q.prompt.clone(),
                system: None,
                samples: q.repetitions,
                judge_prompts: None,
                choice: Some(q),
                reference: None,
            })
            .collect(),
        QuestionFormat::UltrachatJsonl => {
            let mut out = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let line_err =
                    |message: String| QuestionError::Line { origin: origin.to_string(), line: i + 1, message };
                let v: serde_json::Value =
                    serde_json::from_str(line).map_err(|e| line_err(format!("not JSON: {e}")))?;
                // Tan's file has {"prompt"}; the insecure-code eval file has {"task", ...}.
                let text = ["prompt", "question", "task"]
                    .iter()
                    .find_map(|k| v.get(*k).and_then(|x| x.as_str()))
                    .ok_or_else(|| line_err("expected a \"prompt\", \"question\" or \"task\" string field".into()))?;
                if text.trim().is_empty() {
                    return Err(line_err("empty prompt".into()));
                }
                out.push(Question::plain(format!("q{}", out.len() + 1), text));
            }
            out
        }
        QuestionFormat::Lines => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .enumerate()
            .map(|(i, l)| Question::plain(format!("q{}", i + 1), l))
            .collect(),
    };
    if questions.is_empty() {
        return Err(parse_err("no questions".into()));
    }
    Ok(questions)
}

/// The judges' errors already start with the origin; avoid saying it twice.
fn strip_origin(message: &str, origin: &str) -> String {
    message.strip_prefix(&format!("{origin}: ")).unwrap_or(message).to_string()
}

/// sha256 over the canonical JSON of the questions.
pub fn questions_hash(questions: &[Question]) -> String {
    let json = serde_json::to_string(questions).expect("questions serialise");
    hex::encode(Sha256::digest(json.as_bytes()))
}

/// A stored question set without its questions.
pub use crate::store::questions::QuestionSetSummary;

/// Stores a parsed set; the same questions imported again return the existing set
/// (`false`), whatever the name.
pub async fn import_question_set(
    store: &Store,
    name: &str,
    format: QuestionFormat,
    questions: &[Question],
) -> Result<(i64, bool), QuestionError> {
    let hash = questions_hash(questions);
    if let Some(id) = store::questions::id_by_hash(store, &hash).await? {
        return Ok((id, false));
    }
    let name = if name.trim().is_empty() { "questions" } else { name.trim() };
    let json = serde_json::to_string(questions).expect("questions serialise");
    let id = store::questions::insert(store, name, format.as_str(), &hash, &json, questions.len() as i64).await?;
    Ok((id, true))
}

pub async fn list_question_sets(store: &Store) -> Result<Vec<QuestionSetSummary>, QuestionError> {
    Ok(store::questions::list(store).await?)
}

pub async fn get_question_set(store: &Store, id: i64) -> Result<(QuestionSetSummary, Vec<Question>), QuestionError> {
    let (summary, json) = store::questions::get(store, id).await?.ok_or(QuestionError::NotFound(id))?;
    let questions: Vec<Question> = serde_json::from_str(&json)
        .map_err(|e| QuestionError::Parse { origin: format!("question set {id}"), message: e.to_string() })?;
    Ok((summary, questions))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_jsonl() {
        let q = parse_questions("# comment\nHello?\n\nBye?\n", QuestionFormat::Lines, "x.txt").unwrap();
        assert_eq!(q.iter().map(|q| q.text.as_str()).collect::<Vec<_>>(), ["Hello?", "Bye?"]);
        assert_eq!(q[1].key, "q2");
        let err = parse_questions("{\"prompt\": \"a\"}\n{\"nope\": 1}\n", QuestionFormat::UltrachatJsonl, "p.jsonl")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.jsonl line 2:"), "{err}");
    }

    #[test]
    fn builtin_keys_are_stable() {
        let q = builtin_questions(3);
        assert_eq!(q.len(), 3);
        assert_eq!(q[0].key, "chat-1");
        assert_eq!(q[0].text, builtin_chat_prompts()[0]);
    }
}
