//! The blocking hook: how an executor hears that one of its threads is about to block on a
//! future, so it can run that future's task inline (no self-deadlock on a one-worker pool) or
//! report a wait-for cycle as [`Error::Deadlock`](crate::Error::Deadlock) instead of hanging.
//!
//! Single-future waits (`result*`, `error*`, `wait*`, `into_result`) call
//! [`BlockingHook::before_block`]; [`wait`](crate::wait) over many futures and a blocking
//! [`as_completed`](crate::as_completed) step call [`BlockingHook::before_block_on_many`],
//! saying whether the wait needs any one or all of the futures it names.

use core::ptr::NonNull;
use std::cell::Cell;

use crate::header::Header;
use crate::sync::ord;

/// What a [`BlockingHook`] decides about a wait.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// Block until the future is done (or the timeout).
    Block,
    /// Do not block: waiting would never end. The wait returns [`Error::Deadlock`](crate::Error::Deadlock).
    Deadlock,
}

/// A future some thread is about to block on, as a [`BlockingHook`] sees it.
pub struct Blocking<'a> {
    header: NonNull<Header>,
    _handle: core::marker::PhantomData<&'a Header>,
}

impl Blocking<'_> {
    /// The future's identity (equal to [`Task::id`](crate::Task::id) of its task, if any).
    pub fn id(&self) -> usize {
        self.header.addr().get()
    }

    /// The owner tag of the future's task, if it was made by [`Task::with_owner`](crate::Task::with_owner).
    pub fn owner(&self) -> Option<usize> {
        // SAFETY: the waiting thread's handle keeps the cell alive for 'a; the pointer is the
        // handle's, with the whole cell's provenance.
        unsafe { crate::task::owner(self.header) }
    }

    /// Whether the future is done.
    pub fn is_done(&self) -> bool {
        self.header().load(ord::FAST_PATH_LOAD).is_final()
    }

    /// Whether the future is running (claimed by some thread).
    pub fn is_running(&self) -> bool {
        self.header().load(ord::FAST_PATH_LOAD).phase() == crate::word::RUNNING
    }

    /// If the future belongs to a [`Task`](crate::Task) that is still pending, claims it and
    /// runs it in this thread, completing the future; returns whether it did. The queued task
    /// later finds it taken and only releases itself.
    pub fn run_inline(&self) -> bool {
        // SAFETY: as in `owner`.
        unsafe { crate::task::run_inline(self.header) }
    }

    fn header(&self) -> &Header {
        // SAFETY: as in `owner`.
        unsafe { self.header.as_ref() }
    }
}

/// What a wait over several futures needs before it can return.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Needs {
    /// Any one of them done (`FirstCompleted`, a step of `as_completed`, and `FirstException`,
    /// which may end at any one failure).
    Any,
    /// Every one of them done (`AllCompleted`).
    All,
}

/// The unfinished futures a wait over several futures is about to block on, as a
/// [`BlockingHook`] sees them.
///
/// # Examples
///
/// A hook that refuses every wait needing all of several futures:
///
/// ```
/// use concur_core::{
///     promise, wait, with_blocking_hook, Blocking, BlockingHook, BlockingMany, Needs,
///     ReturnWhen, Verdict,
/// };
///
/// struct NoAllWaits;
/// impl BlockingHook for NoAllWaits {
///     fn before_block(&self, _: &Blocking<'_>) -> Verdict {
///         Verdict::Block
///     }
///     fn after_block(&self, _: &Blocking<'_>) {}
///     fn before_block_on_many(&self, futures: &BlockingMany<'_>) -> Verdict {
///         match futures.needs() {
///             Needs::All => Verdict::Deadlock,
///             Needs::Any => Verdict::Block,
///         }
///     }
/// }
///
/// let (_p1, a) = promise::<u8>();
/// let (_p2, b) = promise::<u8>();
/// let waited = with_blocking_hook(&NoAllWaits, || wait([&a, &b], None, ReturnWhen::AllCompleted));
/// assert!(waited.is_deadlock());
/// assert_eq!(waited.not_done().len(), 2);
/// ```
pub struct BlockingMany<'a> {
    headers: &'a [NonNull<Header>],
    needs: Needs,
}

impl<'a> BlockingMany<'a> {
    /// Whether the wait needs any one or all of [`futures`](Self::futures).
    pub fn needs(&self) -> Needs {
        self.needs
    }

    /// The futures it waits on (those not done when it was about to block; at least one).
    pub fn futures(&self) -> impl ExactSizeIterator<Item = Blocking<'a>> + 'a {
        self.headers.iter().map(|&header| Blocking {
            header,
            _handle: core::marker::PhantomData,
        })
    }
}

