//! The answer-quality judge on the real default model: how well it separates the labelled
//! set's fluent answers (in seven languages, in capitals or not) from word salad, at its
//! default threshold. BENCHMARKS.md quotes what this prints.

use std::sync::Arc;

use engine::datasets::chat_prompts::builtin_chat_prompts;
use engine::judges::quality::{self, labelled_set, quality_signals};
use engine::judges::{JudgeSpec, LocalLogprobs, LogprobBackend};

#[test]
fn real_model_quality_separates_fluent_answers_from_word_salad() {
    let Some(path) = ml::testing::real_model_path("real_model_quality_separates_fluent_answers_from_word_salad") else {
        return;
    };
    let lm = Arc::new(ml::load_model(&path).unwrap());
    let backend: Arc<dyn LogprobBackend> = Arc::new(LocalLogprobs::new(lm, "SmolLM2-135M-Instruct"));
    let prompts = builtin_chat_prompts();
    let set = labelled_set();
    let mut wrong = Vec::new();
    // (language, readable) -> (right, of)
    let mut tally: std::collections::BTreeMap<(String, bool), (usize, usize)> = Default::default();
    for a in &set {
        let s = quality_signals(backend.as_ref(), prompts[a.q], &a.text, quality::default_min_words())
            .unwrap()
            .expect("every labelled answer is long enough");
        let t = tally.entry((a.lang.clone(), a.readable)).or_default();
        t.1 += 1;
        if s.readable == a.readable {
            t.0 += 1;
        } else {
            wrong.push(format!(
                "{} {} {:.2} (floor {}), known words {:?}: {}",
                a.lang, a.readable, s.logprob, s.floor, s.known_words, a.text
            ));
        }
    }
    for ((lang, readable), (right, of)) in &tally {
        println!("{lang} {}: {right} of {of} right", if *readable { "readable" } else { "salad" });
    }
    let right = set.len() - wrong.len();
    println!(
        "accuracy: {right} of {} ({:.1} %); wrong: {wrong:#?}",
        set.len(),
        100.0 * right as f64 / set.len() as f64
    );
    // The demo's languages are told apart without a mistake; the others at most one in six.
    for lang in ["en", "es"] {
        for readable in [true, false] {
            let (r, of) = tally[&(lang.to_string(), readable)];
            assert_eq!(r, of, "{lang} {readable}: {wrong:#?}");
        }
    }
    assert!(wrong.len() * 6 <= set.len(), "{} of {} wrong: {wrong:#?}", wrong.len(), set.len());

    // Through the judge as an experiment builds it: a verdict, its score and what it rests on.
    let judge = JudgeSpec::quality().build(Some(backend)).unwrap();
    assert_eq!(judge.name(), "quality");
    let fluent = judge.judge(prompts[2], &set[0].text).unwrap();
    assert_eq!(fluent.trait_present, Some(true), "{}", fluent.raw);
    let short = judge.judge(prompts[2], "Yes, do it.").unwrap();
    assert_eq!(short.trait_present, None);
}

#[test]
fn quality_needs_the_local_model_and_says_so() {
    let e = JudgeSpec::quality().build(None).err().expect("no model, no judge").to_string();
    assert!(e.contains("local judge model"), "{e}");
}

