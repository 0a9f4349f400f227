//! Handing calls to workers: the queue to the least loaded worker with room, cancels of
//! running calls, and lending idle workers to the express path while the I/O thread sleeps
//! (`crate::drive`).

use std::os::fd::{AsFd, AsRawFd};
use std::time::Instant;

use concur_core::Failure;

use crate::results_line::ResultsLine;
use crate::shared::{Express, Expressed, Returned};

use super::Io;
use super::lifecycle::{Kill, Phase};

/// The workers lent before a sleep, or `None` when there is no sleeping.
pub(super) struct Lent(Option<Vec<u64>>);

impl Lent {
    pub(super) fn is_none(&self) -> bool {
        self.0.is_none()
    }

    pub(super) fn contains(&self, worker: &u64) -> bool {
        self.0.as_ref().is_some_and(|ids| ids.contains(worker))
    }
}

impl Io {
    /// Kills the worker running the call of future `key`, or marks the call to be killed when
    /// it starts. Returns whether the call was found in flight.
    pub(super) fn cancel(&mut self, key: usize) -> bool {
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
    pub(super) fn assign(&mut self) {
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
            // The least loaded worker with room, a ready one before a starting one. A busy one
            // gets more (prefetch) only when no worker can be added and no starting one will
            // want this call: a call queued behind a long task waits for it, so a fresh worker
            // is better.
            let Some(worker) = self
                .workers
                .iter_mut()
                .filter(|w| w.capacity(&self.config))
                .min_by_key(|w| (w.in_flight.len(), w.phase != Phase::Ready))
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
                worker.beats_at_busy = worker.beat_bytes;
            }
            worker.sent += 1;
            worker.in_flight.push_back(job);
        }
        self.queued = state.queue.len();
    }

    /// Closes the calls pipe of workers that will get nothing more, so they exit at EOF.
    pub(super) fn close_finished_pipes(&mut self) {
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

    /// Before `poll`: lends the idle workers to `submit` (while this thread sleeps, `submit` may
    /// write a call straight to one, and the thread waiting on it read the answer, saving two
    /// wake-ups of this thread). Returns the lent workers' ids, or `None` if a request arrived
    /// since the last look, so there is no sleeping.
    pub(super) fn lend(&mut self) -> Lent {
        if self.shared.express {
            self.open_lines();
        }
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
                            line: worker.line.clone(),
                            left: self
                                .config
                                .max_tasks_per_child
                                .map(|max| max.saturating_sub(worker.sent)),
                            used: 0,
                            worker_cpu: worker.cpu,
                        });
                    }
                }
            }
        }
        Lent(Some(ids))
    }

    /// Opens the blocking read end (`crate::results_line`) of each ready worker that has a
    /// pidfd (without one, a reader blocked on a dead worker's pipe could not be told of the
    /// death) and none yet. Once per worker, while the I/O thread is about to sleep.
    fn open_lines(&mut self) {
        for worker in &mut self.workers {
            if worker.line_tried || worker.phase != Phase::Ready || worker.pidfd.is_none() {
                continue;
            }
            if let Some(results) = &worker.results {
                worker.line_tried = true;
                worker.line = ResultsLine::open(results.as_fd());
            }
        }
    }

    /// Takes back the workers lent to `submit` (recording the calls it sent them) and the ones
    /// drivers gave back; notes which ones are still on loan to a driver.
    pub(super) fn reclaim(&mut self) {
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
                w.cpu = lent.worker_cpu.or(w.cpu);
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
            w.beats_at_busy = w.beat_bytes;
            w.sent += lent.used + 1;
            w.cpu = lent.worker_cpu.or(w.cpu);
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
    pub(super) fn adopt_returned(&mut self, returned: Returned, now: Instant) {
        let Returned {
            worker,
            job,
            bytes,
            used,
            worker_cpu,
        } = returned;
        let Some(i) = self.workers.iter().position(|w| w.id == worker) else {
            if let Some(job) = job {
                job.completion.fail(Failure::abandoned());
            }
            return;
        };
        let w = &mut self.workers[i];
        w.sent += used;
        w.cpu = worker_cpu.or(w.cpu);
        if let Some(job) = job {
            debug_assert!(w.in_flight.is_empty());
            w.head_since = now;
            w.beats_at_busy = w.beat_bytes;
            w.sent += 1;
            w.unwritten = 1;
            w.offset = 0;
            w.in_flight.push_back(job);
        }
        if !bytes.is_empty() {
            w.heard();
            w.rbuf.drain(..w.rpos);
            w.rpos = 0;
            w.rbuf.splice(0..0, bytes);
            self.read_worker(i);
        }
    }
}
