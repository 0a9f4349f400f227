//! The budgets of DESIGN §6 (and issue 2) that the measured scenarios cover, judged.
//!
//! Judging never fails anything: a missed budget is a line of the report.

use crate::footprint::Footprint;
use crate::measure::Measured;
use crate::python;
use crate::scenarios::pool::{self, IdleCpu};
use crate::scenarios::{as_completed, pingpong, process, same_thread, wait_any};

/// One budget's verdict.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Short name of the budget.
    pub name: String,
    /// Met, missed, or not judged (a peer it needs was not measured).
    pub status: Status,
    /// The figure behind the verdict.
    pub figure: String,
}

impl Verdict {
    pub(crate) fn new(name: impl Into<String>, met: bool, figure: String) -> Self {
        Self {
            name: name.into(),
            status: if met { Status::Met } else { Status::Missed },
            figure,
        }
    }

    pub(crate) fn skipped(name: impl Into<String>, why: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status: Status::Skipped,
            figure: why.into(),
        }
    }

    /// Whether the budget is met.
    pub fn met(&self) -> bool {
        self.status == Status::Met
    }
}

/// A verdict's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The figure meets the budget.
    Met,
    /// It does not.
    Missed,
    /// Not judged: something it needs was not measured.
    Skipped,
}

impl Status {
    /// `met`, `missed` or `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::Missed => "missed",
            Status::Skipped => "skipped",
        }
    }
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
pub fn judge(
    results: &[ScenarioResult],
    footprints: &[Footprint],
    idle: Option<&IdleCpu>,
) -> Vec<Verdict> {
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
    verdicts.extend(wait_budgets(&find));
    verdicts.extend(pool_budgets(&find, idle));
    verdicts.extend(process_budgets(&find));
    verdicts.extend(crate::tail::judge(&find));
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
        "{OURS} {:.1} ns vs {} {:.1} ns: ratio {ratio:.2} (limit {limit:.2}){}",
        ours.ns,
        best.name,
        best.ns,
        paired_text(ours, best)
    );
    if let Some(into) = r.get(OURS_INTO) {
        figure += &format!(
            "; {OURS_INTO} {:.1} ns, ratio {:.2}",
            into.ns,
            into.ns / best.ns
        );
    }
    Some(Verdict::new(name, ratio <= limit, figure))
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
    Some(Verdict::new(
        "same_thread no slower than oneshot, at most 1 allocation",
        speed.met() && alloc_met,
        format!("{}; {alloc_figure}", speed.figure),
    ))
}

/// Nanoseconds for a reader: `812.4 ns`, `12.3 µs`, `1.18 ms`.
pub fn human_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

/// `; paired per-round ratio R, ours faster in F of N rounds` when both were measured round by
/// round in this process (see [`Measured::paired_ratio`]), else nothing.
pub fn paired_text(ours: &Measured, peer: &Measured) -> String {
    match ours.paired_ratio(peer) {
        Some((ratio, faster, rounds)) => format!(
            "; paired per-round ratio {ratio:.3} vs {}, ours faster in {faster} of {rounds} rounds",
            peer.name
        ),
        None => String::new(),
    }
}

/// Ours at most `limit` times `peer` (a fraction: 1/2.7 means 2.7 times faster).
fn at_most_times(name: &str, ours: &Measured, peer: Option<&Measured>, limit: f64) -> Verdict {
    let Some(peer) = peer else {
        return Verdict::skipped(name, "the peer was not measured (see the skip line above)");
    };
    let ratio = ours.ns / peer.ns;
    Verdict::new(
        name,
        ratio <= limit,
        format!(
            "{} {} vs {} {}: ratio {ratio:.3} (limit {limit:.3}; {:.1}x faster){}",
            ours.name,
            human_ns(ours.ns),
            peer.name,
            human_ns(peer.ns),
            peer.ns / ours.ns,
            paired_text(ours, peer)
        ),
    )
}

const OURS_WAIT: &str = "ours/wait";
const OURS_AS_COMPLETED: &str = "ours/as_completed";
const OURS_SUBMIT: &str = "ours/submit";

