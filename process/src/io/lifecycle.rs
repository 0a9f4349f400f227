//! A worker's lifecycle as the I/O thread sees it: spawned, greeted (HELLO), ready, then
//! killed or dead; reaped with `waitpid`, its running call failed and its unstarted calls
//! requeued. Start-up deaths feed `crate::restart`; repeated ones break the pool.

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use concur_core::Failure;

use crate::error::{
    BrokenProcessPool, DeathCause, ExitStatus, HandshakeError, ProtocolError, SpawnFailed,
    TaskKilled, TaskTimedOut, Terminated, WorkerDied,
};
use crate::frame::{self, FrameError};
use crate::job::Job;
use crate::launcher::KillPolicy;
use crate::restart::StartupDeath;
use crate::results_line::{Marker, ResultsLine};
use crate::shared::Config;
use crate::spawn;
use crate::sys;

use super::Io;
use super::frames::Event;
use super::link::Escalation;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Phase {
    /// Spawned; waiting for HELLO.
    Hello,
    /// Greeted; waiting for READY (the initializer runs).
    Init,
    /// Takes calls.
    Ready,
}

/// Why the pool killed a worker, which decides the error of the call it was running.
pub(super) enum Kill {
    Timeout {
        id: u64,
        timeout: Duration,
    },
    Cancel {
        id: u64,
    },
    Protocol(FrameError),
    Startup(Failure),
    Terminate(i32),
    Broken,
    /// Nothing came from it for this long, past twice its heartbeat interval.
    Silent {
        silent: Duration,
    },
}

pub(super) struct Worker {
    /// Unique within the pool (pids can be reused once reaped).
    pub(super) id: u64,
    pub(super) pid: libc::pid_t,
    pub(super) pidfd: Option<OwnedFd>,
    pub(super) calls: Option<OwnedFd>,
    /// The pool's own, never read, read end of the calls pipe (`spawn::Spawned::calls_reader`);
    /// after a death, what is left unread in the pipe tells which calls never started.
    pub(super) calls_reader: OwnedFd,
    /// The read end of the worker's lifeline (`spawn::Spawned::lifeline`): never read, closed
    /// when this record is dropped, after the worker's death.
    pub(super) _lifeline: Option<OwnedFd>,
    pub(super) results: Option<OwnedFd>,
    /// The blocking read end lent with the worker (`crate::results_line`), once opened, and
    /// whether opening it was tried (it is not tried again).
    pub(super) line: Option<Arc<ResultsLine>>,
    pub(super) line_tried: bool,
    /// The marker written to wake the reader on loan, while it is still to be cut from the
    /// stream.
    pub(super) marker: Option<Marker>,
    pub(super) rbuf: Vec<u8>,
    pub(super) rpos: usize,
    /// The CPU the worker answered its last call on (`crate::pipe_spin`), if known; handed to
    /// whoever it is lent to.
    pub(super) cpu: Option<u32>,
    /// Whether the bytes before the worker's first frame were skipped (launcher mode only).
    pub(super) synced: bool,
    /// Its pipes are the worker's own (spawned), not a launcher's relay: everything it wrote
    /// before dying is still in the results pipe, so a death without READY there proves it
    /// started no call (see `capacity`).
    pub(super) direct: bool,
    pub(super) phase: Phase,
    /// The INIT frame and how much of it was written.
    pub(super) prefix: Vec<u8>,
    pub(super) prefix_off: usize,
    pub(super) in_flight: VecDeque<Job>,
    /// Index of the first call in `in_flight` not completely written, and the bytes of it
    /// written.
    pub(super) unwritten: usize,
    pub(super) offset: usize,
    /// When the head call started (the previous answer arrived, or it was sent to an idle
    /// worker).
    pub(super) head_since: Instant,
    pub(super) spawned_at: Instant,
    pub(super) sent: u64,
    pub(super) retiring: bool,
    pub(super) eof: bool,
    pub(super) exited: bool,
    pub(super) kill: Option<Kill>,
    pub(super) killed_at: Option<Instant>,
    /// Lent to a thread reading its answer (`crate::drive`): the id and future key of that
    /// call. This thread neither reads nor reaps the worker until it is given back.
    pub(super) loan: Option<(u64, usize)>,
    /// Its launcher group and host slot (`Config::groups`), and that host's name.
    pub(super) group: usize,
    pub(super) slot: usize,
    pub(super) host: Arc<str>,
    pub(super) kill_policy: KillPolicy,
    pub(super) escalation: Escalation,
    /// The heartbeat interval (`crate::io::liveness`), when last heard from, and when the
    /// pool's next heartbeat to it is due.
    pub(super) heartbeat: Option<Duration>,
    pub(super) last_heard: Instant,
    pub(super) next_beat: Instant,
    /// Heartbeat bytes written to the calls pipe, ever and when the worker last went from idle
    /// to busy (`Io::never_started`).
    pub(super) beat_bytes: u64,
    pub(super) beats_at_busy: u64,
    /// How long a launcher sent `SIGTERM` has before `SIGKILL` (`terminate_grace`).
    pub(super) kill_grace: Duration,
}