/// An executor's view of its threads blocking on futures; installed per thread with
/// [`with_blocking_hook`].
pub trait BlockingHook {
    /// Called after a short spin, before the calling thread parks on `future`. May run the
    /// future's task inline (then the wait sees it done). Returning [`Verdict::Block`] promises a
    /// matching [`after_block`](BlockingHook::after_block).
    fn before_block(&self, future: &Blocking<'_>) -> Verdict;

    /// Called when a wait that `before_block` let block ends, however it ends.
    fn after_block(&self, future: &Blocking<'_>);

    /// Called before the calling thread parks in [`wait`](crate::wait) over several futures
    /// or in a step of [`as_completed`](crate::as_completed). [`Verdict::Deadlock`] makes
    /// `wait` return at once with [`Waited::is_deadlock`](crate::Waited::is_deadlock) set and
    /// `as_completed` yield [`AsCompletedError::Deadlock`](crate::AsCompletedError::Deadlock);
    /// [`Verdict::Block`] promises a matching
    /// [`after_block_on_many`](BlockingHook::after_block_on_many).
    ///
    /// The default blocks (a hook that only cares about single futures need not implement it).
    fn before_block_on_many(&self, futures: &BlockingMany<'_>) -> Verdict {
        let _ = futures;
        Verdict::Block
    }

    /// Called when a wait that `before_block_on_many` let block ends, however it ends.
    fn after_block_on_many(&self, futures: &BlockingMany<'_>) {
        let _ = futures;
    }
}

std::thread_local! {
    /// The hook of the innermost `with_blocking_hook` on this thread.
    static HOOK: Cell<Option<NonNull<dyn BlockingHook + 'static>>> = const { Cell::new(None) };
}

/// Runs `f` with `hook` consulted by every blocking wait on this thread (nested calls stack;
/// the previous hook is restored afterwards, even on panic).
///
/// # Examples
///
/// ```
/// use concur_core::{with_blocking_hook, Blocking, BlockingHook, Verdict, Task};
///
/// /// Runs pending tasks inline instead of blocking on them.
/// struct Helping;
/// impl BlockingHook for Helping {
///     fn before_block(&self, future: &Blocking<'_>) -> Verdict {
///         future.run_inline();
///         Verdict::Block
///     }
///     fn after_block(&self, _: &Blocking<'_>) {}
/// }
///
/// let (task, future) = Task::new(|| 5);
/// let value = with_blocking_hook(&Helping, || *future.result().unwrap());
/// assert_eq!(value, 5); // ran inline: nobody else would have run it
/// task.run(); // finds it taken; only releases itself
/// ```
pub fn with_blocking_hook<R>(hook: &dyn BlockingHook, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<NonNull<dyn BlockingHook + 'static>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            HOOK.with(|slot| slot.set(self.0));
        }
    }
    // SAFETY: only the lifetime is erased; the pointer is removed from the thread-local by
    // `Restore` before `with_blocking_hook` returns (or unwinds), while `hook` is still borrowed.
    let erased: NonNull<dyn BlockingHook + 'static> =
        unsafe { core::mem::transmute(NonNull::from(hook)) };
    let _restore = Restore(HOOK.with(|slot| slot.replace(Some(erased))));
    f()
}

/// Consults this thread's hook before blocking on `header`'s future. `Err(())` means deadlock.
/// On `Ok(Some(guard))`, the guard calls `after_block` when dropped.
pub(crate) fn before_block(header: NonNull<Header>) -> Result<Option<AfterBlock>, ()> {
    let Some(hook) = HOOK.with(Cell::get) else {
        return Ok(None);
    };
    let blocking = Blocking {
        header,
        _handle: core::marker::PhantomData,
    };
    // SAFETY: the hook is installed by `with_blocking_hook`, which is still running below us on
    // this thread's stack, so it is alive.
    let hook_ref = unsafe { hook.as_ref() };
    match hook_ref.before_block(&blocking) {
        Verdict::Block => Ok(Some(AfterBlock { hook, header })),
        Verdict::Deadlock => Err(()),
    }
}

/// Calls the hook's `after_block` on drop.
pub(crate) struct AfterBlock {
    hook: NonNull<dyn BlockingHook + 'static>,
    header: NonNull<Header>,
}

impl Drop for AfterBlock {
    fn drop(&mut self) {
        let blocking = Blocking {
            header: self.header,
            _handle: core::marker::PhantomData,
        };
        // SAFETY: as in `before_block`: the hook outlives this wait.
        unsafe { self.hook.as_ref() }.after_block(&blocking);
    }
}

/// Consults this thread's hook before a wait over several futures blocks. `headers` gives the
/// raw headers (whole-cell provenance) of the futures the wait still needs, kept alive by the
/// caller's handles for the whole wait; it is only called if a hook is installed. `Err(())`
/// means deadlock; on `Ok(Some(guard))` the guard calls `after_block_on_many` when dropped.
pub(crate) fn before_block_on_many(
    needs: Needs,
    headers: impl FnOnce() -> alloc::vec::Vec<NonNull<Header>>,
) -> Result<Option<AfterBlockOnMany>, ()> {
    let Some(hook) = HOOK.with(Cell::get) else {
        return Ok(None);
    };
    let headers = headers();
    if headers.is_empty() {
        return Ok(None);
    }
    let many = BlockingMany {
        headers: &headers,
        needs,
    };
    // SAFETY: as in `before_block`: the hook is alive below us on this thread's stack.
    match unsafe { hook.as_ref() }.before_block_on_many(&many) {
        Verdict::Block => Ok(Some(AfterBlockOnMany {
            hook,
            headers,
            needs,
        })),
        Verdict::Deadlock => Err(()),
    }
}

/// Calls the hook's `after_block_on_many` on drop.
pub(crate) struct AfterBlockOnMany {
    hook: NonNull<dyn BlockingHook + 'static>,
    headers: alloc::vec::Vec<NonNull<Header>>,
    needs: Needs,
}

impl Drop for AfterBlockOnMany {
    fn drop(&mut self) {
        let many = BlockingMany {
            headers: &self.headers,
            needs: self.needs,
        };
        // SAFETY: as in `before_block`: the hook outlives this wait.
        unsafe { self.hook.as_ref() }.after_block_on_many(&many);
    }
}
