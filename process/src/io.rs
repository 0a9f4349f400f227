//! The pool's I/O thread: it alone starts, feeds, reads, times, kills and reaps the workers.
//!
//! One `poll(2)` covers an eventfd (new work, requests), each worker's results pipe, each
//! worker's calls pipe while it has bytes to write, and each worker's pidfd. All pipes are
//! non-blocking, so a worker writing a huge result never blocks the thread that is feeding it
//! (or any other worker). A worker's death shows as EOF on its results pipe and its pidfd
//! becoming readable; `waitpid` then collects the status and reaps it. Nothing is polled on a
//! timer: `poll` sleeps until an event or the nearest deadline (task timeout, start-up timeout,
//! terminate grace).
//!
//! A worker runs its calls one after another and answers in order, so its in-flight calls are a
//! FIFO whose head is the running one. When it dies, the head fails and the rest, which never
//! started, go back to the front of the queue for a replacement.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use concur_core::Failure;

use crate::drive::Returned;
use crate::error::{
    BrokenProcessPool, ExitStatus, HandshakeError, InitializerFailed, ProtocolError, SpawnFailed,
    TaskKilled, TaskTimedOut, Terminated, WorkerDied,
};
use crate::frame::{self, Frame, FrameError, Outcomes, PROTOCOL_VERSION};
use crate::job::{Job, wire_failure};
use crate::pool::{Config, Express, Expressed, Shared};
use crate::restart::{Restarts, StartupDeath};
use crate::spawn;
use crate::sys;
use crate::worker::{SYNC, fingerprint};

/// Most bytes a launcher may print before its worker greets the pool.
const NOISE_LIMIT: usize = 64 * 1024;

/// `poll` owner tags of the eventfd and the express timer (worker indices otherwise).
const WAKE: usize = usize::MAX;
const EXPRESS_TIMER: usize = usize::MAX - 1;

/// The workers lent before a sleep, or `None` when there is no sleeping.
struct Lent(Option<Vec<u64>>);

impl Lent {
    fn is_none(&self) -> bool {
        self.0.is_none()
    }

    fn contains(&self, worker: &u64) -> bool {
        self.0.as_ref().is_some_and(|ids| ids.contains(worker))
    }
}

/// Most bytes read from one worker per wake, so one huge result cannot starve the others.
const READ_BUDGET: usize = 8 << 20;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// Spawned; waiting for HELLO.
    Hello,
    /// Greeted; waiting for READY (the initializer runs).
    Init,
    /// Takes calls.
    Ready,
}

/// Why the pool killed a worker, which decides the error of the call it was running.
enum Kill {
    Timeout { id: u64, timeout: Duration },
    Cancel { id: u64 },
    Protocol(FrameError),
    Startup(Failure),
    Terminate(i32),
    Broken,
}

struct Worker {
    /// Unique within the pool (pids can be reused once reaped).
    id: u64,
    pid: libc::pid_t,
    pidfd: Option<OwnedFd>,
    calls: Option<OwnedFd>,
    /// The pool's own, never read, read end of the calls pipe (`spawn::Spawned::calls_reader`).
    _calls_reader: OwnedFd,
    results: Option<OwnedFd>,
    rbuf: Vec<u8>,
    rpos: usize,
    /// Whether the bytes before the worker's first frame were skipped (launcher mode only).
    synced: bool,
    phase: Phase,
    /// The INIT frame and how much of it was written.
    prefix: Vec<u8>,
    prefix_off: usize,
    in_flight: VecDeque<Job>,
    /// Index of the first call in `in_flight` not completely written, and the bytes of it
    /// written.
    unwritten: usize,
    offset: usize,
    /// When the head call started (the previous answer arrived, or it was sent to an idle
    /// worker).
    head_since: Instant,
    spawned_at: Instant,
    sent: u64,
    retiring: bool,
    eof: bool,
    exited: bool,
    kill: Option<Kill>,
    killed_at: Option<Instant>,
    /// Lent to a thread reading its answer (`crate::drive`): the id and future key of that
    /// call. This thread neither reads nor reaps the worker until it is given back.
    loan: Option<(u64, usize)>,
}

impl Worker {
    fn pid(&self) -> u32 {
        self.pid as u32
    }

    fn alive(&self) -> bool {
        self.kill.is_none() && !self.eof && !self.exited
    }

    fn has_unwritten(&self) -> bool {
        self.prefix_off < self.prefix.len() || self.unwritten < self.in_flight.len()
    }

    /// Takes calls, now or once started: alive, and neither retired nor spent.
    fn takes_calls(&self, config: &Config) -> bool {
        self.alive()
            && !self.retiring
            && config.max_tasks_per_child.is_none_or(|max| self.sent < max)
    }

