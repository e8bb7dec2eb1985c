//! An experiment's trait rates with its answers judged again for quality by today's
//! answer-quality judge: for the settings study of BENCHMARKS.md, whose experiments were
//! judged as they ran. Reads the store through the engine (opening it applies any pending
//! migration, as `inoculab` does) and writes no result.
//!
//! ```text
//! cargo run --release -p engine --example quality_rates -- DATA_DIR EXPERIMENT_ID [MODEL_FILE]
//! ```
//!
//! MODEL_FILE defaults to the default model (`.data/models/SmolLM2-135M-Instruct.Q4_1.gguf`).
//! Prints, per condition and test-time prompt, the stored Spanish and capitals rates and the
//! readable share, each with its Wilson 95 % interval.

use std::sync::Arc;

use engine::judges::{quality, LocalLogprobs, LogprobBackend};
use engine::samples::{self, SampleFilter};
use engine::stats::Proportion;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), Some(id)) = (args.first(), args.get(1).and_then(|s| s.parse::<i64>().ok())) else {
        anyhow::bail!("usage: quality_rates DATA_DIR EXPERIMENT_ID [MODEL_FILE]");
    };
    let model = args.get(2).cloned().unwrap_or_else(|| ".data/models/SmolLM2-135M-Instruct.Q4_1.gguf".into());
    let store = engine::Store::open(std::path::Path::new(dir)).await?;
    let lm = Arc::new(ml::load_model(std::path::Path::new(&model))?);
    let backend: Arc<dyn LogprobBackend> = Arc::new(LocalLogprobs::new(lm, "SmolLM2-135M-Instruct"));

    // (condition, test prompt) -> [Spanish, capitals, readable] as (with the trait, decided),
    // in the order the samples come (run order).
    let mut cells: Vec<((String, String), [(u64, u64); 3])> = Vec::new();
    let mut offset = 0;
    loop {
        let filter = SampleFilter { experiment_id: id, offset, limit: samples::MAX_PAGE, ..Default::default() };
        let (_, page) = samples::page(&store, &filter).await?;
        if page.is_empty() {
            break;
        }
        offset += page.len() as i64;
        for s in page {
            let key = (s.condition.clone(), s.test_prompt.clone());
            let i = match cells.iter().position(|c| c.0 == key) {
                Some(i) => i,
                None => {
                    cells.push((key, [(0, 0); 3]));
                    cells.len() - 1
                }
            };
            let cell = &mut cells[i].1;
            for (k, judge) in ["language:es", "caps"].iter().enumerate() {
                if let Some(p) = s.judgements.iter().find(|j| j.judge == *judge).and_then(|j| j.trait_present) {
                    cell[k].0 += u64::from(p);
                    cell[k].1 += 1;
                }
            }
            if let Some(q) =
                quality::quality_signals(backend.as_ref(), &s.question, &s.completion, quality::default_min_words())?
            {
                cell[2].0 += u64::from(q.readable);
                cell[2].1 += 1;
            }
        }
    }
    let show = |(k, n): (u64, u64)| match Proportion::wilson(k, n, 0.95) {
        Some(p) => format!("{:.0} % ({:.0}-{:.0}), {k}/{n}", 100.0 * p.rate, 100.0 * p.lo, 100.0 * p.hi),
        None => "-".into(),
    };
    println!("| condition | test-time prompt | Spanish | ALL CAPS | readable |");
    println!("|---|---|---|---|---|");
    for ((condition, test_prompt), c) in cells {
        println!("| {condition} | {test_prompt} | {} | {} | {} |", show(c[0]), show(c[1]), show(c[2]));
    }
    Ok(())
}
