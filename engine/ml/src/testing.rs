//! Tiny random-weight models for fast tests (here and in the rest of the engine, e.g. the
//! job worker's): a byte-level tokenizer with the ChatML (or Llama 3) control tokens, a
//! 2-layer llama or qwen2 config, and a writer for a Hugging Face folder of the same.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::chat::ChatTemplate;
use super::config::Config;
use super::model::Model;
use super::tokenizer::{Tokenizer, IM_END};
use super::{io_err, LoadedModel, Result};

pub const TINY_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a tiny test model<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}";

/// A Llama-3-style template (header tokens, `<|eot_id|>` closing each turn), written for
/// the tests of non-ChatML models. Its block tags sit on their own lines, so it renders as
/// intended only with trim_blocks and lstrip_blocks, as Hugging Face renders.
pub const TINY_LLAMA3_TEMPLATE: &str = "{{- bos_token -}}
{% for message in messages %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' -}}
{% endfor %}
{% if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
{% endif %}
";

/// The control tokens of the tiny Llama-3-style tokenizer, ids 0-4.
pub const TINY_LLAMA3_SPECIALS: [&str; 5] =
    ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"];

/// Which chat format a tiny model speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TinyChat {
    /// ChatML (`<|im_start|>`/`<|im_end|>`), like SmolLM2 and Qwen2.
    ChatMl,
    /// Llama 3's headers and `<|eot_id|>`.
    Llama3,
}

/// A byte-level BPE tokenizer over the 256 byte symbols plus a few merges, with
/// `<|endoftext|>`, `<|im_start|>` and `<|im_end|>` as ids 0, 1, 2.
pub fn tiny_tokenizer() -> Result<Tokenizer> {
    tiny_tokenizer_for(TinyChat::ChatMl)
}

fn tiny_specials(chat: TinyChat) -> Vec<String> {
    match chat {
        TinyChat::ChatMl => vec!["<|endoftext|>".into(), "<|im_start|>".into(), IM_END.into()],
        TinyChat::Llama3 => TINY_LLAMA3_SPECIALS.iter().map(|s| s.to_string()).collect(),
    }
}

/// The tiny tokenizer with the control tokens of `chat` first.
pub fn tiny_tokenizer_for(chat: TinyChat) -> Result<Tokenizer> {
    let mut tokens = tiny_specials(chat);
    let n_special = tokens.len();
    let mut alphabet: Vec<char> = tokenizers::pre_tokenizers::byte_level::ByteLevel::alphabet().into_iter().collect();
    alphabet.sort();
    tokens.extend(alphabet.iter().map(|c| c.to_string()));
    let merges = vec!["t h".to_string(), "th e".to_string(), "Ġ t".to_string()];
    tokens.extend(["th".to_string(), "the".to_string(), "Ġt".to_string()]);
    let mut types = vec![3; n_special];
    types.extend(std::iter::repeat(1).take(tokens.len() - n_special));
    let end_of_turn = match chat {
        TinyChat::ChatMl => IM_END,
        TinyChat::Llama3 => "<|eot_id|>",
    };
    Tokenizer::from_gguf_parts(&tokens, &merges, &types, end_of_turn, &[])
}

fn tiny_weights(cfg: &Config, seed: u64) -> HashMap<String, Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dev = Device::Cpu;
    let mut rand = |shape: &[usize], scale: f32| {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.gen_range(-scale..scale)).collect();
        Tensor::from_vec(v, shape, &dev).expect("tensor")
    };
    let (h, i, hd) = (cfg.hidden_size, cfg.intermediate_size, cfg.head_dim());
    let (q, kv) = (cfg.num_attention_heads * hd, cfg.num_kv_heads() * hd);
    let mut w = HashMap::new();
    w.insert("model.embed_tokens.weight".into(), rand(&[cfg.vocab_size, h], 0.5));
    w.insert("model.norm.weight".into(), (rand(&[h], 0.1) + 1.0).expect("add"));
    for l in 0..cfg.num_hidden_layers {
        let p = |s: &str| format!("model.layers.{l}.{s}");
        for (name, shape) in [
            ("self_attn.q_proj", [q, h]),
            ("self_attn.k_proj", [kv, h]),
            ("self_attn.v_proj", [kv, h]),
            ("self_attn.o_proj", [h, q]),
            ("mlp.gate_proj", [i, h]),
            ("mlp.up_proj", [i, h]),
            ("mlp.down_proj", [h, i]),
        ] {
            w.insert(p(&format!("{name}.weight")), rand(&shape, 0.3));
        }
        if cfg.qkv_bias() {
            w.insert(p("self_attn.q_proj.bias"), rand(&[q], 0.1));
            w.insert(p("self_attn.k_proj.bias"), rand(&[kv], 0.1));
            w.insert(p("self_attn.v_proj.bias"), rand(&[kv], 0.1));
        }
        w.insert(p("input_layernorm.weight"), (rand(&[h], 0.1) + 1.0).expect("add"));
        w.insert(p("post_attention_layernorm.weight"), (rand(&[h], 0.1) + 1.0).expect("add"));
    }
    w
}

