//! The producer side: `set_running_or_notify_cancel`, `set_result`, `set_error`, losing to
//! `cancel`, and abandonment.

use std::thread;

use concur_core::{Error, Failure, promise};

#[test]
fn set_after_cancel_is_refused_and_hands_the_value_back() {
    let (promise, future) = promise::<String>();
    assert!(future.cancel());
    assert!(promise.is_cancelled());
    let refused = promise.set_result("x".into()).unwrap_err();
    assert_eq!(refused.into_inner(), "x");
    assert!(matches!(future.result(), Err(Error::Cancelled)));
}

#[test]
fn set_error_after_cancel_is_refused() {
    let (promise, future) = promise::<u8>();
    future.cancel();
    let refused = promise.set_error(std::fmt::Error).unwrap_err();
    assert!(refused.into_inner().is_error());
}

#[test]
fn set_running_after_cancel_returns_false() {
    let (promise, future) = promise::<u8>();
    future.cancel();
    assert!(!promise.set_running_or_notify_cancel());
}

#[test]
fn set_running_twice_says_false_and_leaves_it_running() {
    let (promise, future) = promise::<u8>();
    assert!(promise.set_running_or_notify_cancel());
    assert!(
        !promise.set_running_or_notify_cancel(),
        "a second claim must not claim the future again"
    );
    assert!(future.is_running());
    assert!(!promise.is_cancelled());
    assert!(!future.cancel());
    promise.set_result(5).unwrap();
    assert_eq!(*future.result().unwrap(), 5);
}

#[test]
fn run_after_an_explicit_claim_still_runs_the_work() {
    let (promise, future) = promise::<u8>();
    assert!(promise.set_running_or_notify_cancel());
    promise.run(|| 9);
    assert_eq!(*future.result().unwrap(), 9);
}

#[test]
fn set_running_after_cancel_stays_false_and_cancelled() {
    let (promise, future) = promise::<u8>();
    assert!(future.cancel());
    assert!(!promise.set_running_or_notify_cancel());
    assert!(!promise.set_running_or_notify_cancel());
    assert!(future.is_cancelled());
}

#[test]
fn dropping_the_promise_abandons_the_future() {
    let (promise, future) = promise::<u8>();
    drop(promise);
    let failure = future.error().unwrap().expect("abandoned");
    assert!(failure.is_abandoned());
    assert!(matches!(future.result(), Err(Error::Failed(f)) if f.is_abandoned()));
}

#[test]
fn a_producer_thread_that_panics_abandons_its_future() {
    let (promise, future) = promise::<u8>();
    let t = thread::spawn(move || {
        let _owned = promise;
        panic!("worker died");
    });
    assert!(t.join().is_err());
    assert!(future.error().unwrap().unwrap().is_abandoned());
}

#[test]
fn dropping_after_cancel_leaves_it_cancelled() {
    let (promise, future) = promise::<u8>();
    future.cancel();
    drop(promise);
    assert!(future.is_cancelled());
}

#[test]
fn run_catches_a_panic_with_its_message() {
    let (promise, future) = promise::<u8>();
    promise.run(|| panic!("task exploded"));
    let failure = future.error().unwrap().unwrap();
    assert!(failure.is_panic());
    assert_eq!(failure.panic_message(), Some("task exploded"));
    let payload = failure.clone().into_panic().unwrap();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"task exploded"));
    // A second taker gets the message as a String.
    let again = failure.into_panic().unwrap();
    assert_eq!(
        again.downcast_ref::<String>().map(String::as_str),
        Some("task exploded")
    );
}

#[test]
fn resume_unwind_reraises_the_task_panic() {
    let (promise, future) = promise::<u8>();
    promise.run(|| std::panic::panic_any(42u32));
    let failure = future.error().unwrap().unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        failure.resume_unwind()
    }))
    .unwrap_err();
    assert_eq!(caught.downcast_ref::<u32>(), Some(&42));
}

#[test]
fn run_skips_work_on_a_cancelled_future() {
    let (promise, future) = promise::<u8>();
    future.cancel();
    promise.run(|| unreachable!("cancelled work must not run"));
    assert!(future.is_cancelled());
}

#[test]
fn a_failure_passed_to_set_error_is_not_wrapped() {
    let (promise, future) = promise::<u8>();
    promise.set_error(Failure::abandoned()).unwrap();
    assert!(future.error().unwrap().unwrap().is_abandoned());
}

#[test]
fn errors_display_and_chain() {
    use std::error::Error as _;
    let (promise, future) = promise::<u8>();
    promise
        .set_error(std::io::Error::other("root cause"))
        .unwrap();
    let error = future.result().unwrap_err();
    assert_eq!(error.to_string(), "root cause");
    let failure = error.source().expect("the failure");
    assert_eq!(
        failure.source().expect("the io error").to_string(),
        "root cause"
    );
    assert!(Error::TimedOut.is_timeout() && Error::Cancelled.is_cancelled());
    assert!(
        error
            .failure()
            .unwrap()
            .downcast_ref::<std::io::Error>()
            .is_some()
    );
}
