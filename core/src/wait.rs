//! [`wait`]: block until some, any failing, or all of a set of futures are done (Python's
//! `concurrent.futures.wait`).

use alloc::vec::Vec;
use std::time::{Duration, Instant};

use crate::hook::Needs;
use crate::wait_set::{Mode, WaitSet};
use crate::waitable::{Waitable, key};

/// When [`wait`] returns (Python's `return_when` constants).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum ReturnWhen {
    /// When any future finishes or is cancelled (`FIRST_COMPLETED`).
    FirstCompleted,
    /// When any future finishes with a failure; like `AllCompleted` if none does
    /// (`FIRST_EXCEPTION`). A cancellation is not a failure.
    FirstException,
    /// When every future is done (`ALL_COMPLETED`).
    AllCompleted,
}

/// The futures split into done and not done when [`wait`] returned (Python's named tuple of
/// sets). Each distinct future appears once; the order within each part is unspecified.
#[derive(Debug)]
pub struct Waited<F> {
    futures: Vec<F>,
    done: usize,
    deadlock: bool,
}

impl<F> Waited<F> {
    /// Whether the wait returned early because it could never end: this thread's
    /// [`BlockingHook`](crate::BlockingHook) found that the futures it still needed wait,
    /// through running tasks, on the task making this call (a thread pool's worker; see
    /// `concur_pool::ThreadPool`). The split is then the one at that moment, as after a
    /// timeout.
    ///
    /// With [`ReturnWhen::AllCompleted`] that is the case when *any* unfinished future waits
    /// on this task; with [`ReturnWhen::FirstCompleted`] and [`ReturnWhen::FirstException`]
    /// only when *every* one does (one that can finish, or fail, may still end the wait).
    pub fn is_deadlock(&self) -> bool {
        self.deadlock
    }

    /// The futures that were done (finished or cancelled).
    pub fn done(&self) -> &[F] {
        &self.futures[..self.done]
    }

    /// The futures that were not done.
    pub fn not_done(&self) -> &[F] {
        &self.futures[self.done..]
    }

    /// `(done, not_done)`, owned.
    pub fn into_parts(mut self) -> (Vec<F>, Vec<F>) {
        let not_done = self.futures.split_off(self.done);
        (self.futures, not_done)
    }
}

/// Waits for the futures in `futures` (Python's `wait(fs, timeout, return_when)`).
///
/// Accepts any iterable of [`Waitable`]s: owned or borrowed [`Future`](crate::Future)s, or
/// [`AnyFuture`](crate::AnyFuture)s to mix output types and executors. Duplicates count once.
/// Returns at once, without registering anything, if the condition already holds. On timeout it
/// returns the split as it stands (not an error). A cancelled future counts as done the moment
/// it is cancelled.
///
/// Cost: one allocation for the wait set (plus collecting `futures`), O(N log N) to remove
/// duplicates, O(N) to register and to leave, O(1) work and at most one wake per completion.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use concur_core::{promise, wait, ReturnWhen};
///
/// let (p1, slow) = promise::<u32>();
/// let (p2, fast) = promise::<u32>();
/// std::thread::spawn(move || p2.set_result(2).unwrap());
/// let waited = wait([&slow, &fast], None, ReturnWhen::FirstCompleted);
/// assert_eq!(waited.done(), [&fast]);
/// assert_eq!(waited.not_done(), [&slow]);
///
/// let waited = wait([&slow, &fast], Some(Duration::from_millis(5)), ReturnWhen::AllCompleted);
/// assert_eq!(waited.not_done().len(), 1); // timed out: the partial split
/// # drop(p1);
/// ```
pub fn wait<I>(futures: I, timeout: Option<Duration>, return_when: ReturnWhen) -> Waited<I::Item>
where
    I: IntoIterator,
    I::Item: Waitable,
{
    let deadline = timeout.map(crate::blocking::deadline_after);
    let mut futures: Vec<I::Item> = futures.into_iter().collect();
    dedup(&mut futures);
    let mut deadlock = false;
    if !holds(&futures, return_when) && deadline.is_none_or(|d| d > Instant::now()) {
        deadlock = block(&futures, return_when, deadline) == Blocked::Deadlock;
    }
    let mut waited = split(futures);
    waited.deadlock = deadlock;
    waited
}

