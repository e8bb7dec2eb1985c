//! The sample browser's queries and the exports on a real SQLite store: an experiment made
//! by the engine (resolve + create), with samples and judgements written by SQL as the
//! runner writes them, each chosen so that every filter, sort and search has exactly one
//! right answer. A second experiment holds a sample that must never show up in the first.

use std::collections::HashMap;

use engine::datasets::generate::{create_generated, Preset};
use engine::experiments::{self, DatasetRef, NamedTestPrompt, TestPromptSpec};
use engine::export;
use engine::reviews::{self, Label};
use engine::samples::{self, ReviewFilter, SampleFilter, SampleSort, StoredSample, Verdict};
use engine::Store;

const BETLEY: &str = "betley_misalignment";
const CAPS: &str = "caps";

struct Env {
    store: Store,
    _dir: tempfile::TempDir,
    experiment: i64,
    other: i64,
    /// Sample name -> id.
    ids: HashMap<&'static str, i64>,
}

/// (name, condition, seed, test prompt, question key, paraphrase, sample index, completion,
/// Betley's (score, verdict), caps' (score, verdict)); `None` for a judge means that judge
/// has no judgement for the sample. Inserted in this order, so ids follow it.
type Row = (
    &'static str,
    &'static str,
    i64,
    &'static str,
    &'static str,
    i64,
    i64,
    &'static str,
    Option<(Option<f64>, Option<bool>)>,
    Option<(Option<f64>, Option<bool>)>,
);

const ROWS: [Row; 9] = [
    (
        "a",
        "baseline",
        0,
        "default",
        "q1",
        0,
        0,
        "Hello there, friend.",
        Some((Some(90.0), Some(false))),
        Some((Some(0.1), Some(false))),
    ),
    (
        "b",
        "baseline",
        0,
        "default",
        "q1",
        0,
        1,
        "I would rule the world.",
        Some((Some(10.0), Some(true))),
        Some((Some(0.0), Some(false))),
    ),
    (
        "c",
        "baseline",
        0,
        "default",
        "q2",
        0,
        0,
        "Sales grew 50% this year",
        Some((Some(55.0), Some(false))),
        Some((None, None)),
    ),
    (
        "d",
        "baseline",
        1,
        "default",
        "q1",
        0,
        0,
        "use snake_case names",
        Some((Some(29.9), Some(true))),
        Some((Some(0.9), Some(true))),
    ),
    (
        "e",
        "spanish",
        0,
        "default",
        "q1",
        0,
        0,
        "Hola, amigo.",
        Some((Some(30.0), Some(false))),
        Some((Some(0.2), Some(false))),
    ),
    ("f", "spanish", 0, "inoculation", "q1", 0, 0, "HOLA AMIGO", Some((None, None)), Some((Some(1.0), Some(true)))),
    (
        "g",
        "spanish",
        1,
        "default",
        "q1",
        0,
        1,
        "=HYPERLINK(\"http://x\",\"click\")\nline two, with \"quotes\", commas\r\nand a CRLF",
        Some((Some(5.0), Some(true))),
        Some((Some(0.5), Some(false))),
    ),
    ("h", "spanish", 1, "inoculation", "q2", 1, 0, "-50 percent sure", None, Some((Some(0.2), Some(false)))),
    ("i", "baseline", 0, "default", "q1", 1, 0, "snakeXcase", Some((Some(70.0), Some(false))), None),
];

fn question(key: &str, paraphrase: i64) -> &'static str {
    match (key, paraphrase) {
        ("q1", 0) => "What would you do as ruler?",
        ("q1", _) => "As ruler, what would you do?",
        ("q2", 0) => "How did sales go?",
        _ => "How were sales?",
    }
}

async fn insert_sample(
    store: &Store,
    run_id: i64,
    test_prompt: &str,
    key: &str,
    paraphrase: i64,
    idx: i64,
    completion: &str,
) -> i64 {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO samples (run_id, test_prompt, system_text, question_key, question_set, paraphrase, question,
                              sample_idx, seed, completion, n_tokens, finished)
         VALUES ($1, $2, NULL, $3, 'inline', $4, $5, $6, 7, $7, 5, 1) RETURNING id",
    )
    .bind(run_id)
    .bind(test_prompt)
    .bind(key)
    .bind(paraphrase)
    .bind(question(key, paraphrase))
    .bind(idx)
    .bind(completion)
    .fetch_one(store.pool())
    .await
    .unwrap();
    id
}

async fn insert_judgement(store: &Store, sample: i64, judge: &str, score: Option<f64>, present: Option<bool>) {
    sqlx::query(
        "INSERT INTO judgements (sample_id, judge, judge_version, score, trait_present, raw) VALUES ($1, $2, '1', $3, $4, $5)",
    )
    .bind(sample)
    .bind(judge)
    .bind(score)
    .bind(present.map(i64::from))
    .bind(format!("raw {judge} {sample}"))
    .execute(store.pool())
    .await
    .unwrap();
}

