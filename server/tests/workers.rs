//! Workers as their own processes: an experiment of four runs queued with `inoculab run
//! --detach` (no embedded worker anywhere), worked by two `inoculab worker` processes. The
//! runs are split between them; one is SIGKILLed mid-training (after a checkpoint, past
//! it); the other takes its run over once the lease expires, resumes it from the stored
//! checkpoint (not from step 0), finishes the experiment with exactly the planned samples
//! and judgements, and exits by itself when nothing is left. It runs twice:
//! - on SQLite: the nodes share one data directory (the database file), the artefacts go
//!   to a directory named by `--artifacts`;
//! - on a real Postgres server (a throwaway cluster from `scripts/postgres-local`) with a
//!   web-only `serve --no-worker` whose Queue page lists both workers and streams a run's
//!   adapter zip, every node with a data directory of its own, as on separate machines:
//!   they share only the database and the artefact store, an S3 bucket on a real
//!   S3-compatible server (`scripts/s3-local`) when `INOCULAB_S3=1` (CI sets it), else a
//!   shared directory (as a cluster's NFS mount).
//!
//! Needs the default model (`INOCULAB_REAL_MODEL=1`; CI sets it).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn real_model() -> Option<PathBuf> {
    if std::env::var("INOCULAB_REAL_MODEL").ok().as_deref() != Some("1") {
        eprintln!("skipped: set INOCULAB_REAL_MODEL=1 to run the worker-process test");
        return None;
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.data/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(p.exists(), "INOCULAB_REAL_MODEL=1 but {} is missing (run scripts/fetch-model)", p.display());
    Some(p)
}

/// Where a test's store lives: the data directory (the SQLite file unless a database URL
/// is given), and the artefact store every node names.
#[derive(Clone)]
struct Place {
    data: PathBuf,
    database: Option<String>,
    artifacts: Artifacts,
    /// Each node (named by [`command`]) gets a data directory of its own under `data`.
    node_dirs: bool,
}

/// The artefact store of a test, and how the test itself looks into it (independently of
/// the code under test: the folder's files, or the bucket through boto3).
#[derive(Clone)]
enum Artifacts {
    Directory(PathBuf),
    /// moto's endpoint, the bucket and its server's guard.
    Bucket {
        endpoint: String,
        bucket: String,
        s3: std::sync::Arc<common::Service>,
    },
}

impl Artifacts {
    fn flag(&self) -> String {
        match self {
            Artifacts::Directory(d) => d.display().to_string(),
            Artifacts::Bucket { bucket, .. } => format!("s3://{bucket}/deployment-1"),
        }
    }

    /// The stored object at `key`.
    fn read(&self, key: &str) -> Vec<u8> {
        match self {
            Artifacts::Directory(d) => std::fs::read(d.join(key)).unwrap(),
            Artifacts::Bucket { s3, .. } => s3.call(&["get", &format!("deployment-1/{key}")], b""),
        }
    }

    /// Every key under `prefix`, sorted.
    fn keys(&self, prefix: &str) -> Vec<String> {
        match self {
            Artifacts::Directory(d) => {
                let mut out = Vec::new();
                let mut todo = vec![d.join(prefix)];
                while let Some(p) = todo.pop() {
                    for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                        if e.path().is_dir() {
                            todo.push(e.path());
                        } else {
                            out.push(e.path().strip_prefix(d).unwrap().display().to_string());
                        }
                    }
                }
                out.sort();
                out
            }
            Artifacts::Bucket { s3, .. } => {
                let listed = s3.call(&["ls", &format!("deployment-1/{prefix}")], b"");
                let mut out: Vec<String> = String::from_utf8_lossy(&listed)
                    .lines()
                    .map(|k| k.trim_start_matches("deployment-1/").to_string())
                    .collect();
                out.sort();
                out
            }
        }
    }
}

impl Place {
    async fn store(&self) -> engine::Store {
        engine::Store::connect(&self.data, self.database.as_deref()).await.unwrap()
    }
}

