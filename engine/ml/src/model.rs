//! The llama/qwen2 decoder in candle's shape (`Config` + `new(cfg, vb)`, names mirroring
//! the checkpoint), written so that it is differentiable end to end with respect to LoRA
//! parameters, and usable with a KV cache and per-row positions for batched sampling.

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarBuilder;

use super::adapter::Adapter;
use super::attention::attention;
use super::config::Config;
use super::ops;
use super::quant::QuantRows;

type CResult<T> = candle_core::Result<T>;

/// A projection with a frozen weight (`[out, in]`), an optional bias, and a module path
/// (`model.layers.0.self_attn.q_proj`) by which a LoRA adapter finds its pair.
#[derive(Clone)]
pub struct Linear {
    pub path: String,
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    /// The weight as the GGUF stored it, when that dequantises exactly to `weight`; only
    /// the GGUF loader sets it, and every change of `weight` drops it.
    quant: Option<Arc<QuantRows>>,
}

impl Linear {
    fn new(in_dim: usize, out_dim: usize, bias: bool, vb: VarBuilder, path: String) -> CResult<Self> {
        let weight = vb.get((out_dim, in_dim), "weight")?;
        let bias = if bias { Some(vb.get(out_dim, "bias")?) } else { None };
        Ok(Linear { path, weight, bias, quant: None })
    }

    /// The weight's GGUF block format, where decoding steps read it from.
    pub fn quant(&self) -> Option<&QuantRows> {
        self.quant.as_deref()
    }

    pub fn forward(&self, x: &Tensor, ad: Option<&Adapter>) -> CResult<Tensor> {
        let pair = ad.and_then(|ad| ad.undropped_pair(&self.path));
        let mut y = match pair {
            Some((a, b, scale)) if !self.weight.is_variable() && ops::is_cpu_f32(x) => {
                ops::frozen_matmul_lora(x, &self.weight, self.quant.as_ref(), a, b, scale)?
            }
            _ => {
                let y = matmul_t(x, &self.weight, self.quant.as_ref())?;
                match ad.map(|ad| ad.delta(&self.path, x)).transpose()?.flatten() {
                    Some(d) => (y + d)?,
                    None => y,
                }
            }
        };
        if let Some(b) = &self.bias {
            y = y.broadcast_add(b)?;
        }
        Ok(y)
    }
}

/// `x @ w^T`: the frozen-weight op (input gradient only) unless `w` is being trained.
fn matmul_t(x: &Tensor, w: &Tensor, quant: Option<&Arc<QuantRows>>) -> CResult<Tensor> {
    if w.is_variable() {
        x.broadcast_matmul(&w.t()?)
    } else {
        ops::frozen_matmul_quant(x, w, quant)
    }
}

/// RMSNorm: the fused kernel (input gradient only) unless the norm weight is being trained.
fn norm(x: &Tensor, w: &Tensor, eps: f64) -> CResult<Tensor> {
    if w.is_variable() {
        ops::rms_norm(x, w, eps)
    } else {
        ops::rms_norm_fused(x, w, eps)
    }
}

#[derive(Clone)]
struct Layer {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
    input_layernorm: Tensor,
    post_attention_layernorm: Tensor,
}

/// Keys and values of earlier positions: per layer, buffers `[b, kv_heads, capacity,
/// head_dim]` of which the first `len` positions are filled. New positions are written in
/// place and the buffers grow by doubling, so a decoding step copies only its own keys and
/// values (concatenating the whole cache on every step copied it all, every step).
pub struct KvCache {
    layers: Vec<Option<LayerCache>>,
    /// Positions to make room for when a layer's buffers are first allocated.
    reserve: usize,
}

struct LayerCache {
    k: Tensor,
    v: Tensor,
    len: usize,
}

impl KvCache {
    pub fn new(cfg: &Config) -> Self {
        Self::with_capacity(cfg, 0)
    }

    /// A cache that holds `positions` positions before it has to grow (sampling knows the
    /// prompt length plus the new tokens).
    pub fn with_capacity(cfg: &Config, positions: usize) -> Self {
        KvCache { layers: (0..cfg.num_hidden_layers).map(|_| None).collect(), reserve: positions }
    }

    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.layers.first().and_then(|l| l.as_ref()).map(|l| l.len).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps only the given batch rows (finished rows leave a sampling batch this way).
    pub fn select_rows(&mut self, rows: &Tensor) -> CResult<()> {
        for l in self.layers.iter_mut().flatten() {
            l.k = l.k.index_select(rows, 0)?;
            l.v = l.v.index_select(rows, 0)?;
        }
        Ok(())
    }

