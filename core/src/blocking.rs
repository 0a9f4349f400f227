//! Blocking waits (with `std`): a short spin, then a waiter node on the caller's stack and
//! park/unpark. No allocation, no lock.

use core::pin::pin;
use core::ptr::NonNull;
use std::time::{Duration, Instant};

use crate::future::split_failure;
use crate::header::{Header, Push, Unlink};
use crate::node::{Kind, Node};
use crate::sync::thread::{self, Thread};
use crate::sync::{AtomicBool, UnsafeCell, ord, probe};
use crate::word::{self, Snapshot};
use crate::{Error, Failure, Future};

impl<T> Future<T> {
    /// Waits for the outcome (Python's `result()`): the value by reference, or why there is
    /// none.
    ///
    /// # Errors
    /// [`Error::Cancelled`] if the future was cancelled, [`Error::Failed`] if the task failed,
    /// [`Error::Deadlock`] if this thread's [`BlockingHook`](crate::BlockingHook) reports that
    /// the wait could never end.
    ///
    /// # Examples
    ///
    /// ```
    /// let (promise, future) = concur_core::promise();
    /// std::thread::spawn(move || promise.set_result(vec![1, 2, 3]).unwrap());
    /// assert_eq!(future.result().unwrap().len(), 3);
    /// ```
    #[inline]
    pub fn result(&self) -> Result<&T, Error> {
        // Only a value already there stays inline in the caller: a failure (cloned), a cancel
        // and a real wait leave it.
        let state = self.header().load(ord::FAST_PATH_LOAD);
        if state.phase() == word::FINISHED {
            // SAFETY: FINISHED was loaded with Acquire and our handle keeps the cell alive.
            if let Ok(value) = unsafe { self.cell().slot() } {
                return Ok(value);
            }
        }
        self.result_not_value()
    }

    /// [`result`](Future::result) for a future found without a value: failed, cancelled, or
    /// not done yet.
    #[cold]
    #[inline(never)]
    fn result_not_value(&self) -> Result<&T, Error> {
        match self.try_result() {
            Some(outcome) => outcome,
            None => self.outcome_after(wait(self.raw_header(), None)),
        }
    }

    /// Waits at most `timeout` for the outcome (Python's `result(timeout)`).
    ///
    /// A timeout leaves the future untouched and nothing registered in it. `Duration::ZERO` on a
    /// done future returns its outcome.
    ///
    /// # Errors
    /// [`Error::TimedOut`] if it is not done in time; otherwise as [`result`](Future::result).
    pub fn result_timeout(&self, timeout: Duration) -> Result<&T, Error> {
        self.result_deadline(deadline_after(timeout))
    }

    /// Waits until `deadline` at most for the outcome.
    ///
    /// # Errors
    /// As [`result_timeout`](Future::result_timeout).
    pub fn result_deadline(&self, deadline: Instant) -> Result<&T, Error> {
        self.outcome_after(wait(self.raw_header(), Some(deadline)))
    }

    /// Waits for the outcome and returns the task's failure, if any (Python's `exception()`).
    ///
    /// # Errors
    /// [`Error::Cancelled`] if the future was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// let (promise, future) = concur_core::promise::<u8>();
    /// promise.set_result(1).unwrap();
    /// assert!(future.error().unwrap().is_none());
    /// ```
    pub fn error(&self) -> Result<Option<Failure>, Error> {
        split_failure(self.result())
    }

    /// Waits at most `timeout` and returns the task's failure, if any.
    ///
    /// # Errors
    /// [`Error::Cancelled`], or [`Error::TimedOut`] if it is not done in time.
    pub fn error_timeout(&self, timeout: Duration) -> Result<Option<Failure>, Error> {
        split_failure(self.result_timeout(timeout))
    }

    /// Waits until `deadline` at most and returns the task's failure, if any.
    ///
    /// # Errors
    /// As [`error_timeout`](Future::error_timeout).
    pub fn error_deadline(&self, deadline: Instant) -> Result<Option<Failure>, Error> {
        split_failure(self.result_deadline(deadline))
    }

    /// Waits for the outcome and moves the value out of the last handle.
    ///
    /// If other handles to this future are alive the value stays with them, this handle is
    /// dropped and the call returns [`Error::Shared`]: called on every clone, exactly one call
    /// gets the value (as `Arc::into_inner`).
    ///
    /// # Errors
    /// [`Error::Cancelled`], [`Error::Failed`], or [`Error::Shared`] (see above).
    ///
    /// # Examples
    ///
    /// ```
    /// let (promise, future) = concur_core::promise::<String>();
    /// promise.set_result("owned".into()).unwrap();
    /// let value: String = future.into_result().unwrap();
    /// assert_eq!(value, "owned");
    /// ```
    #[inline]
    pub fn into_result(self) -> Result<T, Error> {
        // The done case stays inline in the caller, as in `result`, and reads the word once.
        let state = self.header().load(ord::FAST_PATH_LOAD);
        if state.phase() == word::FINISHED {
            return self.take_finished(state);
        }
        if !state.is_final() && wait_cold(self.raw_header()) == WaitEnd::Deadlock {
            return Err(Error::Deadlock);
        }
        self.take_outcome()
    }

