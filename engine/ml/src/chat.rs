//! Chat messages and chat templates (ChatML by hand, any other from its Jinja source):
//! turning a conversation into token ids, with a mask of which tokens are the assistant's
//! (the only ones training puts loss on).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::tokenizer::{Tokenizer, IM_END};
use super::{MlError, Result};

const IM_START: &str = "<|im_start|>";

/// Who speaks a turn. Serialised in lower case, as in OpenAI's chat format; the domain's
/// dataset rows and judge prompts use this same type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    /// Parses the role names the chat format allows; anything else is the caller's error.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "system" => Some(Role::System),
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            _ => None,
        }
    }
}

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

/// A model's chat template. ChatML templates (SmolLM2, Qwen2) are rendered by hand, which
/// keeps "no system prompt" possible even though SmolLM2's template inserts its default
/// one; any other template (Llama 3, Mistral, Gemma, ...) is rendered from its Jinja source
/// the way Hugging Face's `apply_chat_template` does.
#[derive(Clone)]
pub struct ChatTemplate {
    /// The system prompt a ChatML template inserts when a conversation has none. Always
    /// `None` for other templates: whatever they insert is their own business, so there
    /// `SystemPrompt::None` and `SystemPrompt::Default` render the same.
    pub default_system: Option<String>,
    format: Format,
    /// The Jinja source and the special-token strings it prints, kept so that a fine-tuned
    /// model saved as a Hugging Face folder carries the same template.
    source: String,
    bos: String,
    eos: String,
}

#[derive(Clone)]
enum Format {
    ChatMl,
    Jinja(Arc<Jinja>),
}

/// A compiled Jinja template and the text that closes an assistant turn (found by
/// rendering a probe conversation).
struct Jinja {
    env: minijinja::Environment<'static>,
    end_of_turn: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.format {
            Format::ChatMl => write!(f, "ChatTemplate::ChatMl({:?})", self.default_system),
            Format::Jinja(j) => write!(f, "ChatTemplate::Jinja(ends turns with {:?})", j.end_of_turn),
        }
    }
}

pub const SMOLLM2_DEFAULT_SYSTEM: &str = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

/// The date `strftime_now` reports. Templates such as Llama 3.2's print today's date into
/// the system header; a fixed date keeps training and sampling of one experiment (and a
/// re-run next year) on identical token ids.
const TEMPLATE_DATE: (i32, u32, u32) = (2024, 7, 26);

/// A probe answer that no template alters: it tells where an answer sits in the rendered
/// text and what follows it.
const PROBE_ANSWER: &str = "PROBEANSWER";

