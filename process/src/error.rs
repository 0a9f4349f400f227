//! The typed errors of the process pool.
//!
//! A task's future fails with a [`concur_core::Failure`] wrapping one of these; get it back with
//! `failure.downcast_ref::<WorkerDied>()` (and so on).

use core::fmt;
use std::time::Duration;

use crate::frame::FrameError;
use crate::sys::signal_name;

/// How a worker process ended.
///
/// # Examples
///
/// ```
/// use concur_process::ExitStatus;
///
/// assert_eq!(ExitStatus::Signaled(9).to_string(), "killed by SIGKILL (9)");
/// assert_eq!(ExitStatus::Exited(3).code(), Some(3));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExitStatus {
    /// It exited with this code (`std::process::exit`, or returning from `main`).
    Exited(i32),
    /// It was killed by this signal (`SIGKILL` from the OOM killer, `SIGABRT` from an abort,
    /// `SIGSEGV`, ...).
    Signaled(i32),
    /// The status could not be collected (another part of the program reaped the process).
    Unknown,
}

impl ExitStatus {
    /// The exit code, if it exited.
    pub fn code(&self) -> Option<i32> {
        match self {
            ExitStatus::Exited(code) => Some(*code),
            _ => None,
        }
    }

    /// The signal, if it was killed by one.
    pub fn signal(&self) -> Option<i32> {
        match self {
            ExitStatus::Signaled(signal) => Some(*signal),
            _ => None,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Exited(code) => write!(f, "exited with code {code}"),
            ExitStatus::Signaled(signal) => match signal_name(*signal) {
                Some(name) => write!(f, "killed by {name} ({signal})"),
                None => write!(f, "killed by signal {signal}"),
            },
            ExitStatus::Unknown => f.write_str("ended with an unknown status"),
        }
    }
}

/// The worker running this task died: it was killed, crashed, aborted or called
/// `std::process::exit`. Only the task it was running gets this error; queued work runs on a
/// replacement.
///
/// # Examples
///
/// ```no_run
/// # concur_process::task! { fn crash() { std::process::abort() } }
/// use concur_process::{ExitStatus, WorkerDied};
///
/// let pool = concur_process::ProcessPool::builder().build().unwrap();
/// let failure = pool.submit(crash, ()).unwrap().error().unwrap().unwrap();
/// let died = failure.downcast_ref::<WorkerDied>().unwrap();
/// assert_eq!(died.status, ExitStatus::Signaled(6)); // SIGABRT
/// println!("{died}"); // worker 4242 on host1 died while running the task: killed by SIGABRT (6)
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerDied {
    /// The worker's process id: for a launched worker, its launcher's (`ssh`, `srun`, ...),
    /// the process this pool started.
    pub pid: u32,
    /// How it ended (for a launched worker, how its launcher ended).
    pub status: ExitStatus,
    /// Where it ran: this machine's host name for a local worker, the host given to
    /// [`Launcher::ssh`](crate::Launcher::ssh), the Slurm node, or the launcher's command line.
    pub host: String,
    /// How the pool knew: the process ended by itself, or its link fell silent.
    pub cause: DeathCause,
}

/// How the pool learned that a worker died ([`WorkerDied::cause`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeathCause {
    /// The worker (or its launcher) ended: `status` says how.
    Ended,
    /// Nothing came from the worker for this long, past twice its heartbeat interval, so the
    /// pool declared it dead and killed it through its launcher (`status` then says how the
    /// launcher ended).
    HeartbeatLost {
        /// How long the link was silent when the pool gave up on it.
        silent: Duration,
    },
}

impl fmt::Display for WorkerDied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cause {
            DeathCause::Ended => write!(
                f,
                "worker {} on {} died while running the task: {}",
                self.pid, self.host, self.status
            ),
            DeathCause::HeartbeatLost { silent } => write!(
                f,
                "worker {} on {} declared dead while running the task: heartbeat lost (its link \
                 silent for {silent:.1?}), then killed by the pool: {}",
                self.pid, self.host, self.status
            ),
        }
    }
}

impl std::error::Error for WorkerDied {}

/// Every attempt at an idempotent call failed because its worker died
/// ([`retries`](crate::ProcessPoolBuilder::retries)): one [`WorkerDied`] per attempt, in order.
///
/// # Examples
///
/// ```no_run
/// # concur_process::task! { #[idempotent] fn crash() { std::process::abort() } }
/// use concur_process::AttemptsFailed;
///
/// let pool = concur_process::ProcessPool::builder().retries(2).build().unwrap();
/// let failure = pool.submit(crash, ()).unwrap().error().unwrap().unwrap();
/// let failed = failure.downcast_ref::<AttemptsFailed>().unwrap();
/// assert_eq!(failed.attempts.len(), 3);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttemptsFailed {
    /// How each attempt's worker died, first to last.
    pub attempts: Vec<WorkerDied>,
}

