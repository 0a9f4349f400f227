//! When a process pool `map`'s work starts and what dropping it cancels (Python's bpo-11777
//! rule): queued at the call, the first chunk before later inputs are even pulled; dropped
//! unread, nothing is cancelled; dropped after a `next`, what was not sent to a worker is
//! cancelled. One worker, no prefetch, so "started" is exact.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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

/// Inputs `(dir, 0)`, `(dir, 1)`, `(dir, 2)` for `record`; before handing out input 1 it waits
/// (up to 10 s) for input 0's call to leave its mark, and remembers whether it did.
struct WaitsForTheFirstCall {
    dir: PathBuf,
    next: u32,
    first_ran_before_the_second_was_pulled: Option<bool>,
}

impl Iterator for WaitsForTheFirstCall {
    type Item = (String, u32);

    fn next(&mut self) -> Option<(String, u32)> {
        if self.next == 3 {
            return None;
        }
        if self.next == 1 {
            let mark = self.dir.join("ran-0");
            let deadline = Instant::now() + Duration::from_secs(10);
            while !mark.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            self.first_ran_before_the_second_was_pulled = Some(mark.exists());
        }
        self.next += 1;
        Some((self.dir.to_str().unwrap().to_owned(), self.next - 1))
    }
}

#[test]
fn a_maps_first_chunk_runs_while_its_later_inputs_are_still_pulled() {
    let pool = one_worker_no_prefetch();
    let marks = Fifo::new("first-chunk");
    let mut inputs = WaitsForTheFirstCall {
        dir: marks.path.parent().unwrap().to_path_buf(),
        next: 0,
        first_ran_before_the_second_was_pulled: None,
    };
    let results: Vec<u32> = pool
        .map(record, inputs.by_ref())
        .map(Result::unwrap)
        .collect();
    assert_eq!(results, [0, 1, 2]);
    assert_eq!(
        inputs.first_ran_before_the_second_was_pulled,
        Some(true),
        "the first chunk waited for the map call to pull every input"
    );
}
