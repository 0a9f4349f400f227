//! The thread pool: `pool/round_trip` (one no-op submit, then its result, in a loop; nothing
//! pinned) and `pool/throughput_100k` (100,000 no-op submits, then every result; the figure is
//! nanoseconds per task; ours also through `map`, the `.map` row), every pool with 2 workers.
//! Also the idle-CPU figure of a pool.
//!
//! Peers: rayon (`ThreadPool::spawn`, what `rayon::spawn` does on the global pool, plus a
//! `oneshot` channel per task for its result), the `threadpool` crate (`execute`, every
//! result back through one shared std `mpsc` channel: no per-task handle), tokio
//! `spawn_blocking` (a current-thread runtime whose blocking pool has 2 threads, each result
//! through its `JoinHandle`), and CPython's `ThreadPoolExecutor(2)` (`python/peers.py`).
//! Ours is the only one whose every task has its own future that many threads could read.

use std::hint::black_box;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use concur_core::MapOptions;
use concur_pool::ThreadPool;

use crate::contender::{Batch, Contender, Played, Scenario, Side};
use crate::latency::{Laps, Recorder};
use crate::measure::Measured;
use crate::procfs::{self, CpuTime};

/// Single submit-then-result.
pub const ROUND_TRIP: &str = "pool/round_trip";
/// [`ROUND_TRIP`] under issue 13's protocol: each pool alone, in runs (see [`crate::runs`]).
pub const ROUND_TRIP_RUNS: &str = "pool/round_trip_runs";
/// 100,000 submits, then all results.
pub const THROUGHPUT: &str = "pool/throughput_100k";
/// The idle-CPU figure (a budget line, not a ratio row).
pub const IDLE_CPU: &str = "pool/idle_cpu";
/// Tasks per throughput batch.
pub const TASKS: usize = 100_000;
/// Workers of every pool.
pub const WORKERS: usize = 2;

/// How long to wait for one result before declaring the pool hung. Every contender first
/// looks whether the result is there (no clock read), then waits with this limit.
const RESULT_LIMIT: Duration = Duration::from_secs(10);

/// One pool library, seen as: submit a no-op returning its input, get results back.
trait Pool: Sized + 'static {
    /// What the caller holds for one submitted task until its result is read.
    type Ticket;
    fn start() -> Self;
    fn submit(&self, v: u64) -> Self::Ticket;
    /// Reads the result of `ticket`.
    fn result(&self, ticket: Self::Ticket) -> u64;
}

/// Ours: `ThreadPool::submit`, then `result()` on the future.
struct Ours(ThreadPool);

impl Pool for Ours {
    type Ticket = concur_core::Future<u64>;
    fn start() -> Self {
        Self(
            ThreadPool::builder()
                .max_workers(WORKERS)
                .thread_name_prefix("bench-ours")
                .build()
                .expect("cannot build the pool"),
        )
    }
    fn submit(&self, v: u64) -> Self::Ticket {
        self.0.submit(move || v).expect("the pool refused a task")
    }
    fn result(&self, ticket: Self::Ticket) -> u64 {
        // A timed wait reads the clock first (about 25 ns here); a user's plain `result()`
        // does not, so look before waiting, as the peers do.
        match ticket.try_result() {
            Some(outcome) => *outcome.expect("ours: the task failed"),
            None => *ticket
                .result_timeout(RESULT_LIMIT)
                .expect("ours: no result in time"),
        }
    }
}

/// rayon: `spawn` on a 2-thread pool, each result through its own `oneshot` channel.
struct Rayon(rayon::ThreadPool);

impl Pool for Rayon {
    type Ticket = oneshot::Receiver<u64>;
    fn start() -> Self {
        Self(
            rayon::ThreadPoolBuilder::new()
                .num_threads(WORKERS)
                .thread_name(|i| format!("bench-rayon-{i}"))
                .build()
                .expect("cannot build the rayon pool"),
        )
    }
    fn submit(&self, v: u64) -> Self::Ticket {
        let (tx, rx) = oneshot::channel();
        self.0.spawn(move || {
            let _ = tx.send(v);
        });
        rx
    }
    fn result(&self, ticket: Self::Ticket) -> u64 {
        match ticket.try_recv() {
            Ok(v) => v,
            Err(_) => ticket
                .recv_timeout(RESULT_LIMIT)
                .expect("rayon: no result in time"),
        }
    }
}

