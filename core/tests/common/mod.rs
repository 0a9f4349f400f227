//! Helpers shared by the integration tests (included with `mod common;`).
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts how many times values made by one counter were dropped.
#[derive(Clone, Default)]
pub struct DropCounter(Arc<AtomicUsize>);

impl DropCounter {
    /// A new value counted by this counter.
    pub fn token(&self) -> Token {
        Token(self.0.clone())
    }

    /// How many counted values were dropped so far.
    pub fn dropped(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Bumps its counter exactly when dropped.
pub struct Token(Arc<AtomicUsize>);

impl Drop for Token {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Spins (yielding) until `flag` reaches `at_least`: a rendezvous, not a sleep.
pub fn await_count(flag: &AtomicUsize, at_least: usize) {
    while flag.load(Ordering::SeqCst) < at_least {
        std::thread::yield_now();
    }
}

/// `native` iterations natively, `under_miri` under Miri (which runs ~1000x slower).
pub const fn scaled(native: usize, under_miri: usize) -> usize {
    if cfg!(miri) { under_miri } else { native }
}
