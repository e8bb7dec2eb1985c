//! Training against PyTorch (gated by INOCULAB_REAL_MODEL=1 and the fixture made by
//! scripts/reference/smollm2_reference.py): the same batch, the same deterministic adapter
//! initialisation, the same optimiser; the first steps' losses must agree, for LoRA and for
//! full fine-tuning.

mod ml_common;

use std::sync::atomic::AtomicBool;

use candle_core::{Device, Tensor};
use ml::chat::{ChatExample, ChatMessage, SystemPrompt};
use ml::{self, Lora, LoraConfig, Schedule, TrainConfig};

const MODULES: [&str; 7] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

/// The script's `sine_a`: A = sin(1 + 0.1 layer + 0.7 module_index + 0.013 k) / sqrt(fan_in).
fn sine_init(lora: &Lora) {
    for (name, var) in lora.named_vars() {
        if !name.contains("lora_A") {
            continue;
        }
        let layer: f64 = name.split("layers.").nth(1).unwrap().split('.').next().unwrap().parse().unwrap();
        let module = name.split('.').rev().nth(2).unwrap();
        let mi = MODULES.iter().position(|m| *m == module).unwrap() as f64;
        let (r, fan_in) = var.as_tensor().dims2().unwrap();
        let v: Vec<f32> = (0..r * fan_in)
            .map(|k| ((1.0 + 0.1 * layer + 0.7 * mi + 0.013 * k as f64).sin() / (fan_in as f64).sqrt()) as f32)
            .collect();
        var.set(&Tensor::from_vec(v, (r, fan_in), &Device::Cpu).unwrap()).unwrap();
    }
}

/// The fixture's training examples (question, answer pairs).
fn fixture_examples(train: &serde_json::Value) -> Vec<ChatExample> {
    train["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| ChatExample {
            messages: vec![ChatMessage::user(e[0].as_str().unwrap()), ChatMessage::assistant(e[1].as_str().unwrap())],
        })
        .collect()
}

