//! `inoculab worker`: the job worker loop in the foreground, with no web server, on the
//! data directory it shares with the web node and any other workers. Several of them split
//! an experiment's runs between them (each claims one job at a time, by lease); a killed
//! one's run is taken over by another once its lease expires and resumes from its newest
//! checkpoint.
//!
//! SIGTERM or Ctrl-C stops it between two training steps (or sampling batches, or judge
//! chunks): the job goes straight back to the queue, claimable at once, and the worker is
//! marked stopped. A second signal exits at once (the lease then expires as after a kill).

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use engine::runner::{Polling, Stopped};

use crate::cli::WorkerArgs;

/// What `--device` may name. CPU only for now.
fn check_device(device: &str) -> anyhow::Result<()> {
    match device {
        "cpu" => Ok(()),
        d if d == "cuda" || d.starts_with("cuda:") => {
            if cfg!(feature = "cuda") {
                anyhow::bail!(
                    "--device {d}: a worker cannot be given a CUDA device yet (this build's models load on the \
                     first GPU found); run with --device cpu"
                )
            } else {
                anyhow::bail!(
                    "--device {d}: CUDA is not built into this binary (build with `--features cuda`); \
                     workers run on --device cpu for now"
                )
            }
        }
        d => anyhow::bail!("--device {d}: unknown device; use cpu"),
    }
}

pub async fn run(
    data_dir: &std::path::Path,
    places: &crate::cli::Places,
    args: WorkerArgs,
    max_pass_tokens: usize,
    host: ml::Host,
) -> anyhow::Result<ExitCode> {
    check_device(&args.device)?;
    let store = open_store(data_dir, places).await?;
    let lease = Duration::from_secs(args.lease_secs.max(1));
    let artifacts = store.artifacts().describe().to_owned();
    let worker = tokio::task::block_in_place(|| {
        crate::worker::registered(store, data_dir, lease, max_pass_tokens, host, args.name.clone())
    })?;
    let name = worker.id().to_string();
    eprintln!(
        "worker {name} on {} ({}), artefacts in {}: waiting for runs",
        data_dir.display(),
        args.device,
        artifacts
    );

    // The first signal stops the worker gracefully; a second exits at once.
    let flag = worker.shutdown_flag();
    let signal_name = name.clone();
    let signals = tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        for n in 0.. {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            if n > 0 {
                eprintln!("worker {signal_name}: second signal, exiting now");
                std::process::exit(130);
            }
            eprintln!(
                "worker {signal_name}: stopping after the current step (its run goes back to the queue); \
                 signal again to exit now"
            );
            flag.store(true, Ordering::Relaxed);
        }
    });
    let polling = Polling { max_runs: args.max_runs, exit_when_idle: args.exit_when_idle };
    let stopped = tokio::task::spawn_blocking(move || worker.work(&polling)).await?;
    signals.abort();
    let said = match &stopped {
        Stopped::Asked => "stopped on a signal".to_string(),
        Stopped::MaxRuns => "finished --max-runs runs".to_string(),
        Stopped::Idle => "no runs left to claim".to_string(),
        Stopped::Unreachable(e) => format!("the store failed every poll for a lease, giving up: {e}"),
    };
    eprintln!("worker {name}: {said}");
    // Under Slurm a failed task shows; an idle exit is the normal end.
    Ok(if matches!(stopped, Stopped::Unreachable(_)) { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Opens the store. Several workers started at once on a fresh data directory may race to
/// apply a migration; the loser finds it applied when it tries again.
async fn open_store(data_dir: &std::path::Path, places: &crate::cli::Places) -> anyhow::Result<engine::Store> {
    let mut tries = 0;
    loop {
        match places.connect(data_dir).await {
            Ok(store) => return Ok(store),
            Err(engine::StoreError::Migrate(e)) if tries < 3 => {
                tries += 1;
                tracing::warn!("migrating the database failed ({e}); trying again");
                tokio::time::sleep(Duration::from_millis(500 * tries)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot open the store in {}", data_dir.display())),
        }
    }
}
