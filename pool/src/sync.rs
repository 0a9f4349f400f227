//! The one place the sleep/wake protocol ([`crate::sleep`]) takes its atomics, locks and
//! parking from.
//!
//! Under `--cfg concur_loom` every item here is loom's, so the loom model in
//! `loom-tests/tests/loom_pool.rs` sees every access the protocol makes; otherwise they are
//! `std`'s. Only `sleep.rs` imports from here: the rest of the pool (the task queue, the
//! wait-for graph, thread spawning) is not part of the model and uses `std` directly.

#[cfg(not(concur_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64};
#[cfg(not(concur_loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};

#[cfg(concur_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64};
#[cfg(concur_loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};

pub(crate) use std::sync::atomic::Ordering;

/// Threads and parking.
pub(crate) mod thread {
    #[cfg(concur_loom)]
    pub(crate) use loom::thread::{Thread, current, park, yield_now};
    #[cfg(not(concur_loom))]
    pub(crate) use std::thread::{Thread, current, park, yield_now};
}