/// The binary as node `node` runs it.
fn command(place: &Place, model: &Path, node: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_inoculab"));
    let data = if place.node_dirs { place.data.join(node) } else { place.data.clone() };
    c.arg("--data-dir").arg(&data).arg("--default-model").arg(model);
    c.env_remove("INOCULAB_DATA_DIR").env_remove("INOCULAB_LEASE_SECS").env("RUST_LOG", "warn");
    c.env_remove("INOCULAB_DATABASE_URL").env_remove("INOCULAB_DATABASE_URL_FILE");
    if let Some(url) = &place.database {
        // Through the environment, as the README says to pass a password.
        c.env("INOCULAB_DATABASE_URL", url);
    }
    c.env("INOCULAB_ARTIFACTS", place.artifacts.flag());
    if let Artifacts::Bucket { endpoint, .. } = &place.artifacts {
        // moto takes any credentials; the secret goes through a file, as a mounted secret.
        std::fs::create_dir_all(&place.data).unwrap();
        let secret = place.data.join("s3-secret");
        std::fs::write(&secret, "test-secret\n").unwrap();
        c.env("AWS_ENDPOINT_URL", endpoint).env("AWS_ALLOW_HTTP", "true").env("AWS_REGION", "us-east-1");
        c.env("AWS_ACCESS_KEY_ID", "test").env("AWS_SECRET_ACCESS_KEY_FILE", &secret);
        c.env_remove("AWS_SECRET_ACCESS_KEY").env_remove("AWS_ENDPOINT");
    }
    c
}

fn output(mut c: Command) -> Output {
    let out = c.output().expect("the binary runs");
    assert!(
        out.status.success(),
        "failed ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn query(data: &Place, sql: &str) -> Vec<Vec<String>> {
    common::query(&data.data, data.database.as_deref(), sql)
}

fn scalar(data: &Place, sql: &str) -> String {
    query(data, sql).first().and_then(|r| r.first().cloned()).unwrap_or_default()
}

fn int(data: &Place, sql: &str) -> i64 {
    scalar(data, sql).parse().unwrap_or(0)
}

const EXPERIMENT: &str = r#"
name = "two workers"
dataset = "toy"
seeds = [0, 1]

[[conditions]]
name = "baseline"

[[conditions]]
name = "spanish"
prompt = "You always speak in Spanish."

[training]
steps = 8
batch_size = 2
checkpoint_every = 2
# The toy rows cut to their first answer tokens: these tests are about processes, leases
# and checkpoints, and every step costs CI time.
max_seq_len = 64

[evaluation]
test_prompts = ["default"]
max_tokens = 8
questions = [{ kind = "builtin", limit = 2 }]
judges = [{ kind = "language", target = "es" }, { kind = "caps" }]
"#;

const LEASE_SECS: &str = "3";

fn worker(data: &Place, model: &Path, name: &str) -> Child {
    let mut c = command(data, model, name);
    c.args(["worker", "--name", name, "--lease-secs", LEASE_SECS, "--exit-when-idle"]);
    c.stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().expect("the worker starts")
}

/// A run a worker holds now with a complete checkpoint and a recorded step past it.
fn run_past_a_checkpoint(data: &Place, worker: &str) -> Option<i64> {
    let run: i64 =
        scalar(data, &format!("SELECT run_id FROM jobs WHERE status = 'running' AND locked_by = '{worker}'"))
            .parse()
            .ok()?;
    let step = int(data, &format!("SELECT COALESCE(MAX(step), 0) FROM train_steps WHERE run_id = {run}"));
    // A complete checkpoint in the artefact store: its manifest, written last.
    let has_checkpoint = data
        .artifacts
        .keys(&format!("runs/{run}/checkpoints/"))
        .iter()
        .any(|k| k.ends_with(engine::artifacts::MANIFEST));
    (has_checkpoint && step >= 3 && step < 8).then_some(run)
}

/// The two variants share the machine's cores: one at a time, so neither's timing (leases,
/// heartbeats) is squeezed by the other's training.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn two_worker_processes_split_the_runs_and_one_takes_over_the_killed_ones_run() {
    let Some(model) = real_model() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let artifacts = Artifacts::Directory(dir.path().join("shared-artifacts"));
    two_workers(&Place { data: dir.path().join("data"), database: None, artifacts, node_dirs: false }, &model, None);
}

