//! LoRA training on a tiny random model: loss falls, runs are deterministic, cancel and
//! checkpoint/resume behave, adapters round-trip through PEFT files and merge exactly.

use std::sync::atomic::AtomicBool;

use candle_core::{Device, Tensor};
use ml::chat::{ChatExample, ChatMessage, SystemPrompt};
use ml::lora::Adapter;
use ml::score::{score_completions, ScoreItem, ScoreOptions};
use ml::{testing, train, Lora, LoraConfig, Probe, StepMetrics, TrainConfig};

fn examples(n: usize) -> Vec<ChatExample> {
    (0..n)
        .map(|i| ChatExample {
            messages: vec![
                ChatMessage::user(format!("question {i}")),
                ChatMessage::assistant(if i % 2 == 0 { "the the the" } else { "the cat the" }),
            ],
        })
        .collect()
}

fn cfg() -> TrainConfig {
    TrainConfig {
        lora: LoraConfig { rank: 4, alpha: 8.0, dropout: 0.1, ..Default::default() },
        system_prompt: SystemPrompt::Text("You always say the.".into()),
        lr: 1e-2,
        batch_size: 4,
        max_steps: Some(6),
        warmup_steps: 1,
        seed: 3,
        probe_every: 3,
        probes: vec![Probe {
            name: "the".into(),
            messages: vec![ChatMessage::user("question 9")],
            completion: "the the the".into(),
            system: SystemPrompt::Default,
        }],
        ..Default::default()
    }
}

fn run(c: &TrainConfig) -> (Vec<StepMetrics>, ml::TrainOutcome) {
    let lm = testing::tiny_model(11).unwrap();
    let mut ms = Vec::new();
    let out = train(&lm, c, &examples(12), |m| ms.push(m.clone()), &AtomicBool::new(false)).unwrap();
    (ms, out)
}

fn flat(l: &Lora) -> Vec<f32> {
    l.named_vars().iter().flat_map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
}

#[test]
fn loss_falls_and_metrics_are_reported() {
    let (ms, out) = run(&cfg());
    assert_eq!(ms.len(), 6);
    assert_eq!(out.steps_done, 6);
    assert!(ms.iter().all(|m| m.loss.is_finite() && m.grad_norm.is_finite() && m.tokens_per_sec > 0.0));
    assert!(ms[5].loss < ms[0].loss * 0.8, "loss {} -> {}", ms[0].loss, ms[5].loss);
    assert_eq!(ms[0].lr, 0.0, "first warmup step has lr 0 as in transformers");
    assert_eq!(ms[2].probes.len(), 1);
    assert!(ms[5].probes[0].1 > out.initial_probes[0].1, "tracked log-prob rises");
}

#[test]
fn same_seed_same_adapter() {
    let (a, la) = run(&cfg());
    let (b, lb) = run(&cfg());
    assert_eq!(a.iter().map(|m| m.loss).collect::<Vec<_>>(), b.iter().map(|m| m.loss).collect::<Vec<_>>());
    assert_eq!(flat(la.trained.lora().unwrap()), flat(lb.trained.lora().unwrap()));
    let (_, lc) = run(&TrainConfig { seed: 4, ..cfg() });
    assert_ne!(flat(la.trained.lora().unwrap()), flat(lc.trained.lora().unwrap()));
}

#[test]
fn a_batch_split_into_smaller_passes_trains_the_same() {
    // Without dropout a step's gradient does not depend on how its rows are grouped into
    // forward passes: splitting only caps memory. A budget of 1 token runs every row alone.
    let c = TrainConfig { lora: LoraConfig { dropout: 0.0, ..cfg().lora }, ..cfg() };
    let (whole, lw) = run(&c);
    let (split, ls) = run(&TrainConfig { max_pass_tokens: 1, ..c });
    for (w, s) in whole.iter().zip(&split) {
        assert!((w.loss - s.loss).abs() < 1e-5, "step {}: loss {} vs {}", w.step, w.loss, s.loss);
        assert_eq!(w.target_tokens, s.target_tokens);
    }
    let (a, b) = (flat(lw.trained.lora().unwrap()), flat(ls.trained.lora().unwrap()));
    let max = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(max < 1e-4, "adapters differ by {max}");
}