    /// Blocks until the future is done. Returns false only if this thread's
    /// [`BlockingHook`](crate::BlockingHook) reported that the wait would deadlock.
    pub fn wait(&self) -> bool {
        wait(self.raw_header(), None) == WaitEnd::Done
    }

    /// Blocks at most `timeout`; returns whether the future is done.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_deadline(deadline_after(timeout))
    }

    /// Blocks until `deadline` at most; returns whether the future is done.
    pub fn wait_deadline(&self, deadline: Instant) -> bool {
        wait(self.raw_header(), Some(deadline)) == WaitEnd::Done
    }

    /// The outcome after a wait ended as `end`.
    fn outcome_after(&self, end: WaitEnd) -> Result<&T, Error> {
        match end {
            WaitEnd::Deadlock => Err(Error::Deadlock),
            _ => self.try_result().unwrap_or(Err(Error::TimedOut)),
        }
    }
}

/// `now + timeout`, saturating far in the future for huge timeouts.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(60 * 60 * 24 * 365 * 100))
}

/// How a blocking wait ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum WaitEnd {
    Done,
    TimedOut,
    /// The thread's blocking hook said this wait would never end.
    Deadlock,
}

/// [`wait`] without a deadline, for a caller that found the future not done.
#[cold]
fn wait_cold(header: NonNull<Header>) -> WaitEnd {
    wait(header, None)
}

/// Blocks until the phase is final or `deadline` passes.
///
/// `header` is a handle's raw header pointer (with the whole cell's provenance), kept alive by
/// that handle for the whole call.
pub(crate) fn wait(header: NonNull<Header>, deadline: Option<Instant>) -> WaitEnd {
    // SAFETY: the caller's handle keeps the cell alive.
    let header_ref = unsafe { header.as_ref() };
    if header_ref.load(ord::FAST_PATH_LOAD).is_final() {
        return WaitEnd::Done;
    }
    if let Some(driven) = header_ref.ops().drive {
        // SAFETY: the caller's handle keeps the cell alive for the call.
        unsafe { (driven.drive)(header, deadline) };
    }
    if header_ref.load(ord::FAST_PATH_LOAD).is_final() || spin_until_final(header_ref) {
        return WaitEnd::Done;
    }
    let Ok(_after_block) = crate::hook::before_block(header) else {
        let done = header_ref.load(ord::FAST_PATH_LOAD).is_final();
        return if done {
            WaitEnd::Done
        } else {
            WaitEnd::Deadlock
        };
    };
    if park_until_final(header, deadline) {
        WaitEnd::Done
    } else {
        WaitEnd::TimedOut
    }
}

/// The parking part of [`wait`]: a node on this stack, linked until fired or unlinked.
fn park_until_final(cell: NonNull<Header>, deadline: Option<Instant>) -> bool {
    // SAFETY: the caller's handle keeps the cell alive.
    let header = unsafe { cell.as_ref() };
    let waiter = pin!(ThreadWaiter::new(thread::current()));
    let node = waiter.node();
    // SAFETY: the waiter is pinned on this stack frame, and every exit below either sees it
    // FIRED or unlinks it (or never linked it).
    if let Push::Final = unsafe { header.push(node) } {
        return true;
    }
    // SAFETY: as above; `cell` has the whole cell's provenance (the handle's pointer).
    unsafe { crate::header::linked_passive_waiter(cell) };
    loop {
        if waiter.is_fired() {
            return true;
        }
        match deadline {
            None => thread::park(),
            Some(deadline) if thread::deadline_passed(deadline) => return give_up(header, &waiter),
            Some(deadline) => thread::park_until(deadline),
        }
    }
}

/// Leaves a wait whose deadline passed. Returns whether the phase is final.
fn give_up(header: &Header, waiter: &ThreadWaiter) -> bool {
    // SAFETY: the node was linked by `wait` and has not been unlinked or seen FIRED.
    match unsafe { header.unlink(waiter.node()) } {
        Unlink::Unlinked { now_final } => now_final,
        Unlink::AlreadyFinal => {
            // Rule 2: our node is in a detached list; its completer may still be reading it.
            if !cfg!(concur_bug = "rule2-leave-before-fired") {
                while !waiter.is_fired() {
                    thread::park();
                }
            }
            true
        }
    }
}

