//! A wait set: one allocation holding a shared header and one waiter node per future, used by
//! `wait` and `as_completed` (DESIGN §2 "Wait sets").
//!
//! Each node is linked into one future's list. The completer that fires a node reports one
//! event to the set and drops the node's reference; only the events that change what the owner
//! waits for wake it (FIRST_COMPLETED: the first; ALL_COMPLETED: the last; FIRST_EXCEPTION: a
//! failure or the last; as_completed: a push onto an empty ready stack). O(N) to register, O(1)
//! per completion, O(N) to leave, and the owner never waits for a completer: nodes it cannot
//! unlink belong to a detached list whose owner drops their reference after firing them.

use core::alloc::Layout;
use core::ptr::NonNull;

use crate::atomic_waker::AtomicWaker;
use crate::header::{Header, Push, Unlink};
use crate::node::{Kind, Node};
use crate::sync::{AtomicBool, AtomicPtr, AtomicUsize, Ordering, UnsafeCell, heap};
use crate::word::{self, Snapshot};

/// What the owner waits for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    FirstCompleted,
    FirstException,
    AllCompleted,
    AsCompleted,
}

/// One future's entry. The completer reads `set` and `index`; `linked` is the owner's alone.
#[repr(C)]
struct WaitNode {
    node: Node,
    set: NonNull<Shared>,
    index: usize,
    /// Owner-only: the push of this node succeeded (its reference is not the owner's to drop
    /// unless the owner also unlinks it).
    linked: UnsafeCell<bool>,
}

impl WaitNode {
    /// Records that the push succeeded. Only the set's owner calls this.
    fn set_linked(&self) {
        // SAFETY: `linked` is owner-only (see the field), and only the owner calls this.
        self.linked.with_mut(|linked| unsafe { *linked = true });
    }

    /// Whether the push succeeded. Only the set's owner calls this.
    fn is_linked(&self) -> bool {
        // SAFETY: as in `set_linked`.
        self.linked.with(|linked| unsafe { *linked })
    }
}

/// The part of the allocation that completers touch.
///
/// Invariant: `refs` counts the owner (until it leaves) plus every node whose reference has not
/// been dropped; the one that drops it to zero frees the whole allocation.
struct Shared {
    refs: AtomicUsize,
    /// ALL_COMPLETED / FIRST_EXCEPTION: nodes whose future is not final yet.
    remaining: AtomicUsize,
    /// The owner's condition holds (not used by as_completed).
    signalled: AtomicBool,
    /// as_completed: fired nodes, newest first, linked through `Node::next`.
    ready: AtomicPtr<Node>,
    notifier: AtomicWaker,
    mode: Mode,
    len: usize,
}

/// The owner's handle on a wait set.
pub(crate) struct WaitSet {
    shared: NonNull<Shared>,
}

// SAFETY: the owner's handle only touches the set through atomics and owner-only fields; it
// may move between threads (an `as_completed` iterator can).
unsafe impl Send for WaitSet {}

fn layout(len: usize) -> (Layout, usize) {
    let nodes = Layout::array::<WaitNode>(len).expect("wait set size overflows");
    let (layout, offset) = Layout::new::<Shared>()
        .extend(nodes)
        .expect("wait set size overflows");
    (layout.pad_to_align(), offset)
}

impl WaitSet {
    /// A set of `len` unlinked nodes.
    pub(crate) fn new(mode: Mode, len: usize) -> Self {
        let (layout, offset) = layout(len);
        let block = heap::alloc_raw(layout);
        let shared = block.cast::<Shared>();
        // SAFETY: `block` is fresh, sized and aligned for the header and `len` nodes.
        unsafe {
            shared.as_ptr().write(Shared {
                refs: AtomicUsize::new(1 + len),
                remaining: AtomicUsize::new(len),
                signalled: AtomicBool::new(false),
                ready: AtomicPtr::new(core::ptr::null_mut()),
                notifier: AtomicWaker::new(),
                mode,
                len,
            });
            let nodes = block.as_ptr().add(offset).cast::<WaitNode>();
            for index in 0..len {
                nodes.add(index).write(WaitNode {
                    node: Node::new(Kind::Waiter, fire_wait_node),
                    set: shared,
                    index,
                    linked: UnsafeCell::new(false),
                });
            }
        }
        WaitSet { shared }
    }

