//! The one place that names atomics, cells, shared pointers, threads and raw allocation.
//!
//! Under `--cfg concur_loom` every item here is loom's, so a loom model sees every access the
//! protocol makes; otherwise they are `core`/`std`'s. Code elsewhere in the crate must import
//! these names from here, never from `core::sync` or `std` directly.
//!
//! It also holds [`ord`], the table of every memory ordering the protocol uses, so that a planted
//! bug (`--cfg concur_bug="weak-…"`) can weaken one site at a time and the harness can show it
//! notices.

#[cfg(not(concur_loom))]
pub(crate) use alloc::sync::Arc;
#[cfg(not(concur_loom))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicUsize};
#[cfg(concur_loom)]
pub(crate) use loom::sync::Arc;
#[cfg(concur_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicUsize};

pub(crate) use core::sync::atomic::Ordering;

/// `UnsafeCell` with loom's closure API, so call sites read the same in both builds.
#[cfg(not(concur_loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(concur_loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a shared raw pointer to the contents.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a unique raw pointer to the contents.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(concur_loom)]
pub(crate) use loom::cell::UnsafeCell;

/// Threads, parking and time, as the blocking waits see them.
#[cfg(feature = "std")]
pub(crate) mod thread {
    #[cfg(concur_loom)]
    pub(crate) use loom::thread::{Thread, current, park, yield_now};
    #[cfg(not(concur_loom))]
    pub(crate) use std::thread::{Thread, current, park, yield_now};

    use std::time::Instant;

    /// Parks until unparked (or spuriously) or until `deadline`.
    #[cfg(not(concur_loom))]
    pub(crate) fn park_until(deadline: Instant) {
        if let Some(left) = deadline.checked_duration_since(Instant::now()) {
            std::thread::park_timeout(left);
        }
    }

    /// Loom has no timed park: a timed wait is modelled as one scheduling point followed by an
    /// explicit give-up (see [`deadline_passed`]), which lets loom place the give-up anywhere.
    #[cfg(concur_loom)]
    pub(crate) fn park_until(_deadline: Instant) {
        loom::thread::yield_now();
    }

    /// Whether `deadline` has passed.
    #[cfg(not(concur_loom))]
    pub(crate) fn deadline_passed(deadline: Instant) -> bool {
        Instant::now() >= deadline
    }

    /// Under loom every deadline has passed as soon as it is checked: a timed wait links its
    /// node, checks for a wake once, and gives up.
    #[cfg(concur_loom)]
    pub(crate) fn deadline_passed(_deadline: Instant) -> bool {
        true
    }
}

/// Loom 0.7's `unpark` is not a scheduling point, so without help loom never runs a waiter in
/// the window between a completer's FIRED store and its unpark. The completer calls
/// [`probe::bump`] inside that window and the waiter calls [`probe::touch`] before every FIRED
/// check; both are loom atomics, so loom schedules around them. In normal builds they vanish.
#[cfg_attr(not(feature = "std"), allow(dead_code))]
pub(crate) mod probe {
    #[cfg(concur_loom)]
    loom::lazy_static! {
        static ref WINDOW: loom::sync::atomic::AtomicUsize = loom::sync::atomic::AtomicUsize::new(0);
    }

    /// Called by a completer between FIRED and the wake.
    #[inline(always)]
    pub(crate) fn bump() {
        #[cfg(concur_loom)]
        WINDOW.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    }

    /// Called by a waiter before it checks FIRED.
    #[inline(always)]
    pub(crate) fn touch() {
        #[cfg(concur_loom)]
        WINDOW.load(core::sync::atomic::Ordering::Relaxed);
    }
}

/// Raw allocation of a value, through loom's leak tracker under loom.
pub(crate) mod heap {
    use core::ptr::NonNull;

    /// Moves `value` to the heap.
    #[cfg(not(concur_loom))]
    pub(crate) fn alloc<T>(value: T) -> NonNull<T> {
        let boxed = alloc::boxed::Box::new(value);
        // SAFETY: `Box::into_raw` never returns null.
        unsafe { NonNull::new_unchecked(alloc::boxed::Box::into_raw(boxed)) }
    }