impl fmt::Display for AttemptsFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "all {} attempts failed:", self.attempts.len())?;
        for (n, died) in self.attempts.iter().enumerate() {
            write!(f, " [{}] {died};", n + 1)?;
        }
        Ok(())
    }
}

impl std::error::Error for AttemptsFailed {}

/// The task panicked in its worker; the worker survives.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskPanicked {
    /// The panic message, if the payload was a string (as with `panic!`).
    pub message: Option<String>,
    /// Where it panicked, as `file:line:column`.
    pub location: Option<String>,
}

impl fmt::Display for TaskPanicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task panicked")?;
        if let Some(location) = &self.location {
            write!(f, " at {location}")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TaskPanicked {}

/// The task ran longer than the pool's task timeout; its worker was killed and replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskTimedOut {
    /// The limit it exceeded.
    pub timeout: Duration,
    /// The worker that was killed.
    pub pid: u32,
}

impl fmt::Display for TaskTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "task exceeded its timeout of {:?}; worker {} was killed",
            self.timeout, self.pid
        )
    }
}

impl std::error::Error for TaskTimedOut {}

/// The running task was cancelled by [`ProcessPool::cancel`](crate::ProcessPool::cancel),
/// which killed its worker.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskKilled {
    /// The worker that was killed.
    pub pid: u32,
}

impl fmt::Display for TaskKilled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "running task cancelled; worker {} was killed", self.pid)
    }
}

impl std::error::Error for TaskKilled {}

/// The worker program has no task registered under this name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnknownTask {
    /// The name that was asked for.
    pub name: String,
}

impl fmt::Display for UnknownTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the worker has no task named `{}`", self.name)
    }
}

impl std::error::Error for UnknownTask {}

/// The worker program's task of this name has other argument or result types (it was built
/// from other sources).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignatureMismatch {
    /// The task's name.
    pub name: String,
}

impl fmt::Display for SignatureMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the worker's task `{}` has other argument or result types",
            self.name
        )
    }
}

impl std::error::Error for SignatureMismatch {}

/// Which value failed to (de)serialize.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CodecStage {
    /// The parent could not encode the arguments.
    EncodeArgs,
    /// The worker could not decode the arguments.
    DecodeArgs,
    /// The worker could not encode the result.
    EncodeResult,
    /// The parent could not decode the result.
    DecodeResult,
    /// The encoded arguments or result exceed the frame limit.
    TooLarge,
}

/// The task's arguments or result could not be serialized; only that task fails.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CodecError {
    /// What failed.
    pub stage: CodecStage,
    /// The serializer's message.
    pub message: String,
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.stage {
            CodecStage::EncodeArgs => "could not encode the task's arguments",
            CodecStage::DecodeArgs => "the worker could not decode the task's arguments",
            CodecStage::EncodeResult => "the worker could not encode the task's result",
            CodecStage::DecodeResult => "could not decode the task's result",
            CodecStage::TooLarge => "the task's arguments or result exceed the frame limit",
        };
        write!(f, "{what}: {}", self.message)
    }
}

impl std::error::Error for CodecError {}

/// A worker sent bytes that are not a valid frame (or not the frame expected); it was killed and
/// replaced, and the task it was running fails with this error.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProtocolError {
    /// The worker's process id.
    pub pid: u32,
    /// What was wrong.
    pub error: FrameError,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "worker {} broke the protocol: {}", self.pid, self.error)
    }
}

impl std::error::Error for ProtocolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// A new worker's greeting did not match this pool.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// It speaks another protocol version.
    Version {
        /// Ours.
        expected: u8,
        /// The worker's.
        found: u8,
    },
    /// It was built from another version of this crate or for another platform.
    Fingerprint {
        /// Ours.
        expected: u64,
        /// The worker's.
        found: u64,
    },
    /// Its first frame was not a greeting.
    Malformed(FrameError),
    /// It ended before greeting: the program probably does not call
    /// [`worker_main`](crate::worker_main) first thing in `main` (or, in a test binary, lacks
    /// [`test_worker!`](crate::test_worker)).
    Exited(ExitStatus),
    /// It did not greet within the start-up timeout.
    NoGreeting(Duration),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Version { expected, found } => write!(
                f,
                "worker speaks protocol version {found}, this pool speaks {expected}"
            ),
            HandshakeError::Fingerprint { expected, found } => write!(
                f,
                "worker build fingerprint {found:#018x} does not match this pool's {expected:#018x}"
            ),
            HandshakeError::Malformed(error) => write!(f, "bad worker greeting: {error}"),
            HandshakeError::Exited(status) => write!(
                f,
                "worker {status} before greeting the pool (does its `main` call \
                 `concur_process::worker_main()` first, or its test crate `test_worker!()`?)"
            ),
            HandshakeError::NoGreeting(after) => {
                write!(f, "worker did not greet the pool within {after:?}")
            }
        }
    }
}

