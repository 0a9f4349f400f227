//! The harness shared by the Miri twins: per-round jitter, and a gate that holds a completer
//! until its waiters are about to block (a naive twin lets the completer finish first and
//! proves nothing).
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

/// Rounds per twin: Miri runs each round thousands of times slower, and its many seeds vary the
/// schedule anyway.
pub const ROUNDS: usize = if cfg!(miri) { 3 } else { 300 };

/// Runs `round` [`ROUNDS`] times with a per-round [`Jitter`].
pub fn rounds(twin: u64, mut round: impl FnMut(&mut Jitter)) {
    concur_core::set_callback_panic_hook(concur_loom_tests::abort_on_callback_panic);
    for i in 0..ROUNDS {
        round(&mut Jitter::new(twin, i));
    }
}

/// Deterministic per-round choices (xorshift), so a failing round can be replayed natively.
pub struct Jitter(u64);

impl Jitter {
    pub fn new(twin: u64, round: usize) -> Self {
        let seed = (twin << 32 | round as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Self(seed | 1)
    }

    /// A number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }

    /// A waiter's few yields before it blocks.
    pub fn waiter_yields(&mut self) -> Yields {
        Yields(self.below(3) as u32)
    }

    /// How long the completer waits after every waiter arrived.
    pub fn completer_delay(&mut self) -> Delay {
        match self.below(4) {
            0 => Delay::None,
            1 => Delay::Yields(1 + self.below(4) as u32),
            2 => Delay::Yields(20),
            // Natively, time for a waiter to finish spinning and park.
            _ => Delay::Sleep(Duration::from_micros(50 + self.below(200))),
        }
    }

    /// A timeout for a give-up: mostly none, sometimes long enough to park first.
    pub fn timeout(&mut self) -> Duration {
        match self.below(3) {
            0 | 1 => Duration::ZERO,
            _ => Duration::from_micros(self.below(100)),
        }
    }

    pub fn coin(&mut self) -> bool {
        self.below(2) == 0
    }
}

#[derive(Clone, Copy)]
pub struct Yields(pub u32);

impl Yields {
    pub fn run(self) {
        for _ in 0..self.0 {
            thread::yield_now();
        }
    }
}

#[derive(Clone, Copy)]
pub enum Delay {
    None,
    Yields(u32),
    Sleep(Duration),
}

impl Delay {
    pub fn run(self) {
        match self {
            Delay::None => {}
            Delay::Yields(n) => Yields(n).run(),
            Delay::Sleep(d) => thread::sleep(d),
        }
    }
}

/// Waiters announce they are about to block; the completer waits for all of them.
#[derive(Clone, Default)]
pub struct Gate(Arc<AtomicUsize>);

impl Gate {
    pub fn arrive(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }

    /// Spawns a waiter that arrives, runs its `yields`, then `then`.
    pub fn spawn(
        &self,
        yields: Yields,
        then: impl FnOnce() + Send + 'static,
    ) -> thread::JoinHandle<()> {
        let arrivals = self.clone();
        thread::spawn(move || {
            arrivals.arrive();
            yields.run();
            then();
        })
    }

    pub fn wait_for(&self, waiters: usize) {
        while self.0.load(Ordering::Acquire) < waiters {
            thread::yield_now();
        }
    }
}