    /// Drops and frees a value made by [`alloc`].
    ///
    /// # Safety
    /// `ptr` came from [`alloc`] and nothing uses it afterwards.
    #[cfg(not(concur_loom))]
    pub(crate) unsafe fn free<T>(ptr: NonNull<T>) {
        // SAFETY: the caller passes a pointer from `Box::into_raw` that is used by nobody else.
        drop(unsafe { alloc::boxed::Box::from_raw(ptr.as_ptr()) });
    }

    /// Moves the value out of an allocation made by [`alloc`] and frees it.
    ///
    /// # Safety
    /// `ptr` came from [`alloc`] and nothing uses it afterwards.
    #[cfg(not(concur_loom))]
    pub(crate) unsafe fn take<T>(ptr: NonNull<T>) -> T {
        // SAFETY: the caller passes a pointer from `Box::into_raw` that is used by nobody else.
        *unsafe { alloc::boxed::Box::from_raw(ptr.as_ptr()) }
    }

    /// Moves the value out of an allocation made by [`alloc`] and frees it.
    ///
    /// # Safety
    /// `ptr` came from [`alloc`] and nothing uses it afterwards.
    #[cfg(concur_loom)]
    pub(crate) unsafe fn take<T>(ptr: NonNull<T>) -> T {
        // SAFETY: the caller owns the initialised value.
        let value = unsafe { ptr.as_ptr().read() };
        // SAFETY: allocated by `loom::alloc::alloc` with this layout; the value was moved out.
        unsafe { loom::alloc::dealloc(ptr.as_ptr().cast(), loom::alloc::Layout::new::<T>()) };
        value
    }

    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    /// Allocates `layout` (non-zero size); aborts through `handle_alloc_error` on failure.
    pub(crate) fn alloc_raw(layout: core::alloc::Layout) -> NonNull<u8> {
        #[cfg(not(concur_loom))]
        // SAFETY: every caller passes a layout of non-zero size.
        let raw = unsafe { alloc::alloc::alloc(layout) };
        #[cfg(concur_loom)]
        // SAFETY: as above.
        let raw = unsafe { loom::alloc::alloc(layout) };
        NonNull::new(raw).unwrap_or_else(|| alloc::alloc::handle_alloc_error(layout))
    }

    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    /// Frees memory from [`alloc_raw`].
    ///
    /// # Safety
    /// `ptr` came from `alloc_raw(layout)` and nothing uses it afterwards.
    pub(crate) unsafe fn free_raw(ptr: NonNull<u8>, layout: core::alloc::Layout) {
        #[cfg(not(concur_loom))]
        // SAFETY: per the contract.
        unsafe {
            alloc::alloc::dealloc(ptr.as_ptr(), layout)
        };
        #[cfg(concur_loom)]
        // SAFETY: per the contract.
        unsafe {
            loom::alloc::dealloc(ptr.as_ptr(), layout)
        };
    }

    /// Moves `value` to the heap, tracked by loom's leak checker.
    #[cfg(concur_loom)]
    pub(crate) fn alloc<T>(value: T) -> NonNull<T> {
        let layout = loom::alloc::Layout::new::<T>();
        // SAFETY: `T` is not zero-sized in any use here (cells carry a state word).
        let raw = unsafe { loom::alloc::alloc(layout) }.cast::<T>();
        let ptr = NonNull::new(raw).expect("allocation failed in a loom model");
        // SAFETY: `ptr` is freshly allocated with `T`'s layout.
        unsafe { ptr.as_ptr().write(value) };
        ptr
    }

    /// Drops and frees a value made by [`alloc`].
    ///
    /// # Safety
    /// `ptr` came from [`alloc`] and nothing uses it afterwards.
    #[cfg(concur_loom)]
    pub(crate) unsafe fn free<T>(ptr: NonNull<T>) {
        // SAFETY: the caller owns the value; it was written by `alloc`.
        unsafe { core::ptr::drop_in_place(ptr.as_ptr()) };
        // SAFETY: allocated by `loom::alloc::alloc` with this layout.
        unsafe { loom::alloc::dealloc(ptr.as_ptr().cast(), loom::alloc::Layout::new::<T>()) };
    }
}

