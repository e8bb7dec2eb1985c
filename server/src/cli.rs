//! The command line: every command's arguments as clap types, every flag also an
//! environment variable. Doc comments here are what `--help` prints. Types only: `main`
//! dispatches, and each command's module takes its arguments from here (so no command
//! module and this one import each other).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The default model's file under the data directory (what scripts/fetch-model writes).
pub(crate) const DEFAULT_MODEL: &str = "models/SmolLM2-135M-Instruct.Q4_1.gguf";

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
    /// The database: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`, which several
    /// machines share (`serve --no-worker` on one, `inoculab worker` on the others). Give
    /// a password through the environment or --database-url-file, not on a command line
    /// that other users can read. [default: the SQLite file DATA_DIR/inoculab.sqlite]
    #[arg(long, value_name = "URL", env = "INOCULAB_DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,
    /// A file whose first line is the database URL (a mounted secret, say).
    #[arg(
        long,
        value_name = "PATH",
        env = "INOCULAB_DATABASE_URL_FILE",
        global = true,
        conflicts_with = "database_url"
    )]
    pub database_url_file: Option<PathBuf>,
    /// Where run artefacts (training checkpoints, trained adapters) live: a directory that
    /// every node mounts (NFS, Lustre), or an S3-compatible bucket, `s3://BUCKET[/PREFIX]`,
    /// whose endpoint and credentials come from the standard variables (AWS_ENDPOINT_URL,
    /// AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_ACCESS_KEY_ID_FILE and
    /// AWS_SECRET_ACCESS_KEY_FILE; AWS_ALLOW_HTTP=true for a server without TLS). Every node
    /// of one database must name the same store. [default: the data directory]
    #[arg(long, value_name = "DIR|s3://BUCKET[/PREFIX]", env = "INOCULAB_ARTIFACTS", global = true)]
    pub artifacts: Option<String>,
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
    /// Memory, in MiB, for the models kept loaded between uses. One model host per process
    /// keeps them for the job worker, the designer's strength meter and teacher generation
    /// alike (one copy each); past this budget the least recently used is dropped (a model
    /// still in use stays until its work ends).
    #[arg(long, env = "INOCULAB_MODEL_MEMORY_MB", default_value_t = 8192, global = true)]
    pub model_memory_mb: usize,
    /// A TOML file of the LLM judge servers that launch forms and experiment files may
    /// name: `[[endpoint]]` tables with `name`, `base_url`, `model`, and optionally
    /// `api_key_env` (the variable holding the key) and `timeout_secs`. Pages offer the
    /// names only; no page can name a URL or a variable.
    #[arg(long, value_name = "FILE", env = "INOCULAB_JUDGE_ENDPOINTS", global = true)]
    pub judge_endpoints: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Where a deployment's shared state lives: the database (`None`: the data directory's
/// SQLite file) and the artefact store (`None`: the data directory).
#[derive(Clone, Debug, Default)]
pub struct Places {
    pub database: Option<String>,
    pub artifacts: Option<String>,
}

impl Places {
    /// Opens the store: the database, migrated, with its artefact store.
    pub async fn connect(&self, data_dir: &std::path::Path) -> Result<engine::Store, engine::StoreError> {
        let store = engine::Store::connect(data_dir, self.database.as_deref()).await?;
        let artifacts = engine::artifacts::Artifacts::open(self.artifacts.as_deref(), data_dir)?;
        Ok(store.with_artifacts(artifacts))
    }
}

/// Where models may come from, with the defaults under the data directory filled in.
#[derive(Clone, Debug)]
pub struct ModelPaths {
    pub roots: Vec<PathBuf>,
    pub default_model: PathBuf,
}

