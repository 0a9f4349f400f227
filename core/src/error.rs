//! The errors a reader or a producer of a future can get.

use core::fmt;

use crate::Failure;

/// Why a future gave no value to a reader.
///
/// The seeds' `CancelledError`, `TimeoutError` and the task's own exception, kept distinct.
///
/// # Examples
///
/// ```
/// use concur_core::Error;
///
/// let (promise, future) = concur_core::promise::<u32>();
/// assert!(future.cancel());
/// assert!(matches!(future.try_result(), Some(Err(Error::Cancelled))));
/// assert!(promise.set_result(1).is_err()); // the producer is told it lost
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Error {
    /// The future was cancelled before it ran.
    Cancelled,
    /// The wait ended at its timeout or deadline; the future is unchanged.
    TimedOut,
    /// The task failed: it panicked, reported an error, or was abandoned.
    Failed(Failure),
    /// Waiting would never end: this thread's executor found a wait-for cycle between its
    /// running tasks (see [`BlockingHook`](crate::BlockingHook)).
    Deadlock,
    /// `into_result` was called on a handle that was not the last one, so the value could not
    /// be moved out; read it by reference with `result` instead.
    Shared,
}

impl Error {
    /// The task's failure, if that is what this is.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Error::Failed(failure) => Some(failure),
            _ => None,
        }
    }

    /// Whether the future was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Cancelled)
    }

    /// Whether the wait timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::TimedOut)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Cancelled => f.write_str("the future was cancelled"),
            Error::TimedOut => f.write_str("timed out waiting for the future"),
            Error::Failed(failure) => fmt::Display::fmt(failure, f),
            Error::Deadlock => f.write_str(
                "waiting would deadlock: the task waits on itself through running tasks",
            ),
            Error::Shared => {
                f.write_str("other handles to the future are alive; the value cannot be moved out")
            }
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Failed(failure) => Some(failure),
            _ => None,
        }
    }
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Self {
        Error::Failed(failure)
    }
}

/// A producer tried to complete a future that was already cancelled; the value comes back.
///
/// # Examples
///
/// ```
/// let (promise, future) = concur_core::promise::<String>();
/// future.cancel();
/// let refused = promise.set_result("late".to_string()).unwrap_err();
/// assert_eq!(refused.into_inner(), "late");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SetError<T> {
    value: T,
}

impl<T> SetError<T> {
    pub(crate) fn new(value: T) -> Self {
        Self { value }
    }

    /// The value that was not stored.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> fmt::Debug for SetError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SetError(..)")
    }
}

impl<T> fmt::Display for SetError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the future was cancelled before its outcome was set")
    }
}

impl<T> core::error::Error for SetError<T> {}
