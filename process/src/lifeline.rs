//! A worker never outlives its pool: two independent ways for it to die at once when the pool
//! (or its whole process) goes, whatever its task is doing.
//!
//! 1. `PR_SET_PDEATHSIG(SIGKILL)`: the kernel kills the worker when the thread that spawned it
//!    (the pool's I/O thread) exits, which covers `SIGKILL`, `abort` and `exit` of the parent.
//!    It is armed after `exec` (`posix_spawn` cannot arm it), so the worker then checks that its
//!    parent is still the pool's process; the check cannot be made for a launched worker, whose
//!    parent is the launcher.
//! 2. A pipe with no reader left means the pool is gone. This catches what the death signal
//!    cannot: a launched worker (its parent is `env`, `ssh` or `srun`, not the pool), a parent
//!    that died before the signal was armed, and a task that clears the death signal.
//!    - **A spawned worker** gets a lifeline pipe of its own: its write end on descriptor
//!      [`FD_LIFELINE`], its only read end in the pool, which never reads it and closes it only
//!      once the worker is dead or being killed. The worker makes itself the write end's owner
//!      with `SIGKILL` as its I/O signal (`sys::kill_when_unread`), so the kernel kills it the
//!      moment that read end closes. No thread: the worker stays single-threaded until a task
//!      starts one, and start-up does not pay for a thread (about 75 µs measured on the way to
//!      the first result).
//!    - **A launched worker** (the pipe ends at the launcher, which reads it) runs a watchdog
//!      thread instead that waits, with every signal blocked, until its results pipe has no
//!      reader left. Only the pool holds that pipe's read end (close-on-exec, and closed in
//!      every other worker at spawn), with the same rule about when it closes it.
//!
//! Both end the worker with `SIGKILL`, which a task can neither catch nor ignore, so a task
//! that spins, blocks in a system call or ignores `SIGTERM` dies all the same.

use crate::sys;
use crate::worker::{FD_LIFELINE, FD_RESULTS};

/// Stack of the watchdog thread: it only calls `poll` and `kill`.
const WATCHDOG_STACK: usize = 64 * 1024;

/// Arms the death signal; returns `false` if `expected_parent` is given and the worker's parent
/// is already someone else (the pool died before the signal was armed).
pub(crate) fn arm_death_signal(expected_parent: Option<libc::pid_t>) -> bool {
    sys::set_parent_death_signal();
    expected_parent.is_none_or(|parent| sys::getppid() == parent)
}

/// What guards a worker against outliving its pool besides the death signal.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Guard {
    /// The lifeline pipe is armed: the kernel kills the worker when the pool goes.
    Lifeline,
    /// No lifeline pipe (a launched worker, or arming it failed): the watchdog thread.
    Watchdog,
}

/// Arms the lifeline pipe on [`FD_LIFELINE`] if the worker has one. `None` if the pool is
/// already gone: it may have died before the pipe was armed, and then no close is left to
/// send the signal.
pub(crate) fn arm_lifeline() -> Option<Guard> {
    if !sys::is_open(FD_LIFELINE) || sys::kill_when_unread(FD_LIFELINE).is_err() {
        return Some(Guard::Watchdog);
    }
    // A process a task starts must not keep the pool's lifeline to this worker.
    let _ = sys::set_cloexec(FD_LIFELINE);
    (!sys::is_unread(FD_LIFELINE)).then_some(Guard::Lifeline)
}

/// Starts the watchdog thread (`worker::serve` does, before any user code runs). If the thread
/// cannot be created the worker goes on with the death signal alone.
pub(crate) fn start_watchdog() {
    // Every signal stays blocked in the watchdog, so signals sent to the worker (a task's own
    // SIGALRM or SIGINT handler, say) are still delivered to the task's threads.
    let _ = sys::with_signals_blocked(|| {
        std::thread::Builder::new()
            .name("concur-process-lifeline".into())
            .stack_size(WATCHDOG_STACK)
            .spawn(|| {
                if sys::wait_until_unread(FD_RESULTS) {
                    sys::kill_self();
                }
            })
    });
}
