//! `compare`'s output: one tab-separated line per (scenario, peer), then one per budget.
//!
//! ```text
//! scenario<TAB>peer<TAB>ours_ns<TAB>peer_ns<TAB>ratio      (ratio = ours / peer, lower is better)
//! budget<TAB>name<TAB>met|missed|skipped<TAB>figure
//! ```
//!
//! Lines starting with `#` describe the run (command, plan, machine, load average) and `skip`
//! lines name a peer that could not run and why.
//!
//! Rows compare `ours/result` under the scenario's own name and `ours/into_result` under
//! `<scenario>.into_result`.

use std::fmt::Write;

use crate::budget::{ScenarioResult, Verdict};
use crate::contender::Side;
use crate::measure::Measured;

/// The rows for one scenario: every ours × every peer.
pub fn rows(result: &ScenarioResult) -> String {
    let mut out = String::new();
    let ours = result.measured.iter().filter(|m| m.side == Side::Ours);
    for (k, o) in ours.enumerate() {
        let scenario = match k {
            0 => result.scenario.clone(),
            _ => format!("{}.{}", result.scenario, variant(&o.name)),
        };
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
    }
    out
}

/// Reads what [`to_child_lines`] printed; `None` if any line is malformed.
pub fn from_child_lines(text: &str) -> Option<Vec<Measured>> {
    text.lines()
        .filter(|line| !line.is_empty())
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
            })
        })
        .collect()
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