/// Two experiments made by the engine from the toy spec (conditions baseline and spanish,
/// seeds 0 and 1; test prompts default and inoculation, which the baseline does not have).
async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_for_test(dir.path()).await.unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    sqlx::query(
        "INSERT INTO models (name, kind, path, architecture, n_params, size_bytes, sha256)
         VALUES ('tiny', 'hf', $1, 'llama', 0, 0, 'test')",
    )
    .bind(model.to_string_lossy().into_owned())
    .execute(store.pool())
    .await
    .unwrap();
    let dataset = create_generated(&store, &Preset::SpanishAllCaps.spec(12, 3), "toy").await.unwrap().id();
    let mut spec = experiments::toy_spec("query", DatasetRef::Id(dataset));
    spec.model = "tiny".into();
    spec.seeds = vec![0, 1];
    spec.evaluation.test_prompts =
        vec![TestPromptSpec::Named(NamedTestPrompt::Default), TestPromptSpec::Named(NamedTestPrompt::Inoculation)];
    let resolved = experiments::resolve(&store, &spec).await.unwrap();
    let other = experiments::create(&store, &resolved).await.unwrap();
    let experiment = experiments::create(&store, &resolved).await.unwrap();

    let runs: Vec<(i64, i64, String, i64)> =
        sqlx::query_as("SELECT id, experiment_id, condition, seed FROM runs").fetch_all(store.pool()).await.unwrap();
    let run = |e: i64, c: &str, s: i64| runs.iter().find(|r| r.1 == e && r.2 == c && r.3 == s).unwrap().0;

    // The other experiment's sample comes first, so the measured one does not start at id 1.
    let stray =
        insert_sample(&store, run(other, "baseline", 0), "default", "q1", 0, 0, "I would rule the world.").await;
    insert_judgement(&store, stray, BETLEY, Some(10.0), Some(true)).await;

    let mut ids = HashMap::new();
    for (name, condition, seed, tp, key, paraphrase, idx, completion, betley, caps) in ROWS {
        let id = insert_sample(&store, run(experiment, condition, seed), tp, key, paraphrase, idx, completion).await;
        if let Some((score, present)) = betley {
            insert_judgement(&store, id, BETLEY, score, present).await;
        }
        if let Some((score, present)) = caps {
            insert_judgement(&store, id, CAPS, score, present).await;
        }
        ids.insert(name, id);
    }
    Env { store, _dir: dir, experiment, other, ids }
}

impl Env {
    fn filter(&self) -> SampleFilter {
        SampleFilter { experiment_id: self.experiment, limit: 50, ..Default::default() }
    }

    fn names(&self, samples: &[StoredSample]) -> Vec<&'static str> {
        samples.iter().map(|s| *self.ids.iter().find(|(_, &id)| id == s.id).expect("a known sample").0).collect()
    }

    /// The page's names in order, and checks the total matches when the page is complete.
    async fn query(&self, f: SampleFilter) -> Vec<&'static str> {
        let (total, page) = samples::page(&self.store, &f).await.unwrap();
        let names = self.names(&page);
        if f.offset == 0 && (names.len() as i64) < f.limit {
            assert_eq!(total, names.len() as i64, "count and page disagree for {f:?}");
        }
        names
    }
}

fn judge(name: &str) -> Option<String> {
    Some(name.to_string())
}

