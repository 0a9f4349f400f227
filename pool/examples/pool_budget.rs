//! Quick check of the thread pool's DESIGN §6 budgets on this machine (the benches crate
//! measures them properly, side by side with peers):
//!
//! - throughput: 100,000 no-op submits, then every result, on 2 workers (tasks/s);
//! - round trip: one `submit(..).result()` at a time on 1 worker (ns per task).
//!
//! Run: `cargo run --release -p concur-pool --example pool_budget`

use std::time::{Duration, Instant};

use concur_pool::ThreadPool;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn throughput(pool: &ThreadPool, tasks: usize) -> f64 {
    let start = Instant::now();
    let futures: Vec<_> = (0..tasks).map(|_| pool.submit(|| ()).unwrap()).collect();
    for f in &futures {
        f.result().unwrap();
    }
    let elapsed = start.elapsed();
    drop(futures);
    tasks as f64 / elapsed.as_secs_f64()
}

/// The submitting thread's two halves, timed apart: queueing `tasks` while the only worker is
/// held, then reading every result; and between them the worker draining the queue alone.
fn phases(tasks: usize, workers: usize) -> (f64, f64, f64) {
    let pool = ThreadPool::new(workers).unwrap();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(workers + 1));
    let gates: Vec<_> = (0..workers)
        .map(|_| {
            let barrier = barrier.clone();
            pool.submit(move || {
                barrier.wait();
            })
            .unwrap()
        })
        .collect();
    let start = Instant::now();
    let futures: Vec<_> = (0..tasks).map(|_| pool.submit(|| ()).unwrap()).collect();
    let submit = start.elapsed().as_nanos() as f64 / tasks as f64;
    let start = Instant::now();
    barrier.wait();
    gates.iter().for_each(|g| g.wait().then_some(()).unwrap());
    futures.last().unwrap().wait();
    let drain = start.elapsed().as_nanos() as f64 / tasks as f64;
    for f in &futures {
        f.wait();
    }
    let start = Instant::now();
    for f in futures {
        f.result().unwrap();
    }
    let results = start.elapsed().as_nanos() as f64 / tasks as f64;
    (submit, drain, results)
}

fn round_trip(pool: &ThreadPool, tasks: usize) -> Duration {
    let start = Instant::now();
    for _ in 0..tasks {
        pool.submit(|| ()).unwrap().result().unwrap();
    }
    start.elapsed() / tasks as u32
}

fn main() {
    let pool = ThreadPool::new(2).unwrap();
    throughput(&pool, 100_000); // start both workers, warm the allocator
    let runs: Vec<f64> = (0..15).map(|_| throughput(&pool, 100_000)).collect();
    println!(
        "throughput, 100k no-op submits then results, 2 workers: median {:.2} M tasks/s (min {:.2}, max {:.2})",
        median(runs.clone()) / 1e6,
        runs.iter().copied().fold(f64::INFINITY, f64::min) / 1e6,
        runs.iter().copied().fold(0.0, f64::max) / 1e6,
    );
    drop(pool);

    for workers in [1, 2] {
        let (submit, drain, results) = phases(100_000, workers);
        println!(
            "one phase at a time: submit {submit:.0} ns, {workers} worker(s) drain {drain:.0} ns, \
             result + drop {results:.0} ns per task"
        );
    }

    let pool = ThreadPool::new(1).unwrap();
    round_trip(&pool, 10_000);
    let trips: Vec<f64> = (0..15)
        .map(|_| round_trip(&pool, 20_000).as_nanos() as f64)
        .collect();
    println!(
        "round trip, submit(..).result() one at a time, 1 worker: median {:.0} ns (min {:.0})",
        median(trips.clone()),
        trips.iter().copied().fold(f64::INFINITY, f64::min),
    );
}
