//! The process pool (`concur-process`), every pool with [`WORKERS`] workers unless noted:
//!
//! - `process/startup`: build a pool, submit two no-ops, time to the first result (the pool
//!   is dropped outside the clock). One sample per pool; the figure is the median. The floor
//!   next to it, `spawn_floor`, is one `std::process::Command` spawn of this same binary to
//!   the first byte it writes, first thing in `main` ([`spawn_floor_child`]): what any
//!   process pool pays before its worker can read a call. A second floor, `spawn_floor_hello`,
//!   spawns the smallest Rust program ([`HELLO`], built by `benches/build.rs`) the same way:
//!   what any Rust process pays on this machine to reach `main`, whatever the binary's size.
//!   Samples alternate: ours, the floor, the hello floor.
//! - `process/round_trip`: one no-op submit, then its result, in a loop. The floor next to it,
//!   `raw_pipe`, is a 64-byte write to a child process that echoes it back over a second pipe,
//!   read back whole: `compare` re-executing itself as `--child process/raw_pipe` (see
//!   [`echo`]), so both sides are the same language and measured interleaved. Unpinned, the
//!   scheduler decides whether the two ends share a CPU (a few µs per round trip) or not (tens
//!   of µs: a wake-up of an idle virtual CPU), and may decide differently for each side, so
//!   `process/round_trip_1cpu` repeats both with everything on one CPU and
//!   `process/round_trip_split` with the caller on one CPU and the other process on another:
//!   the same placement for both sides, every run.
//! - `process/map/1` and `process/map/1000`: `map_with` over [`MAP_ITEMS`] small integers at
//!   chunksize 1 and 1,000; the figure is nanoseconds per item (10^9 / items per second).
//! - `process/death_to_error`: a 1-worker pool runs a task that sleeps forever; once it is
//!   running, `SIGKILL` the worker and time from `kill(2)` to the task's future failing with
//!   [`WorkerDied`]. One sample per kill; the figure is the median.
//!
//! The peer is CPython's `ProcessPoolExecutor` (fork context), from `python/peers.py`.

use std::ffi::OsString;
use std::hint::black_box;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use concur_process::{MapOptions, ProcessPool, WorkerDied};

use crate::contender::{Batch, Contender, Played, Scenario, Side};
use crate::latency::{Laps, Recorder};
use crate::measure::Measured;

/// Pool start-up to the first result.
pub const STARTUP: &str = "process/startup";
/// Single submit-then-result.
pub const ROUND_TRIP: &str = "process/round_trip";
/// [`ROUND_TRIP`] with everything on one CPU (`compare` re-run as a child pinned to one CPU
/// before anything starts, so the pool's threads, its workers and the echo child inherit it).
pub const ROUND_TRIP_1CPU: &str = "process/round_trip_1cpu";
/// [`ROUND_TRIP`] with the caller on one CPU and the workers on the other.
pub const ROUND_TRIP_SPLIT: &str = "process/round_trip_split";
/// `map` at chunksize 1.
pub const MAP_1: &str = "process/map/1";
/// `map` at chunksize 1,000.
pub const MAP_1000: &str = "process/map/1000";
/// `SIGKILL` of a busy worker to the error on its future.
pub const DEATH_TO_ERROR: &str = "process/death_to_error";
/// Every scenario of the group, in the order `compare` runs them.
pub const ALL: [&str; 5] = [STARTUP, ROUND_TRIP, MAP_1, MAP_1000, DEATH_TO_ERROR];
/// The spawn floor's contender name in `process/startup`.
pub const SPAWN_FLOOR: &str = "spawn_floor";
/// The second floor's contender name in `process/startup`: [`HELLO`] spawned to its first byte.
pub const SPAWN_FLOOR_HELLO: &str = "spawn_floor_hello";
/// Path of the smallest Rust program (`benches/floor/hello.rs`, built by `benches/build.rs`);
/// empty if it could not be built.
pub const HELLO: &str = env!("CONCUR_BENCH_HELLO");
/// Set in the spawn floor's child: `compare`'s `main` then only calls [`spawn_floor_child`].
pub const SPAWN_FLOOR_ENV: &str = "CONCUR_BENCH_SPAWN_FLOOR";
/// The raw-pipe floor's contender name in `process/round_trip`.
pub const RAW_PIPE: &str = "raw_pipe";
/// `compare --child` name of the echo process behind [`RAW_PIPE`].
pub const ECHO_CHILD: &str = "process/raw_pipe";
/// Workers of every pool but `death_to_error`'s.
pub const WORKERS: usize = 2;
/// Items per `map` call.
pub const MAP_ITEMS: u64 = 100_000;
/// Bytes of one raw-pipe round trip each way.
pub const RAW_BYTES: usize = 64;

