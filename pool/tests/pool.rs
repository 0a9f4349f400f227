//! `ThreadPool`: submit, workers, names, initializer, shutdown, drop, map, Executor.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use concur_core::{Error, Executor, MapOptions, SubmitError, Task, as_completed};
use concur_pool::{BrokenThreadPool, ThreadPool};

fn thread_name() -> String {
    thread::current().name().unwrap_or("").to_owned()
}

#[test]
fn submit_returns_the_result() {
    let pool = ThreadPool::new(2).unwrap();
    let future = pool.submit(|| 323u64.pow(2)).unwrap();
    assert_eq!(*future.result().unwrap(), 104_329);
}

#[test]
fn a_panicking_task_fails_its_future_and_the_worker_survives() {
    let pool = ThreadPool::new(1).unwrap();
    let bad = pool.submit(|| -> u8 { panic!("boom") }).unwrap();
    let failure = bad.error().unwrap().unwrap();
    assert!(failure.is_panic());
    assert_eq!(failure.panic_message(), Some("boom"));
    let good = pool.submit(thread_name).unwrap();
    assert!(good.result().unwrap().ends_with("_0"));
    assert_eq!(pool.spawned_workers(), 1);
}

#[test]
fn submit_then_result_in_a_loop_uses_one_thread() {
    let pool = ThreadPool::builder()
        .max_workers(4)
        .thread_name_prefix("loop")
        .build()
        .unwrap();
    let mut names = HashSet::new();
    for _ in 0..2_000 {
        let future = pool.submit(thread_name).unwrap();
        names.insert(future.result().unwrap().clone());
    }
    assert_eq!(names, HashSet::from(["loop_0".to_string()]));
    assert_eq!(pool.spawned_workers(), 1);
}

#[test]
fn workers_start_lazily_up_to_max_workers_and_are_named() {
    let pool = ThreadPool::builder()
        .max_workers(3)
        .thread_name_prefix("lazy")
        .build()
        .unwrap();
    assert_eq!(pool.spawned_workers(), 0);
    let barrier = Arc::new(Barrier::new(4));
    let futures: Vec<_> = (0..3)
        .map(|_| {
            let barrier = barrier.clone();
            pool.submit(move || {
                barrier.wait(); // all three must run at once
                thread_name()
            })
            .unwrap()
        })
        .collect();
    barrier.wait();
    let names: HashSet<String> = futures
        .iter()
        .map(|f| f.result().unwrap().clone())
        .collect();
    let expected: HashSet<String> = (0..3).map(|i| format!("lazy_{i}")).collect();
    assert_eq!(names, expected);
    for _ in 0..100 {
        pool.submit(|| ()).unwrap();
    }
    assert_eq!(pool.spawned_workers(), 3);
}

#[test]
fn the_default_prefix_numbers_pools() {
    let pool = ThreadPool::new(1).unwrap();
    let name = pool.submit(thread_name).unwrap().into_result().unwrap();
    assert!(name.starts_with("ThreadPool-"), "{name}");
    assert!(name.ends_with("_0"), "{name}");
}

#[test]
fn the_default_max_workers_is_pythons_min_32_cpus_plus_4() {
    let cores = thread::available_parallelism().unwrap().get();
    let expected = (cores + 4).min(32);
    assert_eq!(
        ThreadPool::builder().build().unwrap().max_workers(),
        expected
    );
    assert_eq!(
        concur_pool::Builder::new().build().unwrap().max_workers(),
        expected
    );
}

#[test]
fn bad_settings_are_typed_build_errors() {
    let zero = ThreadPool::new(0).unwrap_err();
    assert!(zero.is_zero_workers());
    assert_eq!(zero.to_string(), "max_workers must be greater than 0");
    let many = ThreadPool::new(concur_pool::MAX_WORKERS + 1).unwrap_err();
    assert!(many.is_too_many_workers());
    let nul = ThreadPool::builder()
        .thread_name_prefix("a\0b")
        .build()
        .unwrap_err();
    assert!(nul.is_invalid_prefix());
}

#[test]
fn the_initializer_runs_once_on_each_worker() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let pool = ThreadPool::builder()
        .max_workers(2)
        .thread_name_prefix("init")
        .initializer(move || record.lock().unwrap().push(thread_name()))
        .build()
        .unwrap();
    let barrier = Arc::new(Barrier::new(3));
    let futures: Vec<_> = (0..2)
        .map(|_| {
            let barrier = barrier.clone();
            pool.submit(move || barrier.wait()).unwrap()
        })
        .collect();
    barrier.wait();
    for f in &futures {
        f.result().unwrap();
    }
    for _ in 0..50 {
        pool.submit(|| ()).unwrap().result().unwrap();
    }
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, ["init_0", "init_1"]);
}

