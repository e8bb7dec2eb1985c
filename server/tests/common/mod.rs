//! What the CLI tests share: reading the store as text rows, and the project's service
//! scripts (`scripts/postgres-local`, `scripts/slurm-local`) as guards that stop what they
//! started. Each test file uses a part, so the rest is dead code to it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every row of `sql` on the store of `data_dir` (and `database`, when not the SQLite file
/// there), each value as text: text as is, numbers printed, NULL as "".
pub fn query(data_dir: &Path, database: Option<&str>, sql: &str) -> Vec<Vec<String>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use sqlx::Row;
        let store = engine::Store::connect(data_dir, database).await.unwrap();
        let rows = sqlx::query(sql).fetch_all(store.pool()).await.unwrap();
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        r.try_get::<String, _>(i)
                            .or_else(|_| r.try_get::<i64, _>(i).map(|v| v.to_string()))
                            .or_else(|_| r.try_get::<f64, _>(i).map(|v| v.to_string()))
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .collect()
    })
}

/// A service started by one of the project's scripts (`SCRIPT start`, whose output is
/// returned beside the guard), stopped (`SCRIPT stop`) when the guard is dropped.
pub struct Service {
    script: &'static str,
    env: Vec<(&'static str, String)>,
}

impl Service {
    pub fn start(script: &'static str, env: Vec<(&'static str, String)>) -> (Service, String) {
        // The guard first: a start that fails half-way (a daemon up, another not) is
        // stopped too.
        let service = Service { script, env };
        let out = Command::new(root().join(script)).arg("start").envs(service.env.clone()).output().unwrap();
        assert!(
            out.status.success(),
            "{script} start failed ({}): {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (service, String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Service {
    /// `SCRIPT ARGS...` with the service's environment and `input` on stdin; its stdout.
    #[allow(dead_code)]
    pub fn call(&self, args: &[&str], input: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut child = Command::new(root().join(self.script))
            .args(args)
            .envs(self.env.clone())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{} {args:?} failed ({}): {}",
            self.script,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = Command::new(root().join(self.script)).arg("stop").envs(self.env.clone()).status();
    }
}
