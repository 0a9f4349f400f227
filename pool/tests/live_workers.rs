//! `live_workers`: the worker threads alive now, beside `spawned_workers`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use concur_pool::ThreadPool;

#[test]
fn a_fresh_pool_has_no_live_worker_and_one_task_starts_one() {
    let pool = ThreadPool::new(4).unwrap();
    assert_eq!(pool.live_workers(), 0);
    pool.submit(|| ()).unwrap().result().unwrap();
    assert_eq!(pool.live_workers(), 1);
}

#[test]
fn an_idle_worker_is_reused_and_stays_alive() {
    let pool = ThreadPool::new(4).unwrap();
    for i in 0..20u32 {
        assert_eq!(*pool.submit(move || i).unwrap().result().unwrap(), i);
    }
    assert_eq!(pool.live_workers(), 1);
    assert_eq!(pool.spawned_workers(), 1);
}

#[test]
fn busy_workers_are_all_alive_and_none_after_shutdown_wait() {
    let pool = ThreadPool::new(4).unwrap();
    let started = Arc::new(Barrier::new(4));
    let release = Arc::new(Barrier::new(4));
    let futures: Vec<_> = (0..3)
        .map(|_| {
            let (started, release) = (Arc::clone(&started), Arc::clone(&release));
            pool.submit(move || {
                started.wait();
                release.wait();
            })
            .unwrap()
        })
        .collect();
    started.wait();
    assert_eq!(pool.live_workers(), 3);
    release.wait();
    pool.shutdown(true, false);
    assert_eq!(pool.live_workers(), 0);
    assert_eq!(pool.spawned_workers(), 3);
    for f in futures {
        f.result().unwrap();
    }
}

/// Dropped on a worker thread's exit, after its worker function returned.
struct ThreadEnd(Arc<AtomicUsize>);

impl Drop for ThreadEnd {
    fn drop(&mut self) {
        // ORDERING: Relaxed: read after `shutdown` joined this thread (join synchronises).
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

thread_local! {
    static END: std::cell::RefCell<Option<ThreadEnd>> = const { std::cell::RefCell::new(None) };
}

/// "0 after shutdown(wait = true)" means the threads ended: even their thread-locals, dropped
/// after the worker function returns, are gone by then.
#[test]
fn shutdown_wait_returns_only_after_the_worker_threads_really_ended() {
    let ended = Arc::new(AtomicUsize::new(0));
    let for_init = Arc::clone(&ended);
    let pool = ThreadPool::builder()
        .max_workers(2)
        .initializer(move || {
            END.with(|end| *end.borrow_mut() = Some(ThreadEnd(Arc::clone(&for_init))));
        })
        .build()
        .unwrap();
    let gate = Arc::new(Barrier::new(3));
    let futures: Vec<_> = (0..2)
        .map(|_| {
            let gate = Arc::clone(&gate);
            pool.submit(move || {
                gate.wait();
            })
            .unwrap()
        })
        .collect();
    gate.wait();
    // A second handle's shutdown racing the first must not return before the joins either.
    let other = pool.clone();
    let racer = std::thread::spawn(move || {
        other.shutdown(true, false);
        other.live_workers()
    });
    pool.shutdown(true, false);
    assert_eq!(pool.live_workers(), 0);
    // ORDERING: Relaxed: the joins in `shutdown` ordered the drops before this load.
    assert_eq!(ended.load(Ordering::Relaxed), 2);
    assert_eq!(racer.join().unwrap(), 0);
    for f in futures {
        f.result().unwrap();
    }
}

#[test]
fn shutdown_from_a_task_does_not_wait_so_its_worker_is_still_alive() {
    let pool = ThreadPool::new(1).unwrap();
    let inner = pool.clone();
    let seen = pool
        .submit(move || {
            inner.shutdown(true, false);
            inner.live_workers()
        })
        .unwrap();
    assert_eq!(*seen.result().unwrap(), 1);
    pool.shutdown(true, false);
    assert_eq!(pool.live_workers(), 0);
}
