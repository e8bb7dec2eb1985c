//! Loading a llama-architecture GGUF file (the embedded SmolLM2 default): its config, its
//! tokenizer, and every tensor dequantised to f32 under Hugging Face names, with the q/k
//! row permutation that llama.cpp's converter applies undone.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{Device, Tensor};

use super::chat::ChatTemplate;
use super::config::Config;
use super::model::Model;
use super::quant::QuantRows;
use super::tokenizer::Tokenizer;
use super::{bad_model, io_err, LoadedModel, Result};

pub fn load(path: &Path, device: &Device) -> Result<LoadedModel> {
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let content = Content::read(&mut file).map_err(|e| bad_model(path, format!("not a GGUF file: {e}")))?;
    let md = &content.metadata;
    let get = |k: &str| md.get(k).ok_or_else(|| bad_model(path, format!("missing metadata {k}")));
    let arch = get("general.architecture")?.to_string().map_err(|e| bad_model(path, e.to_string()))?.clone();
    if arch != "llama" {
        return Err(bad_model(path, format!("architecture {arch:?} is not supported (only llama)")));
    }
    let u = |k: &str| -> Result<usize> {
        let v = get(&format!("llama.{k}"))?;
        Ok(v.to_u32()
            .map(|x| x as usize)
            .or_else(|_| v.to_u64().map(|x| x as usize))
            .map_err(|e| bad_model(path, e.to_string()))?)
    };
    let f = |k: &str, d: f64| -> f64 {
        md.get(&format!("llama.{k}")).and_then(|v| v.to_f32().ok()).map(|x| x as f64).unwrap_or(d)
    };

    let tokens = strings(get("tokenizer.ggml.tokens")?, path)?;
    let merges = strings(get("tokenizer.ggml.merges")?, path)?;
    let types: Vec<i32> = match md.get("tokenizer.ggml.token_type") {
        Some(v) => {
            v.to_vec().map_err(|e| bad_model(path, e.to_string()))?.iter().map(|x| x.to_i32().unwrap_or(1)).collect()
        }
        None => vec![],
    };
    let special = |k: &str| -> Option<(u32, String)> {
        let id = md.get(k)?.to_u32().ok()?;
        Some((id, tokens.get(id as usize)?.clone()))
    };
    let bos = special("tokenizer.ggml.bos_token_id");
    let eos = special("tokenizer.ggml.eos_token_id");
    let template = match md.get("tokenizer.chat_template").and_then(|v| v.to_string().ok()) {
        Some(t) => ChatTemplate::from_jinja(
            t,
            bos.as_ref().map_or("", |b| b.1.as_str()),
            eos.as_ref().map_or("", |e| e.1.as_str()),
        )?,
        None => ChatTemplate::smollm2(),
    };
    let extra_stop: Vec<u32> = eos.iter().map(|e| e.0).collect();
    let tokenizer = Tokenizer::from_gguf_parts(&tokens, &merges, &types, template.end_of_turn(), &extra_stop)?;

    let heads = u("attention.head_count")?;
    let has_output = content.tensor_infos.contains_key("output.weight");
    let cfg = Config {
        model_type: "llama".into(),
        vocab_size: tokens.len(),
        hidden_size: u("embedding_length")?,
        intermediate_size: u("feed_forward_length")?,
        num_hidden_layers: u("block_count")?,
        num_attention_heads: heads,
        num_key_value_heads: Some(u("attention.head_count_kv").unwrap_or(heads)),
        head_dim: None,
        rms_norm_eps: f("attention.layer_norm_rms_epsilon", 1e-5),
        rope_theta: f("rope.freq_base", 10_000.0),
        max_position_embeddings: u("context_length").unwrap_or(8192),
        tie_word_embeddings: !has_output,
        attention_bias: false,
    };

    let hd = cfg.head_dim();
    let mut weights = HashMap::new();
    // Projections (and the head) also keep their stored blocks, for decoding steps; the
    // embedding does only when it is the head.
    let mut quant = HashMap::new();
    for name in content.tensor_infos.keys() {
        let Some(hf) = hf_name(name) else { continue };
        let qt = content.tensor(&mut file, name, device)?;
        let blocks = match name.as_str() {
            "token_embd.weight" if has_output => None,
            _ if name.ends_with("norm.weight") => None,
            _ => QuantRows::from_qtensor(&qt)?,
        };
        let t = qt.dequantize(device)?;
        let heads = if name.ends_with("attn_q.weight") {
            Some(cfg.num_attention_heads)
        } else if name.ends_with("attn_k.weight") {
            Some(cfg.num_kv_heads())
        } else {
            None
        };
        let (t, blocks) = match heads {
            Some(h) => {
                let order = unpermuted_rows(t.dim(0)?, h, hd)?;
                (unpermute(&t, h, hd)?, blocks.map(|b| b.select_rows(&order)))
            }
            None => (t, blocks),
        };
        if let Some(b) = blocks {
            quant.insert(hf.clone(), b);
        }
        weights.insert(hf, t);
    }
    let mut model = Model::from_weights(cfg, weights, device).map_err(|e| bad_model(path, e.to_string()))?;
    model.attach_quant(quant).map_err(|e| bad_model(path, e.to_string()))?;
    Ok(LoadedModel { model, tokenizer, template })
}

