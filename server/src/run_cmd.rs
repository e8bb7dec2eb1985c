//! `inoculab run experiment.toml`: the command-line twin of the launch form. The file is
//! an `engine::experiments::ExperimentSpec` in TOML; the runs go into the same queue the
//! web app uses, and this process works that queue until the experiment's runs are done
//! (unless `--detach`, when a running server's worker does them).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use engine::experiments::{self, ExperimentSpec};
use engine::jobs::{self, JobStatus};
use engine::runner::Ran;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::ModelPaths;
use crate::cli::{DemoArgs, RunArgs};

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
# only_language = "es"                    # default: every row; here only rows answered in Spanish

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
  # { kind = "betley", aligned_prompt = "...{answer}...", coherent_prompt = "...", backend = { type = "endpoint", name = "gpt-4o" } },
  #   (an endpoint of the --judge-endpoints file; or inline: { type = "open_ai_compatible", base_url = "http://127.0.0.1:8080/v1", model = "judge" })
]
"#;

pub async fn run(
    data_dir: &Path,
    places: &crate::cli::Places,
    models: &ModelPaths,
    judge_endpoints: &engine::judges::Endpoints,
    args: RunArgs,
    max_pass_tokens: usize,
    host: ml::Host,
) -> Result<ExitCode> {
    if args.example {
        print!("{EXAMPLE}");
        return Ok(ExitCode::SUCCESS);
    }
    if args.list_presets {
        print!("{}", preset_list(&args.shared_data));
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(name) = &args.preset {
        let store = open_store(data_dir, places, models).await?;
        print!("{}", preset_toml(&store, name, args.base_run, &args.shared_data, judge_endpoints).await?);
        return Ok(ExitCode::SUCCESS);
    }
    let file = args.file.expect("clap requires FILE without --example");
    let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
    // toml's messages name the line and column of the problem.
    let mut spec: ExperimentSpec = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    // A judge may name one of --judge-endpoints, or (the operator's own file) give its own.
    judge_endpoints.apply(&mut spec.evaluation.judges).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let store = open_store(data_dir, places, models).await?;
    let resolved = experiments::resolve(&store, &spec).await.map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    if args.check_judge {
        check_judges(&store, &host, &resolved).await?;
    }
    let worker = WorkerSettings { lease_secs: args.lease_secs, max_pass_tokens, host };
    Ok(launch(&store, data_dir, &resolved, args.dry_run, args.detach, worker).await?.0)
}

pub async fn demo(
    data_dir: &Path,
    places: &crate::cli::Places,
    models: &ModelPaths,
    args: DemoArgs,
    max_pass_tokens: usize,
    host: ml::Host,
) -> Result<ExitCode> {
    let store = open_store(data_dir, places, models).await?;
    let mode = match (args.full, args.tiny) {
        (true, _) => engine::demo::DemoMode::Full,
        (_, true) => engine::demo::DemoMode::Tiny,
        _ => engine::demo::DemoMode::Quick,
    };
    let resolved = engine::demo::resolve(&store, mode).await?;
    let worker = WorkerSettings { lease_secs: args.lease_secs, max_pass_tokens, host };
    let (code, id) = launch(&store, data_dir, &resolved, args.dry_run, args.detach, worker).await?;
    let Some(id) = id.filter(|_| !args.detach) else { return Ok(code) };
    // The story in words, as the report's first screen tells it.
    let aggregates = experiments::aggregates(&store, id).await?;
    println!();
    for line in engine::report::headline(&engine::report::summary(&resolved, &aggregates)) {
        println!("- {line}");
    }
    println!("\nThe report: `inoculab serve`, then http://127.0.0.1:3000/experiments/{id}/report");
    Ok(code)
}

/// `--check-judge`: each misalignment judge's check on the calibration set, printed.
async fn check_judges(store: &engine::Store, host: &ml::Host, resolved: &experiments::Resolved) -> Result<()> {
    use engine::judges::calibration;
    let specs: Vec<_> = resolved.judges.iter().filter(|s| calibration::applies(s)).collect();
    if specs.is_empty() {
        eprintln!("judge check: this experiment has no misalignment judge to check");
    }
    for spec in specs {
        let c = calibration::check(store, host, spec, &resolved.model.name).await?;
        println!("{}", c.sentence());
        for (kind, n, agree) in &c.kinds {
            println!("  {kind:<11} {agree} of {n} right");
        }
    }
    Ok(())
}

/// `--list-presets`: each preset's id, title and the files to import.
fn preset_list(shared: &str) -> String {
    let mut out = String::new();
    for p in engine::presets::all() {
        out.push_str(&format!("{:<22} {}\n", p.id, p.title));
        for i in p.imports {
            match i.kind {
                engine::presets::ImportKind::Teacher => {
                    out.push_str(&format!("{:<22}   make {} ({})\n", "", i.path, i.role))
                }
                _ => out.push_str(&format!(
                    "{:<22}   import {}/{} ({})\n",
                    "",
                    shared.trim_end_matches('/'),
                    i.path,
                    i.role
                )),
            }
        }
        if p.needs_base_run {
            out.push_str(&format!("{:<22}   needs a finished run to start from (--base-run RUN_ID)\n", ""));
        }
    }
    out.push_str("\n`inoculab run --preset NAME > experiment.toml` writes one as an experiment file.\n");
    out
}

/// `--preset NAME`: the preset's experiment as TOML, after a commented header that says
/// what it is and what to import first.
async fn preset_toml(
    store: &engine::Store,
    name: &str,
    base_run: Option<i64>,
    shared: &str,
    endpoints: &engine::judges::Endpoints,
) -> Result<String> {
    use engine::presets::{self, Choices, ImportKind};
    let preset = presets::find(name)?;
    // Misalignment is judged through the operator's first endpoint when there is one; the
    // file names it, and `inoculab run` swaps in its settings.
    let judge_endpoint = endpoints.list().first().map(|e| e.name.clone());
    let choices = Choices { base_run, data_root: shared.to_string(), judge_endpoint, ..Choices::default() };
    let prepared = presets::prepare(store, preset, choices).await?;
    let mut spec = preset.spec(&prepared.choices);
    presets::link_library_prompts(store, &mut spec).await?;
    let mut out = format!("# Preset {}: {}\n#\n", preset.id, preset.title);
    for line in wrap(preset.description, 88) {
        out.push_str(&format!("# {line}\n"));
    }
    let shared = shared.trim_end_matches('/');
    for i in &prepared.missing {
        match i.kind {
            ImportKind::Dataset => out.push_str(&format!(
                "#\n# Import first ({}):\n#   inoculab dataset import {shared}/{}\n",
                i.role, i.path
            )),
            ImportKind::Questions => out.push_str(&format!(
                "#\n# Questions ({}) are read from {shared}/{} when the experiment is created.\n",
                i.role, i.path
            )),
            ImportKind::Teacher => out.push_str(&format!(
                "#\n# Make first: {} ({}).\n#   inoculab dataset teacher --system-prompt \"{}\"\n",
                i.path,
                i.role,
                engine::subliminal::teacher_system_prompt("owl")
            )),
        }
    }
    if preset.needs_base_run && base_run.is_none() {
        // A placeholder that resolve rejects with a clear message, never a silent one-stage run.
        spec.base_run = Some(0);
        out.push_str("#\n# Set base_run below to a finished run's id (or pass --base-run RUN_ID).\n");
    }
    out.push_str("#\n# Conditions:\n");
    let library = engine::prompts::list(store, &Default::default()).await?;
    for c in &spec.conditions {
        let prompt = match &c.prompt {
            None => "no prompt".to_string(),
            Some(experiments::PromptRef::Text(t)) => format!("\"{t}\""),
            Some(experiments::PromptRef::Library { prompt_id, .. }) => {
                let text = library.iter().find(|p| p.id == *prompt_id).map(|p| p.text.as_str()).unwrap_or("?");
                format!("library prompt {prompt_id}, \"{text}\"")
            }
        };
        let only =
            c.only_language.map(|l| format!(", only on rows answered in {}", l.english_name())).unwrap_or_default();
        out.push_str(&format!("#   {}: {prompt}{only}\n", c.name));
    }
    out.push_str("#\n# Run it: inoculab run THIS_FILE.toml\n\n");
    out.push_str(&toml::to_string(&spec).context("the preset's experiment as TOML")?);
    Ok(out)
}

/// Words of `text` in lines of at most `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("one line");
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

/// Opens the store the way `serve` does: the library's prompts and the default model there.
async fn open_store(data_dir: &Path, places: &crate::cli::Places, models: &ModelPaths) -> Result<engine::Store> {
    let store = places.connect(data_dir).await?;
    engine::prompts::seed_canonical(&store).await?;
    engine::prompts::seed_judge_prompts(&store).await?;
    if let Err(e) = engine::models::ensure_builtin(&store, &models.default_model).await {
        eprintln!("warning: cannot register the default model: {e}");
    }
    Ok(store)
}

/// How `launch`'s own worker runs: see the flags of the same names.
struct WorkerSettings {
    lease_secs: u64,
    max_pass_tokens: usize,
    host: ml::Host,
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
    settings: WorkerSettings,
) -> Result<(ExitCode, Option<i64>)> {
    let store = store.clone();
    let plan = experiments::plan(&store, resolved).await?;
    println!(
        "{} x {}, {}, {}; about {} ({})",
        wire::counted(plan.runs as u64, "run", "runs"),
        wire::counted(plan.steps_per_run as u64, "step", "steps"),
        wire::counted(plan.questions as u64, "question", "questions"),
        wire::counted(plan.samples as u64, "sample", "samples"),
        wire::fmt_duration(plan.estimate_s),
        plan.estimate_basis
    );
    for r in &plan.matrix {
        println!(
            "  {:<24} seeds {:?}  test prompts [{}]  {} samples/run  prompt: {}",
            r.condition.name,
            r.seeds,
            r.test_prompts.join(", "),
            r.samples_per_run,
            match &r.condition.scope {
                Some(scope) => format!("{}; {scope}", r.condition.prompt.as_deref().unwrap_or("(none)")),
                None => r.condition.prompt.as_deref().unwrap_or("(none)").to_string(),
            }
        );
    }
    for note in &plan.judge_notes {
        println!("judge: {note}");
    }
    for warning in &plan.judge_warnings {
        eprintln!("warning: {warning}");
    }
    if dry_run {
        return Ok((ExitCode::SUCCESS, None));
    }
    let id = experiments::create(&store, resolved).await?;
    println!("experiment {id} created; its runs are queued");
    if detach {
        return Ok((ExitCode::SUCCESS, Some(id)));
    }

    // This process's worker, in the registry like any other (`serve`'s, `inoculab worker`).
    let worker = tokio::task::block_in_place(|| {
        crate::worker::registered(
            store.clone(),
            data_dir,
            Duration::from_secs(settings.lease_secs.max(1)),
            settings.max_pass_tokens,
            settings.host,
            None,
        )
    })?;
    let bar = ProgressBar::new(1000);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}").expect("template").progress_chars("=> "),
    );
    let watch_store = store.clone();
    let watch_bar = bar.clone();
    // The work left, over every run (the bar's own ETA would extrapolate from its position).
    let rates = experiments::work_rates(&store, resolved).await?.0;
    let watcher = tokio::spawn(async move {
        loop {
            if let Ok(runs) = jobs::for_experiment(&watch_store, id).await {
                let total: f64 = runs.len().max(1) as f64;
                let done: f64 = runs.iter().map(|r| r.progress).sum();
                watch_bar.set_position((1000.0 * done / total) as u64);
                if let Some(r) = runs.iter().find(|r| r.status == JobStatus::Running) {
                    watch_bar.set_message(format!(
                        "{} seed {}: {} {} · about {} of work left",
                        r.condition,
                        r.seed,
                        r.phase.as_str(),
                        if r.phase == jobs::RunPhase::Train {
                            format!("step {}/{}", r.step, r.total_steps)
                        } else {
                            format!("{}/{}", r.done_units, r.total_units)
                        },
                        wire::fmt_duration(rates.remaining_s(&runs))
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
                // Not `progress.println`: that prints nothing when stderr is not a
                // terminal (CI, a log file), which hid why a run failed.
                Ran::Job { run_id, status, error } => progress.suspend(|| {
                    eprintln!(
                        "run {run_id}: {}{}",
                        status.as_str(),
                        error.map(|e| format!(": {e}")).unwrap_or_default()
                    )
                }),
                Ran::Empty => {
                    let runs = handle.block_on(jobs::for_experiment(&work_store, id))?;
                    if runs.iter().all(|r| r.status.is_final()) {
                        worker.deregister();
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
    println!(
        "{:<24} {:<16} {:<22} {:>7}  {:<15} {:>6}  {}",
        "condition", "test prompt", "judge", "rate", "95 % CI", "n", "over"
    );
    for a in experiments::aggregates(&store, id).await?.iter().filter(|a| a.seed.is_none() && a.question_key.is_none())
    {
        // The mean over seeds with an interval over seeds when there are two or more.
        let (rate, ci, over) = match a.headline() {
            Some((r, lo, hi, basis)) => (
                format!("{:.1} %", 100.0 * r),
                format!("{:.1}-{:.1} %", 100.0 * lo, 100.0 * hi),
                match basis {
                    experiments::RateBasis::Seeds(n) => format!("{n} seeds"),
                    experiments::RateBasis::Pooled => "answers".to_string(),
                },
            ),
            None => ("-".into(), "-".into(), String::new()),
        };
        println!(
            "{:<24} {:<16} {:<22} {:>7}  {:<15} {:>6}  {over}",
            a.condition, a.test_prompt, a.judge, rate, ci, a.determined
        );
    }
    Ok((if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }, Some(id)))
}
