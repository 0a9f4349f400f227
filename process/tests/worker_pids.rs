//! `worker_pids` lists the workers that take calls: not one retired by `max_tasks_per_child`
//! that is still exiting.

mod common;

use std::sync::OnceLock;

use concur_process::ProcessPool;

concur_process::test_worker!();

/// The FIFO the exit hook of `pid_holding_exit` waits on.
static EXIT_GATE: OnceLock<String> = OnceLock::new();

extern "C" fn wait_at_exit() {
    if let Some(path) = EXIT_GATE.get() {
        // Opening a FIFO for reading blocks until the test opens it for writing.
        drop(std::fs::File::open(path));
    }
}

concur_process::task! {
    fn pid() -> u32 { std::process::id() }
    /// This worker's pid; and when the worker exits, it waits until the test opens `gate`.
    fn pid_holding_exit(gate: String) -> u32 {
        let _ = EXIT_GATE.set(gate);
        // SAFETY: registers a function with no arguments that only opens a file.
        unsafe { libc::atexit(wait_at_exit) };
        std::process::id()
    }
}

#[test]
fn a_retired_worker_still_exiting_is_not_listed() {
    let gate = common::Fifo::new("exit-gate");
    let pool = ProcessPool::builder()
        .max_workers(1)
        .max_tasks_per_child(3)
        .build()
        .unwrap();
    let first = *pool.submit(pid, ()).unwrap().result().unwrap();
    assert_eq!(*pool.submit(pid, ()).unwrap().result().unwrap(), first);
    let third = pool.submit(pid_holding_exit, gate.path_string()).unwrap();
    assert_eq!(*third.result().unwrap(), first);
    let replacement = *pool.submit(pid, ()).unwrap().result().unwrap();
    // The retired worker cannot have exited yet: it waits on the gate.
    let listed = pool.worker_pids();
    // Open the gate before asserting, so a failure does not leave the pool's drop waiting for a
    // worker that never exits. (Read-write: never blocks, and stays open for the worker.)
    let _open_gate = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&gate.path)
        .unwrap();
    assert_ne!(replacement, first);
    assert_eq!(listed, [replacement], "retired worker {first}");
}

#[test]
fn after_a_retirement_only_the_replacement_is_listed_in_every_run() {
    for run in 0..50 {
        let pool = ProcessPool::builder()
            .max_workers(1)
            .max_tasks_per_child(3)
            .build()
            .unwrap();
        let pids: Vec<u32> = (0..4)
            .map(|_| *pool.submit(pid, ()).unwrap().result().unwrap())
            .collect();
        assert_eq!(pids[..3], [pids[0]; 3], "run {run}");
        assert_ne!(pids[3], pids[0], "run {run}");
        assert_eq!(pool.worker_pids(), [pids[3]], "run {run}");
    }
}
