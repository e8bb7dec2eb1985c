//! Loading a local Hugging Face model folder (llama/SmolLM and qwen2 families):
//! `config.json`, `model.safetensors` or shards listed in `model.safetensors.index.json`,
//! `tokenizer.json`, and the chat template from `tokenizer_config.json`.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use candle_core::{DType, Device};

use super::chat::ChatTemplate;
use super::config::Config;
use super::model::Model;
use super::tokenizer::Tokenizer;
use super::{bad_model, io_err, LoadedModel, MlError, Result};

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    serde_json::from_str(&text).map_err(|source| MlError::Json { path: path.to_path_buf(), source })
}

pub fn load(dir: &Path, device: &Device) -> Result<LoadedModel> {
    let cfg_path = dir.join("config.json");
    let cfg: Config = serde_json::from_value(read_json(&cfg_path)?)
        .map_err(|source| MlError::Json { path: cfg_path.clone(), source })?;
    if !matches!(cfg.model_type.as_str(), "llama" | "qwen2" | "mistral") {
        return Err(bad_model(dir, format!("model_type {:?} is not supported (llama, qwen2)", cfg.model_type)));
    }

    let files: Vec<std::path::PathBuf> = {
        let index = dir.join("model.safetensors.index.json");
        if index.exists() {
            let v = read_json(&index)?;
            let map =
                v.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| bad_model(&index, "no weight_map"))?;
            let names: BTreeSet<&str> = map.values().filter_map(|x| x.as_str()).collect();
            names.into_iter().map(|n| dir.join(n)).collect()
        } else {
            let single = dir.join("model.safetensors");
            if !single.exists() {
                return Err(bad_model(dir, "no model.safetensors or model.safetensors.index.json"));
            }
            vec![single]
        }
    };
    let mut weights = HashMap::new();
    for f in &files {
        if !f.exists() {
            return Err(bad_model(f, "shard listed in the index is missing"));
        }
        for (name, t) in candle_core::safetensors::load(f, device).map_err(|e| bad_model(f, e.to_string()))? {
            weights.insert(name, t.to_dtype(DType::F32)?);
        }
    }

    let tc = dir.join("tokenizer_config.json");
    let tc = if tc.exists() { read_json(&tc)? } else { serde_json::Value::Null };
    // Special tokens are written either as a string or as an AddedToken object.
    let special = |k: &str| -> String {
        match tc.get(k) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.get("content").and_then(|c| c.as_str()).unwrap_or("").to_string(),
            None => String::new(),
        }
    };
    // The template is either a string or a list of named templates.
    let source = match tc.get("chat_template") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .find(|x| x.get("name").and_then(|n| n.as_str()) == Some("default"))
            .and_then(|x| x.get("template")?.as_str().map(String::from)),
        _ => None,
    };
    // Newer folders keep the template in its own file.
    let jinja_file = dir.join("chat_template.jinja");
    let source = match source {
        Some(s) => s,
        None if jinja_file.exists() => std::fs::read_to_string(&jinja_file).map_err(io_err(&jinja_file))?,
        None => {
            return Err(bad_model(
                dir,
                "no chat template (tokenizer_config.json has no chat_template): only chat models can be used",
            ))
        }
    };
    let template = ChatTemplate::from_jinja(&source, &special("bos_token"), &special("eos_token"))?;
    // generation_config.json may list several end ids (Llama 3: end of text and end of turn).
    let gen_path = dir.join("generation_config.json");
    let mut extra_stop: Vec<u32> = if gen_path.exists() {
        match read_json(&gen_path)?.get("eos_token_id") {
            Some(serde_json::Value::Number(n)) => n.as_u64().map(|x| x as u32).into_iter().collect(),
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|x| x.as_u64()).map(|x| x as u32).collect(),
            _ => vec![],
        }
    } else {
        vec![]
    };
    let tok_path = dir.join("tokenizer.json");
    let inner = tokenizers::Tokenizer::from_file(&tok_path)
        .map_err(|e| MlError::Tokenizer(format!("{}: {e}", tok_path.display())))?;
    extra_stop.extend(inner.token_to_id(&special("eos_token")));
    let tokenizer = Tokenizer::from_inner(inner, template.end_of_turn(), &extra_stop)?;
    let model = Model::from_weights(cfg, weights, device).map_err(|e| bad_model(dir, e.to_string()))?;
    Ok(LoadedModel { model, tokenizer, template })
}

/// Writes a model as a Hugging Face folder that [`load`] and transformers read back:
/// `config.json`, `model.safetensors` (f32, a tied head stored once), `tokenizer.json`,
/// `tokenizer_config.json` with the chat template, and `generation_config.json` listing
/// the ids generation stops at. This is how a full fine-tune is saved, whatever format the
/// base model came in (a GGUF's weights are already in Hugging Face layout once loaded).
pub fn save(dir: &Path, model: &Model, tokenizer: &Tokenizer, template: &ChatTemplate) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let write = |name: &str, v: &serde_json::Value| -> Result<()> {
        let p = dir.join(name);
        std::fs::write(&p, serde_json::to_string_pretty(v).expect("json")).map_err(io_err(&p))
    };
    let mut cfg = serde_json::to_value(&model.cfg).expect("config serialises");
    let arch = match model.cfg.model_type.as_str() {
        "qwen2" => "Qwen2ForCausalLM",
        "mistral" => "MistralForCausalLM",
        _ => "LlamaForCausalLM",
    };
    let extra = serde_json::json!({
        "architectures": [arch],
        "hidden_act": "silu",
        "torch_dtype": "float32",
        "tie_word_embeddings": model.ties_embeddings(),
    });
    for (k, v) in extra.as_object().expect("object") {
        cfg[k] = v.clone();
    }
    write("config.json", &cfg)?;
    let weights: HashMap<String, candle_core::Tensor> = model.named_weights().into_iter().collect();
    let p = dir.join("model.safetensors");
    candle_core::safetensors::save(&weights, &p).map_err(|e| bad_model(&p, e.to_string()))?;
    let p = dir.join("tokenizer.json");
    tokenizer.inner().save(&p, false).map_err(|e| MlError::Tokenizer(format!("{}: {e}", p.display())))?;
    let (source, bos, eos) = template.source();
    write("tokenizer_config.json", &serde_json::json!({"chat_template": source, "bos_token": bos, "eos_token": eos}))?;
    write("generation_config.json", &serde_json::json!({"eos_token_id": tokenizer.stop_ids()}))?;
    Ok(())
}
