//! The shared cell behind a `Future`/`Promise` pair: the header and the write-once result slot,
//! in one allocation.

use core::mem::MaybeUninit;
use core::ptr::NonNull;

use crate::Failure;
use crate::header::Header;
use crate::sync::{UnsafeCell, heap};
use crate::word;

/// What a finished future holds.
pub(crate) type Outcome<T> = Result<T, Failure>;

/// Header first (`repr(C)`), so a type-erased view can reach the protocol without knowing `T`.
///
/// Invariant: `slot` is initialised exactly when the phase is FINISHED (and, transiently,
/// between the producer's write and its publishing CAS, when only the producer sees it).
#[repr(C)]
pub(crate) struct Cell<T> {
    pub(crate) header: Header,
    slot: UnsafeCell<MaybeUninit<Outcome<T>>>,
}

impl<T> Cell<T> {
    /// A fresh PENDING cell with one consumer and the producer.
    pub(crate) fn alloc() -> NonNull<Self> {
        heap::alloc(Cell {
            header: Header::new(),
            slot: UnsafeCell::new(MaybeUninit::uninit()),
        })
    }

    /// Stores the outcome before it is published.
    ///
    /// # Safety
    /// Only the producer calls this, once, while the phase is not final.
    pub(crate) unsafe fn write_slot(&self, outcome: Outcome<T>) {
        // SAFETY: the producer is the only one touching the slot before FINISHED is published.
        self.slot.with_mut(|slot| unsafe { (*slot).write(outcome) });
    }

    /// Moves the outcome out of the slot, leaving it uninitialised.
    ///
    /// # Safety
    /// The slot is initialised and the caller has exclusive access to it: the producer after
    /// losing its CAS to `cancel`, or the last owner of the cell.
    pub(crate) unsafe fn take_slot(&self) -> Outcome<T> {
        // SAFETY: initialised and exclusively ours (see above).
        self.slot
            .with_mut(|slot| unsafe { (*slot).assume_init_read() })
    }

    /// The published outcome.
    ///
    /// # Safety
    /// The caller saw the phase FINISHED with Acquire ordering (or through a chain of
    /// Release/Acquire pairs), and keeps a consumer handle for the returned lifetime.
    pub(crate) unsafe fn slot(&self) -> &Outcome<T> {
        // SAFETY: the slot is initialised and immutable from FINISHED on (see above).
        self.slot.with(|slot| unsafe { (*slot).assume_init_ref() })
    }

    /// Drops the outcome (if any) and frees the cell.
    ///
    /// # Safety
    /// Both ownership flags are set (or the caller is the last consumer with the producer gone),
    /// the caller has synchronised with every other party, and nobody uses `cell` afterwards.
    pub(crate) unsafe fn free(cell: NonNull<Self>) {
        // SAFETY: exclusive access per the contract.
        let this = unsafe { cell.as_ref() };
        // ORDERING: Relaxed: the caller already synchronised with every party (see contract).
        if this
            .header
            .load(core::sync::atomic::Ordering::Relaxed)
            .phase()
            == word::FINISHED
        {
            // SAFETY: FINISHED means the slot is initialised; we are its last owner.
            drop(unsafe { this.take_slot() });
        }
        // SAFETY: the cell came from `heap::alloc` and is not used again.
        unsafe { heap::free(cell) };
    }

    /// Frees the cell whose outcome was already moved out.
    ///
    /// # Safety
    /// As [`Cell::free`], and the slot holds no value any more.
    pub(crate) unsafe fn free_emptied(cell: NonNull<Self>) {
        // SAFETY: per the contract; `MaybeUninit` drops nothing.
        unsafe { heap::free(cell) };
    }
}
