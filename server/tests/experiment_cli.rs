//! The experiment loop through the real binary: `inoculab run experiment.toml`, and crash
//! safety — `kill -9` of a serving process in the middle of training, then a restart that
//! resumes the run from its last checkpoint. Both need the default model
//! (`INOCULAB_REAL_MODEL=1`; CI sets it).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn real_model() -> Option<PathBuf> {
    if std::env::var("INOCULAB_REAL_MODEL").ok().as_deref() != Some("1") {
        eprintln!("skipped: set INOCULAB_REAL_MODEL=1 to run the experiment CLI tests");
        return None;
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.data/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(p.exists(), "INOCULAB_REAL_MODEL=1 but {} is missing (run scripts/fetch-model)", p.display());
    Some(p)
}

/// Each test here runs processes that train the real model (several GB each, 2 threads
/// each). Side by side on a 2-core, 24 GB machine they gain no time and together came
/// within 1 GB of the memory limit (a CI run lost `demo` without a word, most likely to
/// the OOM killer), so they take turns.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A test that failed while holding the turn must not fail the others.
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

fn command(data_dir: &Path, model: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_inoculab"));
    c.arg("--data-dir").arg(data_dir).arg("--default-model").arg(model);
    c.env_remove("INOCULAB_DATA_DIR").env("RUST_LOG", "warn");
    c
}