    fn shared(&self) -> &Shared {
        // SAFETY: the owner's reference keeps the allocation alive.
        unsafe { self.shared.as_ref() }
    }

    fn node(&self, index: usize) -> NonNull<WaitNode> {
        debug_assert!(index < self.shared().len);
        let (_, offset) = layout(self.shared().len);
        // SAFETY: in bounds of the allocation made in `new`.
        unsafe {
            self.shared
                .cast::<u8>()
                .add(offset)
                .cast::<WaitNode>()
                .add(index)
        }
    }

    /// Links node `index` into `header`'s list, or, if that future is already final, reports
    /// the event at once. Returns whether it linked.
    pub(crate) fn register(&self, index: usize, header: &Header) -> bool {
        let node = self.node(index);
        // SAFETY: the node is in our allocation, unlinked, and stays in place until unlinked
        // or fired (the allocation outlives both through `refs`).
        match unsafe { header.push(node.cast()) } {
            Push::Linked => {
                // SAFETY: the node lives in our allocation (kept alive by the owner's reference).
                unsafe { node.as_ref() }.set_linked();
                true
            }
            Push::Final => {
                let outcome = header.load(crate::sync::ord::FAST_PATH_LOAD);
                // SAFETY: the node was not linked, so it is still ours to report.
                unsafe { report(node, outcome) };
                false
            }
        }
    }

    /// Whether the owner's condition holds.
    pub(crate) fn is_signalled(&self) -> bool {
        // ORDERING: Acquire pairs with the signalling completer's AcqRel swap, so the futures'
        // outcomes it published are visible to the owner's scan.
        self.shared().signalled.load(Ordering::Acquire)
    }

    /// Takes the fired nodes' indices pushed so far, oldest first, into `out`.
    pub(crate) fn take_ready(&self, out: &mut alloc::collections::VecDeque<usize>) -> bool {
        // ORDERING: Acquire pairs with the pushers' Release, so the nodes' links are visible.
        let mut head = self
            .shared()
            .ready
            .swap(core::ptr::null_mut(), Ordering::Acquire);
        let first = out.len();
        while let Some(node) = NonNull::new(head) {
            // SAFETY: the swap gave us these nodes; their completers no longer touch them.
            let wait_node = unsafe { node.cast::<WaitNode>().as_ref() };
            out.insert(first, wait_node.index);
            // SAFETY: as above.
            head = unsafe { wait_node.node.next() };
        }
        out.len() > first
    }

    /// Whether fired nodes wait in the ready stack.
    pub(crate) fn has_ready(&self) -> bool {
        // ORDERING: Relaxed: a hint; `take_ready` synchronises.
        !self.shared().ready.load(Ordering::Relaxed).is_null()
    }

    /// Blocks until `ready()` holds or `deadline` passes; returns whether it holds.
    #[cfg(feature = "std")]
    pub(crate) fn block_until(
        &self,
        ready: impl Fn(&Self) -> bool,
        deadline: Option<std::time::Instant>,
    ) -> bool {
        use crate::sync::thread;
        if ready(self) {
            return true;
        }
        self.shared().notifier.register_thread();
        loop {
            if ready(self) {
                return true;
            }
            match deadline {
                None => thread::park(),
                Some(deadline) if thread::deadline_passed(deadline) => return ready(self),
                Some(deadline) => thread::park_until(deadline),
            }
        }
    }

    /// Registers an async task to wake on the next event.
    #[cfg(feature = "stream")]
    pub(crate) fn register_waker(&self, waker: &core::task::Waker) {
        self.shared().notifier.register(waker);
    }

    /// Leaves the set: unlinks every node still linked whose future `header_of` still returns
    /// (futures it no longer holds had their node fired), and drops the owner's references.
    pub(crate) fn leave<'h>(self, header_of: impl Fn(usize) -> Option<&'h Header>) {
        let len = self.shared().len;
        let mut released = 1; // the owner's own
        for index in 0..len {
            let node = self.node(index);
            // SAFETY: the node lives in our allocation (kept alive by the owner's reference).
            let linked = unsafe { node.as_ref() }.is_linked();
            if !linked {
                released += 1;
                continue;
            }
            let Some(header) = header_of(index) else {
                continue;
            };
            // SAFETY: linked by `register` into this header's list and not unlinked since.
            if let Unlink::Unlinked { .. } = unsafe { header.unlink(node.cast()) } {
                released += 1;
            }
        }
        drop(self.shared().notifier.take());
        let shared = self.shared;
        // SAFETY: these are references the owner holds (its own and its nodes').
        unsafe { release(shared, released) };
    }
}