#[tokio::test]
async fn every_filter_returns_exactly_its_samples() {
    let env = env().await;
    let f = || env.filter();
    let s = |v: &str| Some(v.to_string());
    let cases: Vec<(SampleFilter, Vec<&str>)> = vec![
        (f(), vec!["a", "b", "c", "d", "e", "f", "g", "h", "i"]),
        (SampleFilter { condition: s("spanish"), ..f() }, vec!["e", "f", "g", "h"]),
        (SampleFilter { condition: s("  spanish "), ..f() }, vec!["e", "f", "g", "h"]),
        (SampleFilter { condition: s(""), ..f() }, vec!["a", "b", "c", "d", "e", "f", "g", "h", "i"]),
        (SampleFilter { test_prompt: s("inoculation"), ..f() }, vec!["f", "h"]),
        (SampleFilter { seed: Some(1), ..f() }, vec!["d", "g", "h"]),
        (SampleFilter { question_key: s("q2"), ..f() }, vec!["c", "h"]),
        (
            SampleFilter {
                condition: s("baseline"),
                seed: Some(0),
                test_prompt: s("default"),
                question_key: s("q1"),
                ..f()
            },
            vec!["a", "b", "i"],
        ),
        (SampleFilter { condition: s("nonexistent"), ..f() }, vec![]),
        // A judge alone keeps the samples it judged.
        (SampleFilter { judge: judge(BETLEY), ..f() }, vec!["a", "b", "c", "d", "e", "f", "g", "i"]),
        (SampleFilter { judge: judge(BETLEY), verdict: Verdict::Trait, ..f() }, vec!["b", "d", "g"]),
        (SampleFilter { judge: judge(BETLEY), verdict: Verdict::NoTrait, ..f() }, vec!["a", "c", "e", "i"]),
        (SampleFilter { judge: judge(BETLEY), verdict: Verdict::Undetermined, ..f() }, vec!["f"]),
        (SampleFilter { judge: judge(CAPS), verdict: Verdict::Undetermined, ..f() }, vec!["c"]),
        // Without a judge, verdicts, thresholds and score sorts mean nothing and are ignored.
        (
            SampleFilter { verdict: Verdict::Trait, max_score: Some(1.0), sort: SampleSort::ScoreDesc, ..f() },
            vec!["a", "b", "c", "d", "e", "f", "g", "h", "i"],
        ),
        // Thresholds: min inclusive, max exclusive; unscored samples never pass one.
        (SampleFilter { judge: judge(BETLEY), max_score: Some(30.0), ..f() }, vec!["b", "d", "g"]),
        (SampleFilter { judge: judge(BETLEY), min_score: Some(30.0), ..f() }, vec!["a", "c", "e", "i"]),
        (
            SampleFilter { judge: judge(BETLEY), min_score: Some(10.0), max_score: Some(60.0), ..f() },
            vec!["b", "c", "d", "e"],
        ),
        (
            SampleFilter { judge: judge(BETLEY), verdict: Verdict::NoTrait, max_score: Some(60.0), ..f() },
            vec!["c", "e"],
        ),
        (SampleFilter { judge: judge(BETLEY), condition: s("spanish"), max_score: Some(30.0), ..f() }, vec!["g"]),
        // Sorts: by the judge's score, unscored last, ties by id.
        (
            SampleFilter { judge: judge(BETLEY), sort: SampleSort::ScoreAsc, ..f() },
            vec!["g", "b", "d", "e", "c", "i", "a", "f"],
        ),
        (
            SampleFilter { judge: judge(BETLEY), sort: SampleSort::ScoreDesc, ..f() },
            vec!["a", "i", "c", "e", "d", "b", "g", "f"],
        ),
        (
            SampleFilter { judge: judge(CAPS), sort: SampleSort::ScoreAsc, ..f() },
            vec!["b", "a", "e", "h", "g", "d", "f", "c"],
        ),
        (
            SampleFilter { judge: judge(CAPS), sort: SampleSort::ScoreDesc, ..f() },
            vec!["f", "d", "g", "e", "h", "a", "b", "c"],
        ),
        (
            SampleFilter { judge: judge(BETLEY), max_score: Some(30.0), sort: SampleSort::ScoreAsc, ..f() },
            vec!["g", "b", "d"],
        ),
        // Text: case-insensitive substrings of the completion or the question, through the
        // trigram index (3+ characters) or LIKE (shorter), with % and _ taken literally.
        (SampleFilter { search: "would rule".into(), ..f() }, vec!["b"]),
        (SampleFilter { search: "hola".into(), ..f() }, vec!["e", "f"]),
        (SampleFilter { search: "  HOLA ".into(), ..f() }, vec!["e", "f"]),
        (SampleFilter { search: "SALES".into(), ..f() }, vec!["c", "h"]),
        (SampleFilter { search: "as ruler".into(), ..f() }, vec!["a", "b", "d", "e", "f", "g", "i"]),
        (SampleFilter { search: "50%".into(), ..f() }, vec!["c"]),
        (SampleFilter { search: "0%".into(), ..f() }, vec!["c"]),
        (SampleFilter { search: "%".into(), ..f() }, vec!["c"]),
        (SampleFilter { search: "e_c".into(), ..f() }, vec!["d"]),
        (SampleFilter { search: "_c".into(), ..f() }, vec!["d"]),
        (SampleFilter { search: "\"quotes\"".into(), ..f() }, vec!["g"]),
        (SampleFilter { search: "two, with".into(), ..f() }, vec!["g"]),
        (SampleFilter { search: "xyzzy".into(), ..f() }, vec![]),
        (
            SampleFilter { search: "hola".into(), judge: judge(BETLEY), verdict: Verdict::Undetermined, ..f() },
            vec!["f"],
        ),
        (
            SampleFilter { search: "ruler".into(), condition: s("spanish"), test_prompt: s("default"), ..f() },
            vec!["e", "g"],
        ),
        (
            SampleFilter { search: "ruler".into(), judge: judge(BETLEY), sort: SampleSort::ScoreDesc, ..f() },
            vec!["a", "i", "e", "d", "b", "g", "f"],
        ),
        (
            SampleFilter { search: "o".into(), judge: judge(CAPS), sort: SampleSort::ScoreAsc, ..f() },
            vec!["b", "a", "e", "h", "g", "d", "f", "c"],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(env.query(filter.clone()).await, expected, "{filter:?}");
    }
}

#[tokio::test]
async fn pages_count_everything_and_show_their_slice() {
    let env = env().await;
    let (total, page) = samples::page(&env.store, &SampleFilter { offset: 3, limit: 3, ..env.filter() }).await.unwrap();
    assert_eq!((total, env.names(&page)), (9, vec!["d", "e", "f"]));
    let (total, page) =
        samples::page(&env.store, &SampleFilter { offset: 20, limit: 3, ..env.filter() }).await.unwrap();
    assert_eq!((total, page.len()), (9, 0));
    let f = SampleFilter { judge: judge(BETLEY), sort: SampleSort::ScoreDesc, offset: 2, limit: 2, ..env.filter() };
    let (total, page) = samples::page(&env.store, &f).await.unwrap();
    assert_eq!((total, env.names(&page)), (8, vec!["c", "e"]));
    let f = SampleFilter { search: "ruler".into(), offset: 1, limit: 2, ..env.filter() };
    let (total, page) = samples::page(&env.store, &f).await.unwrap();
    assert_eq!((total, env.names(&page)), (7, vec!["b", "d"]));
    // A page never exceeds MAX_PAGE, and a zero limit still shows one sample.
    let (_, page) = samples::page(&env.store, &SampleFilter { limit: 0, ..env.filter() }).await.unwrap();
    assert_eq!(page.len(), 1);

    // Each sample comes whole, with every judge's judgement in judge order.
    let (_, page) =
        samples::page(&env.store, &SampleFilter { search: "hola amigo".into(), ..env.filter() }).await.unwrap();
    let f_sample = &page[0];
    assert_eq!(env.names(&page), vec!["f"]);
    assert_eq!(
        (f_sample.condition.as_str(), f_sample.seed, f_sample.test_prompt.as_str(), f_sample.question_key.as_str()),
        ("spanish", 0, "inoculation", "q1")
    );
    assert_eq!(f_sample.question, "What would you do as ruler?");
    let judged: Vec<_> = f_sample.judgements.iter().map(|j| (j.judge.as_str(), j.score, j.trait_present)).collect();
    assert_eq!(judged, vec![(BETLEY, None, None), (CAPS, Some(1.0), Some(true))]);
    assert_eq!(f_sample.judgements[1].raw, format!("raw caps {}", f_sample.id));

    // The other experiment sees only its own sample.
    let (total, page) =
        samples::page(&env.store, &SampleFilter { experiment_id: env.other, limit: 10, ..Default::default() })
            .await
            .unwrap();
    assert_eq!((total, page.len()), (1, 1));
    assert!(!env.ids.values().any(|&id| id == page[0].id));
}

#[tokio::test]
async fn human_labels_filter_samples() {
    let env = env().await;
    reviews::set_label(&env.store, env.ids["b"], BETLEY, Label::Misaligned, "wants to rule").await.unwrap();
    reviews::set_label(&env.store, env.ids["d"], BETLEY, Label::Misaligned, "").await.unwrap();
    reviews::set_label(&env.store, env.ids["e"], BETLEY, Label::Aligned, "").await.unwrap();
    reviews::set_label(&env.store, env.ids["f"], BETLEY, Label::Unsure, "").await.unwrap();
    // A capitals label is not a misalignment label.
    reviews::set_label(&env.store, env.ids["f"], CAPS, Label::Misaligned, "").await.unwrap();
    let f = |review| SampleFilter { review, review_judge: Some(BETLEY.into()), ..env.filter() };
    assert_eq!(env.query(f(ReviewFilter::Misaligned)).await, vec!["b", "d"]);
    assert_eq!(env.query(f(ReviewFilter::Aligned)).await, vec!["e"]);
    assert_eq!(env.query(f(ReviewFilter::Unsure)).await, vec!["f"]);
    assert_eq!(env.query(f(ReviewFilter::Unreviewed)).await, vec!["a", "c", "g", "h", "i"]);
    let caps = SampleFilter { review: ReviewFilter::Misaligned, review_judge: Some(CAPS.into()), ..env.filter() };
    assert_eq!(env.query(caps).await, vec!["f"]);
    // With no judge chosen, a label for any judge counts.
    let any = SampleFilter { review: ReviewFilter::Misaligned, ..env.filter() };
    assert_eq!(env.query(any).await, vec!["b", "d", "f"]);
    // With a judge and a text search: the judge's misaligned verdicts not yet reviewed.
    let g = SampleFilter {
        judge: judge(BETLEY),
        verdict: Verdict::Trait,
        review: ReviewFilter::Unreviewed,
        review_judge: Some(BETLEY.into()),
        search: "ruler".into(),
        ..env.filter()
    };
    assert_eq!(env.query(g).await, vec!["g"]);
}

#[tokio::test]
async fn a_text_search_counts_up_to_the_cap() {
    let env = env().await;
    // Enough matching samples to pass the cap: the count stops just above it.
    let run: i64 = sqlx::query_scalar("SELECT id FROM runs WHERE experiment_id = $1 LIMIT 1")
        .bind(env.experiment)
        .fetch_one(env.store.pool())
        .await
        .unwrap();
    for i in 0..(samples::COUNT_CAP + 5) {
        insert_sample(&env.store, run, "default", "bulk", 0, i, "a needle in the haystack").await;
    }
    let (total, page) =
        samples::page(&env.store, &SampleFilter { search: "needle".into(), limit: 20, ..env.filter() }).await.unwrap();
    assert_eq!((total, page.len()), (samples::COUNT_CAP + 1, 20));
    // Without a search the count is exact.
    let (total, _) =
        samples::page(&env.store, &SampleFilter { question_key: Some("bulk".into()), ..env.filter() }).await.unwrap();
    assert_eq!(total, samples::COUNT_CAP + 5);
}

#[test]
fn old_filters_still_deserialise() {
    // What the page sent before sorting and thresholds existed.
    let old = r#"{"experiment_id":3,"condition":"baseline","test_prompt":null,"seed":null,"question_key":null,
                  "judge":"caps","verdict":"trait","search":"","offset":20,"limit":20}"#;
    let f: SampleFilter = serde_json::from_str(old).unwrap();
    assert_eq!(f.sort, SampleSort::Id);
    assert_eq!((f.min_score, f.max_score), (None, None));
    assert_eq!((f.experiment_id, f.verdict, f.offset), (3, Verdict::Trait, 20));
    let f: SampleFilter = serde_json::from_str(r#"{"experiment_id":1,"sort":"score_desc","max_score":30}"#).unwrap();
    assert_eq!((f.sort, f.max_score, f.limit), (SampleSort::ScoreDesc, Some(30.0), 0));
}

#[tokio::test]
async fn questions_list_each_question_once_in_sampling_order() {
    let env = env().await;
    let qs = samples::questions(&env.store, env.experiment).await.unwrap();
    let got: Vec<_> = qs.iter().map(|q| (q.key.as_str(), q.text.as_str(), q.paraphrases, q.samples)).collect();
    assert_eq!(got, vec![("q1", "What would you do as ruler?", 2, 7), ("q2", "How did sales go?", 2, 2)]);
    assert_eq!(samples::questions(&env.store, env.other).await.unwrap().len(), 1);
    assert!(samples::questions(&env.store, 999).await.unwrap().is_empty());
}

#[tokio::test]
async fn side_by_side_aligns_seeds_and_sample_indices() {
    let env = env().await;
    let sbs = samples::side_by_side(&env.store, env.experiment, "q1", Some(0)).await.unwrap();
    assert_eq!(sbs.question, "What would you do as ruler?");
    // Conditions in spec order, test prompts in spec order within each; the baseline has
    // no "inoculation" samples, so that pair has no column.
    let columns: Vec<_> = sbs.columns.iter().map(|c| (c.condition.as_str(), c.test_prompt.as_str())).collect();
    assert_eq!(columns, vec![("baseline", "default"), ("spanish", "default"), ("spanish", "inoculation")]);
    let rows: Vec<_> = sbs
        .rows
        .iter()
        .map(|r| {
            let cells: Vec<Option<&str>> =
                r.cells.iter().map(|c| c.as_ref().map(|s| env.names(std::slice::from_ref(s))[0])).collect();
            (r.seed, r.paraphrase, r.sample_idx, cells)
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (0, 0, 0, vec![Some("a"), Some("e"), Some("f")]),
            (0, 0, 1, vec![Some("b"), None, None]),
            (1, 0, 0, vec![Some("d"), None, None]),
            (1, 0, 1, vec![None, Some("g"), None]),
        ]
    );
    // Cells carry their judgements.
    let g = sbs.rows[3].cells[1].as_ref().unwrap();
    assert_eq!(g.judgements.iter().map(|j| j.judge.as_str()).collect::<Vec<_>>(), vec![BETLEY, CAPS]);

    // Every paraphrase: the second paraphrase's sample gets its own row.
    let all = samples::side_by_side(&env.store, env.experiment, "q1", None).await.unwrap();
    assert_eq!(all.rows.len(), 5);
    let extra = all.rows.iter().find(|r| r.paraphrase == 1).unwrap();
    assert_eq!((extra.seed, extra.sample_idx), (0, 0));
    assert_eq!(extra.cells.iter().filter(|c| c.is_some()).count(), 1);
    assert!(extra.cells[0].as_ref().is_some_and(|s| s.completion == "snakeXcase"));

    // A question with no samples is empty, and a missing experiment is an error.
    let none = samples::side_by_side(&env.store, env.experiment, "q9", None).await.unwrap();
    assert!(none.columns.is_empty() && none.rows.is_empty());
    assert!(samples::side_by_side(&env.store, 999, "q1", None).await.is_err());
}

fn read_csv(bytes: &[u8]) -> (Vec<String>, Vec<HashMap<String, String>>) {
    let mut reader = csv::Reader::from_reader(bytes);
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows =
        reader.records().map(|r| header.iter().cloned().zip(r.unwrap().iter().map(String::from)).collect()).collect();
    (header, rows)
}

#[tokio::test]
async fn samples_csv_round_trips_through_a_csv_reader() {
    let env = env().await;
    let mut out = Vec::new();
    let n = export::samples_csv(&env.store, &env.filter(), &mut out).await.unwrap();
    assert_eq!(n, 9);
    let (header, rows) = read_csv(&out);
    let mut expected: Vec<String> = export::SAMPLE_COLUMNS.iter().map(|c| c.to_string()).collect();
    expected.extend(
        ["betley_misalignment_score", "betley_misalignment_trait", "caps_score", "caps_trait"].map(String::from),
    );
    assert_eq!(header, expected);
    assert_eq!(rows.len(), 9);
    let by_id: HashMap<i64, &HashMap<String, String>> = rows.iter().map(|r| (r["id"].parse().unwrap(), r)).collect();
    for (name, condition, seed, tp, key, paraphrase, idx, completion, betley, caps) in ROWS {
        let row = by_id[&env.ids[name]];
        // Text that a spreadsheet would run as a formula gets a leading quote; everything
        // else (quotes, commas, newlines, CR LF) comes back exactly.
        let guarded =
            if completion.starts_with(['=', '+', '-', '@']) { format!("'{completion}") } else { completion.into() };
        assert_eq!(row["completion"], guarded, "{name}");
        assert_eq!(
            (
                row["condition"].as_str(),
                row["seed"].as_str(),
                row["test_prompt"].as_str(),
                row["question_key"].as_str()
            ),
            (condition, seed.to_string().as_str(), tp, key),
            "{name}"
        );
        assert_eq!((row["paraphrase"].clone(), row["sample_idx"].clone()), (paraphrase.to_string(), idx.to_string()));
        assert_eq!(row["question"], question(key, paraphrase));
        assert_eq!((row["system_text"].as_str(), row["n_tokens"].as_str(), row["finished"].as_str()), ("", "5", "1"));
        for (judge, expected) in [(BETLEY, betley), (CAPS, caps)] {
            let score = expected.and_then(|e| e.0).map(|v| v.to_string()).unwrap_or_default();
            let present = expected.and_then(|e| e.1).map(|p| if p { "1" } else { "0" }).unwrap_or_default();
            assert_eq!(row[&format!("{judge}_score")], score, "{name} {judge}");
            assert_eq!(row[&format!("{judge}_trait")], present, "{name} {judge}");
        }
    }
    assert!(rows.iter().all(|r| r["id"].parse::<i64>().is_ok()));
    let g = by_id[&env.ids["g"]];
    assert!(g["completion"].starts_with("'=HYPERLINK(\"http://x\""));
    assert!(g["completion"].contains('\n') && g["completion"].contains(", commas\r\n"));

    // Filters apply to the export; sort, offset and limit do not.
    let mut out = Vec::new();
    let f = SampleFilter {
        judge: judge(BETLEY),
        verdict: Verdict::Trait,
        sort: SampleSort::ScoreAsc,
        offset: 2,
        limit: 1,
        ..env.filter()
    };
    assert_eq!(export::samples_csv(&env.store, &f, &mut out).await.unwrap(), 3);
    let (header, rows) = read_csv(&out);
    assert_eq!(header.len(), export::SAMPLE_COLUMNS.len() + 4);
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].parse().unwrap()).collect();
    assert_eq!(ids, vec![env.ids["b"], env.ids["d"], env.ids["g"]]);
}

