//! The worker: claims a job, runs it (train, then sample, then judge) and records how it
//! ended. Blocking: it runs on a dedicated thread, never on the async runtime, and reaches
//! the store through a runtime handle.
//!
//! Every phase resumes from what is stored, so a run that was killed (or cancelled and
//! retried) picks up where it stopped:
//! - training restarts from the newest complete checkpoint under `runs/ID/checkpoints`
//!   (written atomically by `ml::train`), and is skipped once `runs/ID/adapter` exists;
//! - sampling works through a fixed list of batches; each batch is written in one
//!   transaction, so it is stored whole or not at all, and a stored batch is never redone.
//!   A test-time prompt added after the run finished (the elicitation check) starts
//!   batches of its own after the existing ones, so the stored batches, and their seeds,
//!   stay as they were and only the new prompt's samples are drawn;
//! - judging skips samples that already have this judge's verdict.
//!
//! The work itself runs on the process's model host (`ml::Host`), as one background task
//! that serves waiting interactive work (the designer's strength meter, a teacher
//! generation) between its units: after each training step, sampling batch and judge
//! chunk. The host owns the loaded weights, so consecutive runs, the meter and the judges
//! share one copy of a model.
//!
//! A heartbeat thread renews the job's lease while the run works and turns a cancel
//! request (or a lost lease) into the `cancel` flag that training and sampling watch, so a
//! cancel takes effect within one training step or one sampled token.
//!
//! Every worker is in the workers registry (`crate::workers`): it heartbeats there with
//! its job's heartbeat and at each poll while idle, and records which run it holds, the
//! checkpoint step a run's training resumed from, and how it let the run go. [`Worker::work`]
//! is the loop the `serve` thread and `inoculab worker` run: polls that back off while the
//! queue is empty, and a shutdown flag (a signal) that stops the run in progress between
//! steps and hands its job straight back to the queue instead of leaving its lease to
//! expire.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::datasets::{self, Message, Role, Row};
use crate::experiments::{self, Placement, Resolved, ResolvedBase, ResolvedCondition, TestPromptKind};
use crate::jobs::{self, Beat, Claimed, JobStatus, RunPhase};
use crate::judges::{BackendSpec, JudgeSpec, Judgement, LocalLogprobs, LogprobBackend};
use crate::questions::Question;
use crate::workers::{self, Let};
use crate::{artifacts, models, store, strength, Store};
use ml::host::Ctx;
use ml::sample::sample_seed;
use ml::{
    self, ChatExample, ChatMessage, Host, LoadedModel, Lora, LoraConfig, MlError, Priority, SampleConfig, SystemPrompt,
    TrainConfig,
};

