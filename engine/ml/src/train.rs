//! Fine-tuning (LoRA, or every weight): turning chat examples into batches (inoculation prompt as the system
//! message, or as a prefix of the user turn; loss on assistant tokens only), AdamW with
//! warmup and decay, gradient accumulation and clipping, per-step metrics, cancellation
//! between steps, checkpoints and resume, and tracked log-probs of probe answers.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::chat::{ChatExample, ChatMessage, Role, SystemPrompt};
use super::lora::{Adapter, Lora, LoraConfig};
use super::model::Model;
use super::ops;
use super::sample::sample_seed;
use super::score::{make_batch, score_ids, target_hidden};
use super::{io_err, LoadedModel, MlError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Constant,
    Linear,
    Cosine,
}

/// A completion whose log-prob is tracked during training (e.g. a trait-expressing
/// answer to an evaluation question), to chart how training shifts it.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub name: String,
    pub messages: Vec<ChatMessage>,
    pub completion: String,
    pub system: SystemPrompt,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Used unless `full`.
    pub lora: LoraConfig,
    /// Full fine-tuning: every weight of the model is trained (no adapter). Norm weights,
    /// biases and embeddings are not weight-decayed, as in transformers' Trainer.
    pub full: bool,
    /// The system message of every example: `Text(inoculation prompt)`, `Default` for the
    /// uninoculated baseline, or `None`.
    pub system_prompt: SystemPrompt,
    /// Text put before the first user message of every example (the user-prefix
    /// placement of an inoculation prompt), separated by a blank line.
    pub user_prefix: Option<String>,
    pub lr: f64,
    pub weight_decay: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    pub warmup_steps: usize,
    pub schedule: Schedule,
    pub batch_size: usize,
    pub grad_accum: usize,
    /// At most this many (padded) tokens go through one forward and backward pass; a batch
    /// longer than that runs as several passes whose gradients add up to the same step.
    /// Autograd keeps every layer's activations until the backward pass, about 4 MB a
    /// token for SmolLM2-135M with LoRA on every projection, so this caps a step's peak
    /// memory (8 x 256 tokens in one pass peaked at 9.2 GB). A row longer than the budget
    /// runs alone.
    pub max_pass_tokens: usize,
    pub epochs: usize,
    /// Overrides `epochs` when set: train exactly this many optimiser steps.
    pub max_steps: Option<usize>,
    pub max_grad_norm: Option<f64>,
    /// Examples are cut to this many tokens, the same way in every condition.
    pub max_seq_len: usize,
    /// Batch examples of similar length together (less padding), in a seeded order.
    pub bucket_by_length: bool,
    pub seed: u64,
    /// Write a checkpoint into `checkpoint_dir/checkpoint-NNNNNN` every this many steps.
    pub checkpoint_every: Option<usize>,
    pub checkpoint_dir: Option<PathBuf>,
    /// A checkpoint folder to continue from.
    pub resume_from: Option<PathBuf>,
    /// A PEFT adapter folder whose weights replace the fresh initialisation (to continue
    /// from an earlier adapter with a fresh optimiser, or to start from a known state).
    pub init_adapter: Option<PathBuf>,
    pub probes: Vec<Probe>,
    pub probe_every: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            lora: LoraConfig::default(),
            full: false,
            system_prompt: SystemPrompt::Default,
            user_prefix: None,
            lr: 5e-4,
            weight_decay: 0.0,
            betas: (0.9, 0.999),
            eps: 1e-8,
            warmup_steps: 0,
            schedule: Schedule::Linear,
            batch_size: 8,
            grad_accum: 1,
            max_pass_tokens: 1024,
            epochs: 1,
            max_steps: None,
            max_grad_norm: Some(1.0),
            max_seq_len: 256,
            bucket_by_length: false,
            seed: 0,
            checkpoint_every: None,
            checkpoint_dir: None,
            resume_from: None,
            init_adapter: None,
            probes: Vec::new(),
            probe_every: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepMetrics {
    /// 1-based number of the optimiser step just taken.
    pub step: usize,
    pub total_steps: usize,
    /// Mean cross-entropy per assistant token over the step's batches.
    pub loss: f64,
    pub lr: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    pub target_tokens: usize,
    /// Non-padding tokens processed per second in this step.
    pub tokens_per_sec: f64,
    pub elapsed_s: f64,
    /// (probe name, mean log-prob per token), on steps that measure them.
    pub probes: Vec<(String, f64)>,
    /// The probes before the first update, on the first step of a run started from scratch
    /// (so a caller can store them as they come, not only when training ends).
    pub initial_probes: Vec<(String, f64)>,
    /// The checkpoint folder written after this step, if one was (so a caller can copy it
    /// somewhere durable before training goes on).
    pub checkpoint: Option<PathBuf>,
}