/// `wait` / `as_completed` (issue 3's budgets).
fn wait_budgets<'a>(find: &impl Fn(&str) -> Option<&'a ScenarioResult>) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    let n = wait_any::BUDGET_SIZE;
    if let Some(r) = find(wait_any::wake_name(n)) {
        if let Some(ours) = r.get(OURS_WAIT) {
            verdicts.push(Verdict::new(
                "wait(FirstCompleted) over 10,000 pending: completion to return under 1 ms",
                ours.ns < 1e6,
                format!("{OURS_WAIT} {} (limit 1 ms)", human_ns(ours.ns)),
            ));
            verdicts.push(at_most_times(
                "wait(FirstCompleted) over 10,000 pending: at most 1/2.7 of crossbeam Select's",
                ours,
                r.get("crossbeam"),
                1.0 / 2.7,
            ));
            verdicts.push(at_most_times(
                "wait(FirstCompleted) over 10,000 pending: at most 1/10 of CPython's",
                ours,
                r.get(python::PEER),
                0.1,
            ));
        }
    }
    if let Some(r) = find(as_completed::NAME) {
        if let Some(ours) = r.get(OURS_AS_COMPLETED) {
            let cpython = r
                .get(python::PEER)
                .map_or("CPython not measured".to_string(), |p| {
                    format!("CPython {} per future", human_ns(p.ns))
                });
            verdicts.push(Verdict::new(
                "as_completed over 100,000 done futures: under 50 ns per future",
                ours.ns < 50.0,
                format!(
                    "{OURS_AS_COMPLETED} {:.1} ns per future (limit 50 ns); {cpython}",
                    ours.ns
                ),
            ));
        }
    }
    verdicts.extend(registration_budget(find));
    verdicts
}

/// Registration grows linearly in N: ours costs no more per future at 10,000 than twice its
/// cost per future at 1,024; the slope (least squares over every N) is the figure.
fn registration_budget<'a>(find: &impl Fn(&str) -> Option<&'a ScenarioResult>) -> Option<Verdict> {
    let points = |name: &str| -> Vec<(f64, f64)> {
        wait_any::SIZES
            .iter()
            .filter_map(|&n| {
                let m = find(wait_any::register_name(n))?.get(name)?;
                Some((n as f64, m.ns))
            })
            .collect()
    };
    let ours = points(OURS_AS_COMPLETED);
    if ours.len() < wait_any::SIZES.len() {
        return None;
    }
    let per_future = |n: usize| {
        let (_, ns) = ours.iter().find(|p| p.0 == n as f64)?;
        Some(ns / n as f64)
    };
    let (small, large) = (per_future(1_024)?, per_future(10_000)?);
    let growth = large / small;
    let slope_text = |name: &str| {
        wait_any::slope(&points(name))
            .map_or("not measured".to_string(), |s| format!("{s:.1} ns/future"))
    };
    Some(Verdict::new(
        "wait/as_completed registration linear in N (slope reported)",
        growth <= 2.0,
        format!(
            "ours slope {} (least squares over N = 1, 16, 1024, 10000); per future {small:.1} ns at N=1024, {large:.1} ns at N=10000 (growth {growth:.2}, limit 2.00); crossbeam slope {}; CPython slope {}",
            slope_text(OURS_AS_COMPLETED),
            slope_text("crossbeam"),
            slope_text(python::PEER),
        ),
    ))
}

