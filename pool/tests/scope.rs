//! `ThreadPool::scope`: tasks that borrow from the caller's stack.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread;
use std::time::Duration;

use concur_core::{Error, SubmitError};
use concur_pool::ThreadPool;

#[test]
fn scoped_tasks_borrow_and_mutate_the_callers_data() {
    let pool = ThreadPool::new(2).unwrap();
    let mut numbers: Vec<u64> = (0..1000).collect();
    let offset = 7;
    pool.scope(|s| {
        for chunk in numbers.chunks_mut(100) {
            s.submit(|| chunk.iter_mut().for_each(|n| *n += offset))
                .unwrap();
        }
    });
    assert!(numbers.iter().enumerate().all(|(i, &n)| n == i as u64 + 7));
}

#[test]
fn scope_waits_for_tasks_nobody_waited_on() {
    let pool = ThreadPool::new(2).unwrap();
    let finished = AtomicUsize::new(0);
    pool.scope(|s| {
        for _ in 0..8 {
            s.submit(|| {
                thread::sleep(Duration::from_millis(5));
                finished.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
    });
    assert_eq!(finished.load(Ordering::SeqCst), 8);
}

#[test]
fn scope_waits_even_when_its_closure_panics() {
    let pool = ThreadPool::new(2).unwrap();
    let finished = AtomicUsize::new(0);
    let caught = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            for _ in 0..4 {
                s.submit(|| {
                    thread::sleep(Duration::from_millis(20));
                    finished.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            }
            panic!("the scope's own closure panics");
        })
    }));
    assert!(caught.is_err());
    assert_eq!(finished.load(Ordering::SeqCst), 4);
}

#[test]
fn a_scoped_tasks_panic_is_its_futures_failure() {
    let pool = ThreadPool::new(1).unwrap();
    let message = pool.scope(|s| {
        let f = s.submit(|| -> u8 { panic!("scoped boom") }).unwrap();
        f.error()
            .unwrap()
            .unwrap()
            .panic_message()
            .map(str::to_owned)
    });
    assert_eq!(message.as_deref(), Some("scoped boom"));
}

#[test]
fn outputs_are_read_by_reference_and_dropped_inside_the_scope() {
    struct Recorded<'a>(u32, &'a Mutex<Vec<u32>>);
    impl Drop for Recorded<'_> {
        fn drop(&mut self) {
            self.1.lock().unwrap().push(self.0);
        }
    }
    let dropped = Mutex::new(Vec::new());
    let pool = ThreadPool::new(2).unwrap();
    let sum = pool.scope(|s| {
        let futures: Vec<_> = (0..5)
            .map(|i| {
                let dropped = &dropped;
                s.submit(move || Recorded(i, dropped)).unwrap()
            })
            .collect();
        futures.iter().map(|f| f.result().unwrap().0).sum::<u32>()
    });
    assert_eq!(sum, 10);
    let mut dropped = dropped.into_inner().unwrap();
    dropped.sort();
    assert_eq!(dropped, [0, 1, 2, 3, 4]);
}

#[test]
fn scoped_tasks_may_submit_more_scoped_tasks() {
    let pool = ThreadPool::new(2).unwrap();
    let count = AtomicUsize::new(0);
    pool.scope(|s| {
        for _ in 0..4 {
            s.submit(|| {
                for _ in 0..4 {
                    s.submit(|| count.fetch_add(1, Ordering::SeqCst)).unwrap();
                }
            })
            .unwrap();
        }
    });
    assert_eq!(count.load(Ordering::SeqCst), 16);
}

#[test]
fn a_scope_inside_a_task_of_a_one_worker_pool_does_not_deadlock() {
    let pool = ThreadPool::new(1).unwrap();
    let inner = pool.clone();
    let total = pool
        .submit(move || {
            let data = [1u32, 2, 3, 4];
            inner.scope(|s| {
                let parts: Vec<_> = data
                    .iter()
                    .map(|n| s.submit(move || n * 10).unwrap())
                    .collect();
                parts.iter().map(|f| *f.result().unwrap()).sum::<u32>()
            })
        })
        .unwrap();
    assert_eq!(*total.result_timeout(Duration::from_secs(10)).unwrap(), 100);

    // Even when nobody in the scope waits on its tasks.
    let inner = pool.clone();
    let ran = pool
        .submit(move || {
            let hits = AtomicUsize::new(0);
            inner.scope(|s| {
                for _ in 0..3 {
                    s.submit(|| hits.fetch_add(1, Ordering::SeqCst)).unwrap();
                }
            });
            hits.into_inner()
        })
        .unwrap();
    assert_eq!(*ran.result_timeout(Duration::from_secs(10)).unwrap(), 3);
}

#[test]
fn scoped_tasks_cancelled_by_shutdown_are_dropped_before_the_scope_returns() {
    struct Counted<'a>(&'a AtomicUsize);
    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let pool = ThreadPool::new(1).unwrap();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let blocker = pool
        .submit(move || {
            started_tx.send(()).unwrap();
            gate_rx.recv().unwrap();
        })
        .unwrap();
    started_rx.recv().unwrap();
    let drops = AtomicUsize::new(0);
    let ran = AtomicUsize::new(0);
    let closer = pool.clone();
    pool.scope(|s| {
        let futures: Vec<_> = (0..5)
            .map(|_| {
                let guard = Counted(&drops);
                let ran = &ran;
                s.submit(move || {
                    let _guard = guard;
                    ran.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap()
            })
            .collect();
        closer.shutdown(false, true);
        for f in &futures {
            assert!(matches!(f.result(), Err(Error::Cancelled)));
        }
        assert!(matches!(s.submit(|| ()), Err(SubmitError::Shutdown)));
        gate_tx.send(()).unwrap();
    });
    assert_eq!(drops.load(Ordering::SeqCst), 5);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    blocker.result().unwrap();
}

/// A scoped task that submits another one late (after the scope's closure returned and the
/// scope started waiting): the late task is waited for and its output dropped in the scope.
#[test]
fn late_nested_submits_are_waited_for_and_their_outputs_dropped_inside() {
    struct Recorded<'a>(&'a AtomicUsize);
    impl Drop for Recorded<'_> {
        fn drop(&mut self) {
            thread::sleep(Duration::from_millis(1));
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let dropped = AtomicUsize::new(0);
    let pool = ThreadPool::new(2).unwrap();
    pool.scope(|s| {
        let dropped = &dropped;
        s.submit(move || {
            thread::sleep(Duration::from_millis(30));
            let inner = s.submit(move || {
                thread::sleep(Duration::from_millis(30));
                Recorded(dropped)
            });
            assert!(inner.is_ok());
            Recorded(dropped)
        })
        .unwrap();
    });
    assert_eq!(dropped.load(Ordering::SeqCst), 2);
}