/// What a GGUF file's header says, read without loading any tensor: for the model
/// registry, which checks a file before anyone loads it.
#[derive(Debug, Clone)]
pub struct HeaderSummary {
    /// `general.architecture`, when present and a string.
    pub architecture: Option<String>,
    /// Each tensor's name, element count and the byte offset in the file just past its
    /// data (saturating), so a truncated file can be told before it is read.
    pub tensors: Vec<(String, u64, u64)>,
}

/// Reads a GGUF header from `reader`; the error says why it is not a GGUF file.
pub fn read_header(reader: &mut (impl std::io::Read + std::io::Seek)) -> std::result::Result<HeaderSummary, String> {
    let content = Content::read(reader).map_err(|e| e.to_string())?;
    let architecture = content.metadata.get("general.architecture").and_then(|v| v.to_string().ok()).cloned();
    let tensors = content
        .tensor_infos
        .iter()
        .map(|(name, info)| {
            let elems = info.shape.elem_count() as u64;
            let bytes = elems / info.ggml_dtype.block_size() as u64 * info.ggml_dtype.type_size() as u64;
            let end = content.tensor_data_offset.saturating_add(info.offset).saturating_add(bytes);
            (name.clone(), elems, end)
        })
        .collect();
    Ok(HeaderSummary { architecture, tensors })
}

fn strings(v: &Value, path: &Path) -> Result<Vec<String>> {
    v.to_vec()
        .map_err(|e| bad_model(path, e.to_string()))?
        .iter()
        .map(|x| x.to_string().cloned().map_err(|e| bad_model(path, e.to_string())))
        .collect()
}

/// llama.cpp's converter interleaves the two rotary halves of each head's q/k rows
/// (`reshape(heads, 2, hd/2, in).swapaxes(1, 2)`); this is its inverse, so the HF-style
/// rotate-half rope applies unchanged.
fn unpermute(w: &Tensor, heads: usize, hd: usize) -> candle_core::Result<Tensor> {
    let (out, inp) = w.dims2()?;
    w.reshape((heads, hd / 2, 2, inp))?.transpose(1, 2)?.contiguous()?.reshape((out, inp))
}

/// Which stored row each row of `unpermute`'s result comes from (`unpermute` applied to
/// the row numbers), so that a matrix's blocks can follow its f32 rows.
fn unpermuted_rows(rows: usize, heads: usize, hd: usize) -> candle_core::Result<Vec<usize>> {
    let idx: Vec<f32> = (0..rows).map(|r| r as f32).collect();
    let moved = unpermute(&Tensor::from_vec(idx, (rows, 1), &Device::Cpu)?, heads, hd)?;
    Ok(moved.flatten_all()?.to_vec1::<f32>()?.into_iter().map(|r| r as usize).collect())
}

/// The Hugging Face name of a GGUF tensor, or None for tensors the model does not use.
fn hf_name(gguf: &str) -> Option<String> {
    Some(match gguf {
        "token_embd.weight" => "model.embed_tokens.weight".into(),
        "output_norm.weight" => "model.norm.weight".into(),
        "output.weight" => "lm_head.weight".into(),
        _ => {
            let rest = gguf.strip_prefix("blk.")?;
            let (layer, tail) = rest.split_once('.')?;
            let sub = match tail {
                "attn_q.weight" => "self_attn.q_proj.weight",
                "attn_k.weight" => "self_attn.k_proj.weight",
                "attn_v.weight" => "self_attn.v_proj.weight",
                "attn_output.weight" => "self_attn.o_proj.weight",
                "attn_q.bias" => "self_attn.q_proj.bias",
                "attn_k.bias" => "self_attn.k_proj.bias",
                "attn_v.bias" => "self_attn.v_proj.bias",
                "ffn_gate.weight" => "mlp.gate_proj.weight",
                "ffn_up.weight" => "mlp.up_proj.weight",
                "ffn_down.weight" => "mlp.down_proj.weight",
                "attn_norm.weight" => "input_layernorm.weight",
                "ffn_norm.weight" => "post_attention_layernorm.weight",
                _ => return None,
            };
            format!("model.layers.{layer}.{sub}")
        }
    })
}
