//! Teacher-forced scoring: the log-probability a model (with or without an adapter) gives
//! to given completions of given prompts, batched. Judges and the prompt-strength meter
//! use the mean per-token log-prob of the completion's tokens.

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{Tensor, D};

use super::chat::{ChatMessage, ChatTemplate, SystemPrompt};
use super::lora::{Adapter, Lora};
use super::model::Model;
use super::ops;
use super::tokenizer::Tokenizer;
use super::LoadedModel;
use super::{MlError, Result};

#[derive(Debug, Clone)]
pub struct ScoreItem {
    /// The conversation up to (not including) the completion.
    pub messages: Vec<ChatMessage>,
    pub completion: String,
}

#[derive(Debug, Clone)]
pub struct ScoreOptions {
    pub system: SystemPrompt,
    /// Count the closing `<|im_end|>` as one of the completion's tokens, as training does.
    pub include_end: bool,
    pub batch_size: usize,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions { system: SystemPrompt::Default, include_end: true, batch_size: 8 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompletionScore {
    pub sum_logprob: f64,
    pub n_tokens: usize,
}

impl CompletionScore {
    pub fn mean_logprob(&self) -> f64 {
        if self.n_tokens == 0 {
            0.0
        } else {
            self.sum_logprob / self.n_tokens as f64
        }
    }
}

/// A right-padded batch of sequences with the flat indices of the positions whose next
/// token is a target. Shared by training and scoring so both see identical inputs.
pub(crate) struct Batch {
    pub ids: Tensor,
    pub positions: Tensor,
    /// Flat `b * t` indices of the hidden states that predict a target.
    pub rows: Tensor,
    pub targets: Vec<u32>,
    /// For each target, the sequence it belongs to.
    pub seq_of: Vec<usize>,
    pub real_tokens: usize,
}

/// `seqs`: token ids and, per id, whether it is a target (predicted from the previous
/// position). The first token can never be a target.
pub(crate) fn make_batch(
    seqs: &[(&[u32], &[bool])],
    pad: u32,
    device: &candle_core::Device,
) -> candle_core::Result<Batch> {
    let b = seqs.len();
    let t = seqs.iter().map(|s| s.0.len()).max().unwrap_or(1).max(1);
    let mut ids = vec![pad; b * t];
    let mut pos = vec![0u32; b * t];
    let (mut rows, mut targets, mut seq_of) = (Vec::new(), Vec::new(), Vec::new());
    let mut real = 0;
    for (r, (s, m)) in seqs.iter().enumerate() {
        real += s.len();
        for j in 0..t {
            pos[r * t + j] = j as u32;
        }
        ids[r * t..r * t + s.len()].copy_from_slice(s);
        for j in 1..s.len() {
            if m[j] {
                rows.push((r * t + j - 1) as u32);
                targets.push(s[j]);
                seq_of.push(r);
            }
        }
    }
    let n = rows.len();
    Ok(Batch {
        ids: Tensor::from_vec(ids, (b, t), device)?,
        positions: Tensor::from_vec(pos, (b, t), device)?,
        rows: Tensor::from_vec(rows, n, device)?,
        targets,
        seq_of,
        real_tokens: real,
    })
}

/// Hidden states of the target-predicting positions, `[n_targets, hidden]`. The causal
/// mask suffices for right padding: real tokens never look at the padding after them.
pub(crate) fn target_hidden(model: &Model, batch: &Batch, ad: Option<&Adapter>) -> candle_core::Result<Tensor> {
    let (b, t) = batch.ids.dims2()?;
    let h = model.hidden_states(&batch.ids, &batch.positions, None, None, ad)?;
    h.reshape((b * t, model.cfg.hidden_size))?.index_select(&batch.rows, 0)
}

/// Scores pre-tokenised (prompt, completion) pairs.
pub fn score_ids(
    model: &Model,
    lora: Option<&Lora>,
    pairs: &[(Vec<u32>, Vec<u32>)],
    batch_size: usize,
) -> Result<Vec<CompletionScore>> {
    let seqs: Vec<(Vec<u32>, Vec<bool>)> = pairs
        .iter()
        .map(|(p, c)| {
            let ids: Vec<u32> = p.iter().chain(c).copied().collect();
            let mask: Vec<bool> =
                std::iter::repeat(false).take(p.len()).chain(std::iter::repeat(true).take(c.len())).collect();
            (ids, mask)
        })
        .collect();
    score_masked(model, lora, &seqs, batch_size, None)
}

/// Scores the masked tokens of whole sequences (e.g. a conversation's assistant tokens,
/// weighed as training weighs them), batched. Sequences are batched longest first so a
/// batch pads little; results come back in input order. `cancel` is checked between
/// batches.
pub fn score_masked(
    model: &Model,
    lora: Option<&Lora>,
    seqs: &[(Vec<u32>, Vec<bool>)],
    batch_size: usize,
    cancel: Option<&AtomicBool>,
) -> Result<Vec<CompletionScore>> {
    let mut order: Vec<usize> = (0..seqs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(seqs[i].0.len()));
    let mut out = vec![CompletionScore { sum_logprob: 0.0, n_tokens: 0 }; seqs.len()];
    // On a pool thread: see `ops::on_pool`.
    ops::on_pool(|| {
        let ad = lora.map(Adapter::inference);
        for chunk in order.chunks(batch_size.max(1)) {
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(MlError::Cancelled);
            }
            let refs: Vec<(&[u32], &[bool])> =
                chunk.iter().map(|&i| (seqs[i].0.as_slice(), seqs[i].1.as_slice())).collect();
            let batch = make_batch(&refs, 0, model.device())?;
            if batch.targets.is_empty() {
                continue;
            }
            let h = target_hidden(model, &batch, ad.as_ref())?;
            let lp = ops::target_logprobs(&model.logits(&h)?, &batch.targets)?;
            for (k, &s) in batch.seq_of.iter().enumerate() {
                let o = &mut out[chunk[s]];
                o.sum_logprob += lp[k] as f64;
                o.n_tokens += 1;
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// Scores completions of chat prompts (see [`ScoreOptions`]).
pub fn score_completions(
    model: &Model,
    lora: Option<&Lora>,
    tok: &Tokenizer,
    template: &ChatTemplate,
    items: &[ScoreItem],
    opts: &ScoreOptions,
) -> Result<Vec<CompletionScore>> {
    let pairs = items
        .iter()
        .map(|it| {
            let p = template.encode_prompt(tok, &it.messages, &opts.system)?;
            let mut c = tok.encode(&it.completion)?;
            if opts.include_end {
                c.push(tok.end_of_turn());
            }
            Ok((p, c))
        })
        .collect::<Result<Vec<_>>>()?;
    score_ids(model, lora, &pairs, opts.batch_size)
}

/// The `top_k` most likely first tokens of the assistant's reply to `messages`, as (decoded
/// token text, natural-log probability), most likely first: what an OpenAI-compatible
/// server's `top_logprobs` returns, computed offline, so the local model can be an LLM
/// judge. No system prompt of the model's own is added: a judge prompt is the whole
/// instruction.
pub fn first_token_top_logprobs(
    lm: &LoadedModel,
    messages: &[ChatMessage],
    top_k: usize,
) -> Result<Vec<(String, f64)>> {
    let ids = lm.template.encode_prompt(&lm.tokenizer, messages, &SystemPrompt::None)?;
    let t = ids.len();
    let positions = lm.model.cfg.max_position_embeddings;
    if t > positions {
        return Err(crate::MlError::Input(format!(
            "the prompt is {t} tokens, more than the model's {positions} positions"
        )));
    }
    let x = Tensor::from_vec(ids, (1, t), lm.model.device())?;
    let logits = lm.model.forward(&x, None)?.narrow(1, t - 1, 1)?.squeeze(0)?.squeeze(0)?;
    let logprobs = candle_nn::ops::log_softmax(&logits, D::Minus1)?.to_vec1::<f32>()?;
    let mut order: Vec<usize> = (0..logprobs.len()).collect();
    order.sort_unstable_by(|&a, &b| logprobs[b].total_cmp(&logprobs[a]));
    order
        .into_iter()
        .take(top_k)
        .map(|id| Ok((lm.tokenizer.decode(&[id as u32], false)?, logprobs[id] as f64)))
        .collect()
}
