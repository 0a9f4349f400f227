//! Kill a random worker every 50 ms while 10,000 tasks run: every future resolves, every task
//! that was not running on a killed worker succeeds, and the counts add up.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use concur_process::{ExitStatus, ProcessPool, WorkerDied};

concur_process::test_worker!();

concur_process::task! {
    /// A few hundred microseconds of work that the optimiser cannot skip.
    fn work(x: u64) -> u64 {
        let mut acc = x;
        for i in 0..20_000u64 {
            acc = std::hint::black_box(acc.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
        }
        std::hint::black_box(acc);
        x * 2
    }
}

const TASKS: u64 = 10_000;

#[test]
fn kill_a_random_worker_every_50ms_while_10000_tasks_run() {
    let pool = Arc::new(ProcessPool::builder().max_workers(2).build().unwrap());
    let futures: Vec<_> = (0..TASKS).map(|x| pool.submit(work, x).unwrap()).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(Mutex::new(Vec::<u32>::new()));
    let killer = {
        let (pool, stop, killed) = (Arc::clone(&pool), Arc::clone(&stop), Arc::clone(&killed));
        std::thread::spawn(move || {
            let mut rng = 0x9e37_79b9_7f4a_7c15u64;
            // ORDERING: a plain stop flag; nothing else is published through it.
            while !stop.load(Ordering::Relaxed) {
                // The cadence under test, not a synchronisation.
                std::thread::sleep(Duration::from_millis(50));
                let pids = pool.worker_pids();
                if pids.is_empty() {
                    continue;
                }
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let pid = pids[(rng % pids.len() as u64) as usize];
                // SAFETY: kill(2) of a worker the pool has not reaped yet.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                killed.lock().unwrap().push(pid);
            }
        })
    };

    let deadline = Instant::now() + Duration::from_secs(100);
    let (mut ok, mut died) = (0u64, HashMap::<u32, u64>::new());
    for (x, future) in futures.iter().enumerate() {
        assert!(future.wait_deadline(deadline), "task {x} never resolved");
        match future.result() {
            Ok(value) => {
                assert_eq!(*value, 2 * x as u64);
                ok += 1;
            }
            Err(error) => {
                let failure = error.failure().expect("a failure, not a cancel");
                let death = failure
                    .downcast_ref::<WorkerDied>()
                    .unwrap_or_else(|| panic!("task {x}: {failure}"));
                assert_eq!(death.status, ExitStatus::Signaled(libc::SIGKILL));
                *died.entry(death.pid).or_default() += 1;
            }
        }
    }
    // ORDERING: see above.
    stop.store(true, Ordering::Relaxed);
    killer.join().unwrap();
    let killed: HashSet<u32> = killed.lock().unwrap().iter().copied().collect();

    let failed: u64 = died.values().sum();
    assert_eq!(ok + failed, TASKS);
    for (pid, n) in &died {
        assert!(
            killed.contains(pid),
            "worker {pid} died without being killed"
        );
        assert_eq!(*n, 1, "worker {pid} took {n} tasks down with it");
    }
    assert!(failed as usize <= killed.len());
    assert!(!killed.is_empty());
    eprintln!(
        "{ok} succeeded, {failed} failed on {} workers killed",
        killed.len()
    );
}
