//! The protocol on the state word (see [`crate::word`] for its layout and invariants): pushing
//! a waiter, completing, unlinking a waiter under LOCK, and the two-party ownership of the cell.
//!
//! Progress: completion and cancellation never wait for anyone (a bounded CAS loop that retries
//! only when the word changed). A push or an unlink waits only while another waiter holds LOCK
//! for its O(k) unlink, which runs no user code and allocates nothing.

use core::ptr::NonNull;

use crate::node::{self, Node};
use crate::sync::{AtomicPtr, AtomicUsize, Ordering, ord};
use crate::word::{self, CONSUMERS_GONE, LOCK, PRODUCER_GONE, Snapshot};

/// The type-independent part of a cell: the state word and the count of consumer handles.
///
/// Invariant: `consumers` counts live `Future` handles (and records holding one); once it
/// reaches zero (or the last handle is known to be the last), the last handle's holder sets
/// CONSUMERS_GONE and nobody touches the count again.
#[repr(C)]
pub struct Header {
    state: AtomicPtr<Node>,
    consumers: AtomicUsize,
    /// How to free this cell and, for task cells, how to run it; fixed at creation and never
    /// written again.
    ///
    /// In an `UnsafeCell` although it never changes: `&Header` is the receiver of the calls
    /// whose CAS hands the cell to another party (`finish`, `cas`, `set_flag`, ...), and that
    /// party may free the cell before the call returns. Stacked Borrows protects the bytes of a
    /// reference argument that are not interior-mutable for the whole call, so a plain field
    /// here made that free undefined behaviour (Miri: "would remove [SharedReadOnly ..] which
    /// is strongly protected", in the loom-tests twins `into_result_drop_set`,
    /// `poll_repoll_set` and `poll_drop_set`). Every byte of `Header` is interior-mutable, as
    /// `Arc`'s counters are, so a `&Header` never pins the allocation. Plain `core` cell, not
    /// the loom shim: nothing synchronises through it.
    ops: core::cell::UnsafeCell<&'static CellOps>,
}

/// The typed operations of a cell, reached through its header.
pub(crate) struct CellOps {
    /// Frees the cell; drops the outcome unless `outcome_taken`.
    ///
    /// # Safety
    /// As [`crate::cell::Cell::free`].
    pub(crate) free: unsafe fn(NonNull<Header>, outcome_taken: bool),
    /// Present for task cells (see [`crate::task`]).
    pub(crate) task: Option<crate::task::TaskOps>,
    /// Present for driven cells (see [`crate::driven`]).
    #[cfg(feature = "std")]
    pub(crate) drive: Option<crate::driven::DriveOps>,
    /// Whether this is a plain `Cell<T>` allocation (freed inline, without the indirect call).
    pub(crate) plain: bool,
}

/// Tells a driven cell's producer that a waiter which will not drive it (a parked thread, a
/// waker, a wait set, a callback) was just linked into its list; nothing for other cells.
///
/// # Safety
/// `header` heads a live cell, kept alive by the caller's handle for the call, with the whole
/// cell's provenance.
#[inline]
pub(crate) unsafe fn linked_passive_waiter(header: NonNull<Header>) {
    #[cfg(feature = "std")]
    // SAFETY: alive per the contract.
    if let Some(driven) = unsafe { header.as_ref() }.ops().drive {
        // SAFETY: per the contract; the ops match the allocation (set at creation).
        unsafe { (driven.watch)(header) };
    }
    #[cfg(not(feature = "std"))]
    let _ = header;
}

/// How a claim on a cell (a task's, or a promise's `set_running_or_notify_cancel`) ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Claim {
    /// PENDING → RUNNING by this caller: it must run the work.
    Won,
    /// The future was cancelled; the work was never taken.
    Cancelled,
    /// It was already RUNNING or finished (claimed by someone else, or earlier by this same
    /// producer): the state is left as it was.
    Taken,
}

