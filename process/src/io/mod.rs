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

mod dispatch;
mod frames;
mod lifecycle;
mod link;
mod liveness;
mod master;
mod retry;

use std::collections::{HashMap, VecDeque};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use concur_core::Failure;

use crate::error::{BrokenProcessPool, HandshakeError, Terminated, WorkerDied};
use crate::job::Job;
use crate::restart::Restarts;
use crate::results_line::Marker;
use crate::shared::{Config, Shared};
use crate::sys;
use crate::worker::fingerprint;

use frames::Event;
use lifecycle::{Kill, Phase, Worker};
use link::Escalation;
use master::HostMaster;

/// `poll` owner tags of the eventfd and the express timer (worker indices otherwise).
const WAKE: usize = usize::MAX;
const EXPRESS_TIMER: usize = usize::MAX - 1;
/// ... and of the pidfd of an ssh master coming up (`master`).
const MASTER: usize = usize::MAX - 2;

struct Terminating {
    signal: i32,
    escalate_at: Instant,
    escalated: bool,
}

struct Io {
    pub(super) shared: Arc<Shared>,
    pub(super) config: Config,
    pub(super) workers: Vec<Worker>,
    pub(super) restarts: Restarts,
    pub(super) seen_generation: u64,
    pub(super) shutdown: bool,
    pub(super) queued: usize,
    pub(super) broken: bool,
    pub(super) terminating: Option<Terminating>,
    pub(super) fingerprint: u64,
    /// `poll` arguments, reused across iterations: the descriptors and, for each, the worker
    /// index (`usize::MAX` for the eventfd) and what it is (0 results, 1 calls, 2 pidfd).
    pub(super) fds: Vec<libc::pollfd>,
    pub(super) owners: Vec<(usize, u8)>,
    pub(super) next_worker_id: u64,
    /// What `State::pids` holds.
    published_pids: Vec<u32>,
    /// The ssh connection masters this pool started.
    pub(super) masters: Vec<HostMaster>,
    /// The failed attempts of calls being retried, by call id (`retry`).
    pub(super) attempts: HashMap<u64, Vec<WorkerDied>>,
    /// What wakes a reader blocked on a dead worker's pipe (`crate::results_line`).
    pub(super) marker: Marker,
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
        masters: Vec::new(),
        attempts: HashMap::new(),
        marker: Marker::random(),
    };
    io.run();
}

impl Io {
    pub(super) fn run(&mut self) {
        loop {
            self.take_requests();
            // Settle dead workers first: their unstarted calls go back to the queue, which the
            // steps below hand out (or start replacements for).
            self.reap();
            self.assign();
            self.check_masters(Instant::now());
            if self.spawn_needed() {
                // Their first calls go with their INIT (`Worker::capacity`).
                self.assign();
            }
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
        self.close_masters();
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

    pub(super) fn finished(&self) -> bool {
        (self.shutdown || self.broken || self.terminating.is_some())
            && self.queued == 0
            && self.workers.is_empty()
    }

    /// Reads the flags and requests; acts on terminate and cancel requests.
    pub(super) fn take_requests(&mut self) {
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

    pub(super) fn terminate(&mut self, signal: i32, queued: VecDeque<Job>) {
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

    /// Publishes the pids of the workers that take calls (`ProcessPool::worker_pids`) if they
    /// changed: not a worker that `max_tasks_per_child` retired, nor one being killed or dead,
    /// even though each is listed here until it is reaped.
    pub(super) fn publish_pids(&mut self) {
        let config = &self.config;
        let current = self
            .workers
            .iter()
            .filter(|w| w.takes_calls(config))
            .map(|w| (w.pid(), &w.host));
        if current
            .clone()
            .map(|(pid, _)| pid)
            .eq(self.published_pids.iter().copied())
        {
            return;
        }
        let hosts: Vec<Arc<str>> = current.clone().map(|(_, host)| Arc::clone(host)).collect();
        self.published_pids = current.map(|(pid, _)| pid).collect();
        let mut state = self.shared.lock();
        state.pids.clone_from(&self.published_pids);
        state.hosts = hosts;
    }

    pub(super) fn check_timers(&mut self, now: Instant) {
        self.check_heartbeats(now);
        if let Some(t) = &mut self.terminating {
            if !t.escalated && now >= t.escalate_at {
                t.escalated = true;
                for worker in &mut self.workers {
                    sys::kill_worker(worker.pid, libc::SIGKILL);
                }
            }
        }
        for worker in &mut self.workers {
            worker.escalate(now);
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

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |at: Instant| next = Some(next.map_or(at, |n| n.min(at)));
        if let Some(at) = self.restarts.waiting_until(Instant::now()) {
            consider(at);
        }
        if let (_, Some(at)) = self.starting_masters() {
            consider(at);
        }
        if let Some(at) = self.next_heartbeat() {
            consider(at);
        }
        if let Some(t) = &self.terminating {
            if !t.escalated {
                consider(t.escalate_at);
            }
        }
        for worker in &self.workers {
            if let (Escalation::Due(at), false) = (worker.escalation, worker.exited) {
                consider(at);
            }
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
    pub(super) fn wait_for_events(&mut self) {
        let lent = self.lend();
        let mut fds = std::mem::take(&mut self.fds);
        let mut owners = std::mem::take(&mut self.owners);
        fds.clear();
        owners.clear();
        fds.push(pollfd(self.shared.wake.raw(), libc::POLLIN));
        owners.push((WAKE, 0u8));
        fds.push(pollfd(self.shared.express_timer.raw(), libc::POLLIN));
        owners.push((EXPRESS_TIMER, 0u8));
        let (masters, _) = self.starting_masters();
        for fd in masters {
            fds.push(pollfd(fd, libc::POLLIN));
            owners.push((MASTER, 0u8));
        }
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

    /// Handles the events `poll` reported.
    pub(super) fn dispatch(&mut self, fds: &[libc::pollfd], owners: &[(usize, u8)]) {
        for (fd, &(i, what)) in fds.iter().zip(owners) {
            if fd.revents == 0 {
                continue;
            }
            if i == WAKE {
                self.shared.wake.drain();
                continue;
            }
            if i == MASTER {
                // `check_masters` notes it on the next turn.
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
    pub(super) fn read_worker(&mut self, i: usize) {
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
}

fn pollfd(fd: i32, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}
