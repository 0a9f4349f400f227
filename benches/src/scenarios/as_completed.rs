//! `as_completed`: iterate over 100,000 futures that are all done already; the figure is
//! nanoseconds per future (the whole call, collecting and de-duplicating included, divided by
//! 100,000). Peer: CPython's `concurrent.futures.as_completed` (`python/peers.py`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use concur_core::Future;

use crate::contender::{Batch, Contender, Scenario, Side};
use crate::measure::Measured;

/// The scenario's name.
pub const NAME: &str = "as_completed";

/// How many done futures one call iterates over.
pub const FUTURES: usize = 100_000;

struct Ours {
    futures: Vec<Future<u64>>,
}

impl Batch for Ours {
    fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            let mut yielded = 0usize;
            for future in concur_core::as_completed(&self.futures, None) {
                black_box(future.expect("as_completed: no deadline was given"));
                yielded += 1;
            }
            assert_eq!(yielded, self.futures.len(), "as_completed lost a future");
        }
        start.elapsed()
    }
}

/// `n` futures, each already finished.
pub fn done_futures(n: usize) -> Vec<Future<u64>> {
    (0..n as u64)
        .map(|i| {
            let (promise, future) = concur_core::promise();
            promise.set_result(i).expect("a fresh promise is pending");
            future
        })
        .collect()
}

/// The scenario over `n` done futures (one operation = one whole call; see [`per_future`]).
pub fn scenario(n: usize) -> Scenario {
    Scenario {
        name: NAME,
        contenders: vec![Contender::new("ours/as_completed", Side::Ours, move || {
            Box::new(Ours {
                futures: done_futures(n),
            })
        })],
    }
}

/// Turns per-call figures into per-future ones.
pub fn per_future(measured: Vec<Measured>, n: usize) -> Vec<Measured> {
    crate::measure::scale(measured, 1.0 / n as f64)
}
