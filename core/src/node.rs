//! Waiter nodes: the intrusive entries of a future's waiter stack, and how a detached stack is
//! woken.
//!
//! A node is the first field (`#[repr(C)]`) of a bigger record that knows what to wake: a parked
//! thread ([`crate::blocking`]), an async task ([`crate::awaiting`]), a slot in a wait set, or a
//! done-callback ([`crate::callback`]). The record's `fire` function is its only entry point for
//! the completer.
//!
//! Ownership: while a node is linked, the list owns its `next` field; the record's owner keeps the
//! node alive and in place until either it unlinked the node itself under LOCK, or the completer
//! finished with it (`fire` returned the record's ownership, e.g. by storing FIRED as its last
//! touch). A node is never in two lists.

use core::marker::PhantomPinned;
use core::ptr::NonNull;

use crate::sync::UnsafeCell;
use crate::word::Snapshot;

/// What the completer does with a node it detached.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// Wake at once, in any order.
    Waiter,
    /// Run after every waiter is woken, in the order the callbacks were added.
    Callback,
}

/// The intrusive header shared by every waiter record.
///
/// Invariant: aligned to 64 bytes so the state word's six tag bits are free.
#[repr(C, align(64))]
pub(crate) struct Node {
    /// The next (older) node of the stack. Written by the pusher before it publishes the node,
    /// then only by a LOCK holder unlinking a neighbour, or by the owner of the detached list.
    next: UnsafeCell<*mut Node>,
    /// Consumes the node on behalf of the list's owner; the second argument is the final word
    /// (phase and FAILED) that completed the future.
    ///
    /// # Safety
    /// Called at most once, by the owner of a detached list, after it read `next`; the caller
    /// never touches the node afterwards.
    fire: unsafe fn(NonNull<Node>, Snapshot),
    kind: Kind,
    /// A linked node's address is in other nodes and in the state word.
    _pinned: PhantomPinned,
}

impl Node {
    pub(crate) fn new(kind: Kind, fire: unsafe fn(NonNull<Node>, Snapshot)) -> Self {
        Self {
            next: UnsafeCell::new(core::ptr::null_mut()),
            fire,
            kind,
            _pinned: PhantomPinned,
        }
    }

    /// Reads `next`.
    ///
    /// # Safety
    /// The caller owns the list this node is in (holds LOCK, or detached it), or is the pusher
    /// before publication.
    #[inline(always)]
    pub(crate) unsafe fn next(&self) -> *mut Node {
        // SAFETY: the caller has exclusive access to the list's links (see above).
        self.next.with(|p| unsafe { *p })
    }

    /// Writes `next`.
    ///
    /// # Safety
    /// As for [`Node::next`].
    #[inline(always)]
    pub(crate) unsafe fn set_next(&self, next: *mut Node) {
        // SAFETY: the caller has exclusive access to the list's links (see above).
        self.next.with_mut(|p| unsafe { *p = next });
    }
}

/// Wakes every node of a detached list: waiters at once, then callbacks in the order added.
///
/// # Safety
/// The caller detached `head` from a state word in the CAS that made its phase final (or that
/// released LOCK on a final phase), so it owns every node of the list; `outcome` is that final
/// word.
#[inline]
pub(crate) unsafe fn fire_all(head: *mut Node, outcome: Snapshot) {
    // Most completions find nobody waiting: keep that path a compare in the caller.
    if !head.is_null() {
        // SAFETY: the caller's contract, passed on.
        unsafe { fire_list(head, outcome) };
    }
}

/// [`fire_all`] for a non-empty list.
///
/// # Safety
/// As [`fire_all`].
#[cold]
unsafe fn fire_list(head: *mut Node, outcome: Snapshot) {
    let mut callbacks: *mut Node = core::ptr::null_mut();
    let mut cursor = head;
    while let Some(node) = NonNull::new(cursor) {
        // SAFETY: we own the detached list, so its nodes are alive until fired.
        let node_ref = unsafe { node.as_ref() };
        // SAFETY: we own the list's links; `next` is read before `fire` ends our access.
        cursor = unsafe { node_ref.next() };
        if node_ref.kind == Kind::Callback {
            // The stack is newest-first; pushing onto `callbacks` restores the order of adding.
            // SAFETY: callback records are owned by the list, which we own.
            unsafe { node_ref.set_next(callbacks) };
            callbacks = node.as_ptr();
        } else {
            // SAFETY: each node is fired once, by us, and not touched afterwards.
            unsafe { (node_ref.fire)(node, outcome) };
        }
    }
    while let Some(node) = NonNull::new(callbacks) {
        // SAFETY: callback records stay valid until their own `fire` frees them.
        let node_ref = unsafe { node.as_ref() };
        // SAFETY: the relinked callback list is ours alone.
        callbacks = unsafe { node_ref.next() };
        // SAFETY: fired once, after reading `next`, and not touched afterwards.
        unsafe { (node_ref.fire)(node, outcome) };
    }
}
