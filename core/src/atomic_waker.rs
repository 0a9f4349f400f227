//! A single-registrant slot for what to wake (an async task's `Waker`, or with `std` a parked
//! thread), safe against a concurrent wake.
//!
//! Written for this crate (rather than taken from the `atomic-waker` crate) so that loom sees
//! every one of its accesses through the shim: the protocol shipped is the protocol modelled.
//!
//! States: WAITING (slot free), REGISTERING (the registrant owns the slot), WAKING (a waker owns
//! the slot). A wake that arrives while a registration is in progress sets WAKING on top of
//! REGISTERING; the registrant then takes the waker back and wakes it itself, so no wake is lost
//! and neither side ever waits for the other.

use core::task::Waker;

use crate::sync::{AtomicU8, Ordering, UnsafeCell};

/// Something to wake: a task, or a parked thread.
pub(crate) enum Wakeup {
    Task(Waker),
    #[cfg(feature = "std")]
    Thread(crate::sync::thread::Thread),
}

impl Wakeup {
    fn will_wake(&self, other: &Wakeup) -> bool {
        match (self, other) {
            (Wakeup::Task(a), Wakeup::Task(b)) => a.will_wake(b),
            #[cfg(feature = "std")]
            (Wakeup::Thread(a), Wakeup::Thread(b)) => a.id() == b.id(),
            #[cfg(feature = "std")]
            _ => false,
        }
    }

    fn wake(self) {
        match self {
            Wakeup::Task(waker) => crate::callback::catch_and_report(|| waker.wake()),
            #[cfg(feature = "std")]
            Wakeup::Thread(thread) => thread.unpark(),
        }
    }
}

const WAITING: u8 = 0;
const REGISTERING: u8 = 0b01;
const WAKING: u8 = 0b10;

/// Invariant: `waker` is accessed only by whoever moved `state` from WAITING to REGISTERING or
/// to WAKING, until it moves it back.
pub(crate) struct AtomicWaker {
    state: AtomicU8,
    waker: UnsafeCell<Option<Wakeup>>,
}

// SAFETY: the slot is only touched by the owner of the state transition (see the invariant),
// and `Waker` is `Send + Sync`.
unsafe impl Send for AtomicWaker {}
// SAFETY: as above.
unsafe impl Sync for AtomicWaker {}

impl AtomicWaker {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU8::new(WAITING),
            waker: UnsafeCell::new(None),
        }
    }

    /// Stores `waker` for the next [`wake`](Self::wake). The caller must re-check its condition
    /// afterwards: a wake that raced with this call may have woken the previous waker.
    /// Only one thread may register at a time.
    pub(crate) fn register(&self, waker: &Waker) {
        self.register_with(|| Wakeup::Task(waker.clone()), || waker.wake_by_ref());
    }

    /// Registers the current thread, to be unparked by the next wake. Same contract as
    /// [`register`](Self::register).
    #[cfg(feature = "std")]
    pub(crate) fn register_thread(&self) {
        // A racing wake is always followed by the caller's re-check: nothing more to do.
        self.register_with(|| Wakeup::Thread(crate::sync::thread::current()), || {});
    }

    fn register_with(&self, make: impl FnOnce() -> Wakeup, on_racing_wake: impl FnOnce()) {
        // ORDERING: Acquire pairs with the Release that last handed the slot back, so the slot's
        // contents are ours to read and replace.
        let claimed =
            self.state
                .compare_exchange(WAITING, REGISTERING, Ordering::Acquire, Ordering::Acquire);
        match claimed {
            Ok(_) => self.store_then_release(make()),
            // A wake owns the slot right now: make sure the task is polled again.
            Err(_) => on_racing_wake(),
        }
    }

    fn store_then_release(&self, wakeup: Wakeup) {
        // SAFETY: REGISTERING gives us the slot (invariant).
        let old = self.waker.with_mut(|slot| unsafe {
            match &*slot {
                Some(current) if current.will_wake(&wakeup) => None,
                _ => (*slot).replace(wakeup),
            }
        });
        // ORDERING: AcqRel: Release publishes the new waker to the next waker-taker; Acquire (on
        // failure too) sees a racing wake's state.
        let released =
            self.state
                .compare_exchange(REGISTERING, WAITING, Ordering::AcqRel, Ordering::Acquire);
        if released.is_err() {
            // A wake arrived meanwhile (REGISTERING | WAKING) and left the slot to us.
            // SAFETY: still ours until the swap below.
            let racing = self.waker.with_mut(|slot| unsafe { (*slot).take() });
            // ORDERING: AcqRel: hands the emptied slot back (Release).
            self.state.swap(WAITING, Ordering::AcqRel);
            drop(old);
            if let Some(waker) = racing {
                waker.wake();
            }
            return;
        }
        drop(old);
    }

    /// Takes the registered waker, if any and if no registration is in progress (which will
    /// then wake it itself).
    pub(crate) fn take(&self) -> Option<Wakeup> {
        // ORDERING: AcqRel: Acquire pairs with the registrant's Release so the stored waker is
        // visible; Release orders our earlier writes (the completer's phase) before it.
        match self.state.fetch_or(WAKING, Ordering::AcqRel) {
            WAITING => {
                // SAFETY: WAITING → WAKING gives us the slot (invariant).
                let waker = self.waker.with_mut(|slot| unsafe { (*slot).take() });
                // ORDERING: Release hands the slot back to the next registrant.
                self.state.fetch_and(!WAKING, Ordering::Release);
                waker
            }
            _ => None,
        }
    }

    /// Wakes the registered task or thread, if any.
    pub(crate) fn wake(&self) {
        if let Some(wakeup) = self.take() {
            wakeup.wake();
        }
    }
}