/// Every memory ordering of the protocol, one named site each (DESIGN §2 "Orderings").
///
/// Each constant says why it is needed. A `--cfg concur_bug="weak-<site>"` build weakens exactly
/// that site to `Relaxed`, and `loom-tests/planted-bugs.sh` checks that the models notice.
pub(crate) mod ord {
    use core::sync::atomic::Ordering::{self, AcqRel, Acquire, Relaxed, Release};

    macro_rules! site {
        ($(#[$doc:meta])* $name:ident = $ord:ident, $bug:literal, $weak:ident) => {
            $(#[$doc])*
            #[cfg(not(concur_bug = $bug))]
            pub(crate) const $name: Ordering = $ord;
            $(#[$doc])*
            #[cfg(concur_bug = $bug)]
            pub(crate) const $name: Ordering = $weak;
        };
    }

    site!(
        /// ORDERING: a reader that sees a done phase reads the slot next; Acquire pairs with the
        /// completer's Release so the slot's contents are visible.
        FAST_PATH_LOAD = Acquire, "weak-fast-path-load", Relaxed
    );
    site!(
        /// ORDERING: a waiter that sees its node FIRED goes on to read the slot and to reuse or
        /// free the node; Acquire pairs with the completer's Release store of FIRED.
        FIRED_LOAD = Acquire, "weak-fired-load", Relaxed
    );
    site!(
        /// ORDERING: the LOCK holder walks `next` pointers written by pushers; Acquire pairs with
        /// their Release pushes (and with the previous holder's Release unlock).
        LOCK_CAS = Acquire, "weak-lock-cas", Relaxed
    );
    site!(
        /// ORDERING: a push publishes the node's `next` and target to whoever detaches or walks
        /// the list later.
        PUSH = Release, "weak-push", Relaxed
    );
    site!(
        /// ORDERING: FIRED is the completer's last touch of a node: Release orders its reads of
        /// `next` and of the target before the owner may free the node.
        FIRED_STORE = Release, "weak-fired-store", Relaxed
    );
    site!(
        /// ORDERING: set's detaching CAS publishes the slot (Release) and takes ownership of
        /// the nodes pushed before it (Acquire).
        SET_DETACH = AcqRel, "weak-set-detach", Acquire
    );
    site!(
        /// ORDERING: when LOCK is held, set only changes the phase; Release still publishes the
        /// slot, to the lock holder that will detach and wake.
        SET_PHASE_ONLY = Release, "weak-set-phase-only", Relaxed
    );
    site!(
        /// ORDERING: a plain unlock publishes the holder's rewiring of `next` pointers to the
        /// next holder or completer.
        UNLOCK = Release, "weak-unlock", Relaxed
    );
    site!(
        /// ORDERING: cancel writes no slot, it only takes the nodes: Acquire pairs with pushes.
        CANCEL_DETACH = Acquire, "weak-cancel-detach", Relaxed
    );
    /// ORDERING: the unlock that finds the phase done detaches the list. Acquire here is defence
    /// in depth, not load-bearing: the holder acquired the nodes with LOCK (no push or
    /// completion touches the list meanwhile, rule 4), and it reads nothing the completer
    /// wrote (the outcome it passes on is this word's value); readers of the slot acquire the
    /// word themselves, and set's Release phase-only CAS reaches them through the release
    /// sequence that this read-modify-write continues (rule 5). Weakened to Relaxed it passes
    /// every loom model and Miri twin, so the `weak-delegating-unlock` plant breaks the release
    /// sequence instead (a plain store, in `Header::unlock`).
    pub(crate) const DELEGATING_UNLOCK: Ordering = Acquire;

    /// ORDERING: a failed CAS only re-reads the word to retry; the retry's own success ordering
    /// is what synchronises.
    pub(crate) const RETRY: Ordering = Relaxed;
}
