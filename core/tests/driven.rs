//! Driven futures: the waiting thread's `Drive` is called before it parks, with its deadline,
//! never on a done future or by multi-future waits; the driver lives and dies with the cell.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use common::{DropCounter, Token};
use concur_core::{Drive, Error, Promise, ReturnWhen, driven_promise};

/// A promise the test or the driver may take and complete.
type Slot = Arc<Mutex<Option<Promise<u32>>>>;

/// Records each call; completes the future with `value` if `complete`, and tells `called`.
struct Recorder {
    slot: Slot,
    complete: bool,
    calls: Arc<AtomicUsize>,
    watches: Arc<AtomicUsize>,
    threads: Arc<Mutex<Vec<ThreadId>>>,
    deadlines: Arc<Mutex<Vec<Option<Instant>>>>,
    called: Mutex<Option<mpsc::Sender<()>>>,
    _token: Option<Token>,
}

impl Drive for Recorder {
    fn drive(&self, deadline: Option<Instant>) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.threads.lock().unwrap().push(thread::current().id());
        self.deadlines.lock().unwrap().push(deadline);
        if self.complete {
            if let Some(promise) = self.slot.lock().unwrap().take() {
                promise.set_result(7).unwrap();
            }
        }
        if let Some(called) = self.called.lock().unwrap().as_ref() {
            let _ = called.send(());
        }
    }

    fn watch(&self) {
        self.watches.fetch_add(1, Ordering::SeqCst);
    }
}

struct Setup {
    future: concur_core::Future<u32>,
    slot: Slot,
    calls: Arc<AtomicUsize>,
    watches: Arc<AtomicUsize>,
    threads: Arc<Mutex<Vec<ThreadId>>>,
    deadlines: Arc<Mutex<Vec<Option<Instant>>>>,
}

fn setup(complete: bool, called: Option<mpsc::Sender<()>>, token: Option<Token>) -> Setup {
    let slot: Slot = Arc::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let watches = Arc::new(AtomicUsize::new(0));
    let threads = Arc::new(Mutex::new(Vec::new()));
    let deadlines = Arc::new(Mutex::new(Vec::new()));
    let (promise, future) = driven_promise(Recorder {
        slot: slot.clone(),
        complete,
        calls: calls.clone(),
        watches: watches.clone(),
        threads: threads.clone(),
        deadlines: deadlines.clone(),
        called: Mutex::new(called),
        _token: token,
    });
    *slot.lock().unwrap() = Some(promise);
    Setup {
        future,
        slot,
        calls,
        watches,
        threads,
        deadlines,
    }
}

#[test]
fn the_waiting_thread_completes_the_future_itself() {
    let s = setup(true, None, None);
    assert_eq!(*s.future.result().unwrap(), 7);
    assert_eq!(s.calls.load(Ordering::SeqCst), 1);
    assert_eq!(*s.threads.lock().unwrap(), [thread::current().id()]);
    assert_eq!(*s.deadlines.lock().unwrap(), [None]);
}

