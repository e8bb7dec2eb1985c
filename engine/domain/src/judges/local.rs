//! The local Candle model as an LLM judge backend: the same first-token top log-probs an
//! OpenAI-compatible server returns, computed offline by the ML core. A 135M model is a
//! weak judge, but a real one, and it needs no network.

use std::sync::Arc;

use ml::{ChatMessage, LoadedModel};

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
}
