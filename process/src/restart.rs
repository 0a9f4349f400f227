//! Restarting workers that die before they are ready, and deciding when that is hopeless.
//!
//! A worker that dies during start-up (before its READY) is replaced, after a back-off that
//! starts at [`FIRST_BACKOFF`] and doubles with each consecutive start-up death up to
//! [`MAX_BACKOFF`], so a pool whose new workers keep dying restarts at most ten a second
//! instead of spinning. The pool is broken only by failures that repeat by themselves:
//! [`STARTUP_FAILURES`] consecutive workers exiting with a status, crashing (`SIGSEGV`,
//! `SIGABRT`, ...), failing the handshake or timing out, or `posix_spawn` failing. A worker
//! killed from outside (`SIGKILL` from an operator or the OOM killer, `SIGTERM`, `SIGINT`,
//! `SIGHUP`, `SIGQUIT`, none of them sent by the pool) says nothing about the next one, so it is
//! replaced after the back-off but never counts towards breaking the pool. Any worker becoming
//! ready resets both the count and the back-off.

use std::time::{Duration, Instant};

use crate::error::ExitStatus;

/// Consecutive workers that may fail to start by themselves before the pool is broken.
const STARTUP_FAILURES: u32 = 3;
/// Delay before replacing the first worker that died during start-up.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(1);
/// Longest delay between two start-up attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// How a worker that died during start-up died.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StartupDeath {
    /// Something about starting a worker fails, and will fail again.
    ByItself,
    /// A signal from outside the pool ended it.
    FromOutside,
}

impl StartupDeath {
    /// Classifies a start-up death by its status and whether the pool itself signalled the
    /// worker (then a `SIGKILL` status is the pool's, not someone else's).
    pub(crate) fn of(status: ExitStatus, signalled_by_pool: bool) -> Self {
        let external = matches!(
            status,
            ExitStatus::Signaled(
                libc::SIGKILL | libc::SIGTERM | libc::SIGINT | libc::SIGHUP | libc::SIGQUIT
            )
        );
        if external && !signalled_by_pool {
            StartupDeath::FromOutside
        } else {
            StartupDeath::ByItself
        }
    }
}

/// The pool's start-up failure count and back-off.
#[derive(Debug, Default)]
pub(crate) struct Restarts {
    failures: u32,
    backoff: Duration,
    not_before: Option<Instant>,
}

impl Restarts {
    /// A worker became ready: starting workers works.
    pub(crate) fn ready(&mut self) {
        *self = Restarts::default();
    }

    /// A worker failed to start at `now`; returns whether the pool must now be broken.
    pub(crate) fn failed(&mut self, death: StartupDeath, now: Instant) -> bool {
        self.backoff = if self.backoff.is_zero() {
            FIRST_BACKOFF
        } else {
            (self.backoff * 2).min(MAX_BACKOFF)
        };
        self.not_before = Some(now + self.backoff);
        if death == StartupDeath::ByItself {
            self.failures += 1;
        }
        self.failures >= STARTUP_FAILURES
    }

    /// Whether a worker may be started at `now`.
    pub(crate) fn may_spawn(&self, now: Instant) -> bool {
        self.not_before.is_none_or(|at| now >= at)
    }

    /// When the back-off ends, if it has not yet.
    pub(crate) fn waiting_until(&self, now: Instant) -> Option<Instant> {
        self.not_before.filter(|&at| at > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_deaths_by_themselves_break_the_pool() {
        let now = Instant::now();
        let mut restarts = Restarts::default();
        for _ in 0..100 {
            assert!(!restarts.failed(StartupDeath::FromOutside, now));
        }
        assert!(!restarts.failed(StartupDeath::ByItself, now));
        assert!(!restarts.failed(StartupDeath::ByItself, now));
        assert!(restarts.failed(StartupDeath::ByItself, now));
        restarts.ready();
        assert!(!restarts.failed(StartupDeath::ByItself, now));
    }

    #[test]
    fn the_backoff_doubles_up_to_its_cap_and_resets_when_a_worker_is_ready() {
        let now = Instant::now();
        let mut restarts = Restarts::default();
        assert!(restarts.may_spawn(now));
        let mut expected = FIRST_BACKOFF;
        for _ in 0..10 {
            restarts.failed(StartupDeath::FromOutside, now);
            assert_eq!(restarts.waiting_until(now), Some(now + expected));
            assert!(!restarts.may_spawn(now + expected - Duration::from_nanos(1)));
            assert!(restarts.may_spawn(now + expected));
            expected = (expected * 2).min(MAX_BACKOFF);
        }
        assert_eq!(restarts.waiting_until(now), Some(now + MAX_BACKOFF));
        restarts.ready();
        assert!(restarts.may_spawn(now));
        assert_eq!(restarts.waiting_until(now), None);
    }

    #[test]
    fn signals_the_pool_sent_and_crashes_count_as_deaths_by_themselves() {
        let sigkill = ExitStatus::Signaled(libc::SIGKILL);
        assert_eq!(StartupDeath::of(sigkill, false), StartupDeath::FromOutside);
        assert_eq!(StartupDeath::of(sigkill, true), StartupDeath::ByItself);
        for status in [
            ExitStatus::Exited(0),
            ExitStatus::Exited(1),
            ExitStatus::Signaled(libc::SIGSEGV),
            ExitStatus::Signaled(libc::SIGABRT),
            ExitStatus::Unknown,
        ] {
            assert_eq!(StartupDeath::of(status, false), StartupDeath::ByItself);
        }
    }
}
