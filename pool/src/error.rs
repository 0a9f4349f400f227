//! The pool's errors: a rejected configuration, and why a pool is broken.

use core::fmt;
use std::error::Error as StdError;

use concur_core::Failure;

/// A [`Builder`](crate::Builder) setting that cannot make a pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildError {
    kind: BuildErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum BuildErrorKind {
    ZeroWorkers,
    TooManyWorkers(usize),
    NulInPrefix,
}

impl BuildError {
    pub(crate) fn zero_workers() -> Self {
        Self {
            kind: BuildErrorKind::ZeroWorkers,
        }
    }

    pub(crate) fn too_many_workers(n: usize) -> Self {
        Self {
            kind: BuildErrorKind::TooManyWorkers(n),
        }
    }

    pub(crate) fn nul_in_prefix() -> Self {
        Self {
            kind: BuildErrorKind::NulInPrefix,
        }
    }

    /// Whether `max_workers` was 0 (Python raises `ValueError`).
    pub fn is_zero_workers(&self) -> bool {
        self.kind == BuildErrorKind::ZeroWorkers
    }

    /// Whether `max_workers` was above [`MAX_WORKERS`](crate::MAX_WORKERS).
    pub fn is_too_many_workers(&self) -> bool {
        matches!(self.kind, BuildErrorKind::TooManyWorkers(_))
    }

    /// Whether `thread_name_prefix` contained a NUL byte (threads cannot be named so).
    pub fn is_invalid_prefix(&self) -> bool {
        self.kind == BuildErrorKind::NulInPrefix
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            BuildErrorKind::ZeroWorkers => f.write_str("max_workers must be greater than 0"),
            BuildErrorKind::TooManyWorkers(n) => write!(
                f,
                "max_workers is {n}, more than the {} a pool supports",
                crate::MAX_WORKERS
            ),
            BuildErrorKind::NulInPrefix => {
                f.write_str("thread_name_prefix must not contain a NUL byte")
            }
        }
    }
}

impl StdError for BuildError {}

/// Why a pool is broken (Python's `BrokenThreadPool`): a worker's initializer panicked, or no
/// worker thread could be started.
///
/// Once broken, a pool refuses every submit with
/// [`SubmitError::Broken`](concur_core::SubmitError::Broken), and every task still queued
/// resolves with an [`Error::Failed`](concur_core::Error::Failed); both carry a [`Failure`] that
/// downcasts to this type.
///
/// # Examples
///
/// ```
/// use concur_core::SubmitError;
/// use concur_pool::{BrokenThreadPool, ThreadPool};
///
/// let pool = ThreadPool::builder()
///     .max_workers(1)
///     .initializer(|| panic!("no database"))
///     .build()
///     .unwrap();
/// // The first submit starts the first worker, whose initializer breaks the pool: the task
/// // queued before that fails with the pool's error, and every later submit is refused.
/// let queued = pool.submit(|| 1).unwrap();
/// let failure = queued.error().unwrap().unwrap();
/// assert!(failure.downcast_ref::<BrokenThreadPool>().is_some());
/// match pool.submit(|| 2) {
///     Err(SubmitError::Broken(failure)) => {
///         let broken = failure.downcast_ref::<BrokenThreadPool>().unwrap();
///         assert!(broken.is_initializer_failure());
///         assert_eq!(broken.cause().panic_message(), Some("no database"));
///     }
///     other => panic!("expected a broken pool, got {other:?}"),
/// }
/// ```
#[derive(Clone, Debug)]
pub struct BrokenThreadPool {
    kind: BrokenKind,
    cause: Failure,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BrokenKind {
    Initializer,
    Spawn,
}

impl BrokenThreadPool {
    pub(crate) fn initializer(cause: Failure) -> Self {
        Self {
            kind: BrokenKind::Initializer,
            cause,
        }
    }

    pub(crate) fn spawn(cause: Failure) -> Self {
        Self {
            kind: BrokenKind::Spawn,
            cause,
        }
    }

    /// Whether a worker's initializer failed (it panicked).
    pub fn is_initializer_failure(&self) -> bool {
        self.kind == BrokenKind::Initializer
    }

    /// Whether the pool could not start any worker thread.
    pub fn is_spawn_failure(&self) -> bool {
        self.kind == BrokenKind::Spawn
    }

    /// The underlying failure: the initializer's panic, or the thread-spawn error.
    pub fn cause(&self) -> &Failure {
        &self.cause
    }
}

impl fmt::Display for BrokenThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            BrokenKind::Initializer => write!(
                f,
                "a thread initializer failed, the thread pool is not usable anymore: {}",
                self.cause
            ),
            BrokenKind::Spawn => write!(
                f,
                "no worker thread could be started, the thread pool is not usable anymore: {}",
                self.cause
            ),
        }
    }
}

impl StdError for BrokenThreadPool {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.cause)
    }
}
