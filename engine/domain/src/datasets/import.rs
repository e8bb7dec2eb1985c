//! Importing a user's JSONL file: parsing each line in any of the accepted shapes,
//! validating every line and reporting all bad ones with their line numbers, and saving
//! the rows as one dataset, all or nothing.
//!
//! Accepted shapes, one JSON object per line:
//! - OpenAI chat: `{"messages": [{"role": "user", "content": "…"}, …]}`
//! - `{"prompt": "…", "completion": "…"}`
//! - `{"question": "…", "answer": "…"}` (GSM8K)
//!
//! Blank lines are skipped and a UTF-8 byte-order mark is ignored, because editors and
//! spreadsheet exports add both without the user noticing.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{save_dataset, validate_name, DatasetError, DatasetSource, ImportOutcome, Message, Role, Row};
use crate::Store;

/// Bounds on what an import accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportLimits {
    /// Most characters over all turns of one row; longer rows are reported, not truncated,
    /// because a silent cut would change what the model learns.
    pub max_chars_per_row: usize,
    /// Most rows in one file.
    pub max_rows: usize,
    /// Most bad lines described in [`ImportErrors::errors`]; all are still counted.
    pub max_reported_errors: usize,
}

impl Default for ImportLimits {
    fn default() -> ImportLimits {
        ImportLimits { max_chars_per_row: 50_000, max_rows: 1_000_000, max_reported_errors: 1000 }
    }
}

/// Which shape a line had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowFormat {
    /// `{"messages": […]}`
    Chat,
    /// `{"prompt", "completion"}`
    PromptCompletion,
    /// `{"question", "answer"}`
    QuestionAnswer,
}

/// A file that parsed cleanly.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    pub rows: Vec<Row>,
    /// Lines of each shape; a file may mix shapes.
    pub formats: BTreeMap<RowFormat, usize>,
    pub blank_lines: usize,
}

/// Why one line was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineProblem {
    /// serde_json's message, e.g. "expected `,` or `}` at line 1 column 9".
    BadJson(String),
    NotUtf8,
    /// The line is JSON but not an object (an array, a string, a number…).
    NotAnObject,
    /// An object with none of the accepted key sets; holds its keys.
    UnknownShape(Vec<String>),
    /// A field that must be a string (or, for `messages`, an array of objects) is not.
    WrongType {
        field: String,
        expected: &'static str,
    },
    /// A turn (1-based) is missing its `role` or `content`.
    MissingField {
        turn: usize,
        field: &'static str,
    },
    UnknownRole {
        turn: usize,
        role: String,
    },
    /// A turn (1-based) has empty or whitespace-only content.
    EmptyContent {
        turn: usize,
        role: Role,
    },
    NoAssistantTurn,
    TooLong {
        chars: usize,
        max: usize,
    },
    /// The file has more rows than [`ImportLimits::max_rows`]; reading stopped here.
    TooManyRows {
        max: usize,
    },
}

impl fmt::Display for LineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineProblem::BadJson(msg) => write!(f, "bad JSON: {msg}"),
            LineProblem::NotUtf8 => write!(f, "not valid UTF-8 text"),
            LineProblem::NotAnObject => write!(f, "not a JSON object"),
            LineProblem::UnknownShape(keys) => write!(
                f,
                "unknown shape (keys: {}); expected \"messages\", \"prompt\"+\"completion\" or \"question\"+\"answer\"",
                if keys.is_empty() { "none".to_owned() } else { keys.join(", ") }
            ),
            LineProblem::WrongType { field, expected } => write!(f, "\"{field}\" must be {expected}"),
            LineProblem::MissingField { turn, field } => write!(f, "message {turn} has no \"{field}\""),
            LineProblem::UnknownRole { turn, role } => {
                write!(f, "message {turn} has unknown role {role:?} (expected system, user or assistant)")
            }
            LineProblem::EmptyContent { turn, role } => {
                write!(f, "message {turn} ({}) has empty content", role.as_str())
            }
            LineProblem::NoAssistantTurn => write!(f, "no assistant turn"),
            LineProblem::TooLong { chars, max } => write!(f, "too long: {chars} characters (at most {max} per row)"),
            LineProblem::TooManyRows { max } => write!(f, "too many rows: at most {max} per file"),
        }
    }
}