/// The `threadpool` crate: `execute`, results through one shared `mpsc` channel (in completion
/// order; the ticket is nothing).
struct Threadpool {
    pool: threadpool::ThreadPool,
    tx: mpsc::Sender<u64>,
    rx: mpsc::Receiver<u64>,
}

impl Pool for Threadpool {
    type Ticket = ();
    fn start() -> Self {
        let (tx, rx) = mpsc::channel();
        Self {
            pool: threadpool::Builder::new()
                .num_threads(WORKERS)
                .thread_name("bench-threadpool".into())
                .build(),
            tx,
            rx,
        }
    }
    fn submit(&self, v: u64) -> Self::Ticket {
        let tx = self.tx.clone();
        self.pool.execute(move || {
            let _ = tx.send(v);
        });
    }
    fn result(&self, (): Self::Ticket) -> u64 {
        match self.rx.try_recv() {
            Ok(v) => v,
            Err(_) => self
                .rx
                .recv_timeout(RESULT_LIMIT)
                .expect("threadpool: no result in time"),
        }
    }
}

impl Drop for Threadpool {
    fn drop(&mut self) {
        self.pool.join();
    }
}

/// tokio: `spawn_blocking` on a current-thread runtime with 2 blocking threads, each result
/// through its `JoinHandle` (awaited by `block_on`). A `JoinHandle` has no timed wait without
/// the runtime's timer (which would slow tokio's figure down); `compare`'s watchdog bounds it.
struct Tokio(tokio::runtime::Runtime);

impl Pool for Tokio {
    type Ticket = tokio::task::JoinHandle<u64>;
    fn start() -> Self {
        Self(
            tokio::runtime::Builder::new_current_thread()
                .max_blocking_threads(WORKERS)
                .thread_name("bench-tokio")
                .build()
                .expect("cannot build the tokio runtime"),
        )
    }
    fn submit(&self, v: u64) -> Self::Ticket {
        self.0.spawn_blocking(move || v)
    }
    fn result(&self, ticket: Self::Ticket) -> u64 {
        self.0
            .block_on(ticket)
            .expect("tokio: the blocking task failed")
    }
}

/// One submit, then its result.
struct RoundTrip<P: Pool>(P);

impl<P: Pool> Played for RoundTrip<P> {
    fn play(&mut self, iters: u64, calls: Option<&mut Recorder>) -> Duration {
        let mut laps = Laps::start(calls);
        for i in 0..iters {
            let ticket = self.0.submit(black_box(i));
            black_box(self.0.result(ticket));
            laps.lap();
        }
        laps.total()
    }
}

/// [`TASKS`] submits, then every result (one operation = one batch; see [`per_task`]).
struct Throughput<P: Pool> {
    pool: P,
    tickets: Vec<P::Ticket>,
}

impl<P: Pool> Batch for Throughput<P> {
    fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            self.tickets
                .extend((0..TASKS as u64).map(|i| self.pool.submit(i)));
            let mut sum = 0u64;
            for ticket in self.tickets.drain(..) {
                sum += self.pool.result(ticket);
            }
            assert_eq!(
                sum,
                (TASKS as u64 - 1) * TASKS as u64 / 2,
                "a result was lost"
            );
        }
        start.elapsed()
    }
}

/// Ours through `map_with` (one deadline for the batch): [`TASKS`] inputs, results in order.
struct MapThroughput(ThreadPool);

impl Batch for MapThroughput {
    fn run(&mut self, iters: u64) -> Duration {
        let options = MapOptions::new().timeout(RESULT_LIMIT);
        let start = Instant::now();
        for _ in 0..iters {
            let sum: u64 = self
                .0
                .map_with(|i| i, 0..TASKS as u64, options)
                .map(|r| r.expect("ours/map: a task failed or timed out"))
                .sum();
            assert_eq!(
                sum,
                (TASKS as u64 - 1) * TASKS as u64 / 2,
                "a result was lost"
            );
        }
        start.elapsed()
    }
}

