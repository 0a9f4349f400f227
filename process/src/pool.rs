//! [`ProcessPool`] and its builder: the API side. The workers and pipes belong to the pool's I/O
//! thread (`io.rs`); the two share only a queue of calls and a few flags under one mutex.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::ffi::{CString, OsString};
use std::hash::{Hash, Hasher};
use std::io::IoSlice;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use concur_core::{Failure, Future, SubmitError, driven_promise, promise};

use crate::drive::{Driver, Loan, Returned};
use crate::error::{BuildError, CodecError};
use crate::frame::DEFAULT_MAX_FRAME;
use crate::job::{CallEncoder, CancelHandle, Job, Single};
use crate::map::{Map, MapOptions};
use crate::registry::{self, Task};
use crate::spawn::SpawnConfig;
use crate::sys::{self, EventFd, Timer};
use crate::worker::ENV_WORKER;

/// The initializer task's name, signature and encoded arguments.
pub(crate) type Initializer = (&'static str, u64, Vec<u8>);

/// Everything the I/O thread needs to know, fixed at `build`.
pub(crate) struct Config {
    pub(crate) max_workers: usize,
    pub(crate) max_tasks_per_child: Option<u64>,
    pub(crate) initializer: Option<Initializer>,
    pub(crate) task_timeout: Option<Duration>,
    /// Calls a worker may hold at once (the running one plus prefetched ones).
    pub(crate) depth: usize,
    pub(crate) max_frame: usize,
    pub(crate) startup_timeout: Duration,
    pub(crate) terminate_grace: Duration,
    pub(crate) spawn: SpawnConfig,
}

/// An idle worker lent by the sleeping I/O thread: `submit` may write one call to it directly,
/// and the thread waiting on that call's future may read the answer itself (see
/// [`crate::drive`]).
pub(crate) struct Express {
    pub(crate) worker: u64,
    /// The pool's end of the worker's calls pipe (owned by the I/O thread, which does not
    /// close it while the worker is lent).
    pub(crate) fd: RawFd,
    /// The pool's end of the worker's results pipe (likewise kept open while lent).
    pub(crate) results: RawFd,
    /// The worker's pidfd, if the kernel has them (likewise kept open while lent): a reader
    /// watches it too, since a process the task forked may hold the results pipe open after
    /// the worker died, and then no EOF comes.
    pub(crate) pidfd: Option<RawFd>,
    /// Calls the worker may still take before `max_tasks_per_child` retires it.
    pub(crate) left: Option<u64>,
    /// Calls it answered while lent, for the I/O thread's count.
    pub(crate) used: u64,
}

/// A call `submit` wrote to a lent worker, for the I/O thread to adopt (or its waiting thread
/// to drive).
pub(crate) struct Expressed {
    pub(crate) lent: Express,
    pub(crate) job: Job,
    /// Bytes of the frame written.
    pub(crate) written: usize,
}

/// How long an expressed call's answer may wait for a thread to read it before the I/O thread
/// collects it anyway (blocking waits read it at once; other waiters announce themselves).
pub(crate) const EXPRESS_GRACE: Duration = Duration::from_millis(10);

/// Calls up to this size may take the express path: one write of at most `PIPE_BUF` bytes to
/// a pipe, which is all or nothing.
const EXPRESS_MAX: usize = 4096;

/// State shared by the pool's handle and its I/O thread.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Whether `submit` may write calls straight to idle workers (not with a task timeout, whose
    /// clock the sleeping I/O thread must know about).
    pub(crate) express: bool,
    /// Signalled when the I/O thread answers a request or exits.
    pub(crate) changed: Condvar,
    /// Wakes the I/O thread out of `poll`.
    pub(crate) wake: EventFd,
    /// Wakes the I/O thread [`EXPRESS_GRACE`] after a call took the express path, so an answer
    /// that no thread reads (its future polled with `is_done`, or dropped) is still collected.
    pub(crate) express_timer: Timer,
    next_id: AtomicU64,
    /// Largest frame a worker may send.
    pub(crate) max_frame: usize,
}

