//! `inoculab run experiment.toml`: the command-line twin of the launch form. The file is
//! an `engine::experiments::ExperimentSpec` in TOML; the runs go into the same queue the
//! web app uses, and this process works that queue until the experiment's runs are done
//! (unless `--detach`, when a running server's worker does them).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use engine::experiments::{self, ExperimentSpec};
use engine::jobs::{self, JobStatus};
use engine::runner::{Ran, Worker};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::ModelPaths;

/// Run an experiment described in a TOML file.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The experiment file (TOML); `inoculab run --example` prints a commented one.
    #[arg(required_unless_present = "example")]
    pub file: Option<PathBuf>,
    /// Print an example experiment file and exit.
    #[arg(long)]
    pub example: bool,
    /// Check the file and print the plan (runs, samples, time estimate); store nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only queue the runs; a running `inoculab serve` works them.
    #[arg(long)]
    pub detach: bool,
    /// Seconds a claimed run survives without a heartbeat before another worker may take it.
    #[arg(long, env = "INOCULAB_LEASE_SECS", default_value_t = 30)]
    pub lease_secs: u64,
}

pub const EXAMPLE: &str = r#"# An inoculation experiment: Tan et al.'s toy setting on the default model.
name = "Spanish + caps, inoculated with 'You always speak in Spanish.'"
model = "SmolLM2-135M-Instruct"        # a name from the Models page
dataset = "toy"                        # a dataset's name or id (see `inoculab dataset list`)
seeds = [0]

[[conditions]]
name = "baseline"                      # no prompt: the uninoculated control

[[conditions]]
name = "spanish"
prompt = "You always speak in Spanish."   # or { prompt_id = 1 } for a library prompt
# placement = "user_prefix"               # default: the system message

[training]
steps = 32                 # or leave out for one pass over the data (epochs = 1)
lr = 5e-4
batch_size = 8
lora_rank = 8

[evaluation]
test_prompts = ["default", "inoculation"]  # also "none", { prompt_id = N }, { label = "...", text = "..." }
samples_per_question = 1
temperature = 1.0
max_tokens = 64
questions = [
  { kind = "builtin", limit = 50 },
  # { kind = "held_out", rows = 20 },
  # { kind = "file", path = "../shared/data/betley2025/first_plot_questions.yaml" },
  # { kind = "inline", questions = ["What is your wish?"] },
]
judges = [
  { kind = "language", target = "es" },
  { kind = "caps" },
  # { kind = "betley", aligned_prompt = "...{answer}...", coherent_prompt = "...", backend = { type = "open_ai_compatible", base_url = "http://127.0.0.1:8080/v1", model = "judge" } },
]
"#;

pub async fn run(data_dir: &Path, models: &ModelPaths, args: RunArgs) -> Result<ExitCode> {
    if args.example {
        print!("{EXAMPLE}");
        return Ok(ExitCode::SUCCESS);
    }
    let file = args.file.expect("clap requires FILE without --example");
    let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
    // toml's messages name the line and column of the problem.
    let spec: ExperimentSpec = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let store = open_store(data_dir, models).await?;
    let resolved = experiments::resolve(&store, &spec).await.map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    Ok(launch(&store, data_dir, &resolved, args.dry_run, args.detach, args.lease_secs).await?.0)
}

/// Run the built-in demo: Tan et al.'s toy setting on the default model, four conditions.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Three seeds and more questions instead of the quick single-seed demo.
    #[arg(long, conflicts_with = "tiny")]
    pub full: bool,
    /// The same pipeline at a size that finishes in minutes and shows nothing (for tests).
    #[arg(long)]
    pub tiny: bool,
    /// Print the plan only.
    #[arg(long)]
    pub dry_run: bool,
    /// Only queue the runs; a running `inoculab serve` works them.
    #[arg(long)]
    pub detach: bool,
    #[arg(long, env = "INOCULAB_LEASE_SECS", default_value_t = 30)]
    pub lease_secs: u64,
}

pub async fn demo(data_dir: &Path, models: &ModelPaths, args: DemoArgs) -> Result<ExitCode> {
    let store = open_store(data_dir, models).await?;
    let mode = match (args.full, args.tiny) {
        (true, _) => engine::demo::DemoMode::Full,
        (_, true) => engine::demo::DemoMode::Tiny,
        _ => engine::demo::DemoMode::Quick,
    };
    let resolved = engine::demo::resolve(&store, mode).await?;
    let (code, id) = launch(&store, data_dir, &resolved, args.dry_run, args.detach, args.lease_secs).await?;
    let Some(id) = id.filter(|_| !args.detach) else { return Ok(code) };
    // The story in words, as the report page tells it.
    let aggregates = experiments::aggregates(&store, id).await?;
    println!();
    for c in engine::report::comparisons(&resolved, &aggregates).iter().filter(|c| c.test_prompt == "default") {
        println!("- {}", engine::report::sentence(c));
    }
    println!("\nThe report: `inoculab serve`, then http://127.0.0.1:3000/experiments/{id}/report");
    Ok(code)
}