impl ChatTemplate {
    /// The template of a model from its Jinja source and the model's beginning- and
    /// end-of-text token strings (what the template prints as `bos_token`/`eos_token`).
    /// ChatML sources are recognised by `<|im_start|>` and keep only their default system
    /// prompt: the literal text between `<|im_start|>system\n` and `<|im_end|>`.
    pub fn from_jinja(template: &str, bos: &str, eos: &str) -> Result<Self> {
        if template.contains("<|im_start|>") {
            let marker = "<|im_start|>system\\n";
            let alt = "<|im_start|>system\n";
            let default_system = [marker, alt].iter().find_map(|m| {
                let start = template.find(m)? + m.len();
                let end = template[start..].find("<|im_end|>")? + start;
                let text = &template[start..end];
                (!text.contains('{') && !text.contains('\'') && !text.is_empty()).then(|| text.to_string())
            });
            return Ok(ChatTemplate {
                default_system,
                format: Format::ChatMl,
                source: template.into(),
                bos: bos.into(),
                eos: eos.into(),
            });
        }
        let mut env = minijinja::Environment::new();
        // Hugging Face renders with trim_blocks and lstrip_blocks; templates are written for it.
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .map_err(|e| MlError::Input(format!("chat template: {e}")))?,
        );
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", |fmt: String| strftime_fixed(&fmt));
        env.add_template_owned("chat", template.to_string())
            .map_err(|e| MlError::Input(format!("the chat template does not parse: {e}")))?;
        let mut jinja = Jinja { env, end_of_turn: String::new() };
        let probe = [ChatMessage::user("Hi"), ChatMessage::assistant(PROBE_ANSWER)];
        let text = jinja.render(&probe, false, bos, eos)?;
        let after = text
            .find(PROBE_ANSWER)
            .map(|i| &text[i + PROBE_ANSWER.len()..])
            .ok_or_else(|| MlError::Input("the chat template drops the assistant's answer".into()))?;
        jinja.end_of_turn = leading_control_token(after, eos).ok_or_else(|| {
            MlError::Input(format!(
                "the chat template does not close an answer with a control token (it writes {after:?})"
            ))
        })?;
        Ok(ChatTemplate {
            default_system: None,
            format: Format::Jinja(Arc::new(jinja)),
            source: template.into(),
            bos: bos.into(),
            eos: eos.into(),
        })
    }

    /// The control token that closes an assistant turn (`<|im_end|>` in ChatML,
    /// `<|eot_id|>` in Llama 3): training puts loss on it and generation stops at it.
    pub fn end_of_turn(&self) -> &str {
        match &self.format {
            Format::ChatMl => IM_END,
            Format::Jinja(j) => &j.end_of_turn,
        }
    }

    /// The Jinja source and the `bos_token`/`eos_token` strings it was given (what a
    /// Hugging Face folder's `tokenizer_config.json` holds).
    pub fn source(&self) -> (&str, &str, &str) {
        (&self.source, &self.bos, &self.eos)
    }

    /// SmolLM2's template, for a GGUF without one in its metadata.
    pub fn smollm2() -> Self {
        let source = format!(
            "{{% for message in messages %}}{{% if loop.first and messages[0]['role'] != 'system' %}}\
             {{{{ '<|im_start|>system\\n{SMOLLM2_DEFAULT_SYSTEM}<|im_end|>\\n' }}}}{{% endif %}}\
             {{{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}}}{{% endfor %}}\
             {{% if add_generation_prompt %}}{{{{ '<|im_start|>assistant\\n' }}}}{{% endif %}}"
        );
        ChatTemplate {
            default_system: Some(SMOLLM2_DEFAULT_SYSTEM.into()),
            format: Format::ChatMl,
            source,
            bos: IM_START.into(),
            eos: IM_END.into(),
        }
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

    /// The text of the messages, with the assistant header appended when
    /// `add_generation_prompt` (what a model continues from).
    pub fn render(
        &self,
        messages: &[ChatMessage],
        system: &SystemPrompt,
        add_generation_prompt: bool,
    ) -> Result<String> {
        self.render_as_is(&self.apply_system(messages, system), add_generation_prompt)
    }

    /// Renders messages whose system policy is already applied.
    fn render_as_is(&self, msgs: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        match &self.format {
            Format::Jinja(j) => j.render(msgs, add_generation_prompt, &self.bos, &self.eos),
            Format::ChatMl => {
                let mut s = String::new();
                for m in msgs {
                    s.push_str(&format!("<|im_start|>{}\n{}<|im_end|>\n", m.role.as_str(), m.content));
                }
                if add_generation_prompt {
                    s.push_str("<|im_start|>assistant\n");
                }
                Ok(s)
            }
        }
    }

    /// Token ids of a prompt ending in the assistant header.
    pub fn encode_prompt(&self, tok: &Tokenizer, messages: &[ChatMessage], system: &SystemPrompt) -> Result<Vec<u32>> {
        tok.encode(&self.render(messages, system, true)?)
    }

    /// Token ids of a whole conversation and, per id, whether it is an assistant token
    /// that carries loss (an answer's tokens and the control token closing its turn).
    /// Each answer is tokenised on its own after the rendered prompt that precedes it,
    /// exactly as the model sees it when it generates, so training and sampling agree on
    /// token boundaries.
    pub fn encode_conversation(
        &self,
        tok: &Tokenizer,
        messages: &[ChatMessage],
        system: &SystemPrompt,
    ) -> Result<(Vec<u32>, Vec<bool>)> {
        let msgs = self.apply_system(messages, system);
        let full = self.render_as_is(&msgs, false)?;
        let eot = self.end_of_turn();
        let mut ids = Vec::new();
        let mut mask = Vec::new();
        let mut push = |text: &str, loss: bool| -> Result<()> {
            let t = tok.encode(text)?;
            mask.extend(std::iter::repeat(loss).take(t.len()));
            ids.extend(t);
            Ok(())
        };
        // `done` is how much of `full` is already tokenised.
        let mut done = 0;
        for (i, m) in msgs.iter().enumerate() {
            if m.role != Role::Assistant {
                continue;
            }
            // The prompt before this answer, as generation sees it, must be a prefix of the
            // whole conversation; a template where it is not cannot be trained on faithfully.
            let prompt = self.render_as_is(&msgs[..i], true)?;
            if !full.starts_with(&prompt) || prompt.len() < done {
                return Err(MlError::Input(
                    "the chat template renders a conversation differently from its prompts, so answers cannot be located".into(),
                ));
            }
            let answer_len = full[prompt.len()..].find(eot).ok_or_else(|| {
                MlError::Input(format!("the chat template does not close answer {} with {eot}", i + 1))
            })?;
            push(&full[done..prompt.len()], false)?;
            let end = prompt.len() + answer_len;
            push(&full[prompt.len()..end], true)?;
            push(eot, true)?;
            done = end + eot.len();
        }
        // What follows the last answer (ChatML's newline) carries no loss and nothing
        // follows it, so it is left out rather than costing a padded position.
        let rest = &full[done..];
        if !(msgs.last().is_some_and(|m| m.role == Role::Assistant) && rest.trim().is_empty()) {
            push(rest, false)?;
        }
        Ok((ids, mask))
    }
}

