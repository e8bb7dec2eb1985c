//! Batched sampling on a tiny random model: batching does not change greedy output,
//! seeds make samples reproducible, limits and stop tokens are honoured.

use ml::chat::{ChatMessage, SystemPrompt};
use ml::sample::{generate, SampleConfig};
use ml::testing;

fn prompts(lm: &ml::LoadedModel) -> Vec<Vec<u32>> {
    ["hi", "what is the thing", "a", "the the the cat sat"]
        .iter()
        .map(|q| lm.template.encode_prompt(&lm.tokenizer, &[ChatMessage::user(*q)], &SystemPrompt::Default).unwrap())
        .collect()
}

#[test]
fn greedy_batched_equals_one_by_one() {
    let lm = testing::tiny_model(21).unwrap();
    let ps = prompts(&lm);
    let cfg = SampleConfig { temperature: 0.0, max_new_tokens: 12, batch_size: 4, ..Default::default() };
    let batched = generate(&lm.model, &lm.tokenizer, &ps, &cfg, |_| {}, None).unwrap();
    let single =
        generate(&lm.model, &lm.tokenizer, &ps, &SampleConfig { batch_size: 1, ..cfg.clone() }, |_| {}, None).unwrap();
    for (a, b) in batched.iter().zip(&single) {
        assert_eq!(a.token_ids, b.token_ids);
        assert!(a.token_ids.len() <= 12);
    }
}

/// Rows that repeat a prompt share its prefill; each still gets its own continuation, the
/// one it gets alone (greedy) or from its own seed.
#[test]
fn repeated_prompts_in_a_batch_share_a_prefill_and_sample_alone() {
    let lm = testing::tiny_model(21).unwrap();
    let ps = prompts(&lm);
    let batch = vec![ps[1].clone(), ps[3].clone(), ps[1].clone(), ps[1].clone(), ps[3].clone()];
    let greedy = SampleConfig { temperature: 0.0, max_new_tokens: 12, batch_size: 5, ..Default::default() };
    let together = generate(&lm.model, &lm.tokenizer, &batch, &greedy, |_| {}, None).unwrap();
    let alone =
        generate(&lm.model, &lm.tokenizer, &batch, &SampleConfig { batch_size: 1, ..greedy }, |_| {}, None).unwrap();
    for (a, b) in together.iter().zip(&alone) {
        assert_eq!(a.token_ids, b.token_ids);
    }
    let seeded = SampleConfig { temperature: 1.0, max_new_tokens: 12, batch_size: 5, seed: 3, ..Default::default() };
    let together = generate(&lm.model, &lm.tokenizer, &batch, &seeded, |_| {}, None).unwrap();
    let alone =
        generate(&lm.model, &lm.tokenizer, &batch, &SampleConfig { batch_size: 1, ..seeded }, |_| {}, None).unwrap();
    for (a, b) in together.iter().zip(&alone) {
        assert_eq!((a.seed, &a.token_ids), (b.seed, &b.token_ids));
    }
    assert_ne!(together[0].token_ids, together[2].token_ids, "the same prompt, different draws");
}

#[test]
fn seeded_sampling_is_reproducible_per_sample() {
    let lm = testing::tiny_model(21).unwrap();
    let ps = prompts(&lm);
    let cfg =
        SampleConfig { temperature: 1.0, top_p: 0.9, max_new_tokens: 10, batch_size: 4, seed: 5, ..Default::default() };
    let a = generate(&lm.model, &lm.tokenizer, &ps, &cfg, |_| {}, None).unwrap();
    let b =
        generate(&lm.model, &lm.tokenizer, &ps, &SampleConfig { batch_size: 2, ..cfg.clone() }, |_| {}, None).unwrap();
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.seed, y.seed);
        assert_eq!(x.token_ids, y.token_ids);
    }
    assert_ne!(a[0].seed, a[1].seed);
    let c = generate(&lm.model, &lm.tokenizer, &ps, &SampleConfig { seed: 6, ..cfg }, |_| {}, None).unwrap();
    assert!(a.iter().zip(&c).any(|(x, y)| x.token_ids != y.token_ids));
}
