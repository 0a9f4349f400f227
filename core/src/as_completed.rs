//! [`as_completed`]: iterate over futures as they complete (Python's
//! `concurrent.futures.as_completed`).

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;
use std::time::{Duration, Instant};

use crate::hook::Needs;
use crate::wait_set::{Mode, WaitSet};
use crate::waitable::Waitable;

/// Yields `futures` as they complete: those already done first, then in completion order, each
/// distinct future once (Python's `as_completed(fs, timeout)`).
///
/// The timeout is one deadline counted from this call. When it passes, the iterator yields one
/// [`AsCompletedError::TimedOut`] saying how many of how many distinct futures are unfinished,
/// then ends
/// (`Duration::ZERO` still yields the already-done ones first). The iterator sees futures
/// completed while the caller is iterating, holds no reference to a future once it has yielded
/// it, and dropping it early unregisters everything. A cancelled future counts as completed the
/// moment it is cancelled.
///
/// A step that would block asks this thread's [`BlockingHook`](crate::BlockingHook) first
/// (as [`wait`](crate::wait) with `FirstCompleted` does): if every unfinished future waits,
/// through running tasks, on the task iterating (a thread pool's worker), the iterator
/// yields one [`AsCompletedError::Deadlock`] instead of hanging, then ends.
///
/// Cost: one allocation for the wait set (plus collecting `futures`), O(N) to register, O(1)
/// and at most one wake per completion, O(N) to leave.
///
/// # Examples
///
/// The seeds' URL example, with promises standing in for downloads:
///
/// ```
/// use std::collections::HashMap;
/// use concur_core::{as_completed, promise, Future};
///
/// let mut future_to_url: HashMap<Future<usize>, &str> = HashMap::new();
/// let mut promises = Vec::new();
/// for url in ["http://a.example/", "http://b.example/"] {
///     let (promise, future) = promise::<usize>();
///     future_to_url.insert(future, url);
///     promises.push(promise);
/// }
/// let fs: Vec<Future<usize>> = future_to_url.keys().cloned().collect();
/// std::thread::spawn(move || for (i, p) in promises.into_iter().enumerate() { p.set_result(i).unwrap() });
/// for future in as_completed(fs, None) {
///     let future = future.unwrap();
///     println!("{} page is {} bytes", future_to_url[&future], future.result().unwrap());
/// }
/// ```
pub fn as_completed<I>(futures: I, timeout: Option<Duration>) -> AsCompleted<I::Item>
where
    I: IntoIterator,
    I::Item: Waitable,
{
    let deadline = timeout.map(crate::blocking::deadline_after);
    let mut futures: Vec<I::Item> = futures.into_iter().collect();
    crate::wait::dedup(&mut futures);
    let total = futures.len();
    let items: Vec<Option<I::Item>> = futures.into_iter().map(Some).collect();
    let mut ready = VecDeque::new();
    let set = register(&items, &mut ready);
    AsCompleted {
        items,
        set,
        ready,
        deadline,
        unfinished: total,
        total,
        ended: false,
    }
}

/// Queues the already-done futures and links a node for every other one (no set if none).
fn register<F: Waitable>(items: &[Option<F>], ready: &mut VecDeque<usize>) -> Option<WaitSet> {
    let futures = || {
        items
            .iter()
            .enumerate()
            .filter_map(|(i, f)| Some((i, f.as_ref()?)))
    };
    ready.extend(futures().filter(|(_, f)| f.is_done()).map(|(i, _)| i));
    if ready.len() == items.len() {
        return None;
    }
    let set = WaitSet::new(Mode::AsCompleted, items.len());
    let mut queued = ready.iter().copied().peekable();
    for (index, future) in futures() {
        if queued.next_if_eq(&index).is_none() {
            // Not queued: link it (if it completed since the scan, it goes to the ready stack).
            if set.register(index, future.header()) {
                // SAFETY: `future` keeps the cell alive; its pointer has the whole cell's
                // provenance.
                unsafe { crate::header::linked_passive_waiter(future.raw_header()) };
            }
        }
    }
    Some(set)
}

/// The iterator returned by [`as_completed`].
pub struct AsCompleted<F: Waitable> {
    /// Each distinct future until it is yielded.
    items: Vec<Option<F>>,
    set: Option<WaitSet>,
    /// Indices of completed futures not yet yielded, oldest first.
    ready: VecDeque<usize>,
    deadline: Option<Instant>,
    unfinished: usize,
    total: usize,
    ended: bool,
}

impl<F: Waitable> AsCompleted<F> {
    /// The next completed future, without blocking.
    fn next_ready(&mut self) -> Option<F> {
        loop {
            if let Some(index) = self.ready.pop_front() {
                if let Some(future) = self.items[index].take() {
                    self.unfinished -= 1;
                    return Some(future);
                }
                continue;
            }
            let set = self.set.as_ref()?;
            if !set.take_ready(&mut self.ready) {
                return None;
            }
        }
    }
}

