//! Rough measurements of the process pool against its budgets (DESIGN §6, issue 5):
//! start-up to first result, no-op round trip next to a raw pipe round trip, `map` throughput
//! at chunksize 1 and 1000, and SIGKILL-to-error latency.
//!
//! ```text
//! cargo run --release -p concur-process --example budgets
//! ```
//!
//! Start-up and kill latency are medians, round trips the best of ten rounds, on whatever
//! machine this is; the criterion suites in `benches` are the reference.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use concur_process::{MapOptions, ProcessPool};

#[path = "common/rounds.rs"]
mod rounds;
use rounds::round_means;

mod tasks {
    concur_process::task! {
        pub fn noop(x: u64) -> u64 { x }
        pub fn hang() { loop { std::thread::park(); } }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Start two workers and get one result, from nothing.
fn startup() -> Duration {
    let runs: Vec<Duration> = (0..20)
        .map(|_| {
            let start = Instant::now();
            let pool = ProcessPool::builder().max_workers(2).build().unwrap();
            let a = pool.submit(tasks::noop, 1).unwrap();
            let b = pool.submit(tasks::noop, 2).unwrap();
            a.wait();
            let elapsed = start.elapsed();
            b.wait();
            drop(pool);
            elapsed
        })
        .collect();
    median(runs)
}

/// Mean of the fastest of several rounds: the machine is shared, so this is what the code can
/// do rather than what the neighbours let it do.
fn best_round(rounds: usize, per_round: u32, once: impl FnMut()) -> Duration {
    round_means(rounds, per_round, once)
        .into_iter()
        .min()
        .unwrap()
}

fn round_trip() -> Duration {
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    best_round(10, 2000, || {
        let _ = pool.submit(tasks::noop, 1).unwrap().wait();
    })
}

/// A 64-byte frame to a child that echoes it, and back.
fn raw_round_trip() -> Duration {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("BUDGETS_ECHO", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to = child.stdin.take().unwrap();
    let mut from = child.stdout.take().unwrap();
    let mut buf = [7u8; 64];
    let per = best_round(10, 2000, || {
        to.write_all(&buf).unwrap();
        from.read_exact(&mut buf).unwrap();
    });
    drop(to);
    child.wait().unwrap();
    per
}

fn echo() -> ! {
    let mut buf = [0u8; 64];
    let (mut stdin, mut stdout) = (std::io::stdin().lock(), std::io::stdout().lock());
    while stdin.read_exact(&mut buf).is_ok() {
        stdout.write_all(&buf).unwrap();
        stdout.flush().unwrap();
    }
    std::process::exit(0)
}

fn map_rate(chunksize: usize, items: u64) -> f64 {
    let pool = ProcessPool::builder().max_workers(2).build().unwrap();
    let options = MapOptions::new().chunksize(chunksize);
    // Warm the workers up.
    let _ = pool.map_with(tasks::noop, 0..1000u64, options).count();
    let start = Instant::now();
    let sum: u64 = pool
        .map_with(tasks::noop, 0..items, options)
        .map(Result::unwrap)
        .sum();
    let elapsed = start.elapsed();
    assert_eq!(sum, items * (items - 1) / 2);
    items as f64 / elapsed.as_secs_f64()
}

fn kill_to_error() -> Duration {
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    let runs: Vec<Duration> = (0..20)
        .map(|_| {
            // A ready worker first (the last run killed its predecessor): a call sent to a
            // worker still starting counts as running, and killing that worker requeues it.
            assert_eq!(*pool.submit(tasks::noop, 0).unwrap().result().unwrap(), 0);
            let f = pool.submit(tasks::hang, ()).unwrap();
            while !(f.is_running() && pool.worker_pids().len() == 1) {
                std::thread::yield_now();
            }
            // Give the worker time to pick the call up, so the kill lands mid-task.
            std::thread::sleep(Duration::from_millis(5));
            let pid = pool.worker_pids()[0];
            let start = Instant::now();
            // SAFETY: kill(2) of the pool's live worker.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            f.wait();
            start.elapsed()
        })
        .collect();
    median(runs)
}

fn main() {
    concur_process::worker_main();
    if std::env::var_os("BUDGETS_ECHO").is_some() {
        echo();
    }
    println!("start-up, 2 workers to first result: {:?}", startup());
    let ballast: Vec<u8> = vec![1; 256 << 20];
    println!(
        "start-up with 256 MiB touched in the parent: {:?}",
        startup()
    );
    drop(ballast);
    let pool_rt = round_trip();
    let raw_rt = raw_round_trip();
    println!(
        "no-op round trip: {pool_rt:?}; raw 64-byte pipe round trip: {raw_rt:?} ({:.2}x)",
        pool_rt.as_secs_f64() / raw_rt.as_secs_f64()
    );
    println!("map, chunksize 1: {:.0} items/s", map_rate(1, 200_000));
    println!(
        "map, chunksize 1000: {:.0} items/s",
        map_rate(1000, 20_000_000)
    );
    println!("SIGKILL to WorkerDied: {:?}", kill_to_error());
}
