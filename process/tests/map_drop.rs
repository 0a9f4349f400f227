//! When a process pool `map`'s work starts and what dropping it cancels (Python's bpo-11777
//! rule): queued at the call; dropped unread, nothing is cancelled; dropped after a `next`,
//! what was not sent to a worker is cancelled. One worker, no prefetch, so "started" is exact.

mod common;

use std::path::Path;

use concur_process::ProcessPool;

use common::{Fifo, announce};

concur_process::test_worker!();

concur_process::task! {
    /// Announces on `started`, then blocks until the test writes to `release`.
    fn hold(started: String, release: String) { hold_until_released(&started, &release) }
    /// Leaves a file named after `i` in `dir`: the call ran.
    fn record(dir: String, i: u32) -> u32 { leave_a_mark(&dir, i) }
    /// `record`, and call 1 also holds the worker like `hold`.
    fn record_and_hold_at_one(dir: String, i: u32, started: String, release: String) -> u32 {
        leave_a_mark(&dir, i);
        if i == 1 {
            hold_until_released(&started, &release);
        }
        i
    }
}

fn hold_until_released(started: &str, release: &str) {
    announce(started);
    let _ = std::fs::read_to_string(release);
}

fn leave_a_mark(dir: &str, i: u32) -> u32 {
    std::fs::write(Path::new(dir).join(format!("ran-{i}")), b"").unwrap();
    i
}

fn one_worker_no_prefetch() -> ProcessPool {
    ProcessPool::builder()
        .max_workers(1)
        .prefetch(0)
        .build()
        .unwrap()
}

/// The calls that left their file in `dir`.
fn ran(dir: &Path) -> Vec<u32> {
    let mut ran: Vec<u32> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix("ran-")?
                .parse()
                .ok()
        })
        .collect();
    ran.sort_unstable();
    ran
}

#[test]
fn a_map_dropped_unread_cancels_nothing_and_all_its_calls_run() {
    let pool = one_worker_no_prefetch();
    let (started, release) = (Fifo::new("unread-started"), Fifo::new("unread-release"));
    let blocker = pool
        .submit(hold, (started.path_string(), release.path_string()))
        .unwrap();
    started.read_line();
    let dir = started.path.parent().unwrap().to_str().unwrap().to_owned();
    let inputs: Vec<(String, u32)> = (0..10).map(|i| (dir.clone(), i)).collect();
    drop(pool.map(record, &inputs));
    std::fs::write(&release.path, b"go\n").unwrap();
    blocker.result().unwrap();
    pool.shutdown(true, false);
    assert_eq!(ran(Path::new(&dir)), (0..10).collect::<Vec<_>>());
}

#[test]
fn a_map_advanced_once_then_dropped_cancels_what_was_not_sent() {
    let pool = one_worker_no_prefetch();
    let (started, release) = (Fifo::new("advanced-started"), Fifo::new("advanced-release"));
    let dir = started.path.parent().unwrap().to_str().unwrap().to_owned();
    let inputs: Vec<_> = (0..10)
        .map(|i| (dir.clone(), i, started.path_string(), release.path_string()))
        .collect();
    let mut results = pool.map(record_and_hold_at_one, &inputs);
    assert_eq!(results.next().unwrap().unwrap(), 0);
    // Call 1 holds the only worker; calls 2..10 are still queued in the parent.
    started.read_line();
    drop(results);
    std::fs::write(&release.path, b"go\n").unwrap();
    pool.shutdown(true, false);
    assert_eq!(ran(Path::new(&dir)), [0, 1]);
}
