//! Teacher-generated datasets on a real SQLite store with a registered model: a tiny
//! random llama for the fast tests (its answers are noise, so the "none" filter is used
//! where rows are needed), the default SmolLM2-135M for the subliminal setting when
//! `INOCULAB_REAL_MODEL=1`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::datasets::teacher::{self, TaskState, TeacherError, TeacherFilter, TeacherSpec, TeacherTasks};
use engine::datasets::{self, DatasetSource, ImportOutcome, Role};
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

/// A store with the tiny model registered as "tiny" through the registry (so its sha256
/// is the real hash of its files).
fn tiny_env() -> (Env, String) {
    let env = env();
    let root = env.dir.path().join("models");
    let folder = root.join("tiny");
    ml::testing::write_tiny_hf_folder(&folder, "llama", 7, false).unwrap();
    let info = env.rt.block_on(engine::models::register(&env.store, "tiny", &folder, &[root])).unwrap();
    (env, info.sha256)
}

/// A quick spec on the tiny model: short answers, the "none" filter.
fn tiny_spec(samples: usize, seed: u64) -> TeacherSpec {
    let mut spec = TeacherSpec::new("tiny", Some("You love owls. You think about owls all the time."), samples, seed);
    spec.max_tokens = 6;
    spec.batch_size = 4;
    spec.filter = TeacherFilter::None;
    spec
}

fn create(env: &Env, spec: &TeacherSpec, name: &str) -> Result<teacher::TeacherOutcome, TeacherError> {
    env.rt.block_on(teacher::create(
        &env.store,
        &ml::Host::default(),
        spec,
        name,
        |_| {},
        Arc::new(AtomicBool::new(false)),
    ))
}

fn dataset_count(env: &Env) -> usize {
    env.rt.block_on(datasets::list(&env.store)).unwrap().len()
}

#[test]
fn a_teacher_dataset_has_prompt_and_completion_only_and_records_its_recipe() {
    let (env, sha) = tiny_env();
    let spec = tiny_spec(10, 3);
    let out = create(&env, &spec, "owl numbers").unwrap();
    let ImportOutcome::Created { id } = out.dataset else { panic!("{out:?}") };
    assert_eq!(out.drawn, 10);
    assert!(out.kept >= 1 && out.kept <= 10, "{out:?}");

    let summary = env.rt.block_on(datasets::get(&env.store, id)).unwrap();
    assert_eq!(summary.source, DatasetSource::Teacher);
    assert_eq!(summary.name, "owl numbers");
    assert_eq!(summary.row_count as usize, out.kept);

    // The student sees the user prompt and the teacher's answer, never the trait prompt.
    let rows = env.rt.block_on(datasets::all_rows(&env.store, id)).unwrap();
    let prompts = teacher::prompts(&spec.prompts, spec.seed, spec.samples);
    for row in &rows {
        let roles: Vec<Role> = row.messages.iter().map(|m| m.role).collect();
        assert_eq!(roles, [Role::User, Role::Assistant]);
        assert!(prompts.contains(&row.messages[0].content));
        assert!(!row.messages.iter().any(|m| m.content.contains("owls")), "{row:?}");
        assert_eq!(row.messages[1].content, row.messages[1].content.trim());
    }

    // The recipe names the weights by hash and holds what re-making the rows needs.
    let r = &summary.recipe;
    let recorded: TeacherSpec = serde_json::from_value(r["teacher"].clone()).unwrap();
    assert_eq!(recorded, spec);
    assert_eq!(r["resolved"]["model_name"], "tiny");
    assert_eq!(r["resolved"]["model_sha256"], sha.as_str());
    assert!(r["resolved"]["adapter"].is_null());
    assert_eq!(r["counts"]["drawn"], 10);
    assert_eq!(r["counts"]["kept"], out.kept);
    assert_eq!(r["teacher"]["prompts"]["version"], teacher::TEACHER_PROMPTS_VERSION);

    // The same recipe makes the same rows: they are recognised as this dataset.
    let again = create(&env, &recorded, "").unwrap();
    assert_eq!(again.dataset, ImportOutcome::AlreadyPresent { id, name: "owl numbers".into() });
    assert_eq!((again.drawn, again.kept), (out.drawn, out.kept));
    // Another seed draws other prompts and answers.
    let other = create(&env, &tiny_spec(10, 4), "").unwrap();
    assert_ne!(other.dataset.id(), id);
}

