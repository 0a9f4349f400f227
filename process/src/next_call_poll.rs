//! Whether a spawned worker polls for its next call after answering an awaited one
//! (`crate::pipe_spin`).
//!
//! The poll pays when the caller calls again at once, as in a loop of submit-then-wait. When
//! it does not (a call every few hundred microseconds, after the caller's own work), every
//! window runs out and costs the worker its whole length in CPU for nothing: 53 µs of worker
//! CPU per call at one call every 300 µs, measured here. So after [`MISSES_BEFORE_SKIPPING`]
//! windows in a row that saw no call, the worker skips the next windows: 1, then 2, 4, … up to
//! [`SKIP_AT_MOST`] of them between two polled ones. A window that sees its call, or a call
//! that comes soon after a skipped window, starts polling after every answer again.
//!
//! A single miss changes nothing: a burst of calls ends with one, and skipping the next
//! burst's first window would cost that burst a wake-up without saving any CPU.

use std::time::{Duration, Instant};

use crate::pipe_spin::{Polled, WINDOW};

/// Missed windows in a row before windows are skipped.
const MISSES_BEFORE_SKIPPING: u32 = 2;

/// The most windows skipped between two polled ones: an idle worker then spends at most one
/// window's CPU per this many calls, and a caller that turns to back-to-back calls pays at
/// most this many unpolled round trips before a polled window sees it.
const SKIP_AT_MOST: u32 = 16;

/// A call read this soon after a skipped window would have been seen by a poll (the read
/// includes the blocked worker's wake-up, 40-60 µs on a virtual machine).
const SOON: Duration = WINDOW.saturating_mul(2);

/// What a worker remembers of its last windows. Invariant: `skip_left` is 0 while `misses` is
/// below [`MISSES_BEFORE_SKIPPING`].
#[derive(Debug, Default)]
pub(crate) struct NextCallPoll {
    /// Polled windows in a row that ended without the next call.
    misses: u32,
    /// Answers left whose window is skipped.
    skip_left: u32,
    /// When the last window was skipped, until the next call's first bytes are read.
    skipped_at: Option<Instant>,
}

impl NextCallPoll {
    /// After an awaited answer, before blocking for the next call: whether to poll first.
    pub(crate) fn should_poll(&mut self) -> bool {
        if self.skip_left == 0 {
            return true;
        }
        self.skip_left -= 1;
        self.skipped_at = Some(Instant::now());
        false
    }

    /// Records how a polled window ended.
    pub(crate) fn polled(&mut self, how: Polled) {
        match how {
            Polled::Readable => self.misses = 0,
            Polled::Missed => {
                self.misses = self.misses.saturating_add(1);
                if self.misses >= MISSES_BEFORE_SKIPPING {
                    let doublings = (self.misses - MISSES_BEFORE_SKIPPING).min(4);
                    self.skip_left = (1 << doublings).min(SKIP_AT_MOST);
                }
            }
            // Nothing was learnt about the caller.
            Polled::Skipped => {}
        }
    }

    /// The next call's first bytes were read (reads the clock only after a skipped window).
    pub(crate) fn call_came(&mut self) {
        if let Some(skipped_at) = self.skipped_at.take() {
            self.call_came_at(skipped_at, Instant::now());
        }
    }

    fn call_came_at(&mut self, skipped_at: Instant, now: Instant) {
        if now.saturating_duration_since(skipped_at) < SOON {
            self.misses = 0;
            self.skip_left = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which of `answers` answers poll, each polled window missing.
    fn decisions_all_missing(poll: &mut NextCallPoll, answers: usize) -> Vec<bool> {
        (0..answers)
            .map(|_| {
                let polls = poll.should_poll();
                if polls {
                    poll.polled(Polled::Missed);
                }
                poll.skipped_at = None;
                polls
            })
            .collect()
    }

    #[test]
    fn windows_that_keep_missing_are_skipped_more_and_more_up_to_the_limit() {
        let mut poll = NextCallPoll::default();
        let decisions = decisions_all_missing(&mut poll, 80);
        let polled_at: Vec<usize> = (0..decisions.len()).filter(|&i| decisions[i]).collect();
        let gaps: Vec<usize> = polled_at.windows(2).map(|w| w[1] - w[0] - 1).collect();
        // Two misses in a row before the first skip, then 1, 2, 4, 8, 16, 16, ... skipped.
        assert_eq!(&gaps[..7], &[0, 1, 2, 4, 8, 16, 16]);
        assert!(gaps.iter().all(|&gap| gap <= SKIP_AT_MOST as usize));
    }

    #[test]
    fn a_single_miss_between_caught_windows_skips_nothing() {
        let mut poll = NextCallPoll::default();
        for _ in 0..10 {
            assert!(poll.should_poll());
            poll.polled(Polled::Missed);
            for _ in 0..3 {
                assert!(poll.should_poll());
                poll.polled(Polled::Readable);
            }
        }
    }

    #[test]
    fn a_caught_window_polls_every_answer_again() {
        let mut poll = NextCallPoll::default();
        decisions_all_missing(&mut poll, 40);
        while !poll.should_poll() {}
        poll.polled(Polled::Readable);
        assert!((0..5).all(|_| poll.should_poll()));
    }

    #[test]
    fn a_call_soon_after_a_skipped_window_polls_every_answer_again() {
        let mut poll = NextCallPoll::default();
        decisions_all_missing(&mut poll, 40);
        assert!(!poll.should_poll());
        let skipped_at = poll.skipped_at.take().expect("a skip is recorded");
        poll.call_came_at(skipped_at, skipped_at + Duration::from_micros(10));
        assert!((0..5).all(|_| poll.should_poll()));
    }

    #[test]
    fn a_late_call_after_a_skipped_window_keeps_skipping() {
        let mut poll = NextCallPoll::default();
        decisions_all_missing(&mut poll, 40);
        let left = poll.skip_left;
        assert!(left > 1 && !poll.should_poll());
        let skipped_at = poll.skipped_at.take().expect("a skip is recorded");
        poll.call_came_at(skipped_at, skipped_at + Duration::from_millis(1));
        assert_eq!(poll.skip_left, left - 1);
        assert!(!poll.should_poll());
    }

    #[test]
    fn unpolled_windows_teach_nothing() {
        let mut poll = NextCallPoll::default();
        poll.polled(Polled::Missed);
        for _ in 0..10 {
            poll.polled(Polled::Skipped);
        }
        assert!(
            poll.should_poll(),
            "one miss, then nothing learnt: still polling"
        );
        poll.polled(Polled::Missed);
        assert!(!poll.should_poll(), "the second miss in a row skips");
    }
}
