//! Waiting for a pipe to turn readable by polling it for a few tens of microseconds before
//! blocking in `read`, on both ends of a round trip with a spawned worker: the caller's driver
//! waiting for the answer, the worker waiting for its next call.
//!
//! A reader blocked on an idle virtual CPU is woken through the hypervisor: 40-60 µs on this
//! VM, once per hop, so a round trip across two CPUs cost 50-250 µs where one CPU cost 7 µs.
//! A reader that is still running when the bytes land needs no wake-up at all, and the round
//! trip across two CPUs falls to about 4 µs.
//!
//! Polling only helps when the other side runs on another CPU. On a shared CPU it steals the
//! other side's time, so the poll loop yields between polls, and a yield that gave the CPU to
//! some other thread (it took [`SWITCHED`] or more) and came back to the answer says the other
//! side ran here: the CPU is shared. (A switched yield that finds nothing is some third thread's
//! short turn and polling goes on: counted as shared, such turns, common while other pools idle
//! in the same process, kept whole runs of round trips blocking.) The reader then goes straight
//! to blocking while it stays on that CPU, for its next [`SHARED_FOR`] waits, before it probes
//! again. Each probe that finds the CPU still shared
//! doubles that count, up to [`SHARED_AT_MOST`]: on one CPU a probe costs a yield's hand-off
//! instead of a blocked read's, and at one probe per millisecond on each side the probes made
//! ~1% of the round trips, right where p99 is read. Counted in waits, not time, so a believed
//! wait reads no clock (two clock reads per wait on each side cost the one-CPU round trip ~3%).
//!
//! Where the other side's CPU is known, nothing is guessed: an AWAITED_CALL names the CPU its
//! caller wrote it from, and a RESULT the CPU its worker answered on. A reader on that CPU then
//! blocks at once, and one on another CPU polls ([`PipeSpin::poll_across`]); the pool keeps
//! each worker's last CPU across loans, so only a driver whose worker has answered nothing yet
//! guesses. Guessing on the worker's side went wrong whenever a second worker shared the first
//! one's CPU: its turns looked like the caller's, and the worker blocked for hundreds of round
//! trips with the caller on the other CPU.

use std::cell::Cell;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// How long a reader polls before it blocks: above a no-op round trip across two CPUs
/// (about 4 µs) with room for a short task, below the cost of the wake-up it saves.
pub(crate) const WINDOW: Duration = Duration::from_micros(50);

/// A yield this long ran another thread on this CPU: a yield with nothing else to run returns
/// in well under a microsecond here, a switch to another process and back takes 3 µs or more.
const SWITCHED: Duration = Duration::from_micros(2);

/// A yield this long gave the CPU to another thread's time slice, not to a short turn.
const LONG_YIELD: Duration = Duration::from_micros(50);

/// For how many waits a reader that found its CPU shared blocks at once while it stays on
/// that CPU, after a first finding: about 1 ms of one-CPU round trips (a false finding, when
/// some other thread ran for a moment, costs that many waits unpolled).
const SHARED_FOR: u32 = 128;

/// The most waits it believes so after findings in a row (about 16 ms on one CPU).
const SHARED_AT_MOST: u32 = 2048;

/// What one reader (a thread) remembers between its waits.
#[derive(Default)]
pub(crate) struct PipeSpin {
    /// The CPU this reader last found shared, and for how many more waits to believe it.
    shared: Cell<Option<(libc::c_int, u32)>>,
    /// How many waits the last finding was believed for.
    held: Cell<u32>,
}

std::thread_local! {
    static THIS_THREAD: PipeSpin = PipeSpin::default();
}

/// How a poll of [`PipeSpin::poll`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Polled {
    /// The pipe turned readable (or reached end of input).
    Readable,
    /// Polled to the end of the window (or the deadline), or until another thread took the
    /// CPU for a whole slice, without the pipe turning readable.
    Missed,
    /// Not polled: one CPU, or a CPU believed shared with the other side.
    Skipped,
}

impl PipeSpin {
    /// Polls `fd` until it is readable (or at end of input), for at most [`WINDOW`] and never
    /// past `deadline`. Returns whether it is readable; false only says "block now".
    pub(crate) fn until_readable(&self, fd: RawFd, deadline: Option<Instant>) -> bool {
        self.poll(fd, deadline) == Polled::Readable
    }

    /// [`PipeSpin::until_readable`], saying how the poll ended.
    pub(crate) fn poll(&self, fd: RawFd, deadline: Option<Instant>) -> Polled {
        if !crate::sys::several_cpus() {
            return Polled::Skipped;
        }
        let cpu = crate::sys::current_cpu();
        let mut again = false;
        if let Some((shared_cpu, left)) = self.shared.get() {
            if shared_cpu == cpu && left > 0 {
                self.shared.set(Some((cpu, left - 1)));
                return Polled::Skipped;
            }
            again = shared_cpu == cpu;
            self.shared.set(None);
        }
        self.window(fd, deadline, Some((cpu, again)))
    }

    /// Polls one window (never past `deadline`) for bytes from a writer known to run on
    /// another CPU: nothing is believed or learnt about sharing this one (a switched yield ran
    /// some third thread).
    pub(crate) fn poll_across(fd: RawFd, deadline: Option<Instant>) -> Polled {
        if !crate::sys::several_cpus() {
            return Polled::Skipped;
        }
        Self::default().window(fd, deadline, None)
    }