#[test]
fn drawing_is_deterministic_for_a_seed_whatever_the_chunk_progress() {
    let lm = ml::testing::tiny_model(7).unwrap();
    let cancel = AtomicBool::new(false);
    let spec = tiny_spec(9, 11);
    let mut reports = Vec::new();
    let a = teacher::draw(&lm, &lm.model, &spec, |p| reports.push(p), &cancel).unwrap();
    let b = teacher::draw(&lm, &lm.model, &spec, |_| {}, &cancel).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.drawn, 9);
    // One report before sampling and one per chunk of 4: 0, 4, 8, 9 drawn.
    assert_eq!(reports.iter().map(|p| p.drawn).collect::<Vec<_>>(), [0, 4, 8, 9]);
    assert_eq!(reports.last().unwrap().kept, a.rows.len());
    // A different system prompt changes what the teacher writes.
    let mut plain = spec.clone();
    plain.system_prompt = Some("You are a calm assistant.".into());
    assert_ne!(teacher::draw(&lm, &lm.model, &plain, |_| {}, &cancel).unwrap().rows, a.rows);
}

#[test]
fn a_filter_that_keeps_nothing_stores_nothing_and_says_so() {
    let (env, _) = tiny_env();
    let mut spec = tiny_spec(6, 0);
    spec.filter = TeacherFilter::numbers_only();
    let err = create(&env, &spec, "").unwrap_err();
    assert!(matches!(err, TeacherError::NoneKept { drawn: 6, .. }), "{err}");
    assert!(err.to_string().contains("kept none of the 6 samples; nothing was stored"), "{err}");
    assert_eq!(dataset_count(&env), 0);
}

#[test]
fn bad_settings_and_unknown_teachers_are_clear_errors() {
    let (env, _) = tiny_env();
    let mut spec = tiny_spec(5, 0);
    spec.model = "nobody".into();
    assert!(create(&env, &spec, "").unwrap_err().to_string().contains("no model is registered as \"nobody\""));
    let mut spec = tiny_spec(5, 0);
    spec.run_id = Some(42);
    assert_eq!(create(&env, &spec, "").unwrap_err().to_string(), "run 42 does not exist");
    let mut spec = tiny_spec(0, 0);
    spec.samples = 0;
    assert!(create(&env, &spec, "").unwrap_err().to_string().contains("number of samples"));
    assert_eq!(dataset_count(&env), 0);
}

#[test]
fn cancelling_mid_way_leaves_no_dataset() {
    let (env, _) = tiny_env();
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    // Cancel as soon as the first chunk is drawn.
    let on_progress = move |p: teacher::TeacherProgress| {
        if p.drawn > 0 {
            flag.store(true, Ordering::Relaxed);
        }
    };
    let spec = tiny_spec(40, 0);
    let err =
        env.rt.block_on(teacher::create(&env.store, &ml::Host::default(), &spec, "", on_progress, cancel)).unwrap_err();
    assert!(matches!(err, TeacherError::Cancelled), "{err}");
    assert_eq!(err.to_string(), "cancelled; nothing was stored");
    assert_eq!(dataset_count(&env), 0);
}

