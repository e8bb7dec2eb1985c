//! Wire types: what server functions send to pages. Plain serde structs, compiled into
//! both the server and the wasm bundle; conversions from engine types live in `api`.

use serde::{Deserialize, Serialize};

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptVersion {
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
    /// Oldest first; never empty.
    pub versions: Vec<PromptVersion>,
}

impl Prompt {
    pub fn latest(&self) -> &PromptVersion {
        self.versions.last().expect("a prompt always has a version")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DiffLine {
    Same(String),
    Added(String),
    Removed(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSummary {
    pub id: i64,
    pub name: String,
    pub source: String,
    pub row_count: i64,
    pub content_hash: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetDetail {
    pub summary: DatasetSummary,
    /// How the rows were made, as pretty-printed JSON.
    pub recipe: String,
    pub turns: i64,
    pub assistant_chars: LengthStats,
    pub histogram: Vec<(String, i64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LengthStats {
    pub min: i64,
    pub p50: i64,
    pub p90: i64,
    pub max: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowsPage {
    pub offset: i64,
    pub total: i64,
    pub rows: Vec<(i64, Vec<Message>)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ImportResult {
    Created { id: i64, rows: i64 },
    AlreadyPresent { id: i64, name: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub max_upload_bytes: usize,
    pub data_dir: String,
}