#[test]
fn a_failing_initializer_breaks_the_pool() {
    let pool = ThreadPool::builder()
        .max_workers(2)
        .initializer(|| panic!("no database"))
        .build()
        .unwrap();
    let queued: Vec<_> = (0..20).map(|i| pool.submit(move || i)).collect();
    // Each submit either queued (then its future fails with the pool's error) or, once the
    // pool broke, was refused with it.
    let mut failed = 0;
    for outcome in queued {
        let failure = match outcome {
            Ok(future) => match future.result() {
                Err(Error::Failed(failure)) => failure,
                other => panic!("expected the broken-pool failure, got {other:?}"),
            },
            Err(SubmitError::Broken(failure)) => failure,
            Err(other) => panic!("unexpected {other:?}"),
        };
        let broken = failure.downcast_ref::<BrokenThreadPool>().unwrap();
        assert!(broken.is_initializer_failure());
        assert_eq!(broken.cause().panic_message(), Some("no database"));
        failed += 1;
    }
    assert_eq!(failed, 20);
    assert!(pool.is_broken());
    match pool.submit(|| ()) {
        Err(SubmitError::Broken(failure)) => {
            assert!(failure.downcast_ref::<BrokenThreadPool>().is_some());
            assert!(failure.to_string().contains("initializer failed"));
        }
        other => panic!("expected Broken, got {other:?}"),
    }
}

#[test]
fn stack_size_is_applied() {
    fn depth(n: u64) -> u64 {
        let pad = [n; 64];
        if n == 0 {
            0
        } else {
            std::hint::black_box(pad)[63] - n + 1 + depth(n - 1)
        }
    }
    let pool = ThreadPool::builder()
        .max_workers(1)
        .stack_size(64 << 20)
        .build()
        .unwrap();
    // Some 10 to 20 MB of stack: far more than the default 2 MiB.
    let future = pool.submit(|| depth(20_000)).unwrap();
    assert_eq!(*future.result().unwrap(), 20_000);
}

#[test]
fn shutdown_runs_queued_work_then_refuses_submits() {
    let pool = ThreadPool::new(1).unwrap();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let blocker = pool.submit(move || gate_rx.recv().unwrap()).unwrap();
    let queued: Vec<_> = (0..10)
        .map(|i| pool.submit(move || i * 2).unwrap())
        .collect();
    let closer = {
        let pool = pool.clone();
        thread::spawn(move || pool.shutdown(true, false))
    };
    thread::sleep(Duration::from_millis(20));
    assert!(matches!(pool.submit(|| 0), Err(SubmitError::Shutdown)));
    assert!(
        !closer.is_finished(),
        "shutdown(wait) returned before the work was done"
    );
    gate_tx.send(()).unwrap();
    closer.join().unwrap();
    blocker.result().unwrap();
    for (i, f) in queued.iter().enumerate() {
        assert_eq!(*f.try_result().unwrap().unwrap(), i * 2);
    }
    assert!(matches!(
        Executor::execute(&pool, Task::from_fn(|| ())),
        Err(SubmitError::Shutdown)
    ));
}

#[test]
fn shutdown_without_wait_returns_at_once_and_work_completes() {
    let pool = ThreadPool::new(1).unwrap();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let blocker = pool.submit(move || gate_rx.recv().unwrap()).unwrap();
    let queued: Vec<_> = (0..10).map(|i| pool.submit(move || i).unwrap()).collect();
    let start = Instant::now();
    pool.shutdown(false, false);
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(!queued[0].is_done());
    gate_tx.send(()).unwrap();
    blocker.result().unwrap();
    for (i, f) in queued.iter().enumerate() {
        assert_eq!(*f.result().unwrap(), i);
    }
}

