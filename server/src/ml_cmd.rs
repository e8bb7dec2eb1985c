//! The `train` and `sample` subcommands: thin command-line front ends over `ml`
//! (LoRA fine-tuning with an inoculation prompt; batched sampling with or without an
//! adapter), with progress bars and JSONL output.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::cli::{SampleArgs, ScheduleArg, TrainArgs, DEFAULT_MODEL};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use ml::chat::{ChatExample, ChatMessage, Role, SystemPrompt};
use ml::{LoraConfig, SampleConfig, Schedule, TrainConfig};

fn system_prompt(arg: &Option<String>) -> SystemPrompt {
    match arg {
        None => SystemPrompt::Default,
        Some(s) if s.is_empty() => SystemPrompt::None,
        Some(s) => SystemPrompt::Text(s.clone()),
    }
}

fn set_threads(threads: Option<usize>) {
    if let Some(n) = threads {
        // Candle sizes its thread pools from RAYON_NUM_THREADS when it first needs them;
        // nothing has run yet, so setting it here takes effect.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
}

fn load_model(data_dir: &Path, model: &Option<PathBuf>) -> Result<ml::LoadedModel> {
    let path = model.clone().unwrap_or_else(|| data_dir.join(DEFAULT_MODEL));
    if !path.exists() {
        if model.is_none() {
            bail!(
                "the default model {} is missing; run scripts/fetch-model {} first, or pass --model",
                path.display(),
                data_dir.display()
            );
        }
        bail!("model {} does not exist", path.display());
    }
    eprintln!("loading {}", path.display());
    ml::load_model(&path).with_context(|| format!("loading model {}", path.display()))
}

fn messages(v: &serde_json::Value) -> Option<Vec<ChatMessage>> {
    serde_json::from_value(v.get("messages")?.clone()).ok()
}

/// Reads a training JSONL file in any of the three shapes (chat messages, prompt and
/// completion, question and answer).
// The canonical parser will be `engine::datasets::parse_jsonl`; this small one stands in
// until that exists.
/// Reads a training file with the same parser as `inoculab dataset import`, so a bad file
/// is reported the same way: every bad line with its number and reason.
fn parse_examples(path: &Path) -> Result<Vec<ChatExample>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot open dataset {}", path.display()))?;
    let parsed = engine::datasets::parse_jsonl(&bytes, &Default::default()).map_err(|e| {
        let mut message = format!("{}: {}", path.display(), wire::counted(e.total as u64, "bad line", "bad lines"));
        for l in &e.errors {
            message.push_str(&format!("\n{}:{}: {}", path.display(), l.line, l.problem));
        }
        anyhow::anyhow!(message)
    })?;
    if parsed.rows.is_empty() {
        bail!("dataset {} has no examples", path.display());
    }
    Ok(parsed
        .rows
        .into_iter()
        .map(|row| ChatExample {
            messages: row.messages.into_iter().map(|m| ChatMessage { role: m.role, content: m.content }).collect(),
        })
        .collect())
}

fn parse_prompts(path: &Path) -> Result<Vec<Vec<ChatMessage>>> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open prompts {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&line).with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))?;
        let msgs = if let Some(m) = messages(&v) {
            // A trailing assistant turn is an answer, not part of the prompt.
            let mut m = m;
            if m.last().is_some_and(|x| x.role == Role::Assistant) {
                m.pop();
            }
            m
        } else if let Some(p) = v.get("prompt").or_else(|| v.get("question")).and_then(|x| x.as_str()) {
            vec![ChatMessage::user(p)]
        } else {
            bail!("{}:{}: expected \"prompt\" or \"messages\"", path.display(), i + 1);
        };
        out.push(msgs);
    }
    if out.is_empty() {
        bail!("prompts file {} is empty", path.display());
    }
    Ok(out)
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{what} {{bar:40}} {{pos}}/{{len}} [{{elapsed_precise}}<{{eta_precise}}] {{msg}}"
        ))
        .expect("template"),
    );
    pb
}