impl<F: Waitable> Iterator for AsCompleted<F> {
    type Item = Result<F, AsCompletedError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        loop {
            if let Some(future) = self.next_ready() {
                return Some(Ok(future));
            }
            if self.unfinished == 0 {
                self.ended = true;
                return None;
            }
            let set = self.set.as_ref()?;
            let items = &self.items;
            let unfinished = || crate::wait::unfinished(items.iter().flatten());
            let Ok(_after_block) = crate::hook::before_block_on_many(Needs::Any, unfinished) else {
                if set.has_ready() {
                    continue; // one finished as the hook looked
                }
                self.ended = true;
                return Some(Err(AsCompletedError::Deadlock {
                    unfinished: self.unfinished,
                    total: self.total,
                }));
            };
            if !set.block_until(WaitSet::has_ready, self.deadline) {
                self.ended = true;
                return Some(Err(AsCompletedError::TimedOut(TimeoutError {
                    unfinished: self.unfinished,
                    total: self.total,
                })));
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.unfinished + 1))
    }
}

impl<F: Waitable> Drop for AsCompleted<F> {
    fn drop(&mut self) {
        if let Some(set) = self.set.take() {
            let items = &self.items;
            set.leave(|index| items[index].as_ref().map(|f| f.header()));
        }
    }
}

#[cfg(feature = "stream")]
impl<F: Waitable + Unpin> futures_core::Stream for AsCompleted<F> {
    type Item = Result<F, AsCompletedError>;

    /// Yields like the iterator; the timeout is not enforced here (wrap the stream in your
    /// runtime's timeout).
    fn poll_next(
        self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
    ) -> core::task::Poll<Option<Self::Item>> {
        use core::task::Poll;
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        if let Some(future) = this.next_ready() {
            return Poll::Ready(Some(Ok(future)));
        }
        let Some(set) = this.set.as_ref().filter(|_| this.unfinished > 0) else {
            this.ended = true;
            return Poll::Ready(None);
        };
        set.register_waker(cx.waker());
        match this.next_ready() {
            Some(future) => Poll::Ready(Some(Ok(future))),
            None => Poll::Pending,
        }
    }
}

/// `as_completed`'s deadline passed with futures unfinished (Python's `TimeoutError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeoutError {
    /// Distinct futures not yet yielded.
    pub unfinished: usize,
    /// Distinct futures in all.
    pub total: usize,
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (of {}) futures unfinished",
            self.unfinished, self.total
        )
    }
}

impl core::error::Error for TimeoutError {}

/// Why [`as_completed`] stopped before yielding every future.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use concur_core::{as_completed, promise};
///
/// let (_pending, future) = promise::<u8>();
/// let error = as_completed([&future], Some(Duration::ZERO)).next().unwrap().unwrap_err();
/// assert!(error.is_timeout() && !error.is_deadlock());
/// assert_eq!((error.unfinished(), error.total()), (1, 1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AsCompletedError {
    /// Its deadline passed (Python's `TimeoutError`).
    TimedOut(TimeoutError),
    /// Waiting for the next one would never end: every unfinished future waits, through
    /// running tasks, on the task that iterates (see [`Waited::is_deadlock`](crate::Waited::is_deadlock)).
    Deadlock {
        /// Distinct futures not yet yielded.
        unfinished: usize,
        /// Distinct futures in all.
        total: usize,
    },
}

impl AsCompletedError {
    /// Distinct futures not yet yielded.
    pub fn unfinished(&self) -> usize {
        match *self {
            AsCompletedError::TimedOut(t) => t.unfinished,
            AsCompletedError::Deadlock { unfinished, .. } => unfinished,
        }
    }

    /// Distinct futures in all.
    pub fn total(&self) -> usize {
        match *self {
            AsCompletedError::TimedOut(t) => t.total,
            AsCompletedError::Deadlock { total, .. } => total,
        }
    }

    /// Whether the deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, AsCompletedError::TimedOut(_))
    }

    /// Whether it stopped because waiting would never end.
    pub fn is_deadlock(&self) -> bool {
        matches!(self, AsCompletedError::Deadlock { .. })
    }
}

impl fmt::Display for AsCompletedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsCompletedError::TimedOut(timeout) => fmt::Display::fmt(timeout, f),
            AsCompletedError::Deadlock { unfinished, total } => write!(
                f,
                "waiting would deadlock: {unfinished} (of {total}) futures wait on this task"
            ),
        }
    }
}

impl core::error::Error for AsCompletedError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            AsCompletedError::TimedOut(timeout) => Some(timeout),
            AsCompletedError::Deadlock { .. } => None,
        }
    }
}
