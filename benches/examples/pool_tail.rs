//! The pool round trip's tail, as issue 13's harness measured it: 2,000 warm-up calls, then
//! runs of 20,000 sequential `submit` + `into_result` on a 2-worker `ThreadPool`, every call
//! timed; prints each run's percentiles, its 5,000-call block means, and its slowest calls
//! (index and latency) for matching against a `perf trace` or `perf sched` recording.
//!
//! ```text
//! cargo build --release -p concur-benches --example pool_tail
//! target/release/examples/pool_tail [RUNS] [rayon]
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use concur_benches::latency::Recorder;
use concur_pool::ThreadPool;

const WARM_UP: u64 = 2_000;
const CALLS: u64 = 20_000;
/// Calls slower than this are listed.
const SLOW: Duration = Duration::from_micros(100);

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(3);
    let rayon = args.next().is_some_and(|a| a == "rayon");
    for run in 0..runs {
        let (recorder, slow) = if rayon { run_rayon() } else { run_ours() };
        let d = recorder.finish();
        let [p50, p90, p99, p999, max] = d.summary();
        let blocks: Vec<String> = d.block_means.iter().map(|m| format!("{m:.0}")).collect();
        println!(
            "run {run} {}: p50 {p50} p90 {p90} p99 {p99} p99.9 {p999} max {max} ns; block means {} ns",
            if rayon { "rayon" } else { "ours" },
            blocks.join(" ")
        );
        for (i, at, latency) in slow.iter().take(20) {
            println!("  slow call {i} at +{at:?}: {latency:?}");
        }
    }
}

type Slow = Vec<(u64, Duration, Duration)>;

fn timed(mut call: impl FnMut(u64)) -> (Recorder, Slow) {
    for i in 0..WARM_UP {
        call(i);
    }
    let mut recorder = Recorder::new();
    let mut slow = Vec::new();
    let start = Instant::now();
    let mut last = start;
    for i in 0..CALLS {
        call(i);
        let now = Instant::now();
        recorder.record(now - last);
        if now - last > SLOW {
            slow.push((i, last - start, now - last));
        }
        last = now;
    }
    (recorder, slow)
}

fn run_ours() -> (Recorder, Slow) {
    let pool = ThreadPool::new(2).expect("pool");
    timed(|i| {
        let future = pool.submit(move || black_box(i)).expect("submit");
        black_box(future.into_result().expect("result"));
    })
}

fn run_rayon() -> (Recorder, Slow) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("rayon");
    timed(|i| {
        let (tx, rx) = oneshot::channel();
        pool.spawn(move || {
            let _ = tx.send(black_box(i));
        });
        black_box(rx.recv().expect("result"));
    })
}
