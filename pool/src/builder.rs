//! [`Builder`]: a pool's configuration (Python's `ThreadPoolExecutor(...)` arguments).

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;

use crate::{BuildError, ThreadPool};

/// The most workers one pool may have.
pub const MAX_WORKERS: usize = crate::sleep::MAX_SLEEPERS;

/// Runs once on each worker thread before it takes its first task.
pub(crate) type Initializer = Arc<dyn Fn() + Send + Sync + 'static>;

/// Configures and builds a [`ThreadPool`].
///
/// # Examples
///
/// ```
/// use concur_pool::ThreadPool;
///
/// let pool = ThreadPool::builder()
///     .max_workers(4)
///     .thread_name_prefix("fetch")
///     .stack_size(256 * 1024)
///     .initializer(|| println!("worker {:?} ready", std::thread::current().name()))
///     .build()
///     .unwrap();
/// let name = pool.submit(|| std::thread::current().name().map(str::to_owned)).unwrap();
/// assert_eq!(name.result().unwrap().as_deref(), Some("fetch_0"));
/// ```
#[derive(Clone, Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder {
    max_workers: Option<usize>,
    thread_name_prefix: Option<String>,
    initializer: Option<Initializer>,
    stack_size: Option<usize>,
    keep_cpu_masks: bool,
}

impl Builder {
    /// The defaults: `min(32, available_parallelism + 4)` workers (Python's
    /// `ThreadPoolExecutor` default, see [`max_workers`](Builder::max_workers)), threads named
    /// `ThreadPool-{N}_{i}`, no initializer, the platform's stack size.
    pub fn new() -> Self {
        Self::default()
    }

    /// The most worker threads (Python's `max_workers`). Workers start one at a time, when a
    /// submit finds no idle worker, up to this many.
    ///
    /// The default is Python's: `min(32, cpus + 4)`, with `cpus` from
    /// [`std::thread::available_parallelism`] (1 if unknown). A thread pool's tasks mostly block
    /// on I/O, so it keeps a few more threads than CPUs, and at most 32 so that a large machine
    /// does not start hundreds of threads. (`concur_process::ProcessPool` defaults to the CPU
    /// count, as Python's `ProcessPoolExecutor` does: its workers compute.)
    ///
    /// [`build`](Builder::build) fails if it is 0 or above [`MAX_WORKERS`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = concur_pool::ThreadPool::builder().build().unwrap();
    /// let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    /// assert_eq!(pool.max_workers(), (cpus + 4).min(32));
    /// ```
    pub fn max_workers(mut self, max_workers: usize) -> Self {
        self.max_workers = Some(max_workers);
        self
    }

    /// Names the worker threads `{prefix}_{i}`, `i` counting from 0 in start order (Python's
    /// `thread_name_prefix`). Without it the prefix is `ThreadPool-{N}`, `N` counting pools
    /// in this process.
    pub fn thread_name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.thread_name_prefix = Some(prefix.into());
        self
    }

    /// Runs `initializer` once on each worker thread as it starts, before its first task
    /// (Python's `initializer`; capture what Python passes as `initargs`).
    ///
    /// If it panics the pool is **broken**: every task still queued resolves with a failure
    /// that downcasts to [`BrokenThreadPool`](crate::BrokenThreadPool), and every later submit
    /// is refused with [`SubmitError::Broken`](concur_core::SubmitError::Broken).
    pub fn initializer<F>(mut self, initializer: F) -> Self
    where
        F: Fn() + Send + Sync + 'static,
    {
        self.initializer = Some(Arc::new(initializer));
        self
    }

    /// The stack size of each worker thread, in bytes (as [`std::thread::Builder::stack_size`]).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Whether an idle worker that finds itself on the CPU of the latest submit may move to
    /// another CPU of its mask (default: yes). With `false` the pool never changes its
    /// threads' CPU masks.
    ///
    /// An idle worker spins a few microseconds before it sleeps, so that a thread that submits
    /// again at once finds it awake; spinning on the submitter's own CPU would only hold the
    /// submitter up, and on small machines the scheduler can keep both on one CPU for
    /// thousands of calls while another CPU idles. So such a worker narrows its CPU mask to
    /// the other CPUs of its mask (which moves it) and restores the whole mask at once, at
    /// most every 10 ms. A mask that someone else sets on a worker thread between those two
    /// calls is overwritten: turn moves off if something else (an `initializer` calling
    /// `sched_setaffinity`, say) manages the workers' masks while the pool runs. A worker whose
    /// mask holds one CPU never moves.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = concur_pool::ThreadPool::builder().move_idle_workers(false).build().unwrap();
    /// assert_eq!(*pool.submit(|| 6 * 7).unwrap().result().unwrap(), 42);
    /// ```
    pub fn move_idle_workers(mut self, allowed: bool) -> Self {
        self.keep_cpu_masks = !allowed;
        self
    }

    /// Builds the pool. No thread starts until the first submit.
    ///
    /// # Errors
    /// [`BuildError`] if `max_workers` is 0 or above [`MAX_WORKERS`], or the thread name prefix
    /// contains a NUL byte.
    pub fn build(self) -> Result<ThreadPool, BuildError> {
        let max_workers = match self.max_workers {
            Some(0) => return Err(BuildError::zero_workers()),
            Some(n) if n > MAX_WORKERS => return Err(BuildError::too_many_workers(n)),
            Some(n) => n,
            None => default_max_workers(),
        };
        if self
            .thread_name_prefix
            .as_deref()
            .is_some_and(|p| p.contains('\0'))
        {
            return Err(BuildError::nul_in_prefix());
        }
        Ok(ThreadPool::from_config(Config {
            max_workers,
            thread_name_prefix: self.thread_name_prefix,
            initializer: self.initializer,
            stack_size: self.stack_size,
            move_idle_workers: !self.keep_cpu_masks,
        }))
    }
}

/// Python's `ThreadPoolExecutor` default: `min(32, cpus + 4)`.
fn default_max_workers() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    cpus.saturating_add(4).min(32).min(MAX_WORKERS)
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("max_workers", &self.max_workers)
            .field("thread_name_prefix", &self.thread_name_prefix)
            .field("initializer", &self.initializer.is_some())
            .field("stack_size", &self.stack_size)
            .field("move_idle_workers", &!self.keep_cpu_masks)
            .finish()
    }
}

/// A validated configuration.
pub(crate) struct Config {
    pub(crate) max_workers: usize,
    pub(crate) thread_name_prefix: Option<String>,
    pub(crate) initializer: Option<Initializer>,
    pub(crate) stack_size: Option<usize>,
    /// Whether an idle worker may leave the submitter's CPU ([`Builder::move_idle_workers`]).
    pub(crate) move_idle_workers: bool,
}
