//! Timing in rounds, shared by the measuring examples.

use std::time::{Duration, Instant};

/// Calls `once` `per_round` times to warm up, then `rounds` rounds of `per_round` calls; the
/// mean time of a call in each round.
pub fn round_means(rounds: usize, per_round: u32, mut once: impl FnMut()) -> Vec<Duration> {
    for _ in 0..per_round {
        once();
    }
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per_round {
                once();
            }
            start.elapsed() / per_round
        })
        .collect()
}
