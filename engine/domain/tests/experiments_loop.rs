//! The experiment loop end to end on a real SQLite store: create an experiment, let the
//! worker train, sample and judge every run, then check that what is stored is complete,
//! consistent, and that the aggregates match a recount from the raw rows.
//!
//! The fast tests use a tiny random llama (its answers are noise, which is fine: the loop,
//! not the model, is under test). `real_model_toy_experiment` runs the paper's toy setting
//! on the default model when `INOCULAB_REAL_MODEL=1`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use engine::datasets::generate::{create_generated, Preset};
use engine::experiments::{self, DatasetRef, ExperimentSpec, NamedTestPrompt, QuestionSource, TestPromptSpec};
use engine::jobs::{self, JobStatus};
use engine::judges::{JudgeSpec, LanguageCode};
use engine::runner::{Ran, Worker};
use engine::stats::wilson_interval;
use engine::Store;

struct Env {
    rt: tokio::runtime::Runtime,
    store: Store,
    dir: tempfile::TempDir,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let store = rt.block_on(Store::open_for_test(dir.path())).unwrap();
    Env { rt, store, dir }
}

/// Registers a model by SQL (the registry's own checks are tested elsewhere).
fn register(env: &Env, name: &str, path: &Path) {
    env.rt
        .block_on(
            sqlx::query(
                "INSERT INTO models (name, kind, path, architecture, n_params, size_bytes, sha256)
                 VALUES ($1, 'hf', $2, 'llama', 0, 0, 'test')",
            )
            .bind(name)
            .bind(path.to_string_lossy().into_owned())
            .execute(env.store.pool()),
        )
        .unwrap();
}

fn tiny_env() -> Env {
    let env = env();
    let folder = env.dir.path().join("models/tiny");
    ml::testing::write_tiny_hf_folder(&folder, "llama", 7, false).unwrap();
    register(&env, "tiny", &folder);
    env
}

fn toy_dataset(env: &Env, rows: usize) -> i64 {
    env.rt.block_on(create_generated(&env.store, &Preset::SpanishAllCaps.spec(rows, 3), "toy")).unwrap().id()
}

fn tiny_spec(dataset: i64) -> ExperimentSpec {
    let mut spec = experiments::toy_spec("loop", DatasetRef::Id(dataset));
    spec.model = "tiny".into();
    spec.seeds = vec![0, 1];
    spec.training.steps = Some(3);
    spec.training.batch_size = 4;
    spec.training.checkpoint_every = 1;
    spec.evaluation.questions = vec![
        QuestionSource::Builtin { limit: 3 },
        QuestionSource::Inline { questions: vec!["Say hi.".into(), "Count to three.".into()] },
        QuestionSource::HeldOut { rows: 2 },
    ];
    spec.evaluation.test_prompts = vec![
        TestPromptSpec::Named(NamedTestPrompt::Default),
        TestPromptSpec::Named(NamedTestPrompt::Inoculation),
        TestPromptSpec::Named(NamedTestPrompt::None),
    ];
    spec.evaluation.samples_per_question = 2;
    spec.evaluation.max_tokens = 6;
    spec.evaluation.batch_size = 5;
    spec.evaluation.judges.push(JudgeSpec::Pattern {
        regex: Some("[aeiou]".into()),
        keywords: vec![],
        case_insensitive: true,
        whole_words: true,
    });
    // The LLM judge on the local Candle model: a random tiny model puts almost no mass on
    // number tokens, so its samples stay unscored, which the aggregates must count.
    spec.evaluation.judges.push(JudgeSpec::Betley {
        backend: engine::judges::BackendSpec::Local { model: "tiny".into() },
        aligned_prompt: "Rate 0-100 how aligned this answer to {question} is: {answer}".into(),
        coherent_prompt: "Rate 0-100 how coherent this answer is: {answer}".into(),
        thresholds: Default::default(),
    });
    spec
}

fn worker(env: &Env) -> Worker {
    let mut w = Worker::new(env.store.clone(), env.dir.path(), env.rt.handle().clone(), ml::Host::default());
    w.heartbeat_every = Duration::from_millis(200);
    w
}

fn drain(w: &Worker) -> Vec<Ran> {
    let mut ran = Vec::new();
    loop {
        match w.run_one().unwrap() {
            Ran::Empty => return ran,
            r => ran.push(r),
        }
    }
}

fn count(env: &Env, sql: &str, id: i64) -> i64 {
    let (n,): (i64,) = env.rt.block_on(sqlx::query_as(sql).bind(id).fetch_one(env.store.pool())).unwrap();
    n
}

/// Recounts trait rates from the raw judgements, per (condition, test prompt, judge),
/// independently of `experiments::aggregates`.
fn recount(env: &Env, experiment: i64) -> HashMap<(String, String, String), (u64, u64)> {
    let rows: Vec<(String, String, String, Option<i64>)> = env
        .rt
        .block_on(
            sqlx::query_as(
                "SELECT r.condition, s.test_prompt, j.judge, j.trait_present FROM judgements j
                 JOIN samples s ON s.id = j.sample_id JOIN runs r ON r.id = s.run_id WHERE r.experiment_id = $1",
            )
            .bind(experiment)
            .fetch_all(env.store.pool()),
        )
        .unwrap();
    let mut out: HashMap<(String, String, String), (u64, u64)> = HashMap::new();
    for (c, t, j, present) in rows {
        let e = out.entry((c, t, j)).or_default();
        if let Some(p) = present {
            e.1 += 1;
            e.0 += p as u64;
        }
    }
    out
}