    /// Can take another call now.
    fn capacity(&self, config: &Config) -> bool {
        self.takes_calls(config)
            && self.phase == Phase::Ready
            && self.loan.is_none()
            && self.calls.is_some()
            && self.in_flight.len() < config.depth
    }

    fn signal(&mut self, signal: i32, reason: Kill) {
        if self.kill.is_none() {
            self.kill = Some(reason);
            self.killed_at = Some(Instant::now());
        }
        sys::kill_worker(self.pid, signal);
        // Nothing more goes to a worker being killed.
        self.calls = None;
    }

    /// Writes what it can without blocking.
    fn flush(&mut self) {
        let Some(fd) = &self.calls else { return };
        let fd = fd.as_raw_fd();
        while self.has_unwritten() {
            let mut slices = Vec::with_capacity(16);
            if self.prefix_off < self.prefix.len() {
                slices.push(IoSlice::new(&self.prefix[self.prefix_off..]));
            }
            let mut skip = self.offset;
            for job in self.in_flight.iter().skip(self.unwritten).take(256) {
                slices.push(IoSlice::new(&job.frame[skip..]));
                skip = 0;
            }
            match sys::write_vectored(fd, &slices) {
                Ok(mut n) => {
                    let prefix_left = self.prefix.len() - self.prefix_off;
                    let from_prefix = n.min(prefix_left);
                    self.prefix_off += from_prefix;
                    n -= from_prefix;
                    while n > 0 {
                        let left = self.in_flight[self.unwritten].frame.len() - self.offset;
                        if n >= left {
                            n -= left;
                            self.unwritten += 1;
                            self.offset = 0;
                        } else {
                            self.offset += n;
                            n = 0;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    // The descriptor is unusable; the worker's death (if that is it) is handled
                    // when it is seen.
                    self.calls = None;
                    return;
                }
            }
        }
    }

    /// Reads what is available; sets `eof` at end of input.
    fn read_available(&mut self, limit: usize) {
        let Some(fd) = &self.results else { return };
        let fd = fd.as_raw_fd();
        let mut budget = READ_BUDGET;
        while budget > 0 {
            if self.rpos == self.rbuf.len() {
                self.rbuf.clear();
                self.rpos = 0;
                if self.rbuf.capacity() > 4 << 20 {
                    self.rbuf = Vec::with_capacity(64 * 1024);
                }
            }
            // Make room for more of the announced frame at once (a frame is at most `limit`);
            // a failed allocation ends the worker rather than the process.
            if let Ok(total) = frame::frame_size(&self.rbuf[self.rpos..], limit) {
                let have = self.rbuf.len() - self.rpos;
                if total > have && self.rbuf.try_reserve((total - have).min(16 << 20)).is_err() {
                    self.signal(
                        libc::SIGKILL,
                        Kill::Protocol(FrameError::Oversized {
                            size: total as u64,
                            limit,
                        }),
                    );
                    self.results = None;
                    self.eof = true;
                    return;
                }
            }
            if self.rbuf.capacity() - self.rbuf.len() < 4096 {
                self.rbuf.reserve(64 * 1024);
            }
            let want = budget
                .min(4 << 20)
                .min(self.rbuf.capacity() - self.rbuf.len());
            match sys::read_into_spare(fd, &mut self.rbuf, want) {
                Ok(0) => {
                    self.eof = true;
                    self.results = None;
                    return;
                }
                // A short read drained the pipe: skip the read that would say EAGAIN (poll is
                // level-triggered and reports anything that arrives later).
                Ok(n) if n < want => return,
                Ok(n) => budget = budget.saturating_sub(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.eof = true;
                    self.results = None;
                    return;
                }
            }
        }
    }
}

/// What reading a worker's frames asks of the pool.
enum Event {
    Ready,
    Broken(Failure),
}

struct Terminating {
    signal: i32,
    escalate_at: Instant,
    escalated: bool,
}

struct Io {
    shared: Arc<Shared>,
    config: Config,
    workers: Vec<Worker>,
    restarts: Restarts,
    seen_generation: u64,
    shutdown: bool,
    queued: usize,
    broken: bool,
    terminating: Option<Terminating>,
    fingerprint: u64,
    /// `poll` arguments, reused across iterations: the descriptors and, for each, the worker
    /// index (`usize::MAX` for the eventfd) and what it is (0 results, 1 calls, 2 pidfd).
    fds: Vec<libc::pollfd>,
    owners: Vec<(usize, u8)>,
    next_worker_id: u64,
    /// What `State::pids` holds.
    published_pids: Vec<u32>,
}

/// Marks the I/O thread gone however it ends, so that no caller waits for it forever and no
/// queued call is left behind: if it ends by a panic (a bug), the pool reports itself broken and
/// the queued futures resolve as abandoned.
struct ExitGuard(Arc<Shared>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let leftovers = {
            let mut state = self.0.lock();
            if !state.io_done && state.broken.is_none() {
                state.broken = Some(Failure::from_error(BrokenProcessPool {
                    cause: Failure::from_error(std::io::Error::other(
                        "the pool's I/O thread ended unexpectedly",
                    )),
                }));
            }
            state.io_done = true;
            state.pids.clear();
            std::mem::take(&mut state.queue)
        };
        self.0.changed.notify_all();
        drop(leftovers);
    }
}

/// The I/O thread's body.
pub(crate) fn run(shared: Arc<Shared>, config: Config) {
    sys::block_sigpipe();
    let _guard = ExitGuard(Arc::clone(&shared));
    let mut io = Io {
        shared,
        config,
        workers: Vec::new(),
        restarts: Restarts::default(),
        seen_generation: 0,
        shutdown: false,
        queued: 0,
        broken: false,
        terminating: None,
        fingerprint: fingerprint(),
        fds: Vec::new(),
        owners: Vec::new(),
        next_worker_id: 0,
        published_pids: Vec::new(),
    };
    io.run();
}

impl Io {
    fn run(&mut self) {
        loop {
            self.take_requests();
            // Settle dead workers first: their unstarted calls go back to the queue, which the
            // steps below hand out (or start replacements for).
            self.reap();
            self.assign();
            self.spawn_needed();
            for worker in &mut self.workers {
                worker.flush();
            }
            self.close_finished_pipes();
            self.check_timers(Instant::now());
            // After every change of this iteration and before any answer of it can be read.
            self.publish_pids();
            if self.finished() {
                break;
            }
            self.wait_for_events();
        }
        let leftovers = {
            let mut state = self.shared.lock();
            state.io_done = true;
            state.pids.clear();
            std::mem::take(&mut state.queue)
        };
        self.shared.changed.notify_all();
        // Nothing should be left; if something is, its future resolves as abandoned.
        drop(leftovers);
    }

