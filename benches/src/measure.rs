//! Interleaved measurement: every contender of a scenario takes one timed slice per round, in
//! a rotating order, so slow drifts of the machine (other builds, frequency changes) hit ours
//! and the peers alike; each contender's figure is the median of its slices.

use std::time::Duration;

use crate::contender::{Batch, Scenario, Side};
use crate::latency::{Distribution, Recorder};

/// How long to measure.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Rounds; each contender gets one slice per round.
    pub rounds: usize,
    /// Target length of one slice.
    pub slice: Duration,
}

impl Plan {
    /// The default, for numbers to quote.
    pub const FULL: Plan = Plan {
        rounds: 31,
        slice: Duration::from_millis(40),
    };
    /// A smoke run (CI): same shape, fewer and shorter slices. The whole `compare --quick`
    /// takes about 30 s on 2 cores (the CPython peer included), the full plan about 2 minutes.
    pub const QUICK: Plan = Plan {
        rounds: 11,
        slice: Duration::from_millis(15),
    };
}

impl Plan {
    /// The same rounds with slices `divisor` times shorter: for a scenario whose untimed work
    /// between operations (set-up, waiting for a partner to fall asleep) costs several times
    /// the timed part, so that a slice's wall time stays near the plan's.
    pub fn shorter_slices(self, divisor: u32) -> Plan {
        Plan {
            slice: self.slice / divisor.max(1),
            ..self
        }
    }
}

/// One contender's result.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The contender's name.
    pub name: String,
    /// Ours or a peer.
    pub side: Side,
    /// Median nanoseconds per operation over the rounds.
    pub ns: f64,
    /// Lowest and highest slice, nanoseconds per operation.
    pub range: (f64, f64),
    /// Each round's slice, nanoseconds per operation, in round order (empty for figures that
    /// came from elsewhere: a child process, the CPython script).
    pub rounds: Vec<f64>,
    /// Every timed operation of those slices, for contenders that time single operations.
    pub latency: Option<Distribution>,
}

impl Measured {
    /// The median over rounds of `self`'s slice divided by `other`'s slice of the same round
    /// (both measured in the same run), and in how many rounds `self` was faster: a ratio
    /// that a slow drift of the machine's load, hitting both alike within a round, cannot
    /// move. `None` unless both have the same rounds.
    pub fn paired_ratio(&self, other: &Measured) -> Option<(f64, usize, usize)> {
        if self.rounds.is_empty() || self.rounds.len() != other.rounds.len() {
            return None;
        }
        let mut ratios: Vec<f64> = self
            .rounds
            .iter()
            .zip(&other.rounds)
            .map(|(a, b)| a / b)
            .collect();
        let faster = ratios.iter().filter(|r| **r < 1.0).count();
        ratios.sort_by(f64::total_cmp);
        Some((median(&ratios), faster, ratios.len()))
    }
}

/// Measures every contender of `scenario` under `plan`. A contender that times single
/// operations ([`Batch::run_recorded`]) records every operation of its slices too: its
/// distribution comes from the very calls its median does.
pub fn measure(scenario: &Scenario, plan: Plan) -> Vec<Measured> {
    let mut runners: Vec<Box<dyn Batch>> = scenario.contenders.iter().map(|c| c.start()).collect();
    let iters: Vec<u64> = runners
        .iter_mut()
        .map(|runner| calibrate(runner.as_mut(), plan.slice))
        .collect();
    let n = runners.len();
    let mut samples = vec![Vec::with_capacity(plan.rounds); n];
    let mut recorders: Vec<Option<Recorder>> = vec![Some(Recorder::new()); n];
    for round in 0..plan.rounds {
        for k in 0..n {
            let i = (k + round) % n;
            let elapsed = match recorders[i].as_mut() {
                Some(recorder) => runners[i].run_recorded(iters[i], recorder),
                None => None,
            };
            let elapsed = elapsed.unwrap_or_else(|| {
                recorders[i] = None;
                runners[i].run(iters[i])
            });
            samples[i].push(elapsed.as_nanos() as f64 / iters[i] as f64);
        }
    }
    drop(runners);
    scenario
        .contenders
        .iter()
        .zip(samples)
        .zip(recorders)
        .map(|((contender, rounds), recorder)| {
            let mut s = rounds.clone();
            s.sort_by(f64::total_cmp);
            Measured {
                name: contender.name.to_string(),
                side: contender.side,
                ns: median(&s),
                range: (s[0], s[s.len() - 1]),
                rounds,
                latency: recorder.map(|r| r.finish()),
            }
        })
        .collect()
}

/// Finds how many operations fill `slice` (warming the contender up on the way). The very
/// first operation (which may start a pool's workers: a process pool's two spawns) is left out,
/// else it could make every slice a handful of operations, and the distribution of single
/// calls a few samples.
fn calibrate(runner: &mut dyn Batch, slice: Duration) -> u64 {
    runner.run(1);
    let mut iters = 1u64;
    loop {
        let elapsed = runner.run(iters);
        if elapsed >= slice / 4 || iters >= 1 << 40 {
            let per_op = elapsed.as_secs_f64() / iters as f64;
            return ((slice.as_secs_f64() / per_op.max(1e-12)) as u64).max(1);
        }
        iters *= 2;
    }
}

/// The median of sorted, non-empty `s`.
fn median(s: &[f64]) -> f64 {
    let mid = s.len() / 2;
    if s.len() % 2 == 1 {
        s[mid]
    } else {
        (s[mid - 1] + s[mid]) / 2.0
    }
}

/// Multiplies every figure by `factor` (per call to per item, say).
pub fn scale(measured: Vec<Measured>, factor: f64) -> Vec<Measured> {
    measured
        .into_iter()
        .map(|m| Measured {
            ns: m.ns * factor,
            range: (m.range.0 * factor, m.range.1 * factor),
            rounds: m.rounds.iter().map(|r| r * factor).collect(),
            latency: None,
            ..m
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(rounds: &[f64]) -> Measured {
        Measured {
            name: "x".into(),
            side: Side::Ours,
            ns: 0.0,
            range: (0.0, 0.0),
            rounds: rounds.to_vec(),
            latency: None,
        }
    }

    #[test]
    fn paired_ratio_compares_round_by_round() {
        // A drift that doubles both in the later rounds leaves the paired ratio alone.
        let ours = measured(&[10.0, 10.0, 20.0, 20.0, 20.0]);
        let peer = measured(&[12.5, 12.5, 25.0, 25.0, 25.0]);
        assert_eq!(ours.paired_ratio(&peer), Some((0.8, 5, 5)));
        assert_eq!(ours.paired_ratio(&measured(&[])), None);
    }
}