/// What training produced: an adapter, or (full fine-tuning) a whole model.
pub enum Trained {
    Lora(Lora),
    Full(Model),
}

impl Trained {
    pub fn lora(&self) -> Option<&Lora> {
        match self {
            Trained::Lora(l) => Some(l),
            Trained::Full(_) => None,
        }
    }

    pub fn full_model(&self) -> Option<&Model> {
        match self {
            Trained::Full(m) => Some(m),
            Trained::Lora(_) => None,
        }
    }
}

pub struct TrainOutcome {
    pub trained: Trained,
    pub steps_done: usize,
    pub total_steps: usize,
    pub cancelled: bool,
    pub last_loss: Option<f64>,
    /// Probe log-probs before the first update.
    pub initial_probes: Vec<(String, f64)>,
    /// Examples left out because nothing of the answer fit in `max_seq_len`.
    pub skipped_examples: usize,
}

/// One tokenised example: ids and, per id, whether it carries loss.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokenised {
    pub ids: Vec<u32>,
    pub mask: Vec<bool>,
}

fn with_prefix(messages: &[ChatMessage], prefix: Option<&str>) -> Vec<ChatMessage> {
    let mut msgs = messages.to_vec();
    if let Some(p) = prefix {
        if let Some(u) = msgs.iter_mut().find(|m| m.role == Role::User) {
            u.content = format!("{p}\n\n{}", u.content);
        }
    }
    msgs
}

/// The learning rate of 0-based step `s`, with the formulas of Hugging Face's
/// `get_{constant,linear,cosine}_schedule_with_warmup` so that runs compare with PyTorch.
pub fn lr_at(cfg: &TrainConfig, s: usize, total: usize) -> f64 {
    let w = cfg.warmup_steps;
    if s < w {
        return cfg.lr * s as f64 / w.max(1) as f64;
    }
    let progress = (s - w) as f64 / (total.saturating_sub(w)).max(1) as f64;
    cfg.lr
        * match cfg.schedule {
            Schedule::Constant => 1.0,
            Schedule::Linear => (1.0 - progress).max(0.0),
            Schedule::Cosine => (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0),
        }
}

/// AdamW as PyTorch defines it (decoupled weight decay, bias-corrected moments). Written
/// here rather than using candle-nn's because its moments are private and a resumed run
/// must restore them.
struct AdamW {
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    t: usize,
}

impl AdamW {
    fn new(vars: &[(String, Var)]) -> candle_core::Result<Self> {
        let z = |v: &Var| v.as_tensor().zeros_like();
        Ok(AdamW {
            m: vars.iter().map(|(_, v)| z(v)).collect::<candle_core::Result<_>>()?,
            v: vars.iter().map(|(_, v)| z(v)).collect::<candle_core::Result<_>>()?,
            t: 0,
        })
    }

