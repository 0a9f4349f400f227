//! map and chunksize, timeouts, cancel, terminate/kill, shutdown(cancel_futures), retiring.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use concur_core::{Error, SubmitError};
use concur_process::{
    MapOptions, ProcessPool, TaskKilled, TaskPanicked, TaskTimedOut, Terminated, WorkerDied,
};

use common::{Fifo, announce, hang};

concur_process::test_worker!();

concur_process::task! {
    fn square(x: u64) -> u64 { x * x }
    fn pid() -> u32 { std::process::id() }
    fn announce_and_hang(path: String) { announce(&path); hang() }
    fn hang_forever() { hang() }
    fn odd_panics(x: u64) -> u64 {
        assert!(x % 2 == 0, "odd input {x}");
        x / 2
    }
    fn pid_of(_x: u64) -> u32 { std::process::id() }
    fn len_of(bytes: Vec<u8>) -> usize { bytes.len() }
    fn ignore_sigterm_and_hang(path: String) {
        // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code.
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
        announce(&path);
        hang()
    }
}

#[test]
fn map_with_chunks_keeps_order_and_per_item_errors() {
    let pool = ProcessPool::builder().max_workers(2).build().unwrap();
    for chunksize in [1, 3, 7, 1000] {
        let options = MapOptions::new().chunksize(chunksize);
        let got: Vec<Result<u64, Error>> = pool.map_with(odd_panics, 0..50u64, options).collect();
        assert_eq!(got.len(), 50);
        for (x, item) in got.iter().enumerate() {
            if x % 2 == 0 {
                assert_eq!(*item.as_ref().unwrap(), x as u64 / 2);
            } else {
                let failure = item.as_ref().unwrap_err().failure().unwrap();
                let panic = failure.downcast_ref::<TaskPanicked>().unwrap();
                assert_eq!(panic.message.as_deref(), Some(&*format!("odd input {x}")));
            }
        }
    }
}

#[test]
fn map_with_a_window_pulls_lazily_from_an_infinite_input() {
    let pool = ProcessPool::builder().max_workers(2).build().unwrap();
    let options = MapOptions::new().chunksize(4).in_flight(16);
    let got: Vec<u64> = pool
        .map_with(square, 0u64.., options)
        .take(100)
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, (0..100u64).map(|x| x * x).collect::<Vec<_>>());
}

#[test]
fn map_timeout_is_one_deadline_and_ends_the_iteration() {
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    let options = MapOptions::new().timeout(Duration::from_millis(200));
    let start = Instant::now();
    let fifo = Fifo::new("map-timeout");
    let first = pool.submit(announce_and_hang, fifo.path_string()).unwrap();
    fifo.read_line();
    let mut items = pool.map_with(square, [1u64, 2, 3], options);
    assert!(matches!(items.next(), Some(Err(Error::TimedOut))));
    assert!(items.next().is_none());
    assert!(start.elapsed() >= Duration::from_millis(200));
    drop(items);
    assert!(pool.cancel(&first));
}

#[test]
fn a_task_over_its_timeout_is_killed_and_its_worker_replaced() {
    let pool = ProcessPool::builder()
        .max_workers(1)
        .task_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let before = *pool.submit(pid, ()).unwrap().result().unwrap();
    let slow = pool.submit(hang_forever, ()).unwrap();
    let after = pool.submit(pid, ()).unwrap();
    let failure = slow.error().unwrap().unwrap();
    let timed_out = failure
        .downcast_ref::<TaskTimedOut>()
        .expect("TaskTimedOut");
    assert_eq!(timed_out.timeout, Duration::from_millis(100));
    assert_eq!(timed_out.pid, before);
    assert_ne!(*after.result().unwrap(), before);
}

#[test]
fn cancel_kills_a_running_task_and_cancels_a_queued_one() {
    let pool = ProcessPool::builder()
        .max_workers(1)
        .prefetch(0)
        .build()
        .unwrap();
    let fifo = Fifo::new("cancel");
    let running = pool.submit(announce_and_hang, fifo.path_string()).unwrap();
    let queued = pool.submit(square, 3).unwrap();
    let worker: u32 = fifo.read_line().parse().unwrap();
    // Not yet sent (no prefetch): a plain cancel.
    assert!(queued.cancel());
    assert!(!running.cancel(), "Future::cancel never kills");
    assert!(pool.cancel(&running));
    let failure = running.error().unwrap().unwrap();
    assert_eq!(failure.downcast_ref::<TaskKilled>().unwrap().pid, worker);
    assert!(matches!(queued.result(), Err(Error::Cancelled)));
    let done = pool.submit(square, 4).unwrap();
    assert_eq!(*done.result().unwrap(), 16);
    assert!(!pool.cancel(&done), "finished tasks cannot be cancelled");
}

