//! Loom models of one future (DESIGN §2 "Loom"), through concur-core's public API only.
//!
//! Run with `RUSTFLAGS="--cfg concur_loom"` and `LOOM_MAX_PREEMPTIONS=3` (the default here when
//! the variable is unset); `loom-tests/run-loom.sh` does both, in release, and times each model.
//!
//! Shape of every model (DESIGN §2 "Harness traps"):
//! - at most three threads, the main model thread being the completer (`set_result` or
//!   `cancel`);
//! - waiting threads never `join`: a stray unpark to a thread blocked in `join` aborts a correct
//!   model (loom issue #249); the main thread joins every other thread at the end;
//! - under loom a timed wait (`result_timeout`, `wait_timeout`) links its node, checks for a wake
//!   once and then gives up, so a timed wait here *is* the give-up of the design;
//! - values count their drops in a loom atomic, cells and async nodes are loom-tracked
//!   allocations, so "dropped exactly once" and "freed, no leak" are checked in every execution.
//!
//! Each model has a plain-`std` twin in `miri_twins.rs`, and `planted-bugs.sh` shows that these
//! models fail when a rule or an ordering of the protocol is broken on purpose.
#![cfg(concur_loom)]

use std::future::IntoFuture;
use std::pin::Pin;
use std::sync::atomic::AtomicUsize as StdAtomicUsize;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use concur_core::{Error, Future, Task, promise, with_blocking_hook};
use concur_loom_tests::{RunInline, assert_taken_or_shared, model};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

/// A long timeout: under loom every timed wait gives up after one check anyway.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A value that counts its drops, so a model can check it is dropped exactly once.
struct Counted {
    value: u32,
    drops: Arc<AtomicUsize>,
}