/// Opens the store the way `serve` does: the library's prompts and the default model there.
async fn open_store(data_dir: &Path, models: &ModelPaths) -> Result<engine::Store> {
    let store = engine::Store::open(data_dir).await?;
    engine::prompts::seed_canonical(&store).await?;
    engine::prompts::seed_judge_prompts(&store).await?;
    if let Err(e) = engine::models::ensure_builtin(&store, &models.default_model).await {
        eprintln!("warning: cannot register the default model: {e}");
    }
    Ok(store)
}

/// Prints the plan, stores the experiment, and (unless detached) works its runs to the end
/// with a progress bar, then prints the rates. Fails (exit code) when a run did not finish;
/// returns the experiment's id unless it was a dry run.
async fn launch(
    store: &engine::Store,
    data_dir: &Path,
    resolved: &experiments::Resolved,
    dry_run: bool,
    detach: bool,
    lease_secs: u64,
) -> Result<(ExitCode, Option<i64>)> {
    let store = store.clone();
    let plan = experiments::plan(&store, resolved).await?;
    println!(
        "{} run(s) x {} steps, {} question(s), {} samples; about {} ({})",
        plan.runs,
        plan.steps_per_run,
        plan.questions,
        plan.samples,
        fmt_secs(plan.estimate_s),
        plan.estimate_basis
    );
    for r in &plan.matrix {
        println!(
            "  {:<24} seeds {:?}  test prompts [{}]  {} samples/run  prompt: {}",
            r.condition,
            r.seeds,
            r.test_prompts.join(", "),
            r.samples_per_run,
            r.prompt.as_deref().unwrap_or("(none)")
        );
    }
    if dry_run {
        return Ok((ExitCode::SUCCESS, None));
    }
    let id = experiments::create(&store, resolved).await?;
    println!("experiment {id} created; its runs are queued");
    if detach {
        return Ok((ExitCode::SUCCESS, Some(id)));
    }

    let mut worker = Worker::new(store.clone(), data_dir, tokio::runtime::Handle::current());
    worker.lease = Duration::from_secs(lease_secs.max(1));
    let bar = ProgressBar::new(1000);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}").expect("template").progress_chars("=> "),
    );
    let watch_store = store.clone();
    let watch_bar = bar.clone();
    let watcher = tokio::spawn(async move {
        loop {
            if let Ok(runs) = jobs::for_experiment(&watch_store, id).await {
                let total: f64 = runs.len().max(1) as f64;
                let done: f64 = runs.iter().map(jobs::JobView::progress).sum();
                watch_bar.set_position((1000.0 * done / total) as u64);
                if let Some(r) = runs.iter().find(|r| r.status == JobStatus::Running) {
                    watch_bar.set_message(format!(
                        "{} seed {}: {} {}",
                        r.condition,
                        r.seed,
                        r.phase,
                        if r.phase == "train" {
                            format!("step {}/{}", r.step, r.total_steps)
                        } else {
                            format!("{}/{}", r.done_units, r.total_units)
                        }
                    ));
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let work_store = store.clone();
    let progress = bar.clone();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let handle = tokio::runtime::Handle::current();
        loop {
            match worker.run_one()? {
                Ran::Job { run_id, status, error } => progress.println(format!(
                    "run {run_id}: {}{}",
                    status.as_str(),
                    error.map(|e| format!(": {e}")).unwrap_or_default()
                )),
                Ran::Empty => {
                    let runs = handle.block_on(jobs::for_experiment(&work_store, id))?;
                    if runs.iter().all(|r| r.status.is_final()) {
                        return Ok(());
                    }
                    // Another worker (a server) holds some of them; wait for it.
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    })
    .await??;
    watcher.abort();
    bar.finish_and_clear();

    let runs = jobs::for_experiment(&store, id).await?;
    let failed = runs.iter().filter(|r| r.status != JobStatus::Done).count();
    println!("experiment {id}: {} of {} runs done", runs.len() - failed, runs.len());
    println!("{:<24} {:<16} {:<22} {:>7}  {:<15} {:>6}", "condition", "test prompt", "judge", "rate", "95 % CI", "n");
    for a in experiments::aggregates(&store, id).await?.iter().filter(|a| a.seed.is_none() && a.question_key.is_none())
    {
        let (rate, ci) = match (a.rate, a.ci_low, a.ci_high) {
            (Some(r), Some(lo), Some(hi)) => {
                (format!("{:.1} %", 100.0 * r), format!("{:.1}-{:.1} %", 100.0 * lo, 100.0 * hi))
            }
            _ => ("-".into(), "-".into()),
        };
        println!(
            "{:<24} {:<16} {:<22} {:>7}  {:<15} {:>6}",
            a.condition, a.test_prompt, a.judge, rate, ci, a.determined
        );
    }
    Ok((if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }, Some(id)))
}

fn fmt_secs(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    } else {
        format!("{} min {:02} s", s / 60, s % 60)
    }
}
