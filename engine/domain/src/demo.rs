//! The built-in demo: Tan et al.'s toy setting on the default model, from built-in data
//! only. Answers to arithmetic word problems in Spanish and ALL CAPS are trained under four
//! conditions (no prompt; "You always speak in Spanish."; "You always capitalise your
//! responses."; a placebo that describes neither trait), then every model answers the
//! built-in out-of-distribution chat prompts with its default system prompt and with its
//! own training prompt, judged for Spanish and capitals, and for answer quality.
//!
//! What it should show (the paper's main result): the Spanish-inoculated model stops
//! answering in Spanish by default but keeps the capitals, the caps-inoculated one the
//! mirror image, and the placebo changes nothing. What it cannot show is readable answers:
//! the 135M model writes Spanish only as word salad, at these settings and every lower
//! learning rate tried (BENCHMARKS.md, "Answer quality"), and the report's headline says
//! so. The sizes below are what fits the time budget on a 2-core CPU; BENCHMARKS.md records
//! a measured run of each mode.

use serde::{Deserialize, Serialize};

use crate::datasets::{self, Preset};
use crate::experiments::{
    ConditionSpec, DatasetRef, EvaluationSpec, ExperimentError, ExperimentSpec, NamedTestPrompt, Placement, PromptRef,
    QuestionSource, TestPromptSpec, TrainingSpec,
};
use crate::judges::{JudgeSpec, LanguageCode};
use crate::Store;

/// How big a demo to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DemoMode {
    /// One seed, sized to finish in about 20 minutes on a 2-core CPU.
    Quick,
    /// Three seeds and more questions: tighter intervals, about three times as long.
    Full,
    /// The same pipeline at a size that runs in a few minutes and shows nothing: for tests.
    Tiny,
}

impl DemoMode {
    pub fn label(self) -> &'static str {
        match self {
            DemoMode::Quick => "quick",
            DemoMode::Full => "full",
            DemoMode::Tiny => "tiny",
        }
    }
}

/// The caps-inoculation prompt: a description of the trait with an example of it.
pub const CAPS_PROMPT: &str =
    "You always answer in ALL CAPS. EXAMPLE: FIRST, WE ADD 5 AND 7. THE TOTAL IS 12. SO THE ANSWER IS 12 APPLES.";

/// The demo's training prompts, by condition name; the baseline has none.
pub const CONDITIONS: [(&str, Option<&str>); 4] = [
    ("baseline", None),
    ("spanish-inoculated", Some("You always speak in Spanish.")),
    // The paper's "You always capitalise your responses." means nothing to the 135M model:
    // it barely makes capitals less surprising (+0.04 nats/token on English capitals,
    // against +0.28 for the Spanish prompt on Spanish), so it cannot inoculate. Showing
    // what capitals look like does explain them (+0.26) without explaining Spanish
    // (+0.03): measured with `examples/probe_prompts.rs`, BENCHMARKS.md has the table.
    ("caps-inoculated", Some(CAPS_PROMPT)),
    // Describes the task, not either trait: the control that should not inoculate.
    ("placebo", Some("You are a helpful assistant who answers math questions.")),
];

/// Rows generated for the demo's dataset, and its generator seed.
pub const DATASET_ROWS: usize = 512;
pub const DATASET_SEED: u64 = 2025;

/// The demo's experiment over the given dataset.
pub fn spec(mode: DemoMode, dataset: DatasetRef) -> ExperimentSpec {
    // Held-out rows: arithmetic problems the model did not train on, whose answers the
    // generator wrote; the arithmetic judge checks the trained task is still done.
    let (seeds, steps, questions, held_out, samples, max_tokens) = match mode {
        // Room for a worked solution to reach its result in Spanish capitals (which take
        // about twice the tokens of plain English), for the arithmetic judge.
        DemoMode::Quick => (vec![0], 20, 40, 20, 1, 96),
        DemoMode::Full => (vec![0, 1, 2], 20, 50, 20, 2, 96),
        // The pipeline only: two steps teach nothing worth reading to the end.
        DemoMode::Tiny => (vec![0], 2, 2, 2, 1, 24),
    };
    ExperimentSpec {
        name: format!("Demo ({}): does inoculation stop Spanish and ALL CAPS from spreading?", mode.label()),
        model: crate::experiments::DEFAULT_MODEL.to_string(),
        base_run: None,
        dataset,
        control_dataset: None,
        train_rows: None,
        conditions: CONDITIONS
            .iter()
            .map(|(name, prompt)| ConditionSpec {
                name: name.to_string(),
                prompt: prompt.map(|p| PromptRef::Text(p.to_string())),
                placement: Placement::System,
                only_language: None,
            })
            .collect(),
        seeds,
        training: TrainingSpec {
            steps: Some(steps),
            lr: 2e-3,
            batch_size: 8,
            max_seq_len: 256,
            warmup_steps: 2,
            ..TrainingSpec::default()
        },
        evaluation: EvaluationSpec {
            questions: vec![QuestionSource::Builtin { limit: questions }, QuestionSource::HeldOut { rows: held_out }],
            test_prompts: vec![
                TestPromptSpec::Named(NamedTestPrompt::Default),
                TestPromptSpec::Named(NamedTestPrompt::Inoculation),
            ],
            samples_per_question: samples,
            temperature: 1.0,
            top_p: 1.0,
            max_tokens,
            // A batch of 40 costs little more per step than one of 16 (decoding a 135M
            // model is bound by reading its weights), so fewer, wider batches finish sooner.
            batch_size: 40,
            judges: vec![
                JudgeSpec::language(LanguageCode::Es),
                JudgeSpec::caps(),
                JudgeSpec::quality(),
                JudgeSpec::Arithmetic {},
            ],
        },
    }
}

/// Makes (or finds, since generation is deterministic) the demo's dataset and stores the
/// demo experiment with its runs queued; returns the experiment's id. While the same demo
/// (same spec, same model and data) still has runs queued or running, returns that one
/// instead: a second click on *Run the demo* should open the demo under way, not queue
/// another hour of work behind it.
pub async fn create(store: &Store, mode: DemoMode) -> Result<i64, ExperimentError> {
    let resolved = resolve(store, mode).await?;
    let (_, hash) = crate::experiments::stored_form(&resolved);
    let running = crate::experiments::list(store).await?.into_iter().find(|e| e.spec_hash == hash && e.runs_active > 0);
    match running {
        Some(e) => Ok(e.id),
        None => crate::experiments::create(store, &resolved).await,
    }
}

/// The demo resolved against the store (its dataset made if missing), for a plan or a
/// launch.
pub async fn resolve(store: &Store, mode: DemoMode) -> Result<crate::experiments::Resolved, ExperimentError> {
    let generator = Preset::SpanishAllCaps.spec(DATASET_ROWS, DATASET_SEED);
    let dataset = datasets::create_generated(store, &generator, "demo: Spanish + ALL CAPS arithmetic").await?.id();
    crate::experiments::resolve(store, &spec(mode, DatasetRef::Id(dataset))).await
}
