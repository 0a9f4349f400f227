//! Fault injection (issue 7, DESIGN §7): `shutdown(cancel_futures)` racing with submits from
//! four threads, `result_timeout` storms against completions, panics in tasks, callbacks and
//! initializers. In each: every future resolves, submitted = succeeded + failed + cancelled,
//! no worker thread is left behind, and no file descriptor leaks.
//!
//! The tests take one lock each, so the thread and descriptor counts of one are not disturbed
//! by another running in parallel.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use concur_core::{Error, Future, SubmitError};
use concur_pool::{BrokenThreadPool, ThreadPool};

/// The payload of every panic these tests plant; the panic hook stays quiet about it.
const PLANTED: &str = "planted panic";

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let planted = info.payload().downcast_ref::<&str>() == Some(&PLANTED)
                || info.payload().downcast_ref::<String>().map(String::as_str) == Some(PLANTED);
            if !planted {
                default(info);
            }
        }));
        concur_core::set_callback_panic_hook(|_| {});
    });
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every pool here names its workers with this prefix, so they can be told from the test
/// harness's own threads (which come and go as other tests start).
const PREFIX: &str = "flt";

fn pool(workers: usize) -> ThreadPool {
    ThreadPool::builder()
        .max_workers(workers)
        .thread_name_prefix(PREFIX)
        .build()
        .unwrap()
}

/// Worker threads of this file's pools still alive.
fn pool_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|comm| comm.starts_with(PREFIX))
        })
        .count()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Pool threads and open descriptors of this process, taken before a test and checked after.
struct Census {
    threads: usize,
    fds: usize,
}

impl Census {
    fn take() -> Self {
        Self {
            threads: pool_threads(),
            fds: open_fds(),
        }
    }

