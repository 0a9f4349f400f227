//! Per-call latency distributions: every timed call of a contender recorded in an HDR
//! histogram (3 significant figures), plus the mean of each block of [`BLOCK`] consecutive
//! calls and the maximum of each run of [`RUN`] consecutive calls.
//!
//! Each call is timed by one `Instant::now()` after it, the previous call's reading being its
//! start (chained readings: one clock read per call, not two). Here `Instant::now` is a vDSO
//! `clock_gettime`, some 20-25 ns, which every contender pays alike inside its slice: small
//! against the microsecond round trips recorded this way.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Calls per block of the block-means figure.
pub const BLOCK: u64 = 5_000;
/// Calls per run of the per-run maximum figure.
pub const RUN: u64 = 20_000;
/// The largest latency the histogram holds (larger ones are recorded as this).
const HIGHEST_NS: u64 = 60_000_000_000;

/// Collects one contender's per-call latencies.
#[derive(Debug, Clone)]
pub struct Recorder {
    histogram: Histogram<u64>,
    block: u64,
    run: u64,
    block_sum: u64,
    block_calls: u64,
    block_means: Vec<f64>,
    run_max: u64,
    run_calls: u64,
    run_maxes: Vec<f64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty recorder of blocks of [`BLOCK`] and runs of [`RUN`] calls.
    pub fn new() -> Self {
        Self::with_sizes(BLOCK, RUN)
    }

    /// An empty recorder of blocks of `block` and runs of `run` calls (each at least 1).
    pub fn with_sizes(block: u64, run: u64) -> Self {
        Self {
            histogram: Histogram::new_with_bounds(1, HIGHEST_NS, 3)
                .expect("valid histogram bounds"),
            block: block.max(1),
            run: run.max(1),
            block_sum: 0,
            block_calls: 0,
            block_means: Vec::new(),
            run_max: 0,
            run_calls: 0,
            run_maxes: Vec::new(),
        }
    }

    /// Records one call's latency.
    pub fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.histogram.saturating_record(ns.clamp(1, HIGHEST_NS));
        self.block_sum = self.block_sum.saturating_add(ns);
        self.block_calls += 1;
        if self.block_calls == self.block {
            self.block_means
                .push(self.block_sum as f64 / self.block_calls as f64);
            self.block_sum = 0;
            self.block_calls = 0;
        }
        self.run_max = self.run_max.max(ns);
        self.run_calls += 1;
        if self.run_calls == self.run {
            self.run_maxes.push(self.run_max as f64);
            self.run_max = 0;
            self.run_calls = 0;
        }
    }

    /// Forgets everything recorded (after warm-up calls).
    pub fn clear(&mut self) {
        *self = Self::with_sizes(self.block, self.run);
    }

    /// The distribution so far (complete blocks and runs only).
    pub fn finish(&self) -> Distribution {
        Distribution {
            histogram: self.histogram.clone(),
            block: self.block,
            run: self.run,
            block_means: self.block_means.clone(),
            run_maxes: self.run_maxes.clone(),
            runs: Vec::new(),
        }
    }
}

/// A batch's clock: [`lap`](Laps::lap) after each operation records it (when recording), and
/// [`total`](Laps::total) is the batch's time. Without a recorder a lap reads no clock.
pub struct Laps<'a> {
    start: Instant,
    last: Instant,
    recorder: Option<&'a mut Recorder>,
}

impl<'a> Laps<'a> {
    /// Starts the clock.
    pub fn start(recorder: Option<&'a mut Recorder>) -> Self {
        let start = Instant::now();
        Self {
            start,
            last: start,
            recorder,
        }
    }

    /// One operation ended: records the time since the previous one (or the start).
    #[inline]
    pub fn lap(&mut self) {
        if let Some(recorder) = self.recorder.as_deref_mut() {
            let now = Instant::now();
            recorder.record(now - self.last);
            self.last = now;
        }
    }

    /// The batch's time so far.
    pub fn total(&self) -> Duration {
        match self.recorder {
            Some(_) => self.last - self.start,
            None => self.start.elapsed(),
        }
    }
}

/// One contender's recorded calls.
#[derive(Debug, Clone)]
pub struct Distribution {
    /// Every call, in nanoseconds.
    pub histogram: Histogram<u64>,
    /// Calls per block of `block_means` ([`BLOCK`] unless recorded otherwise).
    pub block: u64,
    /// Calls per run of `run_maxes` ([`RUN`] unless recorded otherwise).
    pub run: u64,
    /// The mean of each complete block of `block` consecutive calls, in order.
    pub block_means: Vec<f64>,
    /// The maximum of each complete run of `run` consecutive calls, in order.
    pub run_maxes: Vec<f64>,
    /// For a distribution [`merged`](Distribution::merged) from separately recorded runs: each
    /// run's calls and [`summary`](Distribution::summary), in order (empty otherwise).
    pub runs: Vec<(u64, [f64; 5])>,
}

/// The percentiles a report shows, as quantiles.
pub const QUANTILES: [(&str, f64); 4] =
    [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)];

impl Distribution {
    /// Calls recorded.
    pub fn calls(&self) -> u64 {
        self.histogram.len()
    }

    /// The latency at quantile `q` (0..=1), nanoseconds.
    pub fn at(&self, q: f64) -> f64 {
        self.histogram.value_at_quantile(q) as f64
    }

    /// The slowest call, nanoseconds.
    pub fn max(&self) -> f64 {
        self.histogram.max() as f64
    }

    /// The mean call, nanoseconds.
    pub fn mean(&self) -> f64 {
        self.histogram.mean()
    }