#[test]
fn cancel_of_a_prefetched_task_kills_its_worker_only_when_it_starts() {
    let pool = ProcessPool::builder()
        .max_workers(1)
        .prefetch(2)
        .build()
        .unwrap();
    let fifo = Fifo::new("prefetched");
    let head = pool.submit(announce_and_hang, fifo.path_string()).unwrap();
    fifo.read_line();
    let behind = pool.submit(square, 5).unwrap();
    while !behind.is_running() {
        std::thread::yield_now();
    }
    assert!(pool.cancel(&behind));
    assert!(!head.is_done());
    // Killing the head starts nothing else: `behind` never ran, and fails as cancelled.
    assert!(pool.cancel(&head));
    assert!(
        head.error()
            .unwrap()
            .unwrap()
            .downcast_ref::<TaskKilled>()
            .is_some()
    );
    assert!(
        behind
            .error()
            .unwrap()
            .unwrap()
            .downcast_ref::<TaskKilled>()
            .is_some()
    );
    assert_eq!(*pool.submit(square, 6).unwrap().result().unwrap(), 36);
}

#[test]
fn terminate_workers_resolves_everything_whatever_the_workers_do() {
    let pool = ProcessPool::builder()
        .max_workers(3)
        .terminate_grace(Duration::from_secs(5))
        .build()
        .unwrap();
    // Busy workers.
    let a = Fifo::new("term-a");
    let busy = pool.submit(announce_and_hang, a.path_string()).unwrap();
    let dead_fifo = Fifo::new("term-b");
    let doomed = pool
        .submit(announce_and_hang, dead_fifo.path_string())
        .unwrap();
    a.read_line();
    let dead: u32 = dead_fifo.read_line().parse().unwrap();
    // A dead one (not necessarily reaped yet).
    common::sigkill(dead);
    assert!(
        doomed
            .error()
            .unwrap()
            .unwrap()
            .downcast_ref::<WorkerDied>()
            .is_some()
    );
    // Queued work, and a third worker probably still starting.
    let queued: Vec<_> = (0..10u64)
        .map(|i| pool.submit(square, i).unwrap())
        .collect();
    let pids = pool.worker_pids();
    pool.terminate_workers();
    for f in &queued {
        match f.try_result() {
            Some(Ok(_)) => {}
            Some(Err(Error::Failed(failure))) => {
                let t = failure.downcast_ref::<Terminated>().expect("Terminated");
                assert_eq!(t.signal, libc::SIGTERM);
            }
            other => panic!("not resolved: {other:?}"),
        }
    }
    let failure = busy.try_error().expect("resolved").unwrap().unwrap();
    assert!(failure.downcast_ref::<Terminated>().is_some());
    assert!(matches!(pool.submit(square, 1), Err(SubmitError::Shutdown)));
    drop(pool);
    for worker in pids {
        assert!(!common::exists(worker), "worker {worker} survived");
    }
}

#[test]
fn kill_workers_on_a_pool_whose_workers_are_still_starting() {
    let pool = ProcessPool::builder().max_workers(2).build().unwrap();
    let futures: Vec<_> = (0..6u64).map(|i| pool.submit(square, i).unwrap()).collect();
    pool.kill_workers();
    for f in &futures {
        match f.try_result() {
            Some(Ok(_)) => {}
            Some(Err(Error::Failed(failure))) => {
                assert_eq!(
                    failure.downcast_ref::<Terminated>().unwrap().signal,
                    libc::SIGKILL
                );
            }
            other => panic!("not resolved: {other:?}"),
        }
    }
    // Idempotent, and harmless after the fact.
    pool.kill_workers();
    pool.terminate_workers();
}

#[test]
fn terminate_on_a_fresh_pool_and_after_shutdown() {
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    pool.terminate_workers();
    assert!(matches!(pool.submit(square, 1), Err(SubmitError::Shutdown)));
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    assert_eq!(*pool.submit(square, 2).unwrap().result().unwrap(), 4);
    pool.shutdown(true, false);
    pool.kill_workers();
}