fn round_trip<P: Pool>(name: &'static str, side: Side) -> Contender {
    Contender::new(name, side, || Box::new(RoundTrip(P::start())))
}

fn throughput<P: Pool>(name: &'static str, side: Side) -> Contender {
    Contender::new(name, side, || {
        Box::new(Throughput {
            pool: P::start(),
            tickets: Vec::with_capacity(TASKS),
        })
    })
}

/// `pool/round_trip`, ours first.
pub fn round_trip_scenario() -> Scenario {
    Scenario {
        name: ROUND_TRIP,
        contenders: vec![
            round_trip::<Ours>("ours/submit", Side::Ours),
            round_trip::<Rayon>("rayon", Side::Peer),
            round_trip::<Threadpool>("threadpool", Side::Peer),
            round_trip::<Tokio>("tokio", Side::Peer),
        ],
    }
}

/// `pool/throughput_100k`, ours first (one operation = one batch of [`TASKS`]; see
/// [`per_task`]).
pub fn throughput_scenario() -> Scenario {
    Scenario {
        name: THROUGHPUT,
        contenders: vec![
            throughput::<Ours>("ours/submit", Side::Ours),
            Contender::new("ours/map", Side::Ours, || {
                Box::new(MapThroughput(Ours::start().0))
            }),
            throughput::<Rayon>("rayon", Side::Peer),
            throughput::<Threadpool>("threadpool", Side::Peer),
            throughput::<Tokio>("tokio", Side::Peer),
        ],
    }
}

/// Turns per-batch figures into per-task ones.
pub fn per_task(measured: Vec<Measured>) -> Vec<Measured> {
    crate::measure::scale(measured, 1.0 / TASKS as f64)
}

/// The CPU an idle pool uses.
#[derive(Debug, Clone, Copy)]
pub struct IdleCpu {
    /// How long the pool sat idle before the window opened.
    pub settle: Duration,
    /// The window.
    pub window: Duration,
    /// Workers the pool had started.
    pub workers: usize,
    /// The process's CPU time over the window.
    pub used: CpuTime,
}

impl IdleCpu {
    /// CPU used over the window, in percent of one CPU (from the precise figure).
    pub fn percent(&self) -> f64 {
        100.0 * self.used.precise.as_secs_f64() / self.window.as_secs_f64()
    }

    /// The same from `/proc/self/stat`'s clock ticks (coarse: one tick is 10 ms at 100 Hz).
    pub fn percent_from_ticks(&self) -> f64 {
        let seconds = self.used.ticks as f64 / procfs::ticks_per_second() as f64;
        100.0 * seconds / self.window.as_secs_f64()
    }
}

/// Starts both workers of a 2-worker pool (10,000 no-op tasks), lets it sit idle for
/// `settle`, then reads the whole process's CPU time (`/proc/self/stat` utime + stime, and
/// `getrusage`) over a `window` in which this thread sleeps. Call it while no other thread of
/// the process is busy. `None` without `/proc`.
pub fn idle_cpu(settle: Duration, window: Duration) -> Option<IdleCpu> {
    let pool = ThreadPool::builder()
        .max_workers(WORKERS)
        .thread_name_prefix("idle-cpu")
        .build()
        .ok()?;
    let futures: Vec<_> = (0..10_000u64)
        .map(|i| pool.submit(move || black_box(i)))
        .collect::<Result<_, _>>()
        .ok()?;
    for future in futures {
        future.result_timeout(RESULT_LIMIT).ok()?;
    }
    let workers = pool.spawned_workers();
    std::thread::sleep(settle);
    let before = CpuTime::now()?;
    std::thread::sleep(window);
    let used = CpuTime::now()?.since(&before);
    drop(pool);
    Some(IdleCpu {
        settle,
        window,
        workers,
        used,
    })
}
