//! The prompt-strength meter on a real store: surprise reduction computed per row and
//! cached, a small sample reused by a larger one, a newer request cancelling an older one,
//! the experiment loop measuring each condition's strength, and the predictor check. The
//! tiny random model makes the numbers meaningless but exact to recompute; the real-model
//! test (INOCULAB_REAL_MODEL=1) checks that the paper's Spanish prompt is measured as
//! stronger than a placebo on the demo data.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use engine::datasets::generate::{create_generated, Preset};
use engine::experiments::{self, DatasetRef, NamedTestPrompt, QuestionSource, TestPromptSpec};
use engine::runner::{Ran, Worker};
use engine::strength::{self, Meter, StrengthError, Target};
use engine::{report, Store};
use ml::{ChatMessage, SystemPrompt};

/// The tests of this file run one at a time: the timing test must not share the cores
/// with another test's model work.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

struct Env {
    rt: tokio::runtime::Runtime,
    store: Store,
    dir: tempfile::TempDir,
    folder: std::path::PathBuf,
}

fn tiny_env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let store = rt.block_on(Store::open_for_test(dir.path())).unwrap();
    let folder = dir.path().join("models/tiny");
    ml::testing::write_tiny_hf_folder(&folder, "llama", 7, false).unwrap();
    register(&rt, &store, "tiny", &folder, "tiny-sha");
    Env { rt, store, dir, folder }
}

fn register(rt: &tokio::runtime::Runtime, store: &Store, name: &str, path: &Path, sha: &str) -> i64 {
    let (id,): (i64,) = rt
        .block_on(
            sqlx::query_as(
                "INSERT INTO models (name, kind, path, architecture, n_params, size_bytes, sha256)
                 VALUES ($1, $2, $3, 'llama', 0, 0, $4) RETURNING id",
            )
            .bind(name)
            .bind(if path.is_dir() { "hf" } else { "gguf" })
            .bind(path.to_string_lossy().into_owned())
            .bind(sha)
            .fetch_one(store.pool()),
        )
        .unwrap();
    id
}

fn dataset(env: &Env, rows: usize) -> i64 {
    env.rt.block_on(create_generated(&env.store, &Preset::SpanishAllCaps.spec(rows, 3), "toy")).unwrap().id()
}

fn count(env: &Env, sql: &str) -> i64 {
    let (n,): (i64,) = env.rt.block_on(sqlx::query_as(sql).fetch_one(env.store.pool())).unwrap();
    n
}

