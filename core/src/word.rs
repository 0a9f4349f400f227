//! The state word: one `AtomicPtr<Node>` holding a future's phase, its flags and the head of its
//! waiter stack.
//!
//! ```text
//!  bits 63..6   head of the waiter stack (nodes are 64-byte aligned), null when empty
//!  bit  5       FAILED          with FINISHED: the outcome is a failure
//!  bit  4       CONSUMERS_GONE  every `Future` handle has been dropped
//!  bit  3       PRODUCER_GONE   the `Promise` has been consumed or dropped
//!  bit  2       LOCK            a waiter is unlinking its node; the list is frozen
//!  bits 1..0    phase           PENDING | RUNNING | FINISHED | CANCELLED
//! ```
//!
//! Invariants:
//! - The phase only moves forward: PENDING → RUNNING → FINISHED, PENDING → FINISHED,
//!   PENDING → CANCELLED. FINISHED and CANCELLED are final.
//! - Under FINISHED the result slot is initialised, and it was written before the phase was
//!   published. Under every other phase only the producer touches the slot.
//! - Once the phase is final and LOCK is clear the list is empty: whoever makes the phase final
//!   with LOCK clear detaches the list in the same CAS, and whoever clears LOCK with the phase
//!   final detaches it in that CAS.
//! - While LOCK is set nobody but its holder changes the list (no push, no detach).
//! - PRODUCER_GONE and CONSUMERS_GONE are set once each; the party that sets the second one
//!   frees the cell.
//! - Every change to the word is a read-modify-write, so release sequences carry every earlier
//!   Release to later Acquire readers.
//!
//! The tags are set with `map_addr`, so the word keeps the head's provenance and Miri can run
//! with `-Zmiri-strict-provenance`.

use crate::node::Node;

/// The phase bits.
pub(crate) const PHASE: usize = 0b11;
/// Not started; `cancel` succeeds.
pub(crate) const PENDING: usize = 0b00;
/// Claimed by the producer via `set_running_or_notify_cancel`; `cancel` fails.
pub(crate) const RUNNING: usize = 0b01;
/// Final: the slot holds the outcome (value or failure).
pub(crate) const FINISHED: usize = 0b10;
/// Final: cancelled before it ran; the slot is empty.
pub(crate) const CANCELLED: usize = 0b11;
/// A waiter holds the list to unlink its node.
pub(crate) const LOCK: usize = 0b100;
/// The producer will never touch the cell again.
pub(crate) const PRODUCER_GONE: usize = 0b1000;
/// No consumer handle is left.
pub(crate) const CONSUMERS_GONE: usize = 0b1_0000;
/// With FINISHED, set in the same CAS: the slot holds a failure. Lets a wait set's
/// FIRST_EXCEPTION test an outcome without the slot's type (and after the cell may be gone), and
/// `Cell::drop_outcome` skip a value that has no drop glue without reading the slot.
pub(crate) const FAILED: usize = 0b10_0000;
/// All tag bits; nodes are aligned to `TAG_MASK + 1`.
pub(crate) const TAG_MASK: usize = 0b11_1111;

/// A copy of the state word, decoded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot(pub(crate) *mut Node);

impl Snapshot {
    /// The word with no list and `tags`.
    #[inline(always)]
    pub(crate) fn from_tags(tags: usize) -> Self {
        Self(core::ptr::without_provenance_mut(tags))
    }

    #[inline(always)]
    pub(crate) fn tags(self) -> usize {
        self.0.addr() & TAG_MASK
    }

    #[inline(always)]
    pub(crate) fn phase(self) -> usize {
        self.0.addr() & PHASE
    }

    /// FINISHED with a failure.
    #[inline(always)]
    pub(crate) fn is_failed(self) -> bool {
        self.0.addr() & FAILED != 0
    }

    /// FINISHED or CANCELLED.
    #[inline(always)]
    pub(crate) fn is_final(self) -> bool {
        self.phase() & FINISHED != 0
    }

    #[inline(always)]
    pub(crate) fn is_locked(self) -> bool {
        self.0.addr() & LOCK != 0
    }

    #[inline(always)]
    pub(crate) fn has(self, flag: usize) -> bool {
        self.0.addr() & flag != 0
    }

    /// The head of the waiter stack (null when empty), with the word's provenance.
    #[inline(always)]
    pub(crate) fn head(self) -> *mut Node {
        self.0.map_addr(|a| a & !TAG_MASK)
    }

    /// This word's tags with `head` as the list.
    #[inline(always)]
    pub(crate) fn with_head(self, head: *mut Node) -> Self {
        let tags = self.tags();
        Self(head.map_addr(|a| a | tags))
    }

    /// This word with its tags replaced by `tags` and its list kept.
    #[inline(always)]
    pub(crate) fn with_tags(self, tags: usize) -> Self {
        Self(self.0.map_addr(|a| (a & !TAG_MASK) | tags))
    }

    /// This word with `phase` in place of the current phase.
    #[inline(always)]
    pub(crate) fn with_phase(self, phase: usize) -> Self {
        self.with_tags((self.tags() & !PHASE) | phase)
    }
}
