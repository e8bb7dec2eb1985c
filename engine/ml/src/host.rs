//! The model host: one thread per process that owns the loaded models and does all model
//! work (training steps, sampling, scoring, judging) for everyone who needs it: the job
//! worker, the prompt designer's strength meter, teacher generation.
//!
//! Why one thread: on a small machine, two model computations at once each run at half
//! speed and hold two sets of weights and activations; a person waiting on the meter would
//! wait for a whole training run's share of the cores. So work is queued by [`Priority`]:
//! [`Priority::Background`] tasks (an experiment's run) are long and call
//! [`Ctx::serve_waiting`] between their units (a training step, a sampling batch, a judge
//! chunk), where every waiting [`Priority::Interactive`] task (a strength measurement, a
//! teacher generation started from a page) runs to completion first. An interactive request
//! therefore waits for at most one unit of a running job, not the whole job.
//!
//! Models are loaded through [`Ctx::model`] under a key (a path, or a path and adapter
//! hashes) and kept for the next task, least recently used dropped first once their bytes
//! exceed the budget. All loads happen on this thread, so two requests never load the same
//! weights twice. A model still in use by a paused task lives on (it is an `Arc`) after
//! the cache drops it; the budget counts what the cache keeps.
//!
//! A task that panics does not take the host down: the panic is caught on the host thread
//! and its caller gets [`HostError::Panicked`] with the message.

use std::any::Any;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crate::LoadedModel;

/// Who is waiting for a task, which decides when it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// A person is waiting: runs before any queued background task, and at the next
    /// [`Ctx::serve_waiting`] of a running one.
    Interactive,
    /// Queued work (an experiment's run): runs when nothing interactive waits.
    Background,
}

/// Why a task gave no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The host stopped (its last handle was dropped) before the task ran.
    #[error("the model host has stopped")]
    Stopped,
    /// The task panicked; the host lives on.
    #[error("internal error (panic): {0}")]
    Panicked(String),
}

/// The default memory budget for loaded models: room for a 1B model in f32 and a merged
/// copy of it, or the built-in 135M model many times over.
pub const DEFAULT_BUDGET_BYTES: usize = 8 << 30;

type Task = Box<dyn FnOnce(&Ctx) + Send>;

#[derive(Default)]
struct Queues {
    interactive: VecDeque<Task>,
    background: VecDeque<Task>,
    closed: bool,
}

struct Shared {
    queues: Mutex<Queues>,
    ready: Condvar,
    loads: AtomicU64,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Closes the queue when the last [`Host`] handle goes; the thread then finishes the task
/// it is running and exits, dropping queued tasks (their callers get [`HostError::Stopped`]).
struct Closer(Arc<Shared>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.ready.notify_all();
    }
}

/// A handle to the process's model host. Cheap to clone; clones share the thread.
#[derive(Clone)]
pub struct Host {
    shared: Arc<Shared>,
    _closer: Arc<Closer>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("loads", &self.loads()).finish_non_exhaustive()
    }
}

impl Default for Host {
    /// A host with [`DEFAULT_BUDGET_BYTES`].
    fn default() -> Host {
        Host::spawn(DEFAULT_BUDGET_BYTES)
    }
}

impl Host {
    /// Starts the host thread, keeping loaded models up to `budget_bytes`.
    pub fn spawn(budget_bytes: usize) -> Host {
        let shared = Arc::new(Shared { queues: Mutex::default(), ready: Condvar::new(), loads: AtomicU64::new(0) });
        let inner = shared.clone();
        std::thread::Builder::new()
            .name("inoculab-models".into())
            .spawn(move || {
                let ctx =
                    Ctx { shared: inner, cache: RefCell::new(Cache { budget: budget_bytes, ..Cache::default() }) };
                while let Some(task) = ctx.next_task() {
                    task(&ctx);
                }
            })
            .expect("the OS starts a thread");
        Host { _closer: Arc::new(Closer(shared.clone())), shared }
    }

    /// How many times a model was loaded (or built, for a merged model) since the start.
    pub fn loads(&self) -> u64 {
        self.shared.loads.load(Ordering::Relaxed)
    }

