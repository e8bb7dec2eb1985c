//! Which prompts make a trait less surprising to the base model? Scores candidate system
//! prompts' surprise reduction (the prompt-strength meter's measure, `engine::strength`) on
//! three generated datasets that separate the demo's two traits: Spanish + ALL CAPS (the
//! demo's data), English in ALL CAPS (capitals alone) and Spanish as written (Spanish
//! alone). A prompt can only inoculate a trait it explains, so this is how the demo's
//! prompts were chosen (BENCHMARKS.md, "The built-in demo"). Then each prompt's
//! elicitation rates: how often the base model, given the prompt, answers the meter's
//! everyday questions in Spanish and in capitals (the per-trait predictor).
//!
//! ```text
//! cargo run --release -p engine --example probe_prompts -- [ROWS] ["PROMPT" ...]
//! ```

use engine::datasets::generate::{generate, Capitalisation, GeneratorSpec, Language};

use engine::strength;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let mut prompts: Vec<String> = args.collect();
    if prompts.is_empty() {
        prompts = engine::demo::CONDITIONS.iter().filter_map(|(_, p)| p.map(str::to_string)).collect();
    }
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.data/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let lm = ml::load_model(std::path::Path::new(model)).expect("load the default model (scripts/fetch-model)");
    let sets = [
        ("es+caps", Language::Es, Capitalisation::AllCaps),
        ("en+caps", Language::En, Capitalisation::AllCaps),
        ("es", Language::Es, Capitalisation::AsWritten),
    ];
    for (name, lang, caps) in sets {
        let rows = strength::sample_rows(&generate(&GeneratorSpec::single(lang, caps, 512, 2025)), n);
        let default = strength::score_rows(&lm, &rows, None, None).expect("default pass");
        for p in &prompts {
            let scored = strength::score_rows(&lm, &rows, Some(p), None).expect("prompted pass");
            let s = strength::surprise(&default, &scored).expect("rows with tokens");
            println!("{name:8} {:+.3} [{:+.3}, {:+.3}]  {p}", s.reduction, s.lo, s.hi);
        }
    }
    let judges =
        [engine::judges::JudgeSpec::language(engine::judges::LanguageCode::Es), engine::judges::JudgeSpec::caps()];
    for p in &prompts {
        let samples = strength::elicit(&lm, Some(p), None).expect("elicitation");
        let rates = strength::judge_samples(&samples, &judges).expect("deterministic judges");
        let shown: Vec<String> = rates
            .iter()
            .map(|r| format!("{} {}", r.judge, r.rate.map_or("-".into(), |q| format!("{}/{}", q.successes, q.n))))
            .collect();
        println!("elicited {}  {p}", shown.join("  "));
    }
}