/// Reports node `node`'s future reaching `outcome` to its set.
///
/// # Safety
/// The caller owns the node's event: it fired it, or its push found the future final.
unsafe fn report(node: NonNull<WaitNode>, outcome: Snapshot) {
    // SAFETY: the node's set is alive: this node's reference (or the owner's) is not dropped.
    let wait_node = unsafe { node.as_ref() };
    // SAFETY: as above.
    let set = unsafe { wait_node.set.as_ref() };
    let failed = outcome.phase() == word::FINISHED && outcome.is_failed();
    match set.mode {
        Mode::FirstCompleted => signal(set),
        Mode::FirstException if failed => signal(set),
        Mode::FirstException | Mode::AllCompleted => {
            // ORDERING: AcqRel: the last decrement signals, after every earlier event.
            if set.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                signal(set);
            }
        }
        Mode::AsCompleted => push_ready(set, node),
    }
}

fn signal(set: &Shared) {
    // ORDERING: AcqRel: Release publishes the outcome that caused it to the owner's Acquire.
    if !set.signalled.swap(true, Ordering::AcqRel) {
        set.notifier.wake();
    }
}

fn push_ready(set: &Shared, node: NonNull<WaitNode>) {
    let as_node = node.cast::<Node>();
    // ORDERING: Relaxed: the CAS below carries the ordering.
    let mut head = set.ready.load(Ordering::Relaxed);
    loop {
        // SAFETY: the node is out of every future's list; its `next` is ours until the push.
        unsafe { as_node.as_ref().set_next(head) };
        // ORDERING: Release publishes `next` to the owner's Acquire swap.
        match set.ready.compare_exchange_weak(
            head,
            as_node.as_ptr(),
            Ordering::Release,
            Ordering::Relaxed,
        ) {
            Ok(_) => break,
            Err(actual) => head = actual,
        }
    }
    if head.is_null() {
        // Only a push onto an empty stack wakes: one wake per batch the owner has not seen.
        set.notifier.wake();
    }
}

/// The completer's side: report the event, then drop the node's reference (last touch).
///
/// # Safety
/// As [`Node`]'s `fire`: `node` heads a `WaitNode` in a list the caller detached.
unsafe fn fire_wait_node(node: NonNull<Node>, outcome: Snapshot) {
    let wait_node = node.cast::<WaitNode>();
    // SAFETY: the node's reference keeps the set alive until `release`.
    let set = unsafe { wait_node.as_ref() }.set;
    // SAFETY: we own this node's event.
    unsafe { report(wait_node, outcome) };
    // SAFETY: this node's reference, dropped once.
    unsafe { release(set, 1) };
}

/// Drops `count` references; the last frees the allocation.
///
/// # Safety
/// The caller holds `count` references to the set.
unsafe fn release(shared: NonNull<Shared>, count: usize) {
    // SAFETY: alive while we hold references.
    let refs = unsafe { &shared.as_ref().refs };
    // ORDERING: AcqRel, as `Arc::drop`: the freer must see every other party's last use.
    if refs.fetch_sub(count, Ordering::AcqRel) != count {
        return;
    }
    // SAFETY: we dropped the last reference.
    let len = unsafe { shared.as_ref().len };
    let (layout, offset) = layout(len);
    // SAFETY: exclusive now: drop the header and every node in place (under loom the cells
    // carry tracking state; natively this is the header's waker slot only).
    unsafe {
        let nodes = shared.cast::<u8>().as_ptr().add(offset).cast::<WaitNode>();
        core::ptr::drop_in_place(core::ptr::slice_from_raw_parts_mut(nodes, len));
        core::ptr::drop_in_place(shared.as_ptr());
    }
    // SAFETY: allocated by `alloc_raw(layout)` in `WaitSet::new`.
    unsafe { heap::free_raw(shared.cast(), layout) };
}
