//! Loom models of wait sets: `wait` and `as_completed` (DESIGN §2 "Wait sets", issue 3).
//!
//! Same shape as `loom_future.rs`: at most three threads; the main thread is a completer and
//! joins the others; a waiting thread never joins (loom issue #249); under loom a timed wait
//! gives up right after one check. Wait sets are loom-tracked allocations, so "freed exactly
//! once, no leak" is checked in every execution; `miri_wait_twins.rs` runs the same scenarios
//! natively and under Miri.
#![cfg(concur_loom)]

use std::time::Duration;

use concur_core::{ReturnWhen, as_completed, promise, wait};
use concur_loom_tests::model;
use loom::thread;

#[test]
fn first_completed_two_futures_two_setters() {
    model(|| {
        let (p1, f1) = promise::<u32>();
        let (p2, f2) = promise::<u32>();
        let (w1, w2) = (f1.clone(), f2.clone());
        let waiter = thread::spawn(move || {
            let waited = wait([&w1, &w2], None, ReturnWhen::FirstCompleted);
            assert!(!waited.done().is_empty());
            assert!(waited.done().iter().all(|f| f.is_done()));
        });
        let setter = thread::spawn(move || p2.set_result(2).unwrap());
        p1.set_result(1).unwrap();
        waiter.join().unwrap();
        setter.join().unwrap();
        assert!(!f1.has_waiters() && !f2.has_waiters());
    });
}

#[test]
fn all_completed_with_one_done_and_a_setter() {
    model(|| {
        let (p1, f1) = promise::<u32>();
        p1.set_result(1).unwrap();
        let (p2, f2) = promise::<u32>();
        let (w1, w2) = (f1.clone(), f2.clone());
        let waiter = thread::spawn(move || {
            let waited = wait([&w1, &w2], None, ReturnWhen::AllCompleted);
            assert_eq!(waited.done().len(), 2); // counted once each, never early
        });
        p2.set_result(2).unwrap();
        waiter.join().unwrap();
        assert!(!f2.has_waiters());
    });
}

#[test]
fn first_exception_error_and_ok() {
    model(|| {
        let (p1, failing) = promise::<u32>();
        let (p2, fine) = promise::<u32>();
        let (w1, w2) = (failing.clone(), fine.clone());
        let waiter = thread::spawn(move || {
            let waited = wait([&w1, &w2], None, ReturnWhen::FirstException);
            // It returns on the failure, or once both are done: the failure is done either way.
            assert!(waited.done().iter().any(|f| **f == w1));
        });
        let setter = thread::spawn(move || p2.set_result(2).unwrap());
        p1.set_error(std::fmt::Error).unwrap();
        waiter.join().unwrap();
        setter.join().unwrap();
    });
}

#[test]
fn wait_timing_out_while_woken() {
    model(|| {
        let (p, f) = promise::<u32>();
        let w = f.clone();
        let waiter = thread::spawn(move || {
            let waited = wait(
                [&w],
                Some(Duration::from_secs(60)),
                ReturnWhen::AllCompleted,
            );
            assert_eq!(waited.done().len() + waited.not_done().len(), 1);
        });
        p.set_result(1).unwrap();
        waiter.join().unwrap();
        assert!(!f.has_waiters());
    });
}

#[test]
fn as_completed_dropped_early_while_setters_run() {
    model(|| {
        let (p1, f1) = promise::<u32>();
        let (p2, f2) = promise::<u32>();
        let (_p3, f3) = promise::<u32>();
        let inputs = vec![f1, f2, f3.clone()];
        let consumer = thread::spawn(move || {
            let mut iter = as_completed(inputs, None);
            let first = iter.next().unwrap().unwrap();
            assert!(first.is_done());
            drop(iter); // early: the others are still linked or just fired
        });
        let setter = thread::spawn(move || p2.set_result(2).unwrap());
        p1.set_result(1).unwrap();
        consumer.join().unwrap();
        setter.join().unwrap();
        assert!(!f3.has_waiters());
    });
}

#[test]
fn the_same_future_passed_twice() {
    model(|| {
        let (p, f) = promise::<u32>();
        let w = f.clone();
        let waiter = thread::spawn(move || {
            let waited = wait([&w, &w], None, ReturnWhen::AllCompleted);
            assert_eq!(waited.done().len(), 1);
            assert!(waited.not_done().is_empty());
        });
        p.set_result(1).unwrap();
        waiter.join().unwrap();
        assert!(!f.has_waiters());
    });
}