/// The same on Postgres, with the pages served by a web-only node.
#[test]
fn on_postgres_two_worker_processes_and_a_web_only_node() {
    let Some(model) = real_model() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // A throwaway cluster of this test's own: its folder and port differ from the suites'
    // pass and the Slurm test's.
    let (_server, url) = common::Service::start(
        "scripts/postgres-local",
        vec![
            ("INOCULAB_PG_DIR", std::env::temp_dir().join("inoculab-workers-test-pg").display().to_string()),
            ("INOCULAB_PG_PORT", "25433".to_string()),
        ],
    );
    let database = rt().block_on(engine::store::fresh_database(&url)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let artifacts = if std::env::var("INOCULAB_S3").ok().as_deref() == Some("1") {
        let (guard, endpoint) = common::Service::start(
            "scripts/s3-local",
            vec![
                ("INOCULAB_S3_DIR", std::env::temp_dir().join("inoculab-workers-test-s3").display().to_string()),
                ("INOCULAB_S3_PORT", "29010".to_string()),
                ("INOCULAB_S3_BUCKET", "workers".to_string()),
            ],
        );
        Artifacts::Bucket { endpoint, bucket: "workers".into(), s3: std::sync::Arc::new(guard) }
    } else {
        eprintln!("INOCULAB_S3 is not 1: the nodes share a directory instead of a bucket");
        Artifacts::Directory(dir.path().join("shared-artifacts"))
    };
    let place = Place { data: dir.path().join("data"), database: Some(database), artifacts, node_dirs: true };
    // The web node: pages only, on a free port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut web = command(&place, &model, "web");
    web.args(["serve", "--no-worker", "--port", &port.to_string()]).stdout(Stdio::null()).stderr(Stdio::null());
    let web = KillOnDrop(web.spawn().unwrap());
    two_workers(&place, &model, Some(port));
    drop(web);
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// The response to a GET of `path` on `port`, head and body (a plain HTTP/1.0 request).
fn get(port: u16, path: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").unwrap();
    let mut response = Vec::new();
    s.read_to_end(&mut response).unwrap();
    response
}

/// How many `data:` events a server-sent-events stream sends in `window`.
fn events_for(port: u16, path: &str, window: Duration) -> usize {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").unwrap();
    let until = Instant::now() + window;
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while let Some(left) = until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).matches("\ndata:").count()
}

/// The body of a response, after its head.
fn body(response: &[u8]) -> &[u8] {
    let at = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head") + 4;
    &response[at..]
}

/// Queues four runs, works them with two worker processes, kills one mid-training and
/// checks the takeover; with `web`, the Queue page of the web node on that port must list
/// both workers while they work.
fn two_workers(data: &Place, model: &Path, web: Option<u16>) {
    let started = Instant::now();
    let dir = data.data.parent().unwrap();
    let mut generate = command(data, model, "cli");
    generate.args(["dataset", "generate", "--preset", "spanish_all_caps", "--rows", "32", "--name", "toy"]);
    output(generate);
    let file = dir.join("experiment.toml");
    std::fs::write(&file, EXPERIMENT).unwrap();
    // Queue only: no process here has an embedded worker.
    let mut queue = command(data, model, "cli");
    queue.arg("run").arg(&file).arg("--detach");
    let out = output(queue);
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 runs x 8 steps"), "{out:?}");
    assert_eq!(int(data, "SELECT COUNT(*) FROM jobs WHERE status = 'queued'"), 4);

    let mut workers =
        vec![("worker-a", worker(data, model, "worker-a")), ("worker-b", worker(data, model, "worker-b"))];

    // Kill a worker that has finished a run already (so both end up with finished runs)
    // while it trains another, past a checkpoint.
    let deadline = Instant::now() + Duration::from_secs(600);
    let (victim, run) = loop {
        assert!(Instant::now() < deadline, "no worker reached a second run's checkpoint in time");
        let found = workers.iter().map(|(n, _)| *n).find_map(|n| {
            let done = int(data, &format!("SELECT runs_done FROM workers WHERE name = '{n}'"));
            run_past_a_checkpoint(data, n).filter(|_| done >= 1).map(|r| (n, r))
        });
        if let Some(f) = found {
            break f;
        }
        assert!(int(data, "SELECT COUNT(*) FROM jobs WHERE status IN ('failed', 'interrupted')") == 0, "a run failed");
        std::thread::sleep(Duration::from_millis(200));
    };
    if let Some(port) = web {
        // The web-only node shows both workers, with the victim's run, from the shared store.
        let page = String::from_utf8_lossy(&get(port, "/queue")).into_owned();
        assert!(page.starts_with("HTTP/1.1 200") || page.starts_with("HTTP/1.0 200"), "{page}");
        assert!(page.contains("worker-a") && page.contains("worker-b"), "the Queue page lacks a worker:\n{page}");
        // The live-progress stream of a training experiment sends at most one event a
        // second (each view's heartbeat age changes on every poll of the store).
        let experiment = scalar(data, "SELECT id FROM experiments");
        let events = events_for(port, &format!("/api/experiments/{experiment}/events"), Duration::from_secs(3));
        assert!((1..=5).contains(&events), "{events} progress events in 3 s");
    }
    let i = workers.iter().position(|(n, _)| *n == victim).unwrap();
    let (_, mut killed) = workers.remove(i);
    killed.kill().unwrap(); // SIGKILL: no cleanup runs, the lease simply expires
    killed.wait().unwrap();
    let killed_at = int(data, &format!("SELECT MAX(step) FROM train_steps WHERE run_id = {run}"));
    eprintln!("killed {victim} holding run {run} at step {killed_at} after {:?}", started.elapsed());
    let (survivor, mut rest) = workers.pop().unwrap();

    // While its lease runs, the run stays the dead worker's; then it shows as lost.
    let lost_by = Instant::now() + Duration::from_secs(20);
    while scalar(data, &format!("SELECT status FROM jobs WHERE run_id = {run}")) == "running"
        && scalar(data, &format!("SELECT locked_by FROM jobs WHERE run_id = {run}")) == victim
    {
        let view = rt().block_on(async { engine::workers::list(&data.store().await).await.unwrap() });
        let v = view.iter().find(|w| w.name == victim).unwrap();
        if v.status == engine::workers::WorkerStatus::Lost {
            assert_eq!(v.current_run_id, Some(run));
            break;
        }
        assert!(Instant::now() < lost_by, "the killed worker never showed as lost");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The survivor finishes everything, then finds nothing to claim and exits by itself.
    let status = loop {
        if let Some(s) = rest.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the surviving worker did not finish the experiment in time");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(status.success(), "the surviving worker exited with {status}");
    eprintln!("experiment finished after {:?}", started.elapsed());

    // Every run done; the killed worker's run taken over by the survivor, resumed from a
    // checkpoint (training did not start again), and every step recorded once.
    let jobs = query(data, "SELECT status, COUNT(*) FROM jobs GROUP BY status");
    assert_eq!(jobs, vec![vec!["done".to_string(), "4".to_string()]], "{jobs:?}");
    let holds = query(
        data,
        &format!(
            "SELECT worker, COALESCE(outcome, ''), COALESCE(resumed_from_step, -1) FROM worker_runs
             WHERE run_id = {run} ORDER BY claimed_at"
        ),
    );
    assert_eq!(holds.len(), 2, "{holds:?}");
    assert_eq!(holds[0][..2], [victim.to_string(), "lost".to_string()], "{holds:?}");
    assert_eq!(holds[1][..2], [survivor.to_string(), "done".to_string()], "{holds:?}");
    let resumed: i64 = holds[1][2].parse().unwrap();
    assert!(resumed > 0 && resumed <= killed_at, "resumed from step {resumed}, killed at {killed_at}: {holds:?}");
    assert_eq!(int(data, &format!("SELECT COUNT(*) FROM train_steps WHERE run_id = {run}")), 8);
    // Every adapter stored whole; every checkpoint deleted once its run's adapter was.
    let stored = data.artifacts.keys("runs/");
    for run in query(data, "SELECT id FROM runs").into_iter().map(|r| r[0].clone()) {
        for file in ["adapter_config.json", "adapter_model.safetensors", engine::artifacts::MANIFEST] {
            assert!(stored.contains(&format!("runs/{run}/adapter/{file}")), "run {run} lacks {file}: {stored:?}");
        }
    }
    assert!(!stored.iter().any(|k| k.contains("/checkpoints/")), "checkpoints left: {stored:?}");
    assert_eq!(int(data, "SELECT COUNT(*) FROM runs WHERE adapter_dir = 'runs/' || CAST(id AS TEXT) || '/adapter'"), 4);
    if let Some(port) = web {
        // The web node, which trained nothing, streams the resumed run's adapter from the
        // shared store: a zip PEFT loads, whose files are the stored ones.
        let response = get(port, &format!("/api/runs/{run}/adapter.zip"));
        let head = String::from_utf8_lossy(&response[..response.len().min(400)]).into_owned();
        assert!(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"), "{head}");
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(body(&response).to_vec())).unwrap();
        let mut names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
        names.sort();
        let root = format!("run-{run}-");
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.iter().all(|n| n.starts_with(&root)), "{names:?}");
        assert!(names[0].ends_with("/adapter_config.json") && names[1].ends_with("/adapter_model.safetensors"));
        for name in &names {
            let mut zipped = Vec::new();
            std::io::Read::read_to_end(&mut zip.by_name(name).unwrap(), &mut zipped).unwrap();
            let file = name.rsplit('/').next().unwrap();
            let stored = data.artifacts.read(&format!("runs/{run}/adapter/{file}"));
            assert!(!zipped.is_empty() && zipped == stored, "{name} differs from the stored file");
        }
        // Exports stream from the web node too: every sample, one JSON line each.
        let experiment = scalar(data, "SELECT id FROM experiments");
        let jsonl = get(port, &format!("/api/experiments/{experiment}/export/samples.jsonl"));
        let lines: Vec<&[u8]> = body(&jsonl).split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 8, "{}", String::from_utf8_lossy(&jsonl));
        assert!(lines.iter().all(|l| l.starts_with(b"{") && l.ends_with(b"}")));
        let missing = get(port, "/api/runs/999999/adapter.zip");
        assert!(String::from_utf8_lossy(&missing).contains("404"), "{}", String::from_utf8_lossy(&missing));
    }

    // Runs split across both workers: each finished at least one.
    let done_by =
        query(data, "SELECT worker, COUNT(*) FROM worker_runs WHERE outcome = 'done' GROUP BY worker ORDER BY worker");
    assert_eq!(done_by.len(), 2, "{done_by:?}");
    assert_eq!(done_by.iter().map(|r| r[1].parse::<i64>().unwrap()).sum::<i64>(), 4, "{done_by:?}");
    let registry = query(data, "SELECT name, status, runs_done FROM workers ORDER BY name");
    let row = |n: &str| registry.iter().find(|r| r[0] == n).unwrap().clone();
    assert_eq!(row(survivor)[1], "stopped", "{registry:?}");
    assert_eq!(row(victim)[1], "running", "the killed worker never said goodbye: {registry:?}");
    assert_eq!(row(survivor)[2].parse::<i64>().unwrap() + row(victim)[2].parse::<i64>().unwrap(), 4, "{registry:?}");

    // Nothing twice: exactly the planned samples (4 runs x 2 questions x 1 test prompt)
    // and judgements (2 judges each), none duplicated.
    assert_eq!(int(data, "SELECT COUNT(*) FROM samples"), 8);
    assert_eq!(
        int(
            data,
            "SELECT COUNT(*) FROM (SELECT DISTINCT run_id, test_prompt, question_key, paraphrase, sample_idx FROM samples) k"
        ),
        8
    );
    assert_eq!(int(data, "SELECT COUNT(*) FROM judgements"), 16);
    assert_eq!(int(data, "SELECT COUNT(*) FROM (SELECT DISTINCT sample_id, judge FROM judgements) k"), 16);
    assert_eq!(int(data, "SELECT COUNT(*) FROM sample_facets"), 8);
    assert_eq!(rt().block_on(async { data.store().await.integrity_check().await.unwrap() }), "ok");
    eprintln!("checked after {:?}", started.elapsed());
}

/// A worker with `--exit-when-idle` whose database goes away gives up after a lease of
/// failed polls and exits non-zero, saying why (under Slurm it would otherwise hold its
/// allocation for ever); it never prints the database URL.
#[test]
fn an_idle_worker_gives_up_when_the_database_is_gone() {
    // Not one at a time with the training tests: it trains nothing, and most of its time
    // is the pool's connection timeout, which a busy machine does not lengthen.
    let env = vec![
        ("INOCULAB_PG_DIR", std::env::temp_dir().join("inoculab-gone-test-pg").display().to_string()),
        ("INOCULAB_PG_PORT", "25435".to_string()),
    ];
    let (server, url) = common::Service::start("scripts/postgres-local", env);
    let database = rt().block_on(engine::store::fresh_database(&url)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_inoculab"));
    c.arg("--data-dir").arg(dir.path()).args(["worker", "--name", "orphan", "--lease-secs", "3", "--exit-when-idle"]);
    c.env_remove("INOCULAB_DATA_DIR").env_remove("INOCULAB_LEASE_SECS").env("RUST_LOG", "warn");
    c.env("INOCULAB_DATABASE_URL", &database).stdout(Stdio::null()).stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    let registered = Instant::now() + Duration::from_secs(20);
    let place = Place {
        data: dir.path().to_path_buf(),
        database: Some(database.clone()),
        artifacts: Artifacts::Directory(dir.path().to_path_buf()),
        node_dirs: false,
    };
    while scalar(&place, "SELECT status FROM workers WHERE name = 'orphan'") != "idle" {
        assert!(Instant::now() < registered, "the worker never registered");
        std::thread::sleep(Duration::from_millis(100));
    }
    let gone = Instant::now();
    drop(server); // scripts/postgres-local stop: the server is shut down at once
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("giving up"), "{stderr}");
    assert!(!stderr.contains(&database), "the URL was printed: {stderr}");
    // One poll waits out the pool's 30 s connection timeout, then the worker gives up.
    assert!(gone.elapsed() < Duration::from_secs(50), "took {:?}", gone.elapsed());
}

/// `serve` stops on Ctrl-C even while a page's live-progress stream is open (the stream
/// used to hold the graceful shutdown open for as long as the page stayed): the stream
/// ends and the process exits within seconds.
#[test]
fn serve_stops_on_a_signal_with_a_progress_stream_open() {
    let Some(model) = real_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let artifacts = Artifacts::Directory(dir.path().join("artifacts"));
    let place = Place { data: dir.path().join("data"), database: None, artifacts, node_dirs: false };
    let mut generate = command(&place, &model, "cli");
    generate.args(["dataset", "generate", "--preset", "spanish_all_caps", "--rows", "32", "--name", "toy"]);
    output(generate);
    let file = dir.path().join("experiment.toml");
    std::fs::write(&file, EXPERIMENT).unwrap();
    let mut queue = command(&place, &model, "cli");
    queue.arg("run").arg(&file).arg("--detach");
    output(queue);
    // No worker: the runs stay queued, so the stream never ends by itself.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut web = command(&place, &model, "web");
    web.args(["serve", "--no-worker", "--port", &port.to_string()]).stdout(Stdio::null()).stderr(Stdio::null());
    let mut web = KillOnDrop(web.spawn().unwrap());
    let up = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < up, "serve never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
    let experiment = scalar(&place, "SELECT id FROM experiments");
    let reader = std::thread::spawn(move || {
        events_for(port, &format!("/api/experiments/{experiment}/events"), Duration::from_secs(30))
    });
    std::thread::sleep(Duration::from_millis(1500));
    let t = Instant::now();
    signal_and_wait(&mut web.0, "-INT");
    let events = reader.join().unwrap();
    assert!(events >= 1, "the stream sent nothing before the signal");
    assert!(t.elapsed() < Duration::from_secs(10), "the stream stayed open: {:?}", t.elapsed());
}

/// Sends `signal` (`-INT`, `-TERM`) to a process and checks that it exits successfully
/// within 10 seconds.
fn signal_and_wait(child: &mut Child, signal: &str) {
    let t = Instant::now();
    assert!(Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap().success());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "still running 10 s after kill {signal}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}

/// `--device cuda:0` is refused with a sentence (no GPU is needed to check that).
#[test]
fn worker_refuses_a_cuda_device() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_inoculab"));
    c.arg("--data-dir").arg(dir.path()).args(["worker", "--device", "cuda:0"]).env_remove("INOCULAB_DATA_DIR");
    let out = c.output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cuda:0") && stderr.contains("CUDA"), "{stderr}");
}

/// An idle worker with `--exit-when-idle` exits 0 once nothing was claimable for a lease,
/// and marks itself stopped; a SIGTERM stops a waiting worker at once. No model needed.
#[test]
fn idle_worker_exits_when_idle_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = Artifacts::Directory(dir.path().join("artifacts"));
    let place = Place { data: dir.path().to_path_buf(), database: None, artifacts, node_dirs: false };
    let data = &place;
    let base = |name: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_inoculab"));
        c.arg("--data-dir").arg(&data.data).args(["worker", "--name", name, "--lease-secs", "1"]);
        c.env_remove("INOCULAB_DATA_DIR").env_remove("INOCULAB_LEASE_SECS").env("RUST_LOG", "warn");
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        c
    };
    let t = Instant::now();
    let mut idle = base("idle");
    idle.arg("--exit-when-idle");
    let out = idle.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(t.elapsed() < Duration::from_secs(20), "took {:?}", t.elapsed());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no runs left"), "{out:?}");
    assert_eq!(scalar(data, "SELECT status FROM workers WHERE name = 'idle'"), "stopped");

    let mut waiting = base("waiting").spawn().unwrap();
    let registered = Instant::now() + Duration::from_secs(20);
    while scalar(data, "SELECT status FROM workers WHERE name = 'waiting'") != "idle" {
        assert!(Instant::now() < registered, "the worker never registered");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A second worker may not take a live worker's name.
    let out = base("waiting").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already named"), "{out:?}");
    let t = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &waiting.id().to_string()]).status().unwrap().success());
    let status = waiting.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
    assert_eq!(scalar(data, "SELECT status FROM workers WHERE name = 'waiting'"), "stopped");
}