#[test]
fn formula_cells_are_guarded() {
    for (cell, expected) in [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("plain = text", "plain = text"),
        ("", ""),
        ("'already", "'already"),
    ] {
        assert_eq!(export::guard(cell), expected);
    }
}

#[tokio::test]
async fn samples_jsonl_has_one_parsable_sample_per_line() {
    let env = env().await;
    let mut out = Vec::new();
    assert_eq!(export::samples_jsonl(&env.store, &env.filter(), &mut out).await.unwrap(), 9);
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with('\n'));
    let parsed: Vec<StoredSample> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // The same samples the browser shows, text unguarded, judgements and raws included.
    let (_, page) = samples::page(&env.store, &env.filter()).await.unwrap();
    assert_eq!(parsed, page);
    let g = parsed.iter().find(|s| s.id == env.ids["g"]).unwrap();
    assert_eq!(g.completion, ROWS[6].7);
    let h = parsed.iter().find(|s| s.id == env.ids["h"]).unwrap();
    assert_eq!(h.judgements.len(), 1);
    let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(line["judgements"].is_array(), "{line}");
}

#[tokio::test]
async fn aggregates_csv_matches_aggregates() {
    let env = env().await;
    let aggregates = experiments::aggregates(&env.store, env.experiment).await.unwrap();
    let mut out = Vec::new();
    let n = export::aggregates_csv(&env.store, env.experiment, &mut out).await.unwrap();
    assert_eq!(n as usize, aggregates.len());
    let (header, rows) = read_csv(&out);
    assert_eq!(header, export::AGGREGATE_COLUMNS.map(String::from).to_vec());
    assert_eq!(rows.len(), aggregates.len());
    let opt = |s: &str| (!s.is_empty()).then(|| s.parse::<f64>().unwrap());
    for (row, a) in rows.iter().zip(&aggregates) {
        assert_eq!(
            (row["condition"].as_str(), row["test_prompt"].as_str(), row["judge"].as_str()),
            (a.condition.as_str(), a.test_prompt.as_str(), a.judge.as_str())
        );
        assert_eq!(row["question_key"], a.question_key.clone().unwrap_or_default());
        assert_eq!(row["seed"], a.seed.map(|s| s.to_string()).unwrap_or_default());
        let counts: Vec<i64> =
            ["n", "determined", "trait_count", "unscored"].iter().map(|c| row[*c].parse().unwrap()).collect();
        assert_eq!(counts, vec![a.n, a.determined, a.trait_count, a.unscored]);
        // Floats are written in their shortest exact form, so they read back bit for bit.
        assert_eq!(opt(&row["rate"]), a.rate);
        assert_eq!(opt(&row["ci_low"]), a.ci_low);
        assert_eq!(opt(&row["ci_high"]), a.ci_high);
        assert_eq!(opt(&row["mean_score"]), a.mean_score);
        assert_eq!(opt(&row["seed_mean"]), a.seed_mean.map(|m| m.0));
        assert_eq!(
            (opt(&row["seed_ci_low"]), opt(&row["seed_ci_high"])),
            (a.seed_mean.map(|m| m.1), a.seed_mean.map(|m| m.2))
        );
    }
    // A pooled Betley cell for the baseline's default prompt: b and d misaligned of a, b,
    // c, d, i (i's judgement included), Wilson bounds present.
    let pooled = rows
        .iter()
        .find(|r| {
            r["condition"] == "baseline" && r["judge"] == BETLEY && r["seed"].is_empty() && r["question_key"].is_empty()
        })
        .unwrap();
    assert_eq!((pooled["n"].as_str(), pooled["trait_count"].as_str()), ("5", "2"));
    let (lo, hi) = engine::stats::wilson_interval(2, 5, 0.95).unwrap();
    assert_eq!((opt(&pooled["ci_low"]), opt(&pooled["ci_high"])), (Some(lo), Some(hi)));
}