#[test]
fn shutdown_cancel_futures_cancels_what_has_not_started() {
    let pool = ProcessPool::builder()
        .max_workers(1)
        .prefetch(0)
        .build()
        .unwrap();
    let fifo = Fifo::new("shutdown-cancel");
    let running = pool.submit(announce_and_hang, fifo.path_string()).unwrap();
    fifo.read_line();
    let queued: Vec<_> = (0..5u64).map(|i| pool.submit(square, i).unwrap()).collect();
    pool.shutdown(false, true);
    for f in &queued {
        assert!(f.is_cancelled());
    }
    assert!(!running.is_done());
    assert!(pool.cancel(&running));
    pool.shutdown(true, false);
    assert!(
        running
            .error()
            .unwrap()
            .unwrap()
            .downcast_ref::<TaskKilled>()
            .is_some()
    );
}

#[test]
fn max_tasks_per_child_replaces_workers() {
    let pool = ProcessPool::builder()
        .max_workers(2)
        .max_tasks_per_child(3)
        .build()
        .unwrap();
    let pids: Vec<u32> = pool.map(pid_of, 0..30u64).map(Result::unwrap).collect();
    let distinct: HashSet<u32> = pids.iter().copied().collect();
    assert!(
        distinct.len() >= 10,
        "{} workers for 30 tasks",
        distinct.len()
    );
    let mut counts = std::collections::HashMap::new();
    for p in pids {
        *counts.entry(p).or_insert(0) += 1;
    }
    assert!(counts.values().all(|&n| n <= 3), "{counts:?}");
}

#[test]
fn dropping_the_pool_waits_for_queued_work() {
    let futures: Vec<_> = {
        let pool = ProcessPool::builder().max_workers(2).build().unwrap();
        (0..20u64)
            .map(|i| pool.submit(square, i).unwrap())
            .collect()
    };
    for (i, f) in futures.iter().enumerate() {
        assert_eq!(*f.result_timeout(Duration::ZERO).unwrap(), (i * i) as u64);
    }
}

#[test]
fn chunks_split_at_the_frame_limit_and_an_oversized_input_fails_alone() {
    let pool = ProcessPool::builder()
        .max_workers(2)
        .max_frame_size(4096)
        .build()
        .unwrap();
    let inputs: Vec<Vec<u8>> = (0..40)
        .map(|i| vec![7u8; if i == 17 { 10_000 } else { 300 + i }])
        .collect();
    let options = MapOptions::new().chunksize(100);
    let got: Vec<Result<usize, Error>> = pool.map_with(len_of, &inputs, options).collect();
    for (i, item) in got.iter().enumerate() {
        if i == 17 {
            let failure = item.as_ref().unwrap_err().failure().unwrap();
            let codec = failure
                .downcast_ref::<concur_process::CodecError>()
                .unwrap();
            assert_eq!(codec.stage, concur_process::CodecStage::TooLarge);
        } else {
            assert_eq!(*item.as_ref().unwrap(), inputs[i].len());
        }
    }
}

#[test]
fn terminate_escalates_to_sigkill_after_the_grace_period() {
    let pool = ProcessPool::builder()
        .max_workers(1)
        .terminate_grace(Duration::from_millis(500))
        .build()
        .unwrap();
    let fifo = Fifo::new("stubborn");
    let stubborn = pool
        .submit(ignore_sigterm_and_hang, fifo.path_string())
        .unwrap();
    let worker: u32 = fifo.read_line().parse().unwrap();
    let start = Instant::now();
    pool.terminate_workers();
    // The future resolves at once; the worker is reaped after the grace period.
    assert!(stubborn.is_done());
    assert!(start.elapsed() < Duration::from_millis(500));
    drop(pool);
    assert!(start.elapsed() >= Duration::from_millis(500));
    assert!(!common::exists(worker));
}

#[test]
fn a_worker_that_never_greets_is_killed_at_the_startup_timeout() {
    let pool = ProcessPool::builder()
        .max_workers(1)
        .worker_program("/bin/sleep")
        .worker_args(["1000"])
        .startup_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let failure = pool.submit(square, 1).unwrap().error().unwrap().unwrap();
    let broken = failure
        .downcast_ref::<concur_process::BrokenProcessPool>()
        .unwrap();
    assert!(matches!(
        broken
            .cause
            .downcast_ref::<concur_process::HandshakeError>(),
        Some(concur_process::HandshakeError::NoGreeting(_))
    ));
}
