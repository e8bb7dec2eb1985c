//! The job worker thread of `serve`: one dedicated OS thread that claims the queue's jobs
//! and keeps their leases, handing each run (train, sample, judge) to the model host, so
//! tensor work never blocks the async runtime that serves pages. `serve --no-worker` starts
//! none (a web-only node; `inoculab worker` processes work the queue).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::runner::{Polling, Worker};

/// A worker on this process's store and model host, registered under `name` (default
/// host:pid) with its lease; its heartbeats come four times a lease (0.2 to 5 s apart).
pub fn registered(
    store: engine::Store,
    data_dir: &Path,
    lease: Duration,
    max_pass_tokens: usize,
    host: ml::Host,
    name: Option<String>,
) -> anyhow::Result<Worker> {
    let mut worker = Worker::new(store, data_dir, tokio::runtime::Handle::current(), host)
        .with_name(name.unwrap_or_else(engine::workers::default_name));
    worker.lease = lease;
    worker.max_pass_tokens = max_pass_tokens;
    worker.heartbeat_every = (lease / 4).clamp(Duration::from_millis(200), Duration::from_secs(5));
    worker.register()?;
    Ok(worker)
}

pub struct WorkerThread {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WorkerThread {
    /// Starts the worker. `lease` is how long a run's claim survives without a heartbeat:
    /// after a crash, the next start (or any other worker) takes the run over once it has
    /// expired. Call from inside the runtime (the worker reaches the store through it).
    pub fn spawn(
        store: engine::Store,
        data_dir: &Path,
        lease: Duration,
        max_pass_tokens: usize,
        host: ml::Host,
    ) -> anyhow::Result<WorkerThread> {
        // Registering blocks on the runtime: done on a blocking-allowed thread.
        let worker = tokio::task::block_in_place(|| registered(store, data_dir, lease, max_pass_tokens, host, None))?;
        let stop = worker.shutdown_flag();
        let thread = std::thread::Builder::new().name("inoculab-worker".into()).spawn(move || {
            tracing::info!("job worker {} started", worker.id());
            worker.work(&Polling::default());
        })?;
        Ok(WorkerThread { stop, thread: Some(thread) })
    }

    /// Stops the worker and waits up to `within` for it: a run in progress stops between
    /// steps and its job goes back to the queue (see `Worker::shutdown_flag`), and the
    /// worker is marked stopped. One that takes longer is left to the process's exit; its
    /// run resumes from its checkpoint once its lease expires.
    pub async fn stop(mut self, within: Duration) {
        self.stop.store(true, Ordering::Relaxed);
        let started = Instant::now();
        while self.thread.as_ref().is_some_and(|t| !t.is_finished()) && started.elapsed() < within {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let Some(t) = self.thread.take().filter(|t| t.is_finished()) {
            let _ = t.join();
        }
    }
}

impl Drop for WorkerThread {
    /// Asks the worker to stop (see [`WorkerThread::stop`]), without waiting.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