#[test]
fn cancel_stops_within_a_step() {
    let lm = testing::tiny_model(11).unwrap();
    let cancel = AtomicBool::new(false);
    let mut n = 0;
    let out = train(
        &lm,
        &cfg(),
        &examples(12),
        |_| {
            n += 1;
            if n == 2 {
                cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        },
        &cancel,
    )
    .unwrap();
    assert!(out.cancelled);
    assert_eq!(out.steps_done, 2);
}

#[test]
fn resume_from_checkpoint_equals_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let c = TrainConfig {
        checkpoint_every: Some(3),
        checkpoint_dir: Some(dir.path().to_path_buf()),
        grad_accum: 2,
        max_steps: Some(5),
        ..cfg()
    };
    let (full, whole) = run(&c);
    let ck = dir.path().join("checkpoint-000003");
    assert!(ck.join("adapter_model.safetensors").exists() && ck.join("optimizer.safetensors").exists());
    let (rest, resumed) = run(&TrainConfig { resume_from: Some(ck), checkpoint_dir: None, ..c.clone() });
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[1].loss, full[4].loss);
    assert_eq!(flat(resumed.trained.lora().unwrap()), flat(whole.trained.lora().unwrap()));
}

#[test]
fn peft_round_trip_and_merge_match() {
    let lm = testing::tiny_model(11).unwrap();
    let (_, out) = run(&cfg());
    let dir = tempfile::tempdir().unwrap();
    out.trained.lora().unwrap().save_peft(dir.path(), "tiny").unwrap();
    let cfgj: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("adapter_config.json")).unwrap()).unwrap();
    assert_eq!(cfgj["r"], 4);
    let names = candle_core::safetensors::load(dir.path().join("adapter_model.safetensors"), &Device::Cpu).unwrap();
    assert!(names.contains_key("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
    let back = Lora::load_peft(dir.path(), &lm.model).unwrap();
    assert_eq!(flat(&back), flat(out.trained.lora().unwrap()));
    let ids = Tensor::new(&[[1u32, 80, 81, 82]], &Device::Cpu).unwrap();
    let a = lm.model.forward(&ids, Some(&Adapter::inference(&back))).unwrap();
    let b = lm.model.merged(&back).unwrap().forward(&ids, None).unwrap();
    let base = lm.model.forward(&ids, None).unwrap();
    let d = |x: &Tensor, y: &Tensor| {
        (x - y).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    };
    assert!(d(&a, &b) < 1e-4);
    assert!(d(&a, &base) > 1e-3, "the adapter changes the model");
}

#[test]
fn scoring_is_batch_independent_and_prefers_trained_answers() {
    let lm = testing::tiny_model(11).unwrap();
    let items: Vec<ScoreItem> = ["the the the", "cat", "a b c d e f"]
        .iter()
        .map(|c| ScoreItem { messages: vec![ChatMessage::user("question 1")], completion: c.to_string() })
        .collect();
    let one = score_completions(
        &lm.model,
        None,
        &lm.tokenizer,
        &lm.template,
        &items,
        &ScoreOptions { batch_size: 1, ..Default::default() },
    )
    .unwrap();
    let all = score_completions(
        &lm.model,
        None,
        &lm.tokenizer,
        &lm.template,
        &items,
        &ScoreOptions { batch_size: 3, ..Default::default() },
    )
    .unwrap();
    for (a, b) in one.iter().zip(&all) {
        assert!((a.mean_logprob() - b.mean_logprob()).abs() < 1e-4);
        assert!(a.mean_logprob() < 0.0);
    }
    assert_eq!(one[1].n_tokens, lm.tokenizer.encode("cat").unwrap().len() + 1);
}

fn weights(m: &ml::Model) -> Vec<f32> {
    m.named_weights().iter().flat_map(|(_, t)| t.flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
}

fn full_cfg() -> TrainConfig {
    TrainConfig { full: true, lr: 3e-3, weight_decay: 0.1, ..cfg() }
}

#[test]
fn full_finetune_learns_and_leaves_the_base_untouched() {
    let lm = testing::tiny_model(11).unwrap();
    let before = weights(&lm.model);
    let mut ms = Vec::new();
    let out = train(&lm, &full_cfg(), &examples(12), |m| ms.push(m.clone()), &AtomicBool::new(false)).unwrap();
    assert_eq!(ms.len(), 6);
    assert!(ms[5].loss < ms[0].loss * 0.8, "loss {} -> {}", ms[0].loss, ms[5].loss);
    assert!(ms[5].probes[0].1 > out.initial_probes[0].1, "tracked log-prob rises");
    assert_eq!(weights(&lm.model), before, "the loaded base model is not modified");
    let trained = out.trained.full_model().expect("a full model");
    assert!(out.trained.lora().is_none());
    // Every kind of weight moved: embeddings (tied head), norms and projections.
    let named = trained.named_weights();
    let base: std::collections::HashMap<_, _> = lm.model.named_weights().into_iter().collect();
    for (name, t) in &named {
        let d = (t - &base[name]).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(d > 0.0, "{name} did not change");
    }
    assert!(!named.iter().any(|(n, _)| n == "lm_head.weight"), "a tied head is stored once");
    // Deterministic for a seed.
    let again = train(&lm, &full_cfg(), &examples(12), |_| {}, &AtomicBool::new(false)).unwrap();
    assert_eq!(weights(again.trained.full_model().unwrap()), weights(trained));
}

#[test]
fn full_finetune_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let lm = testing::tiny_model(11).unwrap();
    let c = TrainConfig {
        checkpoint_every: Some(3),
        checkpoint_dir: Some(dir.path().to_path_buf()),
        max_steps: Some(5),
        ..full_cfg()
    };
    let whole = train(&lm, &c, &examples(12), |_| {}, &AtomicBool::new(false)).unwrap();
    let ck = dir.path().join("checkpoint-000003");
    assert!(ck.join("model.safetensors").exists() && ck.join("optimizer.safetensors").exists());
    let resumed = train(
        &lm,
        &TrainConfig { resume_from: Some(ck), checkpoint_dir: None, ..c.clone() },
        &examples(12),
        |_| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(resumed.steps_done, 5);
    assert_eq!(weights(resumed.trained.full_model().unwrap()), weights(whole.trained.full_model().unwrap()));
    // An initial adapter has no meaning for full fine-tuning: refused, not ignored.
    let e = train(
        &lm,
        &TrainConfig { init_adapter: Some(dir.path().into()), ..full_cfg() },
        &examples(4),
        |_| {},
        &AtomicBool::new(false),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("full fine-tuning"), "{e}");
}

#[test]
fn full_finetune_saves_a_folder_that_loads_back_identically() {
    for chat in [testing::TinyChat::ChatMl, testing::TinyChat::Llama3] {
        let src = tempfile::tempdir().unwrap();
        testing::write_tiny_hf_folder_for(src.path(), "qwen2", 4, false, chat).unwrap();
        let lm = ml::load_model(src.path()).unwrap();
        let out = train(&lm, &full_cfg(), &examples(8), |_| {}, &AtomicBool::new(false)).unwrap();
        let trained = out.trained.full_model().unwrap();
        let dir = tempfile::tempdir().unwrap();
        ml::hf::save(dir.path(), trained, &lm.tokenizer, &lm.template).unwrap();
        let back = ml::load_model(dir.path()).unwrap();
        let ids = Tensor::new(&[[3u32, 80, 81, 82, 90]], &Device::Cpu).unwrap();
        let a = trained.forward(&ids, None).unwrap();
        let b = back.model.forward(&ids, None).unwrap();
        let d = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(d, 0.0, "{chat:?}: saved weights are the trained ones");
        assert_eq!(back.template.end_of_turn(), lm.template.end_of_turn());
        assert_eq!(back.tokenizer.stop_ids(), lm.tokenizer.stop_ids());
        let msgs = [ChatMessage::user("hi")];
        assert_eq!(
            back.template.render(&msgs, &SystemPrompt::Default, true).unwrap(),
            lm.template.render(&msgs, &SystemPrompt::Default, true).unwrap()
        );
    }
}
