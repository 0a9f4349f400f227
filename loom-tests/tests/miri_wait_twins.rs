//! Plain-`std` twins of the wait-set models in `loom_wait.rs`, one per model, same scenario
//! and checks, for Miri (loom does not see use-after-free of raw memory) and as a native stress
//! test. The completer is gated on the waiter's arrival and delayed by a per-round amount, so
//! across rounds the completion lands while the wait set is registering, blocked, or leaving.
//!
//! ```text
//! MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-many-seeds=0..16" \
//!     cargo +nightly miri test -p concur-loom-tests --test miri_wait_twins
//! ```
#![cfg(not(concur_loom))]

use std::thread;

use concur_core::{ReturnWhen, as_completed, promise, wait};
use twins::{Gate, rounds};

mod twins;

/// Twin of `first_completed_two_futures_two_setters`.
#[test]
fn first_completed_two_futures_two_setters() {
    rounds(101, |j| {
        let (p1, f1) = promise::<u32>();
        let (p2, f2) = promise::<u32>();
        let (gate, w1, w2, yields) = (Gate::default(), f1.clone(), f2.clone(), j.waiter_yields());
        let arrivals = gate.clone();
        let waiter = thread::spawn(move || {
            arrivals.arrive();
            yields.run();
            let waited = wait([&w1, &w2], None, ReturnWhen::FirstCompleted);
            assert!(!waited.done().is_empty());
            assert!(waited.done().iter().all(|f| f.is_done()));
        });
        gate.wait_for(1);
        let delay = j.completer_delay();
        let setter = thread::spawn(move || {
            delay.run();
            p2.set_result(2).unwrap();
        });
        j.completer_delay().run();
        p1.set_result(1).unwrap();
        waiter.join().unwrap();
        setter.join().unwrap();
        assert!(!f1.has_waiters() && !f2.has_waiters());
    });
}

/// Twin of `all_completed_with_one_done_and_a_setter`.
#[test]
fn all_completed_with_one_done_and_a_setter() {
    rounds(102, |j| {
        let (p1, f1) = promise::<u32>();
        p1.set_result(1).unwrap();
        let (p2, f2) = promise::<u32>();
        let (gate, w1, w2, yields) = (Gate::default(), f1.clone(), f2.clone(), j.waiter_yields());
        let arrivals = gate.clone();
        let waiter = thread::spawn(move || {
            arrivals.arrive();
            yields.run();
            assert_eq!(
                wait([&w1, &w2], None, ReturnWhen::AllCompleted)
                    .done()
                    .len(),
                2
            );
        });
        gate.wait_for(1);
        j.completer_delay().run();
        p2.set_result(2).unwrap();
        waiter.join().unwrap();
        assert!(!f2.has_waiters());
    });
}

/// Twin of `first_exception_error_and_ok`.
#[test]
fn first_exception_error_and_ok() {
    rounds(103, |j| {
        let (p1, failing) = promise::<u32>();
        let (p2, fine) = promise::<u32>();
        let (gate, w1, w2, yields) = (
            Gate::default(),
            failing.clone(),
            fine.clone(),
            j.waiter_yields(),
        );
        let arrivals = gate.clone();
        let waiter = thread::spawn(move || {
            arrivals.arrive();
            yields.run();
            let waited = wait([&w1, &w2], None, ReturnWhen::FirstException);
            assert!(waited.done().iter().any(|f| **f == w1));
        });
        gate.wait_for(1);
        let setter = thread::spawn(move || p2.set_result(2).unwrap());
        j.completer_delay().run();
        p1.set_error(std::fmt::Error).unwrap();
        waiter.join().unwrap();
        setter.join().unwrap();
    });
}

/// Twin of `wait_timing_out_while_woken`.
#[test]
fn wait_timing_out_while_woken() {
    rounds(104, |j| {
        let (p, f) = promise::<u32>();
        let (gate, w, yields, timeout) =
            (Gate::default(), f.clone(), j.waiter_yields(), j.timeout());
        let arrivals = gate.clone();
        let waiter = thread::spawn(move || {
            arrivals.arrive();
            yields.run();
            let waited = wait([&w], Some(timeout), ReturnWhen::AllCompleted);
            assert_eq!(waited.done().len() + waited.not_done().len(), 1);
        });
        gate.wait_for(1);
        j.completer_delay().run();
        p.set_result(1).unwrap();
        waiter.join().unwrap();
        assert!(!f.has_waiters());
    });
}

/// Twin of `as_completed_dropped_early_while_setters_run`.
#[test]
fn as_completed_dropped_early_while_setters_run() {
    rounds(105, |j| {
        let (p1, f1) = promise::<u32>();
        let (p2, f2) = promise::<u32>();
        let (_p3, f3) = promise::<u32>();
        let (gate, inputs, yields) = (Gate::default(), vec![f1, f2, f3.clone()], j.waiter_yields());
        let arrivals = gate.clone();
        let consumer = thread::spawn(move || {
            arrivals.arrive();
            yields.run();
            let mut iter = as_completed(inputs, None);
            assert!(iter.next().unwrap().unwrap().is_done());
            drop(iter);
        });
        gate.wait_for(1);
        let delay = j.completer_delay();
        let setter = thread::spawn(move || {
            delay.run();
            p2.set_result(2).unwrap();
        });
        j.completer_delay().run();
        p1.set_result(1).unwrap();
        consumer.join().unwrap();
        setter.join().unwrap();
        assert!(!f3.has_waiters());
    });
}

/// Twin of `the_same_future_passed_twice`.
#[test]
fn the_same_future_passed_twice() {
    rounds(106, |j| {
        let (p, f) = promise::<u32>();
        let (gate, w, yields) = (Gate::default(), f.clone(), j.waiter_yields());
        let arrivals = gate.clone();
        let waiter = thread::spawn(move || {
            arrivals.arrive();
            yields.run();
            let waited = wait([&w, &w], None, ReturnWhen::AllCompleted);
            assert_eq!((waited.done().len(), waited.not_done().len()), (1, 0));
        });
        gate.wait_for(1);
        j.completer_delay().run();
        p.set_result(1).unwrap();
        waiter.join().unwrap();
        assert!(!f.has_waiters());
    });
}
