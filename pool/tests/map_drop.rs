//! When `map`'s work starts and what dropping it cancels (Python's bpo-11777 rule): submitted
//! at the call; dropped unread, nothing is cancelled; dropped after a `next`, what has not
//! started is cancelled.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use concur_core::MapOptions;
use concur_pool::ThreadPool;

/// Occupies the pool's only worker until the returned barrier is waited on.
fn block_the_worker(pool: &ThreadPool) -> (Arc<Barrier>, concur_core::Future<()>) {
    let started = Arc::new(Barrier::new(2));
    let release = Arc::new(Barrier::new(2));
    let (s, r) = (Arc::clone(&started), Arc::clone(&release));
    let blocker = pool
        .submit(move || {
            s.wait();
            r.wait();
        })
        .unwrap();
    started.wait();
    (release, blocker)
}

#[test]
fn a_map_dropped_unread_cancels_nothing_and_all_its_calls_run() {
    let pool = ThreadPool::new(1).unwrap();
    let (release, blocker) = block_the_worker(&pool);
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ran);
    let results = pool.map(move |_: u32| counter.fetch_add(1, Ordering::Relaxed), 0..10);
    // Submitted by the call itself, queued behind the blocker.
    let queued = pool.queued();
    drop(results);
    release.wait();
    assert_eq!(queued, 10);
    pool.shutdown(true, false);
    blocker.result().unwrap();
    // ORDERING: Relaxed: the joins in `shutdown` ordered every increment before this load.
    assert_eq!(ran.load(Ordering::Relaxed), 10);
}

#[test]
fn a_windowed_map_dropped_unread_runs_its_first_window() {
    let pool = ThreadPool::new(1).unwrap();
    let (release, _blocker) = block_the_worker(&pool);
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ran);
    let window = MapOptions::new().in_flight(std::num::NonZeroUsize::new(4).unwrap());
    let results = pool.map_with(
        move |_: u64| counter.fetch_add(1, Ordering::Relaxed),
        0..,
        window,
    );
    let queued = pool.queued();
    drop(results);
    release.wait();
    assert_eq!(queued, 4);
    pool.shutdown(true, false);
    // ORDERING: Relaxed: see above.
    assert_eq!(ran.load(Ordering::Relaxed), 4);
}

#[test]
fn a_map_advanced_once_then_dropped_cancels_what_has_not_started() {
    let pool = ThreadPool::new(1).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let (started, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let (counter, s, r) = (Arc::clone(&ran), Arc::clone(&started), Arc::clone(&release));
    let mut results = pool.map(
        move |i: u32| {
            counter.fetch_add(1, Ordering::Relaxed);
            if i == 1 {
                // Hold the only worker while the map is dropped.
                s.wait();
                r.wait();
            }
            i
        },
        0..10,
    );
    assert_eq!(results.next().unwrap().unwrap(), 0);
    started.wait();
    // Calls 2..10 are cancelled; call 1 is running and finishes.
    drop(results);
    release.wait();
    pool.shutdown(true, false);
    // ORDERING: Relaxed: see above.
    assert_eq!(ran.load(Ordering::Relaxed), 2);
}
