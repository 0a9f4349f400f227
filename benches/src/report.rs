//! `compare`'s output: one tab-separated line per (scenario, peer), then one per budget.
//!
//! ```text
//! scenario<TAB>peer<TAB>ours_ns<TAB>peer_ns<TAB>ratio      (ratio = ours / peer, lower is better)
//! budget<TAB>name<TAB>met|missed|skipped<TAB>figure
//! ```
//!
//! Scenarios whose contenders time every call (see [`crate::latency`]) add, per contender, its
//! percentiles; per ours × peer, the ratios of each; and per contender, the spread of its
//! block means (blocks of 5,000 consecutive calls, or the size a distribution was recorded with):
//!
//! ```text
//! latency<TAB>scenario<TAB>contender<TAB>calls<TAB>median_ns<TAB>p50<TAB>p90<TAB>p99<TAB>p99.9<TAB>max
//! latency_ratio<TAB>scenario<TAB>peer<TAB>p50<TAB>p90<TAB>p99<TAB>p99.9<TAB>max   (ours / peer)
//! blocks<TAB>scenario<TAB>contender<TAB>blocks<TAB>best_ns<TAB>worst_ns<TAB>worst/best
//! run<TAB>scenario<TAB>contender<TAB>run<TAB>calls<TAB>p50<TAB>p90<TAB>p99<TAB>p99.9<TAB>max
//! ```
//!
//! (`run` rows only for distributions recorded in separate runs: [`crate::runs`].)
//!
//! (`median_ns` is the median of slices, as in the ratio rows; the percentiles are of single
//! calls, in nanoseconds.) With `--cdf FILE`, `compare` writes each distribution's CDF there
//! as `cdf<TAB>scenario<TAB>contender<TAB>quantile<TAB>ns` lines, for `plot.py --cdf`.
//!
//! Lines starting with `#` describe the run (command, plan, machine, load average) and `skip`
//! lines name a peer that could not run and why.
//!
//! Rows compare `ours/result` under the scenario's own name and `ours/into_result` under
//! `<scenario>.into_result`.

use std::fmt::Write;

use crate::budget::{ScenarioResult, Verdict};
use crate::contender::Side;
use crate::latency::Distribution;
use crate::measure::Measured;

/// The rows for one scenario: every ours × every peer.
pub fn rows(result: &ScenarioResult) -> String {
    let mut out = String::new();
    let ours = result.measured.iter().filter(|m| m.side == Side::Ours);
    for (k, o) in ours.enumerate() {
        let scenario = ours_row_name(result, k, o);
        for p in result.measured.iter().filter(|m| m.side == Side::Peer) {
            let _ = writeln!(
                out,
                "{scenario}\t{}\t{:.1}\t{:.1}\t{:.3}",
                p.name,
                o.ns,
                p.ns,
                o.ns / p.ns
            );
        }
    }
    out
}

fn variant(name: &str) -> &str {
    name.strip_prefix("ours/").unwrap_or(name)
}

/// The row name of ours number `k` in `result`: the scenario's, then `<scenario>.<variant>`.
fn ours_row_name(result: &ScenarioResult, k: usize, ours: &Measured) -> String {
    match k {
        0 => result.scenario.clone(),
        _ => format!("{}.{}", result.scenario, variant(&ours.name)),
    }
}

/// The `latency`, `latency_ratio` and `blocks` rows of one scenario (nothing if no contender
/// timed single calls).
pub fn latency_rows(result: &ScenarioResult) -> String {
    let mut out = String::new();
    let timed: Vec<(&Measured, &Distribution)> = result
        .measured
        .iter()
        .filter_map(|m| m.latency.as_ref().map(|d| (m, d)))
        .collect();
    for (m, d) in &timed {
        let figures: Vec<String> = d.summary().iter().map(|x| format!("{x:.0}")).collect();
        let _ = writeln!(
            out,
            "latency\t{}\t{}\t{}\t{:.1}\t{}",
            result.scenario,
            m.name,
            d.calls(),
            m.ns,
            figures.join("\t")
        );
    }
    let ours = timed.iter().filter(|(m, _)| m.side == Side::Ours);
    for (k, (o, od)) in ours.enumerate() {
        let scenario = ours_row_name(result, k, o);
        for (p, pd) in timed.iter().filter(|(m, _)| m.side == Side::Peer) {
            let ratios: Vec<String> = od
                .summary()
                .iter()
                .zip(pd.summary())
                .map(|(a, b)| format!("{:.3}", a / b))
                .collect();
            let _ = writeln!(
                out,
                "latency_ratio\t{scenario}\t{}\t{}",
                p.name,
                ratios.join("\t")
            );
        }
    }
    for (m, d) in &timed {
        if let Some((best, worst, ratio)) = d.block_spread() {
            let _ = writeln!(
                out,
                "blocks\t{}\t{}\t{}\t{best:.1}\t{worst:.1}\t{ratio:.2}",
                result.scenario,
                m.name,
                d.block_means.len()
            );
        }
        for (k, (calls, summary)) in d.runs.iter().enumerate() {
            let figures: Vec<String> = summary.iter().map(|x| format!("{x:.0}")).collect();
            let _ = writeln!(
                out,
                "run\t{}\t{}\t{}\t{calls}\t{}",
                result.scenario,
                m.name,
                k + 1,
                figures.join("\t")
            );
        }
    }
    out
}

