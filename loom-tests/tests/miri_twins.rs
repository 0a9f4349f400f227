//! Plain-`std` twins of the loom models in `loom_future.rs`, one per model, same scenario and
//! same checks, for Miri (loom does not see use-after-free of raw memory, DESIGN §2) and as a
//! fast native stress test:
//!
//! ```text
//! MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-many-seeds=0..16" \
//!     cargo +nightly miri test -p concur-loom-tests --test miri_twins
//! ```
//!
//! A naive twin lets the completer finish before any waiter links a node, and proves nothing.
//! So every round gates the completer on its waiters' arrival (a waiter bumps [`Gate`] just
//! before it blocks, polls or drops; the completer spins on it with `yield_now`), then delays
//! the completion by a per-round amount (none, a few yields, many yields, a short sleep), and
//! the waiters add their own per-round yields: across rounds the waiter is still spinning, has
//! linked its node, has parked, or is giving up when the completion lands.
#![cfg(not(concur_loom))]

use std::future::IntoFuture;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;

use concur_core::{Error, Future, Task, promise, with_blocking_hook};
use concur_loom_tests::{RunInline, assert_taken_or_shared};
use twins::{Gate, rounds};

mod twins;

/// A value that counts its drops.
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

/// A waker that only counts its wakes.
struct Counter(AtomicUsize);

impl Counter {
    fn new() -> (Arc<Self>, Waker) {
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        (counter, waker)
    }

    fn wakes(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

/// A waker that counts its wakes and unparks the polling thread.
struct Unparker {
    wakes: AtomicUsize,
    thread: thread::Thread,
}

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::Release);
        self.thread.unpark();
    }
}

