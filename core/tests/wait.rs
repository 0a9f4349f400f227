//! `wait` (Python's `concurrent.futures.wait`): every `ReturnWhen`, timeouts, duplicates, mixed
//! types, cancellation, and that nothing stays registered.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use concur_core::{AnyFuture, Future, Promise, ReturnWhen, promise, wait};

fn pending(n: usize) -> (Vec<Promise<u32>>, Vec<Future<u32>>) {
    (0..n).map(|_| promise::<u32>()).unzip()
}

#[test]
fn first_completed_over_ten_thousand_returns_exactly_the_one_completed() {
    let n = common::scaled(10_000, 100);
    let (mut promises, futures) = pending(n);
    let chosen = promises.swap_remove(n / 3);
    let target = futures[n / 3].clone();
    let setter = thread::spawn(move || chosen.set_result(7).unwrap());
    let waited = wait(&futures, None, ReturnWhen::FirstCompleted);
    setter.join().unwrap();
    assert_eq!(waited.done().len(), 1);
    assert_eq!(*waited.done()[0], target);
    assert_eq!(waited.not_done().len(), n - 1);
    assert!(futures.iter().all(|f| !f.has_waiters()));
}

#[test]
fn already_done_inputs_return_at_once() {
    let (p, done) = promise::<u32>();
    p.set_result(1).unwrap();
    let (_p2, never) = promise::<u32>();
    let start = Instant::now();
    let waited = wait([&done, &never], None, ReturnWhen::FirstCompleted);
    assert_eq!(waited.done(), [&done]);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(!never.has_waiters());
}

#[test]
fn all_completed_waits_for_every_one() {
    let (promises, futures) = pending(50);
    let arrived = Arc::new(AtomicUsize::new(0));
    let gate = arrived.clone();
    let setter = thread::spawn(move || {
        common::await_count(&gate, 1);
        for (i, p) in promises.into_iter().enumerate() {
            p.set_result(i as u32).unwrap();
        }
    });
    arrived.store(1, Ordering::SeqCst);
    let waited = wait(&futures, None, ReturnWhen::AllCompleted);
    setter.join().unwrap();
    assert_eq!(waited.done().len(), 50);
    assert!(waited.not_done().is_empty());
}

#[test]
fn timeout_returns_the_partial_split() {
    let (mut promises, futures) = pending(3);
    promises.remove(0).set_result(1).unwrap();
    let start = Instant::now();
    let waited = wait(
        &futures,
        Some(Duration::from_millis(20)),
        ReturnWhen::AllCompleted,
    );
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert_eq!((waited.done().len(), waited.not_done().len()), (1, 2));
    assert!(futures.iter().all(|f| !f.has_waiters()));
}

#[test]
fn zero_timeout_never_blocks() {
    let (_promises, futures) = pending(3);
    let waited = wait(&futures, Some(Duration::ZERO), ReturnWhen::FirstCompleted);
    assert_eq!(waited.not_done().len(), 3);
}

#[test]
fn duplicates_count_once() {
    let (promise, future) = promise::<u32>();
    let (_other_promise, other) = concur_core::promise::<u32>();
    let inputs = vec![
        future.clone(),
        other.clone(),
        future.clone(),
        future.clone(),
    ];
    promise.set_result(3).unwrap();
    let waited = wait(
        inputs,
        Some(Duration::from_millis(5)),
        ReturnWhen::AllCompleted,
    );
    assert_eq!(waited.done().len(), 1);
    assert_eq!(waited.not_done().len(), 1);
}

#[test]
fn first_exception_returns_on_a_failure_with_earlier_successes_done() {
    let (mut promises, futures) = pending(3);
    promises.remove(0).set_result(1).unwrap();
    let failing = promises.remove(0);
    let setter = thread::spawn(move || failing.set_error(std::fmt::Error).unwrap());
    let waited = wait(&futures, None, ReturnWhen::FirstException);
    setter.join().unwrap();
    assert_eq!(waited.done().len(), 2);
    assert_eq!(waited.not_done().len(), 1);
    drop(promises);
}

#[test]
fn first_exception_without_failure_is_all_completed_and_cancel_is_no_exception() {
    let (mut promises, futures) = pending(3);
    futures[0].cancel();
    let rest: Vec<_> = promises.drain(1..).collect();
    let setter = thread::spawn(move || {
        for p in rest {
            p.set_result(0).unwrap();
        }
    });
    let waited = wait(&futures, None, ReturnWhen::FirstException);
    setter.join().unwrap();
    assert_eq!(waited.done().len(), 3);
}

#[test]
fn cancel_counts_as_done_at_once() {
    let (_promises, futures) = pending(2);
    let canceller = futures[1].clone();
    let t = thread::spawn(move || {
        while !canceller.has_waiters() {
            thread::yield_now();
        }
        assert!(canceller.cancel());
    });
    let waited = wait(&futures, None, ReturnWhen::FirstCompleted);
    t.join().unwrap();
    assert_eq!(waited.done().len(), 1);
    assert!(waited.done()[0].is_cancelled());
}

#[test]
fn mixed_output_types_in_one_call() {
    let (p1, number) = promise::<u32>();
    let (p2, text) = promise::<String>();
    let mixed: Vec<AnyFuture> = vec![number.clone().into(), text.clone().into()];
    p2.set_result("done".into()).unwrap();
    let waited = wait(&mixed, None, ReturnWhen::FirstCompleted);
    assert_eq!(waited.done().len(), 1);
    let first = (*waited.done()[0]).clone().downcast::<String>().unwrap();
    assert_eq!(first.result().unwrap(), "done");
    assert!(
        (*waited.not_done()[0])
            .clone()
            .downcast::<String>()
            .is_err()
    );
    p1.set_result(2).unwrap();
    let (done, not_done) = wait(mixed, None, ReturnWhen::AllCompleted).into_parts();
    assert_eq!((done.len(), not_done.len()), (2, 0));
}

#[test]
fn a_long_lived_future_used_in_ten_thousand_calls_retains_nothing() {
    let (promise, long_lived) = promise::<u32>();
    for _ in 0..common::scaled(10_000, 50) {
        let (p, f) = concur_core::promise::<u32>();
        p.set_result(0).unwrap();
        let waited = wait([&long_lived, &f], None, ReturnWhen::FirstCompleted);
        assert_eq!(waited.done().len(), 1);
    }
    for _ in 0..common::scaled(100, 5) {
        wait(
            [&long_lived],
            Some(Duration::from_micros(10)),
            ReturnWhen::AllCompleted,
        );
    }
    assert!(!long_lived.has_waiters());
    promise.set_result(1).unwrap();
}

#[test]
fn completions_racing_registration_are_never_missed() {
    for _ in 0..common::scaled(200, 10) {
        let (promises, futures) = pending(8);
        let setter = thread::spawn(move || {
            for p in promises {
                p.set_result(1).unwrap();
            }
        });
        let waited = wait(&futures, None, ReturnWhen::AllCompleted);
        setter.join().unwrap();
        assert_eq!(waited.done().len(), 8);
        assert!(futures.iter().all(|f| !f.has_waiters()));
    }
}

#[test]
fn empty_input_returns_at_once() {
    let none: Vec<Future<u8>> = Vec::new();
    for when in [
        ReturnWhen::FirstCompleted,
        ReturnWhen::FirstException,
        ReturnWhen::AllCompleted,
    ] {
        let waited = wait(&none, None, when);
        assert!(waited.done().is_empty() && waited.not_done().is_empty());
    }
}