    /// Appends layer `i`'s new keys and values (`[b, kv_heads, t, head_dim]`) and returns
    /// all of that layer's keys and values so far, as views into the buffers. Writing in
    /// place is safe for Candle's immutable tensors because only positions at or after
    /// `len` are ever written: the views handed out earlier cover positions before it.
    fn append(&mut self, i: usize, k: &Tensor, v: &Tensor) -> CResult<(Tensor, Tensor)> {
        let t = k.dim(2)?;
        let reserve = self.reserve;
        let slot = &mut self.layers[i];
        let len = slot.as_ref().map(|l| l.len).unwrap_or(0);
        let cap = slot.as_ref().map(|l| l.k.dim(2)).transpose()?.unwrap_or(0);
        if len + t > cap {
            let new_cap = (len + t).max(2 * cap).max(reserve);
            let (b, h, _, d) = k.dims4()?;
            let grown = |old: Option<&Tensor>, like: &Tensor| -> CResult<Tensor> {
                let buf = Tensor::zeros((b, h, new_cap, d), like.dtype(), like.device())?;
                if let Some(old) = old {
                    buf.slice_set(&old.narrow(2, 0, len)?.contiguous()?, 2, 0)?;
                }
                Ok(buf)
            };
            let (nk, nv) = (grown(slot.as_ref().map(|l| &l.k), k)?, grown(slot.as_ref().map(|l| &l.v), v)?);
            *slot = Some(LayerCache { k: nk, v: nv, len });
        }
        let l = slot.as_mut().expect("allocated above");
        l.k.slice_set(&k.contiguous()?, 2, len)?;
        l.v.slice_set(&v.contiguous()?, 2, len)?;
        l.len = len + t;
        Ok((l.k.narrow(2, 0, l.len)?, l.v.narrow(2, 0, l.len)?))
    }
}

#[derive(Clone)]
pub struct Model {
    pub cfg: Config,
    embed_tokens: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    lm_head: Tensor,
    /// The head in its GGUF block format, like [`Linear`]'s `quant`.
    lm_head_quant: Option<Arc<QuantRows>>,
    cos: Tensor,
    sin: Tensor,
    device: Device,
}

