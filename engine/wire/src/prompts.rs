//! The prompt library as both sides see it: a prompt with its versions (oldest first), a
//! version with its paraphrase set, the library's one-line summary, and a diff line
//! between two versions. The store returns these (`engine::prompts::Prompt` is
//! `wire::prompts::Prompt`) and the pages render them, so a new field is written once.

use serde::{Deserialize, Serialize};

/// A prompt as the library lists it: its latest version's text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptSummary {
    pub id: i64,
    pub name: String,
    pub text: String,
    pub version: i64,
    pub tags: Vec<String>,
    pub paraphrase_count: i64,
    pub updated_at: String,
}

/// One version of a prompt: an edit adds one, never rewrites one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptVersion {
    /// The row id (`prompt_versions.id`), which experiments point at.
    pub id: i64,
    pub prompt_id: i64,
    pub version: i64,
    pub text: String,
    pub note: String,
    pub created_at: String,
    pub paraphrases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prompt {
    pub id: i64,
    pub name: String,
    pub tags: Vec<String>,
    pub created_at: String,
    /// Hidden from the library; its versions stay for the experiments that used them.
    pub deleted: bool,
    /// Oldest first; never empty.
    pub versions: Vec<PromptVersion>,
}

impl Prompt {
    pub fn latest(&self) -> &PromptVersion {
        self.versions.last().expect("a prompt always has a version")
    }
}

/// One line of a diff between two versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DiffLine {
    Same(String),
    Added(String),
    Removed(String),
}

/// What the prompt editor submits. Tags come as one comma-separated string and
/// paraphrases as one-per-line text, the shapes a form holds; `engine::prompts::draft`
/// reads them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptForm {
    pub name: String,
    pub text: String,
    pub tags: String,
    pub paraphrases: String,
    pub note: String,
}