/// How a push ended.
pub(crate) enum Push {
    /// The node is in the list; it will be fired or must be unlinked.
    Linked,
    /// The phase was already final (loaded with Acquire); the node was not linked.
    Final,
}

/// How a completion attempt ended.
pub(crate) enum Finish {
    /// The phase is now the requested one. The caller owns `head` (possibly null) and must
    /// [`node::fire_all`] it with `outcome`; `free` says the caller must free the cell
    /// afterwards.
    Won {
        head: *mut Node,
        outcome: Snapshot,
        free: bool,
    },
    /// The phase was already final, or (for cancel) RUNNING.
    Lost(Snapshot),
}

/// How an attempt to unlink a node ended.
pub(crate) enum Unlink {
    /// The node is out of the list and back with its owner. `now_final` says the phase became
    /// final while LOCK was held (this caller then detached and woke the rest).
    Unlinked {
        #[cfg_attr(not(feature = "std"), allow(dead_code))]
        now_final: bool,
    },
    /// The phase was final: the node is (or was) in a detached list and will be fired.
    AlreadyFinal,
}

impl Header {
    /// A header for a fresh cell: PENDING, empty list, one consumer.
    #[inline]
    pub(crate) fn new(ops: &'static CellOps) -> Self {
        Self {
            state: AtomicPtr::new(Snapshot::from_tags(word::PENDING).0),
            consumers: AtomicUsize::new(1),
            ops: core::cell::UnsafeCell::new(ops),
        }
    }