/// How long any one result may take before the pool is declared hung.
const RESULT_LIMIT: Duration = Duration::from_secs(10);

/// The tasks the scenarios run; registered in every binary linking this crate.
pub mod tasks {
    concur_process::task! {
        /// Returns its input.
        pub fn noop(x: u64) -> u64 { x }
        /// Sleeps until its worker is killed (or the pool drops it).
        pub fn busy() { loop { std::thread::sleep(std::time::Duration::from_secs(1)); } }
    }
}

fn pool(workers: usize) -> ProcessPool {
    ProcessPool::builder()
        .max_workers(workers)
        .build()
        .expect("cannot build the process pool")
}

fn value(future: &concur_core::Future<u64>) -> u64 {
    match future.try_result() {
        Some(outcome) => *outcome.expect("ours: the task failed"),
        // No deadline, as the raw pipe's blocking read has none: the waiter then reads its
        // answer with one blocking read (`concur_process`'s results line).
        None => *future.result().expect("ours: the call failed"),
    }
}

/// One `process/startup` sample: a fresh pool of [`WORKERS`] to its first result.
pub fn startup_once() -> Duration {
    let start = Instant::now();
    let pool = pool(WORKERS);
    let a = pool.submit(tasks::noop, 1).expect("submit refused");
    let b = pool.submit(tasks::noop, 2).expect("submit refused");
    let first = concur_core::wait(
        [&a, &b],
        Some(RESULT_LIMIT),
        concur_core::ReturnWhen::FirstCompleted,
    );
    let elapsed = start.elapsed();
    assert!(!first.done().is_empty(), "ours: no result in time");
    value(&a);
    value(&b);
    drop(pool);
    elapsed
}

/// One `process/death_to_error` sample on `pool` (1 worker): kill the worker running a
/// [`tasks::busy`] call, time to its future's [`WorkerDied`].
pub fn death_once(pool: &ProcessPool) -> Duration {
    // A ready worker first (the last sample killed its predecessor): a call sent to a worker
    // still starting counts as running too, and killing that worker would requeue the call,
    // which it never ran, instead of failing it.
    value(&pool.submit(tasks::noop, 0).expect("submit refused"));
    let future = pool.submit(tasks::busy, ()).expect("submit refused");
    let deadline = Instant::now() + RESULT_LIMIT;
    while !(future.is_running() && pool.worker_pids().len() == 1) {
        assert!(
            Instant::now() < deadline,
            "ours: the busy task never started"
        );
        std::thread::sleep(Duration::from_micros(100));
    }
    // Written to the worker; let it read the call and start running it.
    std::thread::sleep(Duration::from_millis(1));
    let pid = pool.worker_pids()[0];
    let pid = libc::pid_t::try_from(pid).expect("pid out of range");
    let start = Instant::now();
    // SAFETY: kill(2) has no memory-safety preconditions; pid is the pool's live worker.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let finished = future.wait_timeout(RESULT_LIMIT);
    let elapsed = start.elapsed();
    assert!(
        finished,
        "ours: no error within {RESULT_LIMIT:?} of SIGKILL"
    );
    match future.try_error() {
        Some(Ok(Some(failure))) if failure.downcast_ref::<WorkerDied>().is_some() => {}
        other => panic!("ours: expected WorkerDied, got {other:?}"),
    }
    elapsed
}

/// `n` samples of `once`, as one contender's figure (median, range; no paired rounds).
pub fn sampled(name: &str, n: usize, mut once: impl FnMut() -> Duration) -> Measured {
    let rounds: Vec<f64> = (0..n.max(1)).map(|_| once().as_nanos() as f64).collect();
    from_samples(name, Side::Ours, rounds)
}

/// One contender's figure from its samples, in nanoseconds: their median and range.
pub(crate) fn from_samples(name: &str, side: Side, rounds: Vec<f64>) -> Measured {
    let mut s = rounds.clone();
    s.sort_by(f64::total_cmp);
    let mid = s.len() / 2;
    let ns = if s.len() % 2 == 1 {
        s[mid]
    } else {
        (s[mid - 1] + s[mid]) / 2.0
    };
    Measured {
        name: name.to_string(),
        side,
        ns,
        range: (s[0], s[s.len() - 1]),
        rounds,
        latency: None,
    }
}

