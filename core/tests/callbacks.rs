//! `add_done_callback`: once, in order, outside any lock, panics caught and reported.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use concur_core::{CallbackPanic, promise};

mod common;

#[test]
fn callbacks_run_once_in_the_order_added() {
    let (promise, future) = promise::<u32>();
    let log = Arc::new(Mutex::new(Vec::new()));
    for i in 0..10 {
        let log = log.clone();
        future.add_done_callback(move |f| log.lock().unwrap().push((i, *f.result().unwrap())));
    }
    promise.set_result(7).unwrap();
    let expected: Vec<_> = (0..10).map(|i| (i, 7)).collect();
    assert_eq!(*log.lock().unwrap(), expected);
}

#[test]
fn a_callback_on_a_done_future_runs_at_once_in_this_thread() {
    let (promise, future) = promise::<u32>();
    promise.set_result(1).unwrap();
    let here = thread::current().id();
    let ran_in = Arc::new(Mutex::new(None));
    let slot = ran_in.clone();
    future.add_done_callback(move |_| *slot.lock().unwrap() = Some(thread::current().id()));
    assert_eq!(*ran_in.lock().unwrap(), Some(here));
}

#[test]
fn callbacks_run_in_the_completing_thread() {
    let (promise, future) = promise::<u32>();
    let ran_in = Arc::new(Mutex::new(None));
    let slot = ran_in.clone();
    future.add_done_callback(move |_| *slot.lock().unwrap() = Some(thread::current().id()));
    let completer = thread::spawn(move || {
        promise.set_result(1).unwrap();
        thread::current().id()
    });
    let completer_id = completer.join().unwrap();
    assert_eq!(*ran_in.lock().unwrap(), Some(completer_id));
}

#[test]
fn a_callback_may_use_the_future_it_is_given() {
    // Outside any lock: a callback can wait on, clone and even add callbacks to its future.
    let (promise, future) = promise::<u32>();
    let seen = Arc::new(AtomicUsize::new(0));
    let outer = seen.clone();
    future.add_done_callback(move |f| {
        let inner = outer.clone();
        f.clone().add_done_callback(move |g| {
            inner.fetch_add(*g.result().unwrap() as usize, Ordering::SeqCst);
        });
    });
    promise.set_result(5).unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 5);
}

static HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);

fn counting_hook(panic: &CallbackPanic<'_>) {
    if panic.message() == Some("callback exploded") {
        HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_panicking_callback_is_reported_and_the_next_still_runs() {
    concur_core::set_callback_panic_hook(counting_hook);
    let (promise, future) = promise::<u32>();
    let after = Arc::new(AtomicUsize::new(0));
    future.add_done_callback(|_| panic!("callback exploded"));
    let counter = after.clone();
    future.add_done_callback(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    promise.set_result(1).unwrap(); // must not panic
    assert_eq!(after.load(Ordering::SeqCst), 1);
    assert!(HOOK_CALLS.load(Ordering::SeqCst) >= 1);
    // Also on an already-done future, in this thread.
    let before = HOOK_CALLS.load(Ordering::SeqCst);
    future.add_done_callback(|_| panic!("callback exploded"));
    assert_eq!(HOOK_CALLS.load(Ordering::SeqCst), before + 1);
}

#[test]
fn callbacks_added_while_completing_run_exactly_once() {
    for _ in 0..common::scaled(200, 5) {
        let (promise, future) = promise::<u32>();
        let runs = Arc::new(AtomicUsize::new(0));
        let adders: Vec<_> = (0..2)
            .map(|_| {
                let (future, runs) = (future.clone(), runs.clone());
                thread::spawn(move || {
                    for _ in 0..50 {
                        let runs = runs.clone();
                        future.add_done_callback(move |_| {
                            runs.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                })
            })
            .collect();
        promise.set_result(0).unwrap();
        for a in adders {
            a.join().unwrap();
        }
        assert_eq!(runs.load(Ordering::SeqCst), 100);
        assert!(!future.has_waiters());
    }
}
