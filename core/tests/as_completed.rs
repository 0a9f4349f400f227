//! `as_completed` (Python's `concurrent.futures.as_completed`).

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use common::DropCounter;
use concur_core::{
    AnyFuture, AsCompletedError, Future, Promise, TimeoutError, as_completed, promise,
};

fn pending(n: usize) -> (Vec<Promise<u32>>, Vec<Future<u32>>) {
    (0..n).map(|_| promise::<u32>()).unzip()
}

#[test]
fn done_first_then_in_completion_order() {
    let (mut promises, futures) = pending(4);
    let early = promises.remove(2);
    early.set_result(2).unwrap();
    let mut order = as_completed(futures.clone(), None);
    assert_eq!(*order.next().unwrap().unwrap().result().unwrap(), 2);
    // Complete the rest in a known order, one at a time, each seen before the next.
    for (value, p) in [
        (30u32, promises.remove(2)),
        (10, promises.remove(0)),
        (20, promises.remove(0)),
    ] {
        p.set_result(value).unwrap();
        assert_eq!(*order.next().unwrap().unwrap().result().unwrap(), value);
    }
    assert!(order.next().is_none());
}

#[test]
fn a_hundred_thousand_futures_completed_by_two_threads_yield_each_once() {
    let (promises, futures) = pending(common::scaled(100_000, 300));
    let mut halves: Vec<Vec<(usize, Promise<u32>)>> = vec![Vec::new(), Vec::new()];
    for (i, p) in promises.into_iter().enumerate() {
        halves[i % 2].push((i, p));
    }
    let setters: Vec<_> = halves
        .into_iter()
        .map(|half| {
            thread::spawn(move || {
                half.into_iter()
                    .for_each(|(i, p)| p.set_result(i as u32).unwrap())
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for future in as_completed(&futures, None) {
        assert!(seen.insert(*future.unwrap().result().unwrap()));
    }
    for s in setters {
        s.join().unwrap();
    }
    assert_eq!(seen.len(), common::scaled(100_000, 300));
}

#[test]
fn timeout_reports_unfinished_counts_then_ends() {
    let (mut promises, futures) = pending(3);
    promises.remove(0).set_result(1).unwrap();
    let mut iter = as_completed(&futures, Some(Duration::from_millis(10)));
    assert!(iter.next().unwrap().is_ok());
    let error = iter.next().unwrap().unwrap_err();
    assert_eq!(
        error,
        AsCompletedError::TimedOut(TimeoutError {
            unfinished: 2,
            total: 3
        })
    );
    assert!(error.is_timeout() && !error.is_deadlock() && error.unfinished() == 2);
    assert_eq!(error.to_string(), "2 (of 3) futures unfinished");
    assert!(iter.next().is_none());
    drop(iter);
    assert!(futures.iter().all(|f| !f.has_waiters()));
}

#[test]
fn zero_timeout_still_yields_the_done_ones_first() {
    let (mut promises, futures) = pending(2);
    promises.remove(1).set_result(5).unwrap();
    let items: Vec<_> = as_completed(&futures, Some(Duration::ZERO)).collect();
    assert_eq!(items.len(), 2);
    assert_eq!(*items[0].as_ref().unwrap().result().unwrap(), 5);
    assert!(items[1].is_err());
}

#[test]
fn duplicates_are_yielded_once() {
    let (promise, future) = promise::<u32>();
    promise.set_result(1).unwrap();
    let items: Vec<_> = as_completed(vec![future.clone(), future.clone(), future], None).collect();
    assert_eq!(items.len(), 1);
}

#[test]
fn dropping_early_unregisters_everything() {
    let (promises, futures) = pending(3);
    let iter = as_completed(&futures, None);
    assert!(futures.iter().all(Future::has_waiters));
    drop(iter);
    assert!(futures.iter().all(|f| !f.has_waiters()));
    drop(promises);
}

#[test]
fn yielded_futures_are_not_retained() {
    let counter = DropCounter::default();
    let (p1, f1) = promise::<common::Token>();
    let (_p2, f2) = promise::<common::Token>();
    let mut iter = as_completed(vec![f1, f2], None);
    p1.set_result(counter.token()).unwrap();
    let first = iter.next().unwrap().unwrap();
    drop(first); // the only handle left to that cell: its value is dropped now
    assert_eq!(counter.dropped(), 1);
    drop(iter);
}

#[test]
fn cancel_is_yielded_at_once() {
    let (_promises, futures) = pending(2);
    let canceller = futures[0].clone();
    let t = thread::spawn(move || {
        while !canceller.has_waiters() {
            thread::yield_now();
        }
        canceller.cancel();
    });
    let first = as_completed(&futures, None).next().unwrap().unwrap();
    t.join().unwrap();
    assert!(first.is_cancelled());
}

#[test]
fn mixed_types_and_completions_while_iterating() {
    let (p1, number) = promise::<u32>();
    let (p2, text) = promise::<String>();
    let arrived = Arc::new(AtomicUsize::new(0));
    let gate = arrived.clone();
    let setter = thread::spawn(move || {
        common::await_count(&gate, 1);
        p1.set_result(1).unwrap();
        p2.set_result("two".into()).unwrap();
    });
    let mixed: Vec<AnyFuture> = vec![number.into(), text.into()];
    let mut iter = as_completed(mixed, None);
    arrived.store(1, Ordering::SeqCst);
    let kinds: Vec<bool> = iter
        .by_ref()
        .map(|f| f.unwrap().downcast::<String>().is_ok())
        .collect();
    setter.join().unwrap();
    assert_eq!(kinds.len(), 2);
    assert_eq!(kinds.iter().filter(|k| **k).count(), 1);
}

#[test]
fn the_iterator_can_move_between_threads() {
    let (promises, futures) = pending(2);
    let mut iter = as_completed(futures, None);
    let mut promises = promises.into_iter();
    promises.next().unwrap().set_result(1).unwrap();
    assert!(iter.next().unwrap().is_ok());
    let last = promises.next().unwrap();
    let consumer = thread::spawn(move || iter.next().unwrap().is_ok());
    last.set_result(2).unwrap();
    assert!(consumer.join().unwrap());
}
