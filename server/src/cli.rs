//! The command line: one clap struct, every flag also an environment variable. Doc
//! comments here are what `--help` prints.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "inoculab",
    version,
    about = "Inoculation prompting experiments: author prompts, build datasets, fine-tune, evaluate."
)]
pub struct Cli {
    /// Where the database, models and run artefacts live.
    #[arg(long, env = "INOCULAB_DATA_DIR", default_value = ".data", global = true)]
    pub data_dir: PathBuf,
    /// A folder under which models may be registered (repeatable, or comma-separated in
    /// the environment variable). Registering anything outside these is refused, so the
    /// web page cannot point the server at arbitrary files. [default: DATA_DIR/models]
    #[arg(long = "model-root", value_name = "DIR", env = "INOCULAB_MODEL_ROOTS", value_delimiter = ',', global = true)]
    pub model_roots: Vec<PathBuf>,
    /// The embedded default model, registered as the built-in model when the server starts.
    /// [default: DATA_DIR/models/SmolLM2-135M-Instruct.Q4_1.gguf]
    #[arg(long, value_name = "PATH", env = "INOCULAB_DEFAULT_MODEL", global = true)]
    pub default_model: Option<PathBuf>,
    /// Training puts at most this many (padded) tokens through one forward and backward
    /// pass; a larger batch runs as several passes with the same gradient. The activations
    /// kept for the backward pass grow with it (~4 MB a token for SmolLM2-135M, more for a
    /// bigger model): lower it when training runs out of memory.
    #[arg(long, env = "INOCULAB_MAX_PASS_TOKENS", default_value_t = 1024, global = true)]
    pub max_pass_tokens: usize,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Where models may come from, with the defaults under the data directory filled in.
#[derive(Clone, Debug)]
pub struct ModelPaths {
    pub roots: Vec<PathBuf>,
    pub default_model: PathBuf,
}

impl Cli {
    pub fn model_paths(&self) -> ModelPaths {
        let roots =
            if self.model_roots.is_empty() { vec![self.data_dir.join("models")] } else { self.model_roots.clone() };
        let default_model =
            self.default_model.clone().unwrap_or_else(|| self.data_dir.join(crate::ml_cmd::DEFAULT_MODEL));
        ModelPaths { roots, default_model }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the web app (the default when no command is given).
    Serve(ServeArgs),
    /// Manage datasets.
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Fine-tune a LoRA adapter with an (inoculation) system prompt on every example.
    Train(crate::ml_cmd::TrainArgs),
    /// Sample completions from a model, with or without an adapter.
    Sample(crate::ml_cmd::SampleArgs),
    /// Run an experiment file (TOML): queue its runs and work them until they finish.
    Run(crate::run_cmd::RunArgs),
    /// Run the built-in demo (Spanish + ALL CAPS, four conditions) and print what it found.
    Demo(crate::run_cmd::DemoArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on. The default accepts connections from this machine only.
    #[arg(long, env = "INOCULAB_HOST", default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Port to listen on.
    #[arg(long, env = "INOCULAB_PORT", default_value_t = 3000)]
    pub port: u16,
    /// Largest upload accepted, in MiB (dataset files).
    #[arg(long, env = "INOCULAB_MAX_UPLOAD_MB", default_value_t = 64)]
    pub max_upload_mb: usize,
    /// Longest dataset row accepted, in characters (all turns together).
    #[arg(long, env = "INOCULAB_MAX_ROW_CHARS", default_value_t = 50_000)]
    pub max_row_chars: usize,
    /// The built web assets (wasm bundle, CSS); scripts/build-site writes them here.
    #[arg(long, env = "INOCULAB_SITE_ROOT", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/site"))]
    pub site_root: PathBuf,
    /// Seconds a claimed run survives without a heartbeat; after a crash, the next start
    /// takes the run over (from its last checkpoint) once this has passed.
    #[arg(long, env = "INOCULAB_LEASE_SECS", default_value_t = 30)]
    pub lease_secs: u64,
    /// Serve pages only; leave the queue to another process (`inoculab run`).
    #[arg(long)]
    pub no_worker: bool,
}

impl Default for ServeArgs {
    /// The flags' defaults and environment variables, as when `serve` is given alone.
    fn default() -> Self {
        #[derive(Parser)]
        struct Alone {
            #[command(flatten)]
            args: ServeArgs,
        }
        Alone::parse_from(["inoculab"]).args
    }
}

#[derive(Subcommand, Debug)]
pub enum DatasetCommand {
    /// Import a JSONL file (chat `messages`, `prompt`/`completion`, or `question`/`answer`).
    Import {
        /// The file to import.
        file: PathBuf,
        /// The dataset's name (default: the file name).
        #[arg(long)]
        name: Option<String>,
        /// Longest row accepted, in characters.
        #[arg(long, env = "INOCULAB_MAX_ROW_CHARS", default_value_t = 50_000)]
        max_row_chars: usize,
    },
    /// List datasets.
    List,
    /// Generate one of the paper's toy datasets with inoculab's own generator.
    Generate {
        /// spanish_all_caps | spanish_french_mix | english
        #[arg(long, default_value = "spanish_all_caps")]
        preset: String,
        #[arg(long, default_value_t = 512)]
        rows: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// The dataset's name (default: one describing the settings).
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Sample a teacher model (given a trait by its system prompt, or a run's adapter) on
    /// number-sequence prompts: the subliminal-learning setting.
    Teacher(crate::teacher_cmd::TeacherArgs),
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let model_paths = cli.model_paths();
    let (data_dir, max_pass_tokens) = (cli.data_dir, cli.max_pass_tokens);
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => {
            crate::web::serve(&data_dir, &model_paths, args, max_pass_tokens).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Dataset(cmd) => dataset(&data_dir, &model_paths, cmd).await,
        // Tensor work is blocking: it runs on a blocking thread, off the async runtime.
        Command::Train(args) => {
            tokio::task::spawn_blocking(move || crate::ml_cmd::run_train(&data_dir, args, max_pass_tokens)).await??;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => crate::run_cmd::run(&data_dir, &model_paths, args, max_pass_tokens).await,
        Command::Demo(args) => crate::run_cmd::demo(&data_dir, &model_paths, args, max_pass_tokens).await,
        Command::Sample(args) => {
            tokio::task::spawn_blocking(move || crate::ml_cmd::run_sample(&data_dir, args)).await??;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn dataset(data_dir: &std::path::Path, models: &ModelPaths, cmd: DatasetCommand) -> anyhow::Result<ExitCode> {
    use engine::datasets;
    let store = engine::Store::open(data_dir).await?;
    match cmd {
        DatasetCommand::Import { file, name, max_row_chars } => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let file_name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let name = name.unwrap_or_else(|| file_name.clone());
            let limits = datasets::ImportLimits { max_chars_per_row: max_row_chars, ..Default::default() };
            match datasets::import(&store, &name, &file_name, &bytes, &limits).await {
                Ok(datasets::ImportOutcome::Created { id }) => {
                    let rows = datasets::get(&store, id).await?.row_count;
                    println!("imported {rows} rows from {} as dataset {id} ({name})", file.display());
                    Ok(ExitCode::SUCCESS)
                }
                Ok(datasets::ImportOutcome::AlreadyPresent { id, name }) => {
                    println!("{} is already imported: dataset {id} ({name}) has the same rows", file.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(datasets::DatasetError::Import(report)) => {
                    eprintln!("{}: {} bad line(s); nothing was imported", file.display(), report.total);
                    for e in &report.errors {
                        eprintln!("{}:{}: {}", file.display(), e.line, e.problem);
                    }
                    if report.total > report.errors.len() {
                        eprintln!("… and {} more", report.total - report.errors.len());
                    }
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Err(e.into()),
            }
        }
        DatasetCommand::Generate { preset, rows, seed, name } => {
            let preset: datasets::generate::Preset = serde_json::from_value(serde_json::Value::String(preset.clone()))
                .map_err(|_| {
                    anyhow::anyhow!("unknown preset {preset:?}: spanish_all_caps, spanish_french_mix or english")
                })?;
            let spec = preset.spec(rows, seed);
            match datasets::generate::create_generated(&store, &spec, &name).await? {
                datasets::ImportOutcome::Created { id } => println!("generated dataset {id} ({rows} rows)"),
                datasets::ImportOutcome::AlreadyPresent { id, name } => {
                    println!("these rows already exist as dataset {id} ({name})")
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DatasetCommand::Teacher(args) => crate::teacher_cmd::run(&store, data_dir, models, args).await,
        DatasetCommand::List => {
            let list = datasets::list(&store).await?;
            if list.is_empty() {
                println!("no datasets yet");
            }
            for d in list {
                println!(
                    "{:>5}  {:<40}  {:>7} rows  {:<9}  {}",
                    d.id,
                    d.name,
                    d.row_count,
                    d.source.as_str(),
                    &d.content_hash[..12]
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
