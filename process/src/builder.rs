//! [`ProcessPoolBuilder`]: every option of a pool, checked and fixed into a
//! [`Config`](crate::shared::Config) at `build`.

use std::borrow::Borrow;
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::command::{WorkerCommand, plan};
use crate::error::{BuildError, CodecError};
use crate::frame::DEFAULT_MAX_FRAME;
use crate::launcher::Launcher;
use crate::pool::ProcessPool;
use crate::registry::Task;
use crate::shared::{Config, Initializer, Shared};
use crate::worker::ENV_WORKER;

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
    launcher: Option<Launcher>,
    groups: Vec<(usize, Launcher)>,
    env: Vec<(OsString, OsString)>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    max_frame: Option<usize>,
    startup_timeout: Option<Duration>,
    heartbeat: Option<Duration>,
    retries: u32,
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
    /// longer be cancelled with [`Future::cancel`](concur_core::Future::cancel).
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

    /// How the workers are started (default: [`Launcher::local`]): through `ssh`, `srun`,
    /// `mpirun` or any command prefix that relays stdin and stdout, so the pool can reach past
    /// one machine (DESIGN §5). A plain prefix such as `["ssh", "host"]` converts into
    /// [`Launcher::prefix`].
    ///
    /// A launched worker runs `LAUNCHER... env CONCUR_PROCESS_WORKER=stdio PROGRAM ARGS...`,
    /// where `PROGRAM` is the launcher's [program](Launcher::program), else the
    /// [worker program](ProcessPoolBuilder::worker_program), else this executable's path (which
    /// must then exist at the same path where the launcher runs it), and speaks the same frames
    /// over the launcher's stdin and stdout. The worker moves them out of the way first and points
    /// its own stdout at stderr, so tasks still print freely; whatever the launcher or a login
    /// shell prints before the worker starts is skipped. The handshake checks the remote build's
    /// fingerprint ([`HandshakeError::Fingerprint`](crate::HandshakeError::Fingerprint) names
    /// both). Death is EOF (and the launcher's exit status), reported in
    /// [`WorkerDied`](crate::WorkerDied) with the launcher's pid and the worker's host. The pool
    /// kills a launched worker with `SIGTERM` to its launcher and `SIGKILL` after
    /// [`terminate_grace`](ProcessPoolBuilder::terminate_grace). A launched worker exits when
    /// the launcher closes its stdin, and is killed at once when the pipe or socket it answers
    /// on loses its reader or its parent there dies.
    ///
    /// Arguments are passed as they are: a launcher that joins them into a shell command line
    /// (ssh does) needs them free of spaces and shell syntax. Environment entries set with
    /// [`env`](ProcessPoolBuilder::env) go on that command line too; [`stdout`](ProcessPoolBuilder::stdout)
    /// does not apply (the workers' prints go to their stderr). An empty prefix runs the worker
    /// locally in this mode.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use concur_process::{Launcher, ProcessPool};
    ///
    /// let pool = ProcessPool::builder()
    ///     .launcher(Launcher::ssh(["compute-7"]).program("/opt/app/bin/app"))
    ///     .build()
    ///     .unwrap();
    /// let same_as_before = ProcessPool::builder().launcher(["ssh", "compute-7"]);
    /// # drop((pool, same_as_before));
    /// ```
    pub fn launcher(mut self, launcher: impl Into<Launcher>) -> Self {
        self.launcher = Some(launcher.into());
        self
    }

    /// Adds `n` workers started through `launcher` to the pool, so one pool mixes local and
    /// remote workers (or several clusters). Calls go to whichever worker is free, wherever it
    /// runs.
    ///
    /// Groups add up: the pool's [`max_workers`](ProcessPool::max_workers) is the sum of the
    /// groups' `n`. The workers set by [`max_workers`](ProcessPoolBuilder::max_workers) and
    /// [`launcher`](ProcessPoolBuilder::launcher) form a group of their own when either was
    /// called; with only `add_workers`, the pool has no other workers.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use concur_process::{Launcher, ProcessPool};
    ///
    /// let pool = ProcessPool::builder()
    ///     .max_workers(2) // two on this machine
    ///     .add_workers(16, Launcher::srun())
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(pool.max_workers(), 18);
    /// ```
    pub fn add_workers(mut self, n: usize, launcher: impl Into<Launcher>) -> Self {
        self.groups.push((n, launcher.into()));
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

    /// The heartbeat interval (default: 1 s for launched workers, off for local ones;
    /// `Duration::ZERO` turns heartbeats off for all, any other value turns them on for all).
    ///
    /// With heartbeats, the pool and each worker send each other a HEARTBEAT frame every
    /// interval. A worker the pool has not heard from for twice the interval (a partition, a
    /// `SIGSTOP`ped process, an intermediary that keeps the stream open) is declared dead and
    /// killed through its launcher; its running call fails with
    /// [`WorkerDied`](crate::WorkerDied) whose [`cause`](crate::WorkerDied::cause) is
    /// [`HeartbeatLost`](crate::DeathCause::HeartbeatLost). A worker that hears nothing from the
    /// pool for twice the interval, or whose calls stream ends while a task runs, kills itself,
    /// so no worker is left behind on a remote host. Local workers do without by default: their
    /// death is seen at once (pidfd, EOF), and a hung local task is what
    /// [`task_timeout`](ProcessPoolBuilder::task_timeout) is for.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use concur_process::{Launcher, ProcessPool};
    ///
    /// let pool = ProcessPool::builder()
    ///     .launcher(Launcher::ssh(["node1"]))
    ///     .heartbeat(Duration::from_millis(250)) // a silent node is dead within 0.5 s
    ///     .build()
    ///     .unwrap();
    /// # drop(pool);
    /// ```
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = Some(interval);
        self
    }

    /// How many more times a call runs when its worker dies under it (default 0: never),
    /// only for tasks declared `#[idempotent]` in [`task!`](crate::task): the call may have run,
    /// in part or whole, on the dead worker. It goes to the front of the queue, for the next
    /// free worker (a replacement may be on the same host). When every attempt fails, the
    /// future fails with [`AttemptsFailed`](crate::AttemptsFailed), which lists each attempt's
    /// host and cause. Deaths the pool caused for the call (its timeout, its cancel) are not
    /// retried. Calls the dead worker had not started always run elsewhere, retries or not.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use concur_process::{Launcher, ProcessPool};
    ///
    /// concur_process::task! {
    ///     #[idempotent]
    ///     fn checksum(path: String) -> u64 { path.len() as u64 }
    /// }
    ///
    /// let pool = ProcessPool::builder()
    ///     .launcher(Launcher::ssh(["node1", "node2"]))
    ///     .retries(2)
    ///     .build()
    ///     .unwrap();
    /// let sum = pool.submit(checksum, "/data/a".to_owned()).unwrap();
    /// # drop(sum);
    /// ```
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
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
    /// [`worker_main`](crate::worker_main), a failure to create the pool's thread or
    /// descriptors, or, for a launcher that
    /// [ships this executable](crate::Launcher::ship_executable), a host it could not be
    /// copied to within the start-up timeout ([`BuildError::Ship`]) or a remote program named
    /// as well ([`BuildError::ShipWithProgram`]). Shipping is the one step `build` waits for.
    pub fn build(mut self) -> Result<ProcessPool, BuildError> {
        if std::env::var_os(ENV_WORKER).is_some() {
            return Err(BuildError::NotServing);
        }
        let mut groups = std::mem::take(&mut self.groups);
        if groups.is_empty() || self.max_workers.is_some() || self.launcher.is_some() {
            let n = match self.max_workers {
                Some(n) => n,
                None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            };
            groups.insert(0, (n, self.launcher.take().unwrap_or_else(Launcher::local)));
        }
        if groups.iter().any(|&(n, _)| n == 0) {
            return Err(BuildError::ZeroWorkers);
        }
        let max_workers = groups.iter().map(|&(n, _)| n).sum();
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
        let command = WorkerCommand {
            program: self.program,
            args: self.args,
            env: self.env,
            stdout: self.stdout,
            stderr: self.stderr,
        };
        if self
            .heartbeat
            .is_some_and(|d| d.as_millis() > u128::from(u32::MAX))
        {
            return Err(BuildError::Heartbeat(self.heartbeat.unwrap_or_default()));
        }
        let startup_timeout = self.startup_timeout.unwrap_or(Duration::from_secs(30));
        let groups = plan(groups, &command, self.heartbeat, startup_timeout)?;
        let config = Config {
            max_workers,
            max_tasks_per_child,
            initializer,
            task_timeout: self.task_timeout,
            depth: 1 + self.prefetch.unwrap_or(2),
            max_frame,
            startup_timeout,
            terminate_grace: self.terminate_grace.unwrap_or(Duration::from_secs(1)),
            groups,
            retries: self.retries,
        };
        let shared =
            Arc::new(Shared::new(self.task_timeout.is_none(), max_frame).map_err(BuildError::Io)?);
        ProcessPool::start(shared, config, max_workers)
    }
}