/// Spins briefly, then yields while nothing else wants this CPU (at least 8 times, for up to
/// [`YIELD_WINDOW`]), hoping the future completes before we park: a cross-CPU wake-up costs
/// tens of microseconds here, a spin a fraction of one.
fn spin_until_final(header: &Header) -> bool {
    // Measured (benches `compare`, pingpong placements): 5 rounds (31 pauses, about 0.9 µs
    // on this machine) then at least 8 yields keep a cross-CPU round trip under 1 µs and
    // bring the shared-CPU round trip from 1.9x to about 1x the parking peers; 7/4 spun 3.5 µs.
    const SPIN_ROUNDS: u32 = 5;
    const YIELDS: u32 = 8;
    if cfg!(concur_loom) || !spinning_helps() {
        return false;
    }
    for round in 0..SPIN_ROUNDS {
        for _ in 0..(1u32 << round) {
            core::hint::spin_loop();
        }
        if header.load(ord::FAST_PATH_LOAD).is_final() {
            return true;
        }
    }
    let yielding = Instant::now();
    let mut yields = 0u32;
    loop {
        yields += 1;
        let yielded = Instant::now();
        thread::yield_now();
        if header.load(ord::FAST_PATH_LOAD).is_final() {
            return true;
        }
        let now = Instant::now();
        if now - yielded >= LONG_YIELD {
            // Another thread ran a whole time slice on this CPU: each further yield could
            // hand it another (milliseconds: EEVDF moves a yielder's deadline back a full
            // slice), while a parked waiter is woken, and may preempt, when the future
            // completes.
            return false;
        }
        if yields >= YIELDS && (cfg!(miri) || now - yielding >= YIELD_WINDOW) {
            return false;
        }
    }
}

/// How long a waiter goes on yielding while every yield comes back at once (nothing else
/// wants its CPU), before it parks. A completer that is moving to another CPU (a pool worker
/// leaving the submitter's CPU: some 40-100 µs on this VM) finishes within it, and the waiter,
/// still running where it was, reads the result without a wake-up. Parked instead, it would be
/// woken by the completer, and the scheduler's wake-up placement puts it on the completer's
/// CPU: the two share one CPU again (4-6 µs a round trip) until the worker may move again.
/// Under Miri, whose clock is virtual, it yields the fixed count only.
const YIELD_WINDOW: Duration = Duration::from_micros(100);

/// A yield that took this long gave the CPU to some other thread's time slice, not just to
/// the completer for a few microseconds.
const LONG_YIELD: Duration = Duration::from_micros(50);

/// Spinning only helps when another CPU can run the completer meanwhile.
fn spinning_helps() -> bool {
    use core::sync::atomic::{AtomicU8, Ordering};
    // 0 unknown, 1 yes, 2 no. Not part of the protocol: a cached fact about this process.
    static CACHE: AtomicU8 = AtomicU8::new(0);
    // ORDERING: Relaxed: an idempotent cache of a value every thread computes identically.
    match CACHE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let many = std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
            CACHE.store(if many { 1 } else { 2 }, Ordering::Relaxed);
            many
        }
    }
}

/// A blocked thread's node, on its own stack.
///
/// Invariant: `thread` is `Some` until the completer takes it, which it does before storing
/// `fired` (its last touch); the owner leaves only after seeing `fired` or unlinking the node.
#[repr(C)]
struct ThreadWaiter {
    node: Node,
    fired: AtomicBool,
    thread: UnsafeCell<Option<Thread>>,
}

impl ThreadWaiter {
    fn new(thread: Thread) -> Self {
        Self {
            node: Node::new(Kind::Waiter, fire_thread),
            fired: AtomicBool::new(false),
            thread: UnsafeCell::new(Some(thread)),
        }
    }

    /// The node pointer, derived from the whole record: the completer goes on to reach the
    /// record's other fields through it (Stacked Borrows needs the wider provenance).
    fn node(&self) -> NonNull<Node> {
        NonNull::from(self).cast()
    }

    fn is_fired(&self) -> bool {
        probe::touch();
        self.fired.load(ord::FIRED_LOAD)
    }
}

#[cfg(concur_loom)]
impl Drop for ThreadWaiter {
    /// Loom checks leaks, not use-after-free: touching every cell as the node dies makes a
    /// completer's late access a reported race.
    fn drop(&mut self) {
        self.thread.with_mut(|_| ());
        // SAFETY: the node is ours again (fired or unlinked).
        unsafe { self.node.set_next(core::ptr::null_mut()) };
    }
}

/// The completer's side: take the thread, mark FIRED (last touch), then unpark.
///
/// # Safety
/// As [`Node`]'s `fire`: `node` is the header of a live `ThreadWaiter` in a detached list.
unsafe fn fire_thread(node: NonNull<Node>, _outcome: Snapshot) {
    let waiter = node.cast::<ThreadWaiter>();
    // SAFETY: the waiter stays alive until we store FIRED (its owner waits for it).
    let waiter = unsafe { waiter.as_ref() };
    if cfg!(concur_bug = "rule1-touch-after-fired") {
        waiter.fired.store(true, ord::FIRED_STORE);
        probe::bump();
        // Planted bug: the owner may have returned and freed its stack frame by now.
        // SAFETY: none; this is the bug the harness must catch.
        let thread = waiter.thread.with_mut(|t| unsafe { (*t).take() });
        if let Some(thread) = thread {
            thread.unpark();
        }
        return;
    }
    // SAFETY: before FIRED the completer has exclusive use of `thread` (invariant).
    let thread = waiter.thread.with_mut(|t| unsafe { (*t).take() });
    waiter.fired.store(true, ord::FIRED_STORE);
    probe::bump();
    if let Some(thread) = thread {
        thread.unpark();
    }
}