    fn finished(&self) -> bool {
        (self.shutdown || self.broken || self.terminating.is_some())
            && self.queued == 0
            && self.workers.is_empty()
    }

    /// Reads the flags and requests; acts on terminate and cancel requests.
    fn take_requests(&mut self) {
        let (terminate, cancels) = {
            let mut state = self.shared.lock();
            state.io_sleeping = false;
            self.seen_generation = state.generation;
            self.shutdown = state.shutdown;
            let terminate = match state.terminate {
                Some(signal) if self.terminating.is_none() => {
                    Some((signal, std::mem::take(&mut state.queue)))
                }
                _ => None,
            };
            self.queued = state.queue.len();
            (terminate, std::mem::take(&mut state.cancels))
        };
        if let Some((signal, queued)) = terminate {
            self.terminate(signal, queued);
        }
        if !cancels.is_empty() {
            let answers: Vec<(usize, bool)> = cancels
                .into_iter()
                .map(|key| (key, self.cancel(key)))
                .collect();
            self.shared.lock().cancel_answers.extend(answers);
            self.shared.changed.notify_all();
        }
    }

    fn terminate(&mut self, signal: i32, queued: VecDeque<Job>) {
        let failure = || Failure::from_error(Terminated { signal });
        self.terminating = Some(Terminating {
            signal,
            escalate_at: Instant::now() + self.config.terminate_grace,
            escalated: signal == libc::SIGKILL,
        });
        for job in queued {
            job.completion.fail(failure());
        }
        for worker in &mut self.workers {
            worker.signal(signal, Kill::Terminate(signal));
            for job in worker.in_flight.drain(..) {
                job.completion.fail(failure());
            }
            worker.unwritten = 0;
            worker.offset = 0;
        }
        {
            let mut state = self.shared.lock();
            state.terminated = true;
            state.shutdown = true;
        }
        self.shutdown = true;
        self.queued = 0;
        self.shared.changed.notify_all();
    }

    /// Kills the worker running the call of future `key`, or marks the call to be killed when
    /// it starts. Returns whether the call was found in flight.
    fn cancel(&mut self, key: usize) -> bool {
        for worker in &mut self.workers {
            let Some(at) = worker.in_flight.iter().position(|job| job.key == key) else {
                continue;
            };
            if at == 0 {
                let id = worker.in_flight[0].id;
                worker.signal(libc::SIGKILL, Kill::Cancel { id });
            } else {
                worker.in_flight[at].kill_on_start = true;
            }
            return true;
        }
        // A call whose waiting thread reads its answer: the kill ends that read (EOF), and the
        // call comes back here to fail as killed.
        if let Some(worker) = self
            .workers
            .iter_mut()
            .find(|w| w.loan.is_some_and(|(_, k)| k == key))
        {
            if let Some((id, _)) = worker.loan {
                worker.signal(libc::SIGKILL, Kill::Cancel { id });
            }
            return true;
        }
        false
    }

