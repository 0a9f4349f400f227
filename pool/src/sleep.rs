//! The pool's control word and the idle workers' sleep/wake protocol.
//!
//! Everything that decides whether a worker may sleep, whether a submit must wake one, and
//! whether the pool still accepts work lives in one atomic word, [`Control::word`], changed only
//! by read-modify-writes, so that "a submit racing with a worker going to sleep" is decided by
//! the modification order of that one word (no fences, no Dekker pattern across two locations).
//! This module takes its atomics, lock and parking from [`crate::sync`], so the loom model in
//! `loom-tests/tests/loom_pool.rs` checks it as it is.
//!
//! # The protocol
//!
//! A **submit** brackets its push onto the task queue:
//! [`begin_submit`](Control::begin_submit) adds one `SUBMITTER` (refused if the pool is closed
//! or broken), the caller pushes, and [`end_submit`](Control::end_submit) removes the
//! `SUBMITTER` and bumps the `EPOCH` in one `fetch_add`, Release. If the value it replaced
//! counts sleepers, it wakes one.
//!
//! A **worker** with nothing to do calls [`wait_for_work`](Control::wait_for_work), which loops:
//! load the word (Acquire); look at the queue; if it is empty, lock the sleeper list and CAS the
//! word from the loaded value to the same plus one `SLEEPER`; on success push its parker on the
//! list, unlock, and park until notified.
//!
//! **No lost wake-up.** Take a task pushed by a submit whose `end_submit` is the RMW `E`, and a
//! worker whose load read `L` and whose CAS `C` succeeded. In the word's modification order:
//! - `E` before `L`'s value: the worker's Acquire load reads `E`'s value or a later one in its
//!   release sequence (every change is an RMW), so the push happens-before the worker's look at
//!   the queue, which sees the task (or sees it taken by another worker).
//! - `E` between `L`'s value and `C`: impossible, `C` would have failed (the epoch changed).
//! - `E` after `C`: `E` reads a value that counts this sleeper (only a waker, holding the list
//!   lock, removes it), so it takes the list lock and wakes a sleeper; the SLEEPER was added
//!   while the list lock was held, together with the push onto the list, so the waker finds a
//!   parker on the list (this one or another that counts as well). Whoever it wakes loops and
//!   looks at the queue again.
//!
//! **Shutdown.** [`close`](Control::close) sets `CLOSED` and wakes every sleeper. A worker
//! returns [`Idle::Exit`] only once it loaded a word with `CLOSED` and no `SUBMITTER`, and then
//! found the queue empty: every submit that was admitted has pushed by then (its `end_submit`
//! precedes that value), and no later submit is admitted. A worker that finds `CLOSED` with a
//! submit still in flight sleeps; that submit's `end_submit` sees `CLOSED` and wakes everyone,
//! and so does a submit refused after counting itself in, if it finds a sleeper.
//! `BROKEN` ([`mark_broken`](Control::mark_broken)) makes workers exit at once (the breaker
//! drains the queue itself).

use crate::idle_spin::SubmitCpu;
use crate::sync::thread::{self, Thread};
use crate::sync::{Arc, AtomicBool, AtomicU64, Mutex, MutexGuard, Ordering};

/// One registered sleeper (bits 0..16).
const SLEEPER: u64 = 1;
const SLEEPER_MASK: u64 = 0xFFFF;
/// One submit between `begin_submit` and `end_submit` (bits 16..32).
const SUBMITTER: u64 = 1 << 16;
const SUBMITTER_MASK: u64 = 0xFFFF << 16;
/// `shutdown` was called: no submit is admitted any more.
const CLOSED: u64 = 1 << 32;
/// An initializer failed: no submit is admitted, workers exit.
const BROKEN: u64 = 1 << 33;
/// Bumped by every `end_submit` (bits 34..64, wrapping), so a sleeper's CAS fails if any submit
/// finished since it looked at the queue. A false success needs 2^30 submits to finish between
/// one worker's load and its CAS (a few instructions apart).
const EPOCH: u64 = 1 << 34;

/// The most workers the control word can count as sleepers.
pub const MAX_SLEEPERS: usize = SLEEPER_MASK as usize;

/// The most submits that may be in flight at once (one per submitting thread).
const MAX_SUBMITTERS: u64 = SUBMITTER_MASK >> 16;

