//! Heartbeats, the pool's side (the worker's is `crate::heartbeat`): every worker with an
//! interval gets a HEARTBEAT frame from the pool each interval, and any bytes from it count as
//! a sign of life. A ready worker silent for twice its interval is declared dead and killed
//! through its launcher; its running call fails with `WorkerDied` (`DeathCause::HeartbeatLost`).
//! The deadlines join the I/O thread's `poll` timeout, so nothing is polled on a timer
//! beyond them.

use std::io::IoSlice;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::frame;
use crate::sys;

use super::Io;
use super::lifecycle::{Kill, Phase, Worker};

impl Worker {
    /// Notes that bytes came from the worker.
    pub(super) fn heard(&mut self) {
        if self.heartbeat.is_some() {
            self.last_heard = Instant::now();
        }
    }

    /// The worker's heartbeat interval, if it is ready, watched and not being killed.
    fn watched(&self) -> Option<Duration> {
        let live = self.phase == Phase::Ready && self.kill.is_none() && !self.exited;
        self.heartbeat.filter(|_| live)
    }

    /// Writes a HEARTBEAT if the calls pipe is between frames (a write of a few bytes, at most
    /// `PIPE_BUF`, is all or nothing); when a frame is half written, those bytes are news enough.
    fn beat(&mut self, interval: Duration) {
        let Some(fd) = &self.calls else { return };
        if self.has_unwritten() {
            return;
        }
        let mut bytes = Vec::with_capacity(16);
        frame::encode_heartbeat(&mut bytes, interval.as_millis() as u32);
        if let Ok(n) = sys::write_vectored(fd.as_raw_fd(), &[IoSlice::new(&bytes)]) {
            self.beat_bytes += n as u64;
        }
    }
}

impl Io {
    /// Sends the heartbeats due and declares dead the workers silent past twice their interval.
    pub(super) fn check_heartbeats(&mut self, now: Instant) {
        for i in 0..self.workers.len() {
            let Some(interval) = self.workers[i].watched() else {
                continue;
            };
            if now.saturating_duration_since(self.workers[i].last_heard) >= interval * 2
                && self.workers[i].loan.is_none()
            {
                // A worker lent to the express path while this thread slept was not polled:
                // its heartbeats may be waiting in the pipe.
                self.read_worker(i);
            }
            let worker = &mut self.workers[i];
            if worker.watched().is_none() {
                continue;
            }
            let silent = now.saturating_duration_since(worker.last_heard);
            if silent >= interval * 2 {
                worker.signal(libc::SIGKILL, Kill::Silent { silent });
                continue;
            }
            if now >= worker.next_beat {
                worker.beat(interval);
                worker.next_beat = now + interval;
            }
        }
    }

    /// The nearest heartbeat deadline: a heartbeat to send, or a silence bound.
    pub(super) fn next_heartbeat(&self) -> Option<Instant> {
        self.workers
            .iter()
            .filter_map(|w| {
                let interval = w.watched()?;
                Some(w.next_beat.min(w.last_heard + interval * 2))
            })
            .min()
    }
}