impl Worker {
    pub(super) fn pid(&self) -> u32 {
        self.pid as u32
    }

    pub(super) fn alive(&self) -> bool {
        self.kill.is_none() && !self.eof && !self.exited
    }

    pub(super) fn has_unwritten(&self) -> bool {
        self.prefix_off < self.prefix.len() || self.unwritten < self.in_flight.len()
    }

    /// Takes calls, now or once started: alive, and neither retired nor spent.
    pub(super) fn takes_calls(&self, config: &Config) -> bool {
        self.alive()
            && !self.retiring
            && config.max_tasks_per_child.is_none_or(|max| self.sent < max)
    }

    /// Can take another call now. A starting spawned worker takes one, written after its INIT:
    /// it finds the call waiting once it is ready, which saves a wake-up of each side on the
    /// way to the first result. It runs nothing before READY, so if it dies with no READY in
    /// its pipe, `settle` requeues that call. Not so through a launcher, which may die holding
    /// the READY of a worker that already ran the call (requeued, it would run twice), and
    /// whose stalls heartbeats watch only once the pool has seen READY.
    pub(super) fn capacity(&self, config: &Config) -> bool {
        let room = match self.phase {
            Phase::Ready => self.in_flight.len() < config.depth,
            Phase::Hello | Phase::Init => self.direct && self.in_flight.is_empty(),
        };
        room && self.takes_calls(config) && self.loan.is_none() && self.calls.is_some()
    }

    /// Wakes the thread reading this dead worker's answer, once (`crate::results_line`): the
    /// loan ends when it gives the worker back.
    fn wake_reader(&mut self, marker: Marker) {
        if let (Some(line), Some(results)) = (&self.line, &self.results) {
            if !line.is_dead() && line.wake_reader(results.as_fd(), &marker) {
                self.marker = Some(marker);
            }
        }
    }

    pub(super) fn signal(&mut self, signal: i32, reason: Kill) {
        if self.kill.is_none() {
            self.kill = Some(reason);
            self.killed_at = Some(Instant::now());
        }
        self.send_kill(signal);
        // Nothing more goes to a worker being killed.
        self.calls = None;
    }
}

impl Io {
    /// Starts workers while calls wait that no live worker will take soon; returns whether it
    /// started any.
    pub(super) fn spawn_needed(&mut self) -> bool {
        if self.broken || self.terminating.is_some() || !self.restarts.may_spawn(Instant::now()) {
            return false;
        }
        let mut spawned = false;
        loop {
            let live = self
                .workers
                .iter()
                .filter(|w| w.alive() && !w.retiring)
                .count();
            // Each worker without a call, starting (even one that is sent none before READY)
            // or with room, takes one soon.
            let free = self
                .workers
                .iter()
                .filter(|w| w.in_flight.is_empty())
                .filter(|w| (w.alive() && w.phase != Phase::Ready) || w.capacity(&self.config))
                .count();
            if self.queued <= free || live >= self.config.max_workers || !self.spawn_one() {
                return spawned;
            }
            spawned = true;
        }
    }

