//! Send/Sync exactly when sound, handles one pointer wide.

use std::cell::Cell;
use std::mem::size_of;
use std::rc::Rc;

use concur_core::{Error, Failure, Future, IntoResultFuture, Promise, ResultFuture, SetError};

fn is_send<T: Send>() {}
fn is_sync<T: Sync>() {}
fn is_unpin<T: Unpin>() {}

#[test]
fn handles_are_send_and_sync_for_send_sync_values() {
    is_send::<Future<String>>();
    is_sync::<Future<String>>();
    is_send::<Promise<String>>();
    is_sync::<Promise<String>>();
    is_send::<IntoResultFuture<String>>();
    is_send::<ResultFuture<'static, String>>();
    is_unpin::<Future<Cell<u8>>>();
    is_unpin::<IntoResultFuture<std::marker::PhantomPinned>>();
    is_send::<Error>();
    is_sync::<Error>();
    is_send::<Failure>();
    is_sync::<Failure>();
    is_send::<SetError<String>>();
}

#[test]
fn a_promise_only_needs_send() {
    // `Cell<u8>` is Send but not Sync: producing it is fine, sharing a Future of it is not.
    is_send::<Promise<Cell<u8>>>();
    is_sync::<Promise<Cell<u8>>>();
}

#[test]
fn handles_are_one_pointer_wide() {
    assert_eq!(size_of::<Future<[u8; 1024]>>(), size_of::<usize>());
    assert_eq!(size_of::<Option<Future<u64>>>(), size_of::<usize>());
    assert_eq!(size_of::<Promise<[u8; 1024]>>(), size_of::<usize>());
}

#[test]
fn rc_futures_can_still_be_used_on_one_thread() {
    let (promise, future) = concur_core::promise::<Rc<u8>>();
    promise.set_result(Rc::new(1)).unwrap();
    assert_eq!(**future.result().unwrap(), 1);
}