/// A rejected line; `line` is 1-based, as editors number lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub problem: LineProblem,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

/// Every bad line of a file: the first [`ImportLimits::max_reported_errors`] described,
/// all of them counted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ImportErrors {
    pub errors: Vec<LineError>,
    pub total: usize,
}

impl fmt::Display for ImportErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let noun = if self.total == 1 { "line" } else { "lines" };
        write!(f, "the file was not imported: {} bad {noun}", self.total)?;
        for e in self.errors.iter().take(5) {
            write!(f, "; {e}")?;
        }
        if self.total > 5 {
            write!(f, "; …")?;
        }
        Ok(())
    }
}

/// Parses and validates a whole JSONL file. Either every non-blank line is a valid row,
/// or the result lists the bad lines.
pub fn parse_jsonl(bytes: &[u8], limits: &ImportLimits) -> Result<Parsed, ImportErrors> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut rows = Vec::new();
    let mut formats = BTreeMap::new();
    let mut blank_lines = 0;
    let mut errors = Vec::new();
    let mut total = 0;
    let mut report = |line: usize, problem: LineProblem| {
        total += 1;
        if errors.len() < limits.max_reported_errors {
            errors.push(LineError { line, problem });
        }
    };
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_no = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            blank_lines += 1;
            continue;
        }
        if rows.len() >= limits.max_rows {
            report(line_no, LineProblem::TooManyRows { max: limits.max_rows });
            break;
        }
        match parse_line(raw, limits) {
            Ok((row, format)) => {
                *formats.entry(format).or_insert(0) += 1;
                rows.push(row);
            }
            Err(problem) => report(line_no, problem),
        }
    }
    if total > 0 {
        return Err(ImportErrors { errors, total });
    }
    // The trailing newline of the last line leaves one empty piece that is not a line.
    if bytes.ends_with(b"\n") {
        blank_lines -= 1;
    }
    Ok(Parsed { rows, formats, blank_lines })
}

/// Parses one non-blank line.
pub fn parse_line(raw: &[u8], limits: &ImportLimits) -> Result<(Row, RowFormat), LineProblem> {
    let text = std::str::from_utf8(raw).map_err(|_| LineProblem::NotUtf8)?;
    let value: Value = serde_json::from_str(text).map_err(|e| LineProblem::BadJson(e.to_string()))?;
    let Value::Object(obj) = value else {
        return Err(LineProblem::NotAnObject);
    };
    let (row, format) = if let Some(messages) = obj.get("messages") {
        (Row { messages: parse_messages(messages)? }, RowFormat::Chat)
    } else if obj.contains_key("prompt") || obj.contains_key("completion") {
        (pair(&obj, "prompt", "completion")?, RowFormat::PromptCompletion)
    } else if obj.contains_key("question") || obj.contains_key("answer") {
        (pair(&obj, "question", "answer")?, RowFormat::QuestionAnswer)
    } else {
        return Err(LineProblem::UnknownShape(obj.keys().cloned().collect()));
    };
    validate_row(&row, limits)?;
    Ok((row, format))
}

/// A user/assistant pair from two string fields. A prompt without its completion is a row
/// with nothing to learn, so it is reported as having no assistant turn.
fn pair(obj: &Map<String, Value>, user_key: &str, assistant_key: &str) -> Result<Row, LineProblem> {
    let user = string_field(obj, user_key)?;
    let Some(user) = user else {
        return Err(LineProblem::UnknownShape(obj.keys().cloned().collect()));
    };
    let Some(assistant) = string_field(obj, assistant_key)? else {
        return Err(LineProblem::NoAssistantTurn);
    };
    Ok(Row::user_assistant(user, assistant))
}

