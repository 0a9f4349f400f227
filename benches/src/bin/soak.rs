//! Soak run (issue 7, DESIGN §7): mixes, at random, core futures with waiters, timeouts and
//! cancels; thread-pool submits, cancels, panics and shutdowns; process-pool tasks with
//! occasional worker kills. At the end it prints the counts and the invariant checks and exits
//! non-zero on a lost future or a leak (file descriptors, threads, child processes). A watchdog
//! aborts the run if no future resolves for 30 s.
//!
//! `cargo run --release -p concur-benches --bin soak -- --seconds N [--seed S]`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use concur_core::{Error, Future, ReturnWhen, SubmitError, as_completed, promise, wait};
use concur_pool::ThreadPool;
use concur_process::{ExitStatus, ProcessPool, TaskPanicked, WorkerDied};

concur_process::task! {
    /// A little arithmetic in a worker process.
    fn mix(x: u64) -> u64 { x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 7 }
    /// A task that panics.
    fn explode(_x: u64) -> u64 { panic!("{}", PLANTED) }
}

/// The payload of every panic the soak plants; the panic hook stays quiet about it.
const PLANTED: &str = "soak: planted panic";

/// How long without a resolved future before the watchdog calls it a hang.
const HANG: Duration = Duration::from_secs(30);
/// How long any one future may take to resolve before it counts as lost.
const RESOLVE: Duration = Duration::from_secs(60);

/// Futures resolved so far (the watchdog's progress signal).
static PROGRESS: AtomicU64 = AtomicU64::new(0);

#[derive(Default, Debug, Clone, Copy)]
struct Counts {
    submitted: u64,
    succeeded: u64,
    failed: u64,
    cancelled: u64,
    lost: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.submitted += other.submitted;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.cancelled += other.cancelled;
        self.lost += other.lost;
    }

    /// Resolves `f` (bounded) and counts it; `check` judges a value or a failure.
    fn settle<T>(&mut self, f: &Future<T>, check: impl FnOnce(Result<&T, &Error>) -> bool) {
        if !f.wait_timeout(RESOLVE) {
            self.lost += 1;
            eprintln!("LOST: a future did not resolve within {RESOLVE:?}");
            return;
        }
        // ORDERING: a progress counter read by the watchdog; nothing is published through it.
        PROGRESS.fetch_add(1, Ordering::Relaxed);
        let outcome = f.try_result().expect("done");
        let ok = match &outcome {
            Ok(v) => {
                self.succeeded += 1;
                check(Ok(v))
            }
            Err(Error::Cancelled) => {
                self.cancelled += 1;
                true
            }
            Err(e @ Error::Failed(_)) => {
                self.failed += 1;
                check(Err(e))
            }
            Err(_) => false,
        };
        if !ok || f.has_waiters() {
            self.lost += 1;
            eprintln!("WRONG: outcome {:?}", outcome.as_ref().err());
        }
    }
}

/// A xorshift generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn planted(failure: &concur_core::Failure) -> bool {
    failure.panic_message() == Some(PLANTED)
}

