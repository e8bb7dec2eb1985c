//! Human review on a real SQLite store (migrations included): labels, pins, and each
//! judge's agreement with the human labels checked against tables counted by hand.
//!
//! Experiments, runs, samples and judgements are inserted with SQL rather than made by a
//! model run: what is under test is reading them back and counting, and the rows have the
//! same shape the runner writes (experiments_loop.rs tests that part).

use engine::reviews::{self, JudgeAgreement, Label, ReviewError, ReviewProgress};
use engine::Store;

struct Env {
    store: Store,
    _dir: tempfile::TempDir,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_for_test(dir.path()).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO models (id, name, kind, path, architecture, n_params, size_bytes, sha256)
         VALUES (1, 'tiny', 'hf', '/nowhere', 'llama', 0, 0, 'test');
         INSERT INTO datasets (id, name, source, recipe, content_hash, row_count)
         VALUES (1, 'toy', 'import', '{}', 'hash', 0);",
    )
    .execute(store.pool())
    .await
    .unwrap();
    Env { store, _dir: dir }
}

/// An experiment with one run per condition (seed 0); returns the run ids in order.
async fn experiment(env: &Env, id: i64, conditions: &[&str]) -> Vec<i64> {
    sqlx::query(
        "INSERT INTO experiments (id, name, spec, spec_hash, model_id, dataset_id) VALUES ($1, $2, '{}', 'h', 1, 1)",
    )
    .bind(id)
    .bind(format!("experiment {id}"))
    .execute(env.store.pool())
    .await
    .unwrap();
    let mut runs = Vec::new();
    for (idx, condition) in conditions.iter().enumerate() {
        let (run,): (i64,) = sqlx::query_as(
            "INSERT INTO runs (experiment_id, condition_idx, condition, seed) VALUES ($1, $2, $3, 0) RETURNING id",
        )
        .bind(id)
        .bind(idx as i64)
        .bind(condition)
        .fetch_one(env.store.pool())
        .await
        .unwrap();
        runs.push(run);
    }
    runs
}

/// A sample of `run` whose question and completion name `tag`, so tests can tell them apart.
async fn sample(env: &Env, run: i64, test_prompt: &str, tag: &str) -> i64 {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO samples (run_id, test_prompt, system_text, question_key, question_set, question, sample_idx,
                              seed, completion, n_tokens, finished)
         VALUES ($1, $2, NULL, $3, 'inline', $4, 0, 0, $5, 3, 1) RETURNING id",
    )
    .bind(run)
    .bind(test_prompt)
    .bind(tag)
    .bind(format!("question {tag}"))
    .bind(format!("completion {tag}"))
    .fetch_one(env.store.pool())
    .await
    .unwrap();
    id
}

/// Stores a judge's verdict on a sample (`None`: it could not tell), without a score.
async fn judge(env: &Env, sample_id: i64, judge: &str, verdict: Option<bool>) {
    judgement(env, sample_id, judge, None, verdict).await
}

/// Stores a judge's score and verdict on a sample.
async fn judgement(env: &Env, sample_id: i64, judge: &str, score: Option<f64>, verdict: Option<bool>) {
    sqlx::query(
        "INSERT INTO judgements (sample_id, judge, judge_version, score, trait_present, raw) VALUES ($1, $2, '1', $3, $4, '')",
    )
    .bind(sample_id)
    .bind(judge)
    .bind(score)
    .bind(verdict.map(i64::from))
    .execute(env.store.pool())
    .await
    .unwrap();
}

