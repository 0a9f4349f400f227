//! Contenders measured one at a time, in runs: issue 13's own protocol for the pool round
//! trip. Each contender's pool is started, warmed up, timed over a few runs of consecutive
//! calls and dropped before the next contender's pool exists, so no other pool's threads
//! (spinning down, or parked and woken by nothing) share the two CPUs with it; every call of
//! every run is recorded, and each run is reported on its own as well as merged.
//!
//! [`crate::measure`]'s interleaved slices answer "which is faster under the same drift of
//! the machine"; these runs answer "what does one server see, call after call": a block mean
//! there includes the preemption of a slice's end by the next contender's pool waking up,
//! here it does not.

use std::time::Duration;

use crate::contender::Scenario;
use crate::latency::{Distribution, Recorder};
use crate::measure::Measured;

/// How many calls, in what shape.
#[derive(Debug, Clone, Copy)]
pub struct Protocol {
    /// Untimed calls first (the pool's threads started, caches and branch predictors warm).
    pub warm_up: u64,
    /// Timed runs.
    pub runs: usize,
    /// Calls per run.
    pub calls: u64,
    /// Calls per block of the block means.
    pub block: u64,
}

impl Protocol {
    /// The issue's: 2,000 warm-up calls, then 3 runs of 20,000, in blocks of 5,000.
    pub const FULL: Protocol = Protocol {
        warm_up: 2_000,
        runs: 3,
        calls: 20_000,
        block: 5_000,
    };
    /// A tenth of it (CI's smoke run): same shape, runs of 2,000 in blocks of 500.
    pub const QUICK: Protocol = Protocol {
        warm_up: 200,
        runs: 3,
        calls: 2_000,
        block: 500,
    };
}

/// Measures every contender of `scenario` that times single calls, one after the other,
/// under `protocol`. Each [`Measured`] holds the merged distribution of its runs (each run's
/// figures in [`Distribution::runs`]); its median is the median of the runs' mean call.
/// Contenders that do not time single calls are left out.
pub fn measure(scenario: &Scenario, protocol: Protocol) -> Vec<Measured> {
    scenario
        .contenders
        .iter()
        .filter_map(|contender| {
            let mut batch = contender.start();
            batch.run(protocol.warm_up);
            let mut means = Vec::with_capacity(protocol.runs);
            let mut runs = Vec::with_capacity(protocol.runs);
            for _ in 0..protocol.runs {
                let mut recorder = Recorder::with_sizes(protocol.block, protocol.calls);
                let elapsed = batch.run_recorded(protocol.calls, &mut recorder)?;
                means.push(per_call(elapsed, protocol.calls));
                runs.push(recorder.finish());
            }
            drop(batch);
            means.sort_by(f64::total_cmp);
            Some(Measured {
                name: contender.name.to_string(),
                side: contender.side,
                ns: means[means.len() / 2],
                range: (means[0], means[means.len() - 1]),
                // Runs of different contenders are not interleaved: no paired ratios.
                rounds: Vec::new(),
                latency: Distribution::merged(&runs),
            })
        })
        .collect()
}

fn per_call(elapsed: Duration, calls: u64) -> f64 {
    elapsed.as_nanos() as f64 / calls.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contender::{Contender, Played, Side};
    use crate::latency::Laps;

    /// Counts its calls.
    struct Spin {
        calls: u64,
    }

    impl Played for Spin {
        fn play(&mut self, iters: u64, calls: Option<&mut Recorder>) -> Duration {
            let mut laps = Laps::start(calls);
            for _ in 0..iters {
                self.calls += 1;
                std::hint::black_box(self.calls);
                laps.lap();
            }
            laps.total()
        }
    }

    #[test]
    fn every_run_is_recorded_and_merged() {
        let scenario = Scenario {
            name: "test",
            contenders: vec![Contender::new("spin", Side::Ours, || {
                Box::new(Spin { calls: 0 })
            })],
        };
        let protocol = Protocol {
            warm_up: 7,
            runs: 3,
            calls: 40,
            block: 10,
        };
        let measured = measure(&scenario, protocol);
        assert_eq!(measured.len(), 1);
        let d = measured[0].latency.as_ref().expect("a distribution");
        assert_eq!(d.calls(), 120, "warm-up calls are not recorded");
        assert_eq!(d.block_means.len(), 12);
        assert_eq!(d.run_maxes.len(), 3);
        assert_eq!((d.block, d.run), (10, 40));
        assert!(d.runs.iter().all(|&(calls, _)| calls == 40));
        assert!(measured[0].rounds.is_empty());
    }
}
