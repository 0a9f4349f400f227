//! Calls a dead worker never read are not lost: the pool looks at what is left unread in the
//! worker's calls pipe, and calls still wholly there never started, so they go to a
//! replacement whatever the task (only a call the worker had begun to read can have run).

mod common;

use std::time::Duration;

use concur_process::ProcessPool;

concur_process::test_worker!();

concur_process::task! {
    fn square(x: u64) -> u64 { x * x }
    fn pid() -> u32 { std::process::id() }
}

const BOUND: Duration = Duration::from_secs(20);

#[test]
fn a_call_submitted_right_after_an_idle_worker_was_killed_runs_on_a_replacement() {
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    let mut worker = *pool.submit(pid, ()).unwrap().result_timeout(BOUND).unwrap();
    for round in 0..20u64 {
        let pidfd = common::pidfd(worker);
        common::sigkill(worker);
        // Dead, so it reads nothing more (a call written while the kill is still pending can
        // be taken by the dying worker, and then it may have run), but not yet reaped by the
        // pool: the call goes to the dead worker's pipe.
        assert!(
            exited_within(&pidfd, BOUND),
            "worker {worker} survived SIGKILL"
        );
        let call = pool.submit(square, round).unwrap();
        match call.result_timeout(BOUND) {
            Ok(value) => assert_eq!(*value, round * round),
            Err(error) => {
                panic!("round {round}: the call the dead worker never read failed: {error}")
            }
        }
        worker = *pool.submit(pid, ()).unwrap().result_timeout(BOUND).unwrap();
    }
}

/// Whether the process of `pidfd` exits within `bound` (its pidfd becomes readable).
fn exited_within(pidfd: &std::os::fd::OwnedFd, bound: Duration) -> bool {
    let mut fds = [libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(pidfd),
        events: libc::POLLIN,
        revents: 0,
    }];
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(fds.as_mut_ptr(), 1, bound.as_millis() as i32) == 1 }
}
