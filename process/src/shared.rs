//! What the pool's handle, its I/O thread and the threads driving express calls share: the
//! fixed configuration, the locked state (queue, requests, lent workers) and the wake-ups.
//! Every other module of the pool depends on this one and it on none of them, so the pool's
//! parts no longer import each other in a circle.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use concur_core::Failure;

use crate::job::Job;
use crate::launcher::{KillPolicy, Master};
use crate::results_line::ResultsLine;
use crate::spawn::SpawnConfig;
use crate::sys::{EventFd, Timer};

/// The initializer task's name, signature and encoded arguments.
pub(crate) type Initializer = (&'static str, u64, Vec<u8>);

/// Everything the I/O thread needs to know, fixed at `build`.
pub(crate) struct Config {
    pub(crate) max_workers: usize,
    pub(crate) max_tasks_per_child: Option<u64>,
    pub(crate) initializer: Option<Initializer>,
    pub(crate) task_timeout: Option<Duration>,
    /// Calls a worker may hold at once (the running one plus prefetched ones).
    pub(crate) depth: usize,
    pub(crate) max_frame: usize,
    pub(crate) startup_timeout: Duration,
    pub(crate) terminate_grace: Duration,
    /// Where workers start: each group's launcher expanded into its hosts.
    pub(crate) groups: Vec<Group>,
    /// How many more times an idempotent call runs after its worker died.
    pub(crate) retries: u32,
}

/// Up to `max` workers started through one launcher, spread across its slots (hosts).
pub(crate) struct Group {
    pub(crate) max: usize,
    pub(crate) slots: Vec<Slot>,
}

/// One host of a launcher: how a worker is spawned there and killed.
pub(crate) struct Slot {
    pub(crate) host: Arc<str>,
    pub(crate) spawn: SpawnConfig,
    pub(crate) kill: KillPolicy,
    /// The ssh connection master to bring up before the first worker.
    pub(crate) master: Option<Master>,
    /// The heartbeat interval of this host's workers, if they send and expect heartbeats.
    pub(crate) heartbeat: Option<Duration>,
}

/// An idle worker lent by the sleeping I/O thread: `submit` may write one call to it directly,
/// and the thread waiting on that call's future may read the answer itself (see
/// [`crate::drive`]).
pub(crate) struct Express {
    pub(crate) worker: u64,
    /// The pool's end of the worker's calls pipe (owned by the I/O thread, which does not
    /// close it while the worker is lent).
    pub(crate) fd: RawFd,
    /// The pool's end of the worker's results pipe (likewise kept open while lent).
    pub(crate) results: RawFd,
    /// The worker's pidfd, if the kernel has them (likewise kept open while lent): a reader
    /// watches it too, since a process the task forked may hold the results pipe open after
    /// the worker died, and then no EOF comes.
    pub(crate) pidfd: Option<RawFd>,
    /// A blocking read end of the results pipe, for a reader without a deadline (opened only
    /// where the worker has a pidfd, which is how the I/O thread learns it must wake it).
    pub(crate) line: Option<Arc<ResultsLine>>,
    /// Calls the worker may still take before `max_tasks_per_child` retires it.
    pub(crate) left: Option<u64>,
    /// Calls it answered while lent, for the I/O thread's count.
    pub(crate) used: u64,
    /// The CPU it answered its last driven call on (`crate::pipe_spin`), if known.
    pub(crate) worker_cpu: Option<u32>,
}

/// A call `submit` wrote to a lent worker, for the I/O thread to adopt (or its waiting thread
/// to drive).
pub(crate) struct Expressed {
    pub(crate) lent: Express,
    pub(crate) job: Job,
    /// Bytes of the frame written.
    pub(crate) written: usize,
}

/// How long an expressed call's answer may wait for a thread to read it before the I/O thread
/// collects it anyway (blocking waits read it at once; other waiters announce themselves).
pub(crate) const EXPRESS_GRACE: Duration = Duration::from_millis(10);

/// Calls up to this size may take the express path: one write of at most `PIPE_BUF` bytes to
/// a pipe, which is all or nothing.
pub(crate) const EXPRESS_MAX: usize = 4096;

/// State shared by the pool's handle and its I/O thread.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Whether `submit` may write calls straight to idle workers (not with a task timeout, whose
    /// clock the sleeping I/O thread must know about).
    pub(crate) express: bool,
    /// Signalled when the I/O thread answers a request or exits.
    pub(crate) changed: Condvar,
    /// Wakes the I/O thread out of `poll`.
    pub(crate) wake: EventFd,
    /// Wakes the I/O thread [`EXPRESS_GRACE`] after a call took the express path, so an answer
    /// that no thread reads (its future polled with `is_done`, or dropped) is still collected.
    pub(crate) express_timer: Timer,
    next_id: AtomicU64,
    /// Largest frame a worker may send.
    pub(crate) max_frame: usize,
}