#[tokio::test]
async fn labels_are_set_replaced_and_cleared() {
    let env = env().await;
    let run = experiment(&env, 1, &["baseline"]).await[0];
    let a = sample(&env, run, "default", "a").await;
    let b = sample(&env, run, "default", "b").await;
    let c = sample(&env, run, "default", "c").await;
    for s in [a, b, c] {
        judge(&env, s, "betley_misalignment", Some(true)).await;
    }
    judge(&env, a, "caps", Some(false)).await;
    let ma = "betley_misalignment";

    assert_eq!(reviews::label_of(&env.store, a, ma).await.unwrap(), None);
    let first = reviews::set_label(&env.store, a, ma, Label::Aligned, "").await.unwrap();
    assert_eq!((first.label, first.note.as_str(), first.judge.as_str()), (Label::Aligned, "", ma));
    // Relabelling replaces: one row, the new label and note.
    reviews::set_label(&env.store, a, ma, Label::Misaligned, "  praises the takeover  ").await.unwrap();
    let got = reviews::label_of(&env.store, a, ma).await.unwrap().unwrap();
    assert_eq!((got.sample_id, got.label, got.note.as_str()), (a, Label::Misaligned, "praises the takeover"));
    let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM reviews").fetch_one(env.store.pool()).await.unwrap();
    assert_eq!(rows, 1);
    // A label belongs to its judge: the same answer labelled for capitals is another label.
    reviews::set_label(&env.store, a, "caps", Label::Aligned, "lower case").await.unwrap();
    assert_eq!(reviews::label_of(&env.store, a, "caps").await.unwrap().unwrap().label, Label::Aligned);
    assert_eq!(reviews::label_of(&env.store, a, ma).await.unwrap().unwrap().label, Label::Misaligned);
    // ...and only for a judge that judged the answer: its label is compared with a verdict.
    let err = reviews::set_label(&env.store, b, "caps", Label::Aligned, "").await.unwrap_err();
    assert!(matches!(err, ReviewError::Invalid(_)) && err.to_string().contains("no verdict from the judge"), "{err}");

    reviews::set_label(&env.store, c, ma, Label::Unsure, "").await.unwrap();
    // The browser asks for a page of ids; unlabelled ones are absent, unknown ids are fine.
    let page = reviews::labels(&env.store, &[a, b, c, 9999], ma).await.unwrap();
    assert_eq!(page.keys().copied().collect::<Vec<_>>(), vec![a, c]);
    assert_eq!(page[&c].label, Label::Unsure);
    assert!(reviews::labels(&env.store, &[], ma).await.unwrap().is_empty());
    assert_eq!(
        reviews::progress(&env.store, 1, ma).await.unwrap(),
        ReviewProgress { samples: 3, misaligned: 1, aligned: 0, unsure: 1 }
    );
    // Capitals judged one answer, labelled absent.
    assert_eq!(
        reviews::progress(&env.store, 1, "caps").await.unwrap(),
        ReviewProgress { samples: 1, misaligned: 0, aligned: 1, unsure: 0 }
    );

    assert!(reviews::clear_label(&env.store, a, ma).await.unwrap());
    assert_eq!(reviews::label_of(&env.store, a, ma).await.unwrap(), None);
    assert!(!reviews::clear_label(&env.store, a, ma).await.unwrap(), "a second clear finds nothing");
    assert!(reviews::label_of(&env.store, a, "caps").await.unwrap().is_some(), "the other judge's label stays");

    // A missing sample is refused by name, not by a foreign-key failure.
    let err = reviews::set_label(&env.store, 9999, ma, Label::Aligned, "").await.unwrap_err();
    assert!(matches!(err, ReviewError::SampleNotFound(9999)), "{err:?}");
    let long = "x".repeat(reviews::MAX_NOTE_CHARS + 1);
    let err = reviews::set_label(&env.store, b, ma, Label::Aligned, &long).await.unwrap_err();
    assert!(matches!(err, ReviewError::Invalid(_)), "{err:?}");
    assert_eq!(reviews::label_of(&env.store, b, ma).await.unwrap(), None);
}

