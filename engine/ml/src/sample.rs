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

/// Draws a token from one row of logits: token `i` with probability proportional to
/// `e^((x_i - max) / temperature)` (f32 weights, their total in f64), within the top-p
/// nucleus when `top_p < 1`; greedy at temperature 0.
pub fn pick(logits: &[f32], temperature: f64, top_p: f64, rng: &mut ChaCha8Rng) -> u32 {
    if temperature <= 0.0 {
        return logits.iter().enumerate().fold((0, f32::NEG_INFINITY), |a, (i, &x)| if x > a.1 { (i, x) } else { a }).0
            as u32;
    }
    thread_local! {
        /// One row's weights, kept between draws (a vocabulary's worth per token).
        static WEIGHTS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    WEIGHTS.with_borrow_mut(|w| {
        let total = super::ops::sampling_weights(logits, temperature as f32, w);
        if top_p < 1.0 {
            let kept = nucleus(w, total, top_p);
            let mass = kept.iter().map(|&i| w[i as usize] as f64).sum();
            draw(kept.iter().map(|&i| (i, w[i as usize])), mass, rng)
        } else {
            draw((0u32..).zip(w.iter().copied()), total, rng)
        }
    })
}

/// A token drawn from `(token, weight)` pairs with probability `weight / total`.
fn draw(weights: impl Iterator<Item = (u32, f32)>, total: f64, rng: &mut ChaCha8Rng) -> u32 {
    let mut u = rng.gen::<f64>() * total;
    let mut last = 0;
    for (i, p) in weights.filter(|&(_, p)| p > 0.0) {
        u -= p as f64;
        last = i;
        if u <= 0.0 {
            return i;
        }
    }
    last
}

/// The nucleus of top-p sampling: the most likely tokens, most likely first (equal weights
/// by token id), until they hold `top_p` of the mass. Sorting the whole vocabulary for
/// every token drawn was slower than the decoding step itself, so only the tokens above
/// a threshold are sorted, lowered until they hold enough; the result is what the full
/// sort would give, because every token above the threshold is among them.
fn nucleus(w: &[f32], total: f64, top_p: f64) -> Vec<u32> {
    // The most likely token's weight is 1.
    let mut threshold = 1.0f32 / 64.0;
    loop {
        let mut kept: Vec<u32> = (0..w.len() as u32).filter(|&i| w[i as usize] >= threshold).collect();
        kept.sort_unstable_by(|&a, &b| w[b as usize].total_cmp(&w[a as usize]).then(a.cmp(&b)));
        let mut acc = 0.0;
        for (k, &i) in kept.iter().enumerate() {
            acc += w[i as usize] as f64 / total;
            if acc >= top_p {
                kept.truncate(k + 1);
                return kept;
            }
        }
        if threshold == 0.0 {
            return kept;
        }
        threshold = if threshold < 1e-30 { 0.0 } else { threshold / 64.0 };
    }
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
    // Rows with the same prompt share one prefill: `n` samples of a question sit side by
    // side in a batch, and running the prompt once, then copying its keys, values and
    // last hidden state, saves all but one of those prefills. `first_of[r]` is the
    // distinct prompt that row `r` starts from.
    let mut distinct: Vec<&Vec<u32>> = Vec::new();
    let first_of: Vec<u32> = prompts
        .iter()
        .map(|p| {
            let at = distinct.iter().position(|d| *d == p).unwrap_or_else(|| {
                distinct.push(p);
                distinct.len() - 1
            });
            at as u32
        })
        .collect();
    let mut ids = Vec::with_capacity(distinct.len() * l);
    let mut pos = Vec::with_capacity(distinct.len() * l);
    let mut valid_distinct: Vec<Vec<bool>> = Vec::with_capacity(distinct.len());
    for p in &distinct {
        let pad = l - p.len();
        ids.extend(std::iter::repeat(tok.pad_id()).take(pad).chain(p.iter().copied()));
        pos.extend((0..l).map(|j| j.saturating_sub(pad) as u32));
        valid_distinct.push((0..l).map(|j| j >= pad).collect());
    }
    let mut next_pos: Vec<u32> = prompts.iter().map(|p| p.len() as u32).collect();
    let mut rngs: Vec<ChaCha8Rng> =
        (0..b).map(|i| ChaCha8Rng::seed_from_u64(sample_seed(cfg.seed, (first + i) as u64))).collect();
    let mut gen: Vec<Vec<u32>> = vec![Vec::new(); b];
    let mut finished = vec![false; b];
    // Rows still generating, as indices into the original batch.
    let mut active: Vec<usize> = (0..b).collect();

    let mut cache = KvCache::with_capacity(&model.cfg, l + cfg.max_new_tokens);
    let mask = causal_mask(&valid_distinct, l, dev)?;
    let h = model.hidden_states(
        &Tensor::from_vec(ids, (distinct.len(), l), dev)?,
        &Tensor::from_vec(pos, (distinct.len(), l), dev)?,
        Some(&mask),
        Some(&mut cache),
        None,
    )?;
    let mut last = h.narrow(1, l - 1, 1)?.squeeze(1)?;
    let mut valid: Vec<Vec<bool>> = first_of.iter().map(|&d| valid_distinct[d as usize].clone()).collect();
    if distinct.len() < b {
        let rows = Tensor::from_vec(first_of, b, dev)?;
        cache.select_rows(&rows)?;
        last = last.contiguous()?.index_select(&rows, 0)?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Logits spread like a language model's: a few likely tokens, a long tail.
    fn logits(seed: u64, n: usize) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.gen::<f32>().powi(8) * 30.0 - 10.0).collect()
    }

    /// The thresholded nucleus is exactly what sorting the whole vocabulary gives.
    #[test]
    fn the_nucleus_is_the_full_sorts_prefix() {
        for (seed, top_p) in [(1, 0.9), (2, 0.5), (3, 0.999), (4, 0.01), (5, 0.95)] {
            let x = logits(seed, 5000);
            let mut w = Vec::new();
            let total = crate::ops::sampling_weights(&x, 1.3, &mut w);
            let mut all: Vec<u32> = (0..w.len() as u32).collect();
            all.sort_by(|&a, &b| w[b as usize].partial_cmp(&w[a as usize]).unwrap());
            let mut acc = 0.0;
            let keep = all.iter().position(|&i| {
                acc += w[i as usize] as f64 / total;
                acc >= top_p
            });
            all.truncate(keep.map_or(all.len(), |k| k + 1));
            assert_eq!(nucleus(&w, total, top_p), all, "seed {seed}, top_p {top_p}");
        }
        // Most of the mass in a long tail below the first threshold: it is lowered until
        // the tail is in, and equal weights go by token id.
        let mut w = vec![1.0f32];
        w.extend(std::iter::repeat(0.001f32).take(10_000));
        let kept = nucleus(&w, 11.0, 0.5);
        assert_eq!(kept.len(), 4501);
        assert_eq!(kept[..4], [0, 1, 2, 3]);
    }

    /// Draws follow softmax(logits / temperature): over 20,000 draws each token's share
    /// is within 0.01 of its probability, and top-p draws stay in the nucleus.
    #[test]
    fn draws_follow_the_distribution() {
        let x: Vec<f32> = vec![2.0, 1.0, 0.5, 0.0, -1.0, -30.0];
        let t = 0.8;
        let z: f64 = x.iter().map(|&v| ((v as f64 - 2.0) / t).exp()).sum();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut counts = [0usize; 6];
        let n = 20_000;
        for _ in 0..n {
            counts[pick(&x, t, 1.0, &mut rng) as usize] += 1;
        }
        for (i, &c) in counts.iter().enumerate() {
            let p = ((x[i] as f64 - 2.0) / t).exp() / z;
            assert!((c as f64 / n as f64 - p).abs() < 0.01, "token {i}: {c} of {n}, p = {p}");
        }
        // p(0) + p(1) is about 0.86: top-p 0.8 keeps tokens 0 and 1 only.
        for _ in 0..2000 {
            assert!(pick(&x, t, 0.8, &mut rng) < 2);
        }
        assert_eq!(pick(&x, 0.0, 1.0, &mut rng), 0, "temperature 0 is greedy");
    }
}
