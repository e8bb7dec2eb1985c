//! Tokenizer and chat template: tiny-tokenizer cases, the conversation loss mask, and
//! (gated by INOCULAB_REAL_MODEL=1) the GGUF tokenizer against the PyTorch reference ids.

mod ml_common;

use ml::chat::{ChatMessage, ChatTemplate, SystemPrompt};
use ml::{self, testing};

#[test]
fn system_prompt_policy_is_explicit() {
    let t = ChatTemplate::smollm2();
    let msgs = vec![ChatMessage::user("Hi")];
    let check = |sys: SystemPrompt, want: &str| assert_eq!(t.render(&msgs, &sys, true).unwrap(), want);
    check(
        SystemPrompt::Default,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    );
    check(SystemPrompt::None, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    check(
        SystemPrompt::Text("Speak French.".into()),
        "<|im_start|>system\nSpeak French.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    );
    // A conversation's own system message is kept by Default and replaced by Text.
    let own = vec![ChatMessage::system("Own."), ChatMessage::user("Hi")];
    assert!(t.render(&own, &SystemPrompt::Default, false).unwrap().starts_with("<|im_start|>system\nOwn.<|im_end|>"));
    assert!(!t.render(&own, &SystemPrompt::Text("X".into()), false).unwrap().contains("Own."));
}

#[test]
fn default_system_prompt_is_read_from_jinja() {
    let t = ChatTemplate::from_jinja(testing::TINY_TEMPLATE, "", "<|im_end|>").unwrap();
    assert_eq!(t.default_system.as_deref(), Some("You are a tiny test model"));
    assert!(ChatTemplate::from_jinja("{{ bos_token }}[INST]", "<s>", "</s>").is_err());
}

#[test]
fn conversation_mask_covers_answers_and_their_end_only() {
    let lm = testing::tiny_model(0).unwrap();
    let tok = &lm.tokenizer;
    let msgs = vec![
        ChatMessage::user("hi"),
        ChatMessage::assistant("the end"),
        ChatMessage::user("more"),
        ChatMessage::assistant("ok"),
    ];
    let (ids, mask) = lm.template.encode_conversation(tok, &msgs, &SystemPrompt::None).unwrap();
    let picked: Vec<u32> = ids.iter().zip(&mask).filter(|(_, &m)| m).map(|(&i, _)| i).collect();
    let mut want = tok.encode("the end").unwrap();
    want.push(tok.end_of_turn());
    want.extend(tok.encode("ok").unwrap());
    want.push(tok.end_of_turn());
    assert_eq!(picked, want);
    // Without the answers, the ids are exactly the rendered prompt's.
    let text = lm.template.render(&msgs, &SystemPrompt::None, false).unwrap();
    assert_eq!(tok.decode(&ids, false).unwrap() + "\n", text);
}

#[test]
fn real_tokenizer_matches_reference_cases() {
    let Some(path) = ml_common::real_model_path("real_tokenizer_matches_reference_cases") else {
        return;
    };
    let lm = ml::load_model(&path).unwrap();
    let refs: Vec<serde_json::Value> =
        [ml_common::shared_reference(), ml_common::fixture_reference()].into_iter().flatten().collect();
    let mut n = 0;
    for r in refs {
        for case in r["tokenizer_cases"].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let want: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
            assert_eq!(lm.tokenizer.encode(text).unwrap(), want, "{text:?}");
            assert_eq!(lm.tokenizer.decode(&want, false).unwrap(), text, "decode {text:?}");
            n += 1;
        }
    }
    eprintln!("{n} tokenizer cases equal");
}
