//! Awaiting a `Future` from tokio and from a minimal hand-written poll loop; dropping the
//! awaiting future unregisters it; a re-poll with a new waker is honoured.

use std::future::{Future as _, IntoFuture};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;

use concur_core::promise;

mod common;

/// A waker that counts its wakes and unparks the polling thread.
struct CountingWaker {
    wakes: AtomicUsize,
    thread: thread::Thread,
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.thread.unpark();
    }
}

fn counting_waker() -> (Arc<CountingWaker>, Waker) {
    let inner = Arc::new(CountingWaker {
        wakes: AtomicUsize::new(0),
        thread: thread::current(),
    });
    (inner.clone(), Waker::from(inner))
}

/// The smallest executor: poll, park until woken, repeat.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let (_count, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park();
    }
}

#[test]
fn hand_written_poll_loop_gets_the_value() {
    let (promise, future) = promise::<String>();
    let setter = thread::spawn(move || promise.set_result("async".into()).unwrap());
    assert_eq!(block_on(future.into_future()).unwrap(), "async");
    setter.join().unwrap();
}

#[test]
fn borrowing_await_gives_a_reference() {
    let (promise, future) = promise::<u32>();
    promise.set_result(4).unwrap();
    let value: &u32 = block_on((&future).into_future()).unwrap();
    assert_eq!(*value, 4);
}

// Miri cannot run tokio's driver; the hand-written poll loop covers the protocol there.
#[cfg(not(miri))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_awaits_a_future_completed_by_a_plain_thread() {
    let (promise, future) = promise::<u64>();
    let reader = future.clone();
    thread::spawn(move || promise.set_result(10).unwrap());
    assert_eq!(*(&reader).await.unwrap(), 10);
    drop(reader);
    assert_eq!(future.await.unwrap(), 10);
}

// Miri cannot run tokio's driver; the hand-written poll loop covers the protocol there.
#[cfg(not(miri))]
#[tokio::test]
async fn tokio_sees_cancellation_and_failure() {
    let (_promise, cancelled) = promise::<u8>();
    cancelled.cancel();
    assert!(matches!(
        cancelled.await,
        Err(concur_core::Error::Cancelled)
    ));
    let (promise, failed) = promise::<u8>();
    tokio::spawn(async move { promise.set_error(std::fmt::Error).unwrap() });
    assert!(matches!(failed.await, Err(concur_core::Error::Failed(_))));
}

// Miri cannot run tokio's driver; the hand-written poll loop covers the protocol there.
#[cfg(not(miri))]
#[tokio::test]
async fn tokio_timeout_drops_the_awaiting_future_and_unregisters() {
    let (promise, future) = promise::<u8>();
    let outcome = tokio::time::timeout(std::time::Duration::from_millis(5), &future).await;
    assert!(outcome.is_err());
    assert!(!future.has_waiters());
    promise.set_result(1).unwrap();
    assert_eq!(*(&future).await.unwrap(), 1);
}

#[test]
fn dropping_a_pending_awaiter_unregisters_and_drops_its_waker() {
    let (promise, future) = promise::<u8>();
    let (count, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    {
        let mut awaiting = pin!((&future).into_future());
        assert!(awaiting.as_mut().poll(&mut cx).is_pending());
        assert!(future.has_waiters());
    }
    assert!(!future.has_waiters());
    // Our waker's clone held by the registration is gone.
    assert_eq!(Arc::strong_count(&count), 2);
    promise.set_result(1).unwrap();
    assert_eq!(count.wakes.load(Ordering::SeqCst), 0);
}

#[test]
fn a_repoll_with_a_new_waker_wakes_the_new_one() {
    let (promise, future) = promise::<u8>();
    let (first, first_waker) = counting_waker();
    let (second, second_waker) = counting_waker();
    let mut awaiting = pin!((&future).into_future());
    assert!(
        awaiting
            .as_mut()
            .poll(&mut Context::from_waker(&first_waker))
            .is_pending()
    );
    assert!(
        awaiting
            .as_mut()
            .poll(&mut Context::from_waker(&second_waker))
            .is_pending()
    );
    promise.set_result(2).unwrap();
    assert_eq!(first.wakes.load(Ordering::SeqCst), 0);
    assert_eq!(second.wakes.load(Ordering::SeqCst), 1);
    assert!(matches!(
        awaiting
            .as_mut()
            .poll(&mut Context::from_waker(&second_waker)),
        Poll::Ready(Ok(2))
    ));
}

#[test]
fn awaiting_races_completion_without_losing_wakes() {
    for _ in 0..common::scaled(300, 10) {
        let (promise, future) = promise::<u32>();
        let setter = thread::spawn(move || promise.set_result(3).unwrap());
        assert_eq!(block_on(future.into_future()).unwrap(), 3);
        setter.join().unwrap();
    }
}

#[test]
fn a_panicking_waker_does_not_take_the_completer_down() {
    struct Exploding;
    impl Wake for Exploding {
        fn wake(self: Arc<Self>) {
            panic!("waker exploded");
        }
    }
    let (promise, future) = promise::<u8>();
    let waker = Waker::from(Arc::new(Exploding));
    let mut awaiting = pin!((&future).into_future());
    assert!(
        awaiting
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    let other = future.clone();
    let ran = Arc::new(AtomicUsize::new(0));
    let flag = ran.clone();
    other.add_done_callback(move |_| {
        flag.fetch_add(1, Ordering::SeqCst);
    });
    promise.set_result(1).unwrap(); // must not panic
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}
