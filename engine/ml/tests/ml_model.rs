//! The forward pass: tiny random models (KV cache, padding, gradients) and, gated by
//! INOCULAB_REAL_MODEL=1, the default SmolLM2 against PyTorch reference logits.

mod ml_common;

use candle_core::{Device, Tensor, D};
use ml::chat::{ChatMessage, SystemPrompt};
use ml::lora::Adapter;
use ml::model::{causal_mask, KvCache};
use ml::{self, testing, Lora, LoraConfig, SampleConfig};

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn kv_cache_decoding_matches_full_forward() {
    let lm = testing::tiny_model(1).unwrap();
    let m = &lm.model;
    let ids: Vec<u32> = vec![1, 40, 41, 42, 43, 44, 45, 2];
    let t = ids.len();
    let full = m.forward(&Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap(), None).unwrap();
    let mut cache = KvCache::new(&m.cfg);
    // Prefill 5 tokens, then one at a time.
    let pre = Tensor::new(&ids[..5], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let pos = Tensor::new(&[0u32, 1, 2, 3, 4], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let h = m.hidden_states(&pre, &pos, None, Some(&mut cache), None).unwrap();
    let mut outs = vec![m.logits(&h).unwrap()];
    for j in 5..t {
        let x = Tensor::new(&[ids[j]], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let p = Tensor::new(&[j as u32], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let h = m.hidden_states(&x, &p, None, Some(&mut cache), None).unwrap();
        outs.push(m.logits(&h).unwrap());
    }
    let inc = Tensor::cat(&outs, 1).unwrap();
    assert!(max_abs_diff(&full, &inc) < 1e-4);
}

#[test]
fn left_padding_with_positions_matches_unpadded() {
    let lm = testing::tiny_model(2).unwrap();
    let m = &lm.model;
    let dev = Device::Cpu;
    let ids = [1u32, 50, 51, 52];
    let alone = m.forward(&Tensor::new(&ids, &dev).unwrap().unsqueeze(0).unwrap(), None).unwrap();
    let padded = Tensor::new(&[0u32, 0, 1, 50, 51, 52], &dev).unwrap().unsqueeze(0).unwrap();
    let pos = Tensor::new(&[0u32, 0, 0, 1, 2, 3], &dev).unwrap().unsqueeze(0).unwrap();
    let mask = causal_mask(&[vec![false, false, true, true, true, true]], 6, &dev).unwrap();
    let h = m.hidden_states(&padded, &pos, Some(&mask), None, None).unwrap();
    let got = m.logits(&h.narrow(1, 2, 4).unwrap()).unwrap();
    assert!(max_abs_diff(&alone, &got) < 1e-4);
}

#[test]
fn lora_gradients_match_finite_differences() {
    let lm = testing::tiny_model(3).unwrap();
    let m = &lm.model;
    let cfg = LoraConfig { rank: 2, alpha: 4.0, ..Default::default() };
    let lora = Lora::new(m, &cfg, 7).unwrap();
    // Give B non-zero values so that A's gradient is not trivially zero.
    for (name, v) in lora.named_vars() {
        if name.contains("lora_B") {
            v.set(&Tensor::randn(0f32, 0.1, v.shape(), &Device::Cpu).unwrap()).unwrap();
        }
    }
    let ids = Tensor::new(&[[1u32, 60, 61, 62, 63, 2]], &Device::Cpu).unwrap();
    let loss_of = |lora: &Lora| -> Tensor {
        let ad = Adapter::inference(lora);
        let logits = m.forward(&ids, Some(&ad)).unwrap();
        let lp = candle_nn::ops::log_softmax(&logits, D::Minus1).unwrap();
        lp.narrow(2, 70, 1).unwrap().mean_all().unwrap()
    };
    let loss = loss_of(&lora);
    let grads = loss.backward().unwrap();
    let (name, var) =
        lora.named_vars().into_iter().find(|(n, _)| n.contains("layers.0.self_attn.q_proj.lora_A")).unwrap();
    let g = grads
        .get(var.as_tensor())
        .unwrap_or_else(|| panic!("no gradient for {name}"))
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let base = var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let eps = 1e-2f32;
    for idx in [0usize, 5, 17] {
        let mut plus = base.clone();
        plus[idx] += eps;
        var.set(&Tensor::from_vec(plus, var.shape(), &Device::Cpu).unwrap()).unwrap();
        let lp = loss_of(&lora).to_scalar::<f32>().unwrap();
        let mut minus = base.clone();
        minus[idx] -= eps;
        var.set(&Tensor::from_vec(minus, var.shape(), &Device::Cpu).unwrap()).unwrap();
        let lm_ = loss_of(&lora).to_scalar::<f32>().unwrap();
        var.set(&Tensor::from_vec(base.clone(), var.shape(), &Device::Cpu).unwrap()).unwrap();
        let fd = (lp - lm_) / (2.0 * eps);
        assert!(
            (fd - g[idx]).abs() < 2e-3 + 0.05 * fd.abs(),
            "param {idx}: autograd {} vs finite difference {fd}",
            g[idx]
        );
    }
}

#[test]
fn hf_folder_loads_llama_and_qwen2_sharded_or_not() {
    for (ty, sharded) in [("llama", false), ("qwen2", true)] {
        let dir = tempfile::tempdir().unwrap();
        testing::write_tiny_hf_folder(dir.path(), ty, 5, sharded).unwrap();
        let loaded = ml::load_model(dir.path()).unwrap();
        let direct = testing::tiny_model_of(ty, 5).unwrap();
        assert_eq!(loaded.template.default_system.as_deref(), Some("You are a tiny test model"));
        let ids = Tensor::new(&[[1u32, 70, 71, 72]], &Device::Cpu).unwrap();
        let a = loaded.model.forward(&ids, None).unwrap();
        let b = direct.model.forward(&ids, None).unwrap();
        assert!(max_abs_diff(&a, &b) < 1e-6, "{ty}");
        assert_eq!(loaded.tokenizer.encode("the cat").unwrap(), direct.tokenizer.encode("the cat").unwrap());
    }
}

#[test]
fn missing_model_path_is_a_clear_error() {
    let err = ml::load_model(std::path::Path::new("/nonexistent/model.gguf")).err().unwrap();
    assert!(err.to_string().contains("/nonexistent/model.gguf"), "{err}");
}

#[test]
fn real_model_logits_match_pytorch_reference() {
    let Some(path) = ml_common::real_model_path("real_model_logits_match_pytorch_reference") else {
        return;
    };
    let lm = ml::load_model(&path).unwrap();
    assert_eq!(lm.model.cfg.num_hidden_layers, 30);
    assert_eq!(lm.tokenizer.vocab_size(), 49152);
    let refs: Vec<serde_json::Value> =
        [ml_common::shared_reference(), ml_common::fixture_reference()].into_iter().flatten().collect();
    assert!(!refs.is_empty(), "no reference available");
    for r in refs {
        let ids: Vec<u32> = r["input_ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        let msgs = vec![ChatMessage::user("What is the capital of France?")];
        assert_eq!(
            lm.template.encode_prompt(&lm.tokenizer, &msgs, &SystemPrompt::Default).unwrap(),
            ids,
            "chat prompt ids"
        );
        let logits = lm
            .model
            .forward(&Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap(), None)
            .unwrap()
            .squeeze(0)
            .unwrap();
        let all = logits.to_vec2::<f32>().unwrap();
        let mut worst = 0f32;
        for p in r["per_position_top10"].as_array().unwrap() {
            let pos = p["position"].as_u64().unwrap() as usize;
            for (id, l) in p["top10_ids"].as_array().unwrap().iter().zip(p["top10_logits"].as_array().unwrap()) {
                worst = worst.max((all[pos][id.as_u64().unwrap() as usize] - l.as_f64().unwrap() as f32).abs());
            }
        }
        let last_row = &all[ids.len() - 1];
        if let Some(last) = r["last_position_logits"].as_array() {
            assert_eq!(last.len(), last_row.len());
            for (a, b) in last_row.iter().zip(last) {
                worst = worst.max((a - b.as_f64().unwrap() as f32).abs());
            }
        }
        if let Some(s) = r.get("last_position_sample") {
            for (id, l) in s["ids"].as_array().unwrap().iter().zip(s["logits"].as_array().unwrap()) {
                worst = worst.max((last_row[id.as_u64().unwrap() as usize] - l.as_f64().unwrap() as f32).abs());
            }
        }
        eprintln!("max |logit diff| vs reference: {worst:e}");
        assert!(worst < 1e-3, "max abs diff {worst}");
    }
}

#[test]
fn real_model_greedy_answer_says_paris() {
    let Some(path) = ml_common::real_model_path("real_model_greedy_answer_says_paris") else {
        return;
    };
    let lm = ml::load_model(&path).unwrap();
    let msgs = vec![ChatMessage::user("What is the capital of France?")];
    let prompt = lm.template.encode_prompt(&lm.tokenizer, &msgs, &SystemPrompt::Default).unwrap();
    let cfg = SampleConfig { temperature: 0.0, max_new_tokens: 20, ..Default::default() };
    let out = ml::generate(&lm.model, &lm.tokenizer, &[prompt], &cfg, |_| {}, None).unwrap();
    eprintln!("greedy: {:?}", out[0].text);
    assert!(out[0].text.contains("Paris"), "{}", out[0].text);
    assert!(out[0].finished);
    if let Some(r) = ml_common::shared_reference() {
        let want = r["greedy_continuation_text"].as_str().unwrap().replace("<|im_end|>", "");
        assert_eq!(out[0].text, want);
    }
}

/// The default GGUF's projections and head keep their stored blocks (Q4_1, and Q8_0 for
/// the tied embedding), q and k rows put in the same order as their f32 weights, so
/// decoding from the blocks gives exactly the logits of the f32 weights.
#[test]
fn real_model_decodes_from_its_stored_blocks_with_the_same_logits() {
    let Some(path) = ml_common::real_model_path("real_model_decodes_from_its_stored_blocks_with_the_same_logits")
    else {
        return;
    };
    let lm = ml::load_model(&path).unwrap();
    let m = &lm.model;
    assert_eq!(
        m.linears().filter(|l| l.quant().is_some()).count(),
        m.linears().count(),
        "every projection keeps its blocks"
    );
    assert!(m.head_quant().is_some(), "the tied head keeps its Q8_0 blocks");
    for lin in m.linears().filter(|l| l.path.contains("layers.3.") || l.path.contains("layers.29.")) {
        let q = lin.quant().unwrap();
        let mut rows = vec![0f32; q.rows() * q.cols()];
        q.dequantize_rows(0, q.rows(), &mut rows);
        assert_eq!(rows, lin.weight.flatten_all().unwrap().to_vec1::<f32>().unwrap(), "{}", lin.path);
    }
    // A prompt of a few rows goes through the few-rows kernel, which reads the blocks; the
    // frozen copy has the same f32 weights and no blocks.
    let f32_only = m.frozen_copy().unwrap();
    assert!(f32_only.head_quant().is_none() && f32_only.linears().all(|l| l.quant().is_none()));
    let msgs = vec![ChatMessage::user("What is the capital of France?")];
    let prompt = lm.template.encode_prompt(&lm.tokenizer, &msgs, &SystemPrompt::Default).unwrap();
    assert!(prompt.len() <= ml::ops::FEW_ROWS);
    let ids = Tensor::new(prompt.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let (a, b) = (m.forward(&ids, None).unwrap(), f32_only.forward(&ids, None).unwrap());
    assert_eq!(max_abs_diff(&a, &b), 0.0);
}