impl Counted {
    fn new(value: u32, drops: &Arc<AtomicUsize>) -> Self {
        Self {
            value,
            drops: drops.clone(),
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

/// A hand-made waker that only counts its wakes in a loom atomic (no unpark, which loom would
/// treat as a synchronisation and so hide ordering bugs).
struct Counter(AtomicUsize);

impl Counter {
    fn new() -> (std::sync::Arc<Self>, Waker) {
        let counter = std::sync::Arc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        (counter, waker)
    }

    fn wakes(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

impl Wake for Counter {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

/// A waker for a tiny executor: it counts its wakes and unparks the polling thread.
///
/// Only the wakers write the count, and only with read-modify-writes: loom 0.7 lets an RMW read
/// a store that happens-before it is no longer the newest (so a `swap(false)` flag can lose a
/// wake that really happened, a false deadlock), while plain loads respect coherence.
struct Unparker {
    wakes: AtomicUsize,
    thread: thread::Thread,
}

impl Wake for Unparker {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::Release);
        self.thread.unpark();
    }
}

/// Polls `fut` on this thread until it is ready, parking in between. A lost wake-up parks
/// forever, which loom reports as a deadlock.
fn block_on<F: std::future::Future + Unpin>(mut fut: F) -> F::Output {
    let unparker = std::sync::Arc::new(Unparker {
        wakes: AtomicUsize::new(0),
        thread: thread::current(),
    });
    let waker = Waker::from(unparker.clone());
    loop {
        let seen = unparker.wakes.load(Ordering::Acquire);
        if let Poll::Ready(output) = poll(&mut fut, &waker) {
            return output;
        }
        while unparker.wakes.load(Ordering::Acquire) == seen {
            thread::park();
        }
    }
}

fn poll<F: std::future::Future + Unpin>(fut: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(waker))
}

/// The value a finished future must show.
fn value_of(future: &Future<u32>) -> Option<u32> {
    future.try_result().and_then(|r| r.ok()).copied()
}

/// Completion and one blocking reader: the reader may find the future done at once, push as it
/// completes, or park and be woken (rules 1, 5; fast-path, FIRED and push orderings).
#[test]
fn set_get() {
    model(|| {
        let (promise, future) = promise::<u32>();
        let reader = future.clone();
        let getter = thread::spawn(move || {
            assert_eq!(reader.result().ok(), Some(&7));
            reader
        });
        promise.set_result(7).unwrap();
        drop(getter.join().unwrap());
        assert_eq!(value_of(&future), Some(7));
    });
}

/// Completion and two blocking readers: both are woken from one detached list.
#[test]
fn set_two_getters() {
    model(|| {
        let (promise, future) = promise::<u32>();
        let getters: Vec<_> = (0..2)
            .map(|_| {
                let reader = future.clone();
                thread::spawn(move || {
                    assert_eq!(reader.result().ok(), Some(&7));
                    reader
                })
            })
            .collect();
        promise.set_result(7).unwrap();
        for getter in getters {
            drop(getter.join().unwrap());
        }
        assert_eq!(value_of(&future), Some(7));
    });
}

/// How `set_give_up` ended, counted over every execution.
static GIVE_UP_OUTCOMES: [StdAtomicUsize; 3] = [
    StdAtomicUsize::new(0),
    StdAtomicUsize::new(0),
    StdAtomicUsize::new(0),
];
const UNLINKED: usize = 0;
const LOCK_HOLDER_WOKE: usize = 1;
const SET_DETACHED: usize = 2;

/// Completion and a timed wait that gives up, with a done-callback already in the list behind
/// the waiter's node. Three outcomes, each reached (checked after the model):
/// - the giver-up unlinks its node before completion: `TimedOut`, the setter runs the callback;
/// - completion happens while the giver-up holds LOCK: set only changes the phase, and the
///   giver-up's unlock detaches and wakes the rest, so the callback runs on the giver-up's
///   thread (rules 3, 4, 5; phase-only and delegating-unlock orderings);
/// - the list was already detached by set: the giver-up must wait for its own FIRED (rule 2);
///   indistinguishable through the API from a wake that came before the give-up, so the
///   `rule2-leave-before-fired` plant is what shows this branch is reached.
#[test]
fn set_give_up() {
    for outcome in &GIVE_UP_OUTCOMES {
        outcome.store(0, std::sync::atomic::Ordering::Relaxed);
    }
    model(|| {
        let (promise, future) = promise::<u32>();
        let main_thread = thread::current().id();
        // Runs of the callback: +1 on the main thread, +0x100 on the giver-up's.
        let runs = Arc::new(AtomicUsize::new(0));
        let callback_runs = runs.clone();
        future.add_done_callback(move |f| {
            assert_eq!(value_of(f), Some(7));
            let on_main = thread::current().id() == main_thread;
            callback_runs.fetch_add(if on_main { 1 } else { 0x100 }, Ordering::Relaxed);
        });
        let reader = future.clone();
        let giver_up = thread::spawn(move || match reader.result_timeout(TIMEOUT) {
            Ok(&value) => Some(value),
            Err(Error::TimedOut) => None,
            Err(other) => panic!("unexpected {other:?}"),
        });
        promise.set_result(7).unwrap();
        let got = giver_up.join().unwrap();
        let runs = runs.load(Ordering::Relaxed);
        let outcome = match (got, runs) {
            (None, 1) => UNLINKED,
            (Some(7), 0x100) => LOCK_HOLDER_WOKE,
            (Some(7), 1) => SET_DETACHED,
            other => panic!("bad outcome (value, callback runs) = {other:x?}"),
        };
        GIVE_UP_OUTCOMES[outcome].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(value_of(&future), Some(7));
    });
    let counts: Vec<usize> = GIVE_UP_OUTCOMES
        .iter()
        .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
        .collect();
    assert!(
        counts.iter().all(|&n| n > 0),
        "an outcome was never reached: [unlinked, lock holder woke, set detached] = {counts:?}"
    );
}

/// Completion and two timed waits giving up: a giver-up walks and rewires the other's node
/// under LOCK, and may wake it (LOCK-CAS and unlock orderings; rules 2, 3).
#[test]
fn two_give_ups_set() {
    model(|| {
        let (promise, future) = promise::<u32>();
        let reader = future.clone();
        let first = thread::spawn(move || {
            match reader.result_timeout(TIMEOUT) {
                Ok(&value) => assert_eq!(value, 7),
                Err(error) => assert!(error.is_timeout(), "{error:?}"),
            }
            reader
        });
        let reader = future.clone();
        let second = thread::spawn(move || {
            // No read of the value here: the first reader reads it, and one read less keeps
            // this three-thread model well under a second at bound 3.
            reader.wait_timeout(TIMEOUT);
            reader
        });
        promise.set_result(7).unwrap();
        drop(first.join().unwrap());
        drop(second.join().unwrap());
        assert_eq!(value_of(&future), Some(7));
    });
}

/// Completion while a waiter arrives on a list that already holds a node: its push may lose to
/// the completing CAS, and the completer must reach the older node through the new one's
/// `next`. Both callbacks run once; on one thread, in the order added.
#[test]
fn push_set() {
    model(|| {
        let (promise, future) = promise::<u32>();
        let main_thread = thread::current().id();
        // Each callback records (order of running, ran on main) as `order * 2 + on_main`.
        let seq = Arc::new(AtomicUsize::new(0));
        let slots = Arc::new([AtomicUsize::new(usize::MAX), AtomicUsize::new(usize::MAX)]);
        let callback = |i: usize| {
            let (seq, slots) = (seq.clone(), slots.clone());
            move |f: &Future<u32>| {
                assert_eq!(value_of(f), Some(7));
                let order = seq.fetch_add(1, Ordering::Relaxed);
                let on_main = usize::from(thread::current().id() == main_thread);
                let old = slots[i].swap(order * 2 + on_main, Ordering::Relaxed);
                assert_eq!(old, usize::MAX, "callback {i} ran twice");
            }
        };
        future.add_done_callback(callback(0));
        let reader = future.clone();
        let second = callback(1);
        let arriving = thread::spawn(move || {
            reader.add_done_callback(second);
            assert_eq!(reader.result().ok(), Some(&7));
        });
        promise.set_result(7).unwrap();
        arriving.join().unwrap();
        let [a, b] = [0, 1].map(|i| slots[i].load(Ordering::Relaxed));
        assert!(a != usize::MAX && b != usize::MAX, "a callback never ran");
        if a & 1 == 1 && b & 1 == 1 {
            assert!(a < b, "callbacks ran out of order");
        }
    });
}

/// `cancel` against `set_result`, with a blocking reader: exactly one wins, the reader sees that
/// winner, the value is dropped exactly once (cancel-detach ordering).
#[test]
fn cancel_set() {
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (promise, future) = promise::<Counted>();
        let value = Counted::new(7, &drops);
        let producer = thread::spawn(move || promise.set_result(value).is_ok());
        let reader = future.clone();
        let getter = thread::spawn(move || match reader.result() {
            Ok(value) => {
                assert_eq!(value.value, 7);
                false
            }
            Err(Error::Cancelled) => true,
            Err(other) => panic!("unexpected {other:?}"),
        });
        let cancelled = future.cancel();
        let set = producer.join().unwrap();
        let saw_cancelled = getter.join().unwrap();
        assert!(cancelled != set, "cancelled: {cancelled}, set: {set}");
        assert_eq!(saw_cancelled, cancelled);
        assert_eq!(future.is_cancelled(), cancelled);
        drop(future);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    });
}

/// `cancel` against a producer that claims the future first: `cancel` wins exactly when
/// `set_running_or_notify_cancel` says false; the value is dropped exactly once.
#[test]
fn cancel_running_set() {
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (promise, future) = promise::<Counted>();
        let value = Counted::new(7, &drops);
        let producer = thread::spawn(move || {
            if promise.set_running_or_notify_cancel() {
                promise.set_result(value).unwrap();
                true
            } else {
                drop(value);
                false
            }
        });
        let cancelled = future.cancel();
        let ran = producer.join().unwrap();
        assert!(cancelled != ran, "cancelled: {cancelled}, ran: {ran}");
        match future.try_result() {
            Some(Ok(value)) => assert!(ran && value.value == 7),
            Some(Err(Error::Cancelled)) => assert!(cancelled),
            other => panic!("unexpected {:?}", other.map(|r| r.map(|v| v.value))),
        }
        drop(future);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    });
}