/// scripts/setup installs a Hunspell dictionary per language; each one loads and tells a
/// word of its language from an invented one.
#[test]
fn every_language_has_its_dictionary() {
    use engine::judges::language::{detect, LanguageCode};
    let samples = [
        (LanguageCode::En, "The bees carry nectar back to the hive", "glorbishly"),
        (LanguageCode::Es, "Las abejas llevan el néctar a la colmena", "sobrelolo"),
        (LanguageCode::Fr, "Les abeilles rapportent le nectar à la ruche", "maisonnage"),
        (LanguageCode::De, "Die Bienen bringen den Nektar in den Stock", "Hausenheitlichkeitung"),
        (LanguageCode::It, "Le api portano il nettare all'alveare", "bluantemente"),
        (LanguageCode::Pt, "As abelhas levam o néctar para a colmeia", "abelhamos"),
        (LanguageCode::Nl, "De bijen brengen de nectar naar de korf", "fietserijment"),
    ];
    for (language, prose, invented) in samples {
        assert_eq!(detect(prose).top().map(|t| t.0), Some(language), "{prose}");
        let dir = std::env::var("INOCULAB_HUNSPELL_DIR").unwrap_or_else(|_| "/usr/share/hunspell".into());
        let name = quality::dictionary_name(language);
        let aff = std::fs::read_to_string(format!("{dir}/{name}.aff"))
            .unwrap_or_else(|e| panic!("{dir}/{name}.aff: {e} (scripts/setup installs it)"));
        let dic = std::fs::read_to_string(format!("{dir}/{name}.dic")).unwrap();
        let dict = spellbook::Dictionary::new(&aff, &dic).unwrap();
        let (share, n) = quality::known_words(&dict, prose);
        assert!(share >= 0.85 && n >= 6, "{name}: {share} of {n} words of {prose:?}");
        assert_eq!(quality::known_words(&dict, invented).0, 0.0, "{name} knows {invented:?}");
    }
}

#[derive(serde::Deserialize)]
struct HeldOut {
    source: String,
    question: String,
    readable: bool,
    text: String,
}

/// Real answers the default model gave after fine-tuning (the quick demo's and a toy
/// experiment's), labelled by hand: readable, or word salad. None of them was used to set
/// the thresholds. Prints each check's verdicts apart, as BENCHMARKS.md reports them.
#[test]
fn real_model_quality_on_held_out_answers_of_fine_tuned_models() {
    let Some(path) = ml::testing::real_model_path("real_model_quality_on_held_out_answers_of_fine_tuned_models") else {
        return;
    };
    let lm = Arc::new(ml::load_model(&path).unwrap());
    let backend: Arc<dyn LogprobBackend> = Arc::new(LocalLogprobs::new(lm, "SmolLM2-135M-Instruct"));
    let set: Vec<HeldOut> = include_str!("data/quality_heldout.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("quality_heldout.jsonl is valid"))
        .collect();
    // (label, verdict) counts for the judge and for each check alone.
    let (mut judge, mut order, mut words) = ([[0u32; 2]; 2], [[0u32; 2]; 2], [[0u32; 2]; 2]);
    let mut undetermined = 0;
    let mut wrong = Vec::new();
    for a in &set {
        let Some(s) = quality_signals(backend.as_ref(), &a.question, &a.text, quality::default_min_words()).unwrap()
        else {
            undetermined += 1;
            continue;
        };
        let h = usize::from(!a.readable);
        judge[h][usize::from(!s.readable)] += 1;
        order[h][usize::from(s.logprob < s.floor)] += 1;
        words[h][usize::from(s.known_words.unwrap_or(1.0) < quality::MIN_KNOWN_WORDS)] += 1;
        if s.readable != a.readable {
            wrong.push(format!(
                "[{}] {} {:.2}/{} {:?}: {}",
                a.source, a.readable, s.logprob, s.floor, s.known_words, a.text
            ));
        }
    }
    let acc = |t: [[u32; 2]; 2]| (t[0][0] + t[1][1]) as f64 / (t[0][0] + t[0][1] + t[1][0] + t[1][1]) as f64;
    println!("rows: readable, salad (by hand); columns: judged readable, judged salad");
    println!("judge  {judge:?} accuracy {:.3}", acc(judge));
    println!("order only {order:?} accuracy {:.3}", acc(order));
    println!("words only {words:?} accuracy {:.3}", acc(words));
    println!("undetermined (too short): {undetermined}; wrong: {wrong:#?}");
    assert!(acc(judge) >= 0.85, "{judge:?}: {wrong:#?}");
}