/// `process/startup`: `samples` fresh pools (after one unmeasured, to warm the page cache),
/// each followed by one sample of the spawn floor of `exe` (this binary) when given, and one of
/// [`HELLO`] when it was built.
pub fn startup(samples: usize, exe: Option<&Path>) -> Vec<Measured> {
    let hello = (!HELLO.is_empty()).then(|| Path::new(HELLO));
    startup_once();
    if let Some(hello) = hello {
        spawn_floor_once(hello);
    }
    let (mut ours, mut floor, mut hello_floor) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..samples.max(1) {
        ours.push(startup_once().as_nanos() as f64);
        if let Some(exe) = exe {
            floor.push(spawn_floor_once(exe).as_nanos() as f64);
        }
        if let Some(hello) = hello {
            hello_floor.push(spawn_floor_once(hello).as_nanos() as f64);
        }
    }
    let mut measured = vec![from_samples("ours/submit", Side::Ours, ours)];
    for (name, rounds) in [(SPAWN_FLOOR, floor), (SPAWN_FLOOR_HELLO, hello_floor)] {
        if !rounds.is_empty() {
            measured.push(from_samples(name, Side::Peer, rounds));
        }
    }
    measured
}

/// One spawn floor sample: `exe` spawned to its first byte (this binary writes it first thing
/// in `main`, as [`SPAWN_FLOOR_ENV`] says; [`HELLO`] ignores the variable); it is reaped outside
/// the clock.
pub fn spawn_floor_once(exe: &Path) -> Duration {
    let start = Instant::now();
    let mut child = Command::new(exe)
        .env(SPAWN_FLOOR_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn_floor: cannot spawn this binary");
    let mut byte = [0u8; 1];
    child
        .stdout
        .as_mut()
        .expect("piped")
        .read_exact(&mut byte)
        .expect("spawn_floor: the child wrote nothing");
    let elapsed = start.elapsed();
    let status = child.wait().expect("spawn_floor: cannot reap the child");
    assert!(status.success(), "spawn_floor: the child failed: {status}");
    elapsed
}

/// The spawn floor's child: one byte to stdout. `compare` calls it first thing in `main`
/// when [`SPAWN_FLOOR_ENV`] is set.
pub fn spawn_floor_child() {
    // Nothing useful to do if the parent is gone: it then has no clock to stop.
    let _ = std::io::stdout().write_all(b"x");
}

/// `process/death_to_error`: `samples` kills on one 1-worker pool.
pub fn death_to_error(samples: usize) -> Vec<Measured> {
    let pool = pool(1);
    vec![sampled("ours/submit", samples, || death_once(&pool))]
}

/// Submit, then result.
struct RoundTrip(ProcessPool);

impl Played for RoundTrip {
    fn play(&mut self, iters: u64, calls: Option<&mut Recorder>) -> Duration {
        let mut laps = Laps::start(calls);
        for i in 0..iters {
            let future = self.0.submit(tasks::noop, black_box(i)).expect("refused");
            black_box(value(&future));
            laps.lap();
        }
        laps.total()
    }
}

/// The floor: [`RAW_BYTES`] to an echoing child and back.
struct RawPipe {
    child: Child,
    to: Option<ChildStdin>,
    from: ChildStdout,
    buf: [u8; RAW_BYTES],
}

impl Played for RawPipe {
    fn play(&mut self, iters: u64, calls: Option<&mut Recorder>) -> Duration {
        let to = self.to.as_mut().expect("open until drop");
        let mut laps = Laps::start(calls);
        for _ in 0..iters {
            to.write_all(&self.buf).expect("raw_pipe: write failed");
            self.from
                .read_exact(&mut self.buf)
                .expect("raw_pipe: the echo child is gone");
            laps.lap();
        }
        laps.total()
    }
}

impl Drop for RawPipe {
    fn drop(&mut self) {
        // EOF ends the echo loop.
        drop(self.to.take());
        let _ = self.child.wait();
    }
}

/// Serves the raw-pipe floor: copies stdin to stdout in [`RAW_BYTES`] frames until EOF. The body of
/// `compare --child process/raw_pipe`.
pub fn echo() {
    let mut buf = [0u8; RAW_BYTES];
    let (mut stdin, mut stdout) = (std::io::stdin().lock(), std::io::stdout().lock());
    while stdin.read_exact(&mut buf).is_ok() {
        if stdout
            .write_all(&buf)
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return;
        }
    }
}

/// `process/round_trip`, ours first; with `echo_command` (program, then arguments: a process
/// that echoes stdin to stdout as it arrives, [`echo`]) the raw-pipe floor too.
pub fn round_trip_scenario(echo_command: Option<Vec<OsString>>) -> Scenario {
    round_trip_placed(ROUND_TRIP, echo_command, None)
}

/// `process/round_trip_split`: as [`round_trip_scenario`], with the measuring thread on CPU
/// `caller` and the workers (and the echo child) on CPU `other`; the pool's I/O thread, idle on
/// the express path, runs anywhere.
pub fn round_trip_split_scenario(
    echo_command: Option<Vec<OsString>>,
    caller: usize,
    other: usize,
) -> Scenario {
    round_trip_placed(ROUND_TRIP_SPLIT, echo_command, Some((caller, other)))
}

