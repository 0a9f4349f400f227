//! Every `Future` row of DESIGN §3 (the seeds' `Future` methods), one test each or more.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use concur_core::{Error, Future, promise};

#[test]
fn cancel_pending_is_true_and_final() {
    let (_promise, future) = promise::<u32>();
    assert!(!future.is_done());
    assert!(future.cancel());
    assert!(future.is_cancelled());
    assert!(future.is_done());
    assert!(!future.is_running());
    assert!(matches!(future.result(), Err(Error::Cancelled)));
    assert!(matches!(future.error(), Err(Error::Cancelled)));
}

#[test]
fn cancel_twice_is_true_twice_and_callbacks_run_once() {
    let (_promise, future) = promise::<u32>();
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    future.add_done_callback(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    assert!(future.cancel());
    assert!(future.cancel());
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn cancel_fails_when_running_or_finished() {
    let (promise, future) = promise::<u32>();
    assert!(promise.set_running_or_notify_cancel());
    assert!(future.is_running());
    assert!(!future.cancel());
    promise.set_result(1).unwrap();
    assert!(!future.cancel());
    assert_eq!(future.result().unwrap(), &1);
}

#[test]
fn running_is_reported_between_start_and_finish() {
    let (promise, future) = promise::<u32>();
    assert!(!future.is_running());
    promise.set_running_or_notify_cancel();
    assert!(future.is_running() && !future.is_done());
    promise.set_result(3).unwrap();
    assert!(!future.is_running() && future.is_done() && !future.is_cancelled());
}

#[test]
fn result_is_shared_by_reference_with_every_clone() {
    let (promise, future) = promise::<Vec<u8>>();
    let clones: Vec<_> = (0..4).map(|_| future.clone()).collect();
    promise.set_result(vec![7; 3]).unwrap();
    for clone in &clones {
        assert!(std::ptr::eq(
            clone.result().unwrap(),
            future.result().unwrap()
        ));
    }
}

#[test]
fn result_waits_for_another_thread() {
    let (promise, future) = promise::<u64>();
    let started = Arc::new(AtomicUsize::new(0));
    let flag = started.clone();
    let reader = future.clone();
    let waiter = thread::spawn(move || {
        flag.store(1, Ordering::SeqCst);
        *reader.result().unwrap()
    });
    common::await_count(&started, 1);
    promise.set_result(99).unwrap();
    assert_eq!(waiter.join().unwrap(), 99);
}

#[test]
fn result_timeout_times_out_and_leaves_the_future_untouched() {
    let (promise, future) = promise::<u8>();
    let start = Instant::now();
    assert!(matches!(
        future.result_timeout(Duration::from_millis(20)),
        Err(Error::TimedOut)
    ));
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert!(!future.is_done() && !future.has_waiters());
    promise.set_result(5).unwrap();
    assert_eq!(
        future.result_timeout(Duration::from_millis(20)).unwrap(),
        &5
    );
}

#[test]
fn zero_timeout_on_a_done_future_returns_its_outcome() {
    let (promise, future) = promise::<u8>();
    assert!(matches!(
        future.result_timeout(Duration::ZERO),
        Err(Error::TimedOut)
    ));
    promise.set_result(8).unwrap();
    assert_eq!(future.result_timeout(Duration::ZERO).unwrap(), &8);
    assert!(future.error_timeout(Duration::ZERO).unwrap().is_none());
}

#[test]
fn result_deadline_in_the_past_still_returns_a_done_outcome() {
    let (promise, future) = promise::<u8>();
    let past = Instant::now();
    promise.set_result(4).unwrap();
    assert_eq!(future.result_deadline(past).unwrap(), &4);
}

#[test]
fn huge_timeouts_do_not_overflow() {
    let (promise, future) = promise::<u8>();
    promise.set_result(1).unwrap();
    assert_eq!(future.result_timeout(Duration::MAX).unwrap(), &1);
}

#[test]
fn try_result_never_blocks() {
    let (promise, future) = promise::<u8>();
    assert!(future.try_result().is_none());
    assert!(future.try_error().is_none());
    promise.set_result(2).unwrap();
    assert_eq!(future.try_result().unwrap().unwrap(), &2);
}

#[test]
fn error_distinguishes_failure_cancel_and_timeout() {
    let (promise, failed) = promise::<u8>();
    promise.set_error(std::io::Error::other("bad")).unwrap();
    let failure = failed.error().unwrap().expect("a failure");
    assert_eq!(failure.to_string(), "bad");
    assert!(matches!(failed.result(), Err(Error::Failed(_))));

    let (_p, pending) = concur_core::promise::<u8>();
    assert!(matches!(
        pending.error_timeout(Duration::from_millis(1)),
        Err(Error::TimedOut)
    ));
    pending.cancel();
    assert!(matches!(
        pending.error_deadline(Instant::now()),
        Err(Error::Cancelled)
    ));
}

#[test]
fn into_result_moves_the_value_out_of_the_last_handle() {
    let (promise, future) = promise::<String>();
    let other = future.clone();
    promise.set_result("v".into()).unwrap();
    assert!(matches!(other.into_result(), Err(Error::Shared)));
    assert_eq!(future.into_result().unwrap(), "v");
}

#[test]
fn into_result_on_every_clone_gives_the_value_exactly_once() {
    for _ in 0..common::scaled(200, 10) {
        let (promise, future) = promise::<Box<u32>>();
        let handles: Vec<_> = (0..3).map(|_| future.clone()).collect();
        let winners = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = handles
            .into_iter()
            .map(|h| {
                let winners = winners.clone();
                thread::spawn(move || {
                    if let Ok(v) = h.into_result() {
                        assert_eq!(*v, 11);
                        winners.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        promise.set_result(Box::new(11)).unwrap();
        let last = future.into_result().is_ok() as usize;
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(winners.load(Ordering::SeqCst) + last, 1);
    }
}

#[test]
fn into_result_of_a_cancelled_future_is_cancelled() {
    let (_promise, future) = promise::<u8>();
    future.cancel();
    assert!(matches!(future.into_result(), Err(Error::Cancelled)));
}

#[test]
fn futures_key_a_map_by_identity() {
    // The seeds' `future_to_url` dictionary.
    let (p1, f1) = promise::<u8>();
    let (_p2, f2) = promise::<u8>();
    let mut names: HashMap<Future<u8>, &str> = HashMap::new();
    names.insert(f1.clone(), "first");
    names.insert(f2.clone(), "second");
    assert_eq!(names[&f1], "first");
    assert_eq!(names[&f2], "second");
    assert_ne!(f1, f2);
    assert_eq!(f1, f1.clone());
    p1.set_result(1).unwrap();
    assert_eq!(names[&f1], "first");
}

#[test]
fn wait_variants_report_done() {
    let (promise, future) = promise::<u8>();
    assert!(!future.wait_timeout(Duration::from_millis(1)));
    assert!(!future.wait_deadline(Instant::now()));
    promise.set_result(0).unwrap();
    future.wait();
    assert!(future.wait_timeout(Duration::ZERO));
}

#[test]
fn debug_shows_the_state() {
    let (promise, future) = promise::<u8>();
    assert_eq!(format!("{future:?}"), r#"Future { state: "pending" }"#);
    promise.set_result(1).unwrap();
    assert_eq!(format!("{future:?}"), r#"Future { state: "finished" }"#);
}

#[test]
fn many_readers_and_one_setter_agree() {
    for round in 0..common::scaled(100, 5) as u64 {
        let (promise, future) = promise::<u64>();
        let arrived = Arc::new(AtomicUsize::new(0));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (f, arrived) = (future.clone(), arrived.clone());
                thread::spawn(move || {
                    arrived.fetch_add(1, Ordering::SeqCst);
                    *f.result().unwrap()
                })
            })
            .collect();
        common::await_count(&arrived, 3);
        promise.set_result(round).unwrap();
        for r in readers {
            assert_eq!(r.join().unwrap(), round);
        }
    }
}