/// Guarded by `Shared::state`.
pub(crate) struct State {
    /// Calls not yet given to a worker, in submission order.
    pub(crate) queue: VecDeque<Job>,
    /// Bumped by every request, so the I/O thread knows whether it has seen everything.
    pub(crate) generation: u64,
    pub(crate) shutdown: bool,
    pub(crate) broken: Option<Failure>,
    /// `terminate_workers` / `kill_workers` asked for this signal.
    pub(crate) terminate: Option<i32>,
    /// The I/O thread has acted on `terminate`.
    pub(crate) terminated: bool,
    /// Futures whose running task should be killed, by identity.
    pub(crate) cancels: Vec<usize>,
    pub(crate) cancel_answers: Vec<(usize, bool)>,
    /// The I/O thread is (about to be) blocked in `poll` and needs the eventfd to wake.
    pub(crate) io_sleeping: bool,
    pub(crate) io_done: bool,
    pub(crate) pids: Vec<u32>,
    /// The host of each worker in `pids`.
    pub(crate) hosts: Vec<Arc<str>>,
    /// Idle workers lent to `submit` while the I/O thread sleeps.
    pub(crate) express: Vec<Express>,
    /// Calls `submit` sent to lent workers.
    pub(crate) expressed: Vec<Expressed>,
    /// The I/O thread sleeps with workers lent (set when it lends, cleared when it takes them
    /// back).
    pub(crate) lending: bool,
    /// Lent workers whose answer a waiting thread is reading.
    pub(crate) driving: Vec<Loan>,
    /// Workers that driving threads gave back while the I/O thread was not lending.
    pub(crate) returned: Vec<Returned>,
    /// `Shared::express_timer` is set (cleared when the I/O thread takes the lent workers back).
    pub(crate) express_timer_armed: bool,
}

impl Shared {
    /// A fresh pool state with no workers and nothing queued.
    pub(crate) fn new(express: bool, max_frame: usize) -> std::io::Result<Self> {
        Ok(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                generation: 0,
                shutdown: false,
                broken: None,
                terminate: None,
                terminated: false,
                cancels: Vec::new(),
                cancel_answers: Vec::new(),
                io_sleeping: false,
                io_done: false,
                pids: Vec::new(),
                hosts: Vec::new(),
                express: Vec::new(),
                expressed: Vec::new(),
                lending: false,
                driving: Vec::new(),
                returned: Vec::new(),
                express_timer_armed: false,
            }),
            express,
            changed: Condvar::new(),
            wake: EventFd::new()?,
            express_timer: Timer::new()?,
            next_id: AtomicU64::new(1),
            max_frame,
        })
    }
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked (no user code runs under it).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn next_id(&self) -> u64 {
        // ORDERING: only uniqueness matters; ids order nothing else.
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Bumps the generation and wakes the I/O thread if it sleeps; call with the lock held and
    /// notify after releasing it.
    pub(crate) fn touch(state: &mut State) -> bool {
        state.generation = state.generation.wrapping_add(1);
        std::mem::take(&mut state.io_sleeping)
    }
}

/// A lent worker whose answer a waiting thread is reading.
pub(crate) struct Loan {
    pub(crate) worker: u64,
    /// The driven call's id and its future's key (for `ProcessPool::cancel`).
    pub(crate) id: u64,
    pub(crate) key: usize,
}

/// A worker a driver handed back to the I/O thread.
pub(crate) struct Returned {
    pub(crate) worker: u64,
    /// The driven call, if the driver did not complete it.
    pub(crate) job: Option<Job>,
    /// Bytes read from the results pipe and not consumed.
    pub(crate) bytes: Vec<u8>,
    /// Calls the worker answered while lent.
    pub(crate) used: u64,
    /// The CPU it answered its last driven call on, if known.
    pub(crate) worker_cpu: Option<u32>,
}
