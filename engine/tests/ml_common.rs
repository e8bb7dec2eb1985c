//! Helpers shared by the ML integration tests: the real-model gate and reference paths.
#![allow(dead_code)]

use std::path::PathBuf;

/// The default model, if real-weight tests are enabled (`INOCULAB_REAL_MODEL=1`); the
/// file is `INOCULAB_MODEL` or the workspace's `.data/models/...gguf`.
pub fn real_model_path(test: &str) -> Option<PathBuf> {
    if std::env::var("INOCULAB_REAL_MODEL").ok().as_deref() != Some("1") {
        eprintln!("skipped {test}: set INOCULAB_REAL_MODEL=1 to run real-weight tests");
        return None;
    }
    let p = std::env::var("INOCULAB_MODEL").map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.data/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    });
    assert!(p.exists(), "INOCULAB_REAL_MODEL=1 but {} does not exist (run scripts/fetch-model)", p.display());
    Some(p)
}

/// The independent PyTorch reference kept outside the repository, if present.
pub fn shared_reference() -> Option<serde_json::Value> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/smollm2_135m_reference.json");
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
pub fn attention_lora() -> engine::ml::LoraConfig {
    engine::ml::LoraConfig {
        target_modules: ["q_proj", "k_proj", "v_proj", "o_proj"].map(String::from).to_vec(),
        ..Default::default()
    }
}
