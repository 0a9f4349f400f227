//! Every value and every callback closure is dropped exactly once, on every path.

mod common;

use common::DropCounter;
use concur_core::promise;

#[test]
fn value_dropped_once_after_reading() {
    let counter = DropCounter::default();
    let (promise, future) = promise();
    promise.set_result(counter.token()).unwrap();
    let _ = future.result().unwrap();
    assert_eq!(counter.dropped(), 0);
    let clone = future.clone();
    drop(future);
    assert_eq!(counter.dropped(), 0);
    drop(clone);
    assert_eq!(counter.dropped(), 1);
}

#[test]
fn value_dropped_once_when_consumers_leave_first() {
    let counter = DropCounter::default();
    let (promise, future) = promise();
    drop(future);
    promise.set_result(counter.token()).unwrap();
    assert_eq!(counter.dropped(), 1);
}

#[test]
fn value_moved_out_is_not_dropped_by_the_cell() {
    let counter = DropCounter::default();
    let (promise, future) = promise();
    promise.set_result(counter.token()).unwrap();
    let token = future.into_result().unwrap();
    assert_eq!(counter.dropped(), 0);
    drop(token);
    assert_eq!(counter.dropped(), 1);
}

#[test]
fn refused_value_is_handed_back_not_dropped() {
    let counter = DropCounter::default();
    let (promise, future) = promise();
    future.cancel();
    let refused = promise.set_result(counter.token()).unwrap_err();
    assert_eq!(counter.dropped(), 0);
    drop(refused);
    assert_eq!(counter.dropped(), 1);
    drop(future);
    assert_eq!(counter.dropped(), 1);
}

#[test]
fn callback_closures_dropped_once_whether_run_or_not() {
    let counter = DropCounter::default();
    let (promise, future) = promise::<u8>();
    for _ in 0..3 {
        let token = counter.token();
        future.add_done_callback(move |_| drop(token));
    }
    let token = counter.token();
    future.add_done_callback(move |_| {
        let _keep = &token;
    });
    drop(future); // callbacks keep the cell alive; they still run on completion
    assert_eq!(counter.dropped(), 0);
    promise.set_result(1).unwrap();
    assert_eq!(counter.dropped(), 4);
}

#[test]
fn abandoned_and_cancelled_paths_drop_nothing_twice() {
    let counter = DropCounter::default();
    let (promise, future) = promise::<common::Token>();
    let token = counter.token();
    future.add_done_callback(move |_| drop(token));
    drop(promise);
    assert_eq!(counter.dropped(), 1);
    drop(future);
    assert_eq!(counter.dropped(), 1);
}
