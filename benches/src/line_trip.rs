//! The machine's cache-line round trip between its two CPUs: two threads, one pinned to each,
//! hand one atomic word back and forth. Every cross-thread hand-off in the pool and pingpong
//! scenarios costs a few of these, and on this VM the figure moves between runs, for reasons
//! outside the guest (where the host runs the two virtual CPUs, and what else it runs there):
//! 60-120 ns usually, 300-700 ns in some runs (a probe every 30 s: 5 of 25), and a pool round
//! trip measured just before such a probe took 0.7-2.9 µs instead of 0.3-0.5 µs. `compare`
//! prints it at the start and the end of a run, so a reader can tell such a run from a
//! regression.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::affinity;

/// Hand-offs timed (each way counts one; a round trip is two).
const ROUND_TRIPS: u64 = 100_000;

/// The mean round trip of one cache line between the first two allowed CPUs, or `None` with
/// fewer than two CPUs (or no pinning).
pub fn measure() -> Option<Duration> {
    let (a, b) = affinity::two_allowed_cpus()?;
    let word = Arc::new(AtomicU64::new(0));
    let partner = {
        let word = Arc::clone(&word);
        std::thread::Builder::new()
            .name("line-trip".into())
            .spawn(move || {
                let _pin = affinity::pin_current_thread(b);
                // Odd values are the partner's to answer; it stops after the last.
                let mut expect = 1;
                while expect < 2 * ROUND_TRIPS {
                    // ORDERING: Acquire/Release: each hand-off publishes the previous one.
                    while word.load(Ordering::Acquire) != expect {
                        std::hint::spin_loop();
                    }
                    word.store(expect + 1, Ordering::Release);
                    expect += 2;
                }
            })
            .ok()?
    };
    let _pin = affinity::pin_current_thread(a);
    let started = Instant::now();
    let mut sent = 1;
    while sent < 2 * ROUND_TRIPS {
        // ORDERING: as in the partner.
        word.store(sent, Ordering::Release);
        while word.load(Ordering::Acquire) != sent + 1 {
            std::hint::spin_loop();
        }
        sent += 2;
    }
    let elapsed = started.elapsed();
    partner.join().ok()?;
    Some(elapsed / ROUND_TRIPS as u32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_round_trip_is_measured_wherever_two_cpus_are_allowed() {
        let cpus = crate::affinity::allowed_cpu_count().unwrap_or(1);
        match super::measure() {
            Some(trip) => {
                assert!(cpus >= 2);
                assert!(trip > std::time::Duration::ZERO);
            }
            None => assert!(cpus < 2),
        }
    }
}