    #[inline]
    pub(crate) fn ops(&self) -> &'static CellOps {
        // SAFETY: written only by `new`, so no read can race with a write.
        unsafe { *self.ops.get() }
    }

    #[inline(always)]
    pub(crate) fn load(&self, order: Ordering) -> Snapshot {
        Snapshot(self.state.load(order))
    }

    #[inline(always)]
    fn cas(&self, current: Snapshot, new: Snapshot, success: Ordering) -> Result<(), Snapshot> {
        self.state
            .compare_exchange_weak(current.0, new.0, success, ord::RETRY)
            .map(drop)
            .map_err(Snapshot)
    }

    /// Sets `flag`; returns the word before. Used for the two ownership flags.
    fn set_flag(&self, flag: usize) -> Snapshot {
        let mut current = self.load(ord::RETRY);
        loop {
            let new = current.with_tags(current.tags() | flag);
            // ORDERING: AcqRel: the party that sets the second ownership flag frees the cell, so
            // it must see (Acquire) everything the other party did, which released (Release).
            match self.cas(current, new, Ordering::AcqRel) {
                Ok(()) => return current,
                Err(actual) => current = actual,
            }
        }
    }

    /// Links `node` at the head of the list unless the phase is final.
    ///
    /// # Safety
    /// `node` is valid, not in any list, and stays valid and in place until it is fired or
    /// unlinked with [`Header::unlink`].
    pub(crate) unsafe fn push(&self, node: NonNull<Node>) -> Push {
        let mut spins = 0;
        loop {
            let current = self.load(ord::FAST_PATH_LOAD);
            if current.is_final() {
                return Push::Final;
            }
            if current.is_locked() {
                // Rule 4: nobody but the LOCK holder touches the list.
                crate::backoff::snooze(&mut spins);
                continue;
            }
            // SAFETY: the node is not yet published, so its pusher owns `next`.
            unsafe { node.as_ref().set_next(current.head()) };
            if self
                .cas(current, current.with_head(node.as_ptr()), ord::PUSH)
                .is_ok()
            {
                return Push::Linked;
            }
        }
    }

    /// Moves the phase to `outcome` (FINISHED, FINISHED | FAILED, or CANCELLED) and detaches
    /// the list, unless the phase is already final (or, when cancelling, RUNNING).
    /// `producer_done` also sets PRODUCER_GONE in the same CAS: the producer's last touch of
    /// the cell.
    #[inline]
    pub(crate) fn finish(&self, outcome: usize, producer_done: bool) -> Finish {
        match self.finish_bare(outcome, producer_done) {
            Ok(()) => Finish::Won {
                head: core::ptr::null_mut(),
                outcome: Snapshot::from_tags(outcome | gone_flag(producer_done)),
                free: false,
            },
            Err(current) => self.finish_from(current, outcome, producer_done),
        }
    }

    /// [`Header::finish`] for the common word, decided with one compare: PENDING (or, unless
    /// cancelling, RUNNING) with no waiter, no LOCK and no ownership flag. Then the new word is
    /// just `outcome` and the flag, and on success there is nobody to wake and nothing to free.
    /// Otherwise returns the word found, for [`Header::finish_from`].
    ///
    /// Kept apart so that a completer can return at once on success: merged into one `Finish`
    /// with the general loop's, the empty list and the `free: false` went through memory and
    /// were tested again (seen in the `same_thread` disassembly).
    #[inline(always)]
    pub(crate) fn finish_bare(&self, outcome: usize, producer_done: bool) -> Result<(), Snapshot> {
        let current = self.load(ord::RETRY);
        let movable = if outcome == word::CANCELLED {
            word::PENDING
        } else {
            word::RUNNING
        };
        if current.0.addr() & !movable != 0 {
            return Err(current);
        }
        let tags = outcome | gone_flag(producer_done);
        self.cas(current, Snapshot::from_tags(tags), detach_order(outcome))
    }

    /// [`Header::finish`] from the word `current`, for any word.
    #[cold]
    pub(crate) fn finish_from(
        &self,
        mut current: Snapshot,
        outcome: usize,
        producer_done: bool,
    ) -> Finish {
        let cancelling = outcome == word::CANCELLED;
        let gone = gone_flag(producer_done);
        loop {
            if current.is_final() || (cancelling && current.phase() == word::RUNNING) {
                return Finish::Lost(current);
            }
            let tags = (current.tags() & !word::PHASE) | outcome | gone;
            let free = producer_done && current.has(CONSUMERS_GONE);
            let attempt = if current.is_locked() && !cfg!(concur_bug = "rule4-finish-under-lock") {
                // Rule 4: leave the list to the LOCK holder, who detaches it when it unlocks.
                // ORDERING: cancel publishes no slot, so its phase-only CAS needs nothing.
                let order = if cancelling {
                    Ordering::Relaxed
                } else {
                    ord::SET_PHASE_ONLY
                };
                self.cas(current, current.with_tags(tags), order)
                    .map(|()| core::ptr::null_mut())
            } else {
                let tags = tags & !LOCK;
                self.cas(current, Snapshot::from_tags(tags), detach_order(outcome))
                    .map(|()| current.head())
            };
            match attempt {
                Ok(head) => {
                    let outcome = Snapshot::from_tags(tags);
                    return Finish::Won {
                        head,
                        outcome,
                        free,
                    };
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Cancels a PENDING future and wakes its waiters; true if it is (now or already)
    /// cancelled. The caller holds a consumer handle.
    pub(crate) fn cancel(&self) -> bool {
        match self.finish(word::CANCELLED, false) {
            Finish::Won { head, outcome, .. } => {
                // SAFETY: the CAS detached `head`; we own it.
                unsafe { node::fire_all(head, outcome) };
                true
            }
            Finish::Lost(state) => state.phase() == word::CANCELLED,
        }
    }

    /// Moves PENDING to RUNNING, and says whether this caller did it.
    #[inline]
    pub(crate) fn claim(&self) -> Claim {
        let mut current = self.load(ord::RETRY);
        loop {
            match current.phase() {
                word::PENDING => {}
                word::CANCELLED => return Claim::Cancelled,
                _ => return Claim::Taken,
            }
            // ORDERING: Acquire: the winner goes on to take the work out of the cell, which its
            // creator wrote before sharing the cell (already ordered by that sharing; Acquire
            // costs nothing and keeps the claim a proper acquisition).
            match self.cas(
                current,
                current.with_phase(word::RUNNING),
                Ordering::Acquire,
            ) {
                Ok(()) => return Claim::Won,
                Err(actual) => current = actual,
            }
        }
    }

    /// Takes `node` out of the list, unless the phase is final (then it will be fired).
    ///
    /// # Safety
    /// `node` was linked into this list by [`Header::push`] and has not been unlinked.
    pub(crate) unsafe fn unlink(&self, node: NonNull<Node>) -> Unlink {
        let Some(locked) = self.lock() else {
            return Unlink::AlreadyFinal;
        };
        // SAFETY: we hold LOCK, so the list's links are ours; the node is in it (caller).
        let new_head = unsafe { remove(locked.head(), node) };
        Unlink::Unlinked {
            now_final: self.unlock(new_head),
        }
    }

    /// Acquires LOCK; returns the locked word, or `None` if the phase is final.
    fn lock(&self) -> Option<Snapshot> {
        let mut spins = 0;
        loop {
            let current = self.load(ord::RETRY);
            if current.is_final() {
                return None;
            }
            if current.is_locked() {
                crate::backoff::snooze(&mut spins);
                continue;
            }
            let locked = current.with_tags(current.tags() | LOCK);
            if self.cas(current, locked, ord::LOCK_CAS).is_ok() {
                return Some(locked);
            }
        }
    }

    /// Releases LOCK with `new_head` as the list. If the phase became final meanwhile, detaches
    /// the list in the same CAS and wakes it (rule 3). Returns whether the phase is final.
    fn unlock(&self, new_head: *mut Node) -> bool {
        let mut current = self.load(ord::RETRY);
        loop {
            if cfg!(concur_bug = "rule5-unlock-by-store") {
                // Planted bug: a plain store can erase a completion that happened under LOCK.
                let phase_final = current.is_final();
                let tags = current.tags() & !LOCK;
                self.state
                    .store(current.with_head(new_head).with_tags(tags).0, ord::UNLOCK);
                return phase_final;
            }
            let tags = current.tags() & !LOCK;
            if !current.is_final() {
                let unlocked = current.with_head(new_head).with_tags(tags);
                match self.cas(current, unlocked, ord::UNLOCK) {
                    Ok(()) => return false,
                    Err(actual) => current = actual,
                }
            } else if cfg!(concur_bug = "rule3-unlock-keeps-list") {
                let unlocked = current.with_head(new_head).with_tags(tags);
                match self.cas(current, unlocked, ord::UNLOCK) {
                    Ok(()) => return true,
                    Err(actual) => current = actual,
                }
            } else if cfg!(concur_bug = "weak-delegating-unlock") {
                // Planted bug: LOCK keeps completers and pushers off the word, so a plain store
                // looks enough to detach; but a store ends the release sequence of set's
                // phase-only CAS, so a reader that acquires this word misses the slot.
                self.state
                    .store(Snapshot::from_tags(tags).0, Ordering::Relaxed);
                // SAFETY: the store detached the list; we own it.
                unsafe { node::fire_all(new_head, current) };
                return true;
            } else {
                match self.cas(current, Snapshot::from_tags(tags), ord::DELEGATING_UNLOCK) {
                    Ok(()) => {
                        // SAFETY: the CAS detached the list; we own it.
                        unsafe { node::fire_all(new_head, current) };
                        return true;
                    }
                    Err(actual) => current = actual,
                }
            }
        }
    }

    /// Adds a consumer handle.
    #[inline]
    pub(crate) fn add_consumer(&self) {
        // ORDERING: Relaxed, as `Arc::clone`: a new handle is made from an existing one, which
        // already keeps the cell alive.
        let old = self.consumers.fetch_add(1, Ordering::Relaxed);
        if old > isize::MAX as usize {
            // As `Arc`: only reachable by leaking 2^63 handles; the count must not wrap.
            overflow_abort();
        }
    }

    /// Drops a consumer handle. Returns true if the caller must now free the cell.
    #[inline]
    pub(crate) fn release_consumer(&self) -> bool {
        if self.is_sole_consumer() && self.load(ord::FAST_PATH_LOAD).has(PRODUCER_GONE) {
            // The last consumer with the producer gone owns the cell: free with plain loads.
            return true;
        }
        // ORDERING: AcqRel, as `Arc::drop`: Release publishes this handle's uses to the freer,
        // Acquire (for the last one) sees every other handle's.
        if self.consumers.fetch_sub(1, Ordering::AcqRel) != 1 {
            return false;
        }
        self.set_flag(CONSUMERS_GONE).has(PRODUCER_GONE)
    }

    /// Whether the caller's handle is the only consumer left.
    #[inline]
    pub(crate) fn is_sole_consumer(&self) -> bool {
        // ORDERING: Acquire pairs with the Release decrement of every other handle's drop, so a
        // caller that goes on to free or move out of the cell sees their uses as finished.
        self.consumers.load(Ordering::Acquire) == 1
    }

    /// Drops one consumer handle unless it is the last; returns true if it was the last (the
    /// caller keeps ownership of its reference in that case, and gives it up with
    /// [`Header::release_last_consumer`], not [`Header::release_consumer`]: the count may
    /// already be zero).
    #[inline]
    pub(crate) fn release_consumer_unless_last(&self) -> bool {
        if self.is_sole_consumer() {
            return true;
        }
        // ORDERING: AcqRel, as in `release_consumer`.
        self.consumers.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// Gives up the last consumer handle, which [`Header::release_consumer_unless_last`] said
    /// this caller holds. Returns true if the caller must now free the cell.
    pub(crate) fn release_last_consumer(&self) -> bool {
        // The count is 1 or, if another handle was dropped between that call's test and its
        // decrement, already 0; nobody else reads it now, so only the flag is left to set.
        self.set_flag(CONSUMERS_GONE).has(PRODUCER_GONE)
    }

    /// The producer leaves without completing (it lost to `cancel`). Returns true if it must
    /// free the cell.
    pub(crate) fn release_producer(&self) -> bool {
        self.set_flag(PRODUCER_GONE).has(CONSUMERS_GONE)
    }
}

/// PRODUCER_GONE if the producer leaves in this CAS.
#[inline(always)]
fn gone_flag(producer_done: bool) -> usize {
    if producer_done { PRODUCER_GONE } else { 0 }
}

/// The success ordering of a CAS that makes the phase `outcome` final and detaches the list.
#[inline(always)]
fn detach_order(outcome: usize) -> Ordering {
    if outcome == word::CANCELLED {
        ord::CANCEL_DETACH
    } else {
        ord::SET_DETACH
    }
}

/// Removes `node` from the list starting at `head`; returns the new head.
///
/// # Safety
/// The caller holds LOCK on the list (so it owns every `next`), and `node` is in it.
unsafe fn remove(head: *mut Node, node: NonNull<Node>) -> *mut Node {
    // SAFETY: (whole function) nodes in a locked list are alive and their links are ours.
    let after = unsafe { node.as_ref().next() };
    if head == node.as_ptr() {
        return after;
    }
    let mut cursor = head;
    while let Some(prev) = NonNull::new(cursor) {
        // SAFETY: see above.
        let prev = unsafe { prev.as_ref() };
        // SAFETY: see above.
        let next = unsafe { prev.next() };
        if next == node.as_ptr() {
            // SAFETY: see above.
            unsafe { prev.set_next(after) };
            return head;
        }
        cursor = next;
    }
    debug_assert!(false, "a linked node was missing from its list");
    head
}

#[cold]
fn overflow_abort() -> ! {
    #[cfg(feature = "std")]
    std::process::abort();
    #[cfg(not(feature = "std"))]
    panic!("concur: Future handle count overflow");
}