pub fn run_train(data_dir: &Path, args: TrainArgs, max_pass_tokens: usize) -> Result<()> {
    set_threads(args.threads);
    let examples = parse_examples(&args.dataset)?;
    let lm = load_model(data_dir, &args.model)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let sys = system_prompt(&args.system_prompt);
    let (system_prompt, user_prefix) = match (args.user_prefix, sys) {
        (true, SystemPrompt::Text(t)) => (SystemPrompt::Default, Some(t)),
        (true, _) => bail!("--user-prefix needs a non-empty --system-prompt"),
        (false, s) => (s, None),
    };
    let cfg = TrainConfig {
        lora: LoraConfig {
            rank: args.lora_rank,
            alpha: args.lora_alpha,
            dropout: args.lora_dropout,
            target_modules: args
                .lora_targets
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            use_rslora: args.rslora,
        },
        full: args.full,
        system_prompt,
        user_prefix,
        lr: args.lr.unwrap_or(if args.full { 1e-5 } else { 5e-4 }),
        weight_decay: args.weight_decay,
        warmup_steps: args.warmup_steps,
        schedule: match args.schedule {
            ScheduleArg::Constant => Schedule::Constant,
            ScheduleArg::Linear => Schedule::Linear,
            ScheduleArg::Cosine => Schedule::Cosine,
        },
        batch_size: args.batch_size,
        grad_accum: args.grad_accum,
        max_pass_tokens,
        epochs: args.epochs,
        max_steps: args.steps,
        max_grad_norm: (args.max_grad_norm > 0.0).then_some(args.max_grad_norm),
        max_seq_len: args.max_seq_len,
        bucket_by_length: args.bucket_by_length,
        seed: args.seed,
        checkpoint_every: args.checkpoint_every,
        checkpoint_dir: Some(args.out.clone()),
        resume_from: args.resume.clone(),
        ..Default::default()
    };
    let metrics_path = args.out.join("metrics.jsonl");
    let mut metrics =
        std::fs::File::create(&metrics_path).with_context(|| format!("cannot write {}", metrics_path.display()))?;
    eprintln!("{} examples", examples.len());
    let pb = bar(0, "train");
    let mut write_err = None;
    let outcome = ml::train(
        &lm,
        &cfg,
        &examples,
        |m| {
            pb.set_length(m.total_steps as u64);
            pb.set_position(m.step as u64);
            pb.set_message(format!("loss {:.4} lr {:.2e} {:.0} tok/s", m.loss, m.lr, m.tokens_per_sec));
            let line = serde_json::json!({
                "step": m.step, "loss": m.loss, "lr": m.lr, "grad_norm": m.grad_norm,
                "target_tokens": m.target_tokens, "tokens_per_sec": m.tokens_per_sec, "elapsed_s": m.elapsed_s,
            });
            if let Err(e) = writeln!(metrics, "{line}") {
                write_err.get_or_insert(e);
            }
        },
        &AtomicBool::new(false),
    )?;
    pb.finish();
    if let Some(e) = write_err {
        return Err(e).context(format!("writing {}", metrics_path.display()));
    }
    let base = args
        .model
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "HuggingFaceTB/SmolLM2-135M-Instruct".into());
    let what = match &outcome.trained {
        ml::Trained::Lora(lora) => {
            lora.save_peft(&args.out, &base)?;
            "adapter"
        }
        ml::Trained::Full(model) => {
            ml::hf::save(&args.out, model, &lm.tokenizer, &lm.template)?;
            "model (a Hugging Face folder; sample it with --model)"
        }
    };
    if outcome.skipped_examples > 0 {
        eprintln!(
            "note: {} examples had no answer tokens within --max-seq-len and were skipped",
            outcome.skipped_examples
        );
    }
    eprintln!(
        "{what} written to {} ({} steps, last loss {:.4})",
        args.out.display(),
        outcome.steps_done,
        outcome.last_loss.unwrap_or(f64::NAN)
    );
    Ok(())
}

pub fn run_sample(data_dir: &Path, args: SampleArgs) -> Result<()> {
    set_threads(args.threads);
    if !(args.top_p > 0.0 && args.top_p <= 1.0) {
        bail!("--top-p must be above 0 and at most 1 (got {})", args.top_p);
    }
    if !(args.temperature >= 0.0) {
        bail!("--temperature must be 0 (greedy) or more (got {})", args.temperature);
    }
    let prompts = parse_prompts(&args.prompts)?;
    let lm = load_model(data_dir, &args.model)?;
    let model = match &args.adapter {
        Some(dir) => {
            let lora =
                ml::Lora::load_peft(dir, &lm.model).with_context(|| format!("loading adapter {}", dir.display()))?;
            lm.model.merged(&lora)?
        }
        None => lm.model.clone(),
    };
    let sys = system_prompt(&args.system_prompt);
    let mut ids = Vec::new();
    let mut which = Vec::new();
    for (i, p) in prompts.iter().enumerate() {
        let enc = lm.template.encode_prompt(&lm.tokenizer, p, &sys)?;
        for k in 0..args.n {
            ids.push(enc.clone());
            which.push((i, k));
        }
    }
    let cfg = SampleConfig {
        temperature: args.temperature,
        top_p: args.top_p,
        max_new_tokens: args.max_tokens,
        seed: args.seed,
        batch_size: args.batch_size,
        ignore_stop: false,
    };
    let pb = bar(ids.len() as u64, "sample");
    let samples = ml::generate(&model, &lm.tokenizer, &ids, &cfg, |n| pb.set_position(n as u64), None)?;
    pb.finish();
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&args.out).with_context(|| format!("cannot write {}", args.out.display()))?,
    );
    for s in samples {
        let (pi, k) = which[s.index];
        let prompt_text =
            prompts[pi].iter().rev().find(|m| m.role == Role::User).map(|m| m.content.clone()).unwrap_or_default();
        let line = serde_json::json!({
            "prompt_index": pi, "sample_index": k, "prompt": prompt_text, "completion": s.text,
            "seed": s.seed, "finished": s.finished, "n_tokens": s.token_ids.len(),
        });
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    eprintln!("{} samples written to {}", ids.len(), args.out.display());
    Ok(())
}