    /// The group and host the next worker starts on: the first group with room, on its host
    /// with the fewest workers whose ssh master (if any) is up. `None` if there is none.
    fn pick_slot(&mut self) -> Option<(usize, usize)> {
        let live = |workers: &[Worker], g: usize, s: Option<usize>| {
            workers
                .iter()
                .filter(|w| w.alive() && !w.retiring && w.group == g)
                .filter(|w| s.is_none_or(|s| w.slot == s))
                .count()
        };
        for g in 0..self.config.groups.len() {
            if live(&self.workers, g, None) >= self.config.groups[g].max {
                continue;
            }
            let mut slots: Vec<usize> = (0..self.config.groups[g].slots.len()).collect();
            slots.sort_by_key(|&s| live(&self.workers, g, Some(s)));
            if let Some(s) = slots.into_iter().find(|&s| self.master_ready(g, s)) {
                return Some((g, s));
            }
        }
        None
    }

    pub(super) fn spawn_one(&mut self) -> bool {
        let Some((group, slot)) = self.pick_slot() else {
            return false;
        };
        let target = &self.config.groups[group].slots[slot];
        match spawn::spawn(&target.spawn) {
            Ok(spawned) => {
                let mut prefix = Vec::new();
                let init = self
                    .config
                    .initializer
                    .as_ref()
                    .map(|(name, signature, args)| (*name, *signature, args.as_slice()));
                frame::encode_init(&mut prefix, self.config.max_frame as u32, init);
                if let Some(interval) = target.heartbeat {
                    // Tells the worker the interval: it starts its own heartbeats.
                    frame::encode_heartbeat(&mut prefix, interval.as_millis() as u32);
                }
                let now = Instant::now();
                self.next_worker_id += 1;
                self.workers.push(Worker {
                    id: self.next_worker_id,
                    pid: spawned.pid,
                    pidfd: sys::pidfd_open(spawned.pid),
                    calls: Some(spawned.calls),
                    calls_reader: spawned.calls_reader,
                    _lifeline: spawned.lifeline,
                    results: Some(spawned.results),
                    line: None,
                    line_tried: false,
                    marker: None,
                    rbuf: Vec::with_capacity(64 * 1024),
                    rpos: 0,
                    cpu: None,
                    synced: !target.spawn.stdio,
                    direct: !target.spawn.stdio,
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
                    group,
                    slot,
                    host: Arc::clone(&target.host),
                    kill_policy: target.kill,
                    escalation: Escalation::None,
                    kill_grace: self.config.terminate_grace,
                    heartbeat: target.heartbeat,
                    last_heard: now,
                    next_beat: now,
                    beat_bytes: 0,
                    beats_at_busy: 0,
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

    /// Collects the status of workers that died and settles their calls.
    pub(super) fn reap(&mut self) {
        let mut i = 0;
        while i < self.workers.len() {
            let worker = &mut self.workers[i];
            if worker.exited && worker.loan.is_some() {
                worker.wake_reader(self.marker);
            }
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
                        worker.send_kill(libc::SIGKILL);
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
    pub(super) fn settle(&mut self, mut worker: Worker, status: ExitStatus) {
        let pid = worker.pid();
        let stopping = self.broken || self.terminating.is_some();
        if worker.phase != Phase::Ready && !stopping {
            self.settle_unready(worker, status);
            return;
        }
        if !stopping && Self::never_started(&worker) {
            // Not even the head was read: every call goes to a replacement, none ran.
            let mut state = self.shared.lock();
            for job in worker.in_flight.drain(..).rev() {
                state.queue.push_front(job);
            }
            self.queued = state.queue.len();
            return;
        }
        let Some(head) = worker.in_flight.pop_front() else {
            return;
        };
        let died = |cause| WorkerDied {
            pid,
            status,
            host: worker.host.to_string(),
            cause,
        };
        let failure = match &worker.kill {
            Some(Kill::Timeout { id, timeout }) if *id == head.id => {
                Err(Failure::from_error(TaskTimedOut {
                    timeout: *timeout,
                    pid,
                }))
            }
            Some(Kill::Cancel { id }) if *id == head.id => {
                Err(Failure::from_error(TaskKilled { pid }))
            }
            Some(Kill::Protocol(error)) => Err(Failure::from_error(ProtocolError {
                pid,
                error: error.clone(),
            })),
            Some(Kill::Terminate(signal)) => {
                Err(Failure::from_error(Terminated { signal: *signal }))
            }
            Some(Kill::Silent { silent }) => {
                Ok(died(DeathCause::HeartbeatLost { silent: *silent }))
            }
            _ => Ok(died(DeathCause::Ended)),
        };
        let mut requeue = Vec::new();
        match failure {
            Err(failure) => {
                self.attempts.remove(&head.id);
                head.completion.fail(failure);
            }
            Ok(died) => requeue.extend(self.retry_or_fail(head, died, stopping)),
        }
        for job in worker.in_flight.drain(..) {
            if job.kill_on_start {
                job.completion.fail(Failure::from_error(TaskKilled { pid }));
            } else {
                requeue.push(job);
            }
        }
        self.requeue_at_head(requeue);
    }

    /// Puts calls back at the head of the queue, in their order (ones that never ran, and
    /// retries); while the pool stops, fails them as it does every pending call.
    fn requeue_at_head(&mut self, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        if self.broken || self.terminating.is_some() {
            let failure = self.stop_failure();
            for job in jobs {
                job.completion.fail(failure.clone());
            }
            return;
        }
        let mut state = self.shared.lock();
        for job in jobs.into_iter().rev() {
            state.queue.push_front(job);
        }
        self.queued = state.queue.len();
    }

    /// Settles a worker that died before READY: a start-up failure, unless the pool killed it
    /// to cancel the call sent with its INIT. It wrote no READY (all it wrote was read before
    /// this), so it ran none of its calls: a cancelled one fails as killed, the others go to a
    /// replacement (or fail with the pool, if this failure broke it).
    fn settle_unready(&mut self, mut worker: Worker, status: ExitStatus) {
        let cancelled = match worker.kill {
            Some(Kill::Cancel { id }) => Some(id),
            _ => None,
        };
        if cancelled.is_none() {
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
        let pid = worker.pid();
        let (killed, unrun): (Vec<_>, Vec<_>) = worker
            .in_flight
            .drain(..)
            .partition(|job| Some(job.id) == cancelled || job.kill_on_start);
        for job in killed {
            job.completion.fail(Failure::from_error(TaskKilled { pid }));
        }
        self.requeue_at_head(unrun);
    }

    /// Whether the dead worker provably never read its head call: the bytes left unread in its
    /// calls pipe cover everything written since the head's first byte. That is overcounted
    /// (every heartbeat since the worker last became busy), so the answer errs towards "it may
    /// have started", never the other way. Only for deaths the pool did not cause for the head
    /// (a timeout or cancel of it means it ran).
    fn never_started(worker: &Worker) -> bool {
        if worker.in_flight.is_empty() || !matches!(worker.kill, None | Some(Kill::Silent { .. })) {
            return false;
        }
        let Some(unread) = sys::unread_bytes(worker.calls_reader.as_raw_fd()) else {
            return false;
        };
        let calls: usize = worker
            .in_flight
            .iter()
            .take(worker.unwritten)
            .map(|job| job.frame.len())
            .sum::<usize>()
            + worker.offset;
        let since_head = calls as u64 + (worker.beat_bytes - worker.beats_at_busy);
        unread as u64 >= since_head
    }

    pub(super) fn stop_failure(&self) -> Failure {
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
    pub(super) fn startup_failure(&mut self, cause: Failure, death: StartupDeath) {
        if self.restarts.failed(death, Instant::now()) {
            self.break_pool(cause);
        }
    }

    /// Breaks the pool: every pending call fails, every later submission is refused, every
    /// worker is killed.
    pub(super) fn break_pool(&mut self, cause: Failure) {
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
