//! [`ThreadPool`]: the handle, and the state its workers share.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;

use concur_core::{Executor, Failure, Future, Map, MapOptions, SubmitError, Task};
use crossbeam_utils::CachePadded;

use crate::builder::Config;
use crate::queue::Queue;
use crate::sleep::{Control, Refused};
use crate::worker::{self, BodyDone};
use crate::{BrokenThreadPool, BuildError, Builder};

/// Numbers pools (for their identity and their default thread names).
static POOLS: AtomicUsize = AtomicUsize::new(0);

/// A pool of worker threads running submitted closures (Python's `ThreadPoolExecutor`).
///
/// - **Lazy, reused workers.** No thread starts until the first submit. A submit starts a new
///   worker when no started one is idle, up to `max_workers`; a worker that finished its task
///   counts as idle *before* that task's future completes, so submitting, waiting for the
///   result and submitting again uses one thread. Idle workers spin for some microseconds, then
///   sleep without using CPU; a submit wakes one (no lost wake-ups: see the loom model).
/// - **FIFO.** Tasks start in submission order (from one submitting thread).
/// - **One allocation per submit.** The closure, the future's state and its result slot share
///   one allocation (a [`Task`]), and the queue holds that pointer (in blocks of 31, allocated
///   once per 31 submits).
/// - **Panics** in a task become that future's [`Failure`]; the worker goes on.
/// - **No self-deadlock.** A task that blocks on a future of its own pool that is still queued
///   runs it inline instead (single-future waits). A task whose wait could never end, because
///   what it waits for waits (through running tasks of any thread pool in the process) on
///   it, is told so instead of hanging: single-future waits (`result`, `error`, `wait`,
///   `into_result` and their timed forms) return
///   [`Error::Deadlock`](concur_core::Error::Deadlock), [`concur_core::wait`] returns with
///   [`Waited::is_deadlock`](concur_core::Waited::is_deadlock) set, and `as_completed` yields
///   [`AsCompletedError::Deadlock`](concur_core::AsCompletedError::Deadlock). `AllCompleted`
///   is a deadlock when any unfinished future waits back; `FirstCompleted`,
///   `FirstException` and an `as_completed` step only when every unfinished one does. The
///   wait that closes the cycle gets the error; the others then proceed. A process pool's
///   future is never part of a cycle (its worker is another process), and neither is a
///   promise or a queued task: only tasks blocked in a wait count.
/// - **Handles.** `ThreadPool` is a cheap cloneable handle. Dropping the last one shuts the pool
///   down as `shutdown(wait = true, cancel_futures = false)`: queued work runs, then the
///   workers are joined (Python's `with` block).
///
/// # Examples
///
/// The seeds' first example (`submit(pow, 323, 1235)`), with a wrapping power so it fits a
/// `u64`:
///
/// ```
/// use concur_pool::ThreadPool;
///
/// let pool = ThreadPool::new(1).unwrap();
/// let future = pool.submit(|| 323u64.wrapping_pow(1235)).unwrap();
/// println!("{}", future.result().unwrap());
/// ```
#[derive(Clone)]
pub struct ThreadPool {
    handle: Arc<Handle>,
}

/// Shared by every clone of one [`ThreadPool`]; dropping it shuts the pool down.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.shutdown(true, false);
    }
}

impl ThreadPool {
    /// A pool of at most `max_workers` threads (Python's `ThreadPoolExecutor(max_workers)`).
    ///
    /// # Errors
    /// [`BuildError`] if `max_workers` is 0 or above [`MAX_WORKERS`](crate::MAX_WORKERS).
    pub fn new(max_workers: usize) -> Result<Self, BuildError> {
        Builder::new().max_workers(max_workers).build()
    }