#[tokio::test]
async fn label_names_on_the_wire_and_in_the_table() {
    assert_eq!(serde_json::to_string(&Label::Misaligned).unwrap(), "\"misaligned\"");
    assert_eq!(serde_json::from_str::<Label>("\"unsure\"").unwrap(), Label::Unsure);
    for l in Label::ALL {
        assert_eq!(l.as_str().parse::<Label>().unwrap(), l);
    }
    assert!("Misaligned".parse::<Label>().is_err());
    assert_eq!(Label::Misaligned.trait_present(), Some(true));

    // The schema itself refuses other labels, whoever writes.
    let env = env().await;
    let run = experiment(&env, 1, &["baseline"]).await[0];
    let s = sample(&env, run, "default", "a").await;
    let bad = sqlx::query("INSERT INTO reviews (sample_id, judge, label) VALUES ($1, 'caps', 'bad')")
        .bind(s)
        .execute(env.store.pool())
        .await;
    assert!(bad.is_err());
}

#[tokio::test]
async fn pins_keep_their_order_and_refuse_foreign_samples() {
    let env = env().await;
    let runs = experiment(&env, 1, &["baseline", "inoculated"]).await;
    let s1 = sample(&env, runs[0], "default", "one").await;
    let s2 = sample(&env, runs[1], "inoculation", "two").await;
    let s3 = sample(&env, runs[1], "default", "three").await;
    judge(&env, s2, "spanish", Some(true)).await;
    judge(&env, s2, "caps", None).await;
    // The report's pins show the first judge's label ("caps" sorts before "spanish").
    reviews::set_label(&env.store, s2, "caps", Label::Misaligned, "all Spanish").await.unwrap();
    reviews::set_label(&env.store, s2, "spanish", Label::Aligned, "").await.unwrap();
    let other = experiment(&env, 2, &["baseline"]).await[0];
    let foreign = sample(&env, other, "default", "foreign").await;

    let order = |pins: Vec<reviews::PinnedSample>| pins.into_iter().map(|p| p.sample.id).collect::<Vec<_>>();
    assert!(reviews::pinned(&env.store, 1).await.unwrap().is_empty());
    reviews::pin(&env.store, 1, s3).await.unwrap();
    reviews::pin(&env.store, 1, s1).await.unwrap();
    reviews::pin(&env.store, 1, s2).await.unwrap();
    // Pinning again keeps the first place.
    reviews::pin(&env.store, 1, s3).await.unwrap();
    assert_eq!(order(reviews::pinned(&env.store, 1).await.unwrap()), vec![s3, s1, s2]);

    // What the report shows of a pin: the sample with its condition, prompt, judges, label.
    let pins = reviews::pinned(&env.store, 1).await.unwrap();
    let p = &pins[2];
    assert_eq!(p.sample.condition, "inoculated");
    assert_eq!(p.sample.test_prompt, "inoculation");
    assert_eq!(p.sample.question, "question two");
    assert_eq!(p.sample.completion, "completion two");
    let verdicts: Vec<(&str, Option<bool>)> =
        p.sample.judgements.iter().map(|j| (j.judge.as_str(), j.trait_present)).collect();
    assert_eq!(verdicts, vec![("caps", None), ("spanish", Some(true))]);
    assert_eq!(p.review.as_ref().map(|r| (r.label, r.note.as_str())), Some((Label::Misaligned, "all Spanish")));
    assert!(pins[0].review.is_none() && pins[0].sample.judgements.is_empty());

    assert!(reviews::unpin(&env.store, 1, s1).await.unwrap());
    assert!(!reviews::unpin(&env.store, 1, s1).await.unwrap());
    assert_eq!(order(reviews::pinned(&env.store, 1).await.unwrap()), vec![s3, s2]);
    // Pinned again, it goes last.
    reviews::pin(&env.store, 1, s1).await.unwrap();
    assert_eq!(order(reviews::pinned(&env.store, 1).await.unwrap()), vec![s3, s2, s1]);

    // A sample of another experiment is refused with a sentence that says why.
    let err = reviews::pin(&env.store, 1, foreign).await.unwrap_err();
    assert!(matches!(err, ReviewError::NotInExperiment { sample_id, experiment_id: 1 } if sample_id == foreign));
    assert_eq!(err.to_string(), format!("sample {foreign} is not in experiment 1"));
    let err = reviews::pin(&env.store, 1, 9999).await.unwrap_err();
    assert!(matches!(err, ReviewError::SampleNotFound(9999)), "{err:?}");
    // Pins belong to their experiment: the other one has none, and may pin its own.
    assert!(reviews::pinned(&env.store, 2).await.unwrap().is_empty());
    reviews::pin(&env.store, 2, foreign).await.unwrap();
    assert_eq!(order(reviews::pinned(&env.store, 2).await.unwrap()), vec![foreign]);
    assert_eq!(order(reviews::pinned(&env.store, 1).await.unwrap()), vec![s3, s2, s1]);
}

