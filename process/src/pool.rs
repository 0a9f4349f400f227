//! [`ProcessPool`]: the API side. The workers and pipes belong to the pool's I/O
//! thread (`io/`); the two share only a queue of calls and a few flags under one mutex.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::io::IoSlice;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{JoinHandle, ThreadId};

use serde::Serialize;
use serde::de::DeserializeOwned;

use concur_core::{Future, SubmitError, driven_promise, promise};

use crate::builder::ProcessPoolBuilder;
use crate::drive::Driver;
use crate::error::BuildError;
use crate::job::{CallEncoder, CancelHandle, Job, Single};
use crate::registry::Task;
use crate::shared::{Config, EXPRESS_GRACE, EXPRESS_MAX, Expressed, Shared, State};
use crate::sys;

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

    /// Starts the I/O thread of a pool built by [`ProcessPoolBuilder::build`].
    pub(crate) fn start(
        shared: Arc<Shared>,
        config: Config,
        max_workers: usize,
    ) -> Result<Self, BuildError> {
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
    /// ([`CodecError`](crate::CodecError)), the task panics ([`TaskPanicked`](crate::TaskPanicked)), its worker dies
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
        if !state.queue.is_empty() || job.frame.len() + crate::frame::AWAITED_EXTRA > EXPRESS_MAX {
            return Err(job);
        }
        let Some(lent) = state.express.pop() else {
            return Err(job);
        };
        // A fresh future cannot have been cancelled: this claims it.
        job.claim();
        // Its submitter goes on to wait for it (and drive it, if it can read), on this CPU.
        let cpu = crate::frame::this_cpu();
        crate::frame::mark_awaited(&mut job.frame, cpu, self.shared.max_frame);
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
            .field(
                "workers",
                &state
                    .pids
                    .iter()
                    .zip(&state.hosts)
                    .map(|(pid, host)| format!("{pid}@{host}"))
                    .collect::<Vec<_>>(),
            )
            .field("queued", &state.queue.len())
            .field("shutdown", &state.shutdown)
            .field("broken", &state.broken.is_some())
            .finish()
    }
}
