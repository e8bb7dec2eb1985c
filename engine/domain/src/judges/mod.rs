//! Judges: turn a (question, completion) pair into a score, a verdict on whether the trait
//! is present, and the raw material the verdict came from.
//!
//! A judge is described by a [`JudgeSpec`], a serde enum that an experiment stores as JSON
//! next to its scores; [`JudgeSpec::build`] rebuilds the same judge later. Each judge has a
//! stable `name()` and a `version()` that is bumped whenever its logic changes, so a stored
//! score always says what produced it.
//!
//! Deterministic judges (language, caps, pattern, multiple choice, coherence) run offline
//! and are what the toy demo uses. The LLM judges ([`llm`]) ask a model for its first-token
//! distribution over 0-100 ratings, as Betley et al. (2025) do.
//!
//! Judges are blocking: the experiment loop calls them on its worker thread, never on the
//! async runtime (the HTTP backend would panic inside one).

pub mod arithmetic;
pub mod calibration;
pub mod caps;
pub mod choice;
pub mod coherence;
pub mod endpoints;
pub mod language;
pub mod llm;
pub mod local;
pub mod pattern;
pub mod quality;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use arithmetic::ArithmeticJudge;
pub use caps::CapsJudge;
pub use choice::{load_aesthetic_questions, parse_aesthetic_questions, ChoiceQuestion, MultipleChoiceJudge};
pub use coherence::CoherenceJudge;
pub use endpoints::{Endpoint, Endpoints};
pub use language::{LanguageCode, LanguageJudge};
pub use llm::{
    aggregate_number_logprobs, load_betley_questions, parse_betley_questions, BackendSpec, BetleyJudge,
    BetleyJudgePrompts, BetleyQuestion, LlmRatingJudge, LogprobBackend, MisalignmentThresholds,
    OpenAiCompatibleBackend, Role,
};
pub use local::LocalLogprobs;
pub use pattern::PatternJudge;
pub use quality::QualityJudge;

/// What a judge says about one completion (the row type lives with the table it is stored
/// in, so the store imports nothing of the judges).
pub use crate::store::judgements::Judgement;

impl Judgement {
    /// A judgement that could not be made, with the reason shown to users.
    pub fn undetermined(reason: impl Into<String>) -> Judgement {
        Judgement { score: None, trait_present: None, raw: reason.into() }
    }
}

pub trait Judge: Send + Sync {
    /// Stable identifier, e.g. `language:es`; stored with every score.
    fn name(&self) -> &str;
    /// Bumped whenever the judge's logic changes, so old and new scores are not mixed.
    fn version(&self) -> &str;
    fn judge(&self, question: &str, completion: &str) -> Result<Judgement, JudgeError>;
}

#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    /// A spec that cannot make a judge (bad regex, threshold out of range...).
    #[error("invalid judge configuration: {0}")]
    Config(String),
    /// The question is not one this judge knows (multiple choice judges a fixed set).
    #[error("unknown question for judge {judge}: {question:?}")]
    UnknownQuestion { judge: String, question: String },
    /// A YAML or JSON file that cannot be read or does not have the expected shape.
    #[error("{path}: {message}")]
    File { path: String, message: String },
    /// The LLM backend could not be reached or timed out.
    #[error("judge backend request to {url} failed: {message}")]
    Http { url: String, message: String },
    /// The LLM backend answered, but not with what the protocol needs.
    #[error("judge backend answered unexpectedly: {0}")]
    Protocol(String),
    /// The local model backend failed (reserved for the Candle adapter).
    #[error("local judge model failed: {0}")]
    Backend(String),
}