#[test]
fn a_driver_that_cannot_help_leaves_the_wait_to_park() {
    let (called, on_call) = mpsc::channel();
    let s = setup(false, Some(called), None);
    let slot = s.slot.clone();
    let completer = thread::spawn(move || {
        on_call.recv().unwrap();
        slot.lock().unwrap().take().unwrap().set_result(9).unwrap();
    });
    assert_eq!(*s.future.result().unwrap(), 9);
    completer.join().unwrap();
    assert_eq!(s.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_timed_wait_hands_its_deadline_to_the_driver() {
    let s = setup(false, None, None);
    let before = Instant::now();
    let timeout = Duration::from_millis(20);
    assert!(matches!(
        s.future.result_timeout(timeout),
        Err(Error::TimedOut)
    ));
    let deadlines = s.deadlines.lock().unwrap().clone();
    assert_eq!(deadlines.len(), 1);
    let deadline = deadlines[0].expect("a timed wait passes its deadline");
    assert!(deadline >= before + timeout && deadline <= Instant::now());
    // The future is untouched: it can still complete and be read.
    s.slot
        .lock()
        .unwrap()
        .take()
        .unwrap()
        .set_result(1)
        .unwrap();
    assert_eq!(*s.future.result().unwrap(), 1);
    assert_eq!(
        s.calls.load(Ordering::SeqCst),
        1,
        "done futures are not driven"
    );
}

#[test]
fn every_blocking_wait_drives() {
    let s = setup(true, None, None);
    assert!(s.future.wait());
    let s2 = setup(true, None, None);
    assert_eq!(s2.future.into_result().unwrap(), 7);
    let s3 = setup(true, None, None);
    assert!(
        s3.future
            .error_timeout(Duration::from_secs(5))
            .unwrap()
            .is_none()
    );
    for calls in [&s.calls, &s2.calls, &s3.calls] {
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn a_done_future_is_never_driven() {
    let s = setup(true, None, None);
    s.slot
        .lock()
        .unwrap()
        .take()
        .unwrap()
        .set_result(3)
        .unwrap();
    assert_eq!(*s.future.result().unwrap(), 3);
    assert!(s.future.wait());
    assert_eq!(s.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn multi_future_waits_do_not_drive() {
    let (called, _on_call) = mpsc::channel();
    let s = setup(true, Some(called), None);
    let slot = s.slot.clone();
    let completer = thread::spawn(move || {
        slot.lock().unwrap().take().unwrap().set_result(5).unwrap();
    });
    let waited = concur_core::wait([&s.future], None, ReturnWhen::AllCompleted);
    completer.join().unwrap();
    assert_eq!(waited.done().len(), 1);
    assert_eq!(s.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn the_driver_is_dropped_once_with_the_cell() {
    let drops = DropCounter::default();
    // Completed, read, then every handle dropped.
    let s = setup(true, None, Some(drops.token()));
    assert_eq!(*s.future.result().unwrap(), 7);
    let clone = s.future.clone();
    drop(s.future);
    assert_eq!(drops.dropped(), 0, "a handle is left");
    drop(clone);
    assert_eq!(drops.dropped(), 1);
    // Abandoned: the promise dropped unfulfilled, then the future.
    let s = setup(false, None, Some(drops.token()));
    drop(s.slot.lock().unwrap().take());
    match s.future.result() {
        Err(Error::Failed(failure)) => assert!(failure.is_abandoned()),
        other => panic!("expected an abandoned failure, got {other:?}"),
    }
    drop(s.future);
    assert_eq!(drops.dropped(), 2);
    // Moved out with into_result.
    let s = setup(true, None, Some(drops.token()));
    assert_eq!(s.future.into_result().unwrap(), 7);
    assert_eq!(drops.dropped(), 3);
}

/// Panics on the first call only.
struct PanicsOnce(AtomicUsize);

impl Drive for PanicsOnce {
    fn drive(&self, _deadline: Option<Instant>) {
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("driver panicked");
        }
    }
}

#[test]
fn a_panicking_driver_unwinds_out_of_the_wait_and_leaves_the_future_usable() {
    let (promise, future) = driven_promise::<u32, _>(PanicsOnce(AtomicUsize::new(0)));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = future.result();
    }));
    assert!(caught.is_err());
    promise.set_result(4).unwrap();
    assert_eq!(*future.result().unwrap(), 4);
}

/// Completes the future in `s` from another thread.
fn complete_elsewhere(s: &Setup, value: u32) -> thread::JoinHandle<()> {
    let slot = s.slot.clone();
    thread::spawn(move || {
        slot.lock()
            .unwrap()
            .take()
            .unwrap()
            .set_result(value)
            .unwrap()
    })
}

#[test]
fn waiters_that_do_not_drive_are_announced_by_watch() {
    // A done-callback on the pending future.
    let s = setup(false, None, None);
    let (tx, rx) = mpsc::channel();
    s.future
        .add_done_callback(move |f| tx.send(*f.result().unwrap()).unwrap());
    assert_eq!(s.watches.load(Ordering::SeqCst), 1);
    complete_elsewhere(&s, 1).join().unwrap();
    assert_eq!(rx.recv().unwrap(), 1);

    // A wait over many futures.
    let s = setup(false, None, None);
    let (called, on_call) = mpsc::channel();
    let completer = {
        let slot = s.slot.clone();
        let watches = s.watches.clone();
        thread::spawn(move || {
            // Complete only once the wait announced itself, so it really was linked.
            while watches.load(Ordering::SeqCst) == 0 {
                thread::yield_now();
            }
            called.send(()).unwrap();
            slot.lock().unwrap().take().unwrap().set_result(2).unwrap();
        })
    };
    let waited = concur_core::wait([&s.future], None, ReturnWhen::AllCompleted);
    completer.join().unwrap();
    on_call.recv().unwrap();
    assert_eq!(waited.done().len(), 1);
    assert_eq!(s.watches.load(Ordering::SeqCst), 1);
    assert_eq!(s.calls.load(Ordering::SeqCst), 0);

    // A thread parking after its drive gave up: driven once, then announced once.
    let (called, on_call) = mpsc::channel();
    let s = setup(false, Some(called), None);
    let slot = s.slot.clone();
    let watches = s.watches.clone();
    let completer = thread::spawn(move || {
        on_call.recv().unwrap();
        while watches.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
        slot.lock().unwrap().take().unwrap().set_result(3).unwrap();
    });
    assert_eq!(*s.future.result().unwrap(), 3);
    completer.join().unwrap();
    assert_eq!(s.calls.load(Ordering::SeqCst), 1);
    assert_eq!(s.watches.load(Ordering::SeqCst), 1);
}

#[test]
fn an_awaiting_task_is_announced_once_however_often_it_is_polled() {
    use std::future::Future as _;
    use std::task::{Context, Poll, Waker};
    let s = setup(false, None, None);
    let mut waiting = std::pin::pin!((&s.future).into_future());
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..3 {
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
    }
    assert_eq!(s.watches.load(Ordering::SeqCst), 1);
    complete_elsewhere(&s, 4).join().unwrap();
    assert!(matches!(
        waiting.as_mut().poll(&mut cx),
        Poll::Ready(Ok(&4))
    ));
    assert_eq!(s.calls.load(Ordering::SeqCst), 0, "awaiting never drives");
}

#[test]
fn waiters_on_a_done_future_are_not_announced() {
    let s = setup(false, None, None);
    s.slot
        .lock()
        .unwrap()
        .take()
        .unwrap()
        .set_result(5)
        .unwrap();
    s.future.add_done_callback(|_| {});
    let _ = concur_core::wait([&s.future], None, ReturnWhen::AllCompleted);
    assert_eq!(*s.future.result().unwrap(), 5);
    assert_eq!(s.watches.load(Ordering::SeqCst), 0);
}