    /// The poll loop; `learn` is this CPU and whether it was found shared last time, to record
    /// a finding that it is.
    fn window(
        &self,
        fd: RawFd,
        deadline: Option<Instant>,
        learn: Option<(libc::c_int, bool)>,
    ) -> Polled {
        let start = Instant::now();
        let end = deadline.map_or(start + WINDOW, |d| d.min(start + WINDOW));
        loop {
            if crate::sys::readable_now(fd) {
                return Polled::Readable;
            }
            let yielded = Instant::now();
            if yielded >= end {
                return Polled::Missed;
            }
            crate::sys::yield_cpu();
            let took = yielded.elapsed();
            if took < SWITCHED {
                continue;
            }
            if crate::sys::readable_now(fd) {
                // The yield ran the other side here, and it answered: the CPU is shared.
                if let Some((cpu, again)) = learn {
                    self.believe_shared(cpu, again);
                }
                return Polled::Readable;
            }
            if took >= LONG_YIELD {
                // Some other thread took a whole slice: each further yield may hand it another.
                return Polled::Missed;
            }
        }
    }

    /// Records that `cpu` is shared with the other side; `again` if the last finding was too.
    fn believe_shared(&self, cpu: libc::c_int, again: bool) {
        let hold = if again {
            (self.held.get() * 2).clamp(SHARED_FOR, SHARED_AT_MOST)
        } else {
            SHARED_FOR
        };
        self.held.set(hold);
        self.shared.set(Some((cpu, hold)));
    }

    /// [`PipeSpin::until_readable`] with the calling thread's memory.
    pub(crate) fn on_this_thread(fd: RawFd, deadline: Option<Instant>) -> bool {
        THIS_THREAD.with(|spin| spin.until_readable(fd, deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn bytes_already_in_the_pipe_are_seen_at_once() {
        let (reader, writer) = crate::sys::pipe().unwrap();
        crate::sys::write_all(writer.as_raw_fd(), b"x").unwrap();
        // On a one-CPU machine nothing is polled: the answer is always "block now".
        let polls = crate::sys::several_cpus();
        assert_eq!(
            PipeSpin::default().until_readable(reader.as_raw_fd(), None),
            polls
        );
    }

    #[test]
    fn an_empty_pipe_is_given_up_within_the_deadline() {
        let (reader, _writer) = crate::sys::pipe().unwrap();
        let deadline = Instant::now() + Duration::from_micros(200);
        assert!(!PipeSpin::default().until_readable(reader.as_raw_fd(), Some(deadline)));
        assert!(Instant::now() < deadline + Duration::from_millis(50));
    }

    #[test]
    fn a_closed_writer_counts_as_readable() {
        let (reader, writer) = crate::sys::pipe().unwrap();
        drop(writer);
        let polls = crate::sys::several_cpus();
        assert_eq!(
            PipeSpin::default().until_readable(reader.as_raw_fd(), None),
            polls
        );
    }

    #[test]
    fn a_poll_across_cpus_sees_bytes_at_once_and_gives_up_by_its_deadline() {
        let (reader, writer) = crate::sys::pipe().unwrap();
        let empty = Instant::now() + Duration::from_micros(200);
        let missed = PipeSpin::poll_across(reader.as_raw_fd(), Some(empty));
        assert!(Instant::now() < empty + Duration::from_millis(50));
        crate::sys::write_all(writer.as_raw_fd(), b"x").unwrap();
        let seen = PipeSpin::poll_across(reader.as_raw_fd(), None);
        // On a one-CPU machine nothing is polled.
        if crate::sys::several_cpus() {
            assert_eq!((missed, seen), (Polled::Missed, Polled::Readable));
        } else {
            assert_eq!((missed, seen), (Polled::Skipped, Polled::Skipped));
        }
    }

    /// Pins the calling thread to the CPU it runs on; returns that CPU and the old mask.
    fn pin_here() -> (libc::c_int, libc::cpu_set_t) {
        // SAFETY: plain-data out-parameters of the right size for the calling thread (pid 0).
        unsafe {
            let mut old: libc::cpu_set_t = std::mem::zeroed();
            assert_eq!(libc::sched_getaffinity(0, size_of_val(&old), &mut old), 0);
            let cpu = crate::sys::current_cpu();
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu as usize, &mut one);
            assert_eq!(libc::sched_setaffinity(0, size_of_val(&one), &one), 0);
            (cpu, old)
        }
    }

    #[test]
    fn a_cpu_found_shared_is_not_polled_again_until_the_reader_moves() {
        let (cpu, old_mask) = pin_here();
        let (reader, writer) = crate::sys::pipe().unwrap();
        crate::sys::write_all(writer.as_raw_fd(), b"x").unwrap();
        let spin = PipeSpin::default();
        spin.shared.set(Some((cpu, 2)));
        // Readable, but a reader that believes its CPU shared blocks at once, unpolled, for
        // as many waits as it believes it.
        let believed = [(); 2].map(|()| spin.until_readable(reader.as_raw_fd(), None));
        let after = spin.until_readable(reader.as_raw_fd(), None);
        // Another CPU polls again at once.
        spin.shared.set(Some((cpu + 1, 100)));
        let moved = spin.until_readable(reader.as_raw_fd(), None);
        // SAFETY: restores this thread's own mask, read above.
        unsafe { libc::sched_setaffinity(0, size_of_val(&old_mask), &old_mask) };
        assert_eq!(believed, [false, false]);
        // On one CPU nothing is polled at all.
        let polls = crate::sys::several_cpus();
        assert_eq!((after, moved), (polls, polls));
    }
}