/// What one call of [`Worker::run_one`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Ran {
    /// A job was claimed and ended with this status (`Running` when the lease was lost
    /// to another worker and this one stopped without writing; `Queued` when the worker was
    /// shut down and handed the job back to the queue, see [`Worker::shutdown_flag`]).
    Job {
        run_id: i64,
        status: JobStatus,
        error: Option<String>,
    },
    Empty,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Ml(#[from] MlError),
    #[error("{0}")]
    Experiment(#[from] experiments::ExperimentError),
    #[error("{0}")]
    Dataset(#[from] datasets::DatasetError),
    #[error("judge: {0}")]
    Judge(#[from] crate::judges::JudgeError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("prompt strength: {0}")]
    Strength(#[from] crate::strength::StrengthError),
    #[error("{0}")]
    Artifacts(#[from] crate::artifacts::ArtifactError),
    #[error("{0}")]
    Other(String),
}

enum Outcome {
    Done,
    Cancelled,
}

/// Cheap to clone (the store and the host are handles): a run's task on the host holds
/// its own copy.
#[derive(Clone)]
pub struct Worker {
    store: Store,
    data_dir: PathBuf,
    handle: tokio::runtime::Handle,
    id: String,
    /// How long a claim holds without a heartbeat; a dead worker's job is taken over after it.
    pub lease: Duration,
    pub heartbeat_every: Duration,
    /// See [`ml::TrainConfig::max_pass_tokens`]: a matter of the machine's memory, not of
    /// the experiment (experiments train without LoRA dropout, so it changes nothing but
    /// the order of a sum), so the worker holds it.
    pub max_pass_tokens: usize,
    /// Where the model work runs and the weights stay loaded: consecutive runs of one
    /// experiment share the model, a second stage's merged starting model (keyed by the
    /// model path and the adapters' hashes) is merged once, and the rest of the process
    /// (the meter, teacher generation) uses the same copies.
    host: Host,
    /// What the runs compute on, for the workers registry ("cpu").
    pub device: String,
    /// Set from outside (a signal, the server shutting down): see [`Worker::shutdown_flag`].
    shutdown: Arc<AtomicBool>,
}

/// How [`Worker::work`] polls and when it returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Polling {
    /// Return after this many runs finished (done, failed or cancelled).
    pub max_runs: Option<usize>,
    /// Return once nothing was claimable for a whole lease: a run whose worker died just
    /// before is still taken over, since its lease runs out within that time.
    pub exit_when_idle: bool,
}

/// Why [`Worker::work`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// The shutdown flag was set.
    Asked,
    /// `Polling::max_runs` runs finished.
    MaxRuns,
    /// `Polling::exit_when_idle` and the queue had nothing for this worker.
    Idle,
    /// `Polling::exit_when_idle` and the store failed every poll for a whole lease (the
    /// database is gone): the last error. A worker without `exit_when_idle` keeps trying,
    /// since a database restart should not end a long-lived worker.
    Unreachable(String),
}

impl Worker {
    /// A worker that runs its jobs on `host` (the process's one model host).
    pub fn new(store: Store, data_dir: &Path, handle: tokio::runtime::Handle, host: Host) -> Worker {
        let id = format!("worker-{}-{:08x}", std::process::id(), rand::random::<u32>());
        Worker {
            store,
            data_dir: data_dir.to_path_buf(),
            handle,
            id,
            lease: Duration::from_secs(30),
            heartbeat_every: Duration::from_secs(2),
            max_pass_tokens: ml::TrainConfig::default().max_pass_tokens,
            host,
            device: "cpu".into(),
            shutdown: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The same worker under another name (the registry's key and `jobs.locked_by`; the
    /// default is unique per worker, `workers::default_name` is host:pid).
    pub fn with_name(mut self, name: impl Into<String>) -> Worker {
        self.id = name.into();
        self
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Setting this flag stops the worker: [`Worker::work`] returns at its next poll, and a
    /// run in progress stops within one training step (or sampled token, or judge chunk)
    /// and its job goes straight back to the queue, claimable at once and with its attempt
    /// given back. The run loses only the steps since its last checkpoint. A user's cancel
    /// request that arrived meanwhile still wins (the run is cancelled).
    pub fn shutdown_flag(&self) -> Arc<AtomicBool> {
        self.shutdown.clone()
    }

    /// Enters the worker in the registry under its name (refused while a live worker of
    /// another process holds that name).
    pub fn register(&self) -> Result<(), workers::WorkerError> {
        self.block(workers::register(&self.store, &self.id, &self.device, self.lease))
    }

    /// Marks the worker stopped in the registry (it exits on purpose).
    pub fn deregister(&self) {
        self.note("mark the worker stopped", workers::stopped(&self.store, &self.id));
    }

    /// Runs a registry write; a failure there is logged, never a run's failure.
    fn note<F: std::future::Future<Output = Result<(), sqlx::Error>>>(&self, what: &str, f: F) {
        if let Err(e) = self.block(f) {
            tracing::warn!(worker = self.id, "workers registry: cannot {what}: {e}");
        }
    }

    fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.handle.block_on(f)
    }

    /// Runs jobs until the shutdown flag is set, or as `polling` says. Polls of an empty
    /// queue back off from 0.5 s, doubling to 5 s (at most a third of the lease, so an
    /// idle worker's heartbeats keep it from looking lost), and start again at 0.5 s after
    /// a claim. Marks the worker stopped in the registry when it returns.
    pub fn work(&self, polling: &Polling) -> Stopped {
        // On Postgres a new job also wakes the worker at once (NOTIFY), so the back-off
        // only bounds how stale an idle worker's view can get; on SQLite it is the poll.
        let signal = match self.block(jobs::listen(&self.store)) {
            Ok(signal) => signal,
            Err(e) => {
                tracing::warn!("cannot listen for new jobs, polling only: {e}");
                None
            }
        };
        let most = Duration::from_secs(5).min(self.lease / 3).max(Duration::from_millis(100));
        let first = Duration::from_millis(500).min(most);
        let mut wait = first;
        let mut idle_since: Option<Instant> = None;
        let mut failing_since: Option<Instant> = None;
        let mut finished = 0usize;
        let end = loop {
            if self.shutdown.load(Ordering::Relaxed) {
                break Stopped::Asked;
            }
            let polled = Instant::now();
            match self.run_one() {
                Ok(Ran::Job { run_id, status, error }) => {
                    tracing::info!(run_id, status = status.as_str(), error, "run ended");
                    (wait, idle_since, failing_since) = (first, None, None);
                    if status.is_final() {
                        finished += 1;
                        if polling.max_runs.is_some_and(|m| finished >= m) {
                            break Stopped::MaxRuns;
                        }
                    }
                    continue;
                }
                Ok(Ran::Empty) => {
                    failing_since = None;
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if polling.exit_when_idle && since.elapsed() >= self.lease {
                        break Stopped::Idle;
                    }
                }
                Err(e) => {
                    tracing::error!("job queue: {e}");
                    // From the first failed poll's start: a poll of a vanished database
                    // takes the pool's 30 s connection timeout before it fails.
                    let since = *failing_since.get_or_insert(polled);
                    if polling.exit_when_idle && since.elapsed() >= self.lease {
                        // Not deregistered: that would wait out the timeout again, and the
                        // registry shows the worker lost once its heartbeat is a lease old.
                        return Stopped::Unreachable(e.to_string());
                    }
                }
            }
            // Asleep in short naps, so a shutdown or an announced job is noticed at once.
            let until = Instant::now() + wait;
            let mut woken = false;
            while Instant::now() < until && !self.shutdown.load(Ordering::Relaxed) {
                if signal.as_ref().is_some_and(|s| s.take()) {
                    woken = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
            }
            wait = if woken { first } else { (wait * 2).min(most) };
        };
        self.deregister();
        end
    }

    /// Claims and runs one job (see the module comment).
    pub fn run_one(&self) -> Result<Ran, sqlx::Error> {
        let Some(claimed) = self.block(jobs::claim(&self.store, &self.id, self.lease))? else {
            self.note("record an idle heartbeat", workers::beat(&self.store, &self.id, None));
            return Ok(Ran::Empty);
        };
        tracing::info!(run_id = claimed.run_id, attempt = claimed.attempt, worker = self.id, "claimed run");
        self.note("record the claim", workers::claimed(&self.store, &self.id, claimed.job_id, claimed.run_id));
        let cancel = Arc::new(AtomicBool::new(false));
        let lost = AtomicBool::new(false);
        let asked_to_cancel = AtomicBool::new(false);
        let stop = AtomicBool::new(false);
        let result = std::thread::scope(|s| {
            s.spawn(|| {
                let mut last = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                    if self.shutdown.load(Ordering::Relaxed) {
                        cancel.store(true, Ordering::Relaxed);
                    }
                    if last.elapsed() < self.heartbeat_every {
                        continue;
                    }
                    last = Instant::now();
                    match self.block(jobs::heartbeat(&self.store, claimed.job_id, &self.id, self.lease)) {
                        Ok(Beat::Held) => {}
                        Ok(Beat::CancelRequested) => {
                            asked_to_cancel.store(true, Ordering::Relaxed);
                            cancel.store(true, Ordering::Relaxed);
                        }
                        Ok(Beat::Lost) => {
                            lost.store(true, Ordering::Relaxed);
                            cancel.store(true, Ordering::Relaxed);
                        }
                        Err(e) => tracing::warn!("heartbeat failed: {e}"),
                    }
                    if !lost.load(Ordering::Relaxed) {
                        self.note("record a heartbeat", workers::beat(&self.store, &self.id, Some(claimed.run_id)));
                    }
                }
            });
            let (worker, job, flag) = (self.clone(), claimed.clone(), cancel.clone());
            // A panic in the run is caught on the host thread and comes back as an error.
            let r = self
                .host
                .run(Priority::Background, move |ctx| worker.execute(ctx, &job, &flag))
                .unwrap_or_else(|e| Err(RunError::Other(e.to_string())));
            stop.store(true, Ordering::Relaxed);
            r
        });
        let (status, error) = match result {
            Ok(Outcome::Done) => (JobStatus::Done, None),
            Ok(Outcome::Cancelled) | Err(RunError::Ml(MlError::Cancelled)) => (JobStatus::Cancelled, None),
            Err(e) => (JobStatus::Failed, Some(e.to_string())),
        };
        if lost.load(Ordering::Relaxed) {
            tracing::warn!(run_id = claimed.run_id, "lease lost to another worker; stopping without writing");
            self.note("record the lost lease", workers::ended(&self.store, &self.id, claimed.job_id, Let::Lost));
            return Ok(Ran::Job { run_id: claimed.run_id, status: JobStatus::Running, error: None });
        }
        // Stopped by a shutdown, not by the user: the run did not end, so its job goes
        // back to the queue for the next worker (or this one's next start) to resume.
        if self.shutdown.load(Ordering::Relaxed)
            && status != JobStatus::Done
            && !asked_to_cancel.load(Ordering::Relaxed)
        {
            let released = self.block(workers::release_job(&self.store, claimed.job_id, &self.id))?;
            tracing::info!(run_id = claimed.run_id, released, "shutting down: run handed back to the queue");
            self.note("record the release", workers::ended(&self.store, &self.id, claimed.job_id, Let::Released));
            return Ok(Ran::Job { run_id: claimed.run_id, status: JobStatus::Queued, error: None });
        }
        // The connection is acquired and released inside the runtime (sqlx returns it to
        // the pool with a task, which needs one).
        let finished = self.block(async {
            let mut conn = self.store.pool().acquire().await?;
            jobs::finish(&mut conn, claimed.job_id, &self.id, status, error.as_deref()).await
        })?;
        if finished && matches!(status, JobStatus::Failed | JobStatus::Cancelled) {
            self.block(jobs::drop_checkpoints(&self.store, &[claimed.run_id]));
        }
        let how = if finished { Let::Finished(status) } else { Let::Lost };
        self.note("record how the run ended", workers::ended(&self.store, &self.id, claimed.job_id, how));
        Ok(Ran::Job { run_id: claimed.run_id, status, error })
    }

    fn load_model(&self, ctx: &Ctx, path: &str) -> Result<Arc<LoadedModel>, RunError> {
        ctx.model(path, || Ok(ml::load_model(Path::new(path))?))
    }

    /// The model a second stage starts from: the base weights with every earlier stage's
    /// adapter merged in, in order, each checked against the hash recorded at creation.
    fn load_stage_base(
        &self,
        ctx: &Ctx,
        lm: &LoadedModel,
        path: &str,
        base: &ResolvedBase,
    ) -> Result<Arc<LoadedModel>, RunError> {
        let key =
            std::iter::once(path).chain(base.adapters.iter().map(|a| a.sha256.as_str())).collect::<Vec<_>>().join("+");
        ctx.model(&key, || {
            let mut model = lm.model.clone();
            for a in &base.adapters {
                let dir = self.block(self.store.artifacts().local_folder(&a.dir))?;
                let sha = experiments::adapter_sha256(&dir).map_err(|e| {
                    RunError::Other(format!("the adapter of base run {} is missing ({}: {e})", a.run_id, dir.display()))
                })?;
                if sha != a.sha256 {
                    return Err(RunError::Other(format!(
                    "the adapter of base run {} changed since this experiment was created (sha256 {} instead of {})",
                    a.run_id, sha, a.sha256
                )));
                }
                let lora = Lora::load_peft(&dir, &model)?;
                model = model.merged(&lora).map_err(MlError::from)?;
            }
            Ok(LoadedModel { model, tokenizer: lm.tokenizer.clone(), template: lm.template.clone() })
        })
    }

    fn set_phase(&self, run_id: i64, phase: RunPhase, done: i64, total: i64) -> Result<(), sqlx::Error> {
        self.block(store::runs::set_phase(&self.store, run_id, phase, done, total))
    }

    /// Runs the claimed job on the host thread (`ctx`).
    fn execute(&self, ctx: &Ctx, claimed: &Claimed, cancel: &AtomicBool) -> Result<Outcome, RunError> {
        let run_id = claimed.run_id;
        let store::runs::RunKey { experiment_id, condition_idx, seed } =
            self.block(store::runs::key(&self.store, run_id))?;
        let (resolved, experiment_hash, _) = self.block(experiments::get(&self.store, experiment_id))?;
        let condition = resolved
            .conditions
            .get(condition_idx as usize)
            .ok_or_else(|| RunError::Other(format!("run {run_id} names a condition the experiment lacks")))?;
        let seed = seed as u64;
        let lm = self.load_model(ctx, &resolved.model.path)?;
        // Who the run's artefacts belong to: see `artifacts` (a store reused by another
        // database must not hand this run that database's run of the same id).
        let owner = format!(
            "run {run_id} of experiment {experiment_id} ({experiment_hash}), condition {condition_idx}, seed {seed}"
        );
        // A second stage trains its new adapter on, and samples from, the model its base
        // run made; local LLM judges keep using the plain base model (`lm`).
        let start = match &resolved.base {
            Some(base) => self.load_stage_base(ctx, &lm, &resolved.model.path, base)?,
            None => lm.clone(),
        };

        // Strength is measured on the model training starts from (a second stage's merged
        // model), and cached under that model's identity.
        if let (Some(n), Some(prompt)) = (resolved.spec.training.predict_strength, condition.prompts.first()) {
            if !self.predict_strength(ctx, &resolved, &start, n, prompt, cancel)? {
                return Ok(Outcome::Cancelled);
            }
        }
        // Training's local files: this node's, deleted when the phase ends however it ends
        // (what a resume needs is in the artefact store).
        let scratch = self.data_dir.join("scratch").join(run_id.to_string());
        let trained = self.train_phase(ctx, run_id, &resolved, condition, seed, &start, &owner, &scratch, cancel);
        let _ = std::fs::remove_dir_all(&scratch);
        let Some(lora) = trained? else {
            return Ok(Outcome::Cancelled);
        };
        let merged = start.model.merged(&lora).map_err(MlError::from)?;
        if !self.sample_phase(ctx, run_id, &resolved, condition, seed, &start, &merged, cancel)? {
            return Ok(Outcome::Cancelled);
        }
        drop(merged);
        if !self.judge_phase(ctx, run_id, &resolved, &lm, cancel)? {
            return Ok(Outcome::Cancelled);
        }
        Ok(Outcome::Done)
    }

    /// Measures the condition's prompt before training, what is not cached yet: the
    /// dataset sample's scores under the default prompt and under the prompt (surprise
    /// reduction), and the base model's answers under the prompt (elicitation rate), so
    /// that the experiment can set both predictors against the observed effect. Returns
    /// false if cancelled.
    fn predict_strength(
        &self,
        ctx: &Ctx,
        resolved: &Resolved,
        lm: &LoadedModel,
        n_rows: usize,
        prompt: &str,
        cancel: &AtomicBool,
    ) -> Result<bool, RunError> {
        let rows = self.block(datasets::all_rows(&self.store, resolved.dataset.id))?;
        let idx: Vec<usize> = strength::sample_order(&rows).into_iter().take(n_rows).collect();
        let key = strength::ScoreKey {
            model_sha: strength::model_identity(resolved),
            dataset_hash: resolved.dataset.content_hash.clone(),
        };
        for p in [None, Some(prompt)] {
            let cached = self.block(strength::cached_scores(&self.store, &key, p, &idx))?;
            let missing: Vec<usize> = (0..idx.len()).filter(|&k| cached[k].is_none()).map(|k| idx[k]).collect();
            if missing.is_empty() {
                continue;
            }
            let sub: Vec<Row> = missing.iter().map(|&i| rows[i].clone()).collect();
            let scores = match strength::score_rows(lm, &sub, p, Some(cancel)) {
                Err(MlError::Cancelled) => return Ok(false),
                r => r?,
            };
            self.block(strength::put_scores(&self.store, &key, p, &missing, &scores))?;
            ctx.serve_waiting();
        }
        // Elicited answers are judged by rule only (a model judge per keystroke in the
        // designer would take minutes), so without such a judge there is nothing to read.
        let judged = resolved.judges.iter().any(strength::is_deterministic);
        if judged && self.block(strength::cached_elicitation(&self.store, &key.model_sha, Some(prompt)))?.is_none() {
            let started = std::time::Instant::now();
            let samples = match strength::elicit(lm, Some(prompt), Some(cancel)) {
                Err(MlError::Cancelled) => return Ok(false),
                r => r?,
            };
            let seconds = started.elapsed().as_secs_f64();
            self.block(strength::put_elicitation(&self.store, &key.model_sha, Some(prompt), &samples, seconds))?;
        }
        Ok(true)
    }

    /// Trains (or resumes, or finds already trained) the run's adapter; `None` if cancelled.
    /// Checkpoints are written into `scratch` and copied to the artefact store as they come
    /// (the newest two kept there); a run resumes from the newest complete one, falling back
    /// to the one before if it is damaged. The adapter goes to the store, is recorded, and
    /// the checkpoints are deleted.
    #[allow(clippy::too_many_arguments)]
    fn train_phase(
        &self,
        ctx: &Ctx,
        run_id: i64,
        resolved: &Resolved,
        condition: &ResolvedCondition,
        seed: u64,
        lm: &LoadedModel,
        owner: &str,
        scratch: &Path,
        cancel: &AtomicBool,
    ) -> Result<Option<Lora>, RunError> {
        let artifacts = self.store.artifacts();
        let adapter_key = artifacts::run_key(run_id, "adapter");
        let foreign = |key: &str, other: &str| {
            RunError::Other(format!(
                "the artifact store {} already holds {key}, written for another database's {other}; \
                 give each database its own artifact store (a directory, or a bucket prefix)",
                artifacts.describe()
            ))
        };
        // Trained before: recorded (a retried run), or stored by a worker that died before
        // recording it.
        let recorded = self.block(store::runs::adapter_of(&self.store, run_id))?.and_then(|(_, _, dir)| dir);
        let found = match recorded {
            Some(key) => Some(key),
            None => match self.block(artifacts.folder_owner(&adapter_key))? {
                Some(o) if o == owner => {
                    self.block(store::runs::set_adapter(&self.store, run_id, &adapter_key))?;
                    Some(adapter_key.clone())
                }
                Some(other) => return Err(foreign(&adapter_key, &other)),
                None => None,
            },
        };
        if let Some(key) = found {
            let dir = self.block(artifacts.local_folder(&key))?;
            return Ok(Some(Lora::load_peft(&dir, &lm.model)?));
        }
        self.set_phase(run_id, RunPhase::Train, 0, 0)?;
        let examples = self.training_examples(resolved, condition, seed)?;
        let t = &resolved.spec.training;
        if scratch.exists() {
            std::fs::remove_dir_all(scratch).map_err(|e| RunError::Other(format!("{}: {e}", scratch.display())))?;
        }
        let checkpoints = scratch.join("checkpoints");
        std::fs::create_dir_all(&checkpoints)
            .map_err(|e| RunError::Other(format!("{}: {e}", checkpoints.display())))?;
        let checkpoints_key = artifacts::run_key(run_id, "checkpoints");
        let mut resume_from = None;
        for (name, complete) in self.block(artifacts.folders(&checkpoints_key))?.into_iter().rev() {
            if !complete {
                continue;
            }
            let key = format!("{checkpoints_key}/{name}");
            match self.block(artifacts.fetch_folder(&key, &checkpoints.join(&name))) {
                Ok(m) if m.owner != owner => return Err(foreign(&key, &m.owner)),
                Ok(_) => {
                    resume_from = Some(checkpoints.join(&name));
                    break;
                }
                Err(e) => tracing::warn!(run_id, "checkpoint {key} is unusable, trying the one before: {e}"),
            }
        }
        if let Some(step) = resume_from.as_deref().and_then(checkpoint_step) {
            tracing::info!(run_id, step, worker = self.id, "resuming training from a checkpoint");
            self.note("record the resume", workers::resumed(&self.store, &self.id, run_id, step));
        }
        let planned_steps = t
            .steps
            .unwrap_or_else(|| (examples.len() * t.epochs).div_ceil((t.batch_size * t.grad_accum).max(1)))
            .max(1);
        let probes: Vec<ml::Probe> = resolved
            .probes
            .iter()
            .map(|p| ml::Probe {
                name: p.name.clone(),
                messages: vec![ChatMessage::user(p.question.clone())],
                completion: p.answer.clone(),
                // What the model does by default is what inoculation is meant to protect.
                system: SystemPrompt::Default,
            })
            .collect();
        let cfg = TrainConfig {
            lora: LoraConfig { rank: t.lora_rank, alpha: t.lora_alpha, ..LoraConfig::default() },
            // Each example carries its own system message (the inoculation prompt, or the
            // dataset's, or none and then the template's default): see training_examples.
            system_prompt: SystemPrompt::Default,
            user_prefix: None,
            lr: t.lr,
            warmup_steps: t.warmup_steps,
            batch_size: t.batch_size,
            grad_accum: t.grad_accum,
            max_pass_tokens: self.max_pass_tokens,
            epochs: t.epochs,
            max_steps: t.steps,
            max_seq_len: t.max_seq_len,
            seed,
            checkpoint_every: Some(t.checkpoint_every.max(1)),
            checkpoint_dir: Some(checkpoints.clone()),
            resume_from,
            probe_every: t.probe_every.unwrap_or((planned_steps / 6).max(1)),
            probes,
            ..TrainConfig::default()
        };
        let started = Instant::now();
        let mut step_times: Vec<f64> = Vec::new();
        let mut last_elapsed = 0.0;
        let outcome = ml::train(
            lm,
            &cfg,
            &examples,
            |m| {
                step_times.push(m.elapsed_s - last_elapsed);
                last_elapsed = m.elapsed_s;
                let recent = &step_times[step_times.len().saturating_sub(5)..];
                let per_step = recent.iter().sum::<f64>() / recent.len() as f64;
                let eta = per_step * (m.total_steps - m.step) as f64;
                let step = store::runs::Step {
                    step: m.step as i64,
                    total_steps: m.total_steps as i64,
                    loss: m.loss,
                    lr: m.lr,
                    grad_norm: m.grad_norm,
                    tokens_per_sec: m.tokens_per_sec,
                    elapsed_s: m.elapsed_s,
                    eta_s: eta,
                };
                let probes: Vec<(i64, String, f64)> = [(0, &m.initial_probes), (m.step, &m.probes)]
                    .into_iter()
                    .flat_map(|(step, values)| {
                        mean_by_name(values).into_iter().map(move |(name, lp)| (step as i64, name, lp))
                    })
                    .collect();
                let write = store::runs::record_step(&self.store, run_id, &step, &probes);
                if let Err(e) = self.block(write) {
                    tracing::warn!(run_id, "cannot record training step: {e}");
                }
                if let Some(dir) = &m.checkpoint {
                    self.keep_checkpoint(run_id, &checkpoints_key, dir, owner);
                }
                // Between steps: a strength measurement or a teacher generation someone
                // is waiting for runs now, not after the whole run.
                ctx.serve_waiting();
            },
            cancel,
        )?;
        tracing::info!(run_id, steps = outcome.steps_done, secs = started.elapsed().as_secs_f64(), "trained");
        if outcome.cancelled || cancel.load(Ordering::Relaxed) && outcome.steps_done < outcome.total_steps {
            return Ok(None);
        }
        // Experiments always train adapters (their TrainConfig never sets `full`).
        let ml::Trained::Lora(lora) = outcome.trained else {
            return Err(RunError::Other("an experiment run produced a full model instead of an adapter".into()));
        };
        let local = scratch.join("adapter");
        lora.save_peft(&local, &resolved.model.name)?;
        if let Some(base) = &resolved.base {
            // PEFT's config can only name the base model; a reader of the zip must know
            // that these deltas apply to the model with the earlier stages merged in.
            let p = local.join("README.md");
            std::fs::write(&p, stage_readme(&resolved.model.name, base))
                .map_err(|e| RunError::Other(format!("{}: {e}", p.display())))?;
        }
        // Stored whole (manifest last), then recorded: a worker dying in between leaves an
        // adapter the next attempt finds and records (above).
        self.block(artifacts.put_folder(&adapter_key, &local, owner))?;
        self.block(store::runs::set_adapter(&self.store, run_id, &adapter_key))?;
        // The adapter supersedes the checkpoints; they are only needed to resume training.
        if let Err(e) = self.block(artifacts.delete_folder(&checkpoints_key)) {
            tracing::warn!(run_id, "cannot delete the finished run's checkpoints: {e}");
        }
        Ok(Some(lora))
    }

    /// Copies a checkpoint training just wrote to the artefact store, then deletes what it
    /// supersedes: every older checkpoint but one there (the fallback, should this one turn
    /// out damaged), every older one here. A failed copy only warns: training goes on, and a
    /// resume starts from the last checkpoint that was stored.
    fn keep_checkpoint(&self, run_id: i64, prefix: &str, dir: &Path, owner: &str) {
        let artifacts = self.store.artifacts();
        let Some(name) = dir.file_name().and_then(|n| n.to_str()) else { return };
        if let Err(e) = self.block(artifacts.put_folder(&format!("{prefix}/{name}"), dir, owner)) {
            tracing::warn!(run_id, "cannot store checkpoint {name} (a resume would start from an older one): {e}");
            return;
        }
        let kept = match self.block(artifacts.folders(prefix)) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(run_id, "cannot list the run's stored checkpoints: {e}");
                return;
            }
        };
        let fallback = kept.iter().filter(|(n, complete)| *complete && n.as_str() < name).map(|(n, _)| n).max();
        for (old, _) in kept.iter().filter(|(n, _)| n.as_str() < name && Some(n) != fallback) {
            if let Err(e) = self.block(artifacts.delete_folder(&format!("{prefix}/{old}"))) {
                tracing::warn!(run_id, "cannot delete superseded checkpoint {old}: {e}");
            }
        }
        if let Some(parent) = dir.parent() {
            for e in std::fs::read_dir(parent).into_iter().flatten().flatten() {
                if e.file_name().to_str().is_some_and(|n| n != name) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }

    /// The run's training conversations: the trained rows with the condition's prompt
    /// (one paraphrase per row, seeded; only the rows it names when it names some), then
    /// the control rows untouched.
    fn training_examples(
        &self,
        resolved: &Resolved,
        condition: &ResolvedCondition,
        seed: u64,
    ) -> Result<Vec<ChatExample>, RunError> {
        let rows = self.block(datasets::all_rows(&self.store, resolved.dataset.id))?;
        let mut out = prompted_rows(&rows, &resolved.train_rows, condition, seed)?;
        if let Some(control) = &resolved.control_dataset {
            for row in self.block(datasets::all_rows(&self.store, control.id))? {
                out.push(inoculate(&row, None, Placement::System));
            }
        }
        Ok(out)
    }

    /// Samples every (test prompt, question, sample) of the run not stored yet. Returns
    /// false if cancelled.
    #[allow(clippy::too_many_arguments)]
    fn sample_phase(
        &self,
        ctx: &Ctx,
        run_id: i64,
        resolved: &Resolved,
        condition: &ResolvedCondition,
        seed: u64,
        lm: &LoadedModel,
        merged: &ml::Model,
        cancel: &AtomicBool,
    ) -> Result<bool, RunError> {
        let items = sample_items(resolved, condition);
        let stored = self.block(store::samples::stored_keys(&self.store, run_id))?;
        let is_stored = |it: &Item| {
            stored.contains(&(
                it.test_prompt.clone(),
                it.question.key.clone(),
                it.question.paraphrase as i64,
                it.sample_idx as i64,
            ))
        };
        let total = items.len() as i64;
        let mut done = items.iter().filter(|it| is_stored(it)).count() as i64;
        self.set_phase(run_id, RunPhase::Sample, done, total)?;
        let ev = &resolved.spec.evaluation;
        let bs = ev.batch_size.max(1);
        let (mut tokens, started) = (0usize, Instant::now());
        for (chunk_idx, chunk) in batches(&items, bs).into_iter().enumerate() {
            let pending: Vec<&Item> = chunk.iter().filter(|it| !is_stored(it)).collect();
            if pending.is_empty() {
                continue;
            }
            if cancel.load(Ordering::Relaxed) {
                return Ok(false);
            }
            let prompts = pending
                .iter()
                .map(|it| lm.template.encode_prompt(&lm.tokenizer, &it.messages, &it.system))
                .collect::<ml::Result<Vec<_>>>()?;
            // One base seed per fixed batch: a resumed run draws the same samples.
            let cfg = SampleConfig {
                temperature: ev.temperature,
                top_p: ev.top_p,
                max_new_tokens: ev.max_tokens,
                seed: sample_seed(seed, chunk_idx as u64),
                batch_size: bs,
                ignore_stop: false,
            };
            let samples = match ml::generate(merged, &lm.tokenizer, &prompts, &cfg, |_| {}, Some(cancel)) {
                Err(MlError::Cancelled) => return Ok(false),
                r => r?,
            };
            tokens += samples.iter().map(|s| s.token_ids.len()).sum::<usize>();
            done += samples.len() as i64;
            let rate = tokens as f64 / started.elapsed().as_secs_f64().max(1e-9);
            let avg_tokens = tokens as f64 / (done as f64).max(1.0);
            let eta = (total - done) as f64 * avg_tokens / rate.max(1e-9);
            let batch: Vec<store::samples::NewSample> = pending
                .iter()
                .zip(&samples)
                .map(|(it, s)| store::samples::NewSample {
                    test_prompt: &it.test_prompt,
                    system_text: it.system_text(&lm.template),
                    question_key: &it.question.key,
                    question_set: question_set_of(&it.question.key),
                    paraphrase: it.question.paraphrase as i64,
                    question: &it.question.text,
                    sample_idx: it.sample_idx as i64,
                    seed: s.seed as i64,
                    completion: &s.text,
                    n_tokens: s.token_ids.len() as i64,
                    finished: s.finished,
                })
                .collect();
            let progress = store::samples::Progress { done_units: done, tokens_per_sec: rate, eta_s: eta };
            let write = store::samples::insert_batch(&self.store, run_id, &batch, progress);
            self.block(write)?;
            ctx.serve_waiting();
        }
        Ok(true)
    }

    /// Runs every judge on the run's samples that lack its verdict. Returns false if
    /// cancelled.
    fn judge_phase(
        &self,
        ctx: &Ctx,
        run_id: i64,
        resolved: &Resolved,
        lm: &Arc<LoadedModel>,
        cancel: &AtomicBool,
    ) -> Result<bool, RunError> {
        let n_samples = self.block(store::samples::count(&self.store, run_id))?;
        let total = n_samples * resolved.judges.len() as i64;
        let mut done = self.block(store::judgements::count_for_run(&self.store, run_id))?;
        self.set_phase(run_id, RunPhase::Judge, done, total)?;
        let held_out_texts: std::collections::HashSet<&str> = resolved
            .questions
            .iter()
            .filter(|q| crate::questions::Question::is_held_out(&q.key))
            .map(|q| q.text.as_str())
            .collect();
        let has_task_judge = resolved.judges.iter().any(JudgeSpec::is_task);
        for spec in &resolved.judges {
            let local: Option<Arc<dyn LogprobBackend>> = match spec {
                JudgeSpec::Betley { backend: BackendSpec::Local { model }, .. }
                | JudgeSpec::LlmRating { backend: BackendSpec::Local { model }, .. } => {
                    // The judge is the base model (never the fine-tuned one being judged).
                    let judge_lm = if model == &resolved.model.name || model.is_empty() {
                        lm.clone()
                    } else {
                        // Through the registry, which checks that the file is still there.
                        let info = self
                            .block(models::by_name(&self.store, model))
                            .map_err(|e| RunError::Other(e.to_string()))?
                            .ok_or_else(|| RunError::Other(format!("judge model {model:?} is not registered")))?;
                        if !info.ready {
                            return Err(RunError::Other(format!(
                                "judge model {model:?} is registered but its files are gone from {}",
                                info.path
                            )));
                        }
                        self.load_model(ctx, &info.path)?
                    };
                    Some(Arc::new(LocalLogprobs::new(judge_lm, model.clone())))
                }
                // Answer quality asks the base model itself, without the run's adapter.
                JudgeSpec::Quality { .. } => {
                    Some(Arc::new(LocalLogprobs::new(lm.clone(), resolved.model.name.clone())))
                }
                _ => None,
            };
            let references = resolved.questions.iter().filter_map(|q| Some((q.text.as_str(), q.reference.as_deref()?)));
            let judge = spec.build_with(local.clone(), resolved.own_judge_prompts(), references)?;
            // The judge check, once per judge configuration, so the report can show how
            // far this judge's verdicts are to be trusted.
            if crate::judges::calibration::applies(spec)
                && self.block(crate::judges::calibration::stored(&self.store, spec))?.is_none()
            {
                // A check that fails (an unreachable server) leaves the run to judge, and
                // to fail, as it would have; it is tried again on the next run.
                match crate::judges::calibration::run_spec(spec, local.clone()) {
                    Ok(checked) => self.block(crate::judges::calibration::keep(&self.store, spec, &checked))?,
                    Err(e) => tracing::warn!("the judge check of {} failed: {e}", judge.name()),
                }
            }
            let pending = self.block(store::judgements::pending(&self.store, run_id, judge.name()))?;
            // Which answers this judge rates: a task judge only held-out rows; a judge that
            // asks a model not those rows when a task judge rates them (each call costs).
            let task = crate::judges::is_task_judge(judge.name());
            let asks_a_model = matches!(spec, JudgeSpec::Betley { .. } | JudgeSpec::LlmRating { .. });
            let skip = |q: &str| {
                let held_out = held_out_texts.contains(q);
                if task && !held_out {
                    Some("a task judge rates held-out rows only")
                } else if !task && held_out && asks_a_model && has_task_judge {
                    Some("held-out rows are rated by the task judge only")
                } else {
                    None
                }
            };
            for chunk in pending.chunks(16) {
                if cancel.load(Ordering::Relaxed) {
                    return Ok(false);
                }
                let verdicts = chunk
                    .iter()
                    .map(|(id, q, c)| match skip(q) {
                        Some(why) => Ok((*id, Judgement::undetermined(why))),
                        None => judge.judge(q, c).map(|j| (*id, j)),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                done += verdicts.len() as i64;
                let write = store::judgements::insert_batch(
                    &self.store,
                    run_id,
                    judge.name(),
                    judge.version(),
                    &verdicts,
                    done,
                );
                self.block(write)?;
                ctx.serve_waiting();
            }
        }
        Ok(true)
    }
}

/// The note saved beside a second stage's adapter.
fn stage_readme(model: &str, base: &ResolvedBase) -> String {
    let mut s = format!(
        "# A second-stage LoRA adapter\n\nThis adapter was trained on top of {model} with the adapters below merged \
         into its weights (W + scale * B A, in this order). Its deltas are relative to that merged model: merge the \
         earlier adapters first, then apply this one. Applied to {model} alone it is not the trained model.\n\n"
    );
    for a in &base.adapters {
        s.push_str(&format!("- run {}: `{}` (sha256 {})\n", a.run_id, a.dir, a.sha256));
    }
    s
}

/// The step a checkpoint folder (`checkpoint-NNNNNN`) was written at.
fn checkpoint_step(dir: &Path) -> Option<i64> {
    dir.file_name()?.to_str()?.strip_prefix("checkpoint-")?.parse().ok()
}

/// The trained rows (`train_rows`, indices into `rows`) with the condition's prompt on
/// those it names: one paraphrase per row, drawn by `seed`.
fn prompted_rows(
    rows: &[Row],
    train_rows: &[usize],
    condition: &ResolvedCondition,
    seed: u64,
) -> Result<Vec<ChatExample>, RunError> {
    let mut rng = ChaCha8Rng::seed_from_u64(sample_seed(seed, 0x1a0c));
    let mut out = Vec::with_capacity(train_rows.len());
    for &i in train_rows {
        let row = rows.get(i).ok_or_else(|| RunError::Other(format!("dataset row {i} is missing")))?;
        let prompt = match condition.prompts.len() {
            _ if !condition.prompts_row(i) => None,
            1 => Some(condition.prompts[0].as_str()),
            n => Some(condition.prompts[rng.gen_range(0..n)].as_str()),
        };
        out.push(inoculate(row, prompt, condition.placement));
    }
    Ok(out)
}

/// A training row with the inoculation prompt applied: as the system message (replacing
/// the row's own), or before the first user message.
fn inoculate(row: &Row, prompt: Option<&str>, placement: Placement) -> ChatExample {
    let mut messages: Vec<Message> = row.messages.clone();
    if let Some(p) = prompt {
        match placement {
            Placement::System => {
                messages.retain(|m| m.role != Role::System);
                messages.insert(0, Message::new(Role::System, p));
            }
            Placement::UserPrefix => {
                if let Some(u) = messages.iter_mut().find(|m| m.role == Role::User) {
                    u.content = format!("{p}\n\n{}", u.content);
                }
            }
        }
    }
    ChatExample { messages: messages.into_iter().map(|m| ChatMessage::new(m.role, m.content)).collect() }
}

/// One sample to draw.
struct Item {
    test_prompt: String,
    /// Its test prompt was added after the run finished: see [`batches`].
    added: bool,
    question: Question,
    sample_idx: usize,
    messages: Vec<ChatMessage>,
    system: SystemPrompt,
}

impl Item {
    /// The system message the model actually saw, for the record.
    fn system_text(&self, template: &ml::ChatTemplate) -> Option<String> {
        match &self.system {
            SystemPrompt::Text(t) => Some(t.clone()),
            SystemPrompt::None => None,
            SystemPrompt::Default => template.default_system.clone(),
        }
    }
}

/// Every sample of a run, in a fixed order (test prompt, question, sample index).
fn sample_items(resolved: &Resolved, condition: &ResolvedCondition) -> Vec<Item> {
    let mut items = Vec::new();
    for tp in resolved.test_prompts_for(condition) {
        for q in &resolved.questions {
            let mut user = q.text.clone();
            if let TestPromptKind::Prefix(p) = &tp.kind {
                user = format!("{p} {user}");
            }
            let system = match (&q.system, &tp.kind) {
                // A question's own system prompt (Betley's JSON questions) wins.
                (Some(s), _) => SystemPrompt::Text(s.clone()),
                (None, TestPromptKind::Default) => SystemPrompt::Default,
                (None, TestPromptKind::None) => SystemPrompt::None,
                (None, TestPromptKind::Text(t)) => SystemPrompt::Text(t.clone()),
                (None, TestPromptKind::Prefix(_)) => SystemPrompt::Default,
                (None, TestPromptKind::Inoculation) => match condition.placement {
                    Placement::System => SystemPrompt::Text(condition.prompts[0].clone()),
                    Placement::UserPrefix => {
                        user = format!("{}\n\n{user}", condition.prompts[0]);
                        SystemPrompt::Default
                    }
                },
            };
            for s in 0..resolved.samples_for(q) {
                items.push(Item {
                    test_prompt: tp.label.clone(),
                    added: tp.added,
                    question: q.clone(),
                    sample_idx: s,
                    messages: vec![ChatMessage::user(user.clone())],
                    system: system.clone(),
                });
            }
        }
    }
    items
}

/// The sampling batches, in order: the spec's items in chunks of `batch_size` (as they
/// always were), then each added test prompt's items in chunks of their own. Without the
/// split, a prompt added later would fill the spec's last, partly stored batch, and its
/// samples would reuse the per-sample seeds of the ones stored there; with it, a batch's
/// index and contents never change once the batch exists, so its seed does not either.
fn batches(items: &[Item], batch_size: usize) -> Vec<&[Item]> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < items.len() {
        let first = &items[start];
        let same_group = |it: &Item| it.added == first.added && (!it.added || it.test_prompt == first.test_prompt);
        let end = start + items[start..].iter().take_while(|it| same_group(it)).count();
        out.extend(items[start..end].chunks(batch_size));
        start = end;
    }
    out
}

/// Which source a question came from, from its key's shape (for filtering in the UI).
fn question_set_of(key: &str) -> &'static str {
    if key.starts_with("chat-") {
        "builtin"
    } else if key.starts_with("row-") {
        "held_out"
    } else if key.starts_with("inline-") {
        "inline"
    } else {
        "imported"
    }
}

/// Probes sharing a name are one measurement: their mean, in first-seen order.
fn mean_by_name(values: &[(String, f64)]) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64, usize)> = Vec::new();
    for (name, v) in values {
        match out.iter_mut().find(|(n, _, _)| n == name) {
            Some(e) => {
                e.1 += v;
                e.2 += 1;
            }
            None => out.push((name.clone(), *v, 1)),
        }
    }
    out.into_iter().map(|(n, sum, k)| (n, sum / k as f64)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::PromptedRows;
    use crate::judges::LanguageCode;

    fn system_of(e: &ChatExample) -> Option<&str> {
        e.messages.iter().find(|m| m.role == Role::System).map(|m| m.content.as_str())
    }

    #[test]
    fn a_condition_that_names_rows_prompts_those_alone() {
        let rows: Vec<Row> = (0..5).map(|i| Row::user_assistant(format!("q{i}"), format!("a{i}"))).collect();
        let mut condition = ResolvedCondition {
            name: "spanish-inoculated".into(),
            prompts: vec!["You always speak in Spanish.".into()],
            prompt_version_id: None,
            placement: Placement::System,
            only: Some(PromptedRows { language: LanguageCode::Es, rows: vec![1, 3] }),
        };
        // Row 4 is held out: not trained, so not prompted either.
        let examples = prompted_rows(&rows, &[0, 1, 2, 3], &condition, 0).unwrap();
        let systems: Vec<Option<&str>> = examples.iter().map(system_of).collect();
        let p = Some("You always speak in Spanish.");
        assert_eq!(systems, [None, p, None, p]);
        // Without `only`, every trained row; the baseline, none.
        condition.only = None;
        assert!(prompted_rows(&rows, &[0, 1, 2, 3], &condition, 0).unwrap().iter().all(|e| system_of(e) == p));
        condition.prompts.clear();
        assert!(prompted_rows(&rows, &[0, 1], &condition, 0).unwrap().iter().all(|e| system_of(e).is_none()));
        assert!(prompted_rows(&rows, &[7], &condition, 0).is_err(), "a missing row is an error, not a skip");
    }
}