    fn step(
        &mut self,
        vars: &[(String, Var)],
        grads: &[Tensor],
        lr: f64,
        cfg: &TrainConfig,
    ) -> candle_core::Result<()> {
        self.t += 1;
        let (b1, b2) = cfg.betas;
        let c1 = 1.0 - b1.powi(self.t as i32);
        let c2 = 1.0 - b2.powi(self.t as i32);
        for (i, ((_, var), g)) in vars.iter().zip(grads).enumerate() {
            let m = ((&self.m[i] * b1)? + (g * (1.0 - b1))?)?;
            let v = ((&self.v[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let p = var.as_tensor();
            let wd = if no_decay(&vars[i].0) { 0.0 } else { cfg.weight_decay };
            let decayed = (p * (1.0 - lr * wd))?;
            let update = ((&m / c1)? / ((&v / c2)?.sqrt()? + cfg.eps)?)?;
            var.set(&(decayed - (update * lr)?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }

    fn save(&self, vars: &[(String, Var)], path: &Path) -> candle_core::Result<()> {
        let mut map = HashMap::new();
        for (i, (name, _)) in vars.iter().enumerate() {
            map.insert(format!("m.{name}"), self.m[i].clone());
            map.insert(format!("v.{name}"), self.v[i].clone());
        }
        candle_core::safetensors::save(&map, path)
    }

    fn load(&mut self, vars: &[(String, Var)], path: &Path, t: usize, dev: &candle_core::Device) -> Result<()> {
        let mut map = candle_core::safetensors::load(path, dev)?;
        for (i, (name, _)) in vars.iter().enumerate() {
            let get = |map: &mut HashMap<String, Tensor>, k: String| {
                map.remove(&k).ok_or_else(|| MlError::Input(format!("{} lacks {k}", path.display())))
            };
            self.m[i] = get(&mut map, format!("m.{name}"))?;
            self.v[i] = get(&mut map, format!("v.{name}"))?;
        }
        self.t = t;
        Ok(())
    }
}

/// Parameters that transformers' Trainer leaves out of weight decay: biases, norm weights
/// and embeddings (the last by common practice for full fine-tuning of LLMs).
fn no_decay(name: &str) -> bool {
    name.ends_with(".bias") || name.ends_with("norm.weight") || name.contains("embed_tokens")
}

#[derive(Serialize, Deserialize)]
struct TrainerState {
    step: usize,
    adam_t: usize,
    total_steps: usize,
    seed: u64,
}

/// One optimiser step's micro-batches: their forward and backward passes.
struct MicroBatches<'a> {
    data: &'a [Tokenised],
    batches: &'a [Vec<usize>],
    /// Target tokens over all the step's micro-batches.
    n_targets: usize,
    /// See [`TrainConfig::max_pass_tokens`].
    max_pass_tokens: usize,
    pad: u32,
    dev: &'a Device,
}

/// What a step's micro-batches add up to.
struct Accumulated {
    /// Per trained variable, in `vars` order; `None` where no gradient reached it.
    grads: Vec<Option<Tensor>>,
    loss_sum: f64,
    real_tokens: usize,
}

impl MicroBatches<'_> {
    /// Runs every micro-batch and sums the gradients; `None` when `cancel` was raised
    /// between micro-batches. `dropout_seed` seeds the step's LoRA dropout masks.
    fn run(
        &self,
        model: &Model,
        lora: Option<&Lora>,
        vars: &[(String, Var)],
        dropout_seed: u64,
        cancel: &AtomicBool,
    ) -> Result<Option<Accumulated>> {
        let dropout = RefCell::new(ChaCha8Rng::seed_from_u64(dropout_seed));
        let ad = lora.map(|lora| Adapter::training(lora, &dropout));
        let mut acc = Accumulated { grads: vec![None; vars.len()], loss_sum: 0.0, real_tokens: 0 };
        let lens: Vec<usize> = self.data.iter().map(|t| t.ids.len()).collect();
        let passes = self.batches.iter().flat_map(|b| passes(b, &lens, self.max_pass_tokens));
        for b in passes {
            if cancel.load(Ordering::Relaxed) {
                return Ok(None);
            }
            let seqs: Vec<(&[u32], &[bool])> =
                b.iter().map(|&i| (self.data[i].ids.as_slice(), self.data[i].mask.as_slice())).collect();
            let batch = make_batch(&seqs, self.pad, self.dev)?;
            acc.real_tokens += batch.real_tokens;
            let h = target_hidden(model, &batch, ad.as_ref())?;
            let nll = ops::cross_entropy_rows(&model.logits(&h)?, &batch.targets)?;
            // Dividing by the step's total target count makes the accumulated gradient
            // that of the token-mean loss over all micro-batches together.
            let loss = (nll.sum_all()? / self.n_targets as f64)?;
            acc.loss_sum += loss.to_scalar::<f32>()? as f64;
            let gs = loss.backward()?;
            for (i, (_, v)) in vars.iter().enumerate() {
                if let Some(g) = gs.get(v.as_tensor()) {
                    acc.grads[i] = Some(match acc.grads[i].take() {
                        Some(sum) => (sum + g)?,
                        None => g.clone(),
                    });
                }
            }
        }
        Ok(Some(acc))
    }
}

/// Splits a micro-batch (example indices, in order) into runs of consecutive rows whose
/// padded size, rows x longest row, stays within `budget` tokens; a row longer than the
/// budget gets a pass of its own.
fn passes<'a>(batch: &'a [usize], lens: &[usize], budget: usize) -> Vec<&'a [usize]> {
    let mut out = Vec::new();
    let (mut start, mut longest) = (0, 0);
    for (k, &i) in batch.iter().enumerate() {
        let l = longest.max(lens[i]);
        if k > start && (k - start + 1) * l > budget {
            out.push(&batch[start..k]);
            (start, longest) = (k, lens[i]);
        } else {
            longest = l;
        }
    }
    if start < batch.len() {
        out.push(&batch[start..]);
    }
    out
}

/// The micro-batches (example indices) of one epoch, in a seeded order.
fn epoch_batches(data: &[Tokenised], cfg: &TrainConfig, epoch: usize) -> Vec<Vec<usize>> {
    let mut rng = ChaCha8Rng::seed_from_u64(sample_seed(cfg.seed, 1_000_000 + epoch as u64));
    let mut idx: Vec<usize> = (0..data.len()).collect();
    idx.shuffle(&mut rng);
    let bs = cfg.batch_size.max(1);
    if !cfg.bucket_by_length {
        return idx.chunks(bs).map(|c| c.to_vec()).collect();
    }
    // Sort within windows of 16 batches: similar lengths share a batch while the order
    // stays random at the scale of the epoch; then shuffle the batches themselves.
    let mut batches: Vec<Vec<usize>> = Vec::new();
    for w in idx.chunks(bs * 16) {
        let mut w = w.to_vec();
        w.sort_by_key(|&i| data[i].ids.len());
        batches.extend(w.chunks(bs).map(|c| c.to_vec()));
    }
    batches.shuffle(&mut rng);
    batches
}

/// Fine-tunes a fresh LoRA adapter on `examples` and returns it. `on_step` gets each
/// step's metrics; setting `cancel` stops the run before the next micro-batch (the adapter
/// trained so far is returned with `cancelled: true`).
pub fn train(
    lm: &LoadedModel,
    cfg: &TrainConfig,
    examples: &[ChatExample],
    on_step: impl FnMut(&StepMetrics),
    cancel: &AtomicBool,
) -> Result<TrainOutcome> {
    let (data, skipped) = tokenise_examples(lm, cfg, examples)?;
    let mut out = train_tokenised(lm, cfg, data, on_step, cancel)?;
    out.skipped_examples = skipped;
    Ok(out)
}

/// The examples as the trainer sees them: the system prompt policy and user prefix
/// applied, cut to `max_seq_len`; examples with no answer token left are dropped (and
/// counted).
pub fn tokenise_examples(
    lm: &LoadedModel,
    cfg: &TrainConfig,
    examples: &[ChatExample],
) -> Result<(Vec<Tokenised>, usize)> {
    let mut data = Vec::with_capacity(examples.len());
    let mut skipped = 0;
    for ex in examples {
        if !ex.messages.iter().any(|m| m.role == Role::Assistant) {
            return Err(MlError::Input("a training example has no assistant message".into()));
        }
        let msgs = with_prefix(&ex.messages, cfg.user_prefix.as_deref());
        let (mut ids, mut mask) = lm.template.encode_conversation(&lm.tokenizer, &msgs, &cfg.system_prompt)?;
        ids.truncate(cfg.max_seq_len);
        mask.truncate(cfg.max_seq_len);
        if mask.iter().skip(1).any(|&m| m) {
            data.push(Tokenised { ids, mask });
        } else {
            skipped += 1;
        }
    }
    Ok((data, skipped))
}

/// [`train`] on already tokenised examples (benchmarks feed fixed token batches here).
pub fn train_tokenised(
    lm: &LoadedModel,
    cfg: &TrainConfig,
    data: Vec<Tokenised>,
    mut on_step: impl FnMut(&StepMetrics),
    cancel: &AtomicBool,
) -> Result<TrainOutcome> {
    let (model, tok, template) = (&lm.model, &lm.tokenizer, &lm.template);
    let dev = model.device().clone();
    if cfg.batch_size == 0 || cfg.grad_accum == 0 {
        return Err(MlError::Input("batch size and gradient accumulation must be at least 1".into()));
    }
    if data.is_empty() {
        return Err(MlError::Input("no training example has answer tokens within max_seq_len".into()));
    }
    let mb_per_epoch = data.len().div_ceil(cfg.batch_size);
    let (total_steps, total_micro) = match cfg.max_steps {
        Some(s) => (s, s * cfg.grad_accum),
        None => {
            let micro = mb_per_epoch * cfg.epochs.max(1);
            (micro.div_ceil(cfg.grad_accum), micro)
        }
    };

    let (trained, vars) = if cfg.full {
        if cfg.init_adapter.is_some() {
            return Err(MlError::Input("an initial adapter applies to LoRA training, not full fine-tuning".into()));
        }
        let (m, vars) = model.trainable_copy()?;
        (Trained::Full(m), vars)
    } else {
        let lora = Lora::new(model, &cfg.lora, cfg.seed)?;
        if let Some(dir) = &cfg.init_adapter {
            lora.set_from(&Lora::load_peft(dir, model)?)?;
        }
        let vars = lora.named_vars();
        (Trained::Lora(lora), vars)
    };
    let mut opt = AdamW::new(&vars)?;
    let mut start = 0;
    if let Some(dir) = &cfg.resume_from {
        let sp = dir.join("trainer_state.json");
        let text = std::fs::read_to_string(&sp).map_err(io_err(&sp))?;
        let st: TrainerState =
            serde_json::from_str(&text).map_err(|source| MlError::Json { path: sp.clone(), source })?;
        match &trained {
            Trained::Lora(lora) => lora.set_from(&Lora::load_peft(dir, model)?)?,
            Trained::Full(_) => load_vars(&vars, &dir.join(FULL_WEIGHTS), &dev)?,
        }
        opt.load(&vars, &dir.join("optimizer.safetensors"), st.adam_t, &dev)?;
        start = st.step;
    }
    // The model the forward pass runs and the adapter it adds, if any.
    let (fmodel, lora) = match &trained {
        Trained::Lora(l) => (model, Some(l)),
        Trained::Full(m) => (m, None),
    };

    let probe_pairs = cfg
        .probes
        .iter()
        .map(|p| {
            let prompt = template.encode_prompt(tok, &with_prefix(&p.messages, None), &p.system)?;
            let mut c = tok.encode(&p.completion)?;
            c.push(tok.end_of_turn());
            Ok((prompt, c))
        })
        .collect::<Result<Vec<_>>>()?;
    let measure = || -> Result<Vec<(String, f64)>> {
        if probe_pairs.is_empty() {
            return Ok(vec![]);
        }
        let s = score_ids(fmodel, lora, &probe_pairs, cfg.batch_size)?;
        Ok(cfg.probes.iter().zip(s).map(|(p, s)| (p.name.clone(), s.mean_logprob())).collect())
    };
    let initial_probes = if start == 0 { measure()? } else { vec![] };

    let mut epoch_cache: Option<(usize, Vec<Vec<usize>>)> = None;
    let t0 = Instant::now();
    let mut last_loss = None;
    let mut cancelled = false;
    let mut step = start;
    while step < total_steps {
        let ts = Instant::now();
        let micro: Vec<usize> = (step * cfg.grad_accum..((step + 1) * cfg.grad_accum).min(total_micro)).collect();
        let mut batches = Vec::new();
        for g in micro {
            let epoch = g / mb_per_epoch;
            if epoch_cache.as_ref().map(|c| c.0) != Some(epoch) {
                epoch_cache = Some((epoch, epoch_batches(&data, cfg, epoch)));
            }
            batches.push(epoch_cache.as_ref().expect("set above").1[g % mb_per_epoch].clone());
        }
        let n_targets: usize =
            batches.iter().flatten().map(|&i| data[i].mask.iter().skip(1).filter(|&&m| m).count()).sum();
        let pass = MicroBatches {
            data: &data,
            batches: &batches,
            n_targets,
            max_pass_tokens: cfg.max_pass_tokens.max(1),
            pad: tok.pad_id(),
            dev: &dev,
        };
        let seed = sample_seed(cfg.seed ^ 0xD50F, step as u64);
        // On a pool thread: see `ops::on_pool`.
        let Some(Accumulated { grads, loss_sum, real_tokens }) =
            ops::on_pool(|| pass.run(fmodel, lora, &vars, seed, cancel))?
        else {
            cancelled = true;
            break;
        };
        let grads: Vec<Tensor> = grads
            .into_iter()
            .zip(&vars)
            .map(|(g, (_, v))| g.map(Ok).unwrap_or_else(|| v.as_tensor().zeros_like()))
            .collect::<candle_core::Result<_>>()?;
        let mut sq = 0.0;
        for g in &grads {
            sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
        let grad_norm = sq.sqrt();
        let grads = match cfg.max_grad_norm {
            Some(max) if grad_norm > max => {
                let s = max / (grad_norm + 1e-6);
                grads.iter().map(|g| g * s).collect::<candle_core::Result<Vec<_>>>()?
            }
            _ => grads,
        };
        let lr = lr_at(cfg, step, total_steps);
        opt.step(&vars, &grads, lr, cfg)?;
        step += 1;
        last_loss = Some(loss_sum);

        let mut checkpoint = None;
        if let (Some(every), Some(dir)) = (cfg.checkpoint_every, &cfg.checkpoint_dir) {
            if every > 0 && (step % every == 0 || step == total_steps) {
                let to = dir.join(format!("checkpoint-{step:06}"));
                save_checkpoint(&trained, &opt, &vars, &to, step, total_steps, cfg.seed)?;
                checkpoint = Some(to);
            }
        }
        let probes = if cfg.probe_every > 0 && (step % cfg.probe_every == 0 || step == total_steps) {
            measure()?
        } else {
            vec![]
        };
        let secs = ts.elapsed().as_secs_f64();
        on_step(&StepMetrics {
            step,
            total_steps,
            loss: loss_sum,
            lr,
            grad_norm,
            target_tokens: n_targets,
            tokens_per_sec: real_tokens as f64 / secs.max(1e-9),
            elapsed_s: t0.elapsed().as_secs_f64(),
            probes,
            initial_probes: if step == 1 { initial_probes.clone() } else { vec![] },
            checkpoint,
        });
        if cancel.load(Ordering::Relaxed) {
            cancelled = step < total_steps;
            break;
        }
    }
    // A full fine-tune hands on plain tensors, so sampling from it takes the fast kernels.
    let trained = match trained {
        Trained::Full(m) => Trained::Full(m.frozen_copy()?),
        lora => lora,
    };
    Ok(TrainOutcome {
        trained,
        steps_done: step,
        total_steps,
        cancelled,
        last_loss,
        initial_probes,
        skipped_examples: 0,
    })
}

/// The weights file of a full fine-tuning checkpoint (Hugging Face names).
const FULL_WEIGHTS: &str = "model.safetensors";

fn load_vars(vars: &[(String, Var)], path: &Path, dev: &candle_core::Device) -> Result<()> {
    let mut map =
        candle_core::safetensors::load(path, dev).map_err(|e| MlError::Input(format!("{}: {e}", path.display())))?;
    for (name, v) in vars {
        let t = map.remove(name).ok_or_else(|| MlError::Input(format!("{} lacks {name}", path.display())))?;
        v.set(&t)?;
    }
    Ok(())
}

fn save_checkpoint(
    trained: &Trained,
    opt: &AdamW,
    vars: &[(String, Var)],
    dir: &Path,
    step: usize,
    total_steps: usize,
    seed: u64,
) -> Result<()> {
    // Written beside the final name and renamed into place, so a process killed mid-write
    // leaves a `.partial` folder (ignored, overwritten next time), never a half checkpoint.
    let tmp = dir.with_extension("partial");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    match trained {
        Trained::Lora(lora) => lora.save_peft(&tmp, "")?,
        Trained::Full(_) => {
            std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
            let map: HashMap<String, Tensor> = vars.iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect();
            candle_core::safetensors::save(&map, tmp.join(FULL_WEIGHTS))?;
        }
    }
    opt.save(vars, &tmp.join("optimizer.safetensors"))?;
    let st = TrainerState { step, adam_t: opt.t, total_steps, seed };
    let p = tmp.join("trainer_state.json");
    std::fs::write(&p, serde_json::to_string_pretty(&st).expect("json")).map_err(io_err(&p))?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io_err(dir))?;
    }
    std::fs::rename(&tmp, dir).map_err(io_err(dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::passes;

    #[test]
    fn passes_keep_order_and_stay_within_the_budget() {
        let lens = [10, 20, 30, 40, 100];
        let batch = [0, 1, 2, 3];
        // 2 rows x 20 = 40 fit; a third row makes 3 x 30 = 90 > 64, and rows 2 and 3
        // together would pad to 2 x 40 = 80.
        assert_eq!(passes(&batch, &lens, 64), vec![&[0, 1][..], &[2][..], &[3][..]]);
        assert_eq!(passes(&batch, &lens, 80), vec![&[0, 1][..], &[2, 3][..]]);
        assert_eq!(passes(&batch, &lens, 1000), vec![&[0, 1, 2, 3][..]]);
        // A row longer than the budget runs alone; nothing is dropped.
        assert_eq!(passes(&[4, 0, 1], &lens, 50), vec![&[4][..], &[0, 1][..]]);
        assert_eq!(passes(&[0, 1], &lens, 1), vec![&[0][..], &[1][..]]);
        assert!(passes(&[], &lens, 8).is_empty());
    }
}
