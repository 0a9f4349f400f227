//! How long an idle worker spins, watching the queue, before it sleeps.
//!
//! Spinning pays when the next task comes from a thread running on another CPU: a
//! submit-then-result loop's turnaround is under a microsecond, while waking a sleeping worker
//! on another CPU costs tens of microseconds on a virtual machine. So an idle worker looks at
//! the queue every [`PAUSES_PER_POLL`] pauses for [`WINDOW`] before it sleeps: a loop that submits again within
//! that window finds its worker awake on its own CPU, every call, instead of falling into a
//! wake-up on some calls and not on others. With one CPU the worker sleeps at once (spinning
//! would only delay the submitter).
//!
//! Nor on the latest submit's CPU ([`SubmitCpu`]): there the submitter cannot submit again
//! until this worker stops spinning, and every call would pay the whole window. Such a
//! worker first moves itself to another allowed CPU ([`move_off_this_cpu`], at most once per
//! [`NUDGE_EVERY`]) and spins there; if it cannot, it sleeps at once, letting the submitter run.
//!
//! Never `sched_yield`: a yielding worker hands its CPU to any other runnable thread for that
//! thread's whole time slice (milliseconds under EEVDF, which moves a yielder's deadline back
//! a full slice), and a task submitted meanwhile waits that long, since a spinning worker is
//! not a sleeper for the submit to wake. A worker that sleeps is woken by the submit instead,
//! and the scheduler places it on an idle CPU if there is one.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long an idle worker spins: some twenty submit-then-result turnarounds, about one
/// cross-CPU wake-up; an idle pool stops using CPU this long after its last task.
const WINDOW: Duration = Duration::from_micros(20);
/// Pauses between two looks at the queue (a pause is some 40 ns here), about 0.3 µs: a task
/// pushed meanwhile waits for the next look. Looking more often costs the submitter: the
/// look reads the queue's tail, which each push must take back (measured with `compare
/// --quick --only pool`, interleaved runs at load 2: every 2 pauses, round trip 0.27-0.31
/// µs and throughput 126-139 ns per task; every 8, 0.34 µs and 114-120 ns; every 16,
/// 0.52-0.63 µs and 104-111 ns; the yielding worker before this one, 0.50-0.57 µs and
/// 109-113 ns).
const PAUSES_PER_POLL: u32 = 8;
/// Looks at the queue between two looks at the clock (a clock read costs some 30 ns): the
/// window ends within about 2.5 µs of [`WINDOW`].
const POLLS_PER_CLOCK: u32 = 8;

/// Calls `poll` until it returns something or [`WINDOW`] passes (at once, with one CPU or
/// while the latest submit ran on this CPU and the worker may not or cannot move off it).
pub(crate) fn spin<T>(
    submits: &SubmitCpu,
    may_move: bool,
    mut poll: impl FnMut() -> Option<T>,
) -> Option<T> {
    if !spinning_helps() || (submits.on_this_cpu() && !(may_move && move_off_this_cpu())) {
        return None;
    }
    let start = Instant::now();
    let mut polls = 0u32;
    loop {
        for _ in 0..PAUSES_PER_POLL {
            core::hint::spin_loop();
        }
        if let Some(found) = poll() {
            return Some(found);
        }
        polls += 1;
        if polls % POLLS_PER_CLOCK == 0 && (start.elapsed() >= WINDOW || submits.on_this_cpu()) {
            return None;
        }
    }
}

/// How often a worker may move itself off the submitter's CPU. Between two moves a sequential
/// loop that the scheduler put back on one CPU with its worker (a wake-up placed there, or a
/// parked submitter woken on the worker's new CPU) runs at 4-6 µs a call instead of 0.3 µs: at
/// 10 ms, 142-601 of 880 blocks of 5,000 calls were over twice the best block's mean (a loop of
/// 40 slices of 110,000 submit-then-`into_result` calls, 100 ms apart; with the waiter's yield
/// window of `concur_core`, 53-120), at 1 ms 2-4 of 880 (with the window), at 200 µs 210-316
/// (moves that often bounce the pair back and forth). Each move costs a migration: under a
/// stream of submits (100k at once) one of two busy workers keeps sharing the submitter's CPU,
/// and moving it every millisecond costs that throughput some 3-6% (`compare --quick --only
/// pool/throughput_100k`: 7.51-7.81 M tasks/s against 7.98-8.11 at 10 ms, quiet machine).
const NUDGE_EVERY: Duration = Duration::from_millis(1);

