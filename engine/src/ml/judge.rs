//! The local Candle model as an LLM judge backend: the same first-token top log-probs an
//! OpenAI-compatible server returns, computed offline. A 135M model is a weak judge, but a
//! real one, and it needs no network.

use std::sync::Arc;

use candle_core::{Tensor, D};

use super::chat::{ChatMessage, SystemPrompt};
use super::LoadedModel;
use crate::judges::{JudgeError, LogprobBackend, Role};

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
        let backend = |e: &dyn std::fmt::Display| JudgeError::Backend(e.to_string());
        let msgs: Vec<ChatMessage> = messages.iter().map(|(r, c)| ChatMessage::new(*r, *c)).collect();
        // The judge prompt is the whole instruction: no system prompt of the model's own.
        let ids =
            self.lm.template.encode_prompt(&self.lm.tokenizer, &msgs, &SystemPrompt::None).map_err(|e| backend(&e))?;
        let t = ids.len();
        let run = || -> candle_core::Result<Vec<f32>> {
            let x = Tensor::from_vec(ids.clone(), (1, t), self.lm.model.device())?;
            let logits = self.lm.model.forward(&x, None)?.narrow(1, t - 1, 1)?.squeeze(0)?.squeeze(0)?;
            candle_nn::ops::log_softmax(&logits, D::Minus1)?.to_vec1::<f32>()
        };
        let logprobs = run().map_err(|e| backend(&e))?;
        let mut order: Vec<usize> = (0..logprobs.len()).collect();
        order.sort_unstable_by(|&a, &b| logprobs[b].total_cmp(&logprobs[a]));
        order
            .into_iter()
            .take(top_k)
            .map(|id| {
                let text = self.lm.tokenizer.decode(&[id as u32], false).map_err(|e| backend(&e))?;
                Ok((text, logprobs[id] as f64))
            })
            .collect()
    }
}
