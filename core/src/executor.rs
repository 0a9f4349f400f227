//! The [`Executor`] trait: what another runtime implements to hand out concur futures
//! (IPEP 19's `view.executor`).

use core::fmt;

use crate::{Failure, Future, Task};

/// Something that runs tasks: a thread pool, a process pool, another runtime's scheduler.
///
/// Implement the one method [`execute`](Executor::execute) and get [`submit`](Executor::submit)
/// and (with `std`) [`map`](Executor::map) with Python's semantics; the futures it hands out
/// work with `wait` and `as_completed` like any other. A [`Task`] is one allocation holding
/// the work and its future's cell; [`Task::run`] claims the future (skipping cancelled work),
/// catches a panic (with `std`) and completes it; if the executor drops a task without running
/// it, its future resolves as abandoned, so nothing ever hangs.
///
/// # Examples
///
/// An executor that runs every task on a fresh thread:
///
/// ```
/// use concur_core::{Executor, SubmitError, Task};
///
/// struct ThreadPerTask;
///
/// impl Executor for ThreadPerTask {
///     fn execute(&self, task: Task) -> Result<(), SubmitError> {
///         std::thread::spawn(move || task.run());
///         Ok(())
///     }
/// }
///
/// let future = ThreadPerTask.submit(|| 323u64.pow(3)).unwrap();
/// assert_eq!(*future.result().unwrap(), 33_698_267);
/// let squares: Vec<u32> = ThreadPerTask.map(|x: u32| x * x, 1..=4).map(Result::unwrap).collect();
/// assert_eq!(squares, [1, 4, 9, 16]);
/// ```
pub trait Executor {
    /// Schedules `task` to run once.
    ///
    /// # Errors
    /// [`SubmitError`] if the executor no longer accepts work; the task is dropped.
    fn execute(&self, task: Task) -> Result<(), SubmitError>;

    /// Schedules `work` and returns the future of its result (Python's `submit`).
    ///
    /// A panic in `work` becomes the future's [`Failure`] (with `std`).
    ///
    /// # Errors
    /// [`SubmitError`] if the executor was shut down or is broken.
    fn submit<F, T>(&self, work: F) -> Result<Future<T>, SubmitError>
    where
        Self: Sized,
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (task, future) = Task::new(work);
        self.execute(task)?;
        Ok(future)
    }

    /// Applies `f` to every input concurrently and yields the results in input order (Python's
    /// `map`); see [`Map`](crate::Map) for its semantics.
    #[cfg(feature = "std")]
    fn map<I, F, T>(&self, f: F, inputs: I) -> crate::Map<'_, Self, I::IntoIter, F, T>
    where
        Self: Sized,
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        crate::Map::new(self, f, inputs.into_iter(), crate::MapOptions::default())
    }

    /// [`map`](Executor::map) with a timeout and an in-flight window.
    #[cfg(feature = "std")]
    fn map_with<I, F, T>(
        &self,
        f: F,
        inputs: I,
        options: crate::MapOptions,
    ) -> crate::Map<'_, Self, I::IntoIter, F, T>
    where
        Self: Sized,
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        crate::Map::new(self, f, inputs.into_iter(), options)
    }
}

impl<E: Executor + ?Sized> Executor for &E {
    fn execute(&self, task: Task) -> Result<(), SubmitError> {
        (**self).execute(task)
    }
}

impl<E: Executor + ?Sized> Executor for alloc::sync::Arc<E> {
    fn execute(&self, task: Task) -> Result<(), SubmitError> {
        (**self).execute(task)
    }
}

/// Why an executor refused a task.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SubmitError {
    /// The executor was shut down (Python raises `RuntimeError`).
    Shutdown,
    /// The executor is broken (Python's `BrokenExecutor`), for the reason given.
    Broken(Failure),
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Shutdown => f.write_str("cannot submit after shutdown"),
            SubmitError::Broken(reason) => write!(f, "the executor is broken: {reason}"),
        }
    }
}

impl core::error::Error for SubmitError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            SubmitError::Broken(reason) => Some(reason),
            SubmitError::Shutdown => None,
        }
    }
}