impl Model {
    pub fn new(cfg: &Config, vb: VarBuilder) -> CResult<Self> {
        let h = cfg.hidden_size;
        let hd = cfg.head_dim();
        let (nh, nkv) = (cfg.num_attention_heads, cfg.num_kv_heads());
        let vm = vb.pp("model");
        let embed_tokens = vm.get((cfg.vocab_size, h), "embed_tokens.weight")?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let vl = vm.pp(format!("layers.{i}"));
            let p = |m: &str| format!("model.layers.{i}.{m}");
            let va = vl.pp("self_attn");
            let vf = vl.pp("mlp");
            layers.push(Layer {
                q_proj: Linear::new(h, nh * hd, cfg.qkv_bias(), va.pp("q_proj"), p("self_attn.q_proj"))?,
                k_proj: Linear::new(h, nkv * hd, cfg.qkv_bias(), va.pp("k_proj"), p("self_attn.k_proj"))?,
                v_proj: Linear::new(h, nkv * hd, cfg.qkv_bias(), va.pp("v_proj"), p("self_attn.v_proj"))?,
                o_proj: Linear::new(nh * hd, h, cfg.o_bias(), va.pp("o_proj"), p("self_attn.o_proj"))?,
                gate_proj: Linear::new(h, cfg.intermediate_size, false, vf.pp("gate_proj"), p("mlp.gate_proj"))?,
                up_proj: Linear::new(h, cfg.intermediate_size, false, vf.pp("up_proj"), p("mlp.up_proj"))?,
                down_proj: Linear::new(cfg.intermediate_size, h, false, vf.pp("down_proj"), p("mlp.down_proj"))?,
                input_layernorm: vl.get(h, "input_layernorm.weight")?,
                post_attention_layernorm: vl.get(h, "post_attention_layernorm.weight")?,
            });
        }
        let norm = vm.get(h, "norm.weight")?;
        let lm_head = if cfg.tie_word_embeddings || !vb.contains_tensor("lm_head.weight") {
            embed_tokens.clone()
        } else {
            vb.get((cfg.vocab_size, h), "lm_head.weight")?
        };
        let device = vb.device().clone();
        let (cos, sin) = rope_tables(cfg, &device)?;
        Ok(Model { cfg: cfg.clone(), embed_tokens, layers, norm, lm_head, lm_head_quant: None, cos, sin, device })
    }

    /// Builds the model from named f32 tensors (Hugging Face names).
    pub fn from_weights(cfg: Config, weights: HashMap<String, Tensor>, device: &Device) -> CResult<Self> {
        let vb = VarBuilder::from_tensors(weights, DType::F32, device);
        Self::new(&cfg, vb)
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Bytes the weights hold (tensors counted once when shared, as tied embeddings are,
    /// plus GGUF blocks kept for decoding): what keeping this model loaded costs, for the
    /// model host's memory budget. A merged model shares its untouched tensors with the
    /// model it came from; counting them again overstates, which a budget can afford.
    pub fn memory_bytes(&self) -> usize {
        let mut seen = std::collections::HashSet::new();
        let mut total = 0;
        let mut add = |t: &Tensor| {
            if seen.insert(t.id()) {
                total += t.elem_count() * t.dtype().size_in_bytes();
            }
        };
        for t in [&self.embed_tokens, &self.norm, &self.lm_head, &self.cos, &self.sin] {
            add(t);
        }
        let mut quant = self.lm_head_quant.as_ref().map_or(0, |q| q.memory_bytes());
        for l in &self.layers {
            add(&l.input_layernorm);
            add(&l.post_attention_layernorm);
            for lin in [&l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.gate_proj, &l.up_proj, &l.down_proj] {
                add(&lin.weight);
                if let Some(b) = &lin.bias {
                    add(b);
                }
                quant += lin.quant.as_ref().map_or(0, |q| q.memory_bytes());
            }
        }
        total + quant
    }

    /// Every linear layer's module path, weight and bias (for merging and tests).
    pub fn linears(&self) -> impl Iterator<Item = &Linear> {
        self.layers
            .iter()
            .flat_map(|l| [&l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.gate_proj, &l.up_proj, &l.down_proj])
    }

    fn linears_mut(&mut self) -> impl Iterator<Item = &mut Linear> {
        self.layers.iter_mut().flat_map(|l| {
            [
                &mut l.q_proj,
                &mut l.k_proj,
                &mut l.v_proj,
                &mut l.o_proj,
                &mut l.gate_proj,
                &mut l.up_proj,
                &mut l.down_proj,
            ]
        })
    }

    /// A copy of the model with the adapter folded into its weights
    /// (`W + scale * B A`), so sampling with an adapter costs no more than without.
    pub fn merged<'a>(&self, adapter: impl Into<Adapter<'a>>) -> CResult<Model> {
        let adapter = adapter.into();
        let mut m = self.clone();
        for lin in m.linears_mut() {
            if let Some(delta) = adapter.weight_delta(&lin.path)? {
                lin.weight = (&lin.weight + delta)?;
                lin.quant = None;
            }
        }
        Ok(m)
    }

    /// Gives weights their GGUF block format (by Hugging Face name, e.g.
    /// `model.layers.0.mlp.up_proj.weight`; the head under `lm_head.weight`, or the
    /// embedding's name when tied), which decoding steps then read instead of the f32
    /// weights. Each must dequantise exactly to the weight it joins: the loader builds
    /// both from the same tensor. Names the model lacks, and shapes that differ, are
    /// refused.
    pub(crate) fn attach_quant(&mut self, mut quant: HashMap<String, QuantRows>) -> CResult<()> {
        let head_name = if self.ties_embeddings() { "model.embed_tokens.weight" } else { "lm_head.weight" };
        let mut take = |name: &str, w: &Tensor| -> CResult<Option<Arc<QuantRows>>> {
            let Some(q) = quant.remove(name) else { return Ok(None) };
            if w.dims2()? != (q.rows(), q.cols()) {
                candle_core::bail!("{name}: blocks of {}x{} for a weight {:?}", q.rows(), q.cols(), w.dims());
            }
            Ok(Some(Arc::new(q)))
        };
        self.lm_head_quant = take(head_name, &self.lm_head)?;
        for lin in self.linears_mut() {
            lin.quant = take(&format!("{}.weight", lin.path), &lin.weight)?;
        }
        if let Some(name) = quant.keys().next() {
            candle_core::bail!("block-format weight {name} matches no projection of the model");
        }
        Ok(())
    }

    /// The output head's GGUF block format, if it has one (see [`Linear::quant`]).
    pub fn head_quant(&self) -> Option<&QuantRows> {
        self.lm_head_quant.as_deref()
    }

    /// Whether the output head is the embedding matrix itself (tied embeddings).
    pub fn ties_embeddings(&self) -> bool {
        self.lm_head.id() == self.embed_tokens.id()
    }

    /// A copy of the model with every weight replaced by `f(name, weight)`, visiting each
    /// once under its Hugging Face name. A tied head is not visited: it is the embedding,
    /// and the copy's head is the new embedding.
    fn map_weights(&self, mut f: impl FnMut(&str, &Tensor) -> CResult<Tensor>) -> CResult<Model> {
        let mut m = self.clone();
        // The new weights need not match the stored blocks any more.
        m.lm_head_quant = None;
        for lin in m.linears_mut() {
            lin.quant = None;
        }
        m.embed_tokens = f("model.embed_tokens.weight", &self.embed_tokens)?;
        m.lm_head = if self.ties_embeddings() { m.embed_tokens.clone() } else { f("lm_head.weight", &self.lm_head)? };
        m.norm = f("model.norm.weight", &self.norm)?;
        for (i, l) in m.layers.iter_mut().enumerate() {
            l.input_layernorm = f(&format!("model.layers.{i}.input_layernorm.weight"), &l.input_layernorm)?;
            l.post_attention_layernorm =
                f(&format!("model.layers.{i}.post_attention_layernorm.weight"), &l.post_attention_layernorm)?;
        }
        for lin in m.linears_mut() {
            lin.weight = f(&format!("{}.weight", lin.path), &lin.weight)?;
            if let Some(b) = &lin.bias {
                lin.bias = Some(f(&format!("{}.bias", lin.path), b)?);
            }
        }
        Ok(m)
    }

    /// Every weight under its Hugging Face name; a tied head is not listed twice (as in
    /// checkpoints written by transformers).
    pub fn named_weights(&self) -> Vec<(String, Tensor)> {
        let mut w = Vec::new();
        self.map_weights(|name, t| {
            w.push((name.to_string(), t.clone()));
            Ok(t.clone())
        })
        .expect("cloning tensors cannot fail");
        w
    }

    /// A copy of the model whose every weight is a fresh variable (full fine-tuning), with
    /// those variables by name. The copy's forward pass computes weight gradients (plain
    /// matmuls and the composed RMSNorm); the original stays frozen and untouched.
    pub fn trainable_copy(&self) -> CResult<(Model, Vec<(String, Var)>)> {
        let mut vars = Vec::new();
        let m = self.map_weights(|name, t| {
            let v = Var::from_tensor(t)?;
            vars.push((name.to_string(), v.clone()));
            Ok(v.as_tensor().clone())
        })?;
        Ok((m, vars))
    }

    /// A copy with plain (non-variable) tensors of the current values: what a finished
    /// full fine-tune hands on for sampling, which then takes the fast kernels.
    pub fn frozen_copy(&self) -> CResult<Model> {
        self.map_weights(|_, t| Ok(t.detach()))
    }

    /// Final hidden states `[b, t, hidden]` (after the last norm).
    ///
    /// `positions` is `[b, t]` (u32): each token's rotary position, so left-padded rows can
    /// start at 0. `mask` is additive, `[b, 1, t, past + t]`, or None for a plain causal
    /// mask over an unpadded batch.
    pub fn hidden_states(
        &self,
        ids: &Tensor,
        positions: &Tensor,
        mask: Option<&Tensor>,
        mut cache: Option<&mut KvCache>,
        ad: Option<&Adapter>,
    ) -> CResult<Tensor> {
        let (b, t) = ids.dims2()?;
        let cfg = &self.cfg;
        let (nh, nkv, hd) = (cfg.num_attention_heads, cfg.num_kv_heads(), cfg.head_dim());
        let past = cache.as_ref().map(|c| c.len()).unwrap_or(0);
        let own_mask;
        let mask = match mask {
            Some(m) => Some(m),
            None if t > 1 => {
                own_mask = causal_mask(&[vec![true; past + t]], t, &self.device)?;
                Some(&own_mask)
            }
            None => None,
        };
        let flat_pos = positions.flatten_all()?;
        let cos = self.cos.index_select(&flat_pos, 0)?.reshape((b, 1, t, hd / 2))?;
        let sin = self.sin.index_select(&flat_pos, 0)?.reshape((b, 1, t, hd / 2))?;
        let mut x = self.embed_tokens.index_select(&ids.flatten_all()?, 0)?.reshape((b, t, cfg.hidden_size))?;
        let scale = 1.0 / (hd as f64).sqrt();
        for (i, l) in self.layers.iter().enumerate() {
            let h = norm(&x, &l.input_layernorm, cfg.rms_norm_eps)?;
            let q = l.q_proj.forward(&h, ad)?.reshape((b, t, nh, hd))?.transpose(1, 2)?;
            let k = l.k_proj.forward(&h, ad)?.reshape((b, t, nkv, hd))?.transpose(1, 2)?;
            let v = l.v_proj.forward(&h, ad)?.reshape((b, t, nkv, hd))?.transpose(1, 2)?.contiguous()?;
            let q = ops::rope_fused(&q, &cos, &sin)?;
            let k = ops::rope_fused(&k, &cos, &sin)?;
            let (k, v) = match cache.as_deref_mut() {
                Some(c) => c.append(i, &k, &v)?,
                None => (k, v),
            };
            let y = match t {
                // A decoding step: one query per row, no gradient wanted.
                1 if ops::decode_attention_applies(&q) => ops::decode_attention(&q, &k, &v, mask, scale)?,
                _ => attention(&q, &k, &v, mask, scale)?,
            };
            x = (x + l.o_proj.forward(&y, ad)?)?;
            let h = norm(&x, &l.post_attention_layernorm, cfg.rms_norm_eps)?;
            let g = l.gate_proj.forward(&h, ad)?;
            let u = l.up_proj.forward(&h, ad)?;
            x = (x + l.down_proj.forward(&ops::silu_mul_fused(&g, &u)?, ad)?)?;
        }
        norm(&x, &self.norm, cfg.rms_norm_eps)
    }

    /// Logits for hidden states of any leading shape.
    pub fn logits(&self, hidden: &Tensor) -> CResult<Tensor> {
        matmul_t(hidden, &self.lm_head, self.lm_head_quant.as_ref())
    }

    /// Logits `[b, t, vocab]` of an unpadded batch of equal-length rows.
    pub fn forward(&self, ids: &Tensor, ad: Option<&Adapter>) -> CResult<Tensor> {
        let (b, t) = ids.dims2()?;
        let pos: Vec<u32> = (0..b).flat_map(|_| 0..t as u32).collect();
        let pos = Tensor::from_vec(pos, (b, t), &self.device)?;
        let h = self.hidden_states(ids, &pos, None, None, ad)?;
        self.logits(&h)
    }
}

