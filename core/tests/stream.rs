//! `as_completed` as a `futures_core::Stream` (feature `stream`).
#![cfg(feature = "stream")]

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use concur_core::{as_completed, promise};
use futures_core::Stream;

struct CountWakes(AtomicUsize);

impl Wake for CountWakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn the_stream_yields_done_ones_then_wakes_on_each_completion() {
    let (p1, f1) = promise::<u32>();
    let (p2, f2) = promise::<u32>();
    let (p3, f3) = promise::<u32>();
    p1.set_result(1).unwrap();
    let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
    let waker = Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    let mut stream = as_completed(vec![f1, f2, f3], None);
    let mut next = |cx: &mut Context<'_>| Pin::new(&mut stream).poll_next(cx);

    assert!(matches!(next(&mut cx), Poll::Ready(Some(Ok(f))) if *f.result().unwrap() == 1));
    assert!(next(&mut cx).is_pending());
    p3.set_result(3).unwrap();
    assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
    assert!(matches!(next(&mut cx), Poll::Ready(Some(Ok(f))) if *f.result().unwrap() == 3));
    assert!(next(&mut cx).is_pending());
    p2.set_result(2).unwrap();
    assert_eq!(wakes.0.load(Ordering::SeqCst), 2);
    assert!(matches!(next(&mut cx), Poll::Ready(Some(Ok(f))) if *f.result().unwrap() == 2));
    assert!(matches!(next(&mut cx), Poll::Ready(None)));
}
