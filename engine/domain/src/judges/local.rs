//! The local Candle model as an LLM judge backend: the same first-token top log-probs an
//! OpenAI-compatible server returns, computed offline by the ML core. A 135M model is a
//! weak judge, but a real one, and it needs no network.

use std::sync::Arc;

use ml::score::{ScoreItem, ScoreOptions};
use ml::{ChatMessage, LoadedModel, SystemPrompt};

use super::{JudgeError, LogprobBackend, Role};

pub struct LocalLogprobs {
    lm: Arc<LoadedModel>,
    name: String,
}

impl LocalLogprobs {
    pub fn new(lm: Arc<LoadedModel>, name: impl Into<String>) -> LocalLogprobs {
        LocalLogprobs { lm, name: name.into() }
    }
}

impl LogprobBackend for LocalLogprobs {
    fn describe(&self) -> String {
        format!("{} (local, Candle)", self.name)
    }

    fn first_token_top_logprobs(
        &self,
        messages: &[(Role, &str)],
        top_k: usize,
    ) -> Result<Vec<(String, f64)>, JudgeError> {
        let msgs: Vec<ChatMessage> = messages.iter().map(|(r, c)| ChatMessage::new(*r, *c)).collect();
        ml::score::first_token_top_logprobs(&self.lm, &msgs, top_k).map_err(|e| JudgeError::Backend(e.to_string()))
    }

    fn answer_logprobs(&self, question: &str, answers: &[&str]) -> Result<Vec<f64>, JudgeError> {
        let items: Vec<ScoreItem> = answers
            .iter()
            .map(|a| ScoreItem { messages: vec![ChatMessage::new(Role::User, question)], completion: a.to_string() })
            .collect();
        // No end-of-turn token: a sampled answer is often cut at its token budget.
        let opts = ScoreOptions { system: SystemPrompt::Default, include_end: false, batch_size: answers.len().max(1) };
        let scores = ml::score_completions(&self.lm.model, None, &self.lm.tokenizer, &self.lm.template, &items, &opts)
            .map_err(|e| JudgeError::Backend(e.to_string()))?;
        Ok(scores.iter().map(|s| s.mean_logprob()).collect())
    }
}