/// The last handle is dropped while the future completes: the cell is freed exactly once, by
/// whichever side leaves last (loom reports a leak or a double free), the value dropped once.
#[test]
fn last_handle_drop_set() {
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (promise, future) = promise::<Counted>();
        let dropper = thread::spawn(move || drop(future));
        let _ = promise.set_result(Counted::new(7, &drops));
        dropper.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    });
}

/// `into_result` on one handle while another handle is dropped and the future completes: the
/// value moves out only through the last handle, and is dropped exactly once either way.
#[test]
fn into_result_drop_set() {
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (promise, future) = promise::<Counted>();
        let other = future.clone();
        let dropper = thread::spawn(move || drop(other));
        let taker = thread::spawn(move || {
            assert_taken_or_shared(future.into_result().map(|value| value.value), 7);
        });
        let _ = promise.set_result(Counted::new(7, &drops));
        dropper.join().unwrap();
        taker.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    });
}

/// `into_result` runs a task inline (so it finishes while its queued `Task` still holds the
/// producer's share) while another handle is dropped, and the `Task` is dropped last: the value
/// moves out only through the last handle, is dropped exactly once, and whichever party leaves
/// last frees the cell (loom's leak check).
#[test]
fn inline_into_result_drop() {
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let counted = drops.clone();
        let (task, future) = Task::new(move || Counted::new(7, &counted));
        let other = future.clone();
        let dropper = thread::spawn(move || drop(other));
        let outcome = with_blocking_hook(&RunInline, || future.into_result());
        assert_taken_or_shared(outcome.map(|value| value.value), 7);
        dropper.join().unwrap();
        drop(task);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    });
}