fn rope_tables(cfg: &Config, device: &Device) -> CResult<(Tensor, Tensor)> {
    let hd = cfg.head_dim();
    let inv: Vec<f32> = (0..hd / 2).map(|i| 1.0 / (cfg.rope_theta.powf(2.0 * i as f64 / hd as f64)) as f32).collect();
    let n = cfg.max_position_embeddings.max(1);
    let mut cos = Vec::with_capacity(n * hd / 2);
    let mut sin = Vec::with_capacity(n * hd / 2);
    for p in 0..n {
        for &f in &inv {
            let a = p as f32 * f;
            cos.push(a.cos());
            sin.push(a.sin());
        }
    }
    Ok((Tensor::from_vec(cos, (n, hd / 2), device)?, Tensor::from_vec(sin, (n, hd / 2), device)?))
}

/// A large negative number rather than -inf: a fully masked row (a padding query) then
/// gets a harmless uniform softmax instead of NaNs that would poison the batch.
pub const MASKED: f32 = -1e9;

/// Additive attention mask `[b, 1, q_len, keys]` for queries at the last `q_len` key
/// positions: a query sees valid keys at or before its own position.
pub fn causal_mask(valid_keys: &[Vec<bool>], q_len: usize, device: &Device) -> CResult<Tensor> {
    let b = valid_keys.len();
    let s = valid_keys.first().map(|r| r.len()).unwrap_or(0);
    let past = s - q_len;
    let mut m = vec![0f32; b * q_len * s];
    for (r, keys) in valid_keys.iter().enumerate() {
        for i in 0..q_len {
            for (j, &ok) in keys.iter().enumerate() {
                if !ok || j > past + i {
                    m[(r * q_len + i) * s + j] = MASKED;
                }
            }
        }
    }
    Tensor::from_vec(m, (b, 1, q_len, s), device)
}