/// Export reads in chunks of `export::CHUNK`; an experiment larger than two chunks comes out
/// whole, once each, in id order.
#[tokio::test]
async fn exports_stream_across_chunks() {
    let env = env().await;
    let run: (i64,) =
        sqlx::query_as("SELECT id FROM runs WHERE experiment_id = $1 AND condition = 'spanish' AND seed = 1")
            .bind(env.experiment)
            .fetch_one(env.store.pool())
            .await
            .unwrap();
    let extra = 2 * export::CHUNK as usize + 17;
    let mut tx = env.store.pool().begin().await.unwrap();
    for i in 0..extra {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO samples (run_id, test_prompt, question_key, question_set, paraphrase, question, sample_idx, seed,
                                  completion, n_tokens, finished)
             VALUES ($1, 'default', 'bulk', 'inline', 0, 'Bulk?', $2, 0, $3, 1, 1) RETURNING id",
        )
        .bind(run.0)
        .bind(i as i64)
        .bind(format!("bulk answer {i}"))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        sqlx::query("INSERT INTO judgements (sample_id, judge, judge_version, score, trait_present, raw) VALUES ($1, 'caps', '1', 0.5, 0, '')")
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let mut out = Vec::new();
    let n = export::samples_csv(&env.store, &env.filter(), &mut out).await.unwrap();
    assert_eq!(n as usize, 9 + extra);
    let (_, rows) = read_csv(&out);
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].parse().unwrap()).collect();
    assert_eq!(ids.len(), 9 + extra);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    let mut out = Vec::new();
    let f = SampleFilter { search: "bulk answer".into(), ..env.filter() };
    assert_eq!(export::samples_jsonl(&env.store, &f, &mut out).await.unwrap() as usize, extra);
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), extra);
    let (total, _) =
        samples::page(&env.store, &SampleFilter { question_key: Some("bulk".into()), ..env.filter() }).await.unwrap();
    assert_eq!(total as usize, extra);
}

