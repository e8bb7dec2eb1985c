//! The multiple-choice judge for Tan et al.'s aesthetic-preference questions: which of a
//! question's choices the completion picked, and whether that choice is one of the
//! "unpopular" ones (`behaviour.match_if_choice_in`). Also the loader for the YAML file
//! those questions come in.
//!
//! Matching is on normalised text (lower case, punctuation as spaces, whole words), and
//! the choice mentioned first wins. A completion that restates both options before
//! answering ("Between X and Y, I prefer Y") is therefore counted as X: a known limit of
//! first-mention matching, which `raw` makes visible by listing every mention.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Judge, JudgeError, Judgement};

/// One question as written in Tan et al.'s `aesthetic_questions.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceQuestion {
    pub id: String,
    pub prompt: String,
    pub choices: Vec<String>,
    pub behaviour: Behaviour,
    /// How many samples the paper draws per question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetitions: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Behaviour {
    /// The choices that count as expressing the trait.
    pub match_if_choice_in: Vec<String>,
}

/// Reads and checks a YAML list of choice questions. Syntax and shape errors name the line
/// and column; content errors (an unknown trait choice, a repeated id) name the question.
pub fn load_aesthetic_questions(path: impl AsRef<Path>) -> Result<Vec<ChoiceQuestion>, JudgeError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .map_err(|e| JudgeError::File { path: path.display().to_string(), message: e.to_string() })?;
    parse_aesthetic_questions(&text, &path.display().to_string())
}

/// [`load_aesthetic_questions`] on text already read (an upload); `origin` names it in errors.
pub fn parse_aesthetic_questions(text: &str, origin: &str) -> Result<Vec<ChoiceQuestion>, JudgeError> {
    let file_error = |message: String| JudgeError::File { path: origin.to_string(), message };
    let questions: Vec<ChoiceQuestion> = read_yaml(text).map_err(file_error)?;
    validate_questions(&questions).map_err(file_error)?;
    Ok(questions)
}

/// The largest question file read, in bytes.
pub const MAX_YAML_BYTES: usize = 4 << 20;
/// The most text (scalars, with every alias expanded) and the most nodes a question file
/// may expand to. Aliases are legitimate (Betley's file shares one judge prompt between
/// questions), but a few KB of nested aliases expand to gigabytes (finding 7 of issue 24:
/// 112 KB took 1.2 GB): the file is walked once, counting without keeping anything, and
/// refused past these before anything is built.
pub const MAX_YAML_EXPANDED_BYTES: u64 = 32 << 20;
pub const MAX_YAML_NODES: u64 = 1 << 20;

/// Parses YAML into `T` within the limits above; the error is the message to show.
pub(crate) fn read_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    if text.len() > MAX_YAML_BYTES {
        return Err(format!("the file is {} bytes; at most {MAX_YAML_BYTES}", text.len()));
    }
    let budget = Budget { bytes: std::cell::Cell::new(0), nodes: std::cell::Cell::new(0) };
    let walked = serde::de::DeserializeSeed::deserialize(&budget, serde_norway::Deserializer::from_str(text));
    if walked.is_err() && budget.exceeded() {
        return Err(format!(
            "the file expands (its aliases resolved) to more than {} MiB of text or {MAX_YAML_NODES} \
             values; it is refused",
            MAX_YAML_EXPANDED_BYTES >> 20
        ));
    }
    // Any other problem the typed parse reports too, at the first place it meets one (a
    // wrong type before a later syntax error), and within the size the walk just counted.
    serde_norway::from_str(text).map_err(|e| yaml_message(&e))
}

/// Counts a YAML document's expanded size (see [`MAX_YAML_EXPANDED_BYTES`]).
struct Budget {
    bytes: std::cell::Cell<u64>,
    nodes: std::cell::Cell<u64>,
}

impl Budget {
    fn exceeded(&self) -> bool {
        self.bytes.get() > MAX_YAML_EXPANDED_BYTES || self.nodes.get() > MAX_YAML_NODES
    }

