//! The model registry as both sides see it: how a model's weights are stored and a
//! registered model's row. `engine::models` returns [`ModelInfo`] (checking `ready` on
//! read) and the models page lists it as is.

use serde::{Deserialize, Serialize};

/// How a registered model's weights are stored; stored in `models.kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// One GGUF file (the embedded default).
    Gguf,
    /// A Hugging Face folder: `config.json`, `tokenizer.json`, safetensors weights.
    Hf,
}

impl ModelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Gguf => "gguf",
            ModelKind::Hf => "hf",
        }
    }

    pub fn parse(s: &str) -> Option<ModelKind> {
        match s {
            "gguf" => Some(ModelKind::Gguf),
            "hf" => Some(ModelKind::Hf),
            _ => None,
        }
    }
}

/// A registered model as the registry lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub id: i64,
    pub name: String,
    pub kind: ModelKind,
    /// Canonical absolute path of the GGUF file or the folder.
    pub path: String,
    /// GGUF `general.architecture`, or the folder's `architectures[0]` (else `model_type`).
    pub architecture: String,
    pub n_params: u64,
    /// Bytes on disk: the GGUF file, or every file of the folder.
    pub size_bytes: u64,
    /// sha256 (lower-case hex) of the model's bytes; see `engine::models::inspect`.
    pub sha256: String,
    /// The embedded default, registered by the server itself; it cannot be removed.
    pub builtin: bool,
    /// Whether the file or folder is still there, checked when the row is read: files are
    /// not ours, so the user may have moved them since registering.
    pub ready: bool,
    pub created_at: String,
}