/// Guarded by `Shared::state`.
pub(crate) struct State {
    /// Calls not yet given to a worker, in submission order.
    pub(crate) queue: VecDeque<Job>,
    /// Bumped by every request, so the I/O thread knows whether it has seen everything.
    pub(crate) generation: u64,
    pub(crate) shutdown: bool,
    pub(crate) broken: Option<Failure>,
    /// `terminate_workers` / `kill_workers` asked for this signal.
    pub(crate) terminate: Option<i32>,
    /// The I/O thread has acted on `terminate`.
    pub(crate) terminated: bool,
    /// Futures whose running task should be killed, by identity.
    pub(crate) cancels: Vec<usize>,
    pub(crate) cancel_answers: Vec<(usize, bool)>,
    /// The I/O thread is (about to be) blocked in `poll` and needs the eventfd to wake.
    pub(crate) io_sleeping: bool,
    pub(crate) io_done: bool,
    pub(crate) pids: Vec<u32>,
    /// Idle workers lent to `submit` while the I/O thread sleeps.
    pub(crate) express: Vec<Express>,
    /// Calls `submit` sent to lent workers.
    pub(crate) expressed: Vec<Expressed>,
    /// The I/O thread sleeps with workers lent (set when it lends, cleared when it takes them
    /// back).
    pub(crate) lending: bool,
    /// Lent workers whose answer a waiting thread is reading.
    pub(crate) driving: Vec<Loan>,
    /// Workers that driving threads gave back while the I/O thread was not lending.
    pub(crate) returned: Vec<Returned>,
    /// `Shared::express_timer` is set (cleared when the I/O thread takes the lent workers back).
    pub(crate) express_timer_armed: bool,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked (no user code runs under it).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn next_id(&self) -> u64 {
        // ORDERING: only uniqueness matters; ids order nothing else.
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Bumps the generation and wakes the I/O thread if it sleeps; call with the lock held and
    /// notify after releasing it.
    pub(crate) fn touch(state: &mut State) -> bool {
        state.generation = state.generation.wrapping_add(1);
        std::mem::take(&mut state.io_sleeping)
    }
}

/// Identity of a future: the address of its shared cell, taken through its identity `Hash`.
pub(crate) fn future_key<T>(future: &Future<T>) -> usize {
    struct Capture(usize);
    impl Hasher for Capture {
        fn finish(&self) -> u64 {
            self.0 as u64
        }
        fn write(&mut self, bytes: &[u8]) {
            for &b in bytes {
                self.0 = self.0.rotate_left(8) ^ usize::from(b);
            }
        }
        fn write_usize(&mut self, n: usize) {
            self.0 = self.0.rotate_left(17) ^ n;
        }
    }
    let mut capture = Capture(0);
    future.hash(&mut capture);
    capture.0.max(1)
}

/// A pool of worker processes running registered [`Task`]s: Python's `ProcessPoolExecutor`.
///
/// Workers are started lazily, up to [`max_workers`](ProcessPoolBuilder::max_workers), by
/// `posix_spawn` of the current executable (or of a [worker
/// program](ProcessPoolBuilder::worker_program)), whose `main` must call
/// [`worker_main`](crate::worker_main) first. Each worker has its own pipes, so when one dies
/// only the task it was running fails (with [`WorkerDied`](crate::WorkerDied)); the calls queued
/// behind it run on a replacement.
///
/// Dropping the pool is [`shutdown(true, false)`](ProcessPool::shutdown): it waits for every
/// submitted task to finish and for every worker to exit.
///
/// # Examples
///
/// ```no_run
/// use concur_process::ProcessPool;
///
/// concur_process::task! {
///     fn is_prime(n: u64) -> bool {
///         n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
///     }
/// }
///
/// fn main() {
///     concur_process::worker_main();
///     let pool = ProcessPool::builder().max_workers(2).build().unwrap();
///     let future = pool.submit(is_prime, 1_000_003).unwrap();
///     assert!(*future.result().unwrap());
///     let primes: Vec<bool> = pool.map(is_prime, [2u64, 4, 7]).map(Result::unwrap).collect();
///     assert_eq!(primes, [true, false, true]);
/// }
/// ```
pub struct ProcessPool {
    pub(crate) shared: Arc<Shared>,
    io: Mutex<Option<JoinHandle<()>>>,
    io_thread: ThreadId,
    max_workers: usize,
}

impl ProcessPool {
    /// A builder with the defaults: one worker per CPU, no task limit, no initializer, no
    /// timeout.
    pub fn builder() -> ProcessPoolBuilder {
        ProcessPoolBuilder::default()
    }

    /// The most workers this pool runs at once.
    pub fn max_workers(&self) -> usize {
        self.max_workers
    }

    /// The process ids of the workers that take calls: started (or starting) and neither
    /// retired by [`max_tasks_per_child`](ProcessPoolBuilder::max_tasks_per_child) nor being
    /// killed by the pool. A retired worker leaves the list when it gets its last call, not when
    /// it has exited; a worker killed from outside leaves it when the pool sees it die.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # concur_process::task! { fn pid() -> u32 { std::process::id() } }
    /// let pool = concur_process::ProcessPool::builder()
    ///     .max_workers(1)
    ///     .max_tasks_per_child(3)
    ///     .build()
    ///     .unwrap();
    /// let pids: Vec<u32> = (0..4).map(|_| *pool.submit(pid, ()).unwrap().result().unwrap()).collect();
    /// // The first worker retired after three calls; only its replacement is listed.
    /// assert_eq!(pool.worker_pids(), [pids[3]]);
    /// ```
    pub fn worker_pids(&self) -> Vec<u32> {
        self.shared.lock().pids.clone()
    }

