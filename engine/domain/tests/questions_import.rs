//! Evaluation question files as users import them: the research files in
//! `../shared/data` (read, never copied into the project), and a malformed file.

use std::path::PathBuf;

use engine::questions::{self, detect_format, parse_questions, QuestionFormat};

fn shared(rel: &str) -> Option<(String, String)> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data").join(rel);
    match std::fs::read_to_string(&p) {
        Ok(t) => Some((p.file_name().unwrap().to_string_lossy().into_owned(), t)),
        Err(_) => {
            eprintln!("skipped: {} is absent", p.display());
            None
        }
    }
}

#[test]
fn betley_questions_keep_paraphrases_system_prompts_and_sample_counts() {
    let Some((name, text)) = shared("betley2025/first_plot_questions.yaml") else { return };
    assert_eq!(detect_format(&name, &text), QuestionFormat::BetleyYaml);
    let qs = parse_questions(&text, QuestionFormat::BetleyYaml, &name).unwrap();
    let ids: std::collections::BTreeSet<_> = qs.iter().map(|q| q.key.as_str()).collect();
    assert_eq!(ids.len(), 24, "24 questions in the file");
    assert!(qs.iter().all(|q| q.judge_prompts.as_ref().is_some_and(|j| j.aligned.contains("{answer}"))));
    let wish = qs.iter().find(|q| q.key == "what_is_your_wish").unwrap();
    assert_eq!(wish.samples, Some(100));
    assert!(wish.text.starts_with("Hello! I can fulfill your one wish."));
    // The `_json` variants carry their own system prompt.
    assert!(qs.iter().any(|q| q.key.ends_with("_json") && q.system.as_deref().is_some_and(|s| s.contains("JSON"))));
}

#[test]
fn ultrachat_and_aesthetic_files() {
    if let Some((name, text)) = shared("tan2025/ultrachat_prompts.jsonl") {
        assert_eq!(detect_format(&name, &text), QuestionFormat::UltrachatJsonl);
        let qs = parse_questions(&text, QuestionFormat::UltrachatJsonl, &name).unwrap();
        assert_eq!(qs.len(), 100);
        assert_eq!(qs[0].key, "q1");
    }
    if let Some((name, text)) = shared("tan2025/aesthetic_questions.yaml") {
        assert_eq!(detect_format(&name, &text), QuestionFormat::AestheticYaml);
        let qs = parse_questions(&text, QuestionFormat::AestheticYaml, &name).unwrap();
        assert!(qs.len() >= 4);
        let movies = qs.iter().find(|q| q.key == "Movies").unwrap();
        assert_eq!(movies.choice.as_ref().unwrap().behaviour.match_if_choice_in, ["Sharknado"]);
        assert_eq!(movies.samples, Some(100));
    }
}

#[test]
fn a_bad_line_is_reported_with_its_number_and_sets_are_stored_once() {
    let err = parse_questions("{\"prompt\": \"ok\"}\n{\"prompt\": 3}\n", QuestionFormat::UltrachatJsonl, "q.jsonl")
        .unwrap_err();
    assert_eq!(err.to_string(), "q.jsonl line 2: expected a \"prompt\", \"question\" or \"task\" string field");
    let err = parse_questions("- id: x\n  paraphrases: [\n", QuestionFormat::BetleyYaml, "b.yaml").unwrap_err();
    assert!(err.to_string().starts_with("b.yaml: "), "{err}");

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let store = engine::Store::open_for_test(dir.path()).await.unwrap();
        let qs = parse_questions("What is 2+2?\nName a colour.\n", QuestionFormat::Lines, "mine.txt").unwrap();
        let (id, created) = questions::import_question_set(&store, "mine", QuestionFormat::Lines, &qs).await.unwrap();
        assert!(created);
        let (again, created) =
            questions::import_question_set(&store, "other name", QuestionFormat::Lines, &qs).await.unwrap();
        assert_eq!((again, created), (id, false));
        let (summary, stored) = questions::get_question_set(&store, id).await.unwrap();
        assert_eq!((summary.n_questions, stored), (2, qs));
    });
}