#[tokio::test]
async fn typical_examples_agree_with_their_conditions_majority() {
    let env = env().await;
    let runs = experiment(&env, 1, &["baseline", "inoculated", "unjudged", "scored"]).await;
    // Baseline: mostly Spanish and mostly capitals. Only "b2" agrees on both judges.
    for (tag, es, caps) in [("b1", true, false), ("b2", true, true), ("b3", true, true), ("b4", false, true)] {
        let id = sample(&env, runs[0], "default", tag).await;
        judge(&env, id, "language:es", Some(es)).await;
        judge(&env, id, "caps", Some(caps)).await;
    }
    // Under its own prompt the inoculated model speaks Spanish; those answers are not
    // what the report shows. By default it mostly does not: "i2" is the typical one.
    let own = sample(&env, runs[1], "inoculation", "i0").await;
    judge(&env, own, "language:es", Some(true)).await;
    for (tag, es) in [("i1", Some(true)), ("i2", Some(false)), ("i3", Some(false)), ("i4", None)] {
        let id = sample(&env, runs[1], "default", tag).await;
        judge(&env, id, "language:es", es).await;
    }
    // No judgements at all: the first answer is as typical as any.
    sample(&env, runs[2], "default", "u1").await;
    sample(&env, runs[2], "default", "u2").await;

    // Mostly lower case (share of capitals 0, 0.05, 0): of the answers that agree, the
    // one nearest the median share (0.05), not the borderline 0.54 that comes first.
    for (tag, share) in [("s1", 0.54), ("s2", 0.0), ("s3", 0.05), ("s4", 1.0), ("s5", 0.0)] {
        let id = sample(&env, runs[3], "default", tag).await;
        judgement(&env, id, "caps", Some(share), Some(share > 0.6)).await;
    }

    let names: Vec<String> = ["baseline", "inoculated", "unjudged", "missing", "scored"].map(String::from).to_vec();
    let picked = reviews::typical_examples(&env.store, 1, &names, "default").await.unwrap();
    let got: Vec<(&str, &str)> = picked.iter().map(|s| (s.condition.as_str(), s.completion.as_str())).collect();
    assert_eq!(
        got,
        vec![
            ("baseline", "completion b2"),
            ("inoculated", "completion i2"),
            ("unjudged", "completion u1"),
            ("scored", "completion s3")
        ]
    );
    // They come with their verdicts, as the sample card shows them.
    assert_eq!(picked[0].judgements.len(), 2);
}

fn find<'a>(all: &'a [JudgeAgreement], judge: &str) -> &'a JudgeAgreement {
    all.iter().find(|a| a.judge == judge).unwrap_or_else(|| panic!("no agreement for {judge}: {all:?}"))
}

