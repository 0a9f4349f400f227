//! Submitting, results, panics, codec errors, map.

use concur_process::{ProcessPool, TaskPanicked};

concur_process::test_worker!();

concur_process::task! {
    fn square(x: u64) -> u64 { x * x }
    fn add(a: i64, b: i64) -> i64 { a + b }
    fn boom(msg: String) -> u8 { panic!("{msg}") }
    fn pid() -> u32 { std::process::id() }
    fn nested(x: u64) -> (u64, u32) {
        // A pool inside a worker: its workers are this worker's children.
        let pool = ProcessPool::builder().max_workers(1).build().unwrap();
        let inner = pool.submit(pid, ()).unwrap().into_result().unwrap();
        (*pool.submit(square, x).unwrap().result().unwrap(), inner)
    }
    fn stdin_bytes() -> usize {
        use std::io::Read;
        let mut all = Vec::new();
        std::io::stdin().read_to_end(&mut all).unwrap();
        all.len()
    }
    fn open_fds() -> Vec<i32> {
        let mut fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        fds.sort();
        fds
    }
    /// This process's threads: all of them, and those named by the pool's code
    /// (`concur-process-...`; a new thread names itself, so a very young one may not be yet).
    fn threads() -> (usize, usize) {
        let names: Vec<String> = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .collect();
        let ours = names.iter().filter(|n| n.starts_with("concur-process")).count();
        (names.len(), ours)
    }
    fn group_and_pid() -> (i32, i32) {
        // SAFETY: getpgrp and getpid take no arguments and cannot fail.
        unsafe { (libc::getpgrp(), libc::getpid()) }
    }
}

#[test]
fn submit_and_result() {
    let pool = ProcessPool::builder().max_workers(2).build().unwrap();
    let f = pool.submit(square, 12).unwrap();
    assert_eq!(*f.result().unwrap(), 144);
    let g = pool.submit(add, (2, -5)).unwrap();
    assert_eq!(*g.result().unwrap(), -3);
    let worker = *pool.submit(pid, ()).unwrap().result().unwrap();
    assert_ne!(worker, std::process::id());
}

#[test]
fn panic_comes_back_with_message_and_location() {
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    let f = pool.submit(boom, "kaput".to_string()).unwrap();
    let failure = f.error().unwrap().unwrap();
    let panic = failure.downcast_ref::<TaskPanicked>().unwrap();
    assert_eq!(panic.message.as_deref(), Some("kaput"));
    assert!(
        panic.location.as_deref().unwrap().contains("basic.rs"),
        "{panic}"
    );
    // The worker survives.
    assert_eq!(*pool.submit(square, 3).unwrap().result().unwrap(), 9);
}

#[test]
fn map_in_order() {
    let pool = ProcessPool::builder().max_workers(2).build().unwrap();
    let got: Vec<u64> = pool.map(square, 0..100u64).map(Result::unwrap).collect();
    let want: Vec<u64> = (0..100u64).map(|x| x * x).collect();
    assert_eq!(got, want);
}

#[test]
fn workers_get_dev_null_stdin_only_their_pipes_and_their_own_group() {
    // A descriptor the parent leaks without close-on-exec must not reach the workers.
    // SAFETY: dup of stdout; the copy is closed below.
    let leaked = unsafe { libc::dup(1) };
    assert!(leaked >= 0);
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    assert_eq!(*pool.submit(stdin_bytes, ()).unwrap().result().unwrap(), 0);
    let fds = pool.submit(open_fds, ()).unwrap().into_result().unwrap();
    // 0-2, the two pipes, the lifeline, and the directory being listed.
    assert_eq!(&fds[..6], &[0, 1, 2, 3, 4, 5], "{fds:?}");
    assert!(fds.len() <= 7, "{fds:?}");
    let (group, worker) = *pool.submit(group_and_pid, ()).unwrap().result().unwrap();
    assert_eq!(group, worker);
    // SAFETY: our own descriptor from above.
    unsafe { libc::close(leaked) };
}

#[test]
fn a_spawned_worker_runs_no_thread_of_its_own_and_a_launched_one_its_watchdog() {
    // The lifeline pipe guards a spawned worker without a thread (`lifeline`), so a task that
    // forks, say, forks a process with only its own threads (here: libtest's).
    let spawned = ProcessPool::builder().max_workers(1).build().unwrap();
    // A first call, so that a thread the worker started before it (as the watchdog did) has
    // named itself by the second.
    spawned.submit(threads, ()).unwrap().wait();
    let (spawned_threads, named) = *spawned.submit(threads, ()).unwrap().result().unwrap();
    assert_eq!(named, 0, "a pool thread in a spawned worker");
    // Through a launcher the pipes end at the launcher, which reads them: a watchdog thread
    // (and the heartbeat thread) instead, in the same libtest process otherwise.
    let launched = ProcessPool::builder()
        .max_workers(1)
        .launcher(Vec::<String>::new())
        .build()
        .unwrap();
    let (launched_threads, _) = *launched.submit(threads, ()).unwrap().result().unwrap();
    assert!(
        launched_threads > spawned_threads,
        "launched {launched_threads} threads, spawned {spawned_threads}"
    );
}

#[test]
fn handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ProcessPool>();
    send_sync::<concur_process::Task<u64, u64>>();
    send_sync::<concur_process::Map<'static, u64, u64, std::ops::Range<u64>>>();
    send_sync::<concur_process::ProcessPoolBuilder>();
}

#[test]
fn a_task_may_run_its_own_pool() {
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    let worker = *pool.submit(pid, ()).unwrap().result().unwrap();
    let (square_of_5, inner) = *pool.submit(nested, 5).unwrap().result().unwrap();
    assert_eq!(square_of_5, 25);
    assert_ne!(inner, worker);
    assert_ne!(inner, std::process::id());
}

#[test]
fn the_default_max_workers_is_the_cpu_count_as_in_python() {
    let pool = ProcessPool::builder().build().unwrap();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(pool.max_workers(), cpus);
}
