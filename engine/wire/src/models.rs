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

/// Parameter counts as researchers say them: "134.5 M".
pub fn format_params(n: u64) -> String {
    scaled(n, &[(1e9, "B"), (1e6, "M"), (1e3, "k")], "")
}

/// Sizes in decimal units, as model hubs list them: "98.4 MB".
pub fn format_size(bytes: u64) -> String {
    scaled(bytes, &[(1e9, "GB"), (1e6, "MB"), (1e3, "kB")], "bytes")
}

fn scaled(n: u64, units: &[(f64, &str)], base_unit: &str) -> String {
    let x = n as f64;
    for &(scale, unit) in units {
        if x >= scale {
            return format!("{:.1} {unit}", x / scale);
        }
    }
    if base_unit.is_empty() {
        n.to_string()
    } else {
        format!("{n} {base_unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_researchers_write_them() {
        for (n, params, size) in [
            (0, "0", "0 bytes"),
            (999, "999", "999 bytes"),
            (20_544, "20.5 k", "20.5 kB"),
            (134_515_008, "134.5 M", "134.5 MB"),
            (98_362_432, "98.4 M", "98.4 MB"),
            (7_241_732_096, "7.2 B", "7.2 GB"),
        ] {
            assert_eq!(format_params(n), params);
            assert_eq!(format_size(n), size);
        }
    }
}