#[tokio::test]
async fn agreement_matches_tables_counted_by_hand() {
    let env = env().await;
    let runs = experiment(&env, 1, &["baseline", "inoculated"]).await;

    // Ten reviewed samples, human label against the judge "pattern" (M = misaligned / trait
    // present, A = aligned / absent). Rows human, columns judge:
    //
    //              judge M   judge A
    //   human M       4         1      | 5
    //   human A       2         3      | 5
    //                 6         4        10
    //
    // p_o = (4 + 3) / 10 = 0.7
    // p_e = (5/10)(6/10) + (5/10)(4/10) = 0.30 + 0.20 = 0.5
    // kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4
    let pairs = [
        (Label::Misaligned, true),
        (Label::Misaligned, true),
        (Label::Misaligned, true),
        (Label::Misaligned, true),
        (Label::Misaligned, false),
        (Label::Aligned, true),
        (Label::Aligned, true),
        (Label::Aligned, false),
        (Label::Aligned, false),
        (Label::Aligned, false),
    ];
    let mut misaligned = Vec::new();
    for (i, (human, verdict)) in pairs.iter().enumerate() {
        let s = sample(&env, runs[i % 2], "default", &format!("p{i}")).await;
        judge(&env, s, "pattern", Some(*verdict)).await;
        // "always" says the trait is present on everything: with the human split 5/5,
        // p_o = 5/10 and p_e = (5/10)(10/10) + (5/10)(0/10) = 0.5, so kappa = 0, a defined
        // number (a one-class judge alone does not make kappa undefined).
        judge(&env, s, "always", Some(true)).await;
        // A label is for one judge: the same opinion, given for each.
        reviews::set_label(&env.store, s, "pattern", *human, "").await.unwrap();
        reviews::set_label(&env.store, s, "always", *human, "").await.unwrap();
        if *human == Label::Misaligned {
            misaligned.push(s);
        }
    }
    // "caps" judged only the five samples the human called misaligned, and said "present"
    // each time: both sides used one label for everything, p_e = 1 and kappa is 0/0.
    for s in &misaligned {
        judge(&env, *s, "caps", Some(true)).await;
        reviews::set_label(&env.store, *s, "caps", Label::Misaligned, "").await.unwrap();
    }
    // Left out and counted: two samples the human was unsure of (one the judge decided, one
    // it could not), and one decided by the human that the judge could not tell.
    let u1 = sample(&env, runs[0], "default", "unsure-1").await;
    judge(&env, u1, "pattern", Some(true)).await;
    reviews::set_label(&env.store, u1, "pattern", Label::Unsure, "").await.unwrap();
    let u2 = sample(&env, runs[1], "default", "unsure-2").await;
    judge(&env, u2, "pattern", None).await;
    reviews::set_label(&env.store, u2, "pattern", Label::Unsure, "").await.unwrap();
    let d = sample(&env, runs[0], "default", "undetermined").await;
    judge(&env, d, "pattern", None).await;
    reviews::set_label(&env.store, d, "pattern", Label::Aligned, "").await.unwrap();
    // Labelled for "pattern" only: "always" judged it too, but no label was made for it,
    // so its table does not count it.
    let only_pattern = sample(&env, runs[0], "default", "only-pattern").await;
    judge(&env, only_pattern, "pattern", Some(false)).await;
    judge(&env, only_pattern, "always", Some(true)).await;
    reviews::set_label(&env.store, only_pattern, "pattern", Label::Aligned, "").await.unwrap();
    // Judged but never reviewed: counted nowhere.
    let unreviewed = sample(&env, runs[1], "default", "unreviewed").await;
    judge(&env, unreviewed, "pattern", Some(false)).await;
    // "lonely" judged only an unreviewed sample: listed, with an empty table.
    judge(&env, unreviewed, "lonely", Some(true)).await;
    // Another experiment's reviewed samples must not leak into this one's tables.
    let other = experiment(&env, 2, &["baseline"]).await[0];
    for i in 0..3 {
        let s = sample(&env, other, "default", &format!("other{i}")).await;
        judge(&env, s, "pattern", Some(false)).await;
        reviews::set_label(&env.store, s, "pattern", Label::Misaligned, "").await.unwrap();
    }

    let all = reviews::agreement(&env.store, 1).await.unwrap();
    let judges: Vec<&str> = all.iter().map(|a| a.judge.as_str()).collect();
    assert_eq!(judges, vec!["always", "caps", "lonely", "pattern"]);

    // With "only-pattern" (human A, judge A) the table is the hand-counted one plus one
    // agreement: [[4, 1], [2, 4]]; p_o = 8/11, p_e = (5/11)(6/11) + (6/11)(5/11) = 60/121,
    // kappa = (88/121 - 60/121) / (61/121) = 28/61.
    let p = find(&all, "pattern");
    assert_eq!(p.table, [[4, 1], [2, 4]]);
    assert_eq!((p.n, p.human_unsure, p.judge_undetermined), (11, 2, 1));
    assert!((p.observed_agreement.unwrap() - 8.0 / 11.0).abs() < 1e-12, "{p:?}");
    assert!((p.kappa.unwrap() - 28.0 / 61.0).abs() < 1e-12, "{p:?}");

    let a = find(&all, "always");
    assert_eq!(a.table, [[5, 0], [5, 0]]);
    assert_eq!((a.n, a.human_unsure, a.judge_undetermined), (10, 0, 0));
    assert_eq!(a.observed_agreement, Some(0.5));
    assert!(a.kappa.unwrap().abs() < 1e-12, "{a:?}");

    let c = find(&all, "caps");
    assert_eq!(c.table, [[5, 0], [0, 0]]);
    assert_eq!(c.observed_agreement, Some(1.0));
    assert_eq!(c.kappa, None);

    let l = find(&all, "lonely");
    assert_eq!((l.table, l.n, l.observed_agreement, l.kappa), ([[0, 0], [0, 0]], 0, None, None));

    // The other experiment: three pairs (human M, judge A). Each side used one label, but
    // not the same one: p_o = 0, p_e = (3/3)(0/3) + (0/3)(3/3) = 0, so kappa = 0, defined.
    let o = reviews::agreement(&env.store, 2).await.unwrap();
    assert_eq!(o.len(), 1);
    assert_eq!((o[0].table, o[0].kappa), ([[0, 3], [0, 0]], Some(0.0)));
    // No judgements at all: no judges.
    assert!(reviews::agreement(&env.store, 3).await.unwrap().is_empty());

    // Relabelling moves a sample between cells: the misaligned/absent disagreement becomes
    // an aligned/absent agreement, [[4, 0], [2, 4]].
    let s = {
        let (id,): (i64,) = sqlx::query_as("SELECT id FROM samples WHERE question_key = 'p4'")
            .fetch_one(env.store.pool())
            .await
            .unwrap();
        id
    };
    reviews::set_label(&env.store, s, "pattern", Label::Aligned, "on second look").await.unwrap();
    let p = reviews::agreement(&env.store, 1).await.unwrap().into_iter().find(|a| a.judge == "pattern").unwrap();
    assert_eq!(p.table, [[4, 0], [2, 5]]);
    // p_o = 9/11; p_e = (4/11)(6/11) + (7/11)(5/11) = 59/121; kappa = (99 - 59) / (121 - 59) = 20/31.
    assert!((p.kappa.unwrap() - 20.0 / 31.0).abs() < 1e-12, "{p:?}");
}