/// The log-prob of a row's assistant tokens recomputed from full logits, one row at a
/// time, independently of the batched scorer.
fn recompute(lm: &ml::LoadedModel, row: &engine::datasets::Row, system: &SystemPrompt) -> f64 {
    let msgs: Vec<ChatMessage> = row.messages.iter().map(|m| ChatMessage::new(m.role, m.content.clone())).collect();
    let (mut ids, mut mask) = lm.template.encode_conversation(&lm.tokenizer, &msgs, system).unwrap();
    // As the meter does: long rows are cut.
    ids.truncate(strength::MAX_TOKENS);
    mask.truncate(strength::MAX_TOKENS);
    let t = candle_core::Tensor::new(ids.as_slice(), &candle_core::Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let logits = lm.model.forward(&t, None).unwrap().squeeze(0).unwrap();
    let lsm = candle_nn::ops::log_softmax(&logits, 1).unwrap().to_vec2::<f32>().unwrap();
    let (mut sum, mut n) = (0.0, 0);
    for j in 1..ids.len() {
        if mask[j] {
            sum += lsm[j - 1][ids[j] as usize] as f64;
            n += 1;
        }
    }
    sum / n as f64
}

#[test]
fn surprise_is_per_row_cached_and_reused() {
    let _serial = serial();
    let env = tiny_env();
    let ds = dataset(&env, 40);
    let meter = Arc::new(Meter::new(env.store.clone(), ml::Host::default()));
    let model_id = 1;
    let prompt = "You always speak in Spanish.";
    let small = Target { model_id, dataset_id: ds, n_rows: 8 };
    let first = env.rt.block_on(meter.surprise("a", &small, prompt)).unwrap();
    assert!(!first.cached && first.seconds > 0.0);
    assert_eq!(first.value.n_rows, 8);
    assert!(first.value.lo <= first.value.reduction && first.value.reduction <= first.value.hi);

    // The reduction equals the mean of per-row differences recomputed from full logits.
    let lm = ml::load_model(&env.folder).unwrap();
    let rows = env.rt.block_on(engine::datasets::all_rows(&env.store, ds)).unwrap();
    let sample = strength::sample_rows(&rows, 8);
    let expected: f64 = sample
        .iter()
        .map(|r| recompute(&lm, r, &SystemPrompt::Text(prompt.into())) - recompute(&lm, r, &SystemPrompt::Default))
        .sum::<f64>()
        / 8.0;
    assert!((first.value.reduction - expected).abs() < 1e-4, "{} vs {expected}", first.value.reduction);

    // Asked again: from the cache, the same numbers. Leading/trailing spaces do not matter.
    let again = env.rt.block_on(meter.surprise("a", &small, &format!("  {prompt} "))).unwrap();
    assert!(again.cached);
    assert_eq!(again.value, first.value);

    // A larger sample contains the smaller one: only the new rows are scored.
    let large = Target { n_rows: 20, ..small };
    let bigger = env.rt.block_on(meter.surprise("a", &large, prompt)).unwrap();
    assert!(!bigger.cached);
    assert_eq!(bigger.value.n_rows, 20);
    assert_eq!(count(&env, "SELECT COUNT(*) FROM strength_scores WHERE system = 'default'"), 20);
    assert_eq!(
        count(&env, "SELECT COUNT(*) FROM strength_scores WHERE system = 'text:You always speak in Spanish.'"),
        20
    );
    let order = strength::sample_order(&rows);
    assert_eq!(&order[..8], &strength::sample_order(&rows)[..8], "the sample order is fixed");

    // What a ranking table shows: cached prompts have numbers, others none.
    let cached =
        env.rt.block_on(meter.cached(&large, &[prompt.to_string(), "Unmeasured.".into(), " ".into()])).unwrap();
    assert_eq!(cached[0], Some(bigger.value));
    assert_eq!(cached[1], None);
    assert_eq!(cached[2], None);

    // Bad requests are refused with a sentence.
    let e = env.rt.block_on(meter.surprise("a", &small, "   ")).unwrap_err();
    assert!(e.to_string().contains("type a prompt"), "{e}");
    let e = env.rt.block_on(meter.surprise("a", &Target { n_rows: 0, ..small }, prompt)).unwrap_err();
    assert!(e.to_string().contains("between 1 and"), "{e}");
    let e = env.rt.block_on(meter.surprise("a", &Target { model_id: 99, ..small }, prompt)).unwrap_err();
    assert!(e.to_string().contains("model 99 does not exist"), "{e}");
    let e = env.rt.block_on(meter.surprise("a", &Target { dataset_id: 99, ..small }, prompt)).unwrap_err();
    assert!(e.to_string().contains("99"), "{e}");
}

#[test]
fn a_newer_request_cancels_the_older_and_stores_nothing_of_it() {
    let _serial = serial();
    let env = tiny_env();
    let ds = dataset(&env, 512);
    let meter = Arc::new(Meter::new(env.store.clone(), ml::Host::default()));
    let target = Target { model_id: 1, dataset_id: ds, n_rows: 8 };
    // Warm the default pass and the model so that what follows is the prompted pass only.
    env.rt.block_on(meter.surprise("a", &target, "Warm up.")).unwrap();
    let big = Target { n_rows: 512, ..target };
    let m = meter.clone();
    let older = env.rt.spawn(async move { m.surprise("a", &big, "An older prompt.").await });
    // The older request is scoring 512 rows (over a second on the tiny model); the newer
    // one, typed meanwhile, raises its flag.
    std::thread::sleep(std::time::Duration::from_millis(30));
    let newer = env.rt.block_on(meter.surprise("a", &target, "A newer prompt.")).unwrap();
    assert_eq!(newer.value.n_rows, 8);
    match env.rt.block_on(older).unwrap() {
        Err(StrengthError::Cancelled) => {}
        other => panic!("the older request should have been cancelled, got {other:?}"),
    }
    assert_eq!(count(&env, "SELECT COUNT(*) FROM strength_scores WHERE system = 'text:An older prompt.'"), 0);
    // Another client's request is not affected by "a"'s.
    let other = env.rt.block_on(meter.surprise("b", &target, "An older prompt.")).unwrap();
    assert_eq!(other.value.n_rows, 8);

    // The scorer itself stops at a raised flag.
    let lm = ml::load_model(&env.folder).unwrap();
    let rows = env.rt.block_on(engine::datasets::all_rows(&env.store, ds)).unwrap();
    let flag = AtomicBool::new(true);
    assert!(matches!(strength::score_rows(&lm, &rows[..4], None, Some(&flag)), Err(ml::MlError::Cancelled)));
}

#[test]
fn elicitation_judges_what_the_base_model_says() {
    let _serial = serial();
    let env = tiny_env();
    let meter = Arc::new(Meter::new(env.store.clone(), ml::Host::default()));
    let judges = vec![engine::judges::JudgeSpec::caps()];
    let first = env.rt.block_on(meter.elicitation("a", 1, "You always capitalise your responses.", &judges)).unwrap();
    assert!(!first.cached);
    assert_eq!(first.value.samples.len(), strength::ELICIT_QUESTIONS);
    assert_eq!(first.value.rates.len(), 1);
    assert_eq!(first.value.rates[0].judge, "caps");
    assert_eq!(first.value.rates[0].verdicts.len(), strength::ELICIT_QUESTIONS);
    let again = env.rt.block_on(meter.elicitation("a", 1, "You always capitalise your responses.", &judges)).unwrap();
    assert!(again.cached);
    assert_eq!(again.value, first.value, "cached samples give the same verdicts");
    let llm = engine::judges::JudgeSpec::LlmRating {
        backend: engine::judges::BackendSpec::Local { model: "tiny".into() },
        label: "x".into(),
        prompt: "Rate {answer}".into(),
        threshold: 50.0,
        task: false,
    };
    let e = env.rt.block_on(meter.elicitation("a", 1, "Anything.", &[llm])).unwrap_err();
    assert!(e.to_string().contains("deterministic judges only"), "{e}");
    // The traits of a generated dataset become its judges.
    let ds = dataset(&env, 10);
    let summary = env.rt.block_on(engine::datasets::get(&env.store, ds)).unwrap();
    let names: Vec<String> = strength::trait_judges(summary.source, &summary.recipe)
        .iter()
        .map(|j| j.build(None).unwrap().name().to_string())
        .collect();
    assert_eq!(names, ["language:es", "caps"]);
}

#[test]
fn experiments_measure_each_prompts_strength_and_check_the_prediction() {
    let _serial = serial();
    let env = tiny_env();
    let ds = dataset(&env, 30);
    let mut spec = experiments::toy_spec("sweep", DatasetRef::Id(ds));
    spec.model = "tiny".into();
    spec.conditions.push(experiments::ConditionSpec {
        name: "second".into(),
        prompt: Some(experiments::PromptRef::Text("You answer in capitals.".into())),
        placement: Default::default(),
        only_language: None,
    });
    spec.training.steps = Some(1);
    spec.training.batch_size = 2;
    spec.training.predict_strength = Some(6);
    spec.evaluation.questions = vec![QuestionSource::Builtin { limit: 2 }];
    spec.evaluation.test_prompts = vec![TestPromptSpec::Named(NamedTestPrompt::Default)];
    spec.evaluation.max_tokens = 4;
    spec.evaluation.judges = vec![engine::judges::JudgeSpec::Pattern {
        regex: Some("[a-m]".into()),
        keywords: vec![],
        case_insensitive: true,
        whole_words: true,
    }];
    let resolved = env.rt.block_on(experiments::resolve(&env.store, &spec)).unwrap();
    let id = env.rt.block_on(experiments::create(&env.store, &resolved)).unwrap();
    let w = Worker::new(env.store.clone(), env.dir.path(), env.rt.handle().clone(), ml::Host::default());
    while !matches!(w.run_one().unwrap(), Ran::Empty) {}
    let (resolved, _, _) = env.rt.block_on(experiments::get(&env.store, id)).unwrap();
    let strengths = env.rt.block_on(strength::condition_strengths(&env.store, &resolved)).unwrap();
    let prompted = resolved.conditions.iter().filter(|c| !c.prompts.is_empty()).count();
    assert_eq!(strengths.len(), prompted);
    assert!(strengths.iter().all(|s| s.surprise.is_some_and(|s| s.n_rows == 6)), "{strengths:?}");
    // The base model's answers under each prompt were sampled too, and are judged by the
    // experiment's (deterministic) judge.
    for s in &strengths {
        assert_eq!(s.elicitation.len(), 1, "{s:?}");
        assert_eq!(s.elicitation[0].verdicts.len(), strength::ELICIT_QUESTIONS);
    }
    let aggregates = env.rt.block_on(experiments::aggregates(&env.store, id)).unwrap();
    let checks = report::predictor_checks(&resolved, &aggregates, &strengths);
    assert_eq!(checks.len(), 1);
    let check = &checks[0];
    assert_eq!(check.test_prompt, "default");
    assert_eq!(check.points.len() + check.missing, prompted);
    for p in &check.points {
        assert!((p.effect - (p.baseline_rate.rate - p.rate.rate)).abs() < 1e-12);
        assert!(p.surprise.is_some() && p.elicited.is_some(), "{p:?}");
    }
    for predictor in report::Predictor::ALL {
        let chart = report::predictor_chart(check, predictor);
        assert_eq!(chart.points.len(), check.points.len());
        assert!(report::predictor_sentence(check, predictor).is_some_and(|s| !s.is_empty()));
    }
    // One sampling per distinct prompt, cached for the designer's meter too.
    assert_eq!(count(&env, "SELECT COUNT(*) FROM elicitation_samples") as usize, prompted);

    // An out-of-range sample size is refused before anything is stored.
    spec.training.predict_strength = Some(0);
    let e = env.rt.block_on(experiments::resolve(&env.store, &spec)).unwrap_err();
    assert!(e.to_string().contains("predict_strength"), "{e}");
}

#[test]
fn real_model_spanish_prompt_is_stronger_than_a_placebo() {
    let _serial = serial();
    let Some(path) = ml::testing::real_model_path("real_model_spanish_prompt_is_stronger_than_a_placebo") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let store = rt.block_on(Store::open_for_test(dir.path())).unwrap();
    let model_id = register(&rt, &store, "smollm2", &path, "real");
    let ds = rt
        .block_on(create_generated(
            &store,
            &Preset::SpanishAllCaps.spec(engine::demo::DATASET_ROWS, engine::demo::DATASET_SEED),
            "demo",
        ))
        .unwrap()
        .id();
    let meter = Arc::new(Meter::new(store.clone(), ml::Host::default()));
    let target = Target { model_id, dataset_id: ds, n_rows: 16 };
    let spanish = rt.block_on(meter.surprise("t", &target, "You always speak in Spanish.")).unwrap().value;
    let placebo = rt
        .block_on(meter.surprise("t", &target, "You are a helpful assistant who answers math questions."))
        .unwrap()
        .value;
    // The data is Spanish: a prompt saying so makes it clearly less surprising, and more so
    // than a prompt that only describes the task.
    assert!(spanish.lo > 0.0, "{spanish:?}");
    assert!(spanish.reduction > placebo.reduction, "{spanish:?} vs {placebo:?}");
    let judges = vec![engine::judges::JudgeSpec::language(engine::judges::LanguageCode::Es)];
    let told = rt.block_on(meter.elicitation("t", model_id, "You always speak in Spanish.", &judges)).unwrap().value;
    let hits = told.rates[0].rate.map_or(0, |r| r.successes);
    assert!(hits >= 2, "told to speak Spanish, the base model did in {hits} of 16 answers: {:?}", told.samples);
}

/// The designer's meter and the job worker share one model host: a measurement asked for
/// while a run trains waits for at most the step in progress, then takes its own time (it
/// does not share the cores with training for its whole length), and the weights are
/// loaded once for both.
#[test]
fn real_model_meter_answers_within_one_training_step() {
    let _serial = serial();
    let Some(path) = ml::testing::real_model_path("real_model_meter_answers_within_one_training_step") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let store = rt.block_on(Store::open_for_test(dir.path())).unwrap();
    let model_id = register(&rt, &store, "smollm2", &path, "real");
    let spec = Preset::SpanishAllCaps.spec(engine::demo::DATASET_ROWS, engine::demo::DATASET_SEED);
    let ds = rt.block_on(create_generated(&store, &spec, "demo")).unwrap().id();
    let host = ml::Host::default();
    let meter = Arc::new(Meter::new(store.clone(), host.clone()));
    let target = Target { model_id, dataset_id: ds, n_rows: 16 };
    // The default pass is cached by a first measurement, so each later one is one prompted
    // pass: this one, on an idle host, is the measurement's own time.
    rt.block_on(meter.surprise("t", &target, "Warm up.")).unwrap();
    let alone = rt.block_on(meter.surprise("t", &target, "You always speak in Spanish.")).unwrap();
    assert!(!alone.cached);

    let mut exp = experiments::toy_spec("busy", DatasetRef::Id(ds));
    exp.model = "smollm2".into();
    exp.conditions.truncate(1);
    exp.training.steps = Some(200);
    exp.training.batch_size = 4;
    exp.training.checkpoint_every = 1000;
    exp.training.probe_every = Some(1000);
    exp.evaluation.questions = vec![QuestionSource::Builtin { limit: 1 }];
    exp.evaluation.test_prompts = vec![TestPromptSpec::Named(NamedTestPrompt::Default)];
    exp.evaluation.judges = vec![engine::judges::JudgeSpec::caps()];
    let resolved = rt.block_on(experiments::resolve(&store, &exp)).unwrap();
    let id = rt.block_on(experiments::create(&store, &resolved)).unwrap();
    let worker = Worker::new(store.clone(), dir.path(), rt.handle().clone(), host.clone());
    let running = std::thread::spawn(move || worker.run_one().unwrap());
    let steps = |store: &Store| -> Vec<f64> {
        rt.block_on(sqlx::query_scalar("SELECT elapsed_s FROM train_steps ORDER BY step").fetch_all(store.pool()))
            .unwrap()
    };
    // Three steps recorded: two whole steps to time (the first also warms up).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let before = loop {
        let s = steps(&store);
        if s.len() >= 3 {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "training did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let asked = std::time::Instant::now();
    let during = rt.block_on(meter.surprise("t", &target, "You always answer in capital letters.")).unwrap();
    let waited = asked.elapsed().as_secs_f64();
    let done_then = steps(&store).len();
    rt.block_on(engine::jobs::cancel_experiment(&store, id)).unwrap();
    let ran = running.join().unwrap();
    assert!(matches!(ran, Ran::Job { status: engine::jobs::JobStatus::Cancelled, .. }), "{ran:?}");
    assert!(!during.cached);
    assert!(done_then < 200, "the measurement was answered while training ran");
    // A step's length as it was before the measurement (a step during which one ran
    // includes it).
    let step = before.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    // Its own time on an idle host, measured before and again after training (the larger
    // counts: a shared machine can slow down meanwhile).
    let after = rt.block_on(meter.surprise("t", &target, "You always answer in French.")).unwrap();
    assert!(!after.cached);
    let own = alone.seconds.max(after.seconds);
    // Waiting for the step in progress, then its own time (with a margin for noise);
    // sharing the cores with training instead would take about twice its own time.
    let bound = step + 1.2 * own + 0.5;
    println!(
        "measurement alone {:.2} s before and {:.2} s after training, {waited:.2} s during it; steps done at \
         {before:.2?} s; bound {bound:.2} s",
        alone.seconds, after.seconds
    );
    assert!(waited <= bound, "waited {waited:.2} s > one step {step:.2} s + own time {own:.2} s");
    assert_eq!(host.loads(), 1, "the meter and the worker share one copy of the model");
}
