//! Waits leave nothing behind: timed-out waiters unlink themselves (the retention bug of Java's
//! FutureTask, CPython's as_completed and tokio, DESIGN §2).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use concur_core::promise;

mod common;

#[test]
fn a_thousand_timed_out_waits_retain_nothing() {
    let (promise, future) = promise::<u32>();
    for _ in 0..common::scaled(1_000, 30) {
        assert!(future.result_timeout(Duration::from_micros(10)).is_err());
        assert!(!future.has_waiters());
    }
    promise.set_result(1).unwrap();
    assert_eq!(future.result().unwrap(), &1);
}

#[test]
fn concurrent_timed_out_waits_retain_nothing() {
    let (promise, future) = promise::<u32>();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let future = future.clone();
            thread::spawn(move || {
                for _ in 0..common::scaled(250, 5) {
                    assert!(future.result_timeout(Duration::from_micros(50)).is_err());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(!future.has_waiters());
    drop(promise);
}

#[test]
fn timeouts_racing_completion_always_resolve() {
    // A `result_timeout` storm against completions: every wait returns the value or a timeout,
    // never hangs, and the value is seen by every wait that returns Ok.
    for round in 0..common::scaled(300, 10) as u32 {
        let (promise, future) = promise::<u32>();
        let arrived = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..3)
            .map(|i| {
                let (future, arrived) = (future.clone(), arrived.clone());
                thread::spawn(move || {
                    arrived.fetch_add(1, Ordering::SeqCst);
                    match future.result_timeout(Duration::from_micros(20 * (i + 1))) {
                        Ok(v) => assert_eq!(*v, round),
                        Err(e) => assert!(e.is_timeout()),
                    }
                })
            })
            .collect();
        while arrived.load(Ordering::SeqCst) < 3 {
            thread::yield_now();
        }
        promise.set_result(round).unwrap();
        for w in waiters {
            w.join().unwrap();
        }
        assert!(!future.has_waiters());
    }
}
