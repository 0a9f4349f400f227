//! The shared cell behind a `Future`/`Promise` pair: the header and the write-once result slot,
//! in one allocation.

use core::mem::MaybeUninit;
use core::ptr::NonNull;

use crate::header::{CellOps, Finish, Header};
use crate::sync::{UnsafeCell, heap};
use crate::word::Snapshot;
use crate::{Failure, node, word};

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

/// The ops of a plain `Cell<T>` allocation.
struct PlainOps<T>(core::marker::PhantomData<T>);

impl<T> PlainOps<T> {
    const OPS: CellOps = CellOps {
        free: free_plain::<T>,
        task: None,
        #[cfg(feature = "std")]
        drive: None,
        plain: true,
    };
}

/// # Safety
/// As [`Cell::free`]; `header` heads a plain `Cell<T>` allocation.
#[inline]
unsafe fn free_plain<T>(header: NonNull<Header>, outcome_taken: bool) {
    let cell = header.cast::<Cell<T>>();
    // SAFETY: exclusive access per the contract.
    unsafe { cell.as_ref().drop_outcome(outcome_taken) };
    // SAFETY: allocated by `heap::alloc` in `Cell::alloc`, unused from here on.
    unsafe { heap::free(cell) };
}

impl<T> Cell<T> {
    /// A fresh PENDING cell with one consumer and the producer.
    pub(crate) fn alloc() -> NonNull<Self> {
        heap::alloc(Cell::with_ops(&PlainOps::<T>::OPS))
    }