fn round_trip_placed(
    name: &'static str,
    echo_command: Option<Vec<OsString>>,
    split: Option<(usize, usize)>,
) -> Scenario {
    let mut contenders = vec![Contender::new("ours/submit", Side::Ours, move || {
        let pool = pool(WORKERS);
        if let Some((_, other)) = split {
            // Start both workers (two calls at once), then move them.
            let calls = [
                pool.submit(tasks::noop, 1).expect("submit refused"),
                pool.submit(tasks::noop, 2).expect("submit refused"),
            ];
            for call in &calls {
                value(call);
            }
            for pid in pool.worker_pids() {
                pin_child(pid, other);
            }
        }
        placed(RoundTrip(pool), split)
    })];
    if let Some(command) = echo_command {
        contenders.push(Contender::new(RAW_PIPE, Side::Peer, move || {
            let mut child = spawn_echo_child(&command);
            if let Some((_, other)) = split {
                pin_child(child.id(), other);
            }
            let to = child.stdin.take();
            let from = child.stdout.take().expect("piped");
            placed(
                RawPipe {
                    child,
                    to,
                    from,
                    buf: [7; RAW_BYTES],
                },
                split,
            )
        }));
    }
    Scenario { name, contenders }
}

/// Starts `command` (program, then arguments) with piped stdin and stdout: the raw pipe's
/// echo child.
pub(crate) fn spawn_echo_child(command: &[OsString]) -> Child {
    Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cannot start the echo child")
}

fn pin_child(pid: u32, cpu: usize) {
    crate::affinity::pin_process(pid, cpu)
        .unwrap_or_else(|e| panic!("cannot pin process {pid} to CPU {cpu}: {e}"));
}

/// `batch`, with the measuring thread pinned to the split's caller CPU while it measures.
fn placed(batch: impl Batch + 'static, split: Option<(usize, usize)>) -> Box<dyn Batch> {
    match split {
        Some((caller, _)) => Box::new(PinnedCaller { batch, cpu: caller }),
        None => Box::new(batch),
    }
}

/// Runs `batch` with the measuring thread pinned to `cpu`.
struct PinnedCaller<B> {
    batch: B,
    cpu: usize,
}

impl<B: Batch> Batch for PinnedCaller<B> {
    fn run(&mut self, iters: u64) -> Duration {
        let _pin = crate::affinity::pin_current_thread(self.cpu);
        self.batch.run(iters)
    }

    fn run_recorded(&mut self, iters: u64, calls: &mut Recorder) -> Option<Duration> {
        let _pin = crate::affinity::pin_current_thread(self.cpu);
        self.batch.run_recorded(iters, calls)
    }
}

/// `map_with` over `items` integers at `chunksize`; one operation = one call.
struct MapBatch {
    pool: ProcessPool,
    chunksize: usize,
    items: u64,
}

impl Batch for MapBatch {
    fn run(&mut self, iters: u64) -> Duration {
        let options = MapOptions::new()
            .chunksize(self.chunksize)
            .timeout(RESULT_LIMIT * 3);
        let start = Instant::now();
        for _ in 0..iters {
            let sum: u64 = self
                .pool
                .map_with(tasks::noop, 0..self.items, options)
                .map(|r| r.expect("ours/map: a task failed or timed out"))
                .sum();
            assert_eq!(sum, self.items * (self.items - 1) / 2, "a result was lost");
        }
        start.elapsed()
    }
}

/// `process/map/<chunksize>` over `items` integers (one operation = one `map`; see
/// [`per_item`]).
pub fn map_scenario(chunksize: usize, items: u64) -> Scenario {
    Scenario {
        name: if chunksize == 1 { MAP_1 } else { MAP_1000 },
        contenders: vec![Contender::new("ours/map", Side::Ours, move || {
            Box::new(MapBatch {
                pool: pool(WORKERS),
                chunksize,
                items,
            })
        })],
    }
}

/// Turns per-`map` figures over `items` into per-item ones.
pub fn per_item(measured: Vec<Measured>, items: u64) -> Vec<Measured> {
    crate::measure::scale(measured, 1.0 / items as f64)
}

/// Items per `process/map/1` call: [`MAP_ITEMS`], or a tenth of it under `--quick` (at the
/// budget's 100k items/s one full call alone takes a second).
pub fn map_1_items(quick: bool) -> u64 {
    if quick { MAP_ITEMS / 10 } else { MAP_ITEMS }
}

/// The plan for `process/map/<chunksize>`: at chunksize 1 one call outlasts any slice, so
/// each slice is one call and there are at most 11 rounds.
pub fn map_plan(plan: crate::measure::Plan, chunksize: usize) -> crate::measure::Plan {
    if chunksize == 1 {
        crate::measure::Plan {
            rounds: plan.rounds.min(11),
            slice: Duration::from_millis(1),
        }
    } else {
        plan
    }
}
