//! The Candle ML core: loading models (GGUF or a Hugging Face folder), the tokenizer and
//! chat template, a differentiable llama/qwen2 forward pass, LoRA fine-tuning, batched
//! sampling and teacher-forced scoring. Nothing here knows about the web, the store or the
//! research domain (datasets, experiments, judges): those crates build on this one.

pub mod adapter;
pub mod attention;
pub mod chat;
pub mod config;
pub mod gguf;
pub mod hf;
pub mod host;
pub mod lora;
pub mod model;
pub mod ops;
pub mod quant;
pub mod sample;
pub mod score;
pub mod testing;
pub mod tokenizer;
pub mod train;

use std::path::{Path, PathBuf};

pub use chat::{ChatExample, ChatMessage, ChatTemplate, Role, SystemPrompt};
pub use config::Config;
pub use host::{Host, Priority};
pub use lora::{Lora, LoraConfig};
pub use model::Model;
pub use sample::{generate, Sample, SampleConfig};
pub use score::score_completions;
pub use tokenizer::Tokenizer;
pub use train::{train, train_tokenised, Probe, Schedule, StepMetrics, Tokenised, TrainConfig, TrainOutcome, Trained};

/// Everything that can go wrong in the ML core. Callers map it to a readable message; the
/// variants keep enough context (paths, names) that the message needs no extra wrapping.
#[derive(Debug, thiserror::Error)]
pub enum MlError {
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid model at {path}: {reason}")]
    BadModel { path: PathBuf, reason: String },
    #[error("tokenizer error: {0}")]
    Tokenizer(String),
    #[error("invalid JSON in {path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid input: {0}")]
    Input(String),
    #[error("cancelled")]
    Cancelled,
}

pub type Result<T> = std::result::Result<T, MlError>;

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> MlError + '_ {
    move |source| MlError::Io { path: path.to_path_buf(), source }
}

pub(crate) fn bad_model(path: &Path, reason: impl Into<String>) -> MlError {
    MlError::BadModel { path: path.to_path_buf(), reason: reason.into() }
}

/// A model ready to use: weights, tokenizer and chat template, as loaded from one source.
pub struct LoadedModel {
    pub model: Model,
    pub tokenizer: Tokenizer,
    pub template: ChatTemplate,
}

/// The device models are loaded onto: with the `cuda` feature, the first CUDA GPU when
/// one is present; otherwise the CPU. Everything downstream follows the model's device
/// (fused kernels are CPU-only and fall back to plain ops elsewhere).
pub fn device() -> candle_core::Device {
    #[cfg(feature = "cuda")]
    if let Ok(d) = candle_core::Device::cuda_if_available(0) {
        return d;
    }
    candle_core::Device::Cpu
}

/// Loads a model from either a `.gguf` file or a Hugging Face folder (config.json,
/// safetensors, tokenizer.json), dequantised to f32 on [`device`].
pub fn load_model(path: &Path) -> Result<LoadedModel> {
    let device = device();
    if path.is_dir() {
        hf::load(path, &device)
    } else if path.exists() {
        gguf::load(path, &device)
    } else {
        Err(MlError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
        })
    }
}
