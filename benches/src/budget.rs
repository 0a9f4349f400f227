//! The budgets of DESIGN §6 (and issue 2) that the measured scenarios cover, judged.
//!
//! Judging never fails anything: a missed budget is a line of the report.

use crate::footprint::Footprint;
use crate::measure::Measured;
use crate::scenarios::{pingpong, same_thread};

/// One budget's verdict.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Short name of the budget.
    pub name: String,
    /// Whether the measured figure meets it.
    pub met: bool,
    /// The figure behind the verdict.
    pub figure: String,
}

/// The measured contenders of one scenario run.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// The scenario's name.
    pub scenario: String,
    /// Every contender, ours included.
    pub measured: Vec<Measured>,
}

impl ScenarioResult {
    /// The contender called `name`, if measured.
    pub fn get(&self, name: &str) -> Option<&Measured> {
        self.measured.iter().find(|m| m.name == name)
    }
}

const OURS: &str = "ours/result";
const OURS_INTO: &str = "ours/into_result";

/// Judges every budget the results cover; budgets whose scenario was not run are left out.
pub fn judge(results: &[ScenarioResult], footprints: &[Footprint]) -> Vec<Verdict> {
    let find = |name: &str| results.iter().find(|r| r.scenario == name);
    let mut verdicts = Vec::new();
    if let Some(r) = find(same_thread::NAME) {
        verdicts.extend(same_thread_vs_oneshot(r, footprints));
    }
    if let Some(r) = find(pingpong::NAME) {
        verdicts.extend(ratio_budget(
            "pingpong no slower than crossbeam bounded(1), unpinned",
            r,
            &["crossbeam"],
            1.0,
        ));
        let peers: Vec<&str> = r
            .measured
            .iter()
            .filter(|m| !is_ours(m))
            .map(|m| m.name.as_str())
            .collect();
        verdicts.extend(ratio_budget(
            "pingpong within 10% of the fastest peer, unpinned (DESIGN 6)",
            r,
            &peers,
            1.1,
        ));
    }
    for (name, what) in [
        (pingpong::PINNED, "threads pinned to one CPU"),
        (pingpong::ONE_CPU, "process on one CPU"),
    ] {
        if let Some(r) = find(name) {
            verdicts.extend(ratio_budget(
                &format!(
                    "{name} ({what}) within 1.2x of the parking peers (std_mpsc, mutex_condvar)"
                ),
                r,
                &["std_mpsc", "mutex_condvar"],
                1.2,
            ));
        }
    }
    verdicts
}

fn is_ours(m: &Measured) -> bool {
    m.side == crate::contender::Side::Ours
}

/// Ours (by `result()`) against the fastest of `peers`: met if at most `limit` times it.
fn ratio_budget(name: &str, r: &ScenarioResult, peers: &[&str], limit: f64) -> Option<Verdict> {
    let ours = r.get(OURS)?;
    let best = peers
        .iter()
        .filter_map(|p| r.get(p))
        .min_by(|a, b| a.ns.total_cmp(&b.ns))?;
    let ratio = ours.ns / best.ns;
    let mut figure = format!(
        "{OURS} {:.1} ns vs {} {:.1} ns: ratio {ratio:.2} (limit {limit:.2})",
        ours.ns, best.name, best.ns
    );
    if let Some(into) = r.get(OURS_INTO) {
        figure += &format!(
            "; {OURS_INTO} {:.1} ns, ratio {:.2}",
            into.ns,
            into.ns / best.ns
        );
    }
    Some(Verdict {
        name: name.to_string(),
        met: ratio <= limit,
        figure,
    })
}

fn same_thread_vs_oneshot(r: &ScenarioResult, footprints: &[Footprint]) -> Option<Verdict> {
    let speed = ratio_budget("", r, &["oneshot"], 1.0)?;
    let allocs = footprints.iter().find(|f| f.name == OURS).map(|f| f.allocs);
    let oneshot_allocs = footprints
        .iter()
        .find(|f| f.name == "oneshot")
        .map(|f| f.allocs);
    let (alloc_met, alloc_figure) = match allocs {
        Some(a) => (
            a <= 1.0,
            format!(
                "{a:.2} allocations per op (oneshot {})",
                oneshot_allocs.map_or("?".into(), |o| format!("{o:.2}"))
            ),
        ),
        None => (false, "allocations not counted".to_string()),
    };
    Some(Verdict {
        name: "same_thread no slower than oneshot, at most 1 allocation".to_string(),
        met: speed.met && alloc_met,
        figure: format!("{}; {alloc_figure}", speed.figure),
    })
}