    /// A [`Builder`] for the other settings.
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn from_config(config: Config) -> Self {
        let number = POOLS.fetch_add(1, Ordering::Relaxed);
        let prefix = config
            .thread_name_prefix
            .clone()
            .unwrap_or_else(|| format!("ThreadPool-{number}"));
        let shared = Arc::new(Shared {
            id: 0,
            control: Control::new(),
            queue: CachePadded::new(Queue::default()),
            idle: CachePadded::new(AtomicUsize::new(0)),
            full: AtomicBool::new(false),
            broken: OnceLock::new(),
            broken_flag: AtomicBool::new(false),
            prefix,
            config,
            workers: Mutex::new(Workers::default()),
            exited: Condvar::new(),
            joining: Mutex::new(()),
        });
        // The address is unique while the pool lives, and a task carries its pool's id only
        // while the pool holds it (see `Shared::id`).
        let id = Arc::as_ptr(&shared).addr();
        let shared = {
            let mut shared = shared;
            match Arc::get_mut(&mut shared) {
                Some(s) => s.id = id,
                None => unreachable!("a fresh Arc is unique"),
            }
            shared
        };
        ThreadPool {
            handle: Arc::new(Handle { shared }),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Schedules `work` on the pool and returns the future of its result (Python's `submit`).
    ///
    /// One allocation holds the closure, the future's state and its result. A panic in `work`
    /// becomes the future's [`Failure`]; the worker goes on.
    ///
    /// # Errors
    /// [`SubmitError::Shutdown`] after [`shutdown`](ThreadPool::shutdown);
    /// [`SubmitError::Broken`] if the pool is broken (its failure downcasts to
    /// [`BrokenThreadPool`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = concur_pool::ThreadPool::new(2).unwrap();
    /// let futures: Vec<_> = (0..4u64).map(|i| pool.submit(move || i * i).unwrap()).collect();
    /// let squares: Vec<u64> = futures.iter().map(|f| *f.result().unwrap()).collect();
    /// assert_eq!(squares, [0, 1, 4, 9]);
    /// ```
    pub fn submit<F, T>(&self, work: F) -> Result<Future<T>, SubmitError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let shared = self.shared();
        let pool = shared.id;
        let (task, future) = Task::with_owner(pool, move || {
            let _done = BodyDone(pool);
            work()
        });
        shared.execute(task)?;
        Ok(future)
    }

    /// Applies `f` to every input on the pool and yields the results in input order (Python's
    /// `map`), every input submitted by this call. See [`Map`] for the rules: each item's
    /// failure is that item's `Err` and iteration goes on.
    ///
    /// Python's `map(f, *iterables)` zips its iterables; here zip them yourself:
    /// `pool.map(|(a, b)| a + b, xs.into_iter().zip(ys))`.
    ///
    /// Work starts at this call: every input is submitted before it returns. Dropped before
    /// its first `next`, the iterator cancels nothing (every call runs, as in Python); dropped
    /// after, it cancels every task not yet started, and tasks already running finish with
    /// their results dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = concur_pool::ThreadPool::new(2).unwrap();
    /// let sums: Vec<u32> = pool
    ///     .map(|(a, b)| a + b, [1, 2, 3].into_iter().zip([10, 20, 30]))
    ///     .map(Result::unwrap)
    ///     .collect();
    /// assert_eq!(sums, [11, 22, 33]);
    /// ```
    pub fn map<I, F, T>(&self, f: F, inputs: I) -> Map<'_, Self, I::IntoIter, F, T>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        Executor::map(self, f, inputs)
    }

    /// [`map`](ThreadPool::map) with a timeout (one deadline from this call: when it passes,
    /// the iterator yields [`Error::TimedOut`](concur_core::Error::TimedOut) once, cancels the
    /// rest and ends) and an in-flight window (at most that many inputs submitted and not yet
    /// yielded, for long or endless inputs). The first window is submitted by this call; a
    /// drop cancels as for [`map`](ThreadPool::map).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use concur_core::MapOptions;
    ///
    /// let pool = concur_pool::ThreadPool::new(2).unwrap();
    /// let window = MapOptions::new().in_flight(NonZeroUsize::new(8).unwrap());
    /// // An endless input, consumed eight tasks ahead of the reader.
    /// let first: Vec<u64> = pool.map_with(|n: u64| n * 2, 0.., window).take(5).map(Result::unwrap).collect();
    /// assert_eq!(first, [0, 2, 4, 6, 8]);
    /// ```
    pub fn map_with<I, F, T>(
        &self,
        f: F,
        inputs: I,
        options: MapOptions,
    ) -> Map<'_, Self, I::IntoIter, F, T>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        Executor::map_with(self, f, inputs, options)
    }