/// The `cdf` lines of one scenario (see the module docs).
pub fn cdf_lines(result: &ScenarioResult) -> String {
    let mut out = String::new();
    for m in &result.measured {
        let Some(d) = &m.latency else { continue };
        for (q, ns) in d.cdf() {
            let _ = writeln!(
                out,
                "cdf\t{}\t{}\t{q:.10}\t{ns:.0}",
                result.scenario, m.name
            );
        }
    }
    out
}

/// One line per budget.
pub fn verdicts(verdicts: &[Verdict]) -> String {
    let mut out = String::new();
    for v in verdicts {
        let _ = writeln!(
            out,
            "budget\t{}\t{}\t{}",
            v.name,
            v.status.as_str(),
            v.figure
        );
    }
    out
}

/// A scenario's measurements as a child process prints them for its parent.
pub fn to_child_lines(measured: &[Measured]) -> String {
    let mut out = String::new();
    for m in measured {
        let side = match m.side {
            Side::Ours => "ours",
            Side::Peer => "peer",
        };
        let _ = writeln!(
            out,
            "{}\t{side}\t{}\t{}\t{}",
            m.name, m.ns, m.range.0, m.range.1
        );
        if let Some(d) = &m.latency {
            let _ = writeln!(out, "{LATENCY_LINE}\t{}\t{}", m.name, d.to_text());
        }
    }
    out
}

/// A child's line carrying the distribution of the contender named next.
const LATENCY_LINE: &str = "latency";

/// Reads what [`to_child_lines`] printed; `None` if any line is malformed.
pub fn from_child_lines(text: &str) -> Option<Vec<Measured>> {
    let mut measured: Vec<Measured> = text
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with(LATENCY_LINE))
        .map(|line| {
            let mut fields = line.split('\t');
            let name = fields.next()?.to_string();
            let side = match fields.next()? {
                "ours" => Side::Ours,
                "peer" => Side::Peer,
                _ => return None,
            };
            let mut number = || fields.next()?.parse::<f64>().ok();
            let ns = number()?;
            let range = (number()?, number()?);
            Some(Measured {
                name,
                side,
                ns,
                range,
                rounds: Vec::new(),
                latency: None,
            })
        })
        .collect::<Option<_>>()?;
    for line in text.lines().filter(|l| l.starts_with(LATENCY_LINE)) {
        let mut fields = line.splitn(3, '\t').skip(1);
        let (name, text) = (fields.next()?, fields.next()?);
        let m = measured.iter_mut().find(|m| m.name == name)?;
        m.latency = Some(Distribution::from_text(text)?);
    }
    Some(measured)
}

/// Details for a reader (stderr): each contender's median and spread.
pub fn details(result: &ScenarioResult) -> String {
    let mut out = String::new();
    for m in &result.measured {
        let _ = writeln!(
            out,
            "  {:<12} {:<18} median {:>10.1} ns  (slices {:.1} .. {:.1})",
            result.scenario, m.name, m.ns, m.range.0, m.range.1
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(name: &str, side: Side, ns: f64) -> Measured {
        Measured {
            name: name.into(),
            side,
            ns,
            range: (ns / 2.0, ns * 2.0),
            rounds: Vec::new(),
            latency: None,
        }
    }

    #[test]
    fn child_lines_round_trip() {
        let before = vec![
            measured("ours/result", Side::Ours, 12.5),
            measured("oneshot", Side::Peer, 10.0),
        ];
        let after = from_child_lines(&to_child_lines(&before)).unwrap();
        assert_eq!(after.len(), 2);
        assert_eq!(after[0].name, "ours/result");
        assert_eq!(after[0].side, Side::Ours);
        assert_eq!(after[1].ns, 10.0);
        assert_eq!(after[1].range, (5.0, 20.0));
        assert!(from_child_lines("x\tnobody\t1\t1\t1").is_none());
    }

    #[test]
    fn child_lines_carry_distributions() {
        let mut recorder = crate::latency::Recorder::new();
        for ns in [1_000, 2_000, 90_000] {
            recorder.record(std::time::Duration::from_nanos(ns));
        }
        let mut timed = measured("ours/submit", Side::Ours, 1_500.0);
        timed.latency = Some(recorder.finish());
        let before = vec![timed, measured("raw_pipe", Side::Peer, 1_000.0)];
        let after = from_child_lines(&to_child_lines(&before)).unwrap();
        assert_eq!(after.len(), 2);
        let d = after[0]
            .latency
            .as_ref()
            .expect("the distribution came back");
        assert_eq!(d.calls(), 3);
        assert_eq!(d.summary(), before[0].latency.as_ref().unwrap().summary());
        assert!(after[1].latency.is_none());
        let result = ScenarioResult {
            scenario: "s".into(),
            measured: after,
        };
        assert!(latency_rows(&result).starts_with("latency\ts\tours/submit\t3\t1500.0\t"));
    }

    #[test]
    fn rows_pair_every_ours_with_every_peer() {
        let result = ScenarioResult {
            scenario: "s".into(),
            measured: vec![
                measured("ours/result", Side::Ours, 10.0),
                measured("ours/into_result", Side::Ours, 30.0),
                measured("p", Side::Peer, 20.0),
            ],
        };
        assert_eq!(
            rows(&result),
            "s\tp\t10.0\t20.0\t0.500\ns.into_result\tp\t30.0\t20.0\t1.500\n"
        );
    }
}