fn string_field(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, LineProblem> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(LineProblem::WrongType { field: key.to_owned(), expected: "a string" }),
    }
}

fn parse_messages(messages: &Value) -> Result<Vec<Message>, LineProblem> {
    let Value::Array(items) = messages else {
        return Err(LineProblem::WrongType { field: "messages".into(), expected: "an array of messages" });
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let turn = i + 1;
            let Value::Object(m) = item else {
                return Err(LineProblem::WrongType {
                    field: format!("messages[{i}]"),
                    expected: "an object with \"role\" and \"content\"",
                });
            };
            let role = match m.get("role") {
                None => return Err(LineProblem::MissingField { turn, field: "role" }),
                Some(Value::String(r)) => {
                    Role::parse(r).ok_or_else(|| LineProblem::UnknownRole { turn, role: r.clone() })?
                }
                Some(_) => {
                    return Err(LineProblem::WrongType { field: format!("messages[{i}].role"), expected: "a string" })
                }
            };
            let content = match m.get("content") {
                None | Some(Value::Null) => return Err(LineProblem::MissingField { turn, field: "content" }),
                Some(Value::String(c)) => c.clone(),
                Some(_) => {
                    return Err(LineProblem::WrongType {
                        field: format!("messages[{i}].content"),
                        expected: "a string",
                    })
                }
            };
            Ok(Message { role, content })
        })
        .collect()
}

/// The rules every stored row obeys, whatever made it.
pub fn validate_row(row: &Row, limits: &ImportLimits) -> Result<(), LineProblem> {
    for (i, m) in row.messages.iter().enumerate() {
        if m.content.trim().is_empty() {
            return Err(LineProblem::EmptyContent { turn: i + 1, role: m.role });
        }
    }
    if !row.messages.iter().any(|m| m.role == Role::Assistant) {
        return Err(LineProblem::NoAssistantTurn);
    }
    let chars = row.n_chars();
    if chars > limits.max_chars_per_row {
        return Err(LineProblem::TooLong { chars, max: limits.max_chars_per_row });
    }
    Ok(())
}

/// Parses `bytes` and saves the rows as a dataset named `name` (or, when `name` is blank,
/// after the file), in one transaction. A file whose rows equal an existing dataset's is
/// not stored twice: the existing dataset is returned as [`ImportOutcome::AlreadyPresent`].
pub async fn import(
    store: &Store,
    name: &str,
    file_name: &str,
    bytes: &[u8],
    limits: &ImportLimits,
) -> Result<ImportOutcome, DatasetError> {
    let name = if name.trim().is_empty() { default_name(file_name) } else { name.to_owned() };
    let name = validate_name(&name)?;
    // Parsing a large upload takes a while: on a multi-threaded runtime (the server) the
    // thread is handed over so other requests keep being served meanwhile.
    let parse = || parse_jsonl(bytes, limits);
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    let parsed = if multi_thread { tokio::task::block_in_place(parse) } else { parse() }?;
    if parsed.rows.is_empty() {
        return Err(DatasetError::Empty);
    }
    let recipe = serde_json::json!({
        "file_name": file_name,
        "bytes": bytes.len(),
        "formats": parsed.formats,
        "blank_lines": parsed.blank_lines,
    });
    save_dataset(store, &name, DatasetSource::Import, &recipe, &parsed.rows).await
}

/// "gsm8k/train.jsonl" → "train".
fn default_name(file_name: &str) -> String {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let stem = base.strip_suffix(".jsonl").or_else(|| base.strip_suffix(".json")).unwrap_or(base);
    if stem.trim().is_empty() {
        "imported dataset".to_owned()
    } else {
        stem.to_owned()
    }
}