    /// Stops accepting work and frees the workers when the queued work is done (Python's
    /// `shutdown(wait, cancel_futures)`).
    ///
    /// - Every later submit fails with [`SubmitError::Shutdown`].
    /// - Queued tasks still run, unless `cancel_futures`: then every task not yet started is
    ///   cancelled (its future reports [`Error::Cancelled`](concur_core::Error::Cancelled) at
    ///   once). Running tasks always finish.
    /// - With `wait`, returns once the queued work is done and every worker thread has exited;
    ///   without it, returns at once and the workers finish the queue in the background.
    /// - Called from one of this pool's own tasks, it never waits (a worker cannot join
    ///   itself, and the calling task is part of the work being waited for): it returns at
    ///   once as if `wait` were false.
    ///
    /// Calling it again is harmless (a later call with `cancel_futures` still cancels what is
    /// queued, and one with `wait` still waits).
    ///
    /// # Examples
    ///
    /// ```
    /// use concur_core::SubmitError;
    ///
    /// let pool = concur_pool::ThreadPool::new(1).unwrap();
    /// let queued = pool.submit(|| "done").unwrap();
    /// pool.shutdown(true, false);
    /// assert_eq!(*queued.result().unwrap(), "done");
    /// assert!(matches!(pool.submit(|| ()), Err(SubmitError::Shutdown)));
    /// ```
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.shared().shutdown(wait, cancel_futures);
    }

    /// The most worker threads this pool starts.
    pub fn max_workers(&self) -> usize {
        self.shared().config.max_workers
    }

    /// How many worker threads were started so far (never decreases; see
    /// [`live_workers`](ThreadPool::live_workers) for the threads alive now).
    pub fn spawned_workers(&self) -> usize {
        self.shared().workers().spawned
    }

    /// How many worker threads are alive now (a snapshot): started and not yet out of their
    /// worker function. Idle workers are alive (they are reused, not restarted); a worker
    /// leaves only at shutdown or when its initializer fails.
    ///
    /// It is 0 before the first submit, 1 after one task on a fresh pool, and 0 once
    /// [`shutdown(wait = true, ..)`](ThreadPool::shutdown) returns on a thread that is not one
    /// of this pool's workers: that call joins every worker thread, so by then each has
    /// really ended (its thread-locals dropped too), not only counted itself out.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = concur_pool::ThreadPool::new(4).unwrap();
    /// assert_eq!(pool.live_workers(), 0);
    /// pool.submit(|| ()).unwrap().result().unwrap();
    /// pool.submit(|| ()).unwrap().result().unwrap();
    /// assert_eq!(pool.live_workers(), 1); // the idle worker was reused
    /// pool.shutdown(true, false);
    /// assert_eq!(pool.live_workers(), 0);
    /// assert_eq!(pool.spawned_workers(), 1);
    /// ```
    pub fn live_workers(&self) -> usize {
        self.shared().workers().alive
    }

    /// How many tasks are queued and not yet taken by a worker (a snapshot).
    pub fn queued(&self) -> usize {
        self.shared().queue.len()
    }

    /// Whether an initializer failure broke this pool.
    pub fn is_broken(&self) -> bool {
        self.shared().broken().is_some()
    }
}

impl Executor for ThreadPool {
    /// Queues a task made elsewhere (e.g. by [`Task::new`]). Tasks made by
    /// [`ThreadPool::submit`] carry this pool's tag, so a worker waiting on one may run it
    /// inline; foreign tasks are only queued.
    fn execute(&self, task: Task) -> Result<(), SubmitError> {
        self.shared().execute(task)
    }