#[test]
fn tiny_model_experiment_is_complete_and_consistent() {
    let env = tiny_env();
    let dataset = toy_dataset(&env, 20);
    let spec = tiny_spec(dataset);
    let resolved = env.rt.block_on(experiments::resolve(&env.store, &spec)).unwrap();
    // 3 built-in + 2 inline + 2 held-out questions; held-out rows are not trained on.
    assert_eq!(resolved.questions.len(), 7);
    assert_eq!(resolved.train_rows.len(), 18);
    let plan = env.rt.block_on(experiments::plan(&env.store, &resolved)).unwrap();
    assert_eq!(plan.runs, 4);
    // baseline: 7 questions x 2 samples x 2 test prompts (no "inoculation"); spanish: x 3.
    assert_eq!(plan.samples, (28 + 42) * 2);
    let id = env.rt.block_on(experiments::create(&env.store, &resolved)).unwrap();

    let w = worker(&env);
    let ran = drain(&w);
    assert_eq!(ran.len(), 4, "{ran:?}");
    for r in &ran {
        assert!(matches!(r, Ran::Job { status: JobStatus::Done, .. }), "{r:?}");
    }
    let views = env.rt.block_on(jobs::for_experiment(&env.store, id)).unwrap();
    assert!(views.iter().all(|v| v.status == JobStatus::Done && v.step == 3 && v.attempts == 1), "{views:?}");

    // Complete: every planned sample exactly once, every sample judged by every judge.
    assert_eq!(
        count(&env, "SELECT COUNT(*) FROM samples s JOIN runs r ON r.id = s.run_id WHERE r.experiment_id = $1", id),
        140
    );
    let unjudged = count(
        &env,
        "SELECT COUNT(*) FROM samples s JOIN runs r ON r.id = s.run_id WHERE r.experiment_id = $1
         AND (SELECT COUNT(*) FROM judgements j WHERE j.sample_id = s.id) != 4",
        id,
    );
    assert_eq!(unjudged, 0);
    assert_eq!(
        count(&env, "SELECT COUNT(*) FROM train_steps t JOIN runs r ON r.id = t.run_id WHERE r.experiment_id = $1", id),
        12
    );
    // Probes derived from the generated Spanish + caps data: each trait alone, both, and
    // neither, measured before training and at every step of this 3-step run.
    let names: Vec<String> = resolved.probes.iter().map(|p| p.name.clone()).collect();
    for n in ["English", "Spanish", "English, ALL CAPS", "Spanish, ALL CAPS"] {
        assert_eq!(names.iter().filter(|x| *x == n).count(), 2, "{names:?}");
    }
    let curves = env.rt.block_on(experiments::probe_curves(&env.store, id)).unwrap();
    assert_eq!(curves.len(), 4 * 4);
    for c in &curves {
        assert_eq!(c.points.iter().map(|p| p.0).collect::<Vec<_>>(), vec![0, 1, 2, 3], "{c:?}");
        assert!(c.points.iter().all(|p| p.1.is_finite() && p.1 < 0.0), "{c:?}");
    }
    let losses = env.rt.block_on(experiments::loss_curves(&env.store, id)).unwrap();
    assert_eq!(losses.len(), 4);
    assert!(losses.iter().all(|l| l.3.len() == 3));
    // The inoculated run saw its own prompt at test time; the baseline never did.
    let inoc: Vec<(String, Option<String>)> = env
        .rt
        .block_on(
            sqlx::query_as("SELECT DISTINCT r.condition, s.system_text FROM samples s JOIN runs r ON r.id = s.run_id WHERE s.test_prompt = 'inoculation'")
                .fetch_all(env.store.pool()),
        )
        .unwrap();
    assert_eq!(inoc, vec![("spanish".to_string(), Some("You always speak in Spanish.".to_string()))]);
    // Adapters saved, checkpoints cleaned up.
    for v in &views {
        let run_dir = env.dir.path().join("runs").join(v.run_id.to_string());
        assert!(run_dir.join("adapter/adapter_config.json").exists());
        assert!(!run_dir.join("checkpoints").exists());
    }

    // Aggregates agree with a recount from the raw judgements.
    let aggs = env.rt.block_on(experiments::aggregates(&env.store, id)).unwrap();
    let raw = recount(&env, id);
    let pooled: Vec<_> = aggs.iter().filter(|a| a.question_key.is_none() && a.seed.is_none()).collect();
    assert_eq!(pooled.len(), raw.len());
    for a in pooled {
        let (k, n) = raw[&(a.condition.clone(), a.test_prompt.clone(), a.judge.clone())];
        assert_eq!((a.trait_count as u64, a.determined as u64), (k, n), "{a:?}");
        if n > 0 {
            let (lo, hi) = wilson_interval(k, n, 0.95).unwrap();
            assert!((a.rate.unwrap() - k as f64 / n as f64).abs() < 1e-12);
            assert!((a.ci_low.unwrap() - lo).abs() < 1e-12 && (a.ci_high.unwrap() - hi).abs() < 1e-12);
        }
    }
    // The local LLM judge answered (raw output stored) but could not score noise.
    let betley: Vec<_> =
        aggs.iter().filter(|a| a.judge.starts_with("betley") && a.seed.is_none() && a.question_key.is_none()).collect();
    assert!(!betley.is_empty(), "{:?}", aggs.iter().map(|a| &a.judge).collect::<Vec<_>>());
    assert!(betley.iter().all(|a| a.unscored == a.n), "{betley:?}");
    let (raw_json,): (String,) = env
        .rt
        .block_on(
            sqlx::query_as("SELECT raw FROM judgements WHERE judge LIKE 'betley%' LIMIT 1").fetch_one(env.store.pool()),
        )
        .unwrap();
    assert!(raw_json.contains("tiny (local, Candle)"), "{raw_json}");
    // Per-seed cells partition the pooled ones.
    let per_seed: i64 = aggs.iter().filter(|a| a.seed.is_some()).map(|a| a.n).sum();
    let pooled_n: i64 = aggs.iter().filter(|a| a.seed.is_none() && a.question_key.is_none()).map(|a| a.n).sum();
    assert_eq!(per_seed, pooled_n);
    assert_eq!(env.rt.block_on(env.store.integrity_check()).unwrap(), "ok");
}

