//! Benchmarks of the default model (run by bench/run.sh; skipped unless INOCULAB_BENCH=1
//! and INOCULAB_REAL_MODEL=1): LoRA training on fixed 8 x 128-token batches and sampling
//! at batch 1 and 16. Each prints one JSON line; bench/train_torch.py does the same work
//! in PyTorch. Run each test in its own process so peak RSS is per task.

mod ml_common;

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use ml::chat::{ChatMessage, SystemPrompt};
use ml::{self, SampleConfig, Schedule, Tokenised, TrainConfig};

fn gate(name: &str) -> Option<std::path::PathBuf> {
    if std::env::var("INOCULAB_BENCH").ok().as_deref() != Some("1") {
        eprintln!("skipped {name}: set INOCULAB_BENCH=1 (see bench/run.sh)");
        return None;
    }
    // As the server's main does (the harness runs this one test; no thread reads the
    // environment meanwhile).
    ml::ops::park_idle_candle_workers();
    ml_common::real_model_path(name)
}

/// Peak resident set size of this process, in MiB.
fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// CPU seconds this process has used (user + system, all threads). Reported beside wall
/// time because a shared machine's wall times depend on what else runs.
fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name.
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The benchmark's token batch; bench/train_torch.py computes the same ids.
pub fn bench_ids(rows: usize, len: usize) -> Vec<Vec<u32>> {
    (0..rows)
        .map(|i| (0..len).map(|j| (100 + (i * 7919 + j * 104_729 + i * j * 31) % 40_000) as u32).collect())
        .collect()
}

#[test]
fn bench_train() {
    let Some(path) = gate("bench_train") else {
        return;
    };
    let lm = ml::load_model(&path).unwrap();
    let steps = 6;
    let data: Vec<Tokenised> = bench_ids(8, 128)
        .into_iter()
        .map(|ids| Tokenised { mask: ids.iter().enumerate().map(|(j, _)| j > 0).collect(), ids })
        .collect();
    let cfg = TrainConfig {
        lora: ml_common::attention_lora(),
        system_prompt: SystemPrompt::None,
        lr: 1e-4,
        schedule: Schedule::Constant,
        batch_size: 8,
        max_steps: Some(steps),
        max_seq_len: 128,
        ..Default::default()
    };
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    let mut last = Instant::now();
    let mut last_cpu = cpu_seconds();
    let mut losses = Vec::new();
    ml::train_tokenised(
        &lm,
        &cfg,
        data,
        |m| {
            times.push(last.elapsed().as_secs_f64());
            cpu.push(cpu_seconds() - last_cpu);
            losses.push(m.loss);
            last = Instant::now();
            last_cpu = cpu_seconds();
        },
        &AtomicBool::new(false),
    )
    .unwrap();
    // The first step pays for allocations; the rest are timed.
    let timed = &times[1..];
    let mean = timed.iter().sum::<f64>() / timed.len() as f64;
    let cpu_mean = cpu[1..].iter().sum::<f64>() / (cpu.len() - 1) as f64;
    println!(
        "{}",
        serde_json::json!({"impl": "candle", "task": "train", "threads": std::env::var("RAYON_NUM_THREADS").ok(), "batch": "8x128", "step_s": mean, "step_cpu_s": cpu_mean, "tokens_per_s": 1024.0 / mean, "peak_rss_mib": peak_rss_mib(), "losses": losses})
    );
}

/// The benchmark's sampling task: `batch` samples of "Tell me a story about a dragon."
/// (as PyTorch's side does), or with `distinct` set, one each of 16 different creatures,
/// which measures Candle without its shared prefill of a repeated prompt (PyTorch
/// prefills every row either way).
fn bench_sample(batch: usize, distinct: bool) {
    let Some(path) = gate("bench_sample") else {
        return;
    };
    let lm = ml::load_model(&path).unwrap();
    let creatures = [
        "dragon", "wizard", "knight", "robot", "pirate", "giant", "unicorn", "witch", "sailor", "king", "queen",
        "tiger", "wolf", "ghost", "dwarf", "fairy",
    ];
    let prompts: Vec<Vec<u32>> = (0..batch)
        .map(|i| {
            let who = if distinct { creatures[i % creatures.len()] } else { "dragon" };
            let msg = ChatMessage::user(format!("Tell me a story about a {who}."));
            lm.template.encode_prompt(&lm.tokenizer, &[msg], &SystemPrompt::Default).unwrap()
        })
        .collect();
    let cfg = SampleConfig {
        temperature: 1.0,
        top_p: 1.0,
        max_new_tokens: 128,
        seed: 0,
        batch_size: batch,
        ignore_stop: true,
    };
    let t = Instant::now();
    let c0 = cpu_seconds();
    let out = ml::generate(&lm.model, &lm.tokenizer, &prompts, &cfg, |_| {}, None).unwrap();
    let s = t.elapsed().as_secs_f64();
    let n: usize = out.iter().map(|o| o.token_ids.len()).sum();
    println!(
        "{}",
        serde_json::json!({"impl": "candle", "task": "sample", "batch": batch, "distinct_prompts": distinct, "new_tokens": n, "seconds": s, "cpu_s": cpu_seconds() - c0, "tokens_per_s": n as f64 / s, "peak_rss_mib": peak_rss_mib()})
    );
}

#[test]
fn bench_sample_batch1() {
    bench_sample(1, false);
}

#[test]
fn bench_sample_batch16() {
    bench_sample(16, false);
}

#[test]
fn bench_sample_batch16_distinct_prompts() {
    bench_sample(16, true);
}

/// Where a training step's time goes: forward without and with the adapter, the loss
/// head, and the backward pass, on the benchmark batch.
#[test]
fn bench_profile() {
    let Some(path) = gate("bench_profile") else {
        return;
    };
    let lm = ml::load_model(&path).unwrap();
    let dev = candle_core::Device::Cpu;
    let ids: Vec<u32> = bench_ids(8, 128).concat();
    let ids = candle_core::Tensor::from_vec(ids, (8, 128), &dev).unwrap();
    let lcfg = ml_common::attention_lora();
    let lora = ml::Lora::new(&lm.model, &lcfg, 0).unwrap();
    let ad = ml::lora::Adapter::inference(&lora);
    let pos =
        candle_core::Tensor::from_vec((0..8).flat_map(|_| 0..128u32).collect::<Vec<_>>(), (8, 128), &dev).unwrap();
    for _ in 0..2 {
        let t = Instant::now();
        let _ = lm.model.hidden_states(&ids, &pos, None, None, None).unwrap();
        let f0 = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let h = lm.model.hidden_states(&ids, &pos, None, None, Some(&ad)).unwrap();
        let f1 = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let h2 = h.reshape((1024, 576)).unwrap();
        let targets: Vec<u32> = bench_ids(8, 128).concat();
        let loss = ml::ops::cross_entropy_rows(&lm.model.logits(&h2).unwrap(), &targets).unwrap().mean_all().unwrap();
        let f2 = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let _g = loss.backward().unwrap();
        let b = t.elapsed().as_secs_f64();
        println!("{}", serde_json::json!({"forward_base_s": f0, "forward_lora_s": f1, "head_s": f2, "backward_s": b}));
    }
}