    /// Joined threads may linger in /proc for a moment; allow up to 5 s for them to go.
    fn check(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let now = Census::take();
            if now.threads <= self.threads && now.fds <= self.fds {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "left behind: {} threads (was {}), {} fds (was {})",
                now.threads,
                self.threads,
                now.fds,
                self.fds
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Outcome counts of a set of resolved futures.
#[derive(Default, Debug, PartialEq)]
struct Tally {
    succeeded: usize,
    failed: usize,
    cancelled: usize,
}

impl Tally {
    fn total(&self) -> usize {
        self.succeeded + self.failed + self.cancelled
    }
}

/// Waits (bounded) for every future and counts the outcomes; a value must be `expect(i)`.
fn tally<T: PartialEq + std::fmt::Debug>(futures: &[(T, Future<T>)], planted_only: bool) -> Tally {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut t = Tally::default();
    for (n, (expect, f)) in futures.iter().enumerate() {
        assert!(f.wait_deadline(deadline), "future {n} never resolved");
        match f.try_result().unwrap() {
            Ok(v) => {
                assert_eq!(v, expect);
                t.succeeded += 1;
            }
            Err(Error::Failed(failure)) => {
                if planted_only {
                    assert_eq!(failure.panic_message(), Some(PLANTED), "{failure}");
                }
                t.failed += 1;
            }
            Err(Error::Cancelled) => t.cancelled += 1,
            Err(other) => panic!("future {n}: {other:?}"),
        }
    }
    t
}

/// No future keeps a waiter. Only once nobody else waits on them: a waiter unlinking its
/// timed-out node holds the list (LOCK) past the completion, and the list is detached when it
/// lets go, so a resolved future may show a waiter for that long.
fn assert_no_waiters<T>(futures: &[(T, Future<T>)]) {
    for (n, (_, f)) in futures.iter().enumerate() {
        assert!(!f.has_waiters(), "future {n} kept a waiter");
    }
}

#[test]
fn shutdown_cancel_futures_racing_with_submits_from_four_threads() {
    let _serial = serial();
    let census = Census::take();
    let (mut sum, mut refused_sum) = (Tally::default(), 0);
    for round in 0..20u64 {
        let pool = pool(2);
        let start = Arc::new(Barrier::new(5));
        let submitters: Vec<_> = (0..4u64)
            .map(|t| {
                let (pool, start) = (pool.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let mut accepted = Vec::new();
                    let mut refused = 0;
                    for i in 0..5_000u64 {
                        let x = t * 1_000_000 + i;
                        let work = move || {
                            if x % 97 == 0 {
                                std::panic::panic_any(PLANTED);
                            }
                            x
                        };
                        match pool.submit(work) {
                            Ok(f) => accepted.push((x, f)),
                            Err(SubmitError::Shutdown) => refused += 1,
                            Err(other) => panic!("{other:?}"),
                        }
                    }
                    (accepted, refused)
                })
            })
            .collect();
        start.wait();
        // Let the submitters get going, then cancel whatever is queued while they still submit.
        std::thread::sleep(Duration::from_micros(200 * (round % 5)));
        pool.shutdown(round % 2 == 0, true);
        let mut all = Vec::new();
        let mut refused = 0;
        for s in submitters {
            let (accepted, r) = s.join().unwrap();
            all.extend(accepted);
            refused += r;
        }
        drop(pool);
        let t = tally(&all, true);
        assert_no_waiters(&all);
        assert_eq!(t.total(), all.len());
        assert_eq!(
            all.len() + refused,
            20_000,
            "every submit accepted or refused"
        );
        sum.succeeded += t.succeeded;
        sum.failed += t.failed;
        sum.cancelled += t.cancelled;
        refused_sum += refused;
    }
    eprintln!("20 rounds: {sum:?}, {refused_sum} refused");
    census.check();
}

#[test]
fn result_timeout_storms_against_completions() {
    let _serial = serial();
    let census = Census::take();
    let pool = pool(2);
    let futures: Arc<Vec<(u64, Future<u64>)>> = Arc::new(
        (0..2_000u64)
            .map(|i| {
                let f = pool
                    .submit(move || {
                        // Every fourth task sleeps 1 ms, so the storm meets running futures
                        // (a wait on a queued one may run it inline instead of timing out).
                        if i % 4 == 0 {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        i * 3
                    })
                    .unwrap();
                (i * 3, f)
            })
            .collect(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let timeouts = Arc::new(AtomicUsize::new(0));
    let stormers: Vec<_> = (0..4u64)
        .map(|t| {
            let (futures, stop, timeouts) = (futures.clone(), stop.clone(), timeouts.clone());
            std::thread::spawn(move || {
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ t;
                let mut lo = 0;
                // ORDERING: a plain stop flag, nothing is published through it.
                while !stop.load(Ordering::Relaxed) {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    // Aim at the completion frontier, where waits meet completions.
                    while lo + 1 < futures.len() && futures[lo].1.is_done() {
                        lo += 1;
                    }
                    let at = (lo + (rng % 64) as usize).min(futures.len() - 1);
                    let (expect, f) = &futures[at];
                    let timeout = Duration::from_micros(rng % 100);
                    match f.result_timeout(timeout) {
                        Ok(v) => assert_eq!(v, expect),
                        Err(Error::TimedOut) => {
                            // ORDERING: a statistic.
                            timeouts.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(other) => panic!("{other:?}"),
                    }
                }
            })
        })
        .collect();
    let t = tally(&futures, true);
    // ORDERING: see above.
    stop.store(true, Ordering::Relaxed);
    for s in stormers {
        s.join().unwrap();
    }
    assert_eq!(t.succeeded, futures.len());
    assert_no_waiters(&futures);
    // ORDERING: the stormers were joined.
    assert!(
        timeouts.load(Ordering::Relaxed) > 0,
        "the storm never met a pending future"
    );
    eprintln!(
        "{t:?}, {} timed-out waits",
        timeouts.load(Ordering::Relaxed)
    );
    drop(pool);
    drop(futures);
    census.check();
}

#[test]
fn panics_in_tasks_and_callbacks_fail_only_their_future() {
    let _serial = serial();
    let census = Census::take();
    let pool = pool(2);
    let callbacks_run = Arc::new(AtomicUsize::new(0));
    let futures: Vec<(u64, Future<u64>)> = (0..10_000u64)
        .map(|i| {
            let f = pool
                .submit(move || {
                    if i % 3 == 0 {
                        std::panic::panic_any(PLANTED);
                    }
                    i
                })
                .unwrap();
            // A panicking callback, then one that must still run, on every future.
            f.add_done_callback(|_| std::panic::panic_any(PLANTED));
            let run = callbacks_run.clone();
            f.add_done_callback(move |f| {
                assert!(f.is_done());
                // ORDERING: read after every future resolved and the pool was joined.
                run.fetch_add(1, Ordering::Relaxed);
            });
            if i % 7 == 0 {
                f.cancel();
            }
            (i, f)
        })
        .collect();
    drop(pool); // joins the workers, which ran the callbacks
    let t = tally(&futures, true);
    assert_no_waiters(&futures);
    assert_eq!(t.total(), futures.len());
    assert!(t.failed > 0 && t.succeeded > 0);
    for (i, f) in &futures {
        if !f.is_cancelled() {
            assert_eq!(f.try_result().unwrap().is_err(), i % 3 == 0);
        }
    }
    // ORDERING: see above; the joins ordered the callbacks before this load.
    assert_eq!(callbacks_run.load(Ordering::Relaxed), futures.len());
    eprintln!("{t:?}");
    census.check();
}

#[test]
fn a_panicking_initializer_fails_every_queued_future_and_refuses_the_rest() {
    let _serial = serial();
    let census = Census::take();
    for workers in 1..=3 {
        let pool = ThreadPool::builder()
            .max_workers(workers)
            .thread_name_prefix(PREFIX)
            .initializer(|| std::panic::panic_any(PLANTED))
            .build()
            .unwrap();
        let mut accepted = Vec::new();
        let mut refused = 0;
        for i in 0..1_000u32 {
            match pool.submit(move || i) {
                Ok(f) => accepted.push((i, f)),
                Err(SubmitError::Broken(failure)) => {
                    assert!(failure.downcast_ref::<BrokenThreadPool>().is_some());
                    refused += 1;
                }
                Err(other) => panic!("{other:?}"),
            }
        }
        let t = tally(&accepted, false);
        assert_no_waiters(&accepted);
        assert_eq!(t.failed, accepted.len(), "{t:?}");
        for (_, f) in &accepted {
            let failure = f.try_error().unwrap().unwrap().unwrap();
            let broken = failure.downcast_ref::<BrokenThreadPool>().unwrap();
            assert!(broken.is_initializer_failure());
        }
        assert_eq!(accepted.len() + refused, 1_000);
        assert!(pool.is_broken());
        drop(pool);
    }
    census.check();
}
