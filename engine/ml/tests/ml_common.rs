//! Helpers shared by the ML integration tests: the real-model gate and reference paths.
#![allow(dead_code)]

use std::path::PathBuf;

pub use ml::testing::real_model_path;

/// The independent PyTorch reference kept outside the repository, if present.
pub fn shared_reference() -> Option<serde_json::Value> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/smollm2_135m_reference.json");
    match std::fs::read_to_string(&p) {
        Ok(t) => Some(serde_json::from_str(&t).expect("reference JSON")),
        Err(_) => {
            eprintln!("shared reference {} absent; that comparison is skipped", p.display());
            None
        }
    }
}

/// The project's own reference fixture (produced by scripts/reference/smollm2_reference.py).
pub fn fixture_reference() -> Option<serde_json::Value> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ml/smollm2_reference.json");
    std::fs::read_to_string(&p).ok().map(|t| serde_json::from_str(&t).expect("fixture JSON"))
}

/// The adapter both PyTorch comparisons use (the benchmark and the first-steps check):
/// rank 8, alpha 16, on the attention projections only, as `bench/train_torch.py` sets it.
#[allow(dead_code)]
pub fn attention_lora() -> ml::LoraConfig {
    ml::LoraConfig {
        target_modules: ["q_proj", "k_proj", "v_proj", "o_proj"].map(String::from).to_vec(),
        ..Default::default()
    }
}