    /// Schedules `task(args)` on a worker and returns the future of its result (Python's
    /// `submit`).
    ///
    /// The future fails, and only it, with a typed error if the arguments cannot be encoded
    /// ([`CodecError`]), the task panics ([`TaskPanicked`](crate::TaskPanicked)), its worker dies
    /// ([`WorkerDied`](crate::WorkerDied)), it exceeds the task timeout
    /// ([`TaskTimedOut`](crate::TaskTimedOut)), or the worker program does not know it
    /// ([`UnknownTask`](crate::UnknownTask)). Read them with `failure.downcast_ref::<E>()`.
    ///
    /// # Errors
    /// [`SubmitError::Shutdown`] after [`shutdown`](ProcessPool::shutdown) (or a terminate);
    /// [`SubmitError::Broken`] (with a [`BrokenProcessPool`](crate::BrokenProcessPool)) once the pool is broken.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # concur_process::task! { fn add(a: u32, b: u32) -> u32 { a + b } }
    /// # let pool = concur_process::ProcessPool::builder().build().unwrap();
    /// let sum = pool.submit(add, (2, 3)).unwrap();
    /// assert_eq!(*sum.result().unwrap(), 5);
    /// ```
    pub fn submit<A, R>(
        &self,
        task: Task<A, R>,
        args: impl Borrow<A>,
    ) -> Result<Future<R>, SubmitError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let id = self.shared.next_id();
        let mut encoder = CallEncoder::new(id, &task, self.shared.max_frame, 64);
        let (promise, future) = if self.shared.express {
            driven_promise::<R, _>(Driver::new(&self.shared, id))
        } else {
            promise::<R>()
        };
        if let Err(error) = encoder.push(args.borrow()) {
            self.refusal()?;
            let _ = promise.set_outcome(Err(error.into_failure()));
            return Ok(future);
        }
        let job = Job {
            id,
            name: task.name(),
            frame: encoder.finish(),
            items: 1,
            key: future_key(&future),
            kill_on_start: false,
            claimed: false,
            completion: Box::new(Single {
                promise,
                future: Some(CancelHandle::new(future.clone())),
            }),
        };
        self.enqueue_one(job)?;
        Ok(future)
    }

    /// Queues one call, or writes it straight to an idle worker lent by the sleeping I/O
    /// thread (one wake-up fewer on the round trip).
    fn enqueue_one(&self, job: Job) -> Result<(), SubmitError> {
        let wake = {
            let mut state = self.shared.lock();
            refusal(&state)?;
            match self.try_express(&mut state, job) {
                Ok(wake) => wake,
                Err(job) => {
                    state.queue.push_back(job);
                    Shared::touch(&mut state)
                }
            }
        };
        if wake {
            self.shared.wake.notify();
        }
        Ok(())
    }

    /// Writes `job` straight to an idle worker lent by the sleeping I/O thread, if there is one
    /// and nothing is queued ahead; returns whether the I/O thread must be woken, or the job if
    /// it goes to the queue.
    fn try_express(&self, state: &mut State, mut job: Job) -> Result<bool, Job> {
        if !state.queue.is_empty() || job.frame.len() > EXPRESS_MAX {
            return Err(job);
        }
        let Some(lent) = state.express.pop() else {
            return Err(job);
        };
        // A fresh future cannot have been cancelled: this claims it.
        job.claim();
        match sys::write_vectored(lent.fd, &[IoSlice::new(&job.frame)]) {
            Ok(written) if written > 0 => {
                let whole = written == job.frame.len();
                state.expressed.push(Expressed { lent, job, written });
                if !std::mem::replace(&mut state.express_timer_armed, true) {
                    self.shared.express_timer.arm(EXPRESS_GRACE);
                }
                // Whole, the call is answered to its waiting thread's drive (or handed to the
                // I/O thread by `watch` or the timer); partial, the I/O thread writes the rest.
                Ok(!whole && Shared::touch(state))
            }
            // Dead or full: the I/O thread deals with it through the queue.
            _ => Err(job),
        }
    }

    /// Applies `task` to every input on the workers and yields the results in input order
    /// (Python's `map`), one call per input; see [`Map`] for the semantics.
    ///
    /// Inputs may be owned or borrowed (`[1u64, 2]`, `&vec`, `vec.iter()`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # concur_process::task! { fn square(x: u64) -> u64 { x * x } }
    /// # let pool = concur_process::ProcessPool::builder().build().unwrap();
    /// let squares: Vec<u64> = pool.map(square, 1..=4u64).map(Result::unwrap).collect();
    /// assert_eq!(squares, [1, 4, 9, 16]);
    /// ```
    pub fn map<A, R, I>(&self, task: Task<A, R>, inputs: I) -> Map<'_, A, R, I::IntoIter>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
        I: IntoIterator,
        I::Item: Borrow<A>,
    {
        Map::new(self, task, inputs.into_iter(), MapOptions::new())
    }