    /// Moves queued calls to workers with room.
    fn assign(&mut self) {
        if self.broken || self.terminating.is_some() {
            return;
        }
        if !self.workers.iter().any(|w| w.capacity(&self.config)) {
            return;
        }
        let now = Instant::now();
        let starting = self
            .workers
            .iter()
            .filter(|w| w.phase != Phase::Ready && w.alive())
            .count();
        let live = self
            .workers
            .iter()
            .filter(|w| w.alive() && !w.retiring)
            .count();
        let can_grow = live < self.config.max_workers;
        let mut state = self.shared.lock();
        while !state.queue.is_empty() {
            // The least loaded worker with room. A busy one gets more (prefetch) only when no
            // worker can be added and no starting one will want this call: a call queued behind
            // a long task waits for it, so a fresh worker is better.
            let Some(worker) = self
                .workers
                .iter_mut()
                .filter(|w| w.capacity(&self.config))
                .min_by_key(|w| w.in_flight.len())
            else {
                break;
            };
            if !worker.in_flight.is_empty() && (can_grow || state.queue.len() <= starting) {
                break;
            }
            let Some(mut job) = state.queue.pop_front() else {
                break;
            };
            // Claiming runs no user code (callbacks of a cancelled future ran at cancel).
            if !job.claim() {
                continue;
            }
            if worker.in_flight.is_empty() {
                worker.head_since = now;
            }
            worker.sent += 1;
            worker.in_flight.push_back(job);
        }
        self.queued = state.queue.len();
    }

    /// Starts workers while calls wait that no live worker will take soon.
    fn spawn_needed(&mut self) {
        if self.broken || self.terminating.is_some() || !self.restarts.may_spawn(Instant::now()) {
            return;
        }
        loop {
            let live = self
                .workers
                .iter()
                .filter(|w| w.alive() && !w.retiring)
                .count();
            let starting = self
                .workers
                .iter()
                .filter(|w| w.alive() && w.phase != Phase::Ready)
                .count();
            let idle = self
                .workers
                .iter()
                .filter(|w| w.capacity(&self.config) && w.in_flight.is_empty())
                .count();
            if self.queued <= starting + idle || live >= self.config.max_workers {
                return;
            }
            if !self.spawn_one() {
                return;
            }
        }
    }

    fn spawn_one(&mut self) -> bool {
        match spawn::spawn(&self.config.spawn) {
            Ok(spawned) => {
                let mut prefix = Vec::new();
                let init = self
                    .config
                    .initializer
                    .as_ref()
                    .map(|(name, signature, args)| (*name, *signature, args.as_slice()));
                frame::encode_init(&mut prefix, self.config.max_frame as u32, init);
                let now = Instant::now();
                self.next_worker_id += 1;
                self.workers.push(Worker {
                    id: self.next_worker_id,
                    pid: spawned.pid,
                    pidfd: sys::pidfd_open(spawned.pid),
                    calls: Some(spawned.calls),
                    _calls_reader: spawned.calls_reader,
                    results: Some(spawned.results),
                    rbuf: Vec::with_capacity(64 * 1024),
                    rpos: 0,
                    synced: !self.config.spawn.stdio,
                    phase: Phase::Hello,
                    prefix,
                    prefix_off: 0,
                    in_flight: VecDeque::new(),
                    unwritten: 0,
                    offset: 0,
                    head_since: now,
                    spawned_at: now,
                    sent: 0,
                    retiring: false,
                    eof: false,
                    exited: false,
                    kill: None,
                    killed_at: None,
                    loan: None,
                });
                true
            }
            Err(error) => {
                let permanent = matches!(
                    error.raw_os_error(),
                    Some(libc::ENOENT | libc::EACCES | libc::ENOEXEC | libc::ENOTDIR | libc::E2BIG)
                );
                let failure = Failure::from_error(SpawnFailed { error });
                if permanent {
                    self.break_pool(failure);
                } else {
                    self.startup_failure(failure, StartupDeath::ByItself);
                }
                false
            }
        }
    }

    /// Publishes the pids of the workers that take calls (`ProcessPool::worker_pids`) if they
    /// changed: not a worker that `max_tasks_per_child` retired, nor one being killed or dead,
    /// even though each is listed here until it is reaped.
    fn publish_pids(&mut self) {
        let config = &self.config;
        let current = self
            .workers
            .iter()
            .filter(|w| w.takes_calls(config))
            .map(Worker::pid);
        if current.clone().eq(self.published_pids.iter().copied()) {
            return;
        }
        self.published_pids = current.collect();
        self.shared.lock().pids.clone_from(&self.published_pids);
    }