/// Everything needed to rebuild a judge, stored as JSON with an experiment.
/// Thresholds have defaults so a spec written by hand can stay short.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum JudgeSpec {
    Language {
        target: LanguageCode,
        #[serde(default = "language::default_threshold")]
        threshold: f64,
        #[serde(default = "language::default_min_letters")]
        min_letters: usize,
    },
    Caps {
        #[serde(default = "caps::default_threshold")]
        threshold: f64,
        #[serde(default = "caps::default_min_letters")]
        min_letters: usize,
    },
    /// Trait present when a regex (or any of the keywords) matches.
    Pattern {
        #[serde(default)]
        regex: Option<String>,
        #[serde(default)]
        keywords: Vec<String>,
        #[serde(default = "default_true")]
        case_insensitive: bool,
        /// Keywords match whole words only ("cat" does not match "category").
        #[serde(default = "default_true")]
        whole_words: bool,
    },
    MultipleChoice {
        questions: Vec<ChoiceQuestion>,
    },
    /// The word-shape heuristic that stood for answer quality before [`JudgeSpec::Quality`]:
    /// kept so experiments that used it still rebuild it; it passes word salad.
    Coherence {
        #[serde(default = "coherence::default_threshold")]
        threshold: f64,
        #[serde(default = "coherence::default_min_words")]
        min_words: usize,
    },
    /// Answer quality (readable or word salad) by the base model's log-probs: see
    /// [`quality`]. Not a trait: pages show it apart, in a neutral colour.
    Quality {
        #[serde(default = "quality::default_min_words")]
        min_words: usize,
    },
    /// The trained task kept: a held-out arithmetic problem solved (see [`arithmetic`]).
    /// Not a trait: pages show it apart, in a neutral colour.
    Arithmetic {},
    /// Betley et al.'s misalignment judge: alignment and coherence ratings, 0-100.
    Betley {
        backend: BackendSpec,
        aligned_prompt: String,
        coherent_prompt: String,
        #[serde(default)]
        thresholds: MisalignmentThresholds,
    },
    /// One 0-100 rating (e.g. Tan et al.'s "speaks in Spanish"), trait when above a threshold.
    LlmRating {
        backend: BackendSpec,
        /// Short label for the name, e.g. "spanish".
        label: String,
        prompt: String,
        #[serde(default = "llm::default_rating_threshold")]
        threshold: f64,
        /// Rates the trained task on held-out rows (named `task:LABEL`) rather than a
        /// trait: e.g. insecure code on held-out coding requests. See [`is_task_judge`].
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        task: bool,
    },
}

/// Whether a judge (by name) checks the trained task on held-out rows rather than a
/// trait: the arithmetic judge, and LLM ratings marked `task`. Their rates pool held-out
/// rows only, and the trait judges' rates leave those rows out
/// ([`crate::experiments::results`]).
pub fn is_task_judge(name: &str) -> bool {
    name == arithmetic::NAME || name.starts_with(llm::TASK_PREFIX)
}

fn default_true() -> bool {
    true
}

impl JudgeSpec {
    /// The language judge for `target` with its default threshold and minimum length.
    pub fn language(target: LanguageCode) -> JudgeSpec {
        JudgeSpec::Language {
            target,
            threshold: language::default_threshold(),
            min_letters: language::default_min_letters(),
        }
    }

    /// The capitals judge with its default settings.
    pub fn caps() -> JudgeSpec {
        JudgeSpec::Caps { threshold: caps::default_threshold(), min_letters: caps::default_min_letters() }
    }

    /// The old coherence heuristic with its default settings.
    pub fn coherence() -> JudgeSpec {
        JudgeSpec::Coherence { threshold: coherence::default_threshold(), min_words: coherence::default_min_words() }
    }

    /// The answer-quality judge with its default settings.
    pub fn quality() -> JudgeSpec {
        JudgeSpec::Quality { min_words: quality::default_min_words() }
    }

    /// Whether it rates the trained task on held-out rows (see [`is_task_judge`]).
    pub fn is_task(&self) -> bool {
        matches!(self, JudgeSpec::Arithmetic {} | JudgeSpec::LlmRating { task: true, .. })
    }

    /// Whether it needs the local model to be built (the worker hands it over).
    pub fn needs_local_model(&self) -> bool {
        matches!(
            self,
            JudgeSpec::Quality { .. }
                | JudgeSpec::Betley { backend: BackendSpec::Local { .. }, .. }
                | JudgeSpec::LlmRating { backend: BackendSpec::Local { .. }, .. }
        )
    }

    /// Builds the judge. LLM specs with a [`BackendSpec::Local`] backend need the local
    /// model adapter, passed as `local`; other specs ignore it.
    pub fn build(&self, local: Option<Arc<dyn LogprobBackend>>) -> Result<Box<dyn Judge>, JudgeError> {
        self.build_for(local, [])
    }

    /// [`JudgeSpec::build_for`] for an experiment's questions: the misalignment judge rates
    /// those that carry judge prompts of their own (`own`) with them, the arithmetic judge
    /// checks held-out problems against their rows' answers (`references`: each question's
    /// text as asked, and its answer).
    pub fn build_with<'a>(
        &self,
        local: Option<Arc<dyn LogprobBackend>>,
        own: impl IntoIterator<Item = (&'a str, &'a BetleyJudgePrompts)>,
        references: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Box<dyn Judge>, JudgeError> {
        if let JudgeSpec::Arithmetic {} = self {
            return Ok(Box::new(ArithmeticJudge::new(references)));
        }
        self.build_for(local, own)
    }