/// A worker's handle for sleeping: its thread and a notification flag.
///
/// Invariant: `notified` is set only by a waker that removed this parker from the sleeper list,
/// once per registration, and cleared only by its worker when it consumes that wake.
#[derive(Debug)]
pub struct Parker {
    notified: AtomicBool,
    thread: Thread,
}

impl Parker {
    /// A parker for the calling thread.
    pub fn new() -> Arc<Parker> {
        Arc::new(Parker {
            notified: AtomicBool::new(false),
            thread: thread::current(),
        })
    }

    fn notify(&self) {
        // ORDERING: Release: pairs with the worker's Acquire swap, so whatever the waker did
        // before (its push) is visible to the woken worker even without the word.
        self.notified.store(true, Ordering::Release);
        self.thread.unpark();
    }

    /// Parks until notified; `park` may return spuriously, so the flag is the condition.
    fn park_until_notified(&self) {
        // A CAS rather than `swap(false)`: the same operation, but loom 0.7.2's `swap` can read a
        // stale value here (tokio-rs/loom#389), which made a correct model report a lost wake.
        // ORDERING: Acquire on success: pairs with `notify`'s Release store; Relaxed on failure:
        // nothing is read, the thread parks and tries again.
        while self
            .notified
            .compare_exchange(true, false, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            thread::park();
        }
    }
}

/// Why a submit was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// `shutdown` was called.
    Closed,
    /// The pool is broken.
    Broken,
}

/// What an idle worker should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idle {
    /// Look at the queue again: there may be work.
    Work,
    /// The pool is shut down and drained, or broken: leave.
    Exit,
}

/// The control word and the list of sleeping workers.
///
/// Invariant: the `SLEEPER` count equals the length of `sleepers`, whenever the list's lock is
/// not held (both change together under it); the `SUBMITTER` count is the number of
/// `begin_submit` calls that were admitted and have not reached `end_submit`.
#[derive(Debug)]
pub struct Control {
    word: crossbeam_utils::CachePadded<AtomicU64>,
    sleepers: Mutex<Vec<Arc<Parker>>>,
    /// Where the latest submit ran: a hint for spinning workers, outside the protocol.
    submit_cpu: SubmitCpu,
}

impl Default for Control {
    fn default() -> Self {
        Self::new()
    }
}

impl Control {
    /// An open pool with no sleepers.
    pub fn new() -> Self {
        Self {
            word: crossbeam_utils::CachePadded::new(AtomicU64::new(0)),
            sleepers: Mutex::new(Vec::new()),
            submit_cpu: SubmitCpu::new(),
        }
    }

    fn sleepers(&self) -> MutexGuard<'_, Vec<Arc<Parker>>> {
        // Nothing panics while holding this lock, but never propagate a poisoning anyway.
        self.sleepers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits one submit, or says why not. An admitted submit must call
    /// [`end_submit`](Control::end_submit) after pushing its task.
    pub fn begin_submit(&self) -> Result<(), Refused> {
        // ORDERING: Relaxed: admission reads only the flags of this word; the push it admits is
        // published by `end_submit`'s Release.
        let before = self.word.fetch_add(SUBMITTER, Ordering::Relaxed);
        let refused = if before & BROKEN != 0 {
            Some(Refused::Broken)
        } else if before & CLOSED != 0 {
            Some(Refused::Closed)
        } else if (before & SUBMITTER_MASK) >> 16 >= MAX_SUBMITTERS {
            // Unreachable in practice (65535 threads inside `submit` at once); refusing keeps
            // the count from carrying into the flags.
            Some(Refused::Closed)
        } else {
            None
        };
        match refused {
            Some(why) => {
                // ORDERING: Relaxed: a refused submit pushed nothing for anyone to see.
                let before = self.word.fetch_sub(SUBMITTER, Ordering::Relaxed);
                if before & SLEEPER_MASK != 0 {
                    // A worker that saw our SUBMITTER after shutdown went to sleep waiting for
                    // it to finish (found by the loom model `shutdown_races_with_a_submit`).
                    self.wake_all();
                }
                Err(why)
            }
            None => Ok(()),
        }
    }

