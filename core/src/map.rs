//! [`Map`]: Python's `Executor.map` as an iterator.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::num::NonZeroUsize;
use std::time::{Duration, Instant};

use crate::{Error, Executor, Failure, Future, promise};

/// Options for [`Executor::map_with`].
///
/// # Examples
///
/// ```
/// use std::num::NonZeroUsize;
/// use std::time::Duration;
/// use concur_core::MapOptions;
///
/// let options = MapOptions::new()
///     .timeout(Duration::from_secs(5))
///     .in_flight(NonZeroUsize::new(64).unwrap());
/// # let _ = options;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct MapOptions {
    timeout: Option<Duration>,
    in_flight: Option<NonZeroUsize>,
}

impl MapOptions {
    /// No timeout, every input submitted at once (Python's behaviour).
    pub fn new() -> Self {
        Self::default()
    }

    /// One deadline for the whole iteration, counted from the `map` call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// At most `window` tasks submitted but not yet yielded, so a long or infinite input is
    /// never drained eagerly.
    pub fn in_flight(mut self, window: NonZeroUsize) -> Self {
        self.in_flight = Some(window);
        self
    }
}

/// The results of [`Executor::map`], in input order.
///
/// - Each item is that input's result; a failed (or panicking) task yields its
///   [`Error::Failed`] and iteration goes on.
/// - With a timeout, one deadline counts from the `map` call. When it passes, the future being
///   waited on and every one not yet yielded are cancelled, the iterator yields
///   [`Error::TimedOut`] once, and then ends.
/// - **Work starts at the call.** The `map` call itself submits every input (without an
///   in-flight window) or the first window's worth (with one); the rest of a windowed input is
///   pulled and submitted as results are yielded, keeping at most the window in flight.
/// - A submission the executor refuses yields that refusal as the item's failure.
/// - **What a drop cancels** (Python's rule, bpo-11777): an iterator dropped before its first
///   [`next`](Iterator::next) cancels nothing: every call the `map` call submitted runs to
///   completion and its result is dropped (inputs beyond the first window are never
///   submitted). Once advanced, dropping it cancels every task submitted and not yet started
///   (as closing Python's `map` generator does); tasks already running finish, and their
///   results are dropped.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use concur_core::{Executor, SubmitError, Task};
///
/// /// Runs each task as it is submitted.
/// struct RunAtOnce;
/// impl Executor for RunAtOnce {
///     fn execute(&self, task: Task) -> Result<(), SubmitError> {
///         task.run();
///         Ok(())
///     }
/// }
///
/// // Relaxed: the calls run on this thread, inside `map`.
/// let ran = Arc::new(AtomicUsize::new(0));
/// let counter = Arc::clone(&ran);
/// let map = RunAtOnce.map(move |_| counter.fetch_add(1, Ordering::Relaxed), 0..3);
/// // The `map` call submitted all three; dropped unread, nothing was cancelled.
/// drop(map);
/// assert_eq!(ran.load(Ordering::Relaxed), 3);
/// ```
#[must_use = "a map's results are only seen by iterating it (dropped unread, its calls still run)"]
pub struct Map<'e, E: ?Sized, I, F, T> {
    executor: &'e E,
    f: Arc<F>,
    inputs: I,
    pending: VecDeque<Future<T>>,
    deadline: Option<Instant>,
    window: Option<NonZeroUsize>,
    ended: bool,
    /// `next` was called once: from then on a drop cancels what has not started.
    advanced: bool,
}

impl<'e, E, I, F, T> Map<'e, E, I, F, T>
where
    E: Executor,
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    pub(crate) fn new(executor: &'e E, f: F, inputs: I, options: MapOptions) -> Self {
        let deadline = options
            .timeout
            .map(|t| Instant::now().checked_add(t).unwrap_or_else(far_future));
        let mut map = Self {
            executor,
            f: Arc::new(f),
            inputs,
            pending: VecDeque::new(),
            deadline,
            window: options.in_flight,
            ended: false,
            advanced: false,
        };
        map.refill();
        map
    }

    /// Submits inputs until the window is full or the inputs run out.
    fn refill(&mut self) {
        let limit = self.window.map_or(usize::MAX, NonZeroUsize::get);
        while self.pending.len() < limit {
            let Some(input) = self.inputs.next() else {
                break;
            };
            let f = Arc::clone(&self.f);
            let future = self
                .executor
                .submit(move || f(input))
                .unwrap_or_else(refused);
            self.pending.push_back(future);
        }
    }
}

/// A future already failed with the executor's refusal, so the item keeps its place.
fn refused<T>(error: crate::SubmitError) -> Future<T> {
    let (promise, future) = promise();
    let _ = promise.set_error(Failure::from_error(error));
    future
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(60 * 60 * 24 * 365 * 100)
}

impl<E, I, F, T> Iterator for Map<'_, E, I, F, T>
where
    E: Executor,
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    type Item = Result<T, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.advanced = true;
        if self.ended {
            return None;
        }
        let Some(future) = self.pending.pop_front() else {
            self.ended = true;
            return None;
        };
        if let Some(deadline) = self.deadline {
            if !future.wait_deadline(deadline) {
                future.cancel();
                self.cancel_all();
                self.ended = true;
                return Some(Err(Error::TimedOut));
            }
        }
        let item = future.into_result();
        self.refill();
        Some(item)
    }
}

impl<E: ?Sized, I, F, T> Map<'_, E, I, F, T> {
    /// Cancels every task submitted but not yet yielded (those already running finish).
    fn cancel_all(&mut self) {
        for future in self.pending.drain(..) {
            future.cancel();
        }
    }
}

impl<E: ?Sized, I, F, T> Drop for Map<'_, E, I, F, T> {
    /// Cancels what has not started, but only once advanced (see [`Map`]).
    fn drop(&mut self) {
        if self.advanced {
            self.cancel_all();
        }
    }
}