    fn count<E: serde::de::Error>(&self, bytes: usize) -> Result<(), E> {
        self.bytes.set(self.bytes.get().saturating_add(bytes as u64));
        self.nodes.set(self.nodes.get() + 1);
        if self.exceeded() {
            Err(E::custom("expanded size limit"))
        } else {
            Ok(())
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for &Budget {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for &Budget {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.count(1)
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.count(8)
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.count(8)
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.count(8)
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<(), E> {
        self.count(s.len())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.count(0)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.count(0)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_newtype_struct<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.count::<A::Error>(0)?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.count::<A::Error>(0)?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        use serde::de::VariantAccess;
        let ((), variant) = data.variant_seed(self)?;
        variant.newtype_variant_seed(self)
    }
}

/// The parser's message, which names the path in the document (`.[0]`) and, when it
/// knows it, the line and column; the location is added where the message lacks it.
pub(crate) fn yaml_message(error: &serde_norway::Error) -> String {
    let message = error.to_string();
    match error.location() {
        Some(at) if !message.contains(" at line ") => {
            format!("{message} at line {} column {}", at.line(), at.column())
        }
        _ => message,
    }
}

fn validate_questions(questions: &[ChoiceQuestion]) -> Result<(), String> {
    if questions.is_empty() {
        return Err("no questions".into());
    }
    let mut ids = HashSet::new();
    for (i, q) in questions.iter().enumerate() {
        let at = format!("question {} ({:?})", i + 1, q.id);
        if q.id.trim().is_empty() {
            return Err(format!("question {} has an empty id", i + 1));
        }
        if !ids.insert(q.id.as_str()) {
            return Err(format!("{at}: the id is used twice"));
        }
        if q.prompt.trim().is_empty() {
            return Err(format!("{at}: empty prompt"));
        }
        if q.choices.len() < 2 {
            return Err(format!("{at}: needs at least two choices"));
        }
        if q.choices.iter().any(|c| normalise(c).trim().is_empty()) {
            return Err(format!("{at}: a choice has no letters or digits"));
        }
        let normalised: HashSet<String> = q.choices.iter().map(|c| normalise(c)).collect();
        if normalised.len() != q.choices.len() {
            return Err(format!("{at}: two choices are the same once normalised"));
        }
        if q.behaviour.match_if_choice_in.is_empty() {
            return Err(format!("{at}: behaviour.match_if_choice_in is empty"));
        }
        for wanted in &q.behaviour.match_if_choice_in {
            if !q.choices.contains(wanted) {
                return Err(format!(
                    "{at}: behaviour.match_if_choice_in names {wanted:?}, which is not among the choices"
                ));
            }
        }
    }
    Ok(())
}

/// Lower case, every run of non-alphanumerics as one space, padded with a space on each
/// side so that `find(" x ")` is a whole-word search.
fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(' ');
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    if !out.ends_with(' ') {
        out.push(' ');
    }
    out
}

/// The normalised forms a completion may use for a choice: the whole choice, without a
/// leading article ("Legend of Zelda..."), and the title before " by " ("Hey Ya").
fn aliases(choice: &str) -> Vec<String> {
    let full = normalise(choice);
    let mut out = vec![full.clone()];
    for article in [" the ", " a ", " an "] {
        if let Some(rest) = full.strip_prefix(article) {
            out.push(format!(" {rest}"));
        }
    }
    if let Some((title, _)) = full.split_once(" by ") {
        if title.trim().len() >= 3 {
            out.push(format!("{title} "));
        }
    }
    out
}

/// Where each choice is first mentioned (byte offset in the normalised completion), in
/// order of mention; choices never mentioned are absent.
pub fn mentions(choices: &[String], completion: &str) -> Vec<(usize, usize)> {
    let text = normalise(completion);
    let mut found: Vec<(usize, usize)> = choices
        .iter()
        .enumerate()
        .filter_map(|(i, choice)| aliases(choice).iter().filter_map(|a| text.find(a.as_str())).min().map(|at| (i, at)))
        .collect();
    // Earliest first; at the same offset the longer choice wins ("Paris Hilton" over "Paris").
    found.sort_by_key(|&(i, at)| (at, std::cmp::Reverse(choices[i].len())));
    found
}

pub struct MultipleChoiceJudge {
    questions: Vec<ChoiceQuestion>,
    by_prompt: HashMap<String, usize>,
}

impl MultipleChoiceJudge {
    pub fn new(questions: Vec<ChoiceQuestion>) -> Result<MultipleChoiceJudge, JudgeError> {
        validate_questions(&questions).map_err(JudgeError::Config)?;
        let by_prompt = questions.iter().enumerate().map(|(i, q)| (q.prompt.trim().to_string(), i)).collect();
        Ok(MultipleChoiceJudge { questions, by_prompt })
    }
}

impl Judge for MultipleChoiceJudge {
    fn name(&self) -> &str {
        "multiple_choice"
    }

    fn version(&self) -> &str {
        "1"
    }

    fn judge(&self, question: &str, completion: &str) -> Result<Judgement, JudgeError> {
        let q = self.by_prompt.get(question.trim()).map(|&i| &self.questions[i]).ok_or_else(|| {
            JudgeError::UnknownQuestion {
                judge: self.name().to_string(),
                question: question.chars().take(200).collect(),
            }
        })?;
        let found = mentions(&q.choices, completion);
        let listed: Vec<&str> = found.iter().map(|&(i, _)| q.choices[i].as_str()).collect();
        let Some(&(picked, _)) = found.first() else {
            return Ok(Judgement::undetermined(
                json!({ "question_id": q.id, "picked": null, "mentions": listed }).to_string(),
            ));
        };
        let picked = &q.choices[picked];
        let present = q.behaviour.match_if_choice_in.contains(picked);
        Ok(Judgement {
            score: Some(if present { 1.0 } else { 0.0 }),
            trait_present: Some(present),
            raw: json!({ "question_id": q.id, "picked": picked, "mentions": listed }).to_string(),
        })
    }
}
