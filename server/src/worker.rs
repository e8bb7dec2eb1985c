//! The job worker thread of `serve`: one dedicated OS thread that claims the queue's jobs
//! and keeps their leases, handing each run (train, sample, judge) to the model host, so
//! tensor work never blocks the async runtime that serves pages.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use engine::runner::Worker;

pub struct WorkerThread {
    stop: Arc<AtomicBool>,
}

impl WorkerThread {
    /// Starts the worker. `lease` is how long a run's claim survives without a heartbeat:
    /// after a crash, the next start takes the run over once it has expired.
    pub fn spawn(
        store: engine::Store,
        data_dir: &Path,
        lease: Duration,
        max_pass_tokens: usize,
        host: ml::Host,
    ) -> std::io::Result<WorkerThread> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut worker = Worker::new(store, data_dir, tokio::runtime::Handle::current(), host);
        worker.lease = lease;
        worker.max_pass_tokens = max_pass_tokens;
        worker.heartbeat_every = (lease / 4).clamp(Duration::from_millis(200), Duration::from_secs(5));
        let flag = stop.clone();
        std::thread::Builder::new().name("inoculab-worker".into()).spawn(move || {
            tracing::info!("job worker {} started", worker.id());
            worker.run_forever(&flag, Duration::from_millis(500));
        })?;
        Ok(WorkerThread { stop })
    }
}

impl Drop for WorkerThread {
    /// Asks the worker to stop after its current job. A run in progress is not waited
    /// for: it resumes from its checkpoint on the next start.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
