//! The tail-latency budgets (issue 13), judged from the per-call distributions of
//! [`crate::latency`]: percentiles of single calls, not medians of slices.

use crate::budget::{ScenarioResult, Verdict, human_ns};
use crate::latency::Distribution;
use crate::measure::Measured;
use crate::scenarios::{pingpong, pool, process};

/// Runs whose maximum the pool budget judges (as the harness ran).
const JUDGED_RUNS: usize = 3;
/// The largest pool round trip allowed in a judged run, nanoseconds.
const POOL_MAX_NS: f64 = 200_000.0;
/// How far a block mean may be from the best block's.
const BLOCK_SPREAD: f64 = 2.0;
/// How far ours' p99 may be from the fastest peer's.
const P99_LIMIT: f64 = 1.2;

/// Every tail budget the results cover.
pub fn judge<'a>(find: &impl Fn(&str) -> Option<&'a ScenarioResult>) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    if let Some(r) = find(pool::ROUND_TRIP_RUNS) {
        verdicts.extend(pool_round_trip(r, "each pool alone"));
    }
    if let Some(r) = find(pool::ROUND_TRIP) {
        verdicts.extend(pool_round_trip(r, "interleaved slices"));
    }
    if let Some(r) = find(pingpong::NAME) {
        let peers: Vec<&str> = r
            .measured
            .iter()
            .filter(|m| m.side == crate::contender::Side::Peer)
            .map(|m| m.name.as_str())
            .collect();
        verdicts.extend(p99_budget(
            "pingpong p99 within 1.2x of the fastest peer's, unpinned",
            r,
            "ours/result",
            &peers,
        ));
    }
    for scenario in [
        process::ROUND_TRIP,
        process::ROUND_TRIP_1CPU,
        process::ROUND_TRIP_SPLIT,
    ] {
        if let Some(r) = find(scenario) {
            verdicts.extend(p99_budget(
                &format!("{scenario} p99 within 1.2x of the raw pipe's"),
                r,
                "ours/submit",
                &[process::RAW_PIPE],
            ));
        }
    }
    verdicts
}

fn distribution<'a>(r: &'a ScenarioResult, name: &str) -> Option<(&'a Measured, &'a Distribution)> {
    let m = r.get(name)?;
    Some((m, m.latency.as_ref()?))
}

/// Ours' p99 against the fastest p99 among `peers`.
fn p99_budget(name: &str, r: &ScenarioResult, ours: &str, peers: &[&str]) -> Option<Verdict> {
    let (o, od) = distribution(r, ours)?;
    let Some((p, pd)) = peers
        .iter()
        .filter_map(|p| distribution(r, p))
        .min_by(|a, b| a.1.at(0.99).total_cmp(&b.1.at(0.99)))
    else {
        return Some(Verdict::skipped(name, "no peer's calls were timed"));
    };
    let ratio = od.at(0.99) / pd.at(0.99);
    Some(Verdict::new(
        name,
        ratio <= P99_LIMIT,
        format!(
            "{} p99 {} vs {} p99 {}: ratio {ratio:.2} (limit {P99_LIMIT:.2}); p99.9 {} vs {}; {} and {} calls",
            o.name,
            human_ns(od.at(0.99)),
            p.name,
            human_ns(pd.at(0.99)),
            human_ns(od.at(0.999)),
            human_ns(pd.at(0.999)),
            od.calls(),
            pd.calls()
        ),
    ))
}

/// The pool round trip's three tail budgets, judged from `r`'s distributions (measured as
/// `how` says).
fn pool_round_trip(r: &ScenarioResult, how: &str) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    let Some((_, ours)) = distribution(r, "ours/submit") else {
        return verdicts;
    };
    let name = format!("pool round trip p99.9 no worse than rayon's, unpinned ({how})");
    verdicts.push(match distribution(r, "rayon") {
        Some((_, rayon)) => Verdict::new(
            name,
            ours.at(0.999) <= rayon.at(0.999),
            format!(
                "ours/submit p99.9 {} vs rayon {} (p99 {} vs {}; max {} vs {})",
                human_ns(ours.at(0.999)),
                human_ns(rayon.at(0.999)),
                human_ns(ours.at(0.99)),
                human_ns(rayon.at(0.99)),
                human_ns(ours.max()),
                human_ns(rayon.max())
            ),
        ),
        None => Verdict::skipped(name, "rayon's calls were not timed"),
    });
    let judged = &ours.run_maxes[..ours.run_maxes.len().min(JUDGED_RUNS)];
    let run = ours.run;
    let name = format!(
        "pool round trip max under 200 µs in each of the first {JUDGED_RUNS} runs of {run} calls ({how})"
    );
    verdicts.push(if judged.is_empty() {
        Verdict::skipped(name, format!("fewer than {run} calls timed"))
    } else {
        let maxes: Vec<String> = judged.iter().map(|&m| human_ns(m)).collect();
        Verdict::new(
            name,
            judged.len() == JUDGED_RUNS && judged.iter().all(|&m| m < POOL_MAX_NS),
            format!(
                "ours/submit run maxima {} ({} runs of {run} timed; max over all {} calls {})",
                maxes.join(", "),
                ours.run_maxes.len(),
                ours.calls(),
                human_ns(ours.max())
            ),
        )
    });
    let block = ours.block;
    let name = format!(
        "pool round trip: every block of {block} calls' mean within 2x of the best block's ({how})"
    );
    verdicts.push(match ours.block_spread() {
        Some((best, worst, ratio)) => Verdict::new(
            name,
            ratio <= BLOCK_SPREAD,
            format!(
                "ours/submit {} blocks of {block}: best {}, worst {}, ratio {ratio:.2} (limit {BLOCK_SPREAD:.2}; {} blocks over the limit){}",
                ours.block_means.len(),
                human_ns(best),
                human_ns(worst),
                ours.block_means
                    .iter()
                    .filter(|&&m| m > BLOCK_SPREAD * best)
                    .count(),
                distribution(r, "rayon")
                    .and_then(|(_, d)| d.block_spread())
                    .map_or(String::new(), |(b, w, q)| format!(
                        "; rayon best {}, worst {}, ratio {q:.2}",
                        human_ns(b),
                        human_ns(w)
                    ))
            ),
        ),
        None => Verdict::skipped(name, format!("fewer than {block} calls timed")),
    });
    verdicts
}