/// Core futures: a completer thread finishes them in random ways while this thread waits on
/// them with `wait`, `as_completed`, `result_timeout`, cancels and callbacks.
fn core_round(rng: &mut Rng) -> Counts {
    let n = 1 + rng.below(64) as usize;
    let mut promises = Vec::new();
    let mut futures = Vec::new();
    let callbacks = Arc::new(AtomicU64::new(0));
    for _ in 0..n {
        let (p, f) = promise::<u64>();
        let c = callbacks.clone();
        // ORDERING: read after the completer was joined.
        f.add_done_callback(move |_| {
            c.fetch_add(1, Ordering::Relaxed);
        });
        promises.push(p);
        futures.push(f);
    }
    let seed = rng.next();
    let start = Arc::new(Barrier::new(2));
    let completer = {
        let start = start.clone();
        std::thread::spawn(move || {
            let mut rng = Rng(seed | 1);
            start.wait();
            for (i, p) in promises.into_iter().enumerate() {
                if rng.below(4) == 0 {
                    std::thread::yield_now();
                }
                match rng.below(8) {
                    0 => drop(p),
                    1 => drop(p.set_error(std::fmt::Error)),
                    _ => drop(p.set_result(i as u64)),
                }
            }
        })
    };
    start.wait();
    for _ in 0..rng.below(6) {
        match rng.below(4) {
            0 => {
                let _ = wait(
                    &futures,
                    Some(Duration::from_micros(rng.below(200))),
                    ReturnWhen::FirstCompleted,
                );
            }
            1 => {
                let _ = wait(
                    &futures,
                    Some(Duration::from_micros(rng.below(500))),
                    ReturnWhen::AllCompleted,
                );
            }
            2 => {
                let take = rng.below(n as u64 + 1) as usize;
                let timeout = Some(Duration::from_micros(rng.below(300)));
                for f in as_completed(&futures, timeout).take(take).flatten() {
                    assert!(f.is_done());
                }
            }
            _ => {
                let f = &futures[rng.below(n as u64) as usize];
                if rng.below(2) == 0 {
                    f.cancel();
                } else {
                    let _ = f.result_timeout(Duration::from_micros(rng.below(100)));
                }
            }
        }
    }
    let _ = completer.join();
    let mut counts = Counts {
        submitted: n as u64,
        ..Counts::default()
    };
    for (i, f) in futures.iter().enumerate() {
        counts.settle(f, |outcome| match outcome {
            Ok(v) => *v == i as u64,
            Err(e) => e.failure().is_some(),
        });
    }
    // ORDERING: the completer was joined; cancels ran callbacks on this thread.
    if callbacks.load(Ordering::Relaxed) != n as u64 {
        eprintln!(
            "WRONG: {} callbacks ran for {n} futures",
            callbacks.load(Ordering::Relaxed)
        );
        counts.lost += 1;
    }
    counts
}

/// A thread pool per round: submits (some panicking), cancels, sometimes a racing
/// `shutdown(cancel_futures)` from another thread; then dropped.
fn pool_round(rng: &mut Rng) -> Counts {
    let pool = ThreadPool::builder()
        .max_workers(1 + rng.below(4) as usize)
        .thread_name_prefix("soak")
        .build()
        .expect("pool");
    let n = 1 + rng.below(2_000);
    let shutdown_at = if rng.below(3) == 0 {
        Some(rng.below(n))
    } else {
        None
    };
    let mut futures = Vec::new();
    let mut refused = 0u64;
    let mut shutter = None;
    for i in 0..n {
        if Some(i) == shutdown_at {
            let (p, cancel) = (pool.clone(), rng.below(2) == 0);
            shutter = Some(std::thread::spawn(move || p.shutdown(rng_bool(i), cancel)));
        }
        let panics = rng.below(50) == 0;
        match pool.submit(move || {
            if panics {
                std::panic::panic_any(PLANTED);
            }
            i * 2
        }) {
            Ok(f) => {
                if rng.below(20) == 0 {
                    f.cancel();
                }
                futures.push((i, panics, f));
            }
            Err(SubmitError::Shutdown) => refused += 1,
            Err(e) => panic!("unexpected submit error {e:?}"),
        }
    }
    if let Some(s) = shutter {
        let _ = s.join();
    }
    drop(pool);
    let mut counts = Counts {
        submitted: futures.len() as u64,
        ..Counts::default()
    };
    for (i, panics, f) in &futures {
        counts.settle(f, |outcome| match outcome {
            Ok(v) => !panics && *v == i * 2,
            Err(e) => *panics && e.failure().is_some_and(planted),
        });
    }
    assert_eq!(futures.len() as u64 + refused, n);
    counts
}

fn rng_bool(i: u64) -> bool {
    i % 2 == 0
}

/// Tasks on the long-lived process pool; now and then a worker is SIGKILLed mid-way.
fn process_round(rng: &mut Rng, pool: &ProcessPool, kills: &mut u64) -> Counts {
    let n = 1 + rng.below(200);
    let mut futures = Vec::new();
    for i in 0..n {
        let explodes = rng.below(40) == 0;
        let task = if explodes { explode } else { mix };
        futures.push((i, explodes, pool.submit(task, i).expect("process submit")));
    }
    if rng.below(4) == 0 {
        let pids = pool.worker_pids();
        if !pids.is_empty() {
            let pid = pids[rng.below(pids.len() as u64) as usize];
            // SAFETY: kill(2) of a worker of ours that the pool has not reaped yet.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            *kills += 1;
        }
    }
    let mut counts = Counts {
        submitted: n,
        ..Counts::default()
    };
    for (i, explodes, f) in &futures {
        counts.settle(f, |outcome| match outcome {
            Ok(v) => !explodes && *v == mix.call(*i),
            Err(e) => {
                let Some(failure) = e.failure() else {
                    return false;
                };
                let killed = failure
                    .downcast_ref::<WorkerDied>()
                    .is_some_and(|d| d.status == ExitStatus::Signaled(libc::SIGKILL));
                killed || (*explodes && failure.downcast_ref::<TaskPanicked>().is_some())
            }
        });
    }
    counts
}