/// How [`block`] ended.
#[derive(PartialEq, Eq)]
enum Blocked {
    /// The condition holds, or the deadline passed.
    Returned,
    /// This thread's blocking hook said the condition could never hold.
    Deadlock,
}

/// Drops duplicates in place (sorting by identity, so the order is unspecified).
pub(crate) fn dedup<F: Waitable>(futures: &mut Vec<F>) {
    if cfg!(concur_loom) {
        // Loom replays a schedule as a sequence of operations, so registration order must not
        // depend on allocation addresses, which change between executions: keep input order
        // (quadratic, for the handful of futures a model uses).
        let mut index = 0;
        while index < futures.len() {
            let duplicate = futures[..index]
                .iter()
                .any(|f| key(f) == key(&futures[index]));
            if duplicate {
                futures.remove(index);
            } else {
                index += 1;
            }
        }
        return;
    }
    futures.sort_unstable_by_key(key);
    futures.dedup_by_key(|f| key(f));
}

/// Whether `return_when` already holds, by one scan.
fn holds<F: Waitable>(futures: &[F], return_when: ReturnWhen) -> bool {
    match return_when {
        ReturnWhen::FirstCompleted => futures.is_empty() || futures.iter().any(F::is_done),
        ReturnWhen::FirstException => {
            futures.iter().any(F::is_failed) || futures.iter().all(F::is_done)
        }
        ReturnWhen::AllCompleted => futures.iter().all(F::is_done),
    }
}

fn block<F: Waitable>(
    futures: &[F],
    return_when: ReturnWhen,
    deadline: Option<Instant>,
) -> Blocked {
    let needs = match return_when {
        ReturnWhen::AllCompleted => Needs::All,
        ReturnWhen::FirstCompleted | ReturnWhen::FirstException => Needs::Any,
    };
    let Ok(_after_block) = crate::hook::before_block_on_many(needs, || unfinished(futures)) else {
        // It may have become true meanwhile (a future finished as the hook looked).
        return if holds(futures, return_when) {
            Blocked::Returned
        } else {
            Blocked::Deadlock
        };
    };
    let mode = match return_when {
        ReturnWhen::FirstCompleted => Mode::FirstCompleted,
        ReturnWhen::FirstException => Mode::FirstException,
        ReturnWhen::AllCompleted => Mode::AllCompleted,
    };
    let set = WaitSet::new(mode, futures.len());
    for (index, future) in futures.iter().enumerate() {
        if set.register(index, future.header()) {
            // SAFETY: `future` keeps the cell alive; its pointer has the whole cell's provenance.
            unsafe { crate::header::linked_passive_waiter(future.raw_header()) };
        }
        if set.is_signalled() && mode != Mode::AllCompleted {
            break; // the condition holds: the rest need no node
        }
    }
    set.block_until(WaitSet::is_signalled, deadline);
    set.leave(|index| futures.get(index).map(|f| f.header()));
    Blocked::Returned
}

/// The raw headers of the futures not done yet, for the blocking hook.
pub(crate) fn unfinished<'a, F: Waitable + 'a>(
    futures: impl IntoIterator<Item = &'a F>,
) -> Vec<core::ptr::NonNull<crate::header::Header>> {
    futures
        .into_iter()
        .filter(|f| !f.is_done())
        .map(|f| f.raw_header())
        .collect()
}

/// Moves the done futures to the front.
fn split<F: Waitable>(mut futures: Vec<F>) -> Waited<F> {
    let mut done = 0;
    for index in 0..futures.len() {
        if futures[index].is_done() {
            futures.swap(done, index);
            done += 1;
        }
    }
    Waited {
        futures,
        done,
        deadlock: false,
    }
}