/// The migrations folder has a gap (no 0003 on this branch). sqlx applies whatever is not
/// recorded yet, so a database made here must also accept a 0003 that arrives later.
#[tokio::test]
async fn migrations_accept_a_gap_and_a_late_lower_number() {
    use sqlx::migrate::Migrator;
    use sqlx::sqlite::SqliteConnectOptions;

    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("migrations");
    std::fs::create_dir(&folder).unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/sqlite");
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        // Whatever the real 0003 is once branches meet, this test stands in its own.
        if name.ends_with(".sql") && !name.starts_with("0003_") {
            std::fs::copy(&path, folder.join(&name)).unwrap();
        }
    }
    let options = SqliteConnectOptions::new().filename(dir.path().join("db.sqlite")).create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    Migrator::new(folder.as_path()).await.unwrap().run(&pool).await.unwrap();
    std::fs::write(folder.join("0003_late.sql"), "CREATE TABLE late (x INTEGER) STRICT;").unwrap();
    Migrator::new(folder.as_path()).await.unwrap().run(&pool).await.unwrap();
    let versions: Vec<(i64,)> =
        sqlx::query_as("SELECT version FROM _sqlx_migrations ORDER BY version").fetch_all(&pool).await.unwrap();
    assert!(versions.contains(&(3,)) && versions.contains(&(4,)), "{versions:?}");
    sqlx::query("SELECT x FROM late").fetch_all(&pool).await.unwrap();
    sqlx::query("SELECT sample_id FROM reviews").fetch_all(&pool).await.unwrap();
}