fn count_dir(path: &str) -> usize {
    std::fs::read_dir(path).map_or(0, |d| d.count())
}

/// Child processes of this process (live or zombie), from /proc.
fn children() -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_owned));
        if ppid.as_deref() == Some(me.as_str()) {
            found.push(pid);
        }
    }
    found
}

fn main() {
    concur_process::worker_main(); // in a worker process: serves tasks, never returns

    let mut seconds = 10u64;
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse().ok());
        match (arg.as_str(), value) {
            ("--seconds", Some(v)) => seconds = v,
            ("--seed", Some(v)) => seed = v,
            _ => {
                eprintln!("usage: soak [--seconds N] [--seed S]");
                std::process::exit(2);
            }
        }
    }
    let seed = seed | 1;
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&PLANTED) {
            default_hook(info);
        }
    }));

    let fds_before = count_dir("/proc/self/fd");
    let threads_before = count_dir("/proc/self/task");

    // The watchdog: a run with no resolved future for HANG is a hang.
    let stop = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut last = (0, Instant::now());
            // ORDERING: a plain stop flag; PROGRESS is a statistic.
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let now = PROGRESS.load(Ordering::Relaxed);
                if now != last.0 {
                    last = (now, Instant::now());
                } else if last.1.elapsed() > HANG {
                    eprintln!("HANG: no future resolved for {HANG:?} (after {now}); aborting");
                    std::process::abort();
                }
            }
        })
    };

    println!("soak: {seconds} s, seed {seed}");
    let mut rng = Rng(seed);
    let process_pool = ProcessPool::builder()
        .max_workers(2)
        .build()
        .expect("process pool");
    let (mut core, mut pool, mut process) =
        (Counts::default(), Counts::default(), Counts::default());
    let (mut rounds, mut kills) = ([0u64; 3], 0u64);
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        match rng.below(3) {
            0 => {
                core.add(core_round(&mut rng));
                rounds[0] += 1;
            }
            1 => {
                pool.add(pool_round(&mut rng));
                rounds[1] += 1;
            }
            _ => {
                process.add(process_round(&mut rng, &process_pool, &mut kills));
                rounds[2] += 1;
            }
        }
    }
    drop(process_pool);
    // ORDERING: see the watchdog.
    stop.store(true, Ordering::Relaxed);
    let _ = watchdog.join();

    // Leaks: joined threads and reaped children may linger in /proc for a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut fds, mut threads, mut kids);
    loop {
        fds = count_dir("/proc/self/fd");
        threads = count_dir("/proc/self/task");
        kids = children();
        if (fds <= fds_before && threads <= threads_before && kids.is_empty())
            || Instant::now() > deadline
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut total = Counts::default();
    for (name, c, r) in [
        ("core", core, rounds[0]),
        ("thread pool", pool, rounds[1]),
        ("process pool", process, rounds[2]),
    ] {
        println!(
            "{name:>12}: {r} rounds, submitted {}, succeeded {}, failed {}, cancelled {}, lost {}",
            c.submitted, c.succeeded, c.failed, c.cancelled, c.lost
        );
        total.add(c);
    }
    println!("process workers killed: {kills}");
    let checks = [
        (
            "every future resolved as expected (lost = 0)",
            total.lost == 0,
        ),
        (
            "submitted = succeeded + failed + cancelled",
            total.submitted == total.succeeded + total.failed + total.cancelled + total.lost,
        ),
        ("no file descriptor leaked", fds <= fds_before),
        ("no thread left behind", threads <= threads_before),
        ("no child process left behind", kids.is_empty()),
    ];
    println!(
        "total: submitted {}, succeeded {}, failed {}, cancelled {}, lost {}; fds {fds_before} -> {fds}, threads {threads_before} -> {threads}, children {kids:?}",
        total.submitted, total.succeeded, total.failed, total.cancelled, total.lost
    );
    let mut ok = true;
    for (what, held) in checks {
        println!("  [{}] {what}", if held { "ok" } else { "FAIL" });
        ok &= held;
    }
    if !ok {
        std::process::exit(1);
    }
}
