#![recursion_limit = "256"]
//! The `inoculab` binary. This file only wires things together: it parses the command
//! line (`cli`), opens the store and hands off to the web server (`web`) or a command.

mod access;
mod cli;
mod dataset_cmd;
mod downloads;
mod guard;
mod ml_cmd;
mod run_cmd;
mod teacher_cmd;
mod user_cmd;
mod web;
mod worker;
mod worker_cmd;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, ServeArgs};

fn main() -> ExitCode {
    one_malloc_arena();
    ml::ops::park_idle_candle_workers();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Hands the parsed command line to the web server or a command.
async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let model_paths = cli.model_paths();
    let places = cli.places()?;
    let endpoints = cli.judge_endpoints()?;
    let (data_dir, max_pass_tokens) = (cli.data_dir, cli.max_pass_tokens);
    // The process's one model host: every command that runs a model runs it there.
    let host = ml::Host::spawn(cli.model_memory_mb.saturating_mul(1 << 20));
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => {
            crate::web::serve(&data_dir, &places, &model_paths, endpoints, args, max_pass_tokens, host).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Dataset(cmd) => crate::dataset_cmd::run(&data_dir, &places, &model_paths, cmd, &host).await,
        // Tensor work is blocking: it runs on a blocking thread, off the async runtime.
        Command::Train(args) => {
            tokio::task::spawn_blocking(move || crate::ml_cmd::run_train(&data_dir, args, max_pass_tokens)).await??;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => {
            crate::run_cmd::run(&data_dir, &places, &model_paths, &endpoints, args, max_pass_tokens, host).await
        }
        Command::Demo(args) => {
            crate::run_cmd::demo(&data_dir, &places, &model_paths, args, max_pass_tokens, host).await
        }
        Command::User(cmd) => crate::user_cmd::run(&data_dir, &places, cmd).await,
        Command::Worker(args) => crate::worker_cmd::run(&data_dir, &places, args, max_pass_tokens, host).await,
        Command::Sample(args) => {
            tokio::task::spawn_blocking(move || crate::ml_cmd::run_sample(&data_dir, args)).await??;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Makes glibc's malloc keep one arena instead of up to eight per core. A training step
/// runs on several threads, and a thread that finds its arena locked moves to another:
/// memory that one run's training freed in one arena was then not reused by the next run's
/// training in another, and `demo --tiny` on a busy machine grew from 4.7 GB to 10.3 GB
/// over its four runs. With one arena it stayed at 4.5-4.9 GB (5.1 GB peak) and took no
/// longer: tensors are few, large allocations, so the shared lock is rarely contended.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called first thing in main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