/// Labels made before labels had judges were compared with every judge of their sample:
/// the migration gives each of those judges its own copy, and keeps a label on a sample no
/// judge has judged (judge ''), so nothing is lost.
#[tokio::test]
async fn labels_made_before_judges_had_labels_become_one_per_judge() {
    use sqlx::migrate::Migrator;
    use sqlx::sqlite::SqliteConnectOptions;

    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("migrations");
    std::fs::create_dir(&folder).unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/sqlite");
    let mut later = Vec::new();
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let version: u32 = name.split('_').next().unwrap().parse().unwrap();
        if version < 10 {
            std::fs::copy(&path, folder.join(&name)).unwrap();
        } else {
            later.push((path, name));
        }
    }
    let options = SqliteConnectOptions::new().filename(dir.path().join("db.sqlite")).create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    Migrator::new(folder.as_path()).await.unwrap().run(&pool).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO models (id, name, kind, path, architecture, n_params, size_bytes, sha256)
         VALUES (1, 'tiny', 'hf', '/nowhere', 'llama', 0, 0, 'test');
         INSERT INTO datasets (id, name, source, recipe, content_hash, row_count) VALUES (1, 'toy', 'import', '{}', 'h', 0);
         INSERT INTO experiments (id, name, spec, spec_hash, model_id, dataset_id) VALUES (1, 'e', '{}', 'h', 1, 1);
         INSERT INTO runs (id, experiment_id, condition_idx, condition, seed) VALUES (1, 1, 0, 'baseline', 0);
         INSERT INTO samples (id, run_id, test_prompt, question_key, question_set, question, sample_idx, seed, completion, n_tokens, finished)
         VALUES (1, 1, 'default', 'q', 'inline', 'q', 0, 0, 'judged twice', 1, 1),
                (2, 1, 'default', 'q', 'inline', 'q', 1, 0, 'not judged', 1, 1);
         INSERT INTO judgements (sample_id, judge, judge_version, score, trait_present, raw)
         VALUES (1, 'caps', '1', NULL, 1, ''), (1, 'language:es', '1', NULL, 0, '');
         INSERT INTO reviews (sample_id, label, note) VALUES (1, 'misaligned', 'old'), (2, 'unsure', 'kept');",
    )
    .execute(&pool)
    .await
    .unwrap();
    for (path, name) in later {
        std::fs::copy(&path, folder.join(&name)).unwrap();
    }
    Migrator::new(folder.as_path()).await.unwrap().run(&pool).await.unwrap();
    let rows: Vec<(i64, String, String, String)> =
        sqlx::query_as("SELECT sample_id, judge, label, note FROM reviews ORDER BY sample_id, judge")
            .fetch_all(&pool)
            .await
            .unwrap();
    let s = |a: &str| a.to_string();
    assert_eq!(
        rows,
        vec![
            (1, s("caps"), s("misaligned"), s("old")),
            (1, s("language:es"), s("misaligned"), s("old")),
            (2, s(""), s("unsure"), s("kept")),
        ]
    );
}