    /// Ends an admitted submit after its push, waking a sleeper if there is one (every sleeper
    /// if the pool was closed meanwhile).
    pub fn end_submit(&self) {
        self.submit_cpu.note();
        // ORDERING: Release: publishes the push to every worker that later loads this word with
        // Acquire (the no-lost-wake-up argument in the module docs). Wrapping: adds one EPOCH
        // and removes one SUBMITTER.
        let before = self
            .word
            .fetch_add(EPOCH.wrapping_sub(SUBMITTER), Ordering::Release);
        if before & (CLOSED | BROKEN) != 0 {
            self.wake_all();
        } else if before & SLEEPER_MASK != 0 {
            self.wake_one();
        }
    }

    /// Where the latest submit ran (see [`crate::idle_spin`]).
    pub(crate) fn submit_cpu(&self) -> &SubmitCpu {
        &self.submit_cpu
    }

    /// Wakes one sleeper, if any is still registered.
    fn wake_one(&self) {
        let parker = {
            let mut sleepers = self.sleepers();
            let parker = sleepers.pop();
            if parker.is_some() {
                // ORDERING: Relaxed: the count changes together with the list, under its lock.
                self.word.fetch_sub(SLEEPER, Ordering::Relaxed);
            }
            parker
        };
        if let Some(parker) = parker {
            parker.notify();
        }
    }

    /// Wakes every sleeper.
    pub fn wake_all(&self) {
        let parkers = {
            let mut sleepers = self.sleepers();
            let parkers = core::mem::take(&mut *sleepers);
            // ORDERING: Relaxed: as in `wake_one`.
            self.word
                .fetch_sub(SLEEPER * parkers.len() as u64, Ordering::Relaxed);
            parkers
        };
        for parker in parkers {
            parker.notify();
        }
    }

    /// Stops admitting submits and wakes every sleeper (so they drain the queue and exit).
    /// Returns whether the pool was already closed.
    pub fn close(&self) -> bool {
        let was = self.close_quietly();
        self.wake_all();
        was
    }

    /// Stops admitting submits without waking anyone (the caller wakes them later with
    /// [`wake_all`](Control::wake_all)). Returns whether the pool was already closed.
    pub fn close_quietly(&self) -> bool {
        // ORDERING: AcqRel: the flag is read by workers' Acquire loads; Acquire keeps the
        // closer's later queue operations after every push published before it.
        self.word.fetch_or(CLOSED, Ordering::AcqRel) & CLOSED != 0
    }

    /// Marks the pool broken and wakes every sleeper (they exit).
    pub fn mark_broken(&self) {
        // ORDERING: AcqRel: as in `close_quietly`.
        self.word.fetch_or(BROKEN, Ordering::AcqRel);
        self.wake_all();
    }

    /// Whether [`close`](Control::close) was called.
    pub fn is_closed(&self) -> bool {
        // ORDERING: Relaxed: a hint; decisions that depend on it go through the RMWs above.
        self.word.load(Ordering::Relaxed) & CLOSED != 0
    }

    /// Waits until no admitted submit is between `begin_submit` and `end_submit` (call after
    /// closing or breaking, so none is admitted any more): then every admitted task is in the
    /// queue, and a drain of the queue sees it.
    pub fn wait_for_submitters(&self) {
        // ORDERING: Acquire: pairs with `end_submit`'s Release, so those pushes are visible.
        while self.word.load(Ordering::Acquire) & SUBMITTER_MASK != 0 {
            thread::yield_now();
        }
    }

    /// Called by a worker that found the queue empty (after spinning): sleeps until there may be
    /// work, or says the worker should exit. `has_work` looks at the queue.
    pub fn wait_for_work(&self, parker: &Arc<Parker>, has_work: impl Fn() -> bool) -> Idle {
        loop {
            // ORDERING: Acquire: pairs with `end_submit`'s Release (see the module docs).
            let seen = self.word.load(Ordering::Acquire);
            if seen & BROKEN != 0 {
                return Idle::Exit;
            }
            if has_work() {
                return Idle::Work;
            }
            if seen & CLOSED != 0 && seen & SUBMITTER_MASK == 0 {
                return Idle::Exit;
            }
            let mut sleepers = self.sleepers();
            // ORDERING: Relaxed on both: success proves no RMW (no `end_submit`, no `close`)
            // came between the load above and this CAS; the load's Acquire already ordered the
            // queue look after every earlier push, and a later submit sees our SLEEPER.
            let registered = self
                .word
                .compare_exchange(seen, seen + SLEEPER, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
            if !registered {
                continue;
            }
            sleepers.push(Arc::clone(parker));
            drop(sleepers);
            parker.park_until_notified();
        }
    }
}