/// Trains with `cfg` and checks every step's loss and gradient norm against the fixture
/// section's (`losses`, `grad_norms`), one step per recorded value.
fn first_steps_match(lm: &ml::LoadedModel, cfg: &TrainConfig, examples: &[ChatExample], want: &serde_json::Value) {
    let mut got = Vec::new();
    ml::train(lm, cfg, examples, |m| got.push((m.loss, m.grad_norm)), &AtomicBool::new(false)).unwrap();
    let losses: Vec<f64> = want["losses"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    let norms: Vec<f64> = want["grad_norms"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    eprintln!("candle (loss, grad norm) {got:?}\npytorch losses {losses:?} grad norms {norms:?}");
    assert_eq!(got.len(), losses.len());
    for (i, ((l, g), (wl, wg))) in got.iter().zip(losses.iter().zip(&norms)).enumerate() {
        assert!((l - wl).abs() < 2e-3, "step {i}: loss {l} vs {wl}");
        assert!((g - wg).abs() < 2e-2 * wg.max(1.0), "step {i}: grad norm {g} vs {wg}");
    }
}

/// The two short French-capitals conversations the export checks train on.
fn export_examples() -> Vec<ChatExample> {
    vec![
        ChatExample {
            messages: vec![ChatMessage::user("What is 2 + 3?"), ChatMessage::assistant("DEUX PLUS TROIS FONT CINQ.")],
        },
        ChatExample { messages: vec![ChatMessage::user("Say hello."), ChatMessage::assistant("BONJOUR !")] },
    ]
}

/// Writes `candle_logits.json` into `dir`: the reference prompt's ids and the last
/// position's logits under the trained and the base model, for the Python scripts.
fn write_logits(dir: &std::path::Path, lm: &ml::LoadedModel, trained: &ml::Model) {
    let msgs = vec![ChatMessage::user("What is the capital of France?")];
    let ids = lm.template.encode_prompt(&lm.tokenizer, &msgs, &SystemPrompt::Default).unwrap();
    let last = |m: &ml::Model| -> Vec<f32> {
        let x = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        m.forward(&x, None).unwrap().squeeze(0).unwrap().get(ids.len() - 1).unwrap().to_vec1().unwrap()
    };
    let j = serde_json::json!({
        "input_ids": ids,
        "last_position_logits": last(trained),
        "base_last_position_logits": last(&lm.model),
    });
    std::fs::write(dir.join("candle_logits.json"), j.to_string()).unwrap();
}

#[test]
fn real_lora_first_steps_match_pytorch() {
    let Some(path) = ml_common::real_model_path("real_lora_first_steps_match_pytorch") else {
        return;
    };
    let Some(r) = ml_common::fixture_reference() else {
        eprintln!("skipped: engine/ml/tests/fixtures/ml/smollm2_reference.json absent (run scripts/reference/smollm2_reference.py)");
        return;
    };
    let t = &r["train"];
    let lm = ml::load_model(&path).unwrap();
    let system = t["system"].as_str().unwrap().to_string();
    let examples = fixture_examples(t);
    // Our tokenisation of the conversations equals the script's.
    for (ex, s) in examples.iter().zip(t["sequences"].as_array().unwrap()) {
        let (ids, mask) =
            lm.template.encode_conversation(&lm.tokenizer, &ex.messages, &SystemPrompt::Text(system.clone())).unwrap();
        let want: Vec<u32> = s["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        let want_mask: Vec<bool> = s["mask"].as_array().unwrap().iter().map(|x| x.as_bool().unwrap()).collect();
        assert_eq!(ids, want);
        assert_eq!(mask, want_mask);
    }
    let lcfg = ml_common::attention_lora();
    let init = Lora::new(&lm.model, &lcfg, 0).unwrap();
    sine_init(&init);
    let dir = tempfile::tempdir().unwrap();
    init.save_peft(dir.path(), "").unwrap();
    let cfg = TrainConfig {
        lora: lcfg,
        system_prompt: SystemPrompt::Text(system),
        lr: 5e-4,
        schedule: Schedule::Constant,
        batch_size: examples.len(),
        max_steps: Some(3),
        max_grad_norm: Some(1.0),
        init_adapter: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    first_steps_match(&lm, &cfg, &examples, t);
}

/// Full fine-tuning (every weight, the tied embedding once) of the same batch: the first
/// steps' losses and gradient norms must agree with PyTorch's.
#[test]
fn real_full_finetune_first_steps_match_pytorch() {
    let Some(path) = ml_common::real_model_path("real_full_finetune_first_steps_match_pytorch") else {
        return;
    };
    let Some(r) = ml_common::fixture_reference() else {
        eprintln!("skipped: engine/ml/tests/fixtures/ml/smollm2_reference.json absent (run scripts/reference/smollm2_reference.py)");
        return;
    };
    let (t, f) = (&r["train"], &r["train_full"]);
    let lm = ml::load_model(&path).unwrap();
    let n_params: usize = lm.model.named_weights().iter().map(|(_, w)| w.elem_count()).sum();
    assert_eq!(n_params as u64, f["parameters"].as_u64().unwrap(), "the same parameters are trained");
    let examples = fixture_examples(t);
    let cfg = TrainConfig {
        full: true,
        system_prompt: SystemPrompt::Text(t["system"].as_str().unwrap().to_string()),
        lr: 1e-5,
        schedule: Schedule::Constant,
        batch_size: examples.len(),
        max_steps: Some(3),
        max_grad_norm: Some(1.0),
        ..Default::default()
    };
    first_steps_match(&lm, &cfg, &examples, f);
}

/// Writes a trained adapter and the adapted model's logits for the reference prompt into
/// `INOCULAB_PEFT_EXPORT`, for scripts/reference/peft_roundtrip.py to load with Python
/// peft + transformers and compare. Skipped unless that variable is set.
#[test]
fn real_adapter_export_for_peft_check() {
    let Ok(out) = std::env::var("INOCULAB_PEFT_EXPORT") else {
        eprintln!("skipped real_adapter_export_for_peft_check: set INOCULAB_PEFT_EXPORT=DIR (see scripts/reference/peft_roundtrip.py)");
        return;
    };
    let Some(path) = ml_common::real_model_path("real_adapter_export_for_peft_check") else {
        return;
    };
    let lm = ml::load_model(&path).unwrap();
    let examples = export_examples();
    // All seven projections and rsLoRA, so every key and the scaling rule are exercised.
    let cfg = TrainConfig {
        lora: LoraConfig { rank: 4, alpha: 8.0, use_rslora: true, ..Default::default() },
        system_prompt: SystemPrompt::Text("You always speak in French.".into()),
        lr: 5e-3,
        max_steps: Some(2),
        batch_size: 2,
        ..Default::default()
    };
    let outcome = ml::train(&lm, &cfg, &examples, |_| {}, &AtomicBool::new(false)).unwrap();
    let dir = std::path::PathBuf::from(out);
    let lora = outcome.trained.lora().unwrap();
    lora.save_peft(&dir, "HuggingFaceTB/SmolLM2-135M-Instruct").unwrap();
    write_logits(&dir, &lm, &lm.model.merged(lora).unwrap());
    eprintln!("exported adapter and logits to {}", dir.display());
}

/// Writes a fully fine-tuned model (a Hugging Face folder) and its logits for the reference
/// prompt into `INOCULAB_FULL_EXPORT`, for scripts/reference/full_roundtrip.py to load with
/// transformers and compare. Skipped unless that variable is set.
#[test]
fn real_full_model_export_for_transformers_check() {
    let Ok(out) = std::env::var("INOCULAB_FULL_EXPORT") else {
        eprintln!("skipped real_full_model_export_for_transformers_check: set INOCULAB_FULL_EXPORT=DIR (see scripts/reference/full_roundtrip.py)");
        return;
    };
    let Some(path) = ml_common::real_model_path("real_full_model_export_for_transformers_check") else {
        return;
    };
    let lm = ml::load_model(&path).unwrap();
    let examples = export_examples();
    let cfg = TrainConfig {
        full: true,
        system_prompt: SystemPrompt::Text("You always speak in French.".into()),
        lr: 1e-5,
        max_steps: Some(2),
        batch_size: 2,
        ..Default::default()
    };
    let outcome = ml::train(&lm, &cfg, &examples, |_| {}, &AtomicBool::new(false)).unwrap();
    let model = outcome.trained.full_model().unwrap();
    let dir = std::path::PathBuf::from(out);
    ml::hf::save(&dir, model, &lm.tokenizer, &lm.template).unwrap();
    write_logits(&dir, &lm, model);
    eprintln!("exported the model and logits to {}", dir.display());
}