/// The thread pool (issue 4's budgets and DESIGN §6).
fn pool_budgets<'a>(
    find: &impl Fn(&str) -> Option<&'a ScenarioResult>,
    idle: Option<&IdleCpu>,
) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    let rate = |m: &Measured| format!("{} {:.2} M tasks/s", m.name, 1e3 / m.ns);
    if let Some(r) = find(pool::THROUGHPUT) {
        if let Some(ours) = r.get(OURS_SUBMIT) {
            verdicts.push(Verdict::new(
                "pool throughput (100k no-op submits then results, 2 workers): at least 6 M tasks/s",
                ours.ns <= 1e9 / 6e6,
                format!("{} ({:.1} ns per task; limit 166.7 ns)", rate(ours), ours.ns),
            ));
            let peers: Vec<&Measured> = r.measured.iter().filter(|m| !is_ours(m)).collect();
            let fastest = peers.iter().min_by(|a, b| a.ns.total_cmp(&b.ns));
            if let Some(fastest) = fastest {
                let all: Vec<String> = peers.iter().map(|m| rate(m)).collect();
                verdicts.push(Verdict::new(
                    "pool throughput ahead of every peer",
                    ours.ns < fastest.ns,
                    format!(
                        "{}; {} (ratio to the fastest peer {:.3}{})",
                        rate(ours),
                        all.join(", "),
                        ours.ns / fastest.ns,
                        paired_text(ours, fastest)
                    ),
                ));
            }
            let name = "pool throughput at least 150x CPython's ThreadPoolExecutor";
            verdicts.push(match r.get(python::PEER) {
                Some(cpython) => {
                    let speedup = cpython.ns / ours.ns;
                    Verdict::new(
                        name,
                        speedup >= 150.0,
                        format!(
                            "{} vs {}: {speedup:.0}x (limit 150x)",
                            rate(ours),
                            rate(cpython)
                        ),
                    )
                }
                None => {
                    Verdict::skipped(name, "CPython was not measured (see the skip line above)")
                }
            });
        }
    }
    if let Some(r) = find(pool::ROUND_TRIP) {
        if let Some(ours) = r.get(OURS_SUBMIT) {
            let peers: Vec<String> = r
                .measured
                .iter()
                .filter(|m| !is_ours(m))
                .map(|m| format!("{} {}", m.name, human_ns(m.ns)))
                .collect();
            let fastest = r
                .measured
                .iter()
                .filter(|m| !is_ours(m))
                .min_by(|a, b| a.ns.total_cmp(&b.ns));
            verdicts.push(Verdict::new(
                "pool round trip (submit then result, unpinned): at most 2 µs",
                ours.ns <= 2_000.0,
                format!(
                    "{OURS_SUBMIT} {} (limit 2 µs; fastest slice {}); {}{}",
                    human_ns(ours.ns),
                    human_ns(ours.range.0),
                    peers.join(", "),
                    fastest.map_or(String::new(), |f| paired_text(ours, f))
                ),
            ));
        }
    }
    if let Some(idle) = idle {
        verdicts.push(Verdict::new(
            "idle pool under 1% CPU after 10 ms",
            idle.percent() < 1.0,
            format!(
                "{:.3}% of one CPU over {:?} after {:?} idle, {} workers started (getrusage: {} µs; /proc/self/stat utime+stime: {} ticks of {} ms, its resolution, = {:.0}%)",
                idle.percent(),
                idle.window,
                idle.settle,
                idle.workers,
                idle.used.precise.as_micros(),
                idle.used.ticks,
                1000 / crate::procfs::ticks_per_second().max(1),
                idle.percent_from_ticks(),
            ),
        ));
    }
    verdicts
}

/// Process start-up within 1.5x of the spawn floor measured in the same run (issue 13): what
/// "under 1 ms" means on a machine whose floor is not the ~0.7 ms it was measured at.
fn startup_against_floor<'a>(
    find: &impl Fn(&str) -> Option<&'a ScenarioResult>,
) -> Option<Verdict> {
    let r = find(process::STARTUP)?;
    let ours = r.measured.iter().find(|m| is_ours(m))?;
    let name = "process start-up: within 1.5x of the spawn floor (one spawn of this binary to its first byte)";
    Some(match r.get(process::SPAWN_FLOOR) {
        Some(floor) => Verdict::new(
            name,
            ours.ns <= 1.5 * floor.ns,
            format!(
                "{} {} vs {} {}: ratio {:.2} (limit 1.50){}",
                ours.name,
                human_ns(ours.ns),
                floor.name,
                human_ns(floor.ns),
                ours.ns / floor.ns,
                paired_text(ours, floor),
            ),
        ),
        None => Verdict::skipped(name, "the spawn floor was not measured"),
    })
}