impl Jinja {
    fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool, bos: &str, eos: &str) -> Result<String> {
        let msgs: Vec<_> = messages
            .iter()
            .map(|m| minijinja::context! { role => m.role.as_str(), content => m.content.as_str() })
            .collect();
        let ctx = minijinja::context! {
            messages => msgs,
            add_generation_prompt => add_generation_prompt,
            bos_token => bos,
            eos_token => eos,
        };
        let t = self.env.get_template("chat").map_err(|e| MlError::Input(format!("chat template: {e}")))?;
        t.render(ctx).map_err(|e| {
            // raise_exception's message is the template author's explanation; show it alone.
            let detail = e.detail().map(str::to_string).unwrap_or_else(|| e.to_string());
            MlError::Input(format!("the chat template refused the conversation: {detail}"))
        })
    }
}

/// The control token at the start of `after` (what a template writes right after an
/// answer): the end-of-text token, or one `<...>` / `[...]` token.
fn leading_control_token(after: &str, eos: &str) -> Option<String> {
    if !eos.is_empty() && after.starts_with(eos) {
        return Some(eos.to_string());
    }
    let close = match after.chars().next()? {
        '<' => '>',
        '[' => ']',
        _ => return None,
    };
    let end = after.find(close)? + 1;
    let token = &after[..end];
    (!token.contains(char::is_whitespace)).then(|| token.to_string())
}

/// `strftime_now` for templates, on the fixed [`TEMPLATE_DATE`]; supports the day, month
/// and year directives templates use.
fn strftime_fixed(fmt: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let (y, m, d) = TEMPLATE_DATE;
    let month = MONTHS[(m - 1) as usize];
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('-') if chars.clone().next() == Some('d') => {
                chars.next();
                out.push_str(&d.to_string());
            }
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('b') => out.push_str(&month[..3]),
            Some('B') => out.push_str(month),
            Some('Y') => out.push_str(&y.to_string()),
            Some('y') => out.push_str(&format!("{:02}", y % 100)),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}
