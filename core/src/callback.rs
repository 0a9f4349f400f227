//! Done-callbacks (`add_done_callback`) and the hook that reports a panicking one.

use core::any::Any;
use core::fmt;
use core::ptr::NonNull;

use crate::Future;
use crate::header::Push;
use crate::node::{Kind, Node};
use crate::sync::heap;
use crate::word::Snapshot;

/// A callback waiting in a future's list. Owned by the list once pushed.
///
/// Invariant: `future` is a consumer handle, so the cell outlives the record.
#[repr(C)]
struct CallbackRecord<T, F> {
    node: Node,
    future: Future<T>,
    callback: F,
}

/// Registers `callback`, or runs it now if the future is already done.
pub(crate) fn add<T, F>(future: &Future<T>, callback: F)
where
    F: FnOnce(&Future<T>) + Send + 'static,
{
    if future.is_done() {
        invoke(callback, future);
        return;
    }
    let record = heap::alloc(CallbackRecord {
        node: Node::new(Kind::Callback, fire_callback::<T, F>),
        future: future.clone(),
        callback,
    });
    // SAFETY: the record is a fresh heap allocation whose first field is the node; the list
    // owns it from here, and `fire_callback` consumes it.
    let pushed = unsafe { future.header().push(record.cast()) };
    if let Push::Linked = pushed {
        // SAFETY: `future` keeps the cell alive; its pointer has the whole cell's provenance.
        unsafe { crate::header::linked_passive_waiter(future.raw_header()) };
    }
    if let Push::Final = pushed {
        // Completed meanwhile: the record was not linked, so it is still ours to run.
        // SAFETY: unlinked, and fired exactly once here.
        unsafe {
            fire_callback::<T, F>(
                record.cast(),
                future.header().load(crate::sync::ord::FAST_PATH_LOAD),
            )
        };
    }
}

/// Runs and frees a callback record.
///
/// # Safety
/// `node` heads a `CallbackRecord<T, F>` made by [`add`], owned by the caller.
unsafe fn fire_callback<T, F>(node: NonNull<Node>, _outcome: Snapshot)
where
    F: FnOnce(&Future<T>),
{
    // SAFETY: the caller owns the record, allocated by `heap::alloc` in `add`.
    let record = unsafe { heap::take(node.cast::<CallbackRecord<T, F>>()) };
    let CallbackRecord {
        node: _,
        future,
        callback,
    } = record;
    invoke(callback, &future);
}

/// Calls user code that must not unwind into the library: with `std`, a panic is caught and
/// reported through the hook.
fn invoke<T, F: FnOnce(&Future<T>)>(callback: F, future: &Future<T>) {
    catch_and_report(|| callback(future));
}

/// Runs `f`; with `std`, catches its panic and reports it through the callback-panic hook.
/// Without `std` a panic propagates (no_std targets normally abort on panic).
pub(crate) fn catch_and_report(f: impl FnOnce()) {
    #[cfg(feature = "std")]
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        report(&CallbackPanic { payload: &*payload });
    }
    #[cfg(not(feature = "std"))]
    f();
}

/// A done-callback (or an async waker's `wake`) panicked; passed to the callback-panic hook.
pub struct CallbackPanic<'a> {
    payload: &'a (dyn Any + Send),
}

impl CallbackPanic<'_> {
    /// The panic payload.
    pub fn payload(&self) -> &(dyn Any + Send) {
        self.payload
    }

    /// The panic message, if the payload is a string (as from `panic!`).
    pub fn message(&self) -> Option<&str> {
        if let Some(message) = self.payload.downcast_ref::<&'static str>() {
            return Some(message);
        }
        self.payload
            .downcast_ref::<alloc::string::String>()
            .map(|s| s.as_str())
    }
}

impl fmt::Display for CallbackPanic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "concur: a done-callback panicked: {}",
            self.message().unwrap_or("(non-string payload)")
        )
    }
}

impl fmt::Debug for CallbackPanic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackPanic")
            .field("message", &self.message())
            .finish()
    }
}

#[cfg(feature = "std")]
mod hook {
    use super::CallbackPanic;
    // A process-wide setting, not part of the waiter protocol: plain std atomics.
    use core::sync::atomic::{AtomicPtr, Ordering};

    /// Null means the default hook; otherwise a `fn(&CallbackPanic)` cast to a data pointer.
    static HOOK: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

    pub(super) fn set(hook: fn(&CallbackPanic<'_>)) {
        // ORDERING: Release/Acquire is more than a function pointer needs, and costs nothing on
        // the cold path of a panicking callback.
        HOOK.store(hook as *mut (), Ordering::Release);
    }

    pub(super) fn get() -> fn(&CallbackPanic<'_>) {
        // ORDERING: see `set`.
        let raw = HOOK.load(Ordering::Acquire);
        if raw.is_null() {
            return default_hook;
        }
        // SAFETY: every non-null value stored in HOOK is a `fn(&CallbackPanic)` (see `set`).
        unsafe { core::mem::transmute::<*mut (), fn(&CallbackPanic<'_>)>(raw) }
    }

    fn default_hook(panic: &CallbackPanic<'_>) {
        std::eprintln!("{panic}");
    }
}

#[cfg(feature = "std")]
fn report(panic: &CallbackPanic<'_>) {
    let hook = hook::get();
    // A panicking hook must not take the completer down either.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(panic)));
}

/// Replaces the hook that reports a panicking done-callback or waker (default: one line on
/// stderr). The callback's panic is always caught; the hook only decides how it is reported.
///
/// # Examples
///
/// ```
/// concur_core::set_callback_panic_hook(|p| log_somewhere(p.message()));
/// # fn log_somewhere(_: Option<&str>) {}
/// let (promise, future) = concur_core::promise::<u8>();
/// future.add_done_callback(|_| panic!("bad callback"));
/// future.add_done_callback(|f| assert!(f.is_done())); // still runs
/// promise.set_result(1).unwrap();
/// ```
#[cfg(feature = "std")]
pub fn set_callback_panic_hook(hook: fn(&CallbackPanic<'_>)) {
    hook::set(hook);
}
