//! The prompt-strength meter's cost: scoring a 64-row sample of the demo dataset under one
//! prompt on the default model (the default-prompt pass is cached, so one pass is what a
//! keystroke costs), and the elicitation sampling. Writes the scored sequences to
//! `BENCH_DUMP` (JSON) when set, so `bench/strength_torch.py` can score the very same
//! tokens with PyTorch and compare both the time and the numbers.
//!
//! ```text
//! bench/strength.sh            # this, then the PyTorch peer, then the ratio
//! cargo run --release -p engine --example bench_strength -- [MODEL.gguf]
//! ```

use std::time::Instant;

use engine::datasets::generate::{generate, Preset};

use engine::strength::{self, DEFAULT_ROWS};

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let model = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../.data/models/SmolLM2-135M-Instruct.Q4_1.gguf").to_string()
    });
    let reps: usize = std::env::var("BENCH_REPS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let lm = ml::load_model(std::path::Path::new(&model)).expect("load the model");
    // The demo's dataset, as `engine::demo` makes it.
    let rows = strength::sample_rows(&generate(&Preset::SpanishAllCaps.spec(512, 2025)), DEFAULT_ROWS);
    let prompt = "You always speak in Spanish.";

    let t = Instant::now();
    let default = strength::score_rows(&lm, &rows, None, None).expect("default pass");
    let first_default = t.elapsed().as_secs_f64();
    let mut times = Vec::new();
    let mut prompted = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        prompted = strength::score_rows(&lm, &rows, Some(prompt), None).expect("prompted pass");
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let s = strength::surprise(&default, &prompted).expect("rows with tokens");
    let t = Instant::now();
    let elicited = strength::elicit(&lm, Some(prompt), None).expect("elicit");
    let elicit_s = t.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "impl": "candle",
            "task": "strength_score_64",
            "rows": rows.len(),
            "tokens_scored": s.n_tokens,
            "default_pass_s": first_default,
            "prompted_pass_median_s": times[times.len() / 2],
            "prompted_pass_min_s": times[0],
            "reps": reps,
            "surprise_reduction": s.reduction,
            "interval": [s.lo, s.hi],
            "elicit_16x40_s": elicit_s,
            "elicited": elicited.len(),
            "peak_rss_mib": peak_rss_mib(),
            "threads": std::env::var("RAYON_NUM_THREADS").unwrap_or_default(),
        })
    );
    if let Ok(path) = std::env::var("BENCH_DUMP") {
        // The exact token ids and loss masks of both passes, with Candle's per-row sums.
        let dump = |p: Option<&str>, scores: &[ml::score::CompletionScore]| {
            let system = p.map_or(ml::SystemPrompt::Default, |p| ml::SystemPrompt::Text(p.into()));
            rows.iter()
                .zip(scores)
                .map(|(r, sc)| {
                    let msgs: Vec<ml::ChatMessage> =
                        r.messages.iter().map(|m| ml::ChatMessage::new(m.role, m.content.clone())).collect();
                    let (mut ids, mut mask) = lm.template.encode_conversation(&lm.tokenizer, &msgs, &system).unwrap();
                    ids.truncate(strength::MAX_TOKENS);
                    mask.truncate(strength::MAX_TOKENS);
                    serde_json::json!({"ids": ids, "mask": mask, "sum_logprob": sc.sum_logprob, "n_tokens": sc.n_tokens})
                })
                .collect::<Vec<_>>()
        };
        let out = serde_json::json!({"default": dump(None, &default), "prompted": dump(Some(prompt), &prompted)});
        std::fs::write(&path, out.to_string()).expect("write the dump");
    }
}
