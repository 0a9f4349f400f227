//! CPU time other processes took while a scenario ran: the host-level noise its tail and block
//! figures may hold. On this VM the largest share is usually `kdamond.0`, the kernel's DAMON
//! page-out monitor, which runs ~0.8 ms every 0.5 s (sometimes 3-4 ms at once) and preempts
//! whatever runs on its CPU: 0.8 ms adds 0.16 µs to the mean of a 5,000-call block of 0.35 µs
//! round trips, and a 2 ms run doubles it.
//!
//! Every process but this one and its descendants (pool workers, echo children, the CPython
//! peer and its workers) counts, kernel threads included, by the nanosecond: the sum over its
//! threads of the first and third fields of `/proc/<pid>/task/<tid>/schedstat` (time on a CPU,
//! and the number of times it was scheduled). What other guests of the host took shows only as
//! `steal` in `/proc/stat`, to the clock tick. Linux only; elsewhere nothing is reported.

use std::collections::{HashMap, HashSet};

use crate::procfs::{fields_after_comm, schedstat_of};

/// What one process had used when a [`Snapshot`] was taken.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Usage {
    comm: String,
    /// When the process started (clock ticks after boot): a pid reused since is another process.
    started: u64,
    cpu_ns: u64,
    slices: u64,
}

/// The CPU use of every other process at one moment, and the CPU time the hypervisor had
/// taken from this machine so far (`steal` in `/proc/stat`: other guests on the host, which no
/// process here shows).
#[derive(Debug, Default)]
pub struct Snapshot {
    usage: HashMap<u32, Usage>,
    steal_ticks: Option<u64>,
}

/// What one other process took between two snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Took {
    /// Its command name (`/proc/<pid>/comm`).
    pub comm: String,
    /// Nanoseconds it spent on a CPU.
    pub cpu_ns: u64,
    /// Times it was scheduled onto a CPU.
    pub slices: u64,
}

impl Snapshot {
    /// Every other process's CPU use now; empty without `/proc`.
    pub fn now() -> Self {
        let me = std::process::id();
        let mut parents = HashMap::new();
        let mut usage = HashMap::new();
        let steal_ticks = steal_ticks();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Self::default();
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            // A process that exited since the listing is simply left out.
            let (Some(stat), Some((cpu_ns, slices))) = (stat_of(pid), schedstat_of(pid)) else {
                continue;
            };
            parents.insert(pid, stat.parent);
            usage.insert(
                pid,
                Usage {
                    comm: stat.comm,
                    started: stat.started,
                    cpu_ns,
                    slices,
                },
            );
        }
        let ours = family_of(me, &parents);
        usage.retain(|pid, _| !ours.contains(pid));
        Self { usage, steal_ticks }
    }

    /// CPU time the hypervisor took from this machine's CPUs since `self`, to the clock tick
    /// (10 ms with the usual `USER_HZ`); `None` without `/proc/stat`.
    pub fn steal_since(&self) -> Option<std::time::Duration> {
        let ticks = steal_ticks()?.saturating_sub(self.steal_ticks?);
        let per_second = crate::procfs::ticks_per_second().max(1);
        Some(std::time::Duration::from_millis(ticks * 1000 / per_second))
    }

    /// What each other process took since `self`, the largest first; a process that started
    /// since counts from zero, one that ended since is missing.
    pub fn since(&self) -> Vec<Took> {
        let mut took: Vec<Took> = Self::now()
            .usage
            .into_iter()
            .filter_map(|(pid, now)| {
                let (ns, slices) = match self.usage.get(&pid) {
                    // A kernel worker's name changes with its work queue, so the start time,
                    // not the name, tells a reused pid.
                    Some(then) if then.started == now.started => (then.cpu_ns, then.slices),
                    Some(_) | None => (0, 0),
                };
                let cpu_ns = now.cpu_ns.saturating_sub(ns);
                (cpu_ns > 0).then(|| Took {
                    comm: now.comm,
                    cpu_ns,
                    slices: now.slices.saturating_sub(slices),
                })
            })
            .collect();
        took.sort_by(|a, b| b.cpu_ns.cmp(&a.cpu_ns).then_with(|| a.comm.cmp(&b.comm)));
        took
    }
}