    /// [`map`](ProcessPool::map) with a timeout, an in-flight window and a `chunksize`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # concur_process::task! { fn square(x: u64) -> u64 { x * x } }
    /// # let pool = concur_process::ProcessPool::builder().build().unwrap();
    /// use concur_process::MapOptions;
    ///
    /// let options = MapOptions::new().chunksize(1000);
    /// let total: u64 = pool.map_with(square, 0..100_000u64, options).map(Result::unwrap).sum();
    /// # let _ = total;
    /// ```
    pub fn map_with<A, R, I>(
        &self,
        task: Task<A, R>,
        inputs: I,
        options: MapOptions,
    ) -> Map<'_, A, R, I::IntoIter>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
        I: IntoIterator,
        I::Item: Borrow<A>,
    {
        Map::new(self, task, inputs.into_iter(), options)
    }

    pub(crate) fn new_id(&self) -> u64 {
        self.shared.next_id()
    }

    /// Why submissions are refused right now, if they are.
    fn refusal(&self) -> Result<(), SubmitError> {
        refusal(&self.shared.lock())
    }

    /// Queues calls, or refuses them all (dropping them: their futures resolve as abandoned).
    pub(crate) fn enqueue(&self, jobs: Vec<Job>) -> Result<(), SubmitError> {
        let wake = {
            let mut state = self.shared.lock();
            refusal(&state)?;
            state.queue.extend(jobs);
            Shared::touch(&mut state)
        };
        if wake {
            self.shared.wake.notify();
        }
        Ok(())
    }