/// The CPU the latest submit ran on: a hint for idle workers, not part of the sleep/wake
/// protocol (whatever it says, a worker that stops spinning sleeps by that protocol's rules).
#[derive(Debug)]
pub(crate) struct SubmitCpu(AtomicU32);

/// No CPU noted (or `sched_getcpu` is unavailable).
const UNKNOWN: u32 = u32::MAX;

impl SubmitCpu {
    pub(crate) fn new() -> Self {
        Self(AtomicU32::new(UNKNOWN))
    }

    /// Notes the calling (submitting) thread's CPU. Stores only on a change, so a loop that
    /// stays on one CPU does not pull the line away from the workers that read it.
    pub(crate) fn note(&self) {
        let cpu = current_cpu();
        // ORDERING: Relaxed: a hint; nothing is published through it.
        if self.0.load(Ordering::Relaxed) != cpu {
            self.0.store(cpu, Ordering::Relaxed);
        }
    }

    /// Whether the latest submit ran on the calling thread's CPU.
    fn on_this_cpu(&self) -> bool {
        // ORDERING: Relaxed: a hint, as in `note`.
        let noted = self.0.load(Ordering::Relaxed);
        noted != UNKNOWN && noted == current_cpu()
    }
}

/// The calling thread's CPU (`sched_getcpu`: a read of the rseq area or a vDSO call, a few
/// nanoseconds), or [`UNKNOWN`].
fn current_cpu() -> u32 {
    #[cfg(all(target_os = "linux", not(concur_loom), not(miri)))]
    {
        // SAFETY: sched_getcpu has no preconditions; it returns -1 on failure.
        let cpu = unsafe { libc::sched_getcpu() };
        u32::try_from(cpu).unwrap_or(UNKNOWN)
    }
    #[cfg(not(all(target_os = "linux", not(concur_loom), not(miri))))]
    {
        UNKNOWN
    }
}

