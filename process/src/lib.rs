//! # concur-process
//!
//! Python's `concurrent.futures.ProcessPoolExecutor` for Rust: a pool of worker processes that
//! run registered functions and hand back [`concur_core::Future`]s.
//!
//! - **Tasks** are plain functions declared in [`task!`]: each is registered under a stable
//!   name (`module::path::fn`) in a link-time registry, so a call crosses the process boundary
//!   by name, never by code address, and a closure cannot be sent at all. Arguments and results
//!   are serde values encoded with postcard.
//! - **Workers** are started with `posix_spawn` (fork/exec semantics, cost independent of the
//!   parent's memory) running the current executable, whose `main` calls [`worker_main`] first
//!   ([`test_worker!`] does it for `cargo test` binaries). Each has private pipes on descriptors
//!   3 (calls) and 4 (results), stdin from `/dev/null`, and the parent's stdout and stderr for
//!   the task to print on; it leads its own process group and dies with the pool.
//! - **Launchers**: with [`ProcessPoolBuilder::launcher`] (`ssh host`, `srun ...`) the same
//!   frames travel over the worker's stdin and stdout, so a pool can reach past one machine.
//! - **Failures stay local**: a worker killed mid-task fails only the task it was running, with
//!   [`WorkerDied`] (pid, signal or exit code); the calls queued behind it run on a replacement.
//!   The pool is [broken](BrokenProcessPool) only by start-up failures that repeat by
//!   themselves: the initializer fails, the program cannot be run or refuses the handshake, or
//!   three new workers in a row exit or crash before they are ready. A worker killed from
//!   outside (`SIGKILL`, `SIGTERM`, `SIGINT`, `SIGHUP`, `SIGQUIT` not sent by the pool) never
//!   counts; replacements of workers that died starting wait 1 ms, doubling to at most 100 ms.
//!
//! ```no_run
//! use concur_process::{MapOptions, ProcessPool};
//!
//! concur_process::task! {
//!     /// Whether `n` is prime.
//!     fn is_prime(n: u64) -> bool {
//!         n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
//!     }
//! }
//!
//! fn main() {
//!     concur_process::worker_main(); // in a worker, serves tasks and never returns
//!     let pool = ProcessPool::builder().build().unwrap();
//!     let numbers = [112_272_535_095_293u64, 112_582_705_942_171];
//!     for (n, prime) in numbers.iter().zip(pool.map(is_prime, &numbers)) {
//!         println!("{n} is prime: {}", prime.unwrap());
//!     }
//! }
//! ```
//!
//! ## How it works
//!
//! One I/O thread per pool owns the workers: a single `poll(2)` covers an eventfd for new work,
//! every worker's results pipe, the calls pipes that have bytes to write, and every worker's
//! pidfd. All pipes are non-blocking, so a worker writing a 10 MB result never blocks the
//! thread feeding it. A worker runs its calls in order; besides the running call it may hold
//! [`prefetch`](ProcessPoolBuilder::prefetch) more in its pipe (only when the pool cannot grow),
//! so small tasks keep it busy. A call is marked running (and can no longer be cancelled with
//! [`Future::cancel`](concur_core::Future::cancel)) when it is written to a worker; when a worker
//! dies, the call it was running fails and the calls behind it, which never started, are sent
//! to a replacement. Death is seen as EOF on the results pipe or the pidfd becoming readable,
//! never by polling on a timer; `waitpid` then reaps the worker and reports its status.
//!
//! **Express path.** While the I/O thread sleeps it lends its idle workers: `submit` writes the
//! call straight into an idle worker's pipe, and the thread that then blocks on the future
//! (`result`, `wait`, `into_result` and their timed forms) reads the answer from the worker's
//! results pipe itself, through [`concur_core::Drive`]. A round trip is then two pipe hand-offs,
//! as between two bare processes, with no wake-up of the I/O thread. Waiters that do not read
//! (`.await`, [`concur_core::wait`], callbacks) hand the call back to the I/O thread when they
//! start waiting; an answer nobody waits for (a future only polled with `is_done`, or dropped)
//! is collected by the I/O thread within 10 ms.
//!
//! Done-callbacks of the futures run where they complete: on the I/O thread, or on the thread
//! that read the answer; keep them short.
//!
//! ## Errors
//!
//! A task's future fails with a [`concur_core::Failure`] wrapping one of this crate's error
//! types: [`WorkerDied`], [`AttemptsFailed`], [`TaskPanicked`], [`TaskTimedOut`], [`TaskKilled`], [`UnknownTask`],
//! [`SignatureMismatch`], [`CodecError`], [`ProtocolError`], [`Terminated`] or [`BrokenProcessPool`].
//! Match them with `failure.downcast_ref::<WorkerDied>()`.
//!
//! ## Platform
//!
//! Linux (glibc 2.34 or later): the pool relies on `posix_spawn_file_actions_addclosefrom_np`,
//! `PR_SET_PDEATHSIG` and pidfds (Linux 5.3; without pidfds death is seen by EOF alone).
#![cfg(target_os = "linux")]

mod builder;
mod command;
mod drive;
mod error;
mod frame;
mod heartbeat;
mod io;
mod job;
mod launcher;
mod lifeline;
mod map;
mod next_call_poll;
mod pipe_spin;
mod pool;
mod registry;
mod restart;
mod results_line;
mod shared;
mod ship;
mod spawn;
mod sys;
mod worker;

pub use builder::ProcessPoolBuilder;
pub use error::{
    AttemptsFailed, BrokenProcessPool, BuildError, CodecError, CodecStage, DeathCause, ExitStatus,
    HandshakeError, InitializerFailed, ProtocolError, ShipError, SignatureMismatch, SpawnFailed,
    TaskKilled, TaskPanicked, TaskTimedOut, Terminated, UnknownTask, WorkerDied,
};
pub use launcher::Launcher;
pub use map::{Map, MapOptions};
pub use pool::ProcessPool;
pub use registry::Task;
pub use worker::worker_main;

/// The frame decoder, exposed for fuzzing and tests; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::frame::{
        DEFAULT_MAX_FRAME, Frame, FrameError, Items, OutcomeIter, Outcomes, PROTOCOL_VERSION,
        UNKNOWN_CPU, WireError, decode_frame, decode_frame_with_limit, encode_heartbeat,
        encode_hello, encode_init, encode_init_failed, encode_ready, encode_result, frame_size,
    };

    /// The build fingerprint a worker of this build sends in its HELLO.
    pub fn fingerprint() -> u64 {
        crate::worker::fingerprint()
    }

    /// What a worker started through a launcher writes before its HELLO (the pool skips
    /// everything before it), so tests can play a launched worker.
    pub fn launcher_sync() -> &'static [u8] {
        crate::worker::SYNC
    }
}

/// Items the macros expand to; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::registry::{TASKS, TEST_WORKERS, TaskEntry, invoke, signature};
    pub use linkme;
}