    /// Queues `work` and returns a handle to its result.
    pub fn submit<T: Send + 'static>(
        &self,
        priority: Priority,
        work: impl FnOnce(&Ctx) -> T + Send + 'static,
    ) -> Pending<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task: Task = Box::new(move |ctx| {
            // The receiver may be gone (the caller stopped waiting); the work is done anyway.
            let _ = tx.send(std::panic::catch_unwind(AssertUnwindSafe(|| work(ctx))));
        });
        let mut q = self.shared.lock();
        if !q.closed {
            match priority {
                Priority::Interactive => q.interactive.push_back(task),
                Priority::Background => q.background.push_back(task),
            }
            self.shared.ready.notify_all();
        }
        Pending(rx)
    }

    /// Runs `work` on the host and blocks until it has run. Call it from a thread of your
    /// own (a worker's), never from an async task (use [`Host::submit`] and await there)
    /// and never from inside a host task, which would wait for itself.
    pub fn run<T: Send + 'static>(
        &self,
        priority: Priority,
        work: impl FnOnce(&Ctx) -> T + Send + 'static,
    ) -> Result<T, HostError> {
        self.submit(priority, work).wait()
    }
}

/// A queued task's result. Await it (async callers) or [`Pending::wait`] (threads).
pub struct Pending<T>(tokio::sync::oneshot::Receiver<std::thread::Result<T>>);

impl<T> Pending<T> {
    /// Blocks the calling thread until the task has run.
    pub fn wait(self) -> Result<T, HostError> {
        outcome(self.0.blocking_recv())
    }
}

impl<T> std::future::Future for Pending<T> {
    type Output = Result<T, HostError>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(outcome)
    }
}

fn outcome<T, E>(received: Result<std::thread::Result<T>, E>) -> Result<T, HostError> {
    match received {
        Err(_) => Err(HostError::Stopped),
        Ok(Ok(v)) => Ok(v),
        Ok(Err(panic)) => Err(HostError::Panicked(panic_message(panic.as_ref()))),
    }
}

/// What `panic!` was given, when it was text.
fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown".into())
}

#[derive(Default)]
struct Cache {
    budget: usize,
    entries: Vec<Entry>,
    clock: u64,
}

struct Entry {
    key: String,
    model: Arc<LoadedModel>,
    bytes: usize,
    used: u64,
}

/// What a task sees of the host: the model cache, and the queue of interactive tasks to
/// serve between units of long work. Only the host thread has one.
pub struct Ctx {
    shared: Arc<Shared>,
    cache: RefCell<Cache>,
}