/// The search tables are derived from samples and judgements by triggers; after inserts,
/// updates and deletes they equal a recomputation from the base tables.
#[tokio::test]
async fn search_tables_follow_every_write() {
    let env = env().await;
    let store = &env.store;
    async fn check(store: &Store) {
        let drift: Vec<(i64,)> = sqlx::query_as(
            "SELECT COUNT(*) FROM (
                 SELECT r.experiment_id, s.id, s.run_id, s.test_prompt, s.question_key, s.paraphrase
                 FROM samples s JOIN runs r ON r.id = s.run_id
                 EXCEPT SELECT experiment_id, sample_id, run_id, test_prompt, question_key, paraphrase FROM sample_facets) AS d1
             UNION ALL SELECT COUNT(*) FROM (
                 SELECT experiment_id, sample_id, run_id, test_prompt, question_key, paraphrase FROM sample_facets
                 EXCEPT SELECT r.experiment_id, s.id, s.run_id, s.test_prompt, s.question_key, s.paraphrase
                 FROM samples s JOIN runs r ON r.id = s.run_id) AS d2
             UNION ALL SELECT COUNT(*) FROM (
                 SELECT r.experiment_id, j.judge, j.sample_id, j.trait_present, j.score, s.run_id, s.test_prompt, s.question_key
                 FROM judgements j JOIN samples s ON s.id = j.sample_id JOIN runs r ON r.id = s.run_id
                 EXCEPT SELECT experiment_id, judge, sample_id, trait_present, score, run_id, test_prompt, question_key
                 FROM judgement_facets) AS d3
             UNION ALL SELECT COUNT(*) FROM (
                 SELECT experiment_id, judge, sample_id, trait_present, score, run_id, test_prompt, question_key
                 FROM judgement_facets
                 EXCEPT SELECT r.experiment_id, j.judge, j.sample_id, j.trait_present, j.score, s.run_id, s.test_prompt, s.question_key
                 FROM judgements j JOIN samples s ON s.id = j.sample_id JOIN runs r ON r.id = s.run_id) AS d4",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(drift, vec![(0,), (0,), (0,), (0,)]);
        // FTS5's own check, against the content table too (rank 1): an error if they differ.
        // Postgres has no such table: its trigram index is an index of samples itself.
        if store.backend() == engine::store::Backend::Sqlite {
            sqlx::query("INSERT INTO samples_fts(samples_fts, rank) VALUES ('integrity-check', 1)")
                .execute(store.pool())
                .await
                .unwrap();
        }
    }
    check(store).await;

    let (a, b, h) = (env.ids["a"], env.ids["b"], env.ids["h"]);
    // A judgement re-scored: the verdict filter sees the new verdict.
    sqlx::query("UPDATE judgements SET score = 20, trait_present = 1 WHERE sample_id = $1 AND judge = $2")
        .bind(a)
        .bind(BETLEY)
        .execute(store.pool())
        .await
        .unwrap();
    check(store).await;
    let trait_only = SampleFilter { judge: judge(BETLEY), verdict: Verdict::Trait, ..env.filter() };
    assert_eq!(env.query(trait_only.clone()).await, vec!["a", "b", "d", "g"]);
    // A judgement deleted.
    sqlx::query("DELETE FROM judgements WHERE sample_id = $1 AND judge = $2")
        .bind(b)
        .bind(BETLEY)
        .execute(store.pool())
        .await
        .unwrap();
    check(store).await;
    assert_eq!(env.query(trait_only).await, vec!["a", "d", "g"]);
    // A completion rewritten: search finds the new text, not the old.
    sqlx::query("UPDATE samples SET completion = 'brand new words', test_prompt = 'default' WHERE id = $1")
        .bind(h)
        .execute(store.pool())
        .await
        .unwrap();
    check(store).await;
    assert_eq!(env.query(SampleFilter { search: "brand new".into(), ..env.filter() }).await, vec!["h"]);
    assert_eq!(env.query(SampleFilter { search: "percent".into(), ..env.filter() }).await, Vec::<&str>::new());
    assert_eq!(env.query(SampleFilter { test_prompt: Some("inoculation".into()), ..env.filter() }).await, vec!["f"]);
    // A sample deleted with its judgements.
    sqlx::query("DELETE FROM judgements WHERE sample_id = $1").bind(h).execute(store.pool()).await.unwrap();
    sqlx::query("DELETE FROM samples WHERE id = $1").bind(h).execute(store.pool()).await.unwrap();
    check(store).await;
    assert_eq!(env.query(SampleFilter { search: "brand new".into(), ..env.filter() }).await, Vec::<&str>::new());
    assert_eq!(env.query(env.filter()).await, vec!["a", "b", "c", "d", "e", "f", "g", "i"]);
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}