impl std::error::Error for HandshakeError {}

/// The pool's initializer failed in a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InitializerFailed {
    /// Why, as reported by the worker.
    pub message: String,
}

impl fmt::Display for InitializerFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the worker initializer failed: {}", self.message)
    }
}

impl std::error::Error for InitializerFailed {}

/// The pool is broken (Python's `BrokenProcessPool`): every pending task and every later
/// submission fail. The cause is the error that broke it ([`InitializerFailed`],
/// [`HandshakeError`], [`SpawnFailed`]; for three workers in a row that exited or crashed by
/// themselves before becoming ready, the last one's [`HandshakeError::Exited`]). Workers killed
/// from outside while starting never break a pool.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BrokenProcessPool {
    /// Why.
    pub cause: concur_core::Failure,
}

impl fmt::Display for BrokenProcessPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the process pool is broken: {}", self.cause)
    }
}

impl std::error::Error for BrokenProcessPool {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

/// A worker process could not be started.
#[derive(Debug)]
#[non_exhaustive]
pub struct SpawnFailed {
    /// The OS error.
    pub error: std::io::Error,
}

impl fmt::Display for SpawnFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not start a worker process: {}", self.error)
    }
}

impl std::error::Error for SpawnFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The pool's workers were stopped by
/// [`terminate_workers`](crate::ProcessPool::terminate_workers) or
/// [`kill_workers`](crate::ProcessPool::kill_workers) before this task finished.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Terminated {
    /// The signal sent to the workers.
    pub signal: i32,
}

impl fmt::Display for Terminated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match signal_name(self.signal) {
            Some(name) => write!(f, "the pool's workers were stopped with {name}"),
            None => write!(
                f,
                "the pool's workers were stopped with signal {}",
                self.signal
            ),
        }
    }
}

impl std::error::Error for Terminated {}

/// Why [`ProcessPoolBuilder::build`](crate::ProcessPoolBuilder::build) failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// `max_workers(0)`: a pool needs at least one worker.
    ZeroWorkers,
    /// `max_tasks_per_child(0)`: a worker must be allowed at least one task.
    ZeroTasksPerChild,
    /// The frame limit is below the minimum (64 bytes) or above 4 GiB.
    FrameLimit(usize),
    /// The heartbeat interval does not fit the frame's 32-bit milliseconds (about 49 days).
    Heartbeat(Duration),
    /// A resource of the pool (pipe, thread, eventfd) could not be created.
    Io(std::io::Error),
    /// A path, argument or environment entry contains a NUL byte.
    Nul,
    /// The initializer's arguments could not be encoded.
    Initializer(CodecError),
    /// This process was started as a pool worker but builds a pool instead of serving: its
    /// `main` does not call [`worker_main`](crate::worker_main) first (building here would start
    /// workers recursively).
    NotServing,
    /// [`ship_executable`](crate::Launcher::ship_executable) could not put this executable on a
    /// host.
    Ship(ShipError),
    /// A launcher both ships this executable and names a remote
    /// [`program`](crate::Launcher::program): only one can be the worker.
    ShipWithProgram,
}

/// This executable could not be shipped to a host
/// ([`ship_executable`](crate::Launcher::ship_executable)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShipError {
    /// The host, as the launcher names it.
    pub host: String,
    /// What went wrong, with ssh's stderr.
    pub reason: String,
}

impl fmt::Display for ShipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not ship this executable to {}: {}",
            self.host, self.reason
        )
    }
}

impl std::error::Error for ShipError {}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroWorkers => f.write_str("max_workers must be at least 1"),
            BuildError::ZeroTasksPerChild => f.write_str("max_tasks_per_child must be at least 1"),
            BuildError::FrameLimit(limit) => {
                write!(f, "frame limit {limit} is outside 64 bytes ..= 4 GiB")
            }
            BuildError::Heartbeat(interval) => {
                write!(f, "heartbeat interval {interval:?} exceeds 2^32 ms")
            }
            BuildError::Io(error) => write!(f, "could not set up the pool: {error}"),
            BuildError::Nul => {
                f.write_str("the worker program, an argument or an environment entry contains NUL")
            }
            BuildError::Initializer(error) => write!(f, "bad initializer arguments: {error}"),
            BuildError::NotServing => f.write_str(
                "this process was started as a pool worker but did not call \
                 concur_process::worker_main() first thing in main",
            ),
            BuildError::Ship(error) => error.fmt(f),
            BuildError::ShipWithProgram => {
                f.write_str("a launcher cannot both ship this executable and name a remote program")
            }
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Io(error) => Some(error),
            BuildError::Ship(error) => Some(error),
            _ => None,
        }
    }
}