    /// As [`ThreadPool::submit`] (tagged with this pool, so `map` tasks may run inline too).
    fn submit<F, T>(&self, work: F) -> Result<Future<T>, SubmitError>
    where
        Self: Sized,
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        ThreadPool::submit(self, work)
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = self.shared();
        let (spawned, alive) = {
            let workers = shared.workers();
            (workers.spawned, workers.alive)
        };
        f.debug_struct("ThreadPool")
            .field("max_workers", &shared.config.max_workers)
            .field("thread_name_prefix", &shared.prefix)
            .field("spawned_workers", &spawned)
            .field("live_workers", &alive)
            .field("queued", &shared.queue.len())
            .field("closed", &shared.control.is_closed())
            .field("broken", &shared.broken().is_some())
            .finish()
    }
}

/// The worker threads' bookkeeping.
#[derive(Default)]
struct Workers {
    /// Threads started so far (they are numbered in this order).
    spawned: usize,
    /// Threads whose worker function has not returned (decremented as the last thing it
    /// does).
    alive: usize,
    /// Join handles not yet joined.
    handles: Vec<JoinHandle<()>>,
}

/// What the workers and every handle of one pool share.
///
/// Invariants: `id` is the address of this allocation, set once before the pool is shared; a
/// [`Task`] tagged with it is in this pool's queue or being run by one of its workers (or inline
/// by a thread waiting on it). `full` is set once `max_workers` workers were started and never
/// cleared. `broken` is set before `broken_flag` and the control word's `BROKEN`, and never
/// changes afterwards.
pub(crate) struct Shared {
    pub(crate) id: usize,
    pub(crate) control: Control,
    pub(crate) queue: CachePadded<Queue>,
    /// Python's idle semaphore: workers that finished a task and were not claimed by a submit
    /// since. Only used until every worker is started.
    idle: CachePadded<AtomicUsize>,
    full: AtomicBool,
    broken: OnceLock<Failure>,
    broken_flag: AtomicBool,
    prefix: String,
    pub(crate) config: Config,
    workers: Mutex<Workers>,
    exited: Condvar,
    /// Held while joining, so that a second `shutdown(wait = true)` returns only after the
    /// first one's joins (every worker thread really ended, not just counted out).
    joining: Mutex<()>,
}

impl Shared {
    fn workers(&self) -> MutexGuard<'_, Workers> {
        self.workers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The failure every task and submit gets once the pool is broken.
    pub(crate) fn broken(&self) -> Option<&Failure> {
        // ORDERING: Relaxed: a read-mostly flag checked per task; `broken` (a OnceLock, which
        // synchronises itself) holds the data.
        if self.broken_flag.load(Ordering::Relaxed) {
            self.broken.get()
        } else {
            None
        }
    }

    /// Queues `task`, starting a worker if none is idle; see [`ThreadPool::submit`].
    pub(crate) fn execute(self: &Arc<Self>, task: Task) -> Result<(), SubmitError> {
        if let Err(why) = self.control.begin_submit() {
            drop(task); // its future resolves as abandoned; the caller gets the reason
            return Err(self.refusal(why));
        }
        self.queue.push(task);
        // ORDERING: Relaxed: `full` only saves the idle bookkeeping once it cannot matter.
        let spawn_failed = if self.full.load(Ordering::Relaxed) {
            None
        } else {
            self.adjust_thread_count()
        };
        self.control.end_submit();
        if let Some(error) = spawn_failed {
            let broken = BrokenThreadPool::spawn(Failure::from_error(error));
            self.break_pool(Failure::from_error(broken));
            return Err(self.refusal(Refused::Broken));
        }
        Ok(())
    }

    fn refusal(&self, why: Refused) -> SubmitError {
        match why {
            Refused::Closed => SubmitError::Shutdown,
            Refused::Broken => SubmitError::Broken(
                self.broken
                    .get()
                    .cloned()
                    .unwrap_or_else(Failure::abandoned),
            ),
        }
    }

