//! DESIGN §7: nothing hangs, nothing is lost. Many tiny tasks, every result checked; pools
//! dropped or shut down with a long queue resolve every future; an idle pool uses no CPU.

use std::sync::mpsc;
use std::time::Duration;

use concur_core::{Error, Future};
use concur_pool::ThreadPool;

/// One million, in debug builds too (a few seconds on two cores).
const TINY_TASKS: u64 = 1_000_000;

#[test]
fn a_million_tiny_tasks_on_two_workers_none_lost() {
    let pool = ThreadPool::new(2).unwrap();
    const BATCH: u64 = 20_000;
    let mut checked = 0;
    for start in (0..TINY_TASKS).step_by(BATCH as usize) {
        let futures: Vec<Future<u64>> = (start..start + BATCH)
            .map(|i| {
                pool.submit(move || i.wrapping_mul(2_654_435_761) ^ i)
                    .unwrap()
            })
            .collect();
        for (i, future) in (start..).zip(futures) {
            assert_eq!(
                future.into_result().unwrap(),
                i.wrapping_mul(2_654_435_761) ^ i
            );
            checked += 1;
        }
    }
    assert_eq!(checked, TINY_TASKS);
    assert_eq!(pool.spawned_workers(), 2);
}

/// Tasks submitted from several threads at once, all resolved.
#[test]
fn concurrent_submitters_lose_nothing() {
    let pool = ThreadPool::new(2).unwrap();
    let per_thread = TINY_TASKS / 10;
    let submitters: Vec<_> = (0..3u64)
        .map(|t| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let futures: Vec<_> = (0..per_thread)
                    .map(|i| pool.submit(move || t * per_thread + i).unwrap())
                    .collect();
                futures
                    .into_iter()
                    .map(|f| f.into_result().unwrap())
                    .sum::<u64>()
            })
        })
        .collect();
    let total: u64 = submitters.into_iter().map(|h| h.join().unwrap()).sum();
    let n = 3 * per_thread;
    assert_eq!(total, n * (n - 1) / 2);
}

/// A gate that keeps the only worker busy until opened, so work piles up behind it.
fn blocked_pool() -> (ThreadPool, mpsc::Sender<()>, Future<()>) {
    let pool = ThreadPool::new(1).unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let blocker = pool
        .submit(move || {
            started_tx.send(()).unwrap();
            gate_rx.recv().unwrap();
        })
        .unwrap();
    started_rx.recv().unwrap();
    (pool, gate_tx, blocker)
}

#[test]
fn a_pool_dropped_with_100k_queued_tasks_resolves_every_future() {
    let (pool, gate, blocker) = blocked_pool();
    let futures: Vec<Future<u32>> = (0..100_000u32)
        .map(|i| pool.submit(move || i + 1).unwrap())
        .collect();
    assert_eq!(pool.queued(), 100_000);
    let opener = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        gate.send(()).unwrap();
    });
    drop(pool); // shutdown(wait = true): returns when the queue is done
    opener.join().unwrap();
    blocker.result().unwrap();
    for (i, f) in (0u32..).zip(&futures) {
        assert_eq!(f.try_result().unwrap().copied().unwrap(), i + 1);
    }
}

#[test]
fn cancel_futures_with_100k_queued_tasks_resolves_every_future_at_once() {
    let (pool, gate, blocker) = blocked_pool();
    let futures: Vec<Future<u32>> = (0..100_000u32)
        .map(|i| pool.submit(move || i).unwrap())
        .collect();
    pool.shutdown(false, true);
    for f in &futures {
        assert!(matches!(f.try_result(), Some(Err(Error::Cancelled))));
    }
    gate.send(()).unwrap();
    blocker.result().unwrap();
    drop(pool);
}

#[test]
fn a_pool_whose_last_handle_goes_with_a_task_still_drains_its_queue() {
    let (pool, gate, blocker) = blocked_pool();
    let futures: Vec<Future<u32>> = (0..10_000u32)
        .map(|i| pool.submit(move || i).unwrap())
        .collect();
    let last = pool.clone();
    let dropper = pool.submit(move || drop(last)).unwrap();
    drop(pool);
    gate.send(()).unwrap();
    blocker.result().unwrap();
    dropper.result().unwrap();
    for (i, f) in (0u32..).zip(&futures) {
        assert_eq!(*f.result_timeout(Duration::from_secs(30)).unwrap(), i);
    }
}

/// An idle pool sleeps: 10 ms after its last task, its workers use under 1% of a CPU.
#[cfg(target_os = "linux")]
#[test]
fn an_idle_pool_uses_no_cpu() {
    /// Nanoseconds on CPU of this process's threads whose name starts with `prefix`.
    fn cpu_ns(prefix: &str) -> u64 {
        let mut total = 0;
        for entry in std::fs::read_dir("/proc/self/task").unwrap() {
            let dir = entry.unwrap().path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if !comm.starts_with(prefix) {
                continue;
            }
            let stat = std::fs::read_to_string(dir.join("schedstat")).unwrap_or_default();
            total += stat
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
                .unwrap_or(0);
        }
        total
    }
    let pool = ThreadPool::builder()
        .max_workers(2)
        .thread_name_prefix("idlecpu")
        .build()
        .unwrap();
    let futures: Vec<_> = (0..1000).map(|i| pool.submit(move || i).unwrap()).collect();
    for f in &futures {
        f.result().unwrap();
    }
    assert_eq!(pool.spawned_workers(), 2);
    std::thread::sleep(Duration::from_millis(10));
    let before = cpu_ns("idlecpu");
    let window = Duration::from_millis(300);
    std::thread::sleep(window);
    let used = cpu_ns("idlecpu") - before;
    let share = used as f64 / window.as_nanos() as f64;
    assert!(
        share < 0.01,
        "idle workers used {:.3}% of a CPU",
        share * 100.0
    );
    // And they still wake for new work.
    assert_eq!(*pool.submit(|| 7).unwrap().result().unwrap(), 7);
}
