//! What `/proc` tells about this process's threads: whether one is asleep (so a scenario can
//! start its clock only once its partner is really blocked), and how much CPU time the
//! process used (the idle-pool figure).
//!
//! Linux only; elsewhere every query answers `None` and the callers fall back (a short sleep,
//! no idle figure).

use std::time::{Duration, Instant};

/// The calling thread's kernel id, if known.
pub fn current_tid() -> Option<i32> {
    imp::current_tid()
}

/// A thread's scheduler state letter (`R` running, `S` sleeping, `D` disk sleep, ...), read
/// from `/proc/self/task/<tid>/stat`.
pub fn thread_state(tid: i32) -> Option<u8> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    fields_after_comm(&stat)?.bytes().next()
}

/// Waits until thread `tid` sleeps (state `S`: blocked in the kernel), yielding between looks,
/// for at most `limit`. Returns whether it was seen asleep; without `/proc`, sleeps 2 ms and
/// answers `false`.
pub fn wait_until_asleep(tid: Option<i32>, limit: Duration) -> bool {
    let Some(tid) = tid else {
        std::thread::sleep(Duration::from_millis(2));
        return false;
    };
    let deadline = Instant::now() + limit;
    loop {
        match thread_state(tid) {
            Some(b'S') => return true,
            None => {
                std::thread::sleep(Duration::from_millis(2));
                return false;
            }
            Some(_) if Instant::now() >= deadline => return false,
            Some(_) => std::thread::yield_now(),
        }
    }
}

/// Nanoseconds on a CPU so far of every live thread of process `pid` (the first field of each
/// `/proc/<pid>/task/<tid>/schedstat`, to the nanosecond where `/proc/<pid>/stat` counts
/// 10 ms ticks).
pub fn cpu_ns_of(pid: u32) -> Option<u64> {
    schedstat_of(pid).map(|(ns, _)| ns)
}

/// Nanoseconds on a CPU and times scheduled onto one, so far, summed over the live threads of
/// process `pid` (the first and third fields of each `/proc/<pid>/task/<tid>/schedstat`).
pub fn schedstat_of(pid: u32) -> Option<(u64, u64)> {
    let (mut ns, mut slices) = (0u64, 0u64);
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let mut path = task.ok()?.path();
        path.push("schedstat");
        // A thread that exited since the listing counts nothing.
        if let Ok(schedstat) = std::fs::read_to_string(path) {
            let mut fields = schedstat.split_whitespace();
            ns += fields.next()?.parse::<u64>().ok()?;
            // The second field is the time spent waiting on a run queue.
            slices += fields.nth(1)?.parse::<u64>().ok()?;
        }
    }
    Some((ns, slices))
}

/// The fields of a `/proc/.../stat` line after the command name, from the state on: the name
/// may hold spaces and parentheses, so the split is after the last `)`.
pub fn fields_after_comm(stat: &str) -> Option<&str> {
    Some(stat[stat.rfind(')')? + 1..].trim_start())
}

/// CPU time the whole process has used so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTime {
    /// `utime + stime` from `/proc/self/stat`, in clock ticks (`USER_HZ`, usually 100 a second).
    pub ticks: u64,
    /// `ru_utime + ru_stime` from `getrusage(RUSAGE_SELF)`, to the microsecond.
    pub precise: Duration,
}

impl CpuTime {
    /// The process's CPU time now, if `/proc/self/stat` is readable.
    pub fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let rest = fields_after_comm(&stat)?;
        // After the comm: state is field 3, utime 14 and stime 15 (1-based), so 11 and 12
        // counted from the state at 0.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some(Self {
            ticks: utime + stime,
            precise: imp::rusage_self().unwrap_or_default(),
        })
    }

    /// The CPU time used between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuTime) -> CpuTime {
        CpuTime {
            ticks: self.ticks.saturating_sub(earlier.ticks),
            precise: self.precise.saturating_sub(earlier.precise),
        }
    }
}

/// The CPU model (`model name` in `/proc/cpuinfo`), if known.
pub fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_string())
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`), as printed there.
pub fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Clock ticks per second of `/proc/self/stat`'s times.
pub fn ticks_per_second() -> u64 {
    imp::ticks_per_second()
}

#[cfg(target_os = "linux")]
mod imp {
    use std::time::Duration;

    pub(super) fn current_tid() -> Option<i32> {
        // SAFETY: gettid has no preconditions and cannot fail.
        Some(unsafe { libc::gettid() })
    }

    pub(super) fn rusage_self() -> Option<Duration> {
        // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is a valid, writable `rusage` for the call's duration.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
            return None;
        }
        let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
        Some(Duration::from_micros(
            micros(usage.ru_utime) + micros(usage.ru_stime),
        ))
    }

    pub(super) fn ticks_per_second() -> u64 {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if hz > 0 { hz as u64 } else { 100 }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::time::Duration;

    pub(super) fn current_tid() -> Option<i32> {
        None
    }

    pub(super) fn rusage_self() -> Option<Duration> {
        None
    }

    pub(super) fn ticks_per_second() -> u64 {
        100
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn a_sleeping_thread_is_seen_asleep() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let sleeper = std::thread::spawn(move || {
            tid_tx.send(current_tid()).unwrap();
            let _ = rx.recv_timeout(Duration::from_secs(10));
        });
        let tid = tid_rx.recv().unwrap();
        assert!(wait_until_asleep(tid, Duration::from_secs(5)));
        assert_eq!(thread_state(current_tid().unwrap()), Some(b'R'));
        drop(tx);
        sleeper.join().unwrap();
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn cpu_time_grows_with_work() {
        let before = CpuTime::now().unwrap();
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let used = CpuTime::now().unwrap().since(&before);
        assert!(used.precise >= Duration::from_millis(10), "{used:?}");
    }
}