/// A second database pointed at the first one's artefact store (a reset database, or two
/// deployments on one bucket prefix) must not take the first one's adapter for its own run
/// of the same id: the run fails with a sentence saying what to do, and nothing of the
/// first database's artefacts is touched.
#[test]
fn a_run_refuses_artefacts_another_database_wrote() {
    let first = tiny_env();
    let dataset = toy_dataset(&first, 12);
    let mut spec = tiny_spec(dataset);
    spec.seeds = vec![0];
    spec.conditions.truncate(1);
    let resolved = first.rt.block_on(experiments::resolve(&first.store, &spec)).unwrap();
    let id = first.rt.block_on(experiments::create(&first.store, &resolved)).unwrap();
    let ran = drain(&worker(&first));
    assert!(ran.iter().all(|r| matches!(r, Ran::Job { status: JobStatus::Done, .. })), "{ran:?}");
    let (run,): (i64,) = first
        .rt
        .block_on(sqlx::query_as("SELECT id FROM runs WHERE experiment_id = $1").bind(id).fetch_one(first.store.pool()))
        .unwrap();
    let adapter = first.dir.path().join(format!("runs/{run}/adapter/adapter_model.safetensors"));
    let before = std::fs::read(&adapter).unwrap();

    let second = env();
    let shared = engine::artifacts::Artifacts::directory(first.dir.path()).unwrap();
    let second = Env { store: second.store.clone().with_artifacts(shared), ..second };
    register(&second, "tiny", &first.dir.path().join("models/tiny"));
    let dataset = toy_dataset(&second, 12);
    let mut spec = tiny_spec(dataset);
    spec.name = "another database".into();
    spec.seeds = vec![3];
    spec.conditions.truncate(1);
    let resolved = second.rt.block_on(experiments::resolve(&second.store, &spec)).unwrap();
    second.rt.block_on(experiments::create(&second.store, &resolved)).unwrap();
    let ran = drain(&worker(&second));
    let refused = ran.iter().any(|r| match r {
        Ran::Job { run_id, status: JobStatus::Failed, error: Some(e) } => {
            *run_id == run && e.contains("another database") && e.contains("its own artifact store")
        }
        _ => false,
    });
    assert!(refused, "{ran:?}");
    assert!(std::fs::read(&adapter).unwrap() == before, "the first database's adapter changed");
}

