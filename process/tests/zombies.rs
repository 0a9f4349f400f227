//! No zombies and no orphans: after shutdown, after crashes, and after the parent is killed.
//! One test per binary, since it reads this process's children from /proc.

mod common;

use std::os::fd::{AsRawFd, OwnedFd};

use concur_process::ProcessPool;

use common::{Fifo, announce, exists, hang, pidfd, sigkill, start_helper_parent, zombie_children};

concur_process::test_worker!();

concur_process::task! {
    fn square(x: u64) -> u64 { x * x }
    fn announce_and_hang(path: String) { announce(&path); hang() }
    fn exit_with(code: i32) { std::process::exit(code) }
}

/// Not a test: the parent process of the third scenario. It starts two busy workers, prints
/// their pids and waits to be killed.
#[test]
fn parent_helper() {
    if std::env::var_os("ZOMBIES_PARENT_HELPER").is_none() {
        return;
    }
    let pool = ProcessPool::builder().max_workers(2).build().unwrap();
    let fifos = [Fifo::new("helper-a"), Fifo::new("helper-b")];
    let _calls: Vec<_> = fifos
        .iter()
        .map(|fifo| pool.submit(announce_and_hang, fifo.path_string()).unwrap())
        .collect();
    // Both tasks announce themselves once they run, so both workers are past their start-up
    // (a call counts as running as soon as it is written to its worker, which may still be
    // starting).
    for fifo in &fifos {
        fifo.read_line();
    }
    // Both FIFOs have served; remove their directories now, since this process is killed.
    drop(fifos);
    let pids: Vec<String> = pool.worker_pids().iter().map(u32::to_string).collect();
    println!("PIDS {}", pids.join(" "));
    hang();
}

#[test]
fn no_zombies_after_shutdown_crashes_or_a_killed_parent() {
    // 1. Shutdown after normal work and after crashes.
    let mut seen = Vec::new();
    {
        let pool = ProcessPool::builder().max_workers(2).build().unwrap();
        let fifo = Fifo::new("zombie");
        let victim = pool.submit(announce_and_hang, fifo.path_string()).unwrap();
        let killed: u32 = fifo.read_line().parse().unwrap();
        seen.push(killed);
        sigkill(killed);
        assert!(victim.error().unwrap().is_some());
        let exited = pool.submit(exit_with, 7).unwrap();
        assert!(exited.error().unwrap().is_some());
        let squares: Vec<_> = (0..20u64)
            .map(|i| pool.submit(square, i).unwrap())
            .collect();
        for f in &squares {
            f.wait();
        }
        seen.extend(pool.worker_pids());
        pool.shutdown(true, false);
        assert!(pool.worker_pids().is_empty());
    }
    assert_eq!(zombie_children(), Vec::<u32>::new());
    for pid in &seen {
        assert!(!exists(*pid), "worker {pid} still exists");
    }

    // 2. The parent is killed: its workers die with it (PR_SET_PDEATHSIG) and, reparented to
    // us as subreaper, are reaped here.
    // SAFETY: PR_SET_CHILD_SUBREAPER takes a flag; no memory is passed.
    let subreaper = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(subreaper, 0);
    let (mut parent, workers) = start_helper_parent("parent_helper", "ZOMBIES_PARENT_HELPER", "1");
    assert_eq!(workers.len(), 2);
    let fds: Vec<OwnedFd> = workers.iter().map(|&pid| pidfd(pid)).collect();
    parent.kill().unwrap();
    parent.wait().unwrap();
    let mut polls: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // Every worker must exit; ten seconds is a generous bound, not a synchronisation.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while polls.iter().any(|p| p.revents == 0) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(!left.is_zero(), "a worker outlived its parent");
        for p in &mut polls {
            p.revents = 0;
        }
        // SAFETY: `polls` is a valid array of pollfds.
        unsafe {
            libc::poll(
                polls.as_mut_ptr(),
                polls.len() as _,
                left.as_millis() as i32,
            )
        };
        if polls.iter().all(|p| p.revents != 0) {
            break;
        }
    }
    for &pid in &workers {
        let mut status = 0;
        // SAFETY: reaping a process reparented to us.
        let got = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
        assert_eq!(
            got, pid as libc::pid_t,
            "worker {pid} was not reparented to us"
        );
        assert!(
            libc::WIFSIGNALED(status),
            "worker {pid}: status {status:#x}"
        );
        assert_eq!(libc::WTERMSIG(status), libc::SIGKILL);
    }
    assert_eq!(zombie_children(), Vec::<u32>::new());
}