    /// Closes the calls pipe of workers that will get nothing more, so they exit at EOF.
    fn close_finished_pipes(&mut self) {
        let draining = self.shutdown && self.queued == 0;
        for worker in &mut self.workers {
            if worker.calls.is_none() || worker.has_unwritten() {
                continue;
            }
            let spent = self
                .config
                .max_tasks_per_child
                .is_some_and(|max| worker.sent >= max);
            if spent {
                worker.retiring = true;
            }
            if worker.retiring || draining {
                worker.calls = None;
            }
        }
    }

    fn check_timers(&mut self, now: Instant) {
        if let Some(t) = &mut self.terminating {
            if !t.escalated && now >= t.escalate_at {
                t.escalated = true;
                for worker in &mut self.workers {
                    sys::kill_worker(worker.pid, libc::SIGKILL);
                }
            }
        }
        for worker in &mut self.workers {
            if worker.kill.is_some() || worker.exited {
                continue;
            }
            if worker.phase != Phase::Ready {
                if now.duration_since(worker.spawned_at) >= self.config.startup_timeout {
                    let failure = Failure::from_error(HandshakeError::NoGreeting(
                        self.config.startup_timeout,
                    ));
                    worker.signal(libc::SIGKILL, Kill::Startup(failure));
                }
                continue;
            }
            if let (Some(timeout), Some(head)) =
                (self.config.task_timeout, worker.in_flight.front())
            {
                let timeout = timeout.saturating_mul(head.items.max(1));
                if now.duration_since(worker.head_since) >= timeout {
                    let id = head.id;
                    worker.signal(libc::SIGKILL, Kill::Timeout { id, timeout });
                }
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |at: Instant| next = Some(next.map_or(at, |n| n.min(at)));
        if let Some(at) = self.restarts.waiting_until(Instant::now()) {
            consider(at);
        }
        if let Some(t) = &self.terminating {
            if !t.escalated {
                consider(t.escalate_at);
            }
        }
        for worker in &self.workers {
            if worker.kill.is_some() || worker.exited {
                continue;
            }
            if worker.phase != Phase::Ready {
                consider(worker.spawned_at + self.config.startup_timeout);
            } else if let (Some(timeout), Some(head)) =
                (self.config.task_timeout, worker.in_flight.front())
            {
                consider(worker.head_since + timeout.saturating_mul(head.items.max(1)));
            }
        }
        next
    }

    /// Sleeps in `poll` until something happens, then handles it.
    fn wait_for_events(&mut self) {
        let lent = self.lend();
        let mut fds = std::mem::take(&mut self.fds);
        let mut owners = std::mem::take(&mut self.owners);
        fds.clear();
        owners.clear();
        fds.push(pollfd(self.shared.wake.raw(), libc::POLLIN));
        owners.push((WAKE, 0u8));
        fds.push(pollfd(self.shared.express_timer.raw(), libc::POLLIN));
        owners.push((EXPRESS_TIMER, 0u8));
        for (i, worker) in self.workers.iter().enumerate() {
            if let Some(fd) = &worker.results {
                // A lent or loaned worker's answer is for the thread waiting on it to read
                // (`crate::drive`); `Driver::watch` and the express timer hand it back here
                // when no thread will.
                if worker.loan.is_none() && !lent.contains(&worker.id) {
                    fds.push(pollfd(fd.as_raw_fd(), libc::POLLIN));
                    owners.push((i, 0));
                }
            }
            if let Some(fd) = &worker.calls {
                if worker.has_unwritten() {
                    fds.push(pollfd(fd.as_raw_fd(), libc::POLLOUT));
                    owners.push((i, 1));
                }
            }
            if let Some(fd) = &worker.pidfd {
                if !worker.exited {
                    fds.push(pollfd(fd.as_raw_fd(), libc::POLLIN));
                    owners.push((i, 2));
                }
            }
        }
        let timeout = match (lent.is_none(), self.next_deadline()) {
            // A request arrived since the last look: no sleeping.
            (true, _) => 0,
            (false, None) => -1,
            (false, Some(at)) => {
                let left = at.saturating_duration_since(Instant::now());
                // Round up, so a deadline is never reported a millisecond early.
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
            }
        };
        let polled = sys::poll(&mut fds, timeout);
        self.reclaim();
        if polled.is_ok() {
            self.dispatch(&fds, &owners);
        }
        self.fds = fds;
        self.owners = owners;
    }

    /// Before `poll`: lends the idle workers to `submit` (while this thread sleeps, `submit` may
    /// write a call straight to one, and the thread waiting on it read the answer, saving two
    /// wake-ups of this thread). Returns the lent workers' ids, or `None` if a request arrived
    /// since the last look, so there is no sleeping.
    fn lend(&mut self) -> Lent {
        let mut state = self.shared.lock();
        if state.generation != self.seen_generation {
            return Lent(None);
        }
        state.io_sleeping = true;
        state.lending = true;
        let mut ids = Vec::new();
        if self.shared.express && state.queue.is_empty() {
            for worker in &self.workers {
                if worker.capacity(&self.config)
                    && worker.in_flight.is_empty()
                    && !worker.has_unwritten()
                    && worker.rpos == worker.rbuf.len()
                {
                    if let (Some(calls), Some(results)) = (&worker.calls, &worker.results) {
                        ids.push(worker.id);
                        state.express.push(Express {
                            worker: worker.id,
                            fd: calls.as_raw_fd(),
                            results: results.as_raw_fd(),
                            pidfd: worker.pidfd.as_ref().map(AsRawFd::as_raw_fd),
                            left: self
                                .config
                                .max_tasks_per_child
                                .map(|max| max.saturating_sub(worker.sent)),
                            used: 0,
                        });
                    }
                }
            }
        }
        Lent(Some(ids))
    }

    /// Takes back the workers lent to `submit` (recording the calls it sent them) and the ones
    /// drivers gave back; notes which ones are still on loan to a driver.
    fn reclaim(&mut self) {
        let (express, expressed, returned, loans) = {
            let mut state = self.shared.lock();
            state.lending = false;
            state.express_timer_armed = false;
            let loans: Vec<(u64, u64, usize)> = state
                .driving
                .iter()
                .map(|l| (l.worker, l.id, l.key))
                .collect();
            (
                std::mem::take(&mut state.express),
                std::mem::take(&mut state.expressed),
                std::mem::take(&mut state.returned),
                loans,
            )
        };
        for worker in &mut self.workers {
            worker.loan = loans
                .iter()
                .find(|(w, _, _)| *w == worker.id)
                .map(|&(_, id, key)| (id, key));
        }
        let now = Instant::now();
        for lent in express {
            if let Some(w) = self.workers.iter_mut().find(|w| w.id == lent.worker) {
                w.sent += lent.used;
            }
        }
        for Expressed { lent, job, written } in expressed {
            let Some(w) = self.workers.iter_mut().find(|w| w.id == lent.worker) else {
                // Cannot happen (a lent worker stays in `workers` until it is back); resolve
                // the future rather than lose it.
                job.completion.fail(Failure::abandoned());
                continue;
            };
            debug_assert!(w.in_flight.is_empty() && w.unwritten == 0 && w.offset == 0);
            w.head_since = now;
            w.sent += lent.used + 1;
            if written == job.frame.len() {
                w.unwritten = 1;
            } else {
                w.offset = written;
            }
            w.in_flight.push_back(job);
        }
        for returned in returned {
            self.adopt_returned(returned, now);
        }
    }

    /// Takes a worker back from a driver, with its call if the driver did not complete it and
    /// the bytes it read but did not consume; handles those bytes at once.
    fn adopt_returned(&mut self, returned: Returned, now: Instant) {
        let Returned {
            worker,
            job,
            bytes,
            used,
        } = returned;
        let Some(i) = self.workers.iter().position(|w| w.id == worker) else {
            if let Some(job) = job {
                job.completion.fail(Failure::abandoned());
            }
            return;
        };
        let w = &mut self.workers[i];
        w.sent += used;
        if let Some(job) = job {
            debug_assert!(w.in_flight.is_empty());
            w.head_since = now;
            w.sent += 1;
            w.unwritten = 1;
            w.offset = 0;
            w.in_flight.push_back(job);
        }
        if !bytes.is_empty() {
            w.rbuf.drain(..w.rpos);
            w.rpos = 0;
            w.rbuf.splice(0..0, bytes);
            self.read_worker(i);
        }
    }

    /// Handles the events `poll` reported.
    fn dispatch(&mut self, fds: &[libc::pollfd], owners: &[(usize, u8)]) {
        for (fd, &(i, what)) in fds.iter().zip(owners) {
            if fd.revents == 0 {
                continue;
            }
            if i == WAKE {
                self.shared.wake.drain();
                continue;
            }
            if i == EXPRESS_TIMER {
                // Its work (adopting expressed calls nobody reads) was done by `reclaim`.
                self.shared.express_timer.drain();
                continue;
            }
            match what {
                0 => self.read_worker(i),
                1 => self.workers[i].flush(),
                _ => self.workers[i].exited = true,
            }
        }
    }

    /// Reads and handles the frames a worker sent.
    fn read_worker(&mut self, i: usize) {
        let limit = self.config.max_frame;
        self.workers[i].read_available(limit);
        let events = self.process_frames(i);
        for event in events {
            match event {
                Event::Ready => self.restarts.ready(),
                Event::Broken(failure) => self.break_pool(failure),
            }
        }
    }

    /// Handles every complete frame in worker `i`'s buffer.
    fn process_frames(&mut self, i: usize) -> Vec<Event> {
        let limit = self.config.max_frame;
        let init_name = self.config.initializer.as_ref().map_or("", |(n, _, _)| *n);
        let fingerprint = self.fingerprint;
        let worker = &mut self.workers[i];
        let mut events = Vec::new();
        if !worker.synced {
            let noise = &worker.rbuf[worker.rpos..];
            match noise.windows(SYNC.len()).position(|w| w == SYNC) {
                Some(at) => {
                    worker.rpos += at + SYNC.len();
                    worker.synced = true;
                }
                None if noise.len() > NOISE_LIMIT => {
                    events.push(Event::Broken(Failure::from_error(
                        HandshakeError::Malformed(FrameError::Malformed(
                            "no greeting in the launcher's first 64 KiB",
                        )),
                    )));
                    worker.rpos = worker.rbuf.len();
                    return events;
                }
                None => return events,
            }
        }
        while worker.rpos < worker.rbuf.len() {
            if matches!(worker.kill, Some(Kill::Protocol(_))) {
                worker.rpos = worker.rbuf.len();
                break;
            }
            let bytes = &worker.rbuf[worker.rpos..];
            let (decoded, used) = match frame::decode_frame_with_limit(bytes, limit) {
                Ok(ok) => ok,
                Err(FrameError::Incomplete { .. }) => break,
                Err(error) => {
                    if worker.phase == Phase::Hello {
                        let handshake = match error {
                            FrameError::Version { found } => HandshakeError::Version {
                                expected: PROTOCOL_VERSION,
                                found,
                            },
                            other => HandshakeError::Malformed(other),
                        };
                        events.push(Event::Broken(Failure::from_error(handshake)));
                    } else {
                        worker.signal(libc::SIGKILL, Kill::Protocol(error));
                    }
                    worker.rpos = worker.rbuf.len();
                    break;
                }
            };
            match (worker.phase, decoded) {
                (
                    Phase::Hello,
                    Frame::Hello {
                        fingerprint: found, ..
                    },
                ) => {
                    if found != fingerprint {
                        events.push(Event::Broken(Failure::from_error(
                            HandshakeError::Fingerprint {
                                expected: fingerprint,
                                found,
                            },
                        )));
                    }
                    worker.phase = Phase::Init;
                }
                (Phase::Init, Frame::Ready) => {
                    worker.phase = Phase::Ready;
                    worker.head_since = Instant::now();
                    events.push(Event::Ready);
                }
                (Phase::Init, Frame::InitFailed(wire)) => {
                    let message = wire_failure(wire, init_name).to_string();
                    events.push(Event::Broken(Failure::from_error(InitializerFailed {
                        message,
                    })));
                }
                (Phase::Ready, Frame::Result { id, outcomes }) => {
                    if worker.in_flight.front().is_none_or(|job| job.id != id)
                        || worker.unwritten == 0
                    {
                        worker.signal(
                            libc::SIGKILL,
                            Kill::Protocol(FrameError::Malformed("result for a call not running")),
                        );
                        worker.rpos = worker.rbuf.len();
                        break;
                    }
                    let Some(job) = worker.in_flight.pop_front() else {
                        break;
                    };
                    worker.unwritten -= 1;
                    let (count, raw) = outcomes.raw();
                    job.completion
                        .complete(job.name, Ok(Outcomes::from_raw(count, raw)));
                    worker.head_since = Instant::now();
                    if let Some(next) = worker.in_flight.front() {
                        if next.kill_on_start {
                            let id = next.id;
                            worker.signal(libc::SIGKILL, Kill::Cancel { id });
                        }
                    }
                }
                (phase, other) => {
                    let error = FrameError::Malformed(match other {
                        Frame::Hello { .. } => "unexpected HELLO",
                        Frame::Ready => "unexpected READY",
                        Frame::InitFailed(_) => "unexpected INIT_FAILED",
                        Frame::Result { .. } => "RESULT before READY",
                        _ => "a worker may not send this kind",
                    });
                    if phase == Phase::Hello {
                        events.push(Event::Broken(Failure::from_error(
                            HandshakeError::Malformed(error),
                        )));
                    } else {
                        worker.signal(libc::SIGKILL, Kill::Protocol(error));
                    }
                    worker.rpos = worker.rbuf.len();
                    break;
                }
            }
            worker.rpos += used;
        }
        if worker.rpos > 0 && worker.rpos < worker.rbuf.len() {
            worker.rbuf.drain(..worker.rpos);
            worker.rpos = 0;
        }
        events
    }

    /// Collects the status of workers that died and settles their calls.
    fn reap(&mut self) {
        let mut i = 0;
        while i < self.workers.len() {
            let worker = &mut self.workers[i];
            if !(worker.eof || worker.exited) || worker.loan.is_some() {
                i += 1;
                continue;
            }
            let must_die = !worker.in_flight.is_empty() || worker.phase != Phase::Ready;
            let status = match sys::wait_pid(worker.pid, false) {
                Some(status) => status,
                None if worker.pidfd.is_some() => {
                    // EOF came first: the worker is exiting, or it closed its results pipe and
                    // lives on. One that still owes answers is killed; either way its pidfd
                    // reports the end.
                    if must_die && worker.killed_at.is_none() {
                        worker.killed_at = Some(Instant::now());
                        sys::kill_worker(worker.pid, libc::SIGKILL);
                    }
                    i += 1;
                    continue;
                }
                None => {
                    // No pidfd on this kernel: EOF is all there is, so wait for the exit.
                    if must_die {
                        sys::kill_worker(worker.pid, libc::SIGKILL);
                    }
                    sys::wait_pid(worker.pid, true).unwrap_or(ExitStatus::Unknown)
                }
            };
            // Answers written before the end are still in the pipe.
            if !worker.eof {
                worker.read_available(self.config.max_frame);
            }
            for event in self.process_frames(i) {
                match event {
                    Event::Ready => self.restarts.ready(),
                    Event::Broken(failure) => self.break_pool(failure),
                }
            }
            let worker = self.workers.remove(i);
            self.settle(worker, status);
        }
    }

    /// Fails the call a dead worker was running and requeues the ones it never started.
    fn settle(&mut self, mut worker: Worker, status: ExitStatus) {
        let pid = worker.pid();
        let stopping = self.broken || self.terminating.is_some();
        if worker.phase != Phase::Ready && !stopping {
            // Not the SIGKILL `reap` sends a worker whose pipe hit EOF: EOF without a signal
            // from the pool means the worker is already exiting, and a signal no longer changes
            // an exiting process's status, so the status still tells why it died.
            let signalled_by_pool = worker.kill.is_some();
            let death = StartupDeath::of(status, signalled_by_pool);
            let cause = match worker.kill.take() {
                Some(Kill::Startup(failure)) => failure,
                _ => Failure::from_error(HandshakeError::Exited(status)),
            };
            self.startup_failure(cause, death);
        }
        let Some(head) = worker.in_flight.pop_front() else {
            return;
        };
        let failure = match &worker.kill {
            Some(Kill::Timeout { id, timeout }) if *id == head.id => {
                Failure::from_error(TaskTimedOut {
                    timeout: *timeout,
                    pid,
                })
            }
            Some(Kill::Cancel { id }) if *id == head.id => Failure::from_error(TaskKilled { pid }),
            Some(Kill::Protocol(error)) => Failure::from_error(ProtocolError {
                pid,
                error: error.clone(),
            }),
            Some(Kill::Terminate(signal)) => Failure::from_error(Terminated { signal: *signal }),
            _ => Failure::from_error(WorkerDied { pid, status }),
        };
        head.completion.fail(failure);
        let mut requeue = Vec::new();
        for job in worker.in_flight.drain(..) {
            if job.kill_on_start {
                job.completion.fail(Failure::from_error(TaskKilled { pid }));
            } else {
                requeue.push(job);
            }
        }
        if requeue.is_empty() {
            return;
        }
        if stopping {
            let failure = self.stop_failure();
            for job in requeue {
                job.completion.fail(failure.clone());
            }
            return;
        }
        let mut state = self.shared.lock();
        for job in requeue.into_iter().rev() {
            state.queue.push_front(job);
        }
        self.queued = state.queue.len();
    }

    fn stop_failure(&self) -> Failure {
        if let Some(t) = &self.terminating {
            return Failure::from_error(Terminated { signal: t.signal });
        }
        self.shared
            .lock()
            .broken
            .clone()
            .unwrap_or_else(Failure::abandoned)
    }

    /// A worker failed to start: its replacement waits out the back-off, and failures that
    /// repeat by themselves break the pool (`crate::restart`).
    fn startup_failure(&mut self, cause: Failure, death: StartupDeath) {
        if self.restarts.failed(death, Instant::now()) {
            self.break_pool(cause);
        }
    }

    /// Breaks the pool: every pending call fails, every later submission is refused, every
    /// worker is killed.
    fn break_pool(&mut self, cause: Failure) {
        if self.broken {
            return;
        }
        self.broken = true;
        let broken = Failure::from_error(BrokenProcessPool { cause });
        let queued = {
            let mut state = self.shared.lock();
            state.broken = Some(broken.clone());
            std::mem::take(&mut state.queue)
        };
        self.queued = 0;
        for job in queued {
            job.completion.fail(broken.clone());
        }
        for worker in &mut self.workers {
            for job in worker.in_flight.drain(..) {
                job.completion.fail(broken.clone());
            }
            worker.unwritten = 0;
            worker.offset = 0;
            worker.signal(libc::SIGKILL, Kill::Broken);
        }
        self.shared.changed.notify_all();
    }
}

fn pollfd(fd: i32, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}
