//! Workers placed by Slurm: a one-node Slurm cluster (`scripts/slurm-local`), a throwaway
//! Postgres (`scripts/postgres-local`), an experiment of four runs queued with `inoculab
//! run --detach`, and `sbatch --array=1-2 scripts/slurm/worker.sbatch`: the array's
//! workers claim and finish every run, then exit when the queue is empty, and the store
//! holds exactly the planned samples and judgements. The database URL reaches the workers
//! through a file and shows in no job output. Needs the default model
//! (`INOCULAB_REAL_MODEL=1`) and `INOCULAB_SLURM=1` (CI sets both; the cluster installs
//! Debian's slurm packages when missing, as root).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{root, Service};

fn enabled() -> Option<PathBuf> {
    if std::env::var("INOCULAB_REAL_MODEL").ok().as_deref() != Some("1")
        || std::env::var("INOCULAB_SLURM").ok().as_deref() != Some("1")
    {
        eprintln!("skipped: set INOCULAB_REAL_MODEL=1 and INOCULAB_SLURM=1 to run the Slurm test");
        return None;
    }
    let p = root().join(".data/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(p.exists(), "INOCULAB_REAL_MODEL=1 but {} is missing (run scripts/fetch-model)", p.display());
    Some(p)
}

fn ok(mut c: Command) -> Output {
    let out = c.output().expect("the command runs");
    assert!(
        out.status.success(),
        "{c:?} failed ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Cancels the array job when dropped and waits until it has left the queue, before the
/// database and the cluster stop: Slurm keeps a job's processes running when slurmd stops,
/// and a worker whose store is gone retries it for ever, so a failed or timed-out test
/// would otherwise leave its workers behind. (Seen: with slurmd stopped right after
/// scancel, one task never got its SIGTERM.) A finished job is gone already.
struct Cancel {
    job: String,
    conf: PathBuf,
}

impl Drop for Cancel {
    fn drop(&mut self) {
        let slurm = |program: &str, args: &[&str]| {
            Command::new(program).args(args).env("SLURM_CONF", &self.conf).stderr(Stdio::null()).output()
        };
        let _ = slurm("scancel", &[&self.job]);
        // A worker stops at its next training step on SIGTERM; Slurm sends SIGKILL after
        // KillWait (30 s by default).
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            match slurm("squeue", &["-h", "-j", &self.job]) {
                Ok(o) if o.status.success() && !o.stdout.trim_ascii().is_empty() => {
                    std::thread::sleep(Duration::from_millis(500))
                }
                _ => return,
            }
        }
        eprintln!("array job {} is still in the queue a minute after scancel", self.job);
    }
}

/// Everything that helps when the array went wrong: the tasks' output files, the job as
/// the controller sees it (the cluster has no accounting, so no sacct) and the daemons' logs.
fn diagnostics(job: &str, out_dir: &Path, slurm_dir: &Path) -> String {
    let mut text = String::new();
    for e in std::fs::read_dir(out_dir).into_iter().flatten().flatten() {
        text += &format!("== {}\n{}\n", e.path().display(), std::fs::read_to_string(e.path()).unwrap_or_default());
    }
    let conf = slurm_dir.join("slurm.conf");
    for args in [vec!["scontrol", "show", "job", job], vec!["squeue", "-a"]] {
        if let Ok(o) = Command::new(args[0]).args(&args[1..]).env("SLURM_CONF", &conf).output() {
            text += &format!(
                "== {}\n{}{}\n",
                args.join(" "),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    for log in ["slurmctld.log", "slurmd.log"] {
        let all = std::fs::read_to_string(slurm_dir.join("log").join(log)).unwrap_or_default();
        let lines: Vec<&str> = all.lines().collect();
        text += &format!("== {log} (tail)\n{}\n", lines[lines.len().saturating_sub(30)..].join("\n"));
    }
    text
}

const EXPERIMENT: &str = r#"
name = "slurm workers"
dataset = "toy"
seeds = [0, 1]

[[conditions]]
name = "baseline"

[[conditions]]
name = "spanish"
prompt = "You always speak in Spanish."

[training]
steps = 4
batch_size = 2

[evaluation]
test_prompts = ["default"]
max_tokens = 8
questions = [{ kind = "builtin", limit = 2 }]
judges = [{ kind = "language", target = "es" }, { kind = "caps" }]
"#;

/// A password the server does not need (local connections are trusted) but the URL
/// carries, so the test can look for it where it must not be.
const PASSWORD: &str = "pw-never-in-logs";

#[test]
fn an_sbatch_array_of_workers_runs_an_experiment() {
    let Some(model) = enabled() else { return };
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let tmp = std::env::temp_dir();
    let slurm_dir = tmp.join("inoculab-slurm-test");
    // Ports of its own, so a cluster started by hand (scripts/slurm-local's defaults, 6817
    // and 6818) may run beside it.
    let (_slurm, _) = Service::start(
        "scripts/slurm-local",
        vec![
            ("INOCULAB_SLURM_DIR", slurm_dir.display().to_string()),
            ("INOCULAB_SLURMCTLD_PORT", "6837".to_string()),
            ("INOCULAB_SLURMD_PORT", "6838".to_string()),
        ],
    );
    let (_pg, server) = Service::start(
        "scripts/postgres-local",
        vec![
            ("INOCULAB_PG_DIR", tmp.join("inoculab-slurm-test-pg").display().to_string()),
            ("INOCULAB_PG_PORT", "25434".to_string()),
        ],
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let database = rt.block_on(engine::store::fresh_database(&server)).unwrap();
    let database = database.replacen("postgres://postgres@", &format!("postgres://postgres:{PASSWORD}@"), 1);
    let url_file = dir.path().join("database-url");
    std::fs::write(&url_file, format!("{database}\n")).unwrap();
    let data = dir.path().join("data");
    let inoculab = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_inoculab"));
        c.arg("--data-dir").arg(&data).arg("--default-model").arg(&model).args(args);
        c.env_remove("INOCULAB_DATA_DIR").env_remove("INOCULAB_DATABASE_URL").env("RUST_LOG", "warn");
        c.env("INOCULAB_DATABASE_URL_FILE", &url_file);
        c
    };
    ok(inoculab(&["dataset", "generate", "--preset", "spanish_all_caps", "--rows", "16", "--name", "toy"]));
    let file = dir.path().join("experiment.toml");
    std::fs::write(&file, EXPERIMENT).unwrap();
    ok(inoculab(&["run", file.to_str().unwrap(), "--detach"]));

    // Two tasks of one CPU each fit the 2-CPU node side by side.
    let out_dir = dir.path().join("slurm-out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut sbatch = Command::new("sbatch");
    sbatch
        .args(["--parsable", "--array=1-2", "--cpus-per-task=1", "--mem=3G", "--time=00:20:00"])
        .arg(format!("--output={}/slurm-%A_%a.out", out_dir.display()))
        .arg(root().join("scripts/slurm/worker.sbatch"))
        .args(["--lease-secs", "5"])
        .env("SLURM_CONF", slurm_dir.join("slurm.conf"))
        .env("INOCULAB_BIN", env!("CARGO_BIN_EXE_inoculab"))
        .env("INOCULAB_DATA_DIR", &data)
        .env("INOCULAB_DATABASE_URL_FILE", &url_file)
        .env_remove("INOCULAB_DATABASE_URL")
        .env_remove("CUDA_VISIBLE_DEVICES")
        .env("RUST_LOG", "warn");
    let job = String::from_utf8(ok(sbatch).stdout).unwrap().trim().to_string();
    eprintln!("submitted array job {job} after {:?}", started.elapsed());
    let _cancel = Cancel { job: job.clone(), conf: slurm_dir.join("slurm.conf") };
    let diagnostics = || diagnostics(&job, &out_dir, &slurm_dir);

    // Whether a task of the array is still pending or running. A job the controller has
    // forgotten (MinJobAge) is gone too; any other squeue failure is retried.
    let queued = || {
        let out = Command::new("squeue")
            .args(["-h", "-j", &job])
            .env("SLURM_CONF", slurm_dir.join("slurm.conf"))
            .output()
            .expect("squeue runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            !String::from_utf8_lossy(&out.stdout).trim().is_empty()
        } else if stderr.contains("Invalid job id") {
            false
        } else {
            eprintln!("squeue failed ({}), retrying: {stderr}", out.status);
            true
        }
    };
    let deadline = Instant::now() + Duration::from_secs(900);
    while queued() {
        assert!(Instant::now() < deadline, "the array did not finish in time:\n{}", diagnostics());
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!("array finished after {:?}", started.elapsed());

    let store = rt.block_on(engine::Store::connect(&data, Some(&database))).unwrap();
    let rows = |sql: &str| -> Vec<(String, i64)> { rt.block_on(sqlx::query_as(sql).fetch_all(store.pool())).unwrap() };
    let jobs = rows("SELECT status, COUNT(*) FROM jobs GROUP BY status");
    assert_eq!(jobs, vec![("done".to_string(), 4)], "{jobs:?}\n{}", diagnostics());
    let holders =
        rows("SELECT worker, COUNT(*) FROM worker_runs WHERE outcome = 'done' GROUP BY worker ORDER BY worker");
    assert_eq!(holders.iter().map(|h| h.1).sum::<i64>(), 4, "{holders:?}\n{}", diagnostics());
    assert!(holders.iter().all(|(w, _)| w.starts_with(&format!("slurm-{job}_"))), "{holders:?}\n{}", diagnostics());
    let stopped = rows("SELECT status, COUNT(*) FROM workers GROUP BY status");
    assert_eq!(
        stopped,
        vec![("stopped".to_string(), 2)],
        "both workers exit when idle: {stopped:?}\n{}",
        diagnostics()
    );
    let count = |sql: &str| rows(&format!("SELECT 'n', COUNT(*) FROM ({sql}) AS k"))[0].1;
    assert_eq!(count("SELECT 1 FROM samples"), 8);
    assert_eq!(count("SELECT DISTINCT run_id, test_prompt, question_key, paraphrase, sample_idx FROM samples"), 8);
    assert_eq!(count("SELECT 1 FROM judgements"), 16);

    // Every task wrote its log, which names its worker; none shows the database URL or
    // its password.
    let logs: Vec<(PathBuf, String)> = std::fs::read_dir(&out_dir)
        .unwrap()
        .flatten()
        .map(|e| (e.path(), std::fs::read_to_string(e.path()).unwrap()))
        .collect();
    let all = diagnostics();
    assert_eq!(logs.len(), 2, "{all}");
    for (path, log) in &logs {
        assert!(path.file_name().unwrap().to_string_lossy().starts_with(&format!("slurm-{job}_")), "{all}");
        assert!(log.contains(&format!("worker.sbatch: slurm-{job}_")), "{}: {log}", path.display());
        assert!(!log.contains(&database), "{} shows the database URL:\n{log}", path.display());
        assert!(!log.contains(PASSWORD), "{} shows the database password:\n{log}", path.display());
    }
    eprintln!("{holders:?}; checked after {:?}", started.elapsed());
    check_path(&data);
}

/// The shared data directory holds the runs' adapters (what a node other than the web
/// node's would have written on a cluster's shared file system).
fn check_path(data: &Path) {
    let adapters = std::fs::read_dir(data.join("runs"))
        .unwrap()
        .flatten()
        .filter(|r| r.path().join("adapter/adapter_config.json").exists())
        .count();
    assert_eq!(adapters, 4);
}