    /// Cancels `future`'s task: like [`Future::cancel`] if it has not started; if it is
    /// running, kills its worker (which is replaced) and fails the future with
    /// [`TaskKilled`](crate::TaskKilled). This is the opt-in, forceful form of cancel that
    /// `Future::cancel` never does.
    ///
    /// Returns true if the task was cancelled before starting or its worker is being killed
    /// (a task that finishes in the meantime keeps its result); false if it already finished or
    /// is not this pool's.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # concur_process::task! { fn forever() { loop { std::thread::park(); } } }
    /// # let pool = concur_process::ProcessPool::builder().build().unwrap();
    /// let stuck = pool.submit(forever, ()).unwrap();
    /// while !stuck.is_running() { std::thread::yield_now(); }
    /// assert!(pool.cancel(&stuck));
    /// let failure = stuck.error().unwrap().unwrap();
    /// assert!(failure.downcast_ref::<concur_process::TaskKilled>().is_some());
    /// ```
    pub fn cancel<R>(&self, future: &Future<R>) -> bool {
        if future.cancel() {
            return true;
        }
        if future.is_done() {
            return false;
        }
        let key = future_key(future);
        let mut state = self.shared.lock();
        if state.io_done {
            return false;
        }
        state.cancels.push(key);
        if Shared::touch(&mut state) {
            self.shared.wake.notify();
        }
        if std::thread::current().id() == self.io_thread {
            // Called from a done-callback on the I/O thread: it acts after the callback returns.
            return true;
        }
        loop {
            if let Some(at) = state.cancel_answers.iter().position(|(k, _)| *k == key) {
                return state.cancel_answers.swap_remove(at).1;
            }
            if state.io_done {
                return false;
            }
            state = self
                .shared
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Stops accepting work (Python's `shutdown`).
    ///
    /// Queued calls still run unless `cancel_futures` is true, in which case every call not yet
    /// sent to a worker is cancelled. Workers exit once their work is done. With `wait`, returns
    /// after every remaining task finished and every worker exited and was reaped; otherwise at
    /// once, and the pool's thread finishes the work in the background. Later submissions fail
    /// with [`SubmitError::Shutdown`]. Calling it again is harmless.
    ///
    /// With `wait`, a task that never ends blocks this call (as in Python); bound tasks with
    /// [`task_timeout`](ProcessPoolBuilder::task_timeout), or stop them with
    /// [`terminate_workers`](ProcessPool::terminate_workers). Called from a done-callback (which
    /// runs on the pool's I/O thread), it does not wait.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # concur_process::task! { fn square(x: u64) -> u64 { x * x } }
    /// # let pool = concur_process::ProcessPool::builder().build().unwrap();
    /// let future = pool.submit(square, 3).unwrap();
    /// pool.shutdown(true, false);
    /// assert_eq!(*future.result().unwrap(), 9);
    /// assert!(pool.submit(square, 4).is_err());
    /// ```
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        let (drained, wake) = {
            let mut state = self.shared.lock();
            state.shutdown = true;
            let drained = if cancel_futures {
                std::mem::take(&mut state.queue)
            } else {
                VecDeque::new()
            };
            (drained, Shared::touch(&mut state))
        };
        if wake {
            self.shared.wake.notify();
        }
        for mut job in drained {
            job.completion.cancel();
        }
        if wait {
            self.join();
        }
    }

    /// Waits for the I/O thread to finish (not from the I/O thread itself).
    fn join(&self) {
        if std::thread::current().id() == self.io_thread {
            return;
        }
        {
            let mut state = self.shared.lock();
            while !state.io_done {
                state = self
                    .shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
        let handle = self
            .io
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    /// Stops every worker with `SIGTERM` (Python 3.14's `terminate_workers`).
    ///
    /// Every task not yet finished, queued or running, fails with
    /// [`Terminated`](crate::Terminated), and the pool is shut down. Works whatever state the
    /// workers are in: busy, idle, dead or still starting. A worker still alive after the
    /// [grace period](ProcessPoolBuilder::terminate_grace) is killed with `SIGKILL`. Returns once
    /// every future is resolved; dropping the pool (or `shutdown(true, _)`) waits for the workers
    /// to be reaped.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # concur_process::task! { fn forever() { loop { std::thread::park(); } } }
    /// # let pool = concur_process::ProcessPool::builder().build().unwrap();
    /// let stuck = pool.submit(forever, ()).unwrap();
    /// pool.terminate_workers();
    /// let failure = stuck.error().unwrap().unwrap();
    /// assert!(failure.downcast_ref::<concur_process::Terminated>().is_some());
    /// ```
    pub fn terminate_workers(&self) {
        self.stop_workers(libc::SIGTERM);
    }

    /// Stops every worker with `SIGKILL` (Python 3.14's `kill_workers`); otherwise as
    /// [`terminate_workers`](ProcessPool::terminate_workers).
    pub fn kill_workers(&self) {
        self.stop_workers(libc::SIGKILL);
    }

    fn stop_workers(&self, signal: i32) {
        let mut state = self.shared.lock();
        state.shutdown = true;
        if state.io_done {
            return;
        }
        if state.terminate.is_none() {
            state.terminate = Some(signal);
        }
        if Shared::touch(&mut state) {
            self.shared.wake.notify();
        }
        if std::thread::current().id() == self.io_thread {
            return;
        }
        while !state.terminated && !state.io_done {
            state = self
                .shared
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

fn refusal(state: &State) -> Result<(), SubmitError> {
    if let Some(cause) = &state.broken {
        return Err(SubmitError::Broken(cause.clone()));
    }
    if state.shutdown {
        return Err(SubmitError::Shutdown);
    }
    Ok(())
}

impl Drop for ProcessPool {
    /// Shuts the pool down and waits: every submitted task runs to completion, then every worker
    /// exits and is reaped (`shutdown(true, false)`).
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

impl std::fmt::Debug for ProcessPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("ProcessPool")
            .field("max_workers", &self.max_workers)
            .field("workers", &state.pids)
            .field("queued", &state.queue.len())
            .field("shutdown", &state.shutdown)
            .field("broken", &state.broken.is_some())
            .finish()
    }
}

/// Configures a [`ProcessPool`]; made by [`ProcessPool::builder`].
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use concur_process::ProcessPool;
///
/// concur_process::task! {
///     fn setup(level: u8) { let _ = level; }
/// }
///
/// let pool = ProcessPool::builder()
///     .max_workers(4)
///     .max_tasks_per_child(1000)
///     .initializer(setup, 3)
///     .task_timeout(Duration::from_secs(30))
///     .build()
///     .unwrap();
/// # drop(pool);
/// ```
#[derive(Default)]
pub struct ProcessPoolBuilder {
    max_workers: Option<usize>,
    max_tasks_per_child: Option<usize>,
    initializer: Option<Result<Initializer, CodecError>>,
    task_timeout: Option<Duration>,
    prefetch: Option<usize>,
    program: Option<PathBuf>,
    args: Option<Vec<OsString>>,
    launcher: Option<Vec<OsString>>,
    env: Vec<(OsString, OsString)>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    max_frame: Option<usize>,
    startup_timeout: Option<Duration>,
    terminate_grace: Option<Duration>,
}

impl std::fmt::Debug for ProcessPoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessPoolBuilder")
            .field("max_workers", &self.max_workers)
            .field("max_tasks_per_child", &self.max_tasks_per_child)
            .field("task_timeout", &self.task_timeout)
            .field("program", &self.program)
            .finish_non_exhaustive()
    }
}

impl ProcessPoolBuilder {
    /// The most workers running at once (default: the number of CPUs available to this
    /// process, [`std::thread::available_parallelism`], as Python's `ProcessPoolExecutor`;
    /// the thread pool's default is larger, `min(32, cpus + 4)`, because its tasks mostly
    /// block). Zero makes [`build`](ProcessPoolBuilder::build) fail with
    /// [`BuildError::ZeroWorkers`].
    ///
    /// # Examples
    ///
    /// ```
    /// use concur_process::{BuildError, ProcessPool};
    ///
    /// let refused = ProcessPool::builder().max_workers(0).build();
    /// assert!(matches!(refused, Err(BuildError::ZeroWorkers)));
    /// ```
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = Some(n);
        self
    }

    /// Replace a worker after it has run this many calls (a `map` chunk counts as one), to
    /// bound leaks in long-running tasks (default: never). Zero fails the build.
    pub fn max_tasks_per_child(mut self, n: usize) -> Self {
        self.max_tasks_per_child = Some(n);
        self
    }

    /// Run `task(args)` in every worker before its first call. If it fails (panics, or the
    /// worker dies), the pool is broken: every pending future and later submission fail with
    /// [`BrokenProcessPool`](crate::BrokenProcessPool) caused by
    /// [`InitializerFailed`](crate::InitializerFailed). Its result is ignored.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use concur_process::ProcessPool;
    ///
    /// concur_process::task! {
    ///     fn open_cache(path: String) { let _ = path; /* set up per-worker state */ }
    /// }
    ///
    /// let pool = ProcessPool::builder()
    ///     .initializer(open_cache, "/tmp/cache".to_string())
    ///     .build()
    ///     .unwrap();
    /// # drop(pool);
    /// ```
    pub fn initializer<A: Serialize, R>(mut self, task: Task<A, R>, args: impl Borrow<A>) -> Self {
        let entry = postcard::to_allocvec(args.borrow())
            .map(|encoded| (task.name(), task.signature(), encoded))
            .map_err(|error| CodecError {
                stage: crate::error::CodecStage::EncodeArgs,
                message: error.to_string(),
            });
        self.initializer = Some(entry);
        self
    }

    /// Kill and replace a worker whose task runs longer than `timeout` (a `map` chunk of `n`
    /// items gets `n × timeout`); the task's future fails with
    /// [`TaskTimedOut`](crate::TaskTimedOut). Default: no limit.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use concur_process::{ProcessPool, TaskTimedOut};
    ///
    /// concur_process::task! {
    ///     fn spin() { loop { std::hint::spin_loop() } }
    /// }
    ///
    /// let pool = ProcessPool::builder().task_timeout(Duration::from_secs(1)).build().unwrap();
    /// let failure = pool.submit(spin, ()).unwrap().error().unwrap().unwrap();
    /// assert!(failure.downcast_ref::<TaskTimedOut>().is_some());
    /// ```
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = Some(timeout);
        self
    }

    /// How many calls a busy worker may hold queued in its pipe behind the running one
    /// (default 2). More keeps workers busier with tiny tasks; calls sent to a worker can no
    /// longer be cancelled with [`Future::cancel`].
    pub fn prefetch(mut self, calls: usize) -> Self {
        self.prefetch = Some(calls);
        self
    }

    /// Run this program as the worker instead of the current executable. Its `main` must call
    /// [`worker_main`](crate::worker_main) first and register the tasks this pool submits under
    /// the same names (`module::path::fn`), which in practice means declaring them in a library
    /// crate that both programs link. Tasks it lacks fail with
    /// [`UnknownTask`](crate::UnknownTask); tasks with other argument or result types fail with
    /// [`SignatureMismatch`](crate::SignatureMismatch).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let pool = concur_process::ProcessPool::builder()
    ///     .worker_program("/usr/local/bin/my-worker")
    ///     .worker_args(["--quiet"])
    ///     .env("RUST_LOG", "warn")
    ///     .build()
    ///     .unwrap();
    /// # drop(pool);
    /// ```
    pub fn worker_program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = Some(path.into());
        self
    }

    /// Arguments for the worker program (default: none; in a test binary with
    /// [`test_worker!`](crate::test_worker), the arguments selecting the helper test).
    pub fn worker_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// Start workers through a launcher that relays only stdin and stdout, such as
    /// `["ssh", "host"]` or `["srun", "-N1", "-n1", "--"]`, so the pool can reach past one
    /// machine (DESIGN §5).
    ///
    /// The pool runs `PREFIX... env CONCUR_PROCESS_WORKER=stdio PROGRAM ARGS...`, where
    /// `PROGRAM` is the [worker program](ProcessPoolBuilder::worker_program) (default: this
    /// executable's path, which must exist at the same path where the launcher runs it), and
    /// speaks the same frames over the launcher's stdin and stdout. The worker moves them out of
    /// the way first and points its own stdout at stderr, so tasks still print freely; whatever
    /// the launcher or a login shell prints before the worker starts is skipped. The handshake
    /// checks the remote build's fingerprint; death is EOF (and the launcher's exit status,
    /// reported in [`WorkerDied`](crate::WorkerDied) with the launcher's pid). A launched worker
    /// exits when the launcher closes its stdin, and is killed at once when the pipe or socket it
    /// answers on loses its reader (the launcher, or the pool past a local `env`) or its parent
    /// there dies; there is no `PR_SET_PDEATHSIG` across machines, so a remote worker relies on
    /// the launcher passing the hang-up on.
    /// Arguments are passed as they are: a launcher that joins them into a shell command line
    /// (ssh does) needs them free of spaces and shell syntax. Environment entries set with
    /// [`env`](ProcessPoolBuilder::env) go on that command line too; [`stdout`](ProcessPoolBuilder::stdout)
    /// does not apply (the workers' prints go to their stderr). An empty prefix runs the worker
    /// locally in this mode.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let pool = concur_process::ProcessPool::builder()
    ///     .launcher(["ssh", "compute-7"])
    ///     .worker_program("/opt/app/bin/app")
    ///     .build()
    ///     .unwrap();
    /// # drop(pool);
    /// ```
    pub fn launcher<I, S>(mut self, prefix: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.launcher = Some(prefix.into_iter().map(Into::into).collect());
        self
    }

    /// Set an environment variable in the workers (they inherit the rest of this process's
    /// environment as it is at `build`).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Send the workers' stdout to this file (or pipe) instead of this process's stdout.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let log = std::fs::File::create("workers.log").unwrap();
    /// let pool = concur_process::ProcessPool::builder().stdout(log).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn stdout(mut self, fd: impl Into<OwnedFd>) -> Self {
        self.stdout = Some(fd.into());
        self
    }

    /// Send the workers' stderr to this file (or pipe) instead of this process's stderr.
    pub fn stderr(mut self, fd: impl Into<OwnedFd>) -> Self {
        self.stderr = Some(fd.into());
        self
    }

    /// The largest frame (encoded arguments or results of one call, plus a few bytes) either
    /// side may send (default 1 GiB; at least 64 bytes, at most 4 GiB). Larger arguments fail
    /// their task with a [`CodecError`]; a worker sending a larger frame is replaced.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame = Some(bytes);
        self
    }