fn output(mut c: Command) -> Output {
    let out = c.output().expect("the binary runs");
    // The status says whether it exited with an error or was killed (a signal, the OOM
    // killer), which an empty stderr alone cannot.
    assert!(
        out.status.success(),
        "failed ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

const EXPERIMENT: &str = r#"
name = "crash test"
dataset = "toy"
seeds = [0]

[[conditions]]
name = "spanish"
prompt = "You always speak in Spanish."

[training]
steps = STEPS
batch_size = 4
checkpoint_every = 2
# The toy rows cut to their first answer tokens: these tests are about processes, leases
# and checkpoints, and every step costs CI time.
max_seq_len = 64

[evaluation]
test_prompts = ["default"]
max_tokens = 12
questions = [{ kind = "builtin", limit = 4 }]
judges = [{ kind = "language", target = "es" }, { kind = "caps" }]
"#;

fn setup(steps: usize) -> Option<(tempfile::TempDir, PathBuf, PathBuf)> {
    let model = real_model()?;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut generate = command(&data, &model);
    generate.args(["dataset", "generate", "--preset", "spanish_all_caps", "--rows", "48", "--name", "toy"]);
    output(generate);
    let file = dir.path().join("experiment.toml");
    std::fs::write(&file, EXPERIMENT.replace("STEPS", &steps.to_string())).unwrap();
    Some((dir, data, file))
}

fn query(data: &Path, sql: &str) -> Vec<Vec<String>> {
    common::query(data, None, sql)
}

fn scalar(data: &Path, sql: &str) -> String {
    query(data, sql).first().and_then(|r| r.first().cloned()).unwrap_or_default()
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn serve(data: &Path, model: &Path) -> Child {
    serve_on(data, model, &[]).0
}

/// A serving process and its port.
fn serve_on(data: &Path, model: &Path, extra: &[&str]) -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut c = command(data, model);
    c.args(["serve", "--port", &port.to_string()]).args(extra).env("INOCULAB_LEASE_SECS", "3");
    (c.stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().expect("the server starts"), port)
}

/// A page's status code and body, over plain HTTP/1.0 (so the body is not chunked), or
/// None while nothing listens yet.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

#[test]
fn run_command_trains_samples_judges_and_reports() {
    let _turn = one_at_a_time();
    let Some((_dir, data, file)) = setup(2) else { return };
    let model = real_model().unwrap();
    let mut run = command(&data, &model);
    run.arg("run").arg(&file);
    let out = output(run);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 run x 2 steps"), "{stdout}");
    assert!(stdout.contains("1 of 1 runs done"), "{stdout}");
    assert!(stdout.contains("language:es"), "{stdout}");
    assert_eq!(scalar(&data, "SELECT COUNT(*) FROM samples"), "4");
    assert_eq!(scalar(&data, "SELECT COUNT(*) FROM judgements"), "8");

    // A malformed file is refused with its line, and nothing is stored.
    std::fs::write(&file, "name = \"x\"\nseeds = [0\n").unwrap();
    let mut bad = command(&data, &model);
    bad.arg("run").arg(&file);
    let out = bad.output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2") || stderr.contains("line 3"), "{stderr}");
    assert_eq!(scalar(&data, "SELECT COUNT(*) FROM experiments"), "1");
}

#[test]
fn kill_9_mid_training_then_restart_resumes_from_the_checkpoint() {
    let _turn = one_at_a_time();
    let Some((_dir, data, file)) = setup(10) else { return };
    let model = real_model().unwrap();
    let mut queue = command(&data, &model);
    queue.arg("run").arg(&file).arg("--detach");
    output(queue);

    // Start serving; kill it hard once a checkpoint exists and training has gone past it.
    let mut server = serve(&data, &model);
    wait_for("a checkpoint and a step past it", Duration::from_secs(600), || {
        let step: i64 = scalar(&data, "SELECT COALESCE(MAX(step), 0) FROM train_steps").parse().unwrap_or(0);
        let has_checkpoint = std::fs::read_dir(data.join("runs/1/checkpoints"))
            .map(|d| d.filter_map(|e| e.ok()).any(|e| e.path().join("trainer_state.json").exists()))
            .unwrap_or(false);
        has_checkpoint && step >= 3
    });
    server.kill().unwrap(); // SIGKILL: no cleanup runs
    server.wait().unwrap();
    let killed_at: i64 = scalar(&data, "SELECT MAX(step) FROM train_steps").parse().unwrap();
    assert!(killed_at < 10, "training finished before the kill; make it longer");
    assert_eq!(scalar(&data, "PRAGMA integrity_check"), "ok");
    assert_eq!(scalar(&data, "SELECT status FROM jobs"), "running", "the dead worker's lease is still held");

    // Restart: once the lease runs out, the new worker takes the run over and finishes it.
    let mut server = serve(&data, &model);
    wait_for("the run to finish", Duration::from_secs(600), || {
        matches!(scalar(&data, "SELECT status FROM jobs").as_str(), "done" | "failed" | "interrupted")
    });
    server.kill().unwrap();
    server.wait().unwrap();
    let job = query(&data, "SELECT status, attempts, COALESCE(error, '') FROM jobs").remove(0);
    assert_eq!(job[..2], ["done".to_string(), "2".to_string()], "{job:?}");
    // Every step recorded once; the steps after the checkpoint were redone by a fresh
    // process, whose clock restarted: the resumed trainer did not start from step 1.
    let steps = query(&data, "SELECT step, elapsed_s FROM train_steps ORDER BY step");
    assert_eq!(steps.len(), 10);
    let elapsed: Vec<f64> = steps.iter().map(|r| r[1].parse().unwrap()).collect();
    assert!(elapsed.windows(2).any(|w| w[1] < w[0]), "no restart visible in {elapsed:?}");
    assert_eq!(scalar(&data, "SELECT COUNT(*) FROM samples"), "4");
    assert_eq!(scalar(&data, "SELECT COUNT(*) FROM judgements"), "8");
    assert!(data.join("runs/1/adapter/adapter_config.json").exists());
    assert_eq!(scalar(&data, "PRAGMA integrity_check"), "ok");
}

/// The built-in demo's whole pipeline at its tiny size: the dataset made from nothing, four
/// conditions trained, sampled and judged, and the findings printed in words.
#[test]
fn demo_runs_end_to_end_and_tells_the_story() {
    let _turn = one_at_a_time();
    let Some(model) = real_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut demo = command(dir.path(), &model);
    demo.args(["demo", "--tiny"]);
    let out = output(demo);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("experiment 1: 4 of 4 runs done"), "{stdout}");
    // The story is the report's headline: what the baseline learnt, one sentence per
    // prompted condition (by its short name), and whether the answers are readable.
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("- Fine-tuned without a prompt (baseline)")).count(),
        1,
        "{stdout}"
    );
    for condition in ["spanish-inoculated", "caps-inoculated", "placebo"] {
        let n = stdout.lines().filter(|l| l.starts_with(&format!("- Trained with the prompt of {condition}"))).count();
        assert_eq!(n, 1, "{condition}: {stdout}");
    }
    assert!(stdout.lines().any(|l| l.contains("read as language")), "{stdout}");
    assert!(stdout.contains("/experiments/1/report"), "{stdout}");
    // The report renders: the story, its chart, and (nobody has pinned any) one typical
    // answer per condition.
    let (mut server, port) = serve_on(dir.path(), &model, &["--no-worker"]);
    let mut page = None;
    wait_for("the report page", Duration::from_secs(60), || {
        page = http_get(port, "/experiments/1/report");
        page.is_some()
    });
    server.kill().unwrap();
    server.wait().unwrap();
    let (status, html) = page.unwrap();
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Demo (tiny)"), "{html}");
    assert!(html.contains("data-chart=\"rates\""), "{html}");
    assert!(html.contains("One typical answer per training condition"), "{html}");
    assert_eq!(html.matches("class=\"sample\"").count(), 4, "{html}");
    // The dataset is generated once: a second demo reuses it.
    let mut again = command(dir.path(), &model);
    again.args(["demo", "--tiny", "--dry-run"]);
    output(again);
    let mut list = command(dir.path(), &model);
    list.args(["dataset", "list"]);
    let listed = String::from_utf8_lossy(&output(list).stdout).into_owned();
    assert_eq!(listed.matches("demo: Spanish + ALL CAPS arithmetic").count(), 1, "{listed}");
}