/// Polls `fut` until it is ready, parking in between.
fn block_on<F: std::future::Future + Unpin>(mut fut: F) -> F::Output {
    let unparker = Arc::new(Unparker {
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

fn value_of(future: &Future<u32>) -> Option<u32> {
    future.try_result().and_then(|r| r.ok()).copied()
}

/// Twin of the loom model `set_get`.
#[test]
fn set_get() {
    rounds(1, |j| {
        let (promise, future) = promise::<u32>();
        let (gate, reader, yields) = (Gate::default(), future.clone(), j.waiter_yields());
        let arrivals = gate.clone();
        let getter = thread::spawn(move || {
            arrivals.arrive();
            yields.run();
            assert_eq!(reader.result().ok(), Some(&7));
        });
        gate.wait_for(1);
        j.completer_delay().run();
        promise.set_result(7).unwrap();
        getter.join().unwrap();
        assert_eq!(value_of(&future), Some(7));
    });
}

/// Twin of the loom model `set_two_getters`.
#[test]
fn set_two_getters() {
    rounds(2, |j| {
        let (promise, future) = promise::<u32>();
        let gate = Gate::default();
        let getters: Vec<_> = (0..2)
            .map(|_| {
                let (arrivals, reader, yields) = (gate.clone(), future.clone(), j.waiter_yields());
                thread::spawn(move || {
                    arrivals.arrive();
                    yields.run();
                    assert_eq!(reader.result().ok(), Some(&7));
                })
            })
            .collect();
        gate.wait_for(2);
        j.completer_delay().run();
        promise.set_result(7).unwrap();
        for getter in getters {
            getter.join().unwrap();
        }
        assert_eq!(value_of(&future), Some(7));
    });
}

/// Twin of the loom model `set_give_up` (a callback in the list behind the giver-up's node).
#[test]
fn set_give_up() {
    rounds(3, |j| {
        let (promise, future) = promise::<u32>();
        let main_thread = thread::current().id();
        let runs = Arc::new(AtomicUsize::new(0));
        let callback_runs = runs.clone();
        future.add_done_callback(move |f| {
            assert_eq!(value_of(f), Some(7));
            let on_main = thread::current().id() == main_thread;
            callback_runs.fetch_add(if on_main { 1 } else { 0x100 }, Ordering::Relaxed);
        });
        let (gate, reader, yields, timeout) = (
            Gate::default(),
            future.clone(),
            j.waiter_yields(),
            j.timeout(),
        );
        let arrivals = gate.clone();
        let giver_up = thread::spawn(move || {
            arrivals.arrive();
            yields.run();
            match reader.result_timeout(timeout) {
                Ok(&value) => Some(value),
                Err(Error::TimedOut) => None,
                Err(other) => panic!("unexpected {other:?}"),
            }
        });
        gate.wait_for(1);
        j.completer_delay().run();
        promise.set_result(7).unwrap();
        let got = giver_up.join().unwrap();
        match (got, runs.load(Ordering::Relaxed)) {
            (None, 1) | (Some(7), 0x100) | (Some(7), 1) => {}
            other => panic!("bad outcome (value, callback runs) = {other:x?}"),
        }
        assert_eq!(value_of(&future), Some(7));
    });
}

/// Twin of the loom model `two_give_ups_set`.
#[test]
fn two_give_ups_set() {
    rounds(4, |j| {
        let (promise, future) = promise::<u32>();
        let gate = Gate::default();
        let (arrivals, reader, yields, timeout) =
            (gate.clone(), future.clone(), j.waiter_yields(), j.timeout());
        let first = thread::spawn(move || {
            arrivals.arrive();
            yields.run();
            match reader.result_timeout(timeout) {
                Ok(&value) => assert_eq!(value, 7),
                Err(error) => assert!(error.is_timeout(), "{error:?}"),
            }
        });
        let (arrivals, reader, yields, timeout) =
            (gate.clone(), future.clone(), j.waiter_yields(), j.timeout());
        let second = thread::spawn(move || {
            arrivals.arrive();
            yields.run();
            if reader.wait_timeout(timeout) {
                assert_eq!(value_of(&reader), Some(7));
            }
        });
        gate.wait_for(2);
        j.completer_delay().run();
        promise.set_result(7).unwrap();
        first.join().unwrap();
        second.join().unwrap();
        assert_eq!(value_of(&future), Some(7));
    });
}

/// Twin of the loom model `push_set`.
#[test]
fn push_set() {
    rounds(5, |j| {
        let (promise, future) = promise::<u32>();
        let main_thread = thread::current().id();
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
        let (gate, reader, yields, second) = (
            Gate::default(),
            future.clone(),
            j.waiter_yields(),
            callback(1),
        );
        let arrivals = gate.clone();
        let arriving = thread::spawn(move || {
            arrivals.arrive();
            yields.run();
            reader.add_done_callback(second);
            assert_eq!(reader.result().ok(), Some(&7));
        });
        gate.wait_for(1);
        j.completer_delay().run();
        promise.set_result(7).unwrap();
        arriving.join().unwrap();
        let [a, b] = [0, 1].map(|i| slots[i].load(Ordering::Relaxed));
        assert!(a != usize::MAX && b != usize::MAX, "a callback never ran");
        if a & 1 == 1 && b & 1 == 1 {
            assert!(a < b, "callbacks ran out of order");
        }
    });
}

/// Twin of the loom model `cancel_set`.
#[test]
fn cancel_set() {
    rounds(6, |j| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (promise, future) = promise::<Counted>();
        let (gate, cancel_tried) = (Gate::default(), Gate::default());
        // In some rounds the producer only tries once `cancel` has, so that it is cancel that
        // detaches the getter's node (under Miri the producer otherwise wins most races).
        let (value, arrivals, yields) = (Counted::new(7, &drops), gate.clone(), j.waiter_yields());
        let (after_cancel, cancel_tried_seen) = (j.coin(), cancel_tried.clone());
        let producer = thread::spawn(move || {
            arrivals.arrive();
            if after_cancel {
                cancel_tried_seen.wait_for(1);
            }
            yields.run();
            promise.set_result(value).is_ok()
        });
        let (arrivals, reader, yields) = (gate.clone(), future.clone(), j.waiter_yields());
        let getter = thread::spawn(move || {
            arrivals.arrive();
            yields.run();
            match reader.result() {
                Ok(value) => {
                    assert_eq!(value.value, 7);
                    false
                }
                Err(Error::Cancelled) => true,
                Err(other) => panic!("unexpected {other:?}"),
            }
        });
        gate.wait_for(2);
        j.completer_delay().run();
        let cancelled = future.cancel();
        cancel_tried.arrive();
        let set = producer.join().unwrap();
        let saw_cancelled = getter.join().unwrap();
        assert!(cancelled != set, "cancelled: {cancelled}, set: {set}");
        assert_eq!(saw_cancelled, cancelled);
        assert_eq!(future.is_cancelled(), cancelled);
        drop(future);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    });
}

/// Twin of the loom model `cancel_running_set`.
#[test]
fn cancel_running_set() {
    rounds(7, |j| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (promise, future) = promise::<Counted>();
        let (gate, value, yields) = (Gate::default(), Counted::new(7, &drops), j.waiter_yields());
        let arrivals = gate.clone();
        let producer = thread::spawn(move || {
            arrivals.arrive();
            yields.run();
            if promise.set_running_or_notify_cancel() {
                promise.set_result(value).unwrap();
                true
            } else {
                drop(value);
                false
            }
        });
        gate.wait_for(1);
        j.completer_delay().run();
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

/// Twin of the loom model `last_handle_drop_set`.
#[test]
fn last_handle_drop_set() {
    rounds(8, |j| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (promise, future) = promise::<Counted>();
        let gate = Gate::default();
        let dropper = gate.spawn(j.waiter_yields(), move || drop(future));
        gate.wait_for(1);
        j.completer_delay().run();
        let _ = promise.set_result(Counted::new(7, &drops));
        dropper.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    });
}

/// Twin of the loom model `into_result_drop_set`.
#[test]
fn into_result_drop_set() {
    rounds(9, |j| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (promise, future) = promise::<Counted>();
        let gate = Gate::default();
        let other = future.clone();
        let dropper = gate.spawn(j.waiter_yields(), move || drop(other));
        let (arrivals, yields) = (gate.clone(), j.waiter_yields());
        let taker = thread::spawn(move || {
            arrivals.arrive();
            yields.run();
            assert_taken_or_shared(future.into_result().map(|value| value.value), 7);
        });
        gate.wait_for(2);
        j.completer_delay().run();
        let _ = promise.set_result(Counted::new(7, &drops));
        dropper.join().unwrap();
        taker.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    });
}

/// Twin of the loom model `inline_into_result_drop` (Miri's leak check is what catches a cell
/// that nobody frees).
#[test]
fn inline_into_result_drop() {
    rounds(14, |j| {
        let drops = Arc::new(AtomicUsize::new(0));
        let counted = drops.clone();
        let (task, future) = Task::new(move || Counted::new(7, &counted));
        let gate = Gate::default();
        let other = future.clone();
        let dropper = gate.spawn(j.waiter_yields(), move || drop(other));
        gate.wait_for(1);
        j.waiter_yields().run();
        let outcome = with_blocking_hook(&RunInline, || future.into_result());
        assert_taken_or_shared(outcome.map(|value| value.value), 7);
        dropper.join().unwrap();
        drop(task);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    });
}

/// Twin of the loom model `poll_repoll_set`.
#[test]
fn poll_repoll_set() {
    rounds(10, |j| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (promise, future) = promise::<Counted>();
        let (gate, arrive_first, yields) = (Gate::default(), j.coin(), j.waiter_yields());
        let arrivals = gate.clone();
        let poller = thread::spawn(move || {
            let mut awaiting = future.into_future();
            let (_first, first_waker) = Counter::new();
            if arrive_first {
                arrivals.arrive();
            }
            let first = poll(&mut awaiting, &first_waker);
            if !arrive_first {
                arrivals.arrive();
            }
            if let Poll::Ready(outcome) = first {
                assert_eq!(outcome.unwrap().value, 7);
                return None;
            }
            yields.run();
            let (second, second_waker) = Counter::new();
            match poll(&mut awaiting, &second_waker) {
                Poll::Ready(outcome) => {
                    assert_eq!(outcome.unwrap().value, 7);
                    None
                }
                Poll::Pending => Some((awaiting, second)),
            }
        });
        gate.wait_for(1);
        j.completer_delay().run();
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

/// Twin of the loom model `poll_drop_set`.
#[test]
fn poll_drop_set() {
    rounds(11, |j| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (promise, future) = promise::<Counted>();
        let (gate, yields) = (Gate::default(), j.waiter_yields());
        let arrivals = gate.clone();
        let poller = thread::spawn(move || {
            let mut awaiting = future.into_future();
            let (_counter, waker) = Counter::new();
            let first = poll(&mut awaiting, &waker);
            arrivals.arrive();
            if let Poll::Ready(outcome) = first {
                assert_eq!(outcome.unwrap().value, 7);
            }
            yields.run();
            drop(awaiting);
        });
        gate.wait_for(1);
        j.completer_delay().run();
        promise.set_result(Counted::new(7, &drops)).unwrap();
        poller.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    });
}

/// Twin of the loom model `callback_add_set`.
#[test]
fn callback_add_set() {
    rounds(12, |j| {
        let (promise, future) = promise::<u32>();
        let runs = Arc::new(AtomicUsize::new(0));
        let (gate, callback_runs, arrive_first, yields) =
            (Gate::default(), runs.clone(), j.coin(), j.waiter_yields());
        let arrivals = gate.clone();
        let adder = thread::spawn(move || {
            if arrive_first {
                arrivals.arrive();
                yields.run();
            }
            future.add_done_callback(move |f| {
                assert_eq!(*f.result().unwrap(), 7);
                callback_runs.fetch_add(1, Ordering::Relaxed);
            });
            if !arrive_first {
                arrivals.arrive();
            }
        });
        gate.wait_for(1);
        j.completer_delay().run();
        promise.set_result(7).unwrap();
        adder.join().unwrap();
        assert_eq!(runs.load(Ordering::Relaxed), 1);
    });
}

/// Twin of the loom model `mixed_waiters_set`.
#[test]
fn mixed_waiters_set() {
    rounds(13, |j| {
        let (promise, future) = promise::<u32>();
        let runs = Arc::new(AtomicUsize::new(0));
        let callback_runs = runs.clone();
        future.add_done_callback(move |f| {
            assert_eq!(value_of(f), Some(7));
            callback_runs.fetch_add(1, Ordering::Relaxed);
        });
        let gate = Gate::default();
        let (arrivals, blocking, yields) = (gate.clone(), future.clone(), j.waiter_yields());
        let blocker = thread::spawn(move || {
            arrivals.arrive();
            yields.run();
            assert_eq!(blocking.result().ok(), Some(&7));
        });
        let (arrivals, asynchronous, yields) = (gate.clone(), future.clone(), j.waiter_yields());
        let awaiter = thread::spawn(move || {
            arrivals.arrive();
            yields.run();
            assert_eq!(block_on((&asynchronous).into_future()).ok(), Some(&7));
        });
        gate.wait_for(2);
        j.completer_delay().run();
        promise.set_result(7).unwrap();
        blocker.join().unwrap();
        awaiter.join().unwrap();
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        assert_eq!(value_of(&future), Some(7));
    });
}