thread_local! {
    /// When this thread last tried to move off its CPU (the [`NUDGE_EVERY`] rate limit).
    static LAST_MOVE: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// Moves the calling thread to another of its allowed CPUs (at most once per [`NUDGE_EVERY`]
/// per thread); returns whether it now runs on another CPU.
///
/// A worker that finds the submitter on its CPU would otherwise sleep at once on every call
/// and be woken there again: on a 2-CPU machine the scheduler's wake-up placement does not
/// look for the idle CPU (its idle scan is cut short on a small, half-busy cache domain), so
/// the pair stays on one CPU at some 4 µs a round trip, for thousands of calls, while the
/// other CPU idles. Narrowing the thread's CPU mask to the others moves it before the call
/// returns; the whole mask is then put back at once, so the scheduler may move it anywhere
/// later (a mask changed by someone else between the two calls would be overwritten).
fn move_off_this_cpu() -> bool {
    let now = Instant::now();
    if LAST_MOVE
        .get()
        .is_some_and(|t| now.duration_since(t) < NUDGE_EVERY)
    {
        return false;
    }
    LAST_MOVE.set(Some(now));
    #[cfg(all(target_os = "linux", not(concur_loom), not(miri)))]
    // SAFETY: zeroed cpu_set_t values are valid empty sets; sched_getaffinity and
    // sched_setaffinity read and write them for the calling thread (pid 0) within their size.
    unsafe {
        let size = core::mem::size_of::<libc::cpu_set_t>();
        let mut allowed: libc::cpu_set_t = core::mem::zeroed();
        if libc::sched_getaffinity(0, size, &mut allowed) != 0 || libc::CPU_COUNT(&allowed) < 2 {
            return false;
        }
        let Ok(here) = usize::try_from(libc::sched_getcpu()) else {
            return false;
        };
        let mut elsewhere = allowed;
        libc::CPU_CLR(here, &mut elsewhere);
        if libc::sched_setaffinity(0, size, &elsewhere) != 0 {
            return false;
        }
        // The move happened before the call returned; the thread keeps its whole mask.
        libc::sched_setaffinity(0, size, &allowed);
        usize::try_from(libc::sched_getcpu()).is_ok_and(|now| now != here)
    }
    #[cfg(not(all(target_os = "linux", not(concur_loom), not(miri))))]
    false
}

/// Spinning only helps when the submitter can run on another CPU meanwhile.
fn spinning_helps() -> bool {
    static MANY: OnceLock<bool> = OnceLock::new();
    *MANY.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

#[cfg(all(test, target_os = "linux", not(miri)))]
mod tests {
    use super::*;

    /// Pins the calling thread to the CPU it runs on, so that `sched_getcpu` stays put.
    /// `spinning_helps` is decided first, from the unpinned mask: it is computed once per
    /// process from the calling thread's mask, and a pinned first caller would turn spinning
    /// off for every test.
    fn pin_here() -> u32 {
        let _ = spinning_helps();
        // SAFETY: sched_getcpu has no preconditions.
        let cpu = unsafe { libc::sched_getcpu() };
        let cpu = usize::try_from(cpu).expect("sched_getcpu works here");
        // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it, and
        // sched_setaffinity reads it for the calling thread (pid 0).
        unsafe {
            let mut set: libc::cpu_set_t = core::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            assert_eq!(
                libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set),
                0
            );
        }
        u32::try_from(cpu).expect("small CPU number")
    }

    #[test]
    fn a_worker_on_the_submitters_cpu_does_not_spin() {
        std::thread::spawn(|| {
            pin_here();
            let submits = SubmitCpu::new();
            submits.note();
            assert!(submits.on_this_cpu());
            let mut polls = 0;
            assert_eq!(
                spin(&submits, true, || {
                    polls += 1;
                    None::<()>
                }),
                None
            );
            assert_eq!(polls, 0, "it spun on the submitter's CPU");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_worker_that_may_not_move_never_tries() {
        std::thread::spawn(|| {
            pin_here();
            let submits = SubmitCpu::new();
            submits.note();
            assert_eq!(spin(&submits, false, || Some(())), None);
            assert_eq!(LAST_MOVE.get(), None, "it tried to move");
            // The same worker, allowed to move, tries (and fails: its mask holds one CPU),
            // where spinning helps at all.
            assert_eq!(spin(&submits, true, || Some(())), None);
            assert_eq!(LAST_MOVE.get().is_some(), spinning_helps(), "move attempts");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_worker_moves_off_its_cpu_and_keeps_its_mask() {
        std::thread::spawn(|| {
            let size = core::mem::size_of::<libc::cpu_set_t>();
            // SAFETY: zeroed cpu_set_t values are valid; the calls read and write within size.
            let mask = || unsafe {
                let mut set: libc::cpu_set_t = core::mem::zeroed();
                assert_eq!(libc::sched_getaffinity(0, size, &mut set), 0);
                set
            };
            let before = mask();
            // SAFETY: as above.
            let allowed = unsafe { libc::CPU_COUNT(&before) };
            // SAFETY: sched_getcpu has no preconditions.
            let here = unsafe { libc::sched_getcpu() };
            let moved = move_off_this_cpu();
            // SAFETY: as above.
            let now = unsafe { libc::sched_getcpu() };
            assert_eq!(moved, allowed > 1, "allowed CPUs: {allowed}");
            if moved {
                assert_ne!(now, here);
            }
            let after = mask();
            // SAFETY: CPU_EQUAL compares two valid sets.
            let same = unsafe { libc::CPU_EQUAL(&before, &after) };
            assert!(same, "the mask was not restored");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_worker_elsewhere_spins_until_it_finds_work() {
        std::thread::spawn(|| {
            let cpu = pin_here();
            let submits = SubmitCpu::new();
            // ORDERING: Relaxed: a test of the hint alone.
            submits.0.store(cpu + 1, Ordering::Relaxed);
            assert!(!submits.on_this_cpu());
            let mut polls = 0;
            let found = spin(&submits, true, || {
                polls += 1;
                (polls == 3).then_some(polls)
            });
            if spinning_helps() {
                assert_eq!(found, Some(3));
            } else {
                assert_eq!((found, polls), (None, 0));
            }
        })
        .join()
        .unwrap();
    }
}