    /// Starts a worker unless an idle one can take the task just queued (Python's
    /// `_adjust_thread_count`). Called between `begin_submit` and `end_submit`, so a shutdown
    /// waiting for submits to finish sees every worker started. Returns the spawn error if no
    /// worker at all could be started (then nobody would run the queue).
    fn adjust_thread_count(self: &Arc<Self>) -> Option<std::io::Error> {
        // ORDERING: Relaxed: a count of idle workers, no data is published through it.
        let claimed = self
            .idle
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if claimed {
            return None;
        }
        let mut workers = self.workers();
        if workers.spawned >= self.config.max_workers || self.broken().is_some() {
            return None;
        }
        let index = workers.spawned;
        let mut builder = std::thread::Builder::new().name(format!("{}_{index}", self.prefix));
        if let Some(bytes) = self.config.stack_size {
            builder = builder.stack_size(bytes);
        }
        let shared = Arc::clone(self);
        match builder.spawn(move || worker::main(shared)) {
            Ok(handle) => {
                workers.spawned += 1;
                workers.alive += 1;
                workers.handles.push(handle);
                if workers.spawned == self.config.max_workers {
                    // ORDERING: Relaxed: see `execute`.
                    self.full.store(true, Ordering::Relaxed);
                }
                None
            }
            Err(error) if workers.spawned == 0 => Some(error),
            // Other workers exist and will run the queue.
            Err(_) => None,
        }
    }

    /// A worker finished its outermost task: count it idle for the next submit.
    pub(crate) fn release_idle(&self) {
        // ORDERING: Relaxed: see `execute`.
        if !self.full.load(Ordering::Relaxed) {
            // ORDERING: Relaxed: see `adjust_thread_count`.
            self.idle.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Breaks the pool (Python's `_initializer_failed`): refuses every later submit and fails
    /// every queued task with `failure`. The first failure wins.
    pub(crate) fn break_pool(&self, failure: Failure) {
        let failure = self.broken.get_or_init(|| failure).clone();
        // ORDERING: Relaxed: `broken` was set first and synchronises itself.
        self.broken_flag.store(true, Ordering::Relaxed);
        self.control.mark_broken();
        // No submit is admitted any more; wait for the ones in flight to push, then drain.
        self.control.wait_for_submitters();
        while let Some(task) = self.queue.pop() {
            task.fail(failure.clone());
        }
    }

    /// See [`ThreadPool::shutdown`].
    pub(crate) fn shutdown(&self, wait: bool, cancel_futures: bool) {
        if cancel_futures {
            // Cancel before waking the sleepers, so they find less to run.
            self.control.close_quietly();
            self.control.wait_for_submitters();
            while let Some(task) = self.queue.pop() {
                task.cancel();
            }
            self.control.wake_all();
        } else {
            self.control.close();
        }
        if wait && !worker::is_worker_of(self.id) {
            self.join_workers();
        }
    }

    /// Joins every worker (after `close`).
    fn join_workers(&self) {
        // Submits in flight may still start a worker; none is admitted after them.
        self.control.wait_for_submitters();
        let _joining = self.joining.lock().unwrap_or_else(PoisonError::into_inner);
        let handles = core::mem::take(&mut self.workers().handles);
        for handle in handles {
            // A worker thread only ends by returning (panics are caught inside it).
            let _ = handle.join();
        }
        // Every handle was joined, by us or by a caller that held `joining` before us; a
        // worker whose spawn handle never reached the list is not possible (pushed under the
        // same lock that counts it alive), so this only confirms the count.
        let mut workers = self.workers();
        while workers.alive > 0 {
            workers = self
                .exited
                .wait(workers)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Called by a worker thread as its function returns.
    pub(crate) fn worker_exited(&self) {
        let mut workers = self.workers();
        workers.alive -= 1;
        if workers.alive == 0 {
            self.exited.notify_all();
        }
    }
}