impl Ctx {
    fn next_task(&self) -> Option<Task> {
        let mut q = self.shared.lock();
        loop {
            if q.closed {
                // Nobody can be served any more: queued callers learn it (their tasks drop).
                q.interactive.clear();
                q.background.clear();
                return None;
            }
            if let Some(t) = q.interactive.pop_front().or_else(|| q.background.pop_front()) {
                return Some(t);
            }
            q = self.shared.ready.wait(q).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Runs every interactive task that is waiting (and any queued while they run) before
    /// returning. Long work calls it between its units, where pausing costs nothing.
    pub fn serve_waiting(&self) {
        loop {
            let Some(task) = self.shared.lock().interactive.pop_front() else { return };
            task(self);
        }
    }

    /// The model under `key`, from the cache or made by `load` (on this thread, counted in
    /// [`Host::loads`]). Making one may drop least recently used models to stay within
    /// the budget; the new one is kept even when it alone exceeds it.
    pub fn model<E>(&self, key: &str, load: impl FnOnce() -> Result<LoadedModel, E>) -> Result<Arc<LoadedModel>, E> {
        {
            let mut cache = self.cache.borrow_mut();
            cache.clock += 1;
            let now = cache.clock;
            if let Some(e) = cache.entries.iter_mut().find(|e| e.key == key) {
                e.used = now;
                return Ok(e.model.clone());
            }
        }
        // Not borrowed while loading: `load` may itself ask for a model (a merged model
        // starts from its base).
        let model = Arc::new(load()?);
        self.shared.loads.fetch_add(1, Ordering::Relaxed);
        let bytes = model.model.memory_bytes();
        let mut cache = self.cache.borrow_mut();
        cache.clock += 1;
        let used = cache.clock;
        cache.entries.push(Entry { key: key.to_owned(), model: model.clone(), bytes, used });
        while cache.entries.len() > 1 && cache.entries.iter().map(|e| e.bytes).sum::<usize>() > cache.budget {
            let oldest = (0..cache.entries.len()).min_by_key(|&i| cache.entries[i].used).expect("not empty");
            cache.entries.remove(oldest);
        }
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Ctx {
        /// The keys of the models kept, most recently used first.
        fn cached_keys(&self) -> Vec<String> {
            let cache = self.cache.borrow();
            let mut e: Vec<&Entry> = cache.entries.iter().collect();
            e.sort_by_key(|e| std::cmp::Reverse(e.used));
            e.into_iter().map(|e| e.key.clone()).collect()
        }
    }
    use std::sync::mpsc;
    use std::time::Duration;

    fn tiny(dir: &std::path::Path, name: &str) -> LoadedModel {
        let folder = dir.join(name);
        crate::testing::write_tiny_hf_folder(&folder, "llama", 7, false).unwrap();
        crate::load_model(&folder).unwrap()
    }

    #[test]
    fn interactive_work_runs_at_the_next_unit_of_background_work() {
        let host = Host::spawn(DEFAULT_BUDGET_BYTES);
        let (started_tx, started_rx) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        let l = log.clone();
        let job = host.submit(Priority::Background, move |ctx| {
            for step in 0..6 {
                if step == 1 {
                    started_tx.send(()).unwrap();
                }
                std::thread::sleep(Duration::from_millis(40));
                l.lock().unwrap().push(format!("step {step}"));
                ctx.serve_waiting();
            }
        });
        // Queued while step 1 runs: served right after it, before step 2.
        started_rx.recv().unwrap();
        let l = log.clone();
        let asked = std::time::Instant::now();
        host.run(Priority::Interactive, move |_| l.lock().unwrap().push("meter".into())).unwrap();
        assert!(asked.elapsed() < Duration::from_millis(40 * 2), "waited {:?}", asked.elapsed());
        job.wait().unwrap();
        let log = log.lock().unwrap().clone();
        assert_eq!(log, ["step 0", "step 1", "meter", "step 2", "step 3", "step 4", "step 5"]);
    }

    #[test]
    fn interactive_tasks_go_first_and_background_tasks_keep_their_order() {
        let host = Host::spawn(DEFAULT_BUDGET_BYTES);
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let order = Arc::new(Mutex::new(Vec::new()));
        // Hold the host so that the others queue up behind it.
        let first = host.submit(Priority::Background, move |_| gate_rx.recv().unwrap());
        let mut pending = Vec::new();
        for (name, p) in [("b1", Priority::Background), ("i1", Priority::Interactive), ("b2", Priority::Background)] {
            let o = order.clone();
            pending.push(host.submit(p, move |_| o.lock().unwrap().push(name)));
        }
        gate_tx.send(()).unwrap();
        first.wait().unwrap();
        for p in pending {
            p.wait().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["i1", "b1", "b2"]);
    }

    #[test]
    fn a_panic_is_an_error_for_its_caller_and_the_host_lives_on() {
        let host = Host::spawn(DEFAULT_BUDGET_BYTES);
        let r = host.run(Priority::Background, |_| -> () { panic!("boom") });
        assert_eq!(r, Err(HostError::Panicked("boom".into())));
        assert_eq!(host.run(Priority::Interactive, |_| 7).unwrap(), 7);
    }

    #[test]
    fn models_load_once_and_the_least_recently_used_leaves_first() {
        let dir = tempfile::tempdir().unwrap();
        let one = tiny(dir.path(), "a").model.memory_bytes();
        assert!(one > 0);
        // Room for two tiny models, not three.
        let host = Host::spawn(one * 5 / 2);
        let d = dir.path().to_owned();
        let keys = host
            .run(Priority::Background, move |ctx| {
                let load = |name: &str| ctx.model(name, || Ok::<_, crate::MlError>(tiny(&d, name))).unwrap();
                let a = load("a");
                let again = load("a");
                assert!(Arc::ptr_eq(&a, &again), "a second request reuses the loaded weights");
                load("b");
                load("a"); // a is now more recent than b
                load("c"); // over budget: b goes
                ctx.cached_keys()
            })
            .unwrap();
        assert_eq!(keys, ["c", "a"]);
        assert_eq!(host.loads(), 3);
    }

    #[test]
    fn queued_tasks_end_with_stopped_when_the_host_goes() {
        let host = Host::spawn(DEFAULT_BUDGET_BYTES);
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let first = host.submit(Priority::Background, move |_| {
            started_tx.send(()).unwrap();
            gate_rx.recv().unwrap()
        });
        let queued = host.submit(Priority::Background, |_| 1);
        // The running task finishes; the queued one never starts.
        started_rx.recv().unwrap();
        drop(host);
        gate_tx.send(()).unwrap();
        first.wait().unwrap();
        assert_eq!(queued.wait(), Err(HostError::Stopped));
    }
}
