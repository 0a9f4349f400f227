//! A worker's link: the pool's ends of its calls and results pipes (the worker's private
//! pipes, or a launcher's stdin and stdout), written and read without blocking.

use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;

use crate::frame::{self, FrameError};
use crate::sys;

use std::time::Instant;

use crate::launcher::KillPolicy;

use super::lifecycle::{Kill, Worker};

/// Most bytes read from one worker per wake, so one huge result cannot starve the others.
const READ_BUDGET: usize = 8 << 20;

impl Worker {
    /// Writes what it can without blocking.
    pub(super) fn flush(&mut self) {
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

    /// Reads what is available; sets `eof` at end of input. Cuts the stream at the marker that
    /// woke this dead worker's reader, if one was written (`crate::results_line`): nothing from
    /// it on is the worker's.
    pub(super) fn read_available(&mut self, limit: usize) {
        self.read_pipe(limit);
        if let Some(marker) = self.marker {
            if let Some(at) = marker.find(&self.rbuf[self.rpos..]) {
                self.rbuf.truncate(self.rpos + at);
                self.marker = None;
            }
        }
    }

    fn read_pipe(&mut self, limit: usize) {
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
            let read = sys::read_into_spare(fd, &mut self.rbuf, want);
            if matches!(read, Ok(n) if n > 0) {
                self.heard();
            }
            match read {
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

/// Where a launched worker's kill stands: a launcher gets `SIGTERM` before `SIGKILL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Escalation {
    None,
    /// `SIGTERM` sent; `SIGKILL` due at this instant.
    Due(Instant),
    /// `SIGKILL` sent.
    Sent,
}

impl Worker {
    /// Sends `signal` the way this worker's link needs. A launched worker's `SIGKILL` goes to
    /// its launcher as `SIGTERM` first, which `ssh` and `mpirun` pass on and `srun` turns into
    /// a cancel of its step (a `SIGKILL`ed `srun` leaves its job running); `SIGKILL` follows
    /// after the grace if the launcher is still there ([`Worker::escalate`]).
    pub(super) fn send_kill(&mut self, signal: i32) {
        let through_launcher = self.kill_policy == KillPolicy::ThroughLauncher;
        if signal == libc::SIGKILL && through_launcher && self.escalation == Escalation::None {
            sys::kill_worker(self.pid, libc::SIGTERM);
            self.escalation = Escalation::Due(Instant::now() + self.kill_grace);
        } else {
            sys::kill_worker(self.pid, signal);
        }
    }

    /// Sends the `SIGKILL` a launcher given `SIGTERM` is due, if it is due; returns when it
    /// will be, if it is still to come.
    pub(super) fn escalate(&mut self, now: Instant) -> Option<Instant> {
        let Escalation::Due(at) = self.escalation else {
            return None;
        };
        if self.exited {
            return None;
        }
        if now < at {
            return Some(at);
        }
        sys::kill_worker(self.pid, libc::SIGKILL);
        self.escalation = Escalation::Sent;
        None
    }
}