/// An async reader polls, then re-polls with a new waker, while the future completes: if the
/// re-poll said `Pending`, its (new) waker must have been woken, and the next poll is `Ready`.
#[test]
fn poll_repoll_set() {
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (promise, future) = promise::<Counted>();
        let poller = thread::spawn(move || {
            let mut awaiting = future.into_future();
            let (_first, first_waker) = Counter::new();
            if let Poll::Ready(outcome) = poll(&mut awaiting, &first_waker) {
                assert_eq!(outcome.unwrap().value, 7);
                return None;
            }
            let (second, second_waker) = Counter::new();
            match poll(&mut awaiting, &second_waker) {
                Poll::Ready(outcome) => {
                    assert_eq!(outcome.unwrap().value, 7);
                    None
                }
                Poll::Pending => Some((awaiting, second)),
            }
        });
        promise.set_result(Counted::new(7, &drops)).unwrap();
        if let Some((mut awaiting, second)) = poller.join().unwrap() {
            assert!(
                second.wakes() > 0,
                "the last registered waker was never woken"
            );
            let (_, waker) = Counter::new();
            match poll(&mut awaiting, &waker) {
                Poll::Ready(outcome) => assert_eq!(outcome.unwrap().value, 7),
                Poll::Pending => panic!("woken but still pending"),
            }
        }
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    });
}

/// An async reader polls once and drops its awaiting future (and with it the last handle) while
/// the future completes (the scenario of oneshot's RUSTSEC-2026-0005 / #87): the node is
/// unlinked or left to the completer, nothing is freed twice or leaked, the value dropped once.
#[test]
fn poll_drop_set() {
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (promise, future) = promise::<Counted>();
        let poller = thread::spawn(move || {
            let mut awaiting = future.into_future();
            let (_counter, waker) = Counter::new();
            if let Poll::Ready(outcome) = poll(&mut awaiting, &waker) {
                assert_eq!(outcome.unwrap().value, 7);
            }
            drop(awaiting);
        });
        promise.set_result(Counted::new(7, &drops)).unwrap();
        poller.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    });
}

/// A callback added while the future completes runs exactly once (on either thread) and sees
/// the value; its record (and the handle it holds) is freed.
#[test]
fn callback_add_set() {
    model(|| {
        let (promise, future) = promise::<u32>();
        let runs = Arc::new(AtomicUsize::new(0));
        let callback_runs = runs.clone();
        let adder = thread::spawn(move || {
            future.add_done_callback(move |f| {
                assert_eq!(*f.result().unwrap(), 7);
                callback_runs.fetch_add(1, Ordering::Relaxed);
            });
        });
        promise.set_result(7).unwrap();
        adder.join().unwrap();
        assert_eq!(runs.load(Ordering::Relaxed), 1);
    });
}

/// One future, three kinds of waiter in one list: a done-callback (added first, so it is in the
/// list when the future completes), a blocking reader, and an async reader borrowing the future
/// (`(&future).await` on a tiny parking executor, so a lost wake-up is a loom deadlock).
#[test]
fn mixed_waiters_set() {
    model(|| {
        let (promise, future) = promise::<u32>();
        let runs = Arc::new(AtomicUsize::new(0));
        let callback_runs = runs.clone();
        future.add_done_callback(move |f| {
            assert_eq!(value_of(f), Some(7));
            callback_runs.fetch_add(1, Ordering::Relaxed);
        });
        let blocking = future.clone();
        let blocker = thread::spawn(move || {
            assert_eq!(blocking.result().ok(), Some(&7));
            blocking
        });
        let asynchronous = future.clone();
        let awaiter = thread::spawn(move || {
            assert_eq!(block_on((&asynchronous).into_future()).ok(), Some(&7));
            asynchronous
        });
        promise.set_result(7).unwrap();
        drop(blocker.join().unwrap());
        drop(awaiter.join().unwrap());
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        assert_eq!(value_of(&future), Some(7));
    });
}