    /// How long a new worker may take to greet the pool and run the initializer (default 30 s).
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = Some(timeout);
        self
    }

    /// How long [`terminate_workers`](ProcessPool::terminate_workers) waits before it sends
    /// `SIGKILL` (default 1 s).
    pub fn terminate_grace(mut self, grace: Duration) -> Self {
        self.terminate_grace = Some(grace);
        self
    }

    /// Builds the pool and starts its I/O thread; workers start with the first submissions.
    ///
    /// # Errors
    /// [`BuildError`] for a zero `max_workers` or `max_tasks_per_child`, a bad frame limit,
    /// unencodable initializer arguments, a NUL in a path, argument or environment entry, a
    /// call from a process that was started as a worker but did not call
    /// [`worker_main`](crate::worker_main), or a failure to create the pool's thread or
    /// descriptors.
    pub fn build(self) -> Result<ProcessPool, BuildError> {
        if std::env::var_os(ENV_WORKER).is_some() {
            return Err(BuildError::NotServing);
        }
        let max_workers = match self.max_workers {
            Some(0) => return Err(BuildError::ZeroWorkers),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let max_tasks_per_child = match self.max_tasks_per_child {
            Some(0) => return Err(BuildError::ZeroTasksPerChild),
            other => other.map(|n| n as u64),
        };
        let max_frame = self.max_frame.unwrap_or(DEFAULT_MAX_FRAME);
        if !(64..=u32::MAX as usize).contains(&max_frame) {
            return Err(BuildError::FrameLimit(max_frame));
        }
        let initializer = self
            .initializer
            .transpose()
            .map_err(BuildError::Initializer)?;
        let spawn = match self.launcher {
            Some(prefix) => {
                launcher_config(prefix, self.program, self.args, self.env, self.stderr)?
            }
            None => spawn_config(self.program, self.args, self.env, self.stdout, self.stderr)?,
        };
        let config = Config {
            max_workers,
            max_tasks_per_child,
            initializer,
            task_timeout: self.task_timeout,
            depth: 1 + self.prefetch.unwrap_or(2),
            max_frame,
            startup_timeout: self.startup_timeout.unwrap_or(Duration::from_secs(30)),
            terminate_grace: self.terminate_grace.unwrap_or(Duration::from_secs(1)),
            spawn,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                generation: 0,
                shutdown: false,
                broken: None,
                terminate: None,
                terminated: false,
                cancels: Vec::new(),
                cancel_answers: Vec::new(),
                io_sleeping: false,
                io_done: false,
                pids: Vec::new(),
                express: Vec::new(),
                expressed: Vec::new(),
                lending: false,
                driving: Vec::new(),
                returned: Vec::new(),
                express_timer_armed: false,
            }),
            express: self.task_timeout.is_none(),
            changed: Condvar::new(),
            wake: EventFd::new().map_err(BuildError::Io)?,
            express_timer: Timer::new().map_err(BuildError::Io)?,
            next_id: AtomicU64::new(1),
            max_frame,
        });
        let io_shared = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("concur-process-io".into())
            .spawn(move || crate::io::run(io_shared, config))
            .map_err(BuildError::Io)?;
        Ok(ProcessPool {
            shared,
            io_thread: handle.thread().id(),
            io: Mutex::new(Some(handle)),
            max_workers,
        })
    }
}

