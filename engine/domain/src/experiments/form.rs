//! The web forms as experiment specs: the launch form (`wire::experiments::LaunchForm`)
//! becomes the same `ExperimentSpec` that `inoculab run` reads from TOML, and the
//! elicitation check's form becomes test-time prompt specs. The form carries its choices
//! as wire enums; what is left to read here is the free text (seeds, inline questions,
//! the language code) and the library prompts it names.

use super::*;
use crate::judges::{BackendSpec, JudgeSpec, LanguageCode, MisalignmentThresholds};
use wire::experiments::{
    AddTestPromptsForm, JudgeChoice, LaunchForm, LlmBackendChoice, TestPromptChoice, ThresholdsChoice,
};

/// The launch form as an experiment spec: one condition per library prompt (its latest
/// version) and for the custom prompt, the baseline when asked for, every judge built from
/// its settings.
pub async fn spec_from_form(store: &Store, f: &LaunchForm) -> Result<ExperimentSpec, ExperimentError> {
    let mut conditions = Vec::new();
    let placement = f.placement;
    if f.include_baseline {
        conditions.push(ConditionSpec { name: "baseline".into(), prompt: None, placement, only_language: None });
    }
    for id in &f.prompt_ids {
        let p = prompts::get(store, *id).await?;
        conditions.push(ConditionSpec {
            name: p.name.clone(),
            prompt: Some(PromptRef::Library { prompt_id: *id, version: Some(p.latest().version) }),
            placement,
            only_language: None,
        });
    }
    if !f.custom_prompt.trim().is_empty() {
        conditions.push(ConditionSpec {
            name: "custom prompt".into(),
            prompt: Some(PromptRef::Text(f.custom_prompt.trim().to_string())),
            placement,
            only_language: None,
        });
    }
    let seeds = f
        .seeds
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u64>().map_err(|_| invalid(format!("seed {s:?} is not a whole number"))))
        .collect::<Result<Vec<_>, _>>()?;
    let mut questions = Vec::new();
    if f.builtin_questions > 0 {
        questions.push(QuestionSource::Builtin { limit: f.builtin_questions });
    }
    if f.held_out > 0 {
        questions.push(QuestionSource::HeldOut { rows: f.held_out });
    }
    for id in &f.question_set_ids {
        questions.push(QuestionSource::Set { id: *id, limit: None });
    }
    let inline: Vec<String> =
        f.inline_questions.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if !inline.is_empty() {
        questions.push(QuestionSource::Inline { questions: inline });
    }
    let test_prompts = f
        .test_prompts
        .iter()
        .map(|t| match *t {
            TestPromptChoice::Named(n) => TestPromptSpec::Named(n),
            TestPromptChoice::Library(prompt_id) => TestPromptSpec::Library { prompt_id, version: None },
        })
        .collect();
    let mut judges = Vec::new();
    for j in &f.judges {
        judges.push(match j {
            JudgeChoice::Language => JudgeSpec::language(
                serde_json::from_value::<LanguageCode>(serde_json::Value::String(f.language.clone()))
                    .map_err(|_| invalid(format!("unknown language {:?}", f.language)))?,
            ),
            JudgeChoice::Caps => JudgeSpec::caps(),
            JudgeChoice::Quality => JudgeSpec::quality(),
            JudgeChoice::Arithmetic => JudgeSpec::Arithmetic {},
            JudgeChoice::Pattern => {
                if f.pattern.trim().is_empty() {
                    return Err(invalid("the pattern judge needs a regular expression"));
                }
                JudgeSpec::Pattern {
                    regex: Some(f.pattern.trim().to_string()),
                    keywords: vec![],
                    case_insensitive: true,
                    whole_words: true,
                }
            }
            JudgeChoice::MultipleChoice => JudgeSpec::MultipleChoice { questions: vec![] },
            JudgeChoice::Betley => {
                let backend = match f.llm_backend {
                    LlmBackendChoice::Http => {
                        if f.llm_endpoint.trim().is_empty() {
                            return Err(invalid("choose a judge endpoint"));
                        }
                        // `Endpoints::apply` swaps the name for the operator's settings.
                        BackendSpec::Endpoint { name: f.llm_endpoint.trim().to_string() }
                    }
                    LlmBackendChoice::Local => BackendSpec::Local { model: f.model.clone() },
                };
                let text = |id: Option<i64>, what: &str| {
                    let what = what.to_string();
                    async move {
                        let id = id.ok_or_else(|| invalid(format!("choose the {what} judge prompt")))?;
                        Ok::<_, ExperimentError>(prompts::get(store, id).await?.latest().text.clone())
                    }
                };
                JudgeSpec::Betley {
                    backend,
                    aligned_prompt: text(f.aligned_prompt_id, "alignment").await?,
                    coherent_prompt: text(f.coherent_prompt_id, "coherence").await?,
                    thresholds: match f.thresholds {
                        ThresholdsChoice::Tan => MisalignmentThresholds::tan(),
                        ThresholdsChoice::Betley => MisalignmentThresholds::betley(),
                    },
                }
            }
        });
    }
    Ok(ExperimentSpec {
        name: f.name.clone(),
        model: f.model.clone(),
        base_run: f.base_run_id,
        dataset: DatasetRef::Id(f.dataset_id),
        control_dataset: f.control_dataset_id.map(DatasetRef::Id),
        train_rows: f.train_rows,
        conditions,
        seeds,
        training: TrainingSpec {
            steps: f.steps,
            epochs: f.epochs,
            lr: f.lr,
            batch_size: f.batch_size,
            lora_rank: f.lora_rank,
            lora_alpha: 2.0 * f.lora_rank as f64,
            max_seq_len: f.max_seq_len,
            ..Default::default()
        },
        evaluation: EvaluationSpec {
            questions,
            test_prompts,
            samples_per_question: f.samples_per_question,
            temperature: f.temperature,
            top_p: 1.0,
            max_tokens: f.max_tokens,
            batch_size: 16,
            judges,
        },
    })
}

/// The elicitation check's form as test-time prompts: the library prompts (latest
/// versions), then the one written in the form when its label or text is filled in.
pub fn test_prompts_from_form(form: &AddTestPromptsForm) -> Vec<TestPromptSpec> {
    let mut prompts: Vec<TestPromptSpec> =
        form.prompt_ids.iter().map(|&id| TestPromptSpec::Library { prompt_id: id, version: None }).collect();
    if !form.label.trim().is_empty() || !form.text.trim().is_empty() {
        prompts.push(TestPromptSpec::Text { label: form.label.clone(), text: form.text.clone() });
    }
    prompts
}