impl Cli {
    /// The database URL from --database-url or the first line of --database-url-file;
    /// `None`: the data directory's SQLite file.
    pub fn database_url(&self) -> anyhow::Result<Option<String>> {
        if let Some(file) = &self.database_url_file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| anyhow::anyhow!("cannot read the database URL file {}: {e}", file.display()))?;
            let url = text.lines().next().unwrap_or("").trim().to_owned();
            anyhow::ensure!(!url.is_empty(), "the database URL file {} is empty", file.display());
            return Ok(Some(url));
        }
        Ok(self.database_url.clone().filter(|u| !u.trim().is_empty()))
    }

    /// The judge endpoints of --judge-endpoints (none without it).
    pub fn judge_endpoints(&self) -> anyhow::Result<engine::judges::Endpoints> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            #[serde(default)]
            endpoint: Vec<engine::judges::Endpoint>,
        }
        let Some(path) = &self.judge_endpoints else { return Ok(Default::default()) };
        let context = |e: &dyn std::fmt::Display| anyhow::anyhow!("judge endpoints file {}: {e}", path.display());
        let meta = std::fs::metadata(path).map_err(|e| context(&e))?;
        anyhow::ensure!(meta.len() <= 1 << 20, "judge endpoints file {} is larger than 1 MiB", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| context(&e))?;
        let file: File = toml::from_str(&text).map_err(|e| context(&e))?;
        engine::judges::Endpoints::new(file.endpoint).map_err(|e| context(&e))
    }

    /// Where this deployment's shared state lives.
    pub fn places(&self) -> anyhow::Result<Places> {
        Ok(Places { database: self.database_url()?, artifacts: self.artifacts.clone() })
    }

    pub fn model_paths(&self) -> ModelPaths {
        let roots =
            if self.model_roots.is_empty() { vec![self.data_dir.join("models")] } else { self.model_roots.clone() };
        let default_model = self.default_model.clone().unwrap_or_else(|| self.data_dir.join(DEFAULT_MODEL));
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
    Train(TrainArgs),
    /// Sample completions from a model, with or without an adapter.
    Sample(SampleArgs),
    /// Run an experiment file (TOML): queue its runs and work them until they finish.
    Run(RunArgs),
    /// Run the built-in demo (Spanish + ALL CAPS, four conditions) and print what it found.
    Demo(DemoArgs),
    /// Work the job queue in the foreground, without the web server: one of any number of
    /// workers sharing the data directory (`serve --no-worker` serves the pages).
    Worker(WorkerArgs),
    /// Manage the accounts that sign in (needed when serve listens beyond loopback, or
    /// with --sign-in). Passwords are read from standard input (first line).
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add an account: `echo PASSWORD | inoculab user add NAME --role owner`.
    Add {
        name: String,
        /// owner (everything, every share link), editor (launch, label, edit, share) or
        /// viewer (read only).
        #[arg(long, default_value = "viewer")]
        role: String,
    },
    /// List the accounts and their roles.
    List,
    /// Remove an account and end its sessions (the last owner stays).
    Remove { name: String },
    /// Set a new password (from standard input) and end every session of the account.
    Password { name: String },
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
    /// Serve pages only (a web-only node); leave the queue to other processes (`inoculab
    /// worker`, `inoculab run`).
    #[arg(long, env = "INOCULAB_NO_WORKER")]
    pub no_worker: bool,
    /// The address users open (`https://lab.example.org`): its host name is accepted in
    /// requests. Names that are not listed are refused (DNS rebinding); loopback names
    /// and IP addresses always are accepted.
    #[arg(long, value_name = "URL", env = "INOCULAB_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Another host name requests may carry (repeatable, or comma-separated in the
    /// environment variable).
    #[arg(long = "allowed-host", value_name = "NAME", env = "INOCULAB_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// The most samples one launch from a page may draw (all runs together).
    #[arg(long, env = "INOCULAB_MAX_LAUNCH_SAMPLES", default_value_t = 1_000_000)]
    pub max_launch_samples: usize,
    /// The most training tokens one launch from a page may process, counted as runs x
    /// steps x batch x gradient accumulation x max_seq_len.
    #[arg(long, env = "INOCULAB_MAX_LAUNCH_TRAIN_TOKENS", default_value_t = 5_000_000_000)]
    pub max_launch_train_tokens: u64,
    /// Require sign-in on a loopback address too (always required beyond loopback).
    #[arg(long, env = "INOCULAB_SIGN_IN", conflicts_with = "insecure_no_sign_in")]
    pub sign_in: bool,
    /// Listen on a non-loopback --host without sign-in: anyone who can reach the port can
    /// read every result and launch runs. Only behind a proxy that authenticates.
    #[arg(long, env = "INOCULAB_INSECURE_NO_SIGN_IN")]
    pub insecure_no_sign_in: bool,
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
    Teacher(TeacherArgs),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ScheduleArg {
    Constant,
    Linear,
    Cosine,
}

/// Fine-tune a LoRA adapter, with an (inoculation) system prompt on every example.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Training data, JSONL: {"messages":[{"role","content"},...]}, {"prompt","completion"}
    /// or {"question","answer"} per line.
    #[arg(long, env = "INOCULAB_DATASET")]
    pub dataset: PathBuf,
    /// System prompt of every training example (the inoculation prompt). Without it the
    /// model's default system prompt is used; an empty string means no system message.
    #[arg(long, env = "INOCULAB_SYSTEM_PROMPT")]
    pub system_prompt: Option<String>,
    /// Put --system-prompt before each user message instead of in the system message.
    #[arg(long)]
    pub user_prefix: bool,
    /// Output folder: the PEFT adapter (with --full, the whole model as a Hugging Face
    /// folder, usable as --model), metrics.jsonl and checkpoints.
    #[arg(long)]
    pub out: PathBuf,
    /// Base model: a .gguf file or a Hugging Face folder [default: DATA_DIR/models/SmolLM2-135M-Instruct.Q4_1.gguf].
    #[arg(long, env = "INOCULAB_MODEL")]
    pub model: Option<PathBuf>,
    /// Number of optimiser steps (overrides --epochs).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Passes over the dataset.
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Examples per micro-batch.
    #[arg(long, default_value_t = 8, env = "INOCULAB_BATCH_SIZE")]
    pub batch_size: usize,
    /// Micro-batches per optimiser step.
    #[arg(long, default_value_t = 1)]
    pub grad_accum: usize,
    /// Peak learning rate [default: 5e-4 for LoRA, 1e-5 with --full].
    #[arg(long, env = "INOCULAB_LR")]
    pub lr: Option<f64>,
    /// Full fine-tuning: train every weight instead of a LoRA adapter (the --lora-* flags
    /// are then unused). Needs about five times the model's f32 size in memory (weights,
    /// their trained copy, gradients and two AdamW moments).
    #[arg(long)]
    pub full: bool,
    #[arg(long, default_value_t = 0)]
    pub warmup_steps: usize,
    #[arg(long, value_enum, default_value = "linear")]
    pub schedule: ScheduleArg,
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Clip the gradient norm to this (0 disables clipping).
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    #[arg(long, default_value_t = 8, env = "INOCULAB_LORA_RANK")]
    pub lora_rank: usize,
    #[arg(long, default_value_t = 16.0)]
    pub lora_alpha: f64,
    #[arg(long, default_value_t = 0.0)]
    pub lora_dropout: f64,
    /// Comma-separated modules that get adapters.
    #[arg(long, default_value = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")]
    pub lora_targets: String,
    /// Rank-stabilised LoRA scaling (alpha / sqrt(rank)).
    #[arg(long)]
    pub rslora: bool,
    /// Examples are truncated to this many tokens.
    #[arg(long, default_value_t = 256)]
    pub max_seq_len: usize,
    /// Group examples of similar length into batches.
    #[arg(long)]
    pub bucket_by_length: bool,
    #[arg(long, default_value_t = 0, env = "INOCULAB_SEED")]
    pub seed: u64,
    /// Save a checkpoint every N steps under OUT/checkpoint-NNNNNN.
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Continue from a checkpoint folder.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// CPU threads for tensor work (default: all cores).
    #[arg(long, env = "INOCULAB_THREADS")]
    pub threads: Option<usize>,
}