    /// A PENDING cell value whose allocation is freed by `ops` (for cells embedded in a bigger
    /// allocation).
    pub(crate) fn with_ops(ops: &'static CellOps) -> Self {
        Cell {
            header: Header::new(ops),
            slot: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Drops the outcome if the phase is FINISHED and it was not moved out.
    ///
    /// # Safety
    /// The caller has exclusive access to the cell (it is about to free it).
    pub(crate) unsafe fn drop_outcome(&self, outcome_taken: bool) {
        // ORDERING: Relaxed: the caller already synchronised with every party.
        let snapshot = self.header.load(core::sync::atomic::Ordering::Relaxed);
        // A value without drop glue owns nothing; FAILED (set with FINISHED exactly when the
        // outcome is a failure, in `complete`) tells it from a failure without reading the slot.
        let owns_nothing = !core::mem::needs_drop::<T>() && !snapshot.is_failed();
        if snapshot.phase() == word::FINISHED && !outcome_taken && !owns_nothing {
            // Dropped in place: moving it out first would copy the whole outcome.
            // SAFETY: FINISHED means the slot is initialised; we are its last owner.
            self.slot
                .with_mut(|slot| unsafe { (*slot).assume_init_drop() });
        }
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
    #[inline]
    pub(crate) unsafe fn free(cell: NonNull<Self>) {
        // SAFETY: per the contract.
        let ops = unsafe { cell.as_ref() }.header.ops();
        if ops.plain {
            // Plain cells (the common case) are freed inline.
            // SAFETY: only `Cell::alloc` makes a cell with plain ops, a plain `Cell<T>`
            // allocation, so `free_plain::<T>` is exactly its `ops.free`.
            unsafe { free_plain::<T>(cell.cast(), false) };
        } else {
            // SAFETY: per the contract; the ops match the allocation (set at creation).
            unsafe { (ops.free)(cell.cast(), false) };
        }
    }

    /// Frees the cell whose outcome was already moved out.
    ///
    /// # Safety
    /// As [`Cell::free`], and the slot holds no value any more.
    #[inline]
    pub(crate) unsafe fn free_emptied(cell: NonNull<Self>) {
        // SAFETY: per the contract.
        let ops = unsafe { cell.as_ref() }.header.ops();
        if ops.plain {
            // Nothing left to drop in a plain cell: just free the allocation.
            // SAFETY: only `Cell::alloc` makes a cell with plain ops, from `heap::alloc`; the
            // slot is empty and `Cell<T>` has no drop glue of its own.
            unsafe { heap::free(cell) };
        } else {
            // SAFETY: per the contract; the ops match the allocation (set at creation).
            unsafe { (ops.free)(cell.cast(), true) };
        }
    }

    /// The producer's completion: publish `outcome`, wake everyone, and, if `producer_done`,
    /// release the producer's share in the same CAS. Hands the outcome back if the future was
    /// cancelled first.
    ///
    /// # Safety
    /// Called once per cell by whoever holds the right to complete it (its producer, or the
    /// winner of a claim), which does not touch the cell afterwards if `producer_done`.
    #[inline(always)]
    pub(crate) unsafe fn complete(
        cell: NonNull<Self>,
        outcome: Outcome<T>,
        producer_done: bool,
    ) -> Result<(), Outcome<T>> {
        // SAFETY: the producer's share (or the claimer's handle) keeps the cell alive.
        let cell_ref = unsafe { cell.as_ref() };
        let failed = if outcome.is_err() { word::FAILED } else { 0 };
        // SAFETY: we hold the right to complete, and the phase is not final for us yet (or we
        // take the outcome back below).
        unsafe { cell_ref.write_slot(outcome) };
        let outcome = word::FINISHED | failed;
        match cell_ref.header.finish_bare(outcome, producer_done) {
            // Nobody to wake, nothing to free: the common case returns here.
            Ok(()) => Ok(()),
            // SAFETY: as this function's contract; the slot is written.
            Err(current) => unsafe { Cell::complete_from(cell, current, outcome, producer_done) },
        }
    }

    /// [`Cell::complete`] once the slot is written and the one-compare CAS did not apply:
    /// `current` is the word it found.
    ///
    /// # Safety
    /// As [`Cell::complete`], with the slot written by this completer.
    unsafe fn complete_from(
        cell: NonNull<Self>,
        current: Snapshot,
        outcome: usize,
        producer_done: bool,
    ) -> Result<(), Outcome<T>> {
        // SAFETY: the producer's share (or the claimer's handle) keeps the cell alive.
        let header = unsafe { &cell.as_ref().header };
        match header.finish_from(current, outcome, producer_done) {
            Finish::Won {
                head,
                outcome,
                free,
            } => {
                // SAFETY: the CAS detached `head`; we own it. The cell is not touched again
                // except to free it when every consumer is gone (then the list is empty).
                unsafe { node::fire_all(head, outcome) };
                if free {
                    // SAFETY: both ownership flags are set and the CAS (AcqRel) saw
                    // CONSUMERS_GONE.
                    unsafe { Cell::free(cell) };
                }
                Ok(())
            }
            // SAFETY: we hold the right to complete and lost to `cancel` (per the contract).
            Finish::Lost(_) => Err(unsafe { Cell::refused(cell, producer_done) }),
        }
    }

    /// The end of a completion that lost to `cancel`: takes the outcome back out of the slot
    /// and, if `producer_done`, releases the producer's share.
    ///
    /// # Safety
    /// The caller wrote the slot as the cell's completer and its finishing CAS found the phase
    /// CANCELLED; if `producer_done` it does not touch the cell afterwards.
    #[cold]
    unsafe fn refused(cell: NonNull<Self>, producer_done: bool) -> Outcome<T> {
        // SAFETY: the producer's share (or the claimer's handle) keeps the cell alive.
        let cell_ref = unsafe { cell.as_ref() };
        // Cancelled first: the slot is still ours alone, take the outcome back.
        // SAFETY: the phase is CANCELLED, so no reader looks at the slot.
        let outcome = unsafe { cell_ref.take_slot() };
        if producer_done && cell_ref.header.release_producer() {
            // SAFETY: both flags are set; the phase is CANCELLED so no slot is dropped.
            unsafe { Cell::free(cell) };
        }
        outcome
    }
}