/// What the start-up's absolute budget is up against on this machine: the smallest Rust
/// program's spawn to its first byte, measured in the same run.
fn hello_floor_text<'a>(find: &impl Fn(&str) -> Option<&'a ScenarioResult>) -> String {
    match find(process::STARTUP).and_then(|r| r.get(process::SPAWN_FLOOR_HELLO)) {
        Some(hello) => format!(
            "; the smallest Rust program's spawn to its first byte here: {} ({} .. {})",
            human_ns(hello.ns),
            human_ns(hello.range.0),
            human_ns(hello.range.1)
        ),
        None => String::new(),
    }
}

/// The process pool (issue 6, DESIGN §6): an absolute budget per scenario, the round trip
/// against the raw-pipe floor, and at least 5x CPython's `ProcessPoolExecutor` on each.
fn process_budgets<'a>(find: &impl Fn(&str) -> Option<&'a ScenarioResult>) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    let rate = |ns: f64| {
        let per_second = 1e9 / ns;
        if per_second >= 1e6 {
            format!("{:.2} M items/s", per_second / 1e6)
        } else {
            format!("{:.1} k items/s", per_second / 1e3)
        }
    };
    let ours_of = |name: &str| {
        find(name).and_then(|r| r.measured.iter().find(|m| is_ours(m)).map(|m| (r, m)))
    };
    // (scenario, absolute budget's name, limit in ns, how to print a figure)
    let absolute: [(&str, &str, f64, bool); 4] = [
        (
            process::STARTUP,
            "process start-up (2-worker pool to first result): under 1 ms",
            1e6,
            false,
        ),
        (
            process::MAP_1,
            "process map at chunksize 1: at least 100k items/s",
            1e9 / 1e5,
            true,
        ),
        (
            process::MAP_1000,
            "process map at chunksize 1000: at least 20 M items/s",
            1e9 / 20e6,
            true,
        ),
        (
            process::DEATH_TO_ERROR,
            "process SIGKILL of a busy worker to WorkerDied on its future: under 0.5 ms",
            0.5e6,
            false,
        ),
    ];
    for (scenario, name, limit, is_rate) in absolute {
        let Some((_, ours)) = ours_of(scenario) else {
            continue;
        };
        let figure = if is_rate {
            format!(
                "{} {} ({:.1} ns per item; limit {:.1} ns)",
                ours.name,
                rate(ours.ns),
                ours.ns,
                limit
            )
        } else {
            format!(
                "{} {} (median of {} samples, {} .. {}; limit {})",
                ours.name,
                human_ns(ours.ns),
                ours.rounds.len(),
                human_ns(ours.range.0),
                human_ns(ours.range.1),
                human_ns(limit)
            )
        };
        let floors = if scenario == process::STARTUP {
            hello_floor_text(find)
        } else {
            String::new()
        };
        verdicts.push(Verdict::new(name, ours.ns < limit, figure + &floors));
    }
    verdicts.extend(startup_against_floor(find));
    for (scenario, placement) in [
        (process::ROUND_TRIP_1CPU, "both on one CPU"),
        (process::ROUND_TRIP_SPLIT, "caller and worker on two CPUs"),
        (
            process::ROUND_TRIP,
            "unpinned: the scheduler may place each side differently",
        ),
    ] {
        let Some((r, ours)) = ours_of(scenario) else {
            continue;
        };
        let name = format!(
            "process round trip (no-op submit then result), {placement}: within 1.2x of a raw pipe round trip"
        );
        verdicts.push(match r.get(process::RAW_PIPE) {
            Some(raw) => Verdict::new(
                &name,
                ours.ns <= 1.2 * raw.ns,
                format!(
                    "{} {} vs {} {}: ratio {:.3} (limit 1.200){}; raw_pipe: {}-byte frames to compare re-run as an echo child, and back",
                    ours.name,
                    human_ns(ours.ns),
                    raw.name,
                    human_ns(raw.ns),
                    ours.ns / raw.ns,
                    paired_text(ours, raw),
                    process::RAW_BYTES
                ),
            ),
            None => Verdict::skipped(&name, "the raw pipe was not measured"),
        });
    }
    for scenario in process::ALL {
        let Some((r, ours)) = ours_of(scenario) else {
            continue;
        };
        verdicts.push(at_most_times(
            &format!("{scenario}: at least 5x faster than CPython's ProcessPoolExecutor"),
            ours,
            r.get(python::PEER),
            0.2,
        ));
    }
    verdicts
}