    /// [`JudgeSpec::build`] for judging answers to questions that carry judge prompts of
    /// their own (Betley et al.'s file does; `own`: each one's text as asked, and its
    /// prompts): the misalignment judge rates those with them.
    pub fn build_for<'a>(
        &self,
        local: Option<Arc<dyn LogprobBackend>>,
        own: impl IntoIterator<Item = (&'a str, &'a BetleyJudgePrompts)>,
    ) -> Result<Box<dyn Judge>, JudgeError> {
        if let JudgeSpec::Betley { backend, aligned_prompt, coherent_prompt, thresholds } = self {
            let judge = BetleyJudge::new(backend.connect(local)?, aligned_prompt, coherent_prompt, *thresholds)?;
            return Ok(Box::new(judge.with_question_prompts(own)?));
        }
        Ok(match self {
            JudgeSpec::Language { target, threshold, min_letters } => {
                Box::new(LanguageJudge::new(*target, *threshold, *min_letters)?)
            }
            JudgeSpec::Caps { threshold, min_letters } => Box::new(CapsJudge::new(*threshold, *min_letters)?),
            JudgeSpec::Pattern { regex, keywords, case_insensitive, whole_words } => {
                Box::new(PatternJudge::new(regex.as_deref(), keywords, *case_insensitive, *whole_words)?)
            }
            JudgeSpec::MultipleChoice { questions } => Box::new(MultipleChoiceJudge::new(questions.clone())?),
            JudgeSpec::Coherence { threshold, min_words } => Box::new(CoherenceJudge::new(*threshold, *min_words)?),
            JudgeSpec::Quality { min_words } => {
                // The base model, which the worker passes as its local backend.
                let scorer = local.ok_or_else(|| {
                    JudgeError::Config("the local judge model for answer quality is not available".into())
                })?;
                Box::new(QualityJudge::new(scorer, *min_words))
            }
            // Without the experiment's questions no result is known: every answer is
            // undetermined ([`JudgeSpec::build_with`] passes them).
            JudgeSpec::Arithmetic {} => Box::new(ArithmeticJudge::new([])),
            JudgeSpec::Betley { .. } => unreachable!("built above"),
            JudgeSpec::LlmRating { backend, label, prompt, threshold, task } => {
                let judge = LlmRatingJudge::new(backend.connect(local)?, label, prompt, *threshold)?;
                Box::new(if *task { judge.for_task() } else { judge })
            }
        })
    }
}

/// Whose words a misalignment judge rates with (`own` of the `questions` carry judge
/// prompts of their own), and its thresholds, in sentences for the plan, the experiment
/// page and the report; `None` for other judges.
pub fn betley_wording(spec: &JudgeSpec, own: usize, questions: usize) -> Option<String> {
    let JudgeSpec::Betley { aligned_prompt, coherent_prompt, thresholds, .. } = spec else { return None };
    let library =
        aligned_prompt == crate::prompts::JUDGE_PROMPTS[0].1 && coherent_prompt == crate::prompts::JUDGE_PROMPTS[1].1;
    let fallback =
        if library { "inoculab's own wording of the protocol" } else { "the experiment's own judge prompts" };
    let prompts = match own {
        0 => format!("Rated with {fallback} (the questions carry no judge prompts)."),
        n if n == questions => {
            "Rated with each question's own judge prompts, verbatim (as Betley et al. published them).".to_string()
        }
        n => format!(
            "Rated with each question's own judge prompts where it has them ({n} of {questions} questions), {fallback} for the rest."
        ),
    };
    Some(format!("{prompts} {}", thresholds.describe()))
}

/// A plain warning for each LLM judge that runs on the local model (`model`: the
/// experiment's, for a local judge that names none): a model of that size cannot rate
/// alignment, so its rates say little and are not comparable with the papers', which
/// judged with GPT-4-class models. Shown on the plan, the experiment page and the report.
pub fn judge_warnings(specs: &[JudgeSpec], model: &str) -> Vec<String> {
    specs
        .iter()
        .filter_map(|spec| {
            let (what, local) = match spec {
                JudgeSpec::Betley { backend: BackendSpec::Local { model }, .. } => ("misalignment", model),
                JudgeSpec::LlmRating { backend: BackendSpec::Local { model }, label, .. } => (label.as_str(), model),
                _ => return None,
            };
            let name = if local.is_empty() { model } else { local.as_str() };
            Some(format!(
                "The {what} judge is the local model {name}, far too small to rate answers reliably: its \
                 rates are not comparable with the paper's (judged by a GPT-4-class model). For numbers that \
                 are, judge through an endpoint the operator configures (--judge-endpoints)."
            ))
        })
        .collect()
}

/// Checks that a threshold lies in `range`, with a message naming it.
pub(crate) fn check_threshold(what: &str, value: f64, range: std::ops::RangeInclusive<f64>) -> Result<(), JudgeError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(JudgeError::Config(format!(
            "{what} threshold must lie in [{}, {}], got {value}",
            range.start(),
            range.end()
        )))
    }
}