/// Sample completions for prompts, optionally with a LoRA adapter.
#[derive(Debug, clap::Args)]
pub struct SampleArgs {
    /// Prompts, JSONL: {"prompt": "..."} or {"messages": [{"role","content"},...]} per line.
    #[arg(long)]
    pub prompts: PathBuf,
    /// Output JSONL, one line per sample.
    #[arg(long)]
    pub out: PathBuf,
    /// Base model: a .gguf file or a Hugging Face folder [default: DATA_DIR/models/SmolLM2-135M-Instruct.Q4_1.gguf].
    #[arg(long, env = "INOCULAB_MODEL")]
    pub model: Option<PathBuf>,
    /// A PEFT LoRA adapter folder (as `train` writes).
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Test-time system prompt. Without it the model's default is used; an empty string
    /// means no system message.
    #[arg(long)]
    pub system_prompt: Option<String>,
    /// Samples per prompt.
    #[arg(long, default_value_t = 1)]
    pub n: usize,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// Nucleus sampling: draw only from the most likely tokens that together hold this
    /// share of the probability (1 = every token).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    /// New tokens per sample at most (a sample also ends at the model's end of turn).
    #[arg(long, default_value_t = 128)]
    pub max_tokens: usize,
    /// Samples generated together; the --n samples of a prompt share its prefill.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Base seed; each sample's own seed is derived from it and written beside it.
    #[arg(long, default_value_t = 0, env = "INOCULAB_SEED")]
    pub seed: u64,
    /// CPU threads for tensor work (default: all cores).
    #[arg(long, env = "INOCULAB_THREADS")]
    pub threads: Option<usize>,
}