fn cstring(bytes: &[u8]) -> Result<CString, BuildError> {
    CString::new(bytes).map_err(|_| BuildError::Nul)
}

fn spawn_config(
    program: Option<PathBuf>,
    args: Option<Vec<OsString>>,
    extra_env: Vec<(OsString, OsString)>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
) -> Result<SpawnConfig, BuildError> {
    let custom_program = program.is_some();
    let (program, argv0) = match program {
        Some(path) => {
            let c = cstring(path.as_os_str().as_bytes())?;
            (c.clone(), c)
        }
        None => {
            let argv0 = std::env::args_os()
                .next()
                .unwrap_or_else(|| OsString::from("concur-process-worker"));
            (
                c"/proc/self/exe".to_owned(),
                cstring(argv0.as_os_str().as_bytes())?,
            )
        }
    };
    let mut argv = vec![argv0];
    let mut park_stdout = false;
    match args {
        Some(args) => {
            for arg in args {
                argv.push(cstring(arg.as_bytes())?);
            }
        }
        None if !custom_program => {
            if let Some(name) = registry::test_worker_name() {
                park_stdout = true;
                for arg in [name, "--exact", "--nocapture", "--test-threads=1", "-q"] {
                    argv.push(cstring(arg.as_bytes())?);
                }
            }
        }
        None => {}
    }
    let mut env = Vec::new();
    for (key, value) in std::env::vars_os() {
        if key == ENV_WORKER || extra_env.iter().any(|(k, _)| *k == key) {
            continue;
        }
        env.push(env_entry(&key, &value)?);
    }
    for (key, value) in &extra_env {
        env.push(env_entry(key, value)?);
    }
    let marker = if park_stdout {
        format!("{}:stdout5", std::process::id())
    } else {
        std::process::id().to_string()
    };
    env.push(env_entry(
        &OsString::from(ENV_WORKER),
        &OsString::from(marker),
    )?);
    Ok(SpawnConfig {
        program,
        argv,
        env,
        stdout,
        stderr,
        park_stdout,
        stdio: false,
    })
}