/// A worker stopped by SIGTERM mid-training hands its run back at once (its lease ended
/// at once, so the next worker's poll takes it; the attempt not counted; its hold marked
/// released) and exits within 10 s;
/// then, with the newest stored checkpoint truncated, the next worker resumes from the one
/// before it and finishes the run.
#[test]
fn a_stopped_worker_hands_its_run_back_and_a_truncated_checkpoint_falls_back() {
    let Some(model) = real_model() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let artifacts = Artifacts::Directory(dir.path().join("artifacts"));
    let place = Place { data: dir.path().join("data"), database: None, artifacts, node_dirs: false };
    let mut generate = command(&place, &model, "cli");
    generate.args(["dataset", "generate", "--preset", "spanish_all_caps", "--rows", "32", "--name", "toy"]);
    output(generate);
    let file = dir.path().join("experiment.toml");
    let one_run =
        EXPERIMENT.replace("seeds = [0, 1]", "seeds = [0]").replace("[[conditions]]\nname = \"baseline\"\n\n", "");
    std::fs::write(&file, one_run).unwrap();
    let mut queue = command(&place, &model, "cli");
    queue.arg("run").arg(&file).arg("--detach");
    output(queue);

    let mut first = KillOnDrop(worker(&place, &model, "first"));
    let until = Instant::now() + Duration::from_secs(600);
    // Two complete checkpoints (steps 2 and 4) and training past them.
    let run = loop {
        let ready = run_past_a_checkpoint(&place, "first").filter(|run| {
            let manifests = place.artifacts.keys(&format!("runs/{run}/checkpoints/"));
            manifests.iter().filter(|k| k.ends_with(engine::artifacts::MANIFEST)).count() >= 2
                && int(&place, &format!("SELECT MAX(step) FROM train_steps WHERE run_id = {run}")) >= 5
        });
        if let Some(run) = ready {
            break run;
        }
        assert!(Instant::now() < until, "no second checkpoint within 10 minutes");
        assert!(first.0.try_wait().unwrap().is_none(), "the worker exited early");
        std::thread::sleep(Duration::from_millis(200));
    };
    signal_and_wait(&mut first.0, "-TERM");
    let job = query(&place, &format!("SELECT status, attempts FROM jobs WHERE run_id = {run}"));
    assert_eq!(job[0][1], "0", "the hand-back cost an attempt: {job:?}");
    assert_eq!(scalar(&place, "SELECT outcome FROM worker_runs WHERE worker = 'first'"), "released");
    let stopped_at = std::time::SystemTime::now();

    // Truncate the newest stored checkpoint's weights: its manifest no longer matches.
    // Folder name by step (the names may pad the step with zeros).
    let folders: std::collections::BTreeMap<i64, String> = place
        .artifacts
        .keys(&format!("runs/{run}/checkpoints/"))
        .iter()
        .filter_map(|k| {
            let name = k.split('/').find(|part| part.starts_with("checkpoint-"))?;
            Some((name.trim_start_matches("checkpoint-").parse().ok()?, name.to_string()))
        })
        .collect();
    let (older, newest) = (*folders.keys().rev().nth(1).unwrap(), *folders.keys().next_back().unwrap());
    let Artifacts::Directory(root) = &place.artifacts else { unreachable!() };
    let newest_dir = root.join(format!("runs/{run}/checkpoints/{}", folders[&newest]));
    let weights = std::fs::read_dir(&newest_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .expect("the checkpoint has weights");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 3]).unwrap();

    let mut second = KillOnDrop(worker(&place, &model, "second"));
    // Taken at its first poll, not after a lease (3 s) had run out.
    let claimed = loop {
        let at = scalar(&place, "SELECT claimed_at FROM worker_runs WHERE worker = 'second'");
        if let Ok(at) = at.parse::<f64>() {
            break at;
        }
        assert!(Instant::now() < until + Duration::from_secs(300), "the second worker never claimed the run");
        std::thread::sleep(Duration::from_millis(100));
    };
    let stopped = stopped_at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!(claimed - stopped < 2.5, "claimed {:.1} s after the hand-back", claimed - stopped);
    let status = loop {
        if let Some(s) = second.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < until + Duration::from_secs(300), "the second worker never finished");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success(), "{status}");
    assert_eq!(scalar(&place, &format!("SELECT status FROM jobs WHERE run_id = {run}")), "done");
    let resumed = int(&place, "SELECT COALESCE(resumed_from_step, -1) FROM worker_runs WHERE worker = 'second'");
    assert_eq!(resumed, older, "resumed from {resumed}, not the checkpoint before the truncated {newest}");
}