    /// p50, p90, p99, p99.9 and max, nanoseconds, in [`QUANTILES`] order then max.
    pub fn summary(&self) -> [f64; 5] {
        let mut out = [0.0; 5];
        for (slot, (_, q)) in out.iter_mut().zip(QUANTILES) {
            *slot = self.at(q);
        }
        out[4] = self.max();
        out
    }

    /// One distribution of every call of `parts` (the blocks and runs of each, in order).
    pub fn merged(parts: &[Distribution]) -> Option<Distribution> {
        let (first, rest) = parts.split_first()?;
        let mut all = first.clone();
        all.runs = vec![(first.calls(), first.summary())];
        for part in rest {
            all.runs.push((part.calls(), part.summary()));
            all.histogram
                .add(&part.histogram)
                .expect("histograms of one shape");
            all.block_means.extend(&part.block_means);
            all.run_maxes.extend(&part.run_maxes);
        }
        Some(all)
    }

    /// The best and worst block means and their ratio, if any block is complete.
    pub fn block_spread(&self) -> Option<(f64, f64, f64)> {
        let best = self.block_means.iter().copied().reduce(f64::min)?;
        let worst = self.block_means.iter().copied().reduce(f64::max)?;
        Some((best, worst, worst / best))
    }

    /// Points of the latency CDF for a plot: (quantile, nanoseconds), with more points in the
    /// tail (quantiles 1 - 10^(-k/8)), ending at the slowest call.
    pub fn cdf(&self) -> Vec<(f64, f64)> {
        let calls = self.calls().max(1) as f64;
        let mut points = Vec::new();
        for k in 1..=9 {
            let q = f64::from(k) / 10.0;
            points.push((q, self.at(q)));
        }
        let mut k = 9;
        loop {
            let q = 1.0 - 10f64.powf(-f64::from(k) / 8.0);
            if 1.0 - q < 1.0 / calls {
                break;
            }
            points.push((q, self.at(q)));
            k += 1;
        }
        points.push((1.0 - 1.0 / calls, self.max()));
        points
    }

    /// The distribution as one line of text (for a child process's report): the histogram's
    /// non-empty buckets as `value:count`, then the block means, the run maxima, and the block
    /// and run sizes.
    pub fn to_text(&self) -> String {
        let buckets: Vec<String> = self
            .histogram
            .iter_recorded()
            .map(|v| format!("{}:{}", v.value_iterated_to(), v.count_at_value()))
            .collect();
        let list = |xs: &[f64]| {
            xs.iter()
                .map(|x| format!("{x:.1}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "{} {} {} {} {}",
            buckets.join(","),
            list(&self.block_means),
            list(&self.run_maxes),
            self.block,
            self.run
        )
    }

    /// Reads what [`to_text`](Distribution::to_text) wrote.
    pub fn from_text(text: &str) -> Option<Self> {
        let mut parts = text.split(' ');
        let mut histogram = Histogram::new_with_bounds(1, HIGHEST_NS, 3).ok()?;
        for bucket in parts.next()?.split(',').filter(|s| !s.is_empty()) {
            let (value, count) = bucket.split_once(':')?;
            histogram
                .record_n(value.parse().ok()?, count.parse().ok()?)
                .ok()?;
        }
        let list = |s: Option<&str>| -> Option<Vec<f64>> {
            s?.split(',')
                .filter(|x| !x.is_empty())
                .map(|x| x.parse().ok())
                .collect()
        };
        Some(Self {
            histogram,
            block_means: list(parts.next())?,
            run_maxes: list(parts.next())?,
            block: parts.next()?.parse().ok()?,
            run: parts.next()?.parse().ok()?,
            runs: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_runs_and_percentiles() {
        let mut r = Recorder::new();
        for i in 0..RUN {
            let ns = if i < BLOCK { 1_000 } else { 2_000 };
            r.record(Duration::from_nanos(ns));
        }
        r.record(Duration::from_micros(500));
        let d = r.finish();
        assert_eq!(d.calls(), RUN + 1);
        assert_eq!(d.block_means, [1_000.0, 2_000.0, 2_000.0, 2_000.0]);
        assert_eq!(d.run_maxes, [2_000.0]);
        assert_eq!(d.block_spread(), Some((1_000.0, 2_000.0, 2.0)));
        assert_eq!(d.at(0.1), 1_000.0);
        assert_eq!(d.at(0.5), 2_000.0);
        assert!((d.max() - 500_000.0).abs() / 500_000.0 < 1e-3);
        let back = Distribution::from_text(&d.to_text()).unwrap();
        assert_eq!(back.summary(), d.summary());
        assert_eq!(back.block_means, d.block_means);
        assert_eq!(back.run_maxes, d.run_maxes);
        assert_eq!((back.block, back.run), (BLOCK, RUN));
        let cdf = d.cdf();
        assert!(cdf.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
    }

    #[test]
    fn merged_runs_keep_each_runs_figures() {
        let run = |ns: u64| {
            let mut r = Recorder::with_sizes(2, 4);
            for _ in 0..4 {
                r.record(Duration::from_nanos(ns));
            }
            r.finish()
        };
        let all = Distribution::merged(&[run(100), run(300)]).unwrap();
        assert_eq!(all.calls(), 8);
        assert_eq!(all.block_means, [100.0, 100.0, 300.0, 300.0]);
        assert_eq!(all.run_maxes, [100.0, 300.0]);
        assert_eq!(all.runs.len(), 2);
        assert_eq!((all.runs[1].0, all.runs[1].1[0]), (4, 300.0));
        assert_eq!(all.at(0.25), 100.0);
        assert_eq!(all.max(), 300.0);
        assert!(Distribution::merged(&[]).is_none());
    }
}