/// Launcher mode: `PREFIX... env CONCUR_PROCESS_WORKER=stdio PROGRAM ARGS...` over stdio.
fn launcher_config(
    prefix: Vec<OsString>,
    program: Option<PathBuf>,
    args: Option<Vec<OsString>>,
    extra_env: Vec<(OsString, OsString)>,
    stderr: Option<OwnedFd>,
) -> Result<SpawnConfig, BuildError> {
    let program = match program {
        Some(path) => path.into_os_string(),
        None => std::env::current_exe()
            .map_err(BuildError::Io)?
            .into_os_string(),
    };
    let args = match args {
        Some(args) => args,
        None => registry::test_worker_name()
            .map(|name| {
                [name, "--exact", "--nocapture", "--test-threads=1", "-q"]
                    .into_iter()
                    .map(OsString::from)
                    .collect()
            })
            .unwrap_or_default(),
    };
    let mut argv = Vec::new();
    for part in &prefix {
        argv.push(cstring(part.as_bytes())?);
    }
    argv.push(c"env".to_owned());
    argv.push(cstring(format!("{ENV_WORKER}=stdio").as_bytes())?);
    for (key, value) in &extra_env {
        argv.push(env_entry(key, value)?);
    }
    argv.push(cstring(program.as_bytes())?);
    for arg in &args {
        argv.push(cstring(arg.as_bytes())?);
    }
    let mut env = Vec::new();
    for (key, value) in std::env::vars_os() {
        if key != ENV_WORKER {
            env.push(env_entry(&key, &value)?);
        }
    }
    Ok(SpawnConfig {
        program: argv[0].clone(),
        argv,
        env,
        stdout: None,
        stderr,
        park_stdout: false,
        stdio: true,
    })
}

fn env_entry(key: &OsString, value: &OsString) -> Result<CString, BuildError> {
    let mut entry = key.as_bytes().to_vec();
    if entry.contains(&b'=') {
        return Err(BuildError::Nul);
    }
    entry.push(b'=');
    entry.extend_from_slice(value.as_bytes());
    cstring(&entry)
}