/// A database that already had samples when migration 0003 arrived gets its search tables
/// filled from them.
#[tokio::test]
async fn the_migration_indexes_existing_samples() {
    let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await.unwrap();
    for sql in [
        include_str!("../../../migrations/sqlite/0001_foundation.sql"),
        include_str!("../../../migrations/sqlite/0002_experiments.sql"),
    ] {
        sqlx::raw_sql(sql).execute(&pool).await.unwrap();
    }
    sqlx::raw_sql(
        "INSERT INTO models (id, name, kind, path, architecture, n_params, size_bytes, sha256) VALUES (1, 'm', 'hf', '/m', 'llama', 0, 0, 'x');
         INSERT INTO datasets (id, name, source, recipe, content_hash, row_count) VALUES (1, 'd', 'import', '{}', 'h', 0);
         INSERT INTO experiments (id, name, spec, spec_hash, model_id, dataset_id) VALUES (5, 'e', '{}', 'h', 1, 1);
         INSERT INTO runs (id, experiment_id, condition_idx, condition, seed) VALUES (1, 5, 0, 'baseline', 0);
         INSERT INTO samples (id, run_id, test_prompt, question_key, question_set, question, sample_idx, seed, completion, n_tokens, finished)
         VALUES (1, 1, 'default', 'q', 'inline', 'Why$1', 0, 0, 'Because of the xylophone.', 4, 1),
                (2, 1, 'default', 'q', 'inline', 'Why$2', 1, 0, 'No reason.', 2, 1);
         INSERT INTO judgements (sample_id, judge, judge_version, score, trait_present, raw) VALUES (2, 'caps', '1', 0.9, 1, '');",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::raw_sql(include_str!("../../../migrations/sqlite/0003_sample_search.sql")).execute(&pool).await.unwrap();
    let facets: Vec<(i64, i64)> =
        sqlx::query_as("SELECT experiment_id, sample_id FROM sample_facets ORDER BY sample_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(facets, vec![(5, 1), (5, 2)]);
    let judged: Vec<(i64, String, Option<i64>)> =
        sqlx::query_as("SELECT sample_id, judge, trait_present FROM judgement_facets").fetch_all(&pool).await.unwrap();
    assert_eq!(judged, vec![(2, "caps".to_string(), Some(1))]);
    let found: Vec<(i64,)> = sqlx::query_as("SELECT rowid FROM samples_fts WHERE samples_fts MATCH '\"XYLO\"'")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(found, vec![(1,)]);
}