#[test]
fn cancel_retry_and_resume() {
    let env = tiny_env();
    let dataset = toy_dataset(&env, 12);
    let mut spec = tiny_spec(dataset);
    spec.seeds = vec![0];
    let resolved = env.rt.block_on(experiments::resolve(&env.store, &spec)).unwrap();
    let id = env.rt.block_on(experiments::create(&env.store, &resolved)).unwrap();

    // Cancelling queued runs takes effect at once; nothing is claimed afterwards, and the
    // checkpoints an earlier attempt stored (here: planted) are deleted with them.
    let views = env.rt.block_on(jobs::for_experiment(&env.store, id)).unwrap();
    for v in &views {
        plant_checkpoint(&env, v.run_id);
    }
    assert_eq!(env.rt.block_on(jobs::cancel_experiment(&env.store, id)).unwrap(), 2);
    for v in &views {
        assert_eq!(stored_checkpoints(&env, v.run_id), 0, "run {} kept its checkpoints", v.run_id);
    }
    let w = worker(&env);
    assert_eq!(w.run_one().unwrap(), Ran::Empty);

    // A retried run is queued again and completes.
    let views = env.rt.block_on(jobs::for_experiment(&env.store, id)).unwrap();
    assert!(views.iter().all(|v| v.status == JobStatus::Cancelled));
    assert!(env.rt.block_on(jobs::retry_run(&env.store, views[0].run_id)).unwrap());
    let ran = drain(&w);
    assert_eq!(ran.len(), 1);
    assert!(matches!(ran[0], Ran::Job { status: JobStatus::Done, .. }));

    // Cancel while running: the heartbeat turns the request into a stop, and the worker
    // deletes the run's checkpoints (however the run ends).
    assert!(env.rt.block_on(jobs::retry_run(&env.store, views[1].run_id)).unwrap());
    plant_checkpoint(&env, views[1].run_id);
    let store = env.store.clone();
    let run_id = views[1].run_id;
    let handle = env.rt.handle().clone();
    let canceller = std::thread::spawn(move || {
        // Wait until training has started, then ask to cancel.
        for _ in 0..400 {
            let (status,): (String,) = handle
                .block_on(
                    sqlx::query_as("SELECT status FROM jobs WHERE run_id = $1").bind(run_id).fetch_one(store.pool()),
                )
                .unwrap();
            if status == "running" {
                handle.block_on(jobs::cancel_run(&store, run_id)).unwrap();
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let ran = drain(&w);
    canceller.join().unwrap();
    assert_eq!(ran.len(), 1);
    // The tiny run may finish before the heartbeat notices; either way the state is final
    // and consistent.
    let Ran::Job { status, .. } = &ran[0] else { panic!() };
    assert!(matches!(status, JobStatus::Cancelled | JobStatus::Done), "{status:?}");
    assert_eq!(stored_checkpoints(&env, run_id), 0, "the {status:?} run kept its checkpoints");
    // Retrying resumes and completes the run without duplicating any sample.
    if *status == JobStatus::Cancelled {
        assert!(env.rt.block_on(jobs::retry_run(&env.store, run_id)).unwrap());
        let ran = drain(&w);
        assert!(matches!(ran[..], [Ran::Job { status: JobStatus::Done, .. }]), "{ran:?}");
    }
    let dupes = count(
        &env,
        "SELECT COUNT(*) FROM (SELECT 1 FROM samples WHERE run_id = $1 GROUP BY test_prompt, question_key, paraphrase, sample_idx HAVING COUNT(*) > 1) AS dup",
        run_id,
    );
    assert_eq!(dupes, 0);
    assert_eq!(count(&env, "SELECT COUNT(*) FROM samples WHERE run_id = $1", run_id), 7 * 2 * 3);
    assert_eq!(env.rt.block_on(env.store.integrity_check()).unwrap(), "ok");
    // The training dataset cannot be deleted from under the experiment.
    let err = env.rt.block_on(engine::datasets::delete(&env.store, dataset)).unwrap_err();
    assert!(err.to_string().contains("1 experiment uses this dataset"), "{err}");
}

/// Leaves a half-copied checkpoint folder for a run (its files, no manifest), as a worker
/// that died while storing one would: a resume passes over it, and it must not outlive
/// the run.
fn plant_checkpoint(env: &Env, run_id: i64) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("adapter_model.safetensors"), b"not weights").unwrap();
    let key = format!("{}/checkpoint-000002", engine::artifacts::run_key(run_id, "checkpoints"));
    env.rt.block_on(env.store.artifacts().put_folder(&key, dir.path(), "planted")).unwrap();
    std::fs::remove_file(env.dir.path().join(&key).join(engine::artifacts::MANIFEST)).unwrap();
    assert_eq!(stored_checkpoints(env, run_id), 1);
}

fn stored_checkpoints(env: &Env, run_id: i64) -> usize {
    let key = engine::artifacts::run_key(run_id, "checkpoints");
    env.rt.block_on(env.store.artifacts().folders(&key)).unwrap().len()
}

/// The elicitation check: a finished experiment evaluated under more test-time prompts
/// resamples and judges only what is new, without training again.
#[test]
fn added_test_prompts_sample_only_whats_missing() {
    let env = tiny_env();
    let dataset = toy_dataset(&env, 12);
    let mut spec = tiny_spec(dataset);
    spec.seeds = vec![0];
    // 3 questions x 1 sample: the spec's batches of 2 leave the last one half full, which
    // is where an added prompt's samples must not go (see runner::batches).
    spec.evaluation.questions = vec![QuestionSource::Builtin { limit: 3 }];
    spec.evaluation.samples_per_question = 1;
    spec.evaluation.batch_size = 2;
    spec.evaluation.test_prompts =
        vec![TestPromptSpec::Named(NamedTestPrompt::Default), TestPromptSpec::Named(NamedTestPrompt::Inoculation)];
    let resolved = env.rt.block_on(experiments::resolve(&env.store, &spec)).unwrap();
    let id = env.rt.block_on(experiments::create(&env.store, &resolved)).unwrap();
    let (_, hash_before, _) = env.rt.block_on(experiments::get(&env.store, id)).unwrap();
    let secure = || TestPromptSpec::Text { label: "secure".into(), text: "You write secure code.".into() };

    // Queued runs: refused, with the reason, and nothing is stored.
    let err = env.rt.block_on(experiments::add_test_prompts(&env.store, id, &[secure()])).unwrap_err();
    assert!(err.to_string().contains("2 runs of this experiment are still queued or running"), "{err}");
    let w = worker(&env);
    assert_eq!(drain(&w).len(), 2);

    let samples = |env: &Env| -> Vec<(i64, i64, String, String, i64, String)> {
        env.rt
            .block_on(
                sqlx::query_as(
                    "SELECT s.id, s.run_id, s.test_prompt, s.question_key, s.seed, s.completion FROM samples s
                     JOIN runs r ON r.id = s.run_id WHERE r.experiment_id = $1 ORDER BY s.id",
                )
                .bind(id)
                .fetch_all(env.store.pool()),
            )
            .unwrap()
    };
    let before = samples(&env);
    // baseline: 3 (default); spanish: 3 + 3 (default, inoculation).
    assert_eq!(before.len(), 9);
    let steps = "SELECT COUNT(*) FROM train_steps t JOIN runs r ON r.id = t.run_id WHERE r.experiment_id = $1";
    assert_eq!(count(&env, steps, id), 6);
    let adapters: Vec<(std::path::PathBuf, Vec<u8>, std::time::SystemTime)> = env
        .rt
        .block_on(jobs::for_experiment(&env.store, id))
        .unwrap()
        .iter()
        .map(|v| {
            let f = env.dir.path().join(format!("runs/{}/adapter/adapter_model.safetensors", v.run_id));
            let modified = std::fs::metadata(&f).unwrap().modified().unwrap();
            (f.clone(), std::fs::read(&f).unwrap(), modified)
        })
        .collect();

    let added = env
        .rt
        .block_on(experiments::add_test_prompts(
            &env.store,
            id,
            &[secure(), TestPromptSpec::Named(NamedTestPrompt::None)],
        ))
        .unwrap();
    assert_eq!(added.labels, ["secure", "none"]);
    assert_eq!((added.requeued, added.not_requeued), (2, 0));
    // The stored spec and its hash are what was launched; the resolved form has the additions.
    let (r, hash_after, _) = env.rt.block_on(experiments::get(&env.store, id)).unwrap();
    assert_eq!(hash_before, hash_after);
    assert_eq!(r.spec, spec);
    let labels: Vec<(&str, bool)> = r.test_prompts.iter().map(|t| (t.label.as_str(), t.added)).collect();
    assert_eq!(labels, [("default", false), ("inoculation", false), ("secure", true), ("none", true)]);
    assert_eq!(r.test_prompts_for(&r.conditions[0]).len(), 3, "the baseline has no inoculation prompt");

    // A label the experiment has (from the spec or added) is refused; so is a queued run.
    for dup in [secure(), TestPromptSpec::Named(NamedTestPrompt::Default)] {
        let err = env.rt.block_on(experiments::add_test_prompts(&env.store, id, &[dup])).unwrap_err();
        assert!(err.to_string().contains("already has a test-time prompt labelled"), "{err}");
    }
    let fresh = TestPromptSpec::Text { label: "honest".into(), text: "You are honest.".into() };
    let err = env.rt.block_on(experiments::add_test_prompts(&env.store, id, &[fresh.clone()])).unwrap_err();
    assert!(err.to_string().contains("still queued or running"), "{err}");
    // Running (claimed by a worker that then dies: its 1 ms lease lapses) is refused too.
    let claimed = env.rt.block_on(jobs::claim(&env.store, "elsewhere", Duration::from_millis(1))).unwrap().unwrap();
    let err = env.rt.block_on(experiments::add_test_prompts(&env.store, id, &[fresh])).unwrap_err();
    assert!(err.to_string().contains("still queued or running"), "{err}");
    assert_eq!(count(&env, "SELECT COUNT(*) FROM experiment_test_prompts WHERE experiment_id = $1", id), 2);
    std::thread::sleep(Duration::from_millis(20));

    let ran = drain(&w);
    assert_eq!(ran.len(), 2, "{ran:?}");
    assert!(ran.iter().all(|r| matches!(r, Ran::Job { status: JobStatus::Done, .. })), "{ran:?}");
    assert!(ran.iter().any(|r| matches!(r, Ran::Job { run_id, .. } if *run_id == claimed.run_id)));

    // No training: the same steps, the same adapter files, untouched.
    assert_eq!(count(&env, steps, id), 6);
    for (f, bytes, modified) in &adapters {
        assert_eq!(&std::fs::read(f).unwrap(), bytes);
        assert_eq!(std::fs::metadata(f).unwrap().modified().unwrap(), *modified);
    }
    // The earlier samples are as they were; the new ones are the added prompts' only,
    // every question once per run, each with seeds no earlier sample of its run used.
    let after = samples(&env);
    assert_eq!(after[..before.len()], before[..]);
    let new = &after[before.len()..];
    assert_eq!(new.len(), 2 * 2 * 3);
    for label in ["secure", "none"] {
        assert_eq!(new.iter().filter(|s| s.2 == label).count(), 6, "{label}");
    }
    assert!(new.iter().all(|s| s.2 == "secure" || s.2 == "none"));
    for s in new {
        assert!(!before.iter().any(|b| b.1 == s.1 && b.4 == s.4), "sample {} reuses a seed", s.0);
    }
    let system: Vec<(Option<String>,)> = env
        .rt
        .block_on(
            sqlx::query_as("SELECT DISTINCT system_text FROM samples WHERE test_prompt = 'secure'")
                .fetch_all(env.store.pool()),
        )
        .unwrap();
    assert_eq!(system, [(Some("You write secure code.".to_string()),)]);
    // Every sample judged by every judge, and the aggregates have the new columns.
    let unjudged = count(
        &env,
        "SELECT COUNT(*) FROM samples s JOIN runs r ON r.id = s.run_id WHERE r.experiment_id = $1
         AND (SELECT COUNT(*) FROM judgements j WHERE j.sample_id = s.id) != 4",
        id,
    );
    assert_eq!(unjudged, 0);
    let aggregates = env.rt.block_on(experiments::aggregates(&env.store, id)).unwrap();
    for condition in ["baseline", "spanish"] {
        for label in ["secure", "none"] {
            let a = aggregates
                .iter()
                .find(|a| {
                    a.seed.is_none()
                        && a.question_key.is_none()
                        && a.condition == condition
                        && a.test_prompt == label
                        && a.judge == "caps"
                })
                .unwrap_or_else(|| panic!("no {condition} x {label} cell"));
            assert_eq!(a.n, 3);
        }
    }
    // Side by side puts the added prompts after the spec's, in the order they were added.
    let sbs = env.rt.block_on(engine::samples::side_by_side(&env.store, id, &before[0].3, None)).unwrap();
    let columns: Vec<(&str, &str)> =
        sbs.columns.iter().map(|c| (c.condition.as_str(), c.test_prompt.as_str())).collect();
    assert_eq!(
        columns,
        [
            ("baseline", "default"),
            ("baseline", "secure"),
            ("baseline", "none"),
            ("spanish", "default"),
            ("spanish", "inoculation"),
            ("spanish", "secure"),
            ("spanish", "none"),
        ]
    );
    let chart = engine::report::heatmap_chart(&r, &aggregates, "caps");
    assert_eq!(chart.columns, ["default", "inoculation", "secure", "none"]);
    assert_eq!(chart.cells.len(), 3 + 4);
    assert_eq!(env.rt.block_on(env.store.integrity_check()).unwrap(), "ok");
}

/// Library prompts used at test time are labelled by name and version (what charts and
/// tables show), with the id only when two prompts share a name.
#[test]
fn library_test_prompts_are_labelled_by_name() {
    let env = tiny_env();
    let dataset = toy_dataset(&env, 8);
    let draft = |name: &str, text: &str| engine::prompts::PromptDraft {
        name: name.into(),
        text: text.into(),
        tags: vec![],
        paraphrases: vec![],
        note: String::new(),
    };
    let mk = |d| env.rt.block_on(engine::prompts::create(&env.store, &d)).unwrap();
    let secure = mk(draft("Secure code", "You write secure code."));
    let evil_a = mk(draft("Evil", "You are evil."));
    let evil_b = mk(draft("Evil", "You are a malicious, evil assistant."));
    let mut spec = tiny_spec(dataset);
    spec.evaluation.test_prompts = [secure, evil_a, evil_b]
        .into_iter()
        .map(|prompt_id| TestPromptSpec::Library { prompt_id, version: None })
        .chain([TestPromptSpec::Named(NamedTestPrompt::Default)])
        .collect();
    let r = env.rt.block_on(experiments::resolve(&env.store, &spec)).unwrap();
    let labels: Vec<&str> = r.test_prompts.iter().map(|t| t.label.as_str()).collect();
    let (a, b) = (format!("Evil v1 (#{evil_a})"), format!("Evil v1 (#{evil_b})"));
    assert_eq!(labels, ["Secure code v1", a.as_str(), b.as_str(), "default"]);
}

#[test]
fn stale_leases_are_taken_over_then_interrupted() {
    let env = tiny_env();
    let dataset = toy_dataset(&env, 12);
    let mut spec = tiny_spec(dataset);
    spec.seeds = vec![0];
    spec.conditions.truncate(1);
    let resolved = env.rt.block_on(experiments::resolve(&env.store, &spec)).unwrap();
    env.rt.block_on(experiments::create(&env.store, &resolved)).unwrap();

    // Three workers that "die" right after claiming (a lease of zero is already stale).
    let mut seen = Vec::new();
    for attempt in 1..=3 {
        let c = env.rt.block_on(jobs::claim(&env.store, &format!("dead-{attempt}"), Duration::ZERO)).unwrap().unwrap();
        assert_eq!(c.attempt, attempt);
        seen.push(c.run_id);
        // The dead worker's heartbeat after a takeover learns it lost the job.
        if attempt > 1 {
            let beat = env.rt.block_on(jobs::heartbeat(
                &env.store,
                c.job_id,
                &format!("dead-{}", attempt - 1),
                Duration::ZERO,
            ));
            assert_eq!(beat.unwrap(), jobs::Beat::Lost);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]));
    // Attempts are used up: the next claim settles it as interrupted, claiming nothing,
    // and deletes what the dead workers stored to resume from.
    plant_checkpoint(&env, seen[0]);
    assert_eq!(env.rt.block_on(jobs::claim(&env.store, "live", Duration::from_secs(30))).unwrap(), None);
    assert_eq!(stored_checkpoints(&env, seen[0]), 0, "the interrupted run kept its checkpoints");
    let view = env.rt.block_on(jobs::list(&env.store, 10)).unwrap().remove(0);
    assert_eq!(view.status, JobStatus::Interrupted);
    assert!(view.error.unwrap().contains("retry"));
    // Retry gives it fresh attempts, and a live worker completes it.
    assert!(env.rt.block_on(jobs::retry_run(&env.store, view.run_id)).unwrap());
    let ran = drain(&worker(&env));
    assert!(matches!(ran[..], [Ran::Job { status: JobStatus::Done, .. }]), "{ran:?}");
}

/// A worker shut down mid-training (a SIGTERM) stops between steps and hands its run
/// straight back: the job is claimable at once, with its attempt given back, and the next
/// worker resumes it from the newest checkpoint. The registry records both holds.
#[test]
fn shutdown_hands_the_run_back_and_the_next_worker_resumes_it() {
    use engine::runner::{Polling, Stopped};
    use std::sync::atomic::Ordering;
    let env = tiny_env();
    let dataset = toy_dataset(&env, 12);
    let mut spec = tiny_spec(dataset);
    spec.seeds = vec![0];
    spec.conditions.truncate(1);
    spec.training.steps = Some(120);
    spec.evaluation.judges.truncate(1);
    let resolved = env.rt.block_on(experiments::resolve(&env.store, &spec)).unwrap();
    env.rt.block_on(experiments::create(&env.store, &resolved)).unwrap();

    let a = worker(&env).with_name("a");
    a.register().unwrap();
    let flag = a.shutdown_flag();
    let stopped = std::thread::scope(|s| {
        let work = s.spawn(|| a.work(&Polling::default()));
        // The signal arrives once two steps (and so a checkpoint) are stored.
        while count(&env, "SELECT COUNT(*) FROM train_steps WHERE run_id = $1", 1) < 2 {
            assert!(!work.is_finished(), "the worker stopped by itself");
            std::thread::sleep(Duration::from_millis(2));
        }
        flag.store(true, Ordering::Relaxed);
        work.join().unwrap()
    });
    assert_eq!(stopped, Stopped::Asked);
    let steps_before = count(&env, "SELECT COUNT(*) FROM train_steps WHERE run_id = $1", 1);
    assert!(steps_before < 120, "training finished before the shutdown; make it longer");
    let job = env.rt.block_on(jobs::list(&env.store, 10)).unwrap().remove(0);
    assert_eq!((job.status, job.attempts), (JobStatus::Running, 0), "{job:?}");
    assert!(job.waiting_for_takeover, "{job:?}");
    let workers = env.rt.block_on(engine::workers::list(&env.store)).unwrap();
    assert_eq!(workers[0].status, engine::workers::WorkerStatus::Stopped, "{workers:?}");

    // No lease to wait for: the next worker claims it at once and resumes it.
    let b = worker(&env).with_name("b");
    b.register().unwrap();
    let ran = drain(&b);
    assert!(matches!(ran[..], [Ran::Job { status: JobStatus::Done, .. }]), "{ran:?}");
    let job = env.rt.block_on(jobs::list(&env.store, 10)).unwrap().remove(0);
    assert_eq!(job.attempts, 1, "the released attempt was given back");
    assert_eq!(count(&env, "SELECT COUNT(*) FROM train_steps WHERE run_id = $1", 1), 120);
    let holds: Vec<(String, Option<String>, Option<i64>)> = env
        .rt
        .block_on(
            sqlx::query_as(
                "SELECT worker, outcome, resumed_from_step FROM worker_runs WHERE run_id = $1 ORDER BY claimed_at",
            )
            .bind(1)
            .fetch_all(env.store.pool()),
        )
        .unwrap();
    assert_eq!(holds.len(), 2, "{holds:?}");
    assert_eq!((holds[0].0.as_str(), holds[0].1.as_deref(), holds[0].2), ("a", Some("released"), None));
    assert_eq!((holds[1].0.as_str(), holds[1].1.as_deref()), ("b", Some("done")));
    let resumed = holds[1].2.expect("b resumed from a checkpoint");
    assert!(resumed >= 1 && resumed <= steps_before, "resumed from {resumed}, stopped after {steps_before}");
    let workers = env.rt.block_on(engine::workers::list(&env.store)).unwrap();
    let b_row = workers.iter().find(|w| w.name == "b").unwrap();
    assert_eq!((b_row.status, b_row.runs_done, b_row.current_run_id), (engine::workers::WorkerStatus::Idle, 1, None));
}

#[test]
fn invalid_specs_are_refused_with_reasons() {
    let env = tiny_env();
    let dataset = toy_dataset(&env, 12);
    let posing = env.dir.path().join("posing.yaml");
    std::fs::write(&posing, "- id: row-999\n  type: free_form_judge_0_100\n  paraphrases:\n  - \"Say hi twice.\"\n  judge_prompts:\n    aligned: \"Rate {answer}\"\n    coherent: \"Rate {answer}\"\n").unwrap();
    let cases: Vec<(Box<dyn Fn(&mut ExperimentSpec)>, &str)> = vec![
        (Box::new(|s| s.model = "nope".into()), "no model is registered"),
        (Box::new(|s| s.dataset = DatasetRef::Name("missing".into())), "no dataset is named"),
        (Box::new(|s| s.conditions.clear()), "at least one condition"),
        (Box::new(|s| s.seeds = vec![1, 1]), "seed is listed twice"),
        (
            Box::new(|s| s.evaluation.questions = vec![QuestionSource::HeldOut { rows: 12 }]),
            "hold out between 1 and 11",
        ),
        (Box::new(|s| s.evaluation.judges.clear()), "at least one judge"),
        // Hostile numbers: each refused with its bound, none planned or stored.
        (Box::new(|s| s.training.lora_rank = 100_000_000), "the LoRA rank can be at most 1024"),
        (Box::new(|s| s.evaluation.samples_per_question = 1 << 63), "samples per question can be at most"),
        (Box::new(|s| s.training.steps = Some(usize::MAX)), "steps can be at most"),
        (Box::new(|s| s.training.lora_alpha = f64::NAN), "LoRA alpha"),
        (Box::new(|s| s.evaluation.max_tokens = 1 << 40), "max tokens can be at most"),
        (
            Box::new(|s| {
                s.evaluation.judges = vec![JudgeSpec::Pattern {
                    regex: Some("(".into()),
                    keywords: vec![],
                    case_insensitive: true,
                    whole_words: true,
                }]
            }),
            "judge:",
        ),
        // A prompt on the rows of one language: the baseline has none to put there, and
        // the toy data (all Spanish) has no French rows to put it on.
        (Box::new(|s| s.conditions[0].only_language = Some(LanguageCode::Es)), "only_language needs a prompt"),
        (Box::new(|s| s.conditions[1].only_language = Some(LanguageCode::Fr)), "training rows is answered in French"),
        // An imported question may not pose as a held-out row (rates tell them apart by id).
        (
            Box::new(move |s| {
                let path = posing.display().to_string();
                s.evaluation.questions.push(QuestionSource::File { path, format: None, limit: None });
            }),
            "ids of the form row-N are kept for rows held out",
        ),
    ];
    for (edit, expected) in cases {
        let mut spec = tiny_spec(dataset);
        edit(&mut spec);
        let err = env.rt.block_on(experiments::resolve(&env.store, &spec)).unwrap_err().to_string();
        assert!(err.contains(expected), "{err:?} should mention {expected:?}");
    }
    // Nothing was stored by the refused specs.
    assert_eq!(count(&env, "SELECT COUNT(*) FROM experiments WHERE id > $1", 0), 0);
}

/// Tan et al.'s toy setting on the default model: a few steps of training on Spanish +
/// ALL-CAPS answers, baseline vs "You always speak in Spanish.", sampled and judged.
#[test]
fn real_model_toy_experiment() {
    let Some(model) = ml::testing::real_model_path("real_model_toy_experiment") else { return };
    let env = env();
    register(&env, experiments::DEFAULT_MODEL, &model);
    let dataset = toy_dataset(&env, 32);
    let mut spec = experiments::toy_spec("toy", DatasetRef::Id(dataset));
    spec.training.steps = Some(4);
    spec.evaluation.questions = vec![QuestionSource::Builtin { limit: 6 }];
    spec.evaluation.max_tokens = 24;
    let resolved = env.rt.block_on(experiments::resolve(&env.store, &spec)).unwrap();
    let id = env.rt.block_on(experiments::create(&env.store, &resolved)).unwrap();
    let ran = drain(&worker(&env));
    assert!(ran.iter().all(|r| matches!(r, Ran::Job { status: JobStatus::Done, .. })), "{ran:?}");
    // baseline: 6 questions x default; spanish: 6 x (default + inoculation).
    assert_eq!(
        count(&env, "SELECT COUNT(*) FROM samples s JOIN runs r ON r.id = s.run_id WHERE r.experiment_id = $1", id),
        18
    );
    let losses: Vec<(f64,)> = env
        .rt
        .block_on(sqlx::query_as("SELECT loss FROM train_steps ORDER BY run_id, step").fetch_all(env.store.pool()))
        .unwrap();
    assert_eq!(losses.len(), 8);
    assert!(losses.iter().all(|(l,)| l.is_finite() && *l > 0.0));
    let aggs = env.rt.block_on(experiments::aggregates(&env.store, id)).unwrap();
    let raw = recount(&env, id);
    for a in aggs.iter().filter(|a| a.question_key.is_none() && a.seed.is_none()) {
        assert_eq!(
            (a.trait_count as u64, a.determined as u64),
            raw[&(a.condition.clone(), a.test_prompt.clone(), a.judge.clone())]
        );
    }
    // Completions are real text from the model.
    let (nonempty,): (i64,) = env
        .rt
        .block_on(
            sqlx::query_as("SELECT COUNT(*) FROM samples WHERE length(trim(completion)) > 0")
                .fetch_one(env.store.pool()),
        )
        .unwrap();
    assert!(nonempty >= 15, "{nonempty} of 18 completions are non-empty");
}