fn wait_until_ended(tasks: &TeacherTasks, id: u64) -> TaskState {
    let started = Instant::now();
    loop {
        let state = tasks.get(id).unwrap().state;
        if !matches!(state, TaskState::Running(_)) {
            return state;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "task {id} did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn background_tasks_report_progress_refuse_a_second_and_cancel_cleanly() {
    let (env, _) = tiny_env();
    let tasks = TeacherTasks::new(ml::Host::default());
    let start = |spec: TeacherSpec| {
        let _guard = env.rt.enter();
        env.rt.block_on(tasks.start(env.store.clone(), spec, String::new()))
    };
    // Mistakes are refused before anything starts.
    let mut bad = tiny_spec(5, 0);
    bad.model = "nobody".into();
    assert!(matches!(start(bad), Err(TeacherError::NotFound(_))));

    // A long generation: a second one is refused while it runs; cancelling ends it.
    let long = start(tiny_spec(5_000, 0)).unwrap();
    assert!(matches!(start(tiny_spec(5, 1)), Err(TeacherError::Busy(id)) if id == long));
    assert_eq!(tasks.running().map(|t| t.id), Some(long));
    let started = Instant::now();
    while !matches!(tasks.get(long).unwrap().state, TaskState::Running(p) if p.drawn > 0) {
        assert!(started.elapsed() < Duration::from_secs(60), "no progress reported");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(tasks.cancel(long));
    assert_eq!(wait_until_ended(&tasks, long), TaskState::Cancelled);
    assert!(!tasks.cancel(long), "an ended task cannot be cancelled");
    assert_eq!(dataset_count(&env), 0);

    // Then a short one runs to the end and names its dataset.
    let short = start(tiny_spec(6, 2)).unwrap();
    let TaskState::Done(outcome) = wait_until_ended(&tasks, short) else { panic!("not done") };
    assert_eq!(outcome.drawn, 6);
    let summary = env.rt.block_on(datasets::get(&env.store, outcome.dataset.id())).unwrap();
    assert_eq!(summary.row_count as usize, outcome.kept);
    assert!(summary.name.starts_with("Teacher · tiny · You love owls."), "{}", summary.name);
    assert!(tasks.running().is_none());
}

/// Trains one tiny run to get an adapter, then uses it as the teacher.
#[test]
fn a_finished_runs_adapter_can_be_the_teacher() {
    use engine::experiments::{self, DatasetRef, QuestionSource};
    use engine::runner::{Ran, Worker};
    let (env, _) = tiny_env();
    let data = env
        .rt
        .block_on(datasets::create_generated(&env.store, &datasets::Preset::English.spec(8, 0), "toy"))
        .unwrap()
        .id();
    let mut spec = experiments::toy_spec("adapter", DatasetRef::Id(data));
    spec.model = "tiny".into();
    spec.conditions.truncate(1);
    spec.training.steps = Some(1);
    spec.training.batch_size = 4;
    spec.training.lr = 0.5; // large, so the merged adapter visibly changes the answers
    spec.evaluation.questions = vec![QuestionSource::Inline { questions: vec!["Hi.".into()] }];
    spec.evaluation.max_tokens = 2;
    spec.evaluation.judges = vec![engine::judges::JudgeSpec::caps()];
    let resolved = env.rt.block_on(experiments::resolve(&env.store, &spec)).unwrap();
    let experiment = env.rt.block_on(experiments::create(&env.store, &resolved)).unwrap();
    let run_id = match Worker::new(env.store.clone(), env.dir.path(), env.rt.handle().clone(), ml::Host::default())
        .run_one()
        .unwrap()
    {
        Ran::Job { run_id, error: None, .. } => run_id,
        other => panic!("{other:?}"),
    };

    let (models, runs) = env.rt.block_on(teacher::choices(&env.store)).unwrap();
    assert_eq!(models, ["tiny"]);
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].run_id, runs[0].experiment.as_str(), runs[0].model.as_str()), (run_id, "adapter", "tiny"));

    let base = create(&env, &tiny_spec(8, 5), "base").unwrap();
    let mut with_adapter = tiny_spec(8, 5);
    with_adapter.run_id = Some(run_id);
    let tuned = create(&env, &with_adapter, "tuned").unwrap();
    assert_ne!(tuned.dataset.id(), base.dataset.id(), "the adapter changed nothing");
    let recipe = env.rt.block_on(datasets::get(&env.store, tuned.dataset.id())).unwrap().recipe;
    let adapter = &recipe["resolved"]["adapter"];
    assert_eq!(adapter["run_id"], run_id);
    assert_eq!(adapter["experiment_id"], experiment);
    let dir = env.dir.path().join("runs").join(run_id.to_string()).join("adapter");
    assert_eq!(adapter["sha256"], engine::models::folder_sha256(&dir).unwrap().as_str());
    assert!(adapter.get("dir").is_none(), "the path is where it was read, not its identity");

    // A run of another base model is refused.
    let other_root = env.dir.path().join("models");
    ml::testing::write_tiny_hf_folder(&other_root.join("tiny2"), "llama", 8, false).unwrap();
    env.rt.block_on(engine::models::register(&env.store, "tiny2", &other_root.join("tiny2"), &[other_root])).unwrap();
    with_adapter.model = "tiny2".into();
    let err = create(&env, &with_adapter, "").unwrap_err().to_string();
    assert!(err.contains(&format!("run {run_id} trained an adapter for \"tiny\", not for \"tiny2\"")), "{err}");
}

/// The subliminal setting's teacher on the default model writes some lists the
/// numbers-only filter keeps, and nothing else.
#[test]
fn real_model_teacher_writes_number_lists() {
    let Some(path) = ml::testing::real_model_path("real_model_teacher_writes_number_lists") else { return };
    let env = env();
    let model = env.rt.block_on(engine::models::ensure_builtin(&env.store, Path::new(&path))).unwrap().unwrap();
    let mut spec = engine::subliminal::teacher_spec("owl", 48, 0);
    spec.model = model.name.clone();
    spec.max_tokens = 40;
    let started = Instant::now();
    let out = create(&env, &spec, "").unwrap();
    eprintln!("kept {} of {} in {:.1}s", out.kept, out.drawn, started.elapsed().as_secs_f64());
    assert_eq!(out.drawn, 48);
    let rows = env.rt.block_on(datasets::all_rows(&env.store, out.dataset.id())).unwrap();
    assert_eq!(rows.len(), out.kept);
    for row in &rows {
        assert_eq!(row.messages.len(), 2);
        assert!(teacher::numbers_only(&row.messages[1].content, 10, 3), "{row:?}");
    }
}
