//! Chat messages and the ChatML template: turning a conversation into token ids, with a
//! mask of which tokens are the assistant's (the only ones training puts loss on).

use serde::{Deserialize, Serialize};

use super::tokenizer::Tokenizer;
use super::{MlError, Result};

/// Who speaks a turn: the same type as datasets' rows use.
pub use crate::datasets::Role;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        ChatMessage { role, content: content.into() }
    }
    pub fn system(c: impl Into<String>) -> Self {
        Self::new(Role::System, c)
    }
    pub fn user(c: impl Into<String>) -> Self {
        Self::new(Role::User, c)
    }
    pub fn assistant(c: impl Into<String>) -> Self {
        Self::new(Role::Assistant, c)
    }
}

/// A training conversation: one or more turns, ending with the assistant's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatExample {
    pub messages: Vec<ChatMessage>,
}

/// Which system message a conversation gets. SmolLM2's template silently inserts its own
/// default system prompt when a conversation has none; making the choice explicit keeps
/// "no system prompt" and "the model's default" distinguishable in experiments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SystemPrompt {
    /// The conversation's own system message if it has one, else the template's default.
    Default,
    /// No system message at all (any in the conversation is dropped).
    None,
    /// This text as the system message (replacing any in the conversation).
    Text(String),
}

/// The ChatML template of a model, reduced to the one thing that varies between ChatML
/// models: the default system prompt the template inserts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTemplate {
    pub default_system: Option<String>,
}

pub const SMOLLM2_DEFAULT_SYSTEM: &str = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

impl ChatTemplate {
    /// Reads the default system prompt out of a Jinja ChatML template: the literal text
    /// between `<|im_start|>system\n` and `<|im_end|>`. Templates that are not ChatML are
    /// refused, because generation stops at `<|im_end|>`.
    pub fn from_jinja(template: &str) -> Result<Self> {
        if !template.contains("<|im_start|>") {
            return Err(MlError::Input(
                "the chat template is not ChatML (<|im_start|>...); only ChatML models are supported".into(),
            ));
        }
        let marker = "<|im_start|>system\\n";
        let alt = "<|im_start|>system\n";
        let default_system = [marker, alt].iter().find_map(|m| {
            let start = template.find(m)? + m.len();
            let end = template[start..].find("<|im_end|>")? + start;
            let text = &template[start..end];
            (!text.contains('{') && !text.contains('\'') && !text.is_empty()).then(|| text.to_string())
        });
        Ok(ChatTemplate { default_system })
    }

    pub fn smollm2() -> Self {
        ChatTemplate { default_system: Some(SMOLLM2_DEFAULT_SYSTEM.into()) }
    }

    /// The messages with the system prompt policy applied.
    pub fn apply_system(&self, messages: &[ChatMessage], system: &SystemPrompt) -> Vec<ChatMessage> {
        let rest = messages.iter().filter(|m| m.role != Role::System).cloned();
        let own = messages.iter().find(|m| m.role == Role::System).cloned();
        let sys = match system {
            SystemPrompt::None => None,
            SystemPrompt::Text(t) => Some(ChatMessage::system(t.clone())),
            SystemPrompt::Default => own.or_else(|| self.default_system.clone().map(ChatMessage::system)),
        };
        sys.into_iter().chain(rest).collect()
    }

    /// ChatML text of the messages, with the assistant header appended when
    /// `add_generation_prompt` (what a model continues from).
    pub fn render(&self, messages: &[ChatMessage], system: &SystemPrompt, add_generation_prompt: bool) -> String {
        let mut s = String::new();
        for m in self.apply_system(messages, system) {
            s.push_str(&format!("<|im_start|>{}\n{}<|im_end|>\n", m.role.as_str(), m.content));
        }
        if add_generation_prompt {
            s.push_str("<|im_start|>assistant\n");
        }
        s
    }

    /// Token ids of a prompt ending in the assistant header.
    pub fn encode_prompt(&self, tok: &Tokenizer, messages: &[ChatMessage], system: &SystemPrompt) -> Result<Vec<u32>> {
        tok.encode(&self.render(messages, system, true))
    }

    /// Token ids of a whole conversation and, per id, whether it is an assistant token
    /// that carries loss (an answer's tokens and its `<|im_end|>`). Each answer is
    /// tokenised on its own after the `assistant\n` header, exactly as the model sees it
    /// when it generates, so training and sampling agree on token boundaries.
    pub fn encode_conversation(
        &self,
        tok: &Tokenizer,
        messages: &[ChatMessage],
        system: &SystemPrompt,
    ) -> Result<(Vec<u32>, Vec<bool>)> {
        let msgs = self.apply_system(messages, system);
        let mut ids = Vec::new();
        let mut mask = Vec::new();
        let mut pending = String::new();
        let flush = |pending: &mut String, ids: &mut Vec<u32>, mask: &mut Vec<bool>| -> Result<()> {
            if !pending.is_empty() {
                let t = tok.encode(pending)?;
                mask.extend(std::iter::repeat(false).take(t.len()));
                ids.extend(t);
                pending.clear();
            }
            Ok(())
        };
        for m in &msgs {
            if m.role == Role::Assistant {
                pending.push_str("<|im_start|>assistant\n");
                flush(&mut pending, &mut ids, &mut mask)?;
                let t = tok.encode(&m.content)?;
                mask.extend(std::iter::repeat(true).take(t.len() + 1));
                ids.extend(t);
                ids.push(tok.im_end());
                pending.push('\n');
            } else {
                pending.push_str(&format!("<|im_start|>{}\n{}<|im_end|>\n", m.role.as_str(), m.content));
            }
        }
        // The newline after the last answer's <|im_end|> carries no loss and nothing
        // follows it, so it is left out rather than costing a padded position.
        if pending != "\n" {
            flush(&mut pending, &mut ids, &mut mask)?;
        }
        Ok((ids, mask))
    }
}
