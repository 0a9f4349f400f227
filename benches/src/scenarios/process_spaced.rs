//! `process/spaced_cpu`: what a call costs the other process when calls come [`GAP`] apart,
//! as from a server answering requests, not from a loop.
//!
//! One submit, its result, then [`GAP`] of sleep (the caller's own work), [`CALLS`] times per
//! sample, on a 1-worker pool; the figure is the worker's CPU time per call, from
//! `/proc/<pid>/task/*/schedstat`. The floor next to it, `raw_pipe`, is the same pacing over the
//! echo child of `process/round_trip`, and its CPU per round trip. A worker that polls for its
//! next call after every answer spends its whole polling window per call here, for nothing.

use std::ffi::OsString;
use std::hint::black_box;
use std::io::{Read, Write};
use std::time::Duration;

use concur_process::ProcessPool;

use super::process::{RAW_BYTES, RAW_PIPE, from_samples, tasks};
use crate::contender::Side;
use crate::measure::Measured;
use crate::procfs;

/// The scenario's name.
pub const NAME: &str = "process/spaced_cpu";
/// The caller's sleep between two calls.
pub const GAP: Duration = Duration::from_micros(200);
/// Calls per sample.
pub const CALLS: u32 = 300;

/// `samples` samples of ours, then (with `echo_command`, as for `process/round_trip`) as many
/// of the raw pipe's, alternating; `None` without `/proc/<pid>/task/*/schedstat`.
pub fn spaced_cpu(samples: usize, echo_command: Option<Vec<OsString>>) -> Option<Vec<Measured>> {
    let pool = ProcessPool::builder()
        .max_workers(1)
        .build()
        .expect("cannot build the process pool");
    let mut ours = Ours { pool, next: 0 };
    let mut raw = echo_command.map(Raw::start);
    let (mut ours_ns, mut raw_ns) = (Vec::new(), Vec::new());
    for _ in 0..samples.max(1) {
        ours_ns.push(ours.sample()?);
        if let Some(raw) = raw.as_mut() {
            raw_ns.push(raw.sample()?);
        }
    }
    let mut measured = vec![from_samples("ours/submit", Side::Ours, ours_ns)];
    if !raw_ns.is_empty() {
        measured.push(from_samples(RAW_PIPE, Side::Peer, raw_ns));
    }
    Some(measured)
}

/// The other process's CPU nanoseconds per call over one sample of `call`s.
fn per_call(pid: u32, mut call: impl FnMut()) -> Option<f64> {
    let before = procfs::cpu_ns_of(pid)?;
    for _ in 0..CALLS {
        call();
        std::thread::sleep(GAP);
    }
    let used = procfs::cpu_ns_of(pid)?.saturating_sub(before);
    Some(used as f64 / f64::from(CALLS))
}

struct Ours {
    pool: ProcessPool,
    next: u64,
}

impl Ours {
    fn sample(&mut self) -> Option<f64> {
        // Started (and warm) before its CPU is read.
        self.call();
        let pid = *self.pool.worker_pids().first()?;
        per_call(pid, || self.call())
    }

    fn call(&mut self) {
        self.next += 1;
        let future = self
            .pool
            .submit(tasks::noop, black_box(self.next))
            .expect("submit refused");
        black_box(*future.result().expect("ours: the call failed"));
    }
}

/// The echo child and its pipes.
struct Raw {
    child: std::process::Child,
    buf: [u8; RAW_BYTES],
}

impl Raw {
    fn start(command: Vec<OsString>) -> Self {
        let mut raw = Self {
            child: super::process::spawn_echo_child(&command),
            buf: [7; RAW_BYTES],
        };
        // Started (past its loader and `main`) before its CPU is read.
        raw.round_trip();
        raw
    }

    fn round_trip(&mut self) {
        let (Some(to), Some(from)) = (self.child.stdin.as_mut(), self.child.stdout.as_mut()) else {
            panic!("raw_pipe: the echo child's pipes are gone");
        };
        to.write_all(&self.buf).expect("raw_pipe: write failed");
        from.read_exact(&mut self.buf)
            .expect("raw_pipe: the echo child is gone");
    }

    fn sample(&mut self) -> Option<f64> {
        let pid = self.child.id();
        per_call(pid, || self.round_trip())
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // EOF ends the echo loop.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
