//! Awaiting a [`Future`] from any async runtime: `future.await` moves the value out (as
//! `into_result`), `(&future).await` borrows it (as `result`).
//!
//! The first poll that finds the future pending allocates one reference-counted node holding an
//! [`AtomicWaker`] and links it; the list holds one reference, the awaiting future the other, so
//! dropping the awaiting future never waits for a completer: it unlinks its node under LOCK, or,
//! if the list was already detached, leaves the node to the completer, which drops the list's
//! reference after waking. A re-poll with a new waker only re-registers the waker.

use core::future::IntoFuture;
use core::pin::Pin;
use core::ptr::NonNull;
use core::task::{Context, Poll};

use crate::atomic_waker::AtomicWaker;
use crate::header::{Header, Push, Unlink};
use crate::node::{Kind, Node};
use crate::sync::{Arc, ord};
use crate::word::Snapshot;
use crate::{Error, Future};

/// An async task's node. The list's reference is an `Arc` leaked into the node pointer.
#[repr(C)]
struct AsyncWaiter {
    node: Node,
    waker: AtomicWaker,
}

// SAFETY: the node's `next` is only touched by whoever owns the list (LOCK holder or detacher),
// and the waker slot is synchronised by `AtomicWaker`'s own protocol.
unsafe impl Send for AsyncWaiter {}
// SAFETY: as above.
unsafe impl Sync for AsyncWaiter {}

/// The completer's side: wake the task, then drop the list's reference.
///
/// # Safety
/// `node` heads an `AsyncWaiter` whose list reference the caller owns.
unsafe fn fire_async(node: NonNull<Node>, _outcome: Snapshot) {
    // SAFETY: the list's reference was made by `Arc::into_raw` in `AsyncWait::link`.
    let waiter = unsafe { Arc::from_raw(node.cast::<AsyncWaiter>().as_ptr()) };
    waiter.waker.wake();
}

/// The node at the head of a waiter record, keeping the record's provenance.
fn node_of(waiter: *const AsyncWaiter) -> NonNull<Node> {
    // SAFETY: `Arc` pointers are never null.
    unsafe { NonNull::new_unchecked(waiter.cast_mut()) }.cast()
}

/// The registration state shared by both awaitable types.
#[derive(Default)]
struct AsyncWait {
    waiter: Option<Arc<AsyncWaiter>>,
}

impl AsyncWait {
    /// Ready once the phase is final; otherwise registers `cx`'s waker.
    fn poll_final(&mut self, cell: NonNull<Header>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: the polled future's handle keeps the cell alive.
        let header = unsafe { cell.as_ref() };
        if header.load(ord::FAST_PATH_LOAD).is_final() {
            return Poll::Ready(());
        }
        match &self.waiter {
            Some(waiter) => waiter.waker.register(cx.waker()),
            None => return self.link(cell, cx),
        }
        // Register first, then re-check: a completion after this load will find the new waker.
        if header.load(ord::FAST_PATH_LOAD).is_final() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    fn link(&mut self, cell: NonNull<Header>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: the polled future's handle keeps the cell alive.
        let header = unsafe { cell.as_ref() };
        let waiter = Arc::new(AsyncWaiter {
            node: Node::new(Kind::Waiter, fire_async),
            waker: AtomicWaker::new(),
        });
        waiter.waker.register(cx.waker());
        // The list's reference: its pointer has the provenance of the whole `Arc` allocation,
        // which `fire_async` needs to rebuild the `Arc`.
        let leaked = Arc::into_raw(waiter.clone());
        let list_ref = node_of(leaked);
        // SAFETY: the node lives in an `Arc` whose list reference we just leaked; it is never in
        // another list, and `fire_async` or `unregister` reclaims that reference.
        match unsafe { header.push(list_ref) } {
            Push::Linked => {
                self.waiter = Some(waiter);
                // SAFETY: alive (above); `cell` has the whole cell's provenance.
                unsafe { crate::header::linked_passive_waiter(cell) };
                Poll::Pending
            }
            Push::Final => {
                // SAFETY: not linked, so the leaked reference is still ours.
                drop(unsafe { Arc::from_raw(leaked) });
                Poll::Ready(())
            }
        }
    }

    /// Leaves the list (on drop, or once the outcome was taken).
    fn unregister(&mut self, header: &Header) {
        let Some(waiter) = self.waiter.take() else {
            return;
        };
        // Drop a stored waker now rather than whenever the future completes (tokio #7884).
        drop(waiter.waker.take());
        // SAFETY: our node was linked by `link` and is not unlinked yet.
        if let Unlink::Unlinked { .. } = unsafe { header.unlink(node_of(Arc::as_ptr(&waiter))) } {
            // SAFETY: unlinked, so the list's leaked reference is back with us.
            drop(unsafe { Arc::from_raw(Arc::as_ptr(&waiter)) });
        }
        // Otherwise the list was detached and its owner drops the list's reference after waking.
    }
}

/// Awaits a future and moves its value out, as [`Future::into_result`]; made by `future.await`.
///
/// Dropping it unregisters its waker at once.
///
/// # Examples
///
/// ```
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output { // any executor will do
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v } }
/// # }
/// let (promise, future) = concur_core::promise::<u32>();
/// std::thread::spawn(move || promise.set_result(3).unwrap());
/// assert_eq!(block_on(async { future.await }).unwrap(), 3);
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct IntoResultFuture<T> {
    future: Option<Future<T>>,
    wait: AsyncWait,
}

impl<T> IntoFuture for Future<T> {
    type Output = Result<T, Error>;
    type IntoFuture = IntoResultFuture<T>;

    fn into_future(self) -> Self::IntoFuture {
        IntoResultFuture {
            future: Some(self),
            wait: AsyncWait::default(),
        }
    }
}

impl<T> core::future::Future for IntoResultFuture<T> {
    type Output = Result<T, Error>;

    /// # Panics
    /// If polled again after it returned `Ready`.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let future = this
            .future
            .as_ref()
            .expect("IntoResultFuture polled after completion");
        if this.wait.poll_final(future.raw_header(), cx).is_pending() {
            return Poll::Pending;
        }
        this.wait.unregister(future.header());
        let future = this.future.take().expect("checked above");
        Poll::Ready(future.take_outcome())
    }
}

impl<T> Drop for IntoResultFuture<T> {
    fn drop(&mut self) {
        if let Some(future) = &self.future {
            self.wait.unregister(future.header());
        }
    }
}

/// Awaits a future and borrows its value, as [`Future::result`]; made by `(&future).await`.
///
/// Dropping it unregisters its waker at once.
#[must_use = "futures do nothing unless awaited"]
pub struct ResultFuture<'a, T> {
    future: &'a Future<T>,
    wait: AsyncWait,
}

impl<'a, T> IntoFuture for &'a Future<T> {
    type Output = Result<&'a T, Error>;
    type IntoFuture = ResultFuture<'a, T>;

    fn into_future(self) -> Self::IntoFuture {
        ResultFuture {
            future: self,
            wait: AsyncWait::default(),
        }
    }
}

impl<'a, T> core::future::Future for ResultFuture<'a, T> {
    type Output = Result<&'a T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let future = this.future;
        if this.wait.poll_final(future.raw_header(), cx).is_pending() {
            return Poll::Pending;
        }
        this.wait.unregister(future.header());
        Poll::Ready(future.try_result().unwrap_or(Err(Error::TimedOut)))
    }
}

impl<T> Drop for ResultFuture<'_, T> {
    fn drop(&mut self) {
        self.wait.unregister(self.future.header());
    }
}