/// `took` as one line: the total, then the `top` largest (`kdamond.0 2.41 ms in 3 slices`).
pub fn text(took: &[Took], top: usize) -> String {
    let total: u64 = took.iter().map(|t| t.cpu_ns).sum();
    let mut line = format!("{:.2} ms in all", total as f64 / 1e6);
    for t in took.iter().take(top) {
        let plural = if t.slices == 1 { "" } else { "s" };
        line += &format!(
            "; {} {:.2} ms in {} slice{plural}",
            t.comm,
            t.cpu_ns as f64 / 1e6,
            t.slices
        );
    }
    line
}

/// The `steal` field of `/proc/stat`'s `cpu` line (all CPUs), in clock ticks.
fn steal_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    // user nice system idle iowait irq softirq steal ...
    cpu.split_whitespace().nth(7)?.parse().ok()
}

/// `pid` and every process below it in the `parents` tree (pid → parent pid).
fn family_of(pid: u32, parents: &HashMap<u32, u32>) -> HashSet<u32> {
    let mut family = HashSet::from([pid]);
    // Each pass adds the children of what is already in; a tree is done in its depth's passes.
    loop {
        let before = family.len();
        for (&child, parent) in parents {
            if family.contains(parent) {
                family.insert(child);
            }
        }
        if family.len() == before {
            return family;
        }
    }
}

/// What `/proc/<pid>/stat` says of a process that this module uses.
struct Stat {
    comm: String,
    parent: u32,
    started: u64,
}

fn stat_of(pid: u32) -> Option<Stat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) S ppid ...`: comm may hold spaces and parentheses.
    let comm = stat.get(stat.find('(')? + 1..stat.rfind(')')?)?.to_owned();
    let fields: Vec<&str> = fields_after_comm(&stat)?.split_whitespace().collect();
    // After the comm, counted from the state at 0: ppid is 1, starttime (field 22) is 19.
    Some(Stat {
        comm,
        parent: fields.get(1)?.parse().ok()?,
        started: fields.get(19)?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_family_is_the_process_and_everything_below_it() {
        let parents = HashMap::from([(10, 1), (11, 10), (12, 11), (13, 1), (14, 13)]);
        assert_eq!(family_of(10, &parents), HashSet::from([10, 11, 12]));
        assert_eq!(family_of(14, &parents), HashSet::from([14]));
    }

    #[test]
    fn a_process_outside_the_family_counts_and_a_child_does_not() {
        if !std::path::Path::new("/proc/self/task").exists() {
            return;
        }
        let before = Snapshot::now();
        // The outer shell prints the pid of a busy loop (5 s at most) it leaves behind, then
        // exits: the loop is reparented away from this process.
        let busy = "end=$(($(date +%s) + 5)); while [ $(date +%s) -lt $end ]; do :; done";
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("sh -c '{busy}' >/dev/null 2>&1 & echo $!")])
            .output()
            .unwrap();
        let orphan: u32 = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(4);
        while schedstat_of(orphan).map_or(0, |(ns, _)| ns) < 20_000_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the busy loop never ran"
            );
            std::thread::yield_now();
        }
        let took = before.since();
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let now = Snapshot::now();
        // SAFETY: kill(2) has no memory-safety preconditions; `orphan` is the loop started above.
        unsafe { libc::kill(orphan as libc::pid_t, libc::SIGKILL) };
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            took.iter()
                .any(|t| t.comm == "sh" && t.cpu_ns >= 20_000_000),
            "the reparented loop's CPU was not counted: {took:?}"
        );
        assert!(
            now.usage.contains_key(&orphan),
            "the reparented loop is missing"
        );
        assert!(
            before.steal_since().is_some(),
            "/proc/stat has no steal field"
        );
        assert!(
            !now.usage.contains_key(&child.id()),
            "a child of this process counted as another process"
        );
    }

    #[test]
    fn text_gives_the_total_then_the_largest() {
        let took = [
            Took {
                comm: "kdamond.0".into(),
                cpu_ns: 2_410_000,
                slices: 3,
            },
            Took {
                comm: "kworker/0:1".into(),
                cpu_ns: 90_000,
                slices: 1,
            },
        ];
        assert_eq!(
            text(&took, 1),
            "2.50 ms in all; kdamond.0 2.41 ms in 3 slices"
        );
        assert_eq!(
            text(&took, 5),
            "2.50 ms in all; kdamond.0 2.41 ms in 3 slices; kworker/0:1 0.09 ms in 1 slice"
        );
    }
}
