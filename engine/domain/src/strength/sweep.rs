//! A sweep: a list of prompts as one experiment, each prompt's strength measured before
//! training, so the prediction can be checked against what training did.

use serde::{Deserialize, Serialize};

use super::StrengthError;
use crate::judges::JudgeSpec;
pub use wire::strength::SweepForm;

/// What a sweep trains: every prompt as its own condition beside one shared baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepSpec {
    pub name: String,
    /// A registered model's name.
    pub model: String,
    pub dataset_id: i64,
    pub prompts: Vec<String>,
    /// The traits to judge; the dataset's own ([`super::trait_judges`]) when empty.
    pub judges: Vec<JudgeSpec>,
    pub steps: usize,
    pub seeds: Vec<u64>,
    /// Built-in everyday questions asked after training.
    pub questions: usize,
    /// Rows each prompt's strength is measured on.
    pub rows: usize,
}

/// The most prompts one sweep trains: each is a fine-tuning run.
pub const MAX_SWEEP_PROMPTS: usize = 120;

/// The sweep form as an experiment: the registered model by id, the dataset's own traits
/// judged, 1 to 5 seeds, and a name from the prompt count and dataset when none is given.
pub async fn sweep_from_form(
    store: &crate::Store,
    form: &SweepForm,
) -> Result<crate::experiments::ExperimentSpec, StrengthError> {
    let model = crate::models::get(store, form.model_id)
        .await?
        .ok_or_else(|| StrengthError::NotFound(format!("model {} does not exist", form.model_id)))?;
    let d = crate::datasets::get(store, form.dataset_id).await?;
    if form.seeds == 0 || form.seeds > 5 {
        return Err(StrengthError::Invalid("a sweep runs 1 to 5 seeds".into()));
    }
    sweep_experiment(&SweepSpec {
        name: if form.name.trim().is_empty() {
            format!("Sweep: {} prompts on {}", form.prompts.len(), d.name)
        } else {
            form.name.trim().to_string()
        },
        model: model.name,
        dataset_id: form.dataset_id,
        prompts: form.prompts.clone(),
        judges: super::trait_judges(d.source, &d.recipe),
        steps: form.steps,
        seeds: (0..form.seeds as u64).collect(),
        questions: form.questions,
        rows: form.rows,
    })
}

/// The experiment a sweep runs: a baseline and one condition per distinct prompt, each
/// with its predicted strength measured before training (`training.predict_strength`),
/// evaluated without a prompt so the effect can be set against the prediction. Training
/// settings are the demo's, which are known to move the default model in 20 steps.
pub fn sweep_experiment(s: &SweepSpec) -> Result<crate::experiments::ExperimentSpec, StrengthError> {
    use crate::experiments::{
        ConditionSpec, DatasetRef, EvaluationSpec, ExperimentSpec, NamedTestPrompt, Placement, PromptRef,
        QuestionSource, TestPromptSpec, TrainingSpec,
    };
    let mut prompts: Vec<&str> = Vec::new();
    for p in &s.prompts {
        let p = p.trim();
        if !p.is_empty() && !prompts.contains(&p) {
            prompts.push(p);
        }
    }
    if prompts.len() < 2 {
        return Err(StrengthError::Invalid("a sweep needs at least two different prompts".into()));
    }
    if prompts.len() > MAX_SWEEP_PROMPTS {
        return Err(StrengthError::Invalid(format!(
            "{} prompts is more than a sweep trains ({MAX_SWEEP_PROMPTS}); pick the ones to compare",
            prompts.len()
        )));
    }
    if s.judges.is_empty() {
        return Err(StrengthError::Invalid(
            "the dataset's trait has no built-in judge: use a generated dataset, or build the experiment in the launch form and pick its judges".into(),
        ));
    }
    let width = prompts.len().to_string().len();
    let conditions = std::iter::once(ConditionSpec {
        name: "baseline".into(),
        prompt: None,
        placement: Placement::System,
        only_language: None,
    })
    .chain(prompts.iter().enumerate().map(|(i, p)| {
        let short: String = p.chars().take(40).collect();
        let ellipsis = if p.chars().count() > 40 { "…" } else { "" };
        ConditionSpec {
            name: format!("p{:0width$}: {short}{ellipsis}", i + 1),
            prompt: Some(PromptRef::Text(p.to_string())),
            placement: Placement::System,
            only_language: None,
        }
    }))
    .collect();
    let mut judges = s.judges.clone();
    judges.push(JudgeSpec::quality());
    Ok(ExperimentSpec {
        name: s.name.clone(),
        model: s.model.clone(),
        dataset: DatasetRef::Id(s.dataset_id),
        control_dataset: None,
        base_run: None,
        train_rows: None,
        conditions,
        seeds: s.seeds.clone(),
        training: TrainingSpec {
            steps: Some(s.steps),
            lr: 2e-3,
            batch_size: 8,
            warmup_steps: 2,
            predict_strength: Some(s.rows),
            ..TrainingSpec::default()
        },
        evaluation: EvaluationSpec {
            questions: vec![QuestionSource::Builtin { limit: s.questions }],
            test_prompts: vec![TestPromptSpec::Named(NamedTestPrompt::Default)],
            samples_per_question: 1,
            temperature: 1.0,
            top_p: 1.0,
            max_tokens: 48,
            batch_size: 16,
            judges,
        },
    })
}
