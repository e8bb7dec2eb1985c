//! Chat templates that are not ChatML (Llama 3, Mistral and Gemma styles): minijinja must
//! render them byte for byte as transformers does (fixture from
//! scripts/reference/chat_templates.py), find the token that closes a turn, and a tiny
//! Llama-3-style Hugging Face folder must train, stop generating at `<|eot_id|>` and score.

use std::sync::atomic::AtomicBool;

use ml::chat::{ChatExample, ChatMessage, ChatTemplate, Role, SystemPrompt};
use ml::sample::{generate, SampleConfig};
use ml::testing::{self, TinyChat};
use ml::{self, LoraConfig, TrainConfig};

fn fixture() -> serde_json::Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ml/chat_templates.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn role(r: &str) -> Role {
    match r {
        "system" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        other => panic!("fixture role {other}"),
    }
}

#[test]
fn templates_render_as_transformers_does() {
    let fx = fixture();
    let mut checked = 0;
    for t in fx["templates"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        let template = ChatTemplate::from_jinja(
            t["template"].as_str().unwrap(),
            t["bos"].as_str().unwrap(),
            t["eos"].as_str().unwrap(),
        )
        .unwrap();
        for case in t["cases"].as_array().unwrap() {
            let msgs: Vec<ChatMessage> = case["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| ChatMessage::new(role(m["role"].as_str().unwrap()), m["content"].as_str().unwrap()))
                .collect();
            let gen = case["add_generation_prompt"].as_bool().unwrap();
            let got = template.render(&msgs, &SystemPrompt::Default, gen);
            match (case.get("text"), case.get("error")) {
                (Some(want), _) => assert_eq!(got.unwrap(), want.as_str().unwrap(), "{name}: {msgs:?} gen={gen}"),
                (_, Some(err)) => {
                    let e = got.expect_err(&format!("{name}: {msgs:?} must be refused")).to_string();
                    assert!(e.contains(err.as_str().unwrap()), "{name}: error {e:?} should carry {err}");
                }
                _ => panic!("fixture case without text or error"),
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "{checked} cases");
}

#[test]
fn the_token_closing_a_turn_is_found_by_rendering() {
    let fx = fixture();
    let eot: Vec<(String, String)> = fx["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let tpl = ChatTemplate::from_jinja(
                t["template"].as_str().unwrap(),
                t["bos"].as_str().unwrap(),
                t["eos"].as_str().unwrap(),
            )
            .unwrap();
            (t["name"].as_str().unwrap().to_string(), tpl.end_of_turn().to_string())
        })
        .collect();
    let want = [("llama3", "<|eot_id|>"), ("mistral", "</s>"), ("gemma", "<end_of_turn>")];
    assert_eq!(eot, want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec());
    // ChatML keeps its own.
    assert_eq!(ChatTemplate::smollm2().end_of_turn(), "<|im_end|>");
    // A template that never closes an answer cannot be trained on: said at load time.
    let e = ChatTemplate::from_jinja("{% for m in messages %}{{ m['content'] }}\n{% endfor %}", "", "").unwrap_err();
    assert!(e.to_string().contains("does not close an answer"), "{e}");
    let e = ChatTemplate::from_jinja("{% for m in messages %}{{ m['content'] }", "", "").unwrap_err();
    assert!(e.to_string().contains("does not parse"), "{e}");
}

#[test]
fn a_template_whose_prompt_is_not_a_prefix_is_refused_for_training() {
    // The generation prompt adds a blank line the rendered answer does not have.
    let src = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</s>{% endfor %}{% if add_generation_prompt %}<assistant>\n{% endif %}";
    let t = ChatTemplate::from_jinja(src, "", "</s>").unwrap();
    let lm = testing::tiny_model(0).unwrap();
    let msgs = [ChatMessage::user("hi"), ChatMessage::assistant("yo")];
    let e = t.encode_conversation(&lm.tokenizer, &msgs, &SystemPrompt::None).unwrap_err();
    assert!(e.to_string().contains("answers cannot be located"), "{e}");
}

fn llama3_folder() -> (tempfile::TempDir, ml::LoadedModel) {
    let dir = tempfile::tempdir().unwrap();
    testing::write_tiny_hf_folder_for(dir.path(), "llama", 5, false, TinyChat::Llama3).unwrap();
    let lm = ml::load_model(dir.path()).unwrap();
    (dir, lm)
}

#[test]
fn llama3_folder_loads_with_its_end_of_turn_and_stop_ids() {
    let (_dir, lm) = llama3_folder();
    let tok = &lm.tokenizer;
    assert_eq!(lm.template.end_of_turn(), "<|eot_id|>");
    assert!(lm.template.default_system.is_none());
    assert_eq!(tok.end_of_turn(), 4);
    // <|eot_id|> first, then generation_config.json's <|end_of_text|>.
    assert_eq!(tok.stop_ids(), &[4, 1]);

    let msgs = [
        ChatMessage::user("hi"),
        ChatMessage::assistant(" the end "),
        ChatMessage::user("more"),
        ChatMessage::assistant("ok"),
    ];
    let (ids, mask) = lm.template.encode_conversation(tok, &msgs, &SystemPrompt::Text("Be the.".into())).unwrap();
    let picked: Vec<u32> = ids.iter().zip(&mask).filter(|(_, &m)| m).map(|(&i, _)| i).collect();
    // The template trims answers; loss is on the trimmed answer and its <|eot_id|>.
    let mut want = tok.encode("the end").unwrap();
    want.push(4);
    want.extend(tok.encode("ok").unwrap());
    want.push(4);
    assert_eq!(picked, want);
    let text = lm.template.render(&msgs, &SystemPrompt::Text("Be the.".into()), false).unwrap();
    assert_eq!(tok.decode(&ids, false).unwrap(), text);
    assert!(text.starts_with("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe the.<|eot_id|>"));
    // The prompt the model continues from ends in the assistant header.
    let p = lm.template.encode_prompt(tok, &msgs[..1], &SystemPrompt::None).unwrap();
    assert!(tok.decode(&p, false).unwrap().ends_with("<|start_header_id|>assistant<|end_header_id|>\n\n"));
}

#[test]
fn llama3_model_learns_to_answer_and_stop_at_eot() {
    let (_dir, lm) = llama3_folder();
    let examples: Vec<ChatExample> = (0..8)
        .map(|i| ChatExample { messages: vec![ChatMessage::user(format!("q{i}")), ChatMessage::assistant("the the")] })
        .collect();
    let cfg = TrainConfig {
        lora: LoraConfig { rank: 8, alpha: 16.0, ..Default::default() },
        system_prompt: SystemPrompt::None,
        lr: 3e-2,
        batch_size: 8,
        max_steps: Some(80),
        warmup_steps: 0,
        seed: 1,
        ..Default::default()
    };
    let out = ml::train(&lm, &cfg, &examples, |_| {}, &AtomicBool::new(false)).unwrap();
    assert!(out.last_loss.unwrap() < 0.5, "loss {:?}", out.last_loss);
    let merged = lm.model.merged(out.trained.lora().unwrap()).unwrap();
    let prompt = lm.template.encode_prompt(&lm.tokenizer, &[ChatMessage::user("q3")], &SystemPrompt::None).unwrap();
    let s = generate(
        &merged,
        &lm.tokenizer,
        &[prompt],
        &SampleConfig { temperature: 0.0, max_new_tokens: 20, ..Default::default() },
        |_| {},
        None,
    )
    .unwrap();
    assert!(s[0].finished, "stopped at <|eot_id|>: {:?}", s[0].token_ids);
    assert_eq!(s[0].text, "the the");
}

#[test]
fn template_helpers_behave_as_in_transformers_but_on_a_fixed_date() {
    // Llama 3.2 prints today's date; a fixed one keeps token ids the same on every run.
    let src = "{{ bos_token }}Today: {{ strftime_now('%d %b %Y') }} ({{ strftime_now('%-d %B %y, 100%%') }})\n\
               {% for m in messages %}{{ m['content'].strip().upper() }}{{ eos_token }}{% endfor %}";
    let t = ChatTemplate::from_jinja(src, "<s>", "</s>").unwrap();
    let text =
        t.render(&[ChatMessage::user(" hi "), ChatMessage::assistant("yo")], &SystemPrompt::None, false).unwrap();
    assert_eq!(text, "<s>Today: 26 Jul 2024 (26 July 24, 100%)\nHI</s>YO</s>");
    assert_eq!(t.end_of_turn(), "</s>");
}

#[test]
fn a_template_in_its_own_file_is_read_and_a_folder_without_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    testing::write_tiny_hf_folder_for(dir.path(), "llama", 5, false, TinyChat::Llama3).unwrap();
    let cfg_path = dir.path().join("tokenizer_config.json");
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    let source = cfg.as_object_mut().unwrap().remove("chat_template").unwrap();
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let e = ml::load_model(dir.path()).err().expect("no template anywhere");
    assert!(e.to_string().contains("no chat template"), "{e}");
    std::fs::write(dir.path().join("chat_template.jinja"), source.as_str().unwrap()).unwrap();
    let lm = ml::load_model(dir.path()).unwrap();
    assert_eq!(lm.template.end_of_turn(), "<|eot_id|>");
}