/// A 2-layer random llama with the tiny tokenizer; same seed, same weights.
pub fn tiny_model(seed: u64) -> Result<LoadedModel> {
    tiny_model_of("llama", seed)
}

pub fn tiny_model_of(model_type: &str, seed: u64) -> Result<LoadedModel> {
    let tokenizer = tiny_tokenizer()?;
    let mut cfg = Config::tiny(tokenizer.vocab_size());
    cfg.model_type = model_type.into();
    let model = Model::from_weights(cfg.clone(), tiny_weights(&cfg, seed), &Device::Cpu)?;
    Ok(LoadedModel { model, tokenizer, template: ChatTemplate::from_jinja(TINY_TEMPLATE, "", IM_END)? })
}

/// Writes a Hugging Face folder of the tiny model (optionally with sharded weights).
pub fn write_tiny_hf_folder(dir: &Path, model_type: &str, seed: u64, sharded: bool) -> Result<()> {
    write_tiny_hf_folder_for(dir, model_type, seed, sharded, TinyChat::ChatMl)
}

/// Writes a Hugging Face folder of the tiny model speaking `chat`; the Llama-3 one also has
/// a `generation_config.json` listing both end ids, as Llama 3 folders do.
pub fn write_tiny_hf_folder_for(dir: &Path, model_type: &str, seed: u64, sharded: bool, chat: TinyChat) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tok = tiny_tokenizer_for(chat)?;
    let mut cfg = Config::tiny(tok.vocab_size());
    cfg.model_type = model_type.into();
    let weights = tiny_weights(&cfg, seed);
    let p = dir.join("config.json");
    std::fs::write(&p, serde_json::to_string_pretty(&cfg).expect("json")).map_err(io_err(&p))?;
    if sharded {
        let mut names: Vec<&String> = weights.keys().collect();
        names.sort();
        let (a, b) = names.split_at(names.len() / 2);
        let mut index = serde_json::Map::new();
        for (file, part) in [("model-00001-of-00002.safetensors", a), ("model-00002-of-00002.safetensors", b)] {
            let m: HashMap<String, Tensor> = part.iter().map(|n| ((*n).clone(), weights[*n].clone())).collect();
            candle_core::safetensors::save(&m, dir.join(file))?;
            for n in part {
                index.insert((*n).clone(), serde_json::Value::String(file.into()));
            }
        }
        let p = dir.join("model.safetensors.index.json");
        std::fs::write(&p, serde_json::json!({"metadata": {}, "weight_map": index}).to_string()).map_err(io_err(&p))?;
    } else {
        candle_core::safetensors::save(&weights, dir.join("model.safetensors"))?;
    }
    tok.inner().save(dir.join("tokenizer.json"), false).map_err(|e| super::MlError::Tokenizer(e.to_string()))?;
    let tokenizer_config = match chat {
        TinyChat::ChatMl => serde_json::json!({"chat_template": TINY_TEMPLATE, "eos_token": IM_END}),
        TinyChat::Llama3 => serde_json::json!({
            "chat_template": TINY_LLAMA3_TEMPLATE,
            "bos_token": "<|begin_of_text|>",
            // Written as an AddedToken object, the other form tokenizer_config.json uses.
            "eos_token": {"content": "<|eot_id|>", "special": true},
        }),
    };
    let p = dir.join("tokenizer_config.json");
    std::fs::write(&p, tokenizer_config.to_string()).map_err(io_err(&p))?;
    if chat == TinyChat::Llama3 {
        let p = dir.join("generation_config.json");
        std::fs::write(&p, serde_json::json!({"eos_token_id": [1, 4]}).to_string()).map_err(io_err(&p))?;
    }
    Ok(())
}

/// The default model for tests on real weights, if they are enabled (`INOCULAB_REAL_MODEL=1`,
/// as CI sets it); otherwise says that `test` is skipped and returns `None`. The file is
/// `INOCULAB_MODEL` or the workspace's `.data/models/...gguf` (what scripts/fetch-model
/// writes). Shared by the ML crate's tests and the domain's.
pub fn real_model_path(test: &str) -> Option<std::path::PathBuf> {
    if std::env::var("INOCULAB_REAL_MODEL").ok().as_deref() != Some("1") {
        eprintln!("skipped {test}: set INOCULAB_REAL_MODEL=1 to run real-weight tests");
        return None;
    }
    let p = std::env::var("INOCULAB_MODEL").map(std::path::PathBuf::from).unwrap_or_else(|_| {
        // This crate sits at engine/ml, two folders below the workspace root.
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.data/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    });
    assert!(p.exists(), "INOCULAB_REAL_MODEL=1 but {} does not exist (run scripts/fetch-model)", p.display());
    Some(p)
}