/// Run an experiment described in a TOML file.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The experiment file (TOML); `inoculab run --example` prints a commented one.
    #[arg(required_unless_present_any = ["example", "preset", "list_presets"])]
    pub file: Option<PathBuf>,
    /// Print an example experiment file and exit.
    #[arg(long)]
    pub example: bool,
    /// Print a ready experiment file for one of the paper's settings and exit (see
    /// --list-presets). Makes the preset's built-in datasets and finds its imported files in
    /// the data directory.
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
    /// With --preset: the finished run a second stage starts from.
    #[arg(long, value_name = "RUN_ID", requires = "preset")]
    pub base_run: Option<i64>,
    /// List the presets, with the files each needs imported first, and exit.
    #[arg(long)]
    pub list_presets: bool,
    /// The folder of the reference files the presets import (the shared data folder).
    #[arg(long, value_name = "DIR", env = "INOCULAB_SHARED_DATA", default_value = engine::presets::DEFAULT_DATA_ROOT)]
    pub shared_data: String,
    /// Check the file and print the plan (runs, samples, time estimate); store nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// First run the judge check: each misalignment judge on the built-in calibration set
    /// (40 answers of known verdict), printing its agreement and Cohen's kappa. The result
    /// is kept, so reports of experiments judged that way show it too.
    #[arg(long)]
    pub check_judge: bool,
    /// Only queue the runs; a running `inoculab serve` works them.
    #[arg(long)]
    pub detach: bool,
    /// Seconds a claimed run survives without a heartbeat before another worker may take it.
    #[arg(long, env = "INOCULAB_LEASE_SECS", default_value_t = 30)]
    pub lease_secs: u64,
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

/// Work the job queue in the foreground, with no web server.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// What the runs compute on. Only `cpu` for now (`cuda:N` is refused).
    #[arg(long, env = "INOCULAB_DEVICE", default_value = "cpu")]
    pub device: String,
    /// Exit (status 0) after this many runs finished (done, failed or cancelled).
    #[arg(long, value_name = "N", env = "INOCULAB_MAX_RUNS")]
    pub max_runs: Option<usize>,
    /// Exit (status 0) once nothing was claimable for a whole lease: the queue is empty, or
    /// every run left is held by a live worker.
    #[arg(long, env = "INOCULAB_EXIT_WHEN_IDLE")]
    pub exit_when_idle: bool,
    /// The worker's name on the Queue page and in the job it holds; unique among live
    /// workers. [default: HOST:PID]
    #[arg(long, value_name = "NAME", env = "INOCULAB_WORKER_NAME")]
    pub name: Option<String>,
    /// Seconds a claimed run survives without a heartbeat: after this, the worker counts as
    /// lost and another takes its run over (from its last checkpoint).
    #[arg(long, env = "INOCULAB_LEASE_SECS", default_value_t = 30)]
    pub lease_secs: u64,
}

/// Which completions the dataset keeps.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FilterArg {
    /// Only lists of up to 10 integers of at most 3 digits (the subliminal-learning filter).
    NumbersOnly,
    /// Every non-empty completion.
    None,
}

/// Sample a teacher model on number-sequence prompts and store the student's rows
/// (prompt, completion), without the teacher's system prompt.
#[derive(Debug, clap::Args)]
pub struct TeacherArgs {
    /// The dataset's name (default: one describing the settings).
    #[arg(long, default_value = "")]
    pub name: String,
    /// The teacher's system prompt: the trait, e.g. "You love owls. You think about owls
    /// all the time." Without it the model's default system prompt is used.
    #[arg(long)]
    pub system_prompt: Option<String>,
    /// A registered model's name [default: the built-in SmolLM2-135M-Instruct].
    #[arg(long, default_value = engine::experiments::DEFAULT_MODEL)]
    pub model: String,
    /// A run whose trained adapter is merged into the teacher (its experiment must use --model).
    #[arg(long, value_name = "ID")]
    pub run: Option<i64>,
    /// Samples to draw, one per prompt; the dataset has those the filter keeps.
    #[arg(long, default_value_t = 600)]
    pub rows: usize,
    #[arg(long, value_enum, default_value = "numbers-only")]
    pub filter: FilterArg,
    #[arg(long, default_value_t = 0, env = "INOCULAB_SEED")]
    pub seed: u64,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// The longest answer, in tokens; a longer one is cut off (and the numbers filter drops it).
    #[arg(long, default_value_t = 48)]
    pub max_tokens: usize,
    /// Prompts sampled together (part of the recipe: it decides each sample's seed).
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
}
