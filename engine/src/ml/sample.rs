//! Batched sampling with a KV cache: left-padded prompts with per-row rotary positions,
//! temperature and top-p, stopping at `<|im_end|>`, one recorded seed per sample so any
//! sample can be regenerated on its own.

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{Tensor, D};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::model::{causal_mask, KvCache, Model};
use super::tokenizer::Tokenizer;
use super::{MlError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct SampleConfig {
    /// 0 means greedy decoding.
    pub temperature: f64,
    pub top_p: f64,
    pub max_new_tokens: usize,
    /// Base seed; sample `i` uses [`sample_seed`]`(seed, i)`.
    pub seed: u64,
    pub batch_size: usize,
    /// Keep generating past stop tokens up to `max_new_tokens` (benchmarks only).
    pub ignore_stop: bool,
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig { temperature: 1.0, top_p: 1.0, max_new_tokens: 128, seed: 0, batch_size: 16, ignore_stop: false }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Index of the prompt in the input.
    pub index: usize,
    pub text: String,
    pub token_ids: Vec<u32>,
    /// The seed of this sample's own generator.
    pub seed: u64,
    /// True if the model ended its answer (a stop token) rather than hitting the limit.
    pub finished: bool,
}

/// The seed of sample `i` under base seed `seed` (SplitMix64 of both), so that samples
/// are independent and each is reproducible alone.
pub fn sample_seed(seed: u64, i: u64) -> u64 {
    let mut z = seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(0x6A09_E667_F3BC_C909);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Draws a token from one row of logits.
pub fn pick(logits: &[f32], temperature: f64, top_p: f64, rng: &mut ChaCha8Rng) -> u32 {
    if temperature <= 0.0 {
        return logits.iter().enumerate().fold((0, f32::NEG_INFINITY), |a, (i, &x)| if x > a.1 { (i, x) } else { a }).0
            as u32;
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<(u32, f64)> =
        logits.iter().enumerate().map(|(i, &x)| (i as u32, (((x - max) as f64) / temperature).exp())).collect();
    let total: f64 = probs.iter().map(|p| p.1).sum();
    if top_p < 1.0 {
        probs.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
        let mut acc = 0.0;
        let mut keep = probs.len();
        for (i, p) in probs.iter().enumerate() {
            acc += p.1 / total;
            if acc >= top_p {
                keep = i + 1;
                break;
            }
        }
        probs.truncate(keep);
    }
    let kept: f64 = probs.iter().map(|p| p.1).sum();
    let mut u = rng.gen::<f64>() * kept;
    for &(i, p) in &probs {
        u -= p;
        if u <= 0.0 {
            return i;
        }
    }
    probs.last().map(|p| p.0).unwrap_or(0)
}

/// One token for each active row (`active[k]` is the batch row whose logits are row `k` of
/// `flat`), each drawn with that row's generator.
fn pick_rows(flat: &[f32], v: usize, active: &[usize], rngs: &mut [ChaCha8Rng], cfg: &SampleConfig) -> Vec<u32> {
    use rayon::prelude::*;
    let mut slot = vec![None; rngs.len()];
    for (k, &r) in active.iter().enumerate() {
        slot[r] = Some(k);
    }
    let mut picks = vec![0u32; active.len()];
    let drawn: Vec<(usize, u32)> = super::ops::on_pool(|| {
        rngs.par_iter_mut()
            .zip(slot.par_iter())
            .filter_map(|(rng, k)| k.map(|k| (k, pick(&flat[k * v..(k + 1) * v], cfg.temperature, cfg.top_p, rng))))
            .collect()
    });
    for (k, t) in drawn {
        picks[k] = t;
    }
    picks
}

/// Generates one completion per prompt (token ids ending in the assistant header).
/// `on_done(n)` reports how many samples are finished so far; `cancel` stops between
/// tokens. An adapter is applied by passing `model.merged(&lora)`.
pub fn generate(
    model: &Model,
    tok: &Tokenizer,
    prompts: &[Vec<u32>],
    cfg: &SampleConfig,
    mut on_done: impl FnMut(usize),
    cancel: Option<&AtomicBool>,
) -> Result<Vec<Sample>> {
    let mut out = Vec::with_capacity(prompts.len());
    let bs = cfg.batch_size.max(1);
    for (c, chunk) in prompts.chunks(bs).enumerate() {
        let first = c * bs;
        // On a pool thread: see `ops::on_pool`.
        out.extend(super::ops::on_pool(|| generate_batch(model, tok, chunk, first, cfg, cancel))?);
        on_done(out.len());
    }
    Ok(out)
}

fn generate_batch(
    model: &Model,
    tok: &Tokenizer,
    prompts: &[Vec<u32>],
    first: usize,
    cfg: &SampleConfig,
    cancel: Option<&AtomicBool>,
) -> Result<Vec<Sample>> {
    let dev = model.device();
    let b = prompts.len();
    let l = prompts.iter().map(|p| p.len()).max().unwrap_or(0);
    if l == 0 {
        return Err(MlError::Input("empty prompt".into()));
    }
    if l + cfg.max_new_tokens > model.cfg.max_position_embeddings {
        return Err(MlError::Input(format!(
            "prompt of {l} tokens + {} new exceeds the model's {} positions",
            cfg.max_new_tokens, model.cfg.max_position_embeddings
        )));
    }
    let mut ids = Vec::with_capacity(b * l);
    let mut pos = Vec::with_capacity(b * l);
    let mut valid: Vec<Vec<bool>> = Vec::with_capacity(b);
    for p in prompts {
        let pad = l - p.len();
        ids.extend(std::iter::repeat(tok.pad_id()).take(pad).chain(p.iter().copied()));
        pos.extend((0..l).map(|j| j.saturating_sub(pad) as u32));
        valid.push((0..l).map(|j| j >= pad).collect());
    }
    let mut next_pos: Vec<u32> = prompts.iter().map(|p| p.len() as u32).collect();
    let mut rngs: Vec<ChaCha8Rng> =
        (0..b).map(|i| ChaCha8Rng::seed_from_u64(sample_seed(cfg.seed, (first + i) as u64))).collect();
    let mut gen: Vec<Vec<u32>> = vec![Vec::new(); b];
    let mut finished = vec![false; b];
    // Rows still generating, as indices into the original batch.
    let mut active: Vec<usize> = (0..b).collect();

    let mut cache = KvCache::with_capacity(&model.cfg, l + cfg.max_new_tokens);
    let mask = causal_mask(&valid, l, dev)?;
    let h = model.hidden_states(
        &Tensor::from_vec(ids, (b, l), dev)?,
        &Tensor::from_vec(pos, (b, l), dev)?,
        Some(&mask),
        Some(&mut cache),
        None,
    )?;
    let mut last = h.narrow(1, l - 1, 1)?.squeeze(1)?;
    for _step in 0..cfg.max_new_tokens {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(MlError::Cancelled);
        }
        let logits = model.logits(&last)?.to_dtype(candle_core::DType::F32)?;
        let v = logits.dim(D::Minus1)?;
        let flat = logits.flatten_all()?.to_vec1::<f32>()?;
        // Each row draws from its own generator, so rows can draw in parallel.
        let picks = pick_rows(&flat, v, &active, &mut rngs, cfg);
        let mut still = Vec::new();
        let mut feed = Vec::new();
        for (k, (&r, &t)) in active.iter().zip(&picks).enumerate() {
            if !cfg.ignore_stop && tok.stop_ids().contains(&t) {
                finished[r] = true;
            } else {
                gen[r].push(t);
                still.push(k);
                feed.push(t);
            }
        }
        if still.is_empty() {
            break;
        }
        if still.len() < active.len() {
            let keep = Tensor::from_vec(still.iter().map(|&k| k as u32).collect::<Vec<_>>(), still.len(), dev)?;
            cache.select_rows(&keep)?;
            valid = still.iter().map(|&k| valid[k].clone()).collect();
            active = still.iter().map(|&k| active[k]).collect();
        }
        let n = active.len();
        for v in valid.iter_mut() {
            v.push(true);
        }
        let p: Vec<u32> = active.iter().map(|&r| next_pos[r]).collect();
        for &r in &active {
            next_pos[r] += 1;
        }
        let mask = causal_mask(&valid, 1, dev)?;
        let h = model.hidden_states(
            &Tensor::from_vec(feed, (n, 1), dev)?,
            &Tensor::from_vec(p, (n, 1), dev)?,
            Some(&mask),
            Some(&mut cache),
            None,
        )?;
        last = h.squeeze(1)?;
    }
    (0..b)
        .map(|r| {
            Ok(Sample {
                index: first + r,
                text: tok.decode(&gen[r], true)?,
                token_ids: gen[r].clone(),
                seed: sample_seed(cfg.seed, (first + r) as u64),
                finished: finished[r],
            })
        })
        .collect()
}