#[test]
fn shutdown_with_cancel_futures_cancels_the_queue() {
    let pool = ThreadPool::new(1).unwrap();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let running = pool
        .submit(move || {
            started_tx.send(()).unwrap();
            gate_rx.recv().unwrap();
            "ran"
        })
        .unwrap();
    started_rx.recv().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let queued: Vec<_> = (0..10)
        .map(|_| {
            let ran = ran.clone();
            pool.submit(move || ran.fetch_add(1, Ordering::SeqCst))
                .unwrap()
        })
        .collect();
    let closer = {
        let pool = pool.clone();
        thread::spawn(move || pool.shutdown(true, true))
    };
    for f in &queued {
        // Cancelled futures are done at once, before the running task ends.
        assert!(matches!(f.result(), Err(Error::Cancelled)));
    }
    gate_tx.send(()).unwrap();
    closer.join().unwrap();
    assert_eq!(*running.result().unwrap(), "ran");
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn drop_waits_for_queued_work() {
    let done = Arc::new(AtomicUsize::new(0));
    let pool = ThreadPool::new(2).unwrap();
    for _ in 0..100 {
        let done = done.clone();
        pool.submit(move || {
            thread::sleep(Duration::from_micros(200));
            done.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    drop(pool);
    assert_eq!(done.load(Ordering::SeqCst), 100);
}

#[test]
fn shutdown_and_drop_from_inside_a_task_do_not_deadlock() {
    let pool = ThreadPool::new(2).unwrap();
    let inner = pool.clone();
    let f = pool
        .submit(move || {
            inner.shutdown(true, false); // must not join its own worker
            matches!(inner.submit(|| ()), Err(SubmitError::Shutdown))
        })
        .unwrap();
    assert!(*f.result().unwrap());
    drop(pool);

    // The last handle dropped by one of the pool's own tasks.
    let pool = ThreadPool::new(1).unwrap();
    let (tx, rx) = mpsc::channel();
    let last = pool.clone();
    let f = pool
        .submit(move || {
            rx.recv().unwrap(); // wait until the caller dropped its handle
            drop(last); // the last handle: shutdown(wait = true) from a worker
            7
        })
        .unwrap();
    drop(pool);
    tx.send(()).unwrap();
    assert_eq!(*f.result().unwrap(), 7);
}

#[test]
fn map_keeps_input_order_and_per_item_errors() {
    let pool = ThreadPool::new(2).unwrap();
    let results: Vec<_> = pool
        .map(
            |n: u32| {
                if n == 3 {
                    panic!("three");
                }
                thread::sleep(Duration::from_micros(u64::from(10 - n) * 100));
                n * 10
            },
            0..6,
        )
        .collect();
    assert_eq!(results.len(), 6);
    for (n, item) in results.iter().enumerate() {
        match item {
            Ok(v) => assert_eq!(*v, n as u32 * 10),
            Err(e) => {
                assert_eq!(n, 3);
                assert_eq!(e.failure().unwrap().panic_message(), Some("three"));
            }
        }
    }
}

#[test]
fn map_zips_like_pythons_several_iterables() {
    let pool = ThreadPool::new(2).unwrap();
    let bases = [2u64, 3, 10];
    let exps = [10u32, 3, 2];
    let powers: Vec<u64> = pool
        .map(|(b, e)| b.pow(e), bases.into_iter().zip(exps))
        .map(Result::unwrap)
        .collect();
    assert_eq!(powers, [1024, 27, 100]);
}

#[test]
fn map_timeout_is_one_deadline_from_the_call() {
    let pool = ThreadPool::new(1).unwrap();
    let options = MapOptions::new().timeout(Duration::from_millis(100));
    let start = Instant::now();
    let items: Vec<_> = pool
        .map_with(
            |ms: u64| {
                thread::sleep(Duration::from_millis(ms));
                ms
            },
            [10, 10, 300, 10],
            options,
        )
        .collect();
    assert!(start.elapsed() < Duration::from_millis(290));
    assert_eq!(items.len(), 3);
    assert_eq!(*items[0].as_ref().unwrap(), 10);
    assert_eq!(*items[1].as_ref().unwrap(), 10);
    assert!(matches!(items[2], Err(Error::TimedOut)));
}

#[test]
fn map_in_flight_window_bounds_submissions() {
    let pool = ThreadPool::new(2).unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let counter = started.clone();
    let window = MapOptions::new().in_flight(std::num::NonZeroUsize::new(4).unwrap());
    let mut results = pool.map_with(
        move |n: u64| {
            counter.fetch_add(1, Ordering::SeqCst);
            n
        },
        0..,
        window,
    );
    assert_eq!(results.next().unwrap().unwrap(), 0);
    assert_eq!(results.next().unwrap().unwrap(), 1);
    drop(results);
    pool.shutdown(true, false);
    assert!(started.load(Ordering::SeqCst) <= 6);
}

#[test]
fn the_executor_trait_and_as_completed() {
    let pool = ThreadPool::new(2).unwrap();
    let (task, foreign) = Task::new(|| 5u32);
    pool.execute(task).unwrap();
    let via_trait = Executor::submit(&pool, || 6u32).unwrap();
    let futures = vec![foreign, via_trait];
    let mut seen: Vec<u32> = as_completed(&futures, None)
        .map(|f| *f.unwrap().result().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, [5, 6]);
}

#[test]
fn cloned_handles_share_one_pool() {
    let pool = ThreadPool::builder()
        .max_workers(1)
        .thread_name_prefix("shared")
        .build()
        .unwrap();
    let other = pool.clone();
    let a = pool.submit(thread_name).unwrap();
    let b = other.submit(thread_name).unwrap();
    assert_eq!(*a.result().unwrap(), "shared_0");
    assert_eq!(*b.result().unwrap(), "shared_0");
    drop(pool);
    assert!(other.submit(|| ()).is_ok()); // still open: one handle is left
}

#[test]
fn debug_shows_the_configuration() {
    let pool = ThreadPool::builder()
        .max_workers(3)
        .thread_name_prefix("dbg")
        .build()
        .unwrap();
    let text = format!("{pool:?}");
    assert!(
        text.contains("max_workers: 3")
            && text.contains("\"dbg\"")
            && text.contains("live_workers: 0"),
        "{text}"
    );
}
