//! What `wait` and `as_completed` accept: any future, whatever its output type, owned or
//! borrowed ([`Waitable`]), and a type-erased owned handle to mix types in one collection
//! ([`AnyFuture`]).

use core::any::TypeId;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::Future;
use crate::cell::Cell;
use crate::header::Header;
use crate::sync::ord;

pub(crate) mod sealed {
    /// The crate-private face of a [`Waitable`](super::Waitable).
    pub trait Sealed {
        /// The future's protocol header.
        fn header(&self) -> &crate::header::Header {
            // SAFETY: the handle keeps the cell alive for as long as `self` is borrowed.
            unsafe { self.raw_header().as_ref() }
        }

        /// The header pointer as the handle holds it, with the whole cell's provenance.
        fn raw_header(&self) -> core::ptr::NonNull<crate::header::Header>;
    }
}

/// A future that [`wait`](crate::wait) and [`as_completed`](crate::as_completed) can watch:
/// `Future<T>`, `&Future<T>`, [`AnyFuture`] and `&AnyFuture`. Sealed.
pub trait Waitable: sealed::Sealed {
    /// Whether the future finished or was cancelled.
    fn is_done(&self) -> bool {
        self.header().load(ord::FAST_PATH_LOAD).is_final()
    }

    /// Whether the future finished with a failure (not a cancellation).
    fn is_failed(&self) -> bool {
        let state = self.header().load(ord::FAST_PATH_LOAD);
        state.phase() == crate::word::FINISHED && state.is_failed()
    }
}

impl<T> sealed::Sealed for Future<T> {
    fn raw_header(&self) -> NonNull<Header> {
        Future::raw_header(self)
    }
}
impl<T> Waitable for Future<T> {}

impl<W: Waitable + ?Sized> sealed::Sealed for &W {
    fn raw_header(&self) -> NonNull<Header> {
        (**self).raw_header()
    }
}
impl<W: Waitable + ?Sized> Waitable for &W {}

/// The identity of a waitable: the address of its cell.
pub(crate) fn key<W: Waitable + ?Sized>(w: &W) -> usize {
    (w.header() as *const Header).addr()
}

/// A [`Future`] of any output type, for collections that mix types (one handle, two words).
///
/// Made with `AnyFuture::from(future)`; [`downcast`](AnyFuture::downcast) gives the typed
/// handle back. Equality and hashing are by identity, equal to the typed handle's.
///
/// # Examples
///
/// ```
/// use concur_core::{AnyFuture, promise};
///
/// let (p1, number) = promise::<u32>();
/// let (p2, text) = promise::<String>();
/// let mixed: Vec<AnyFuture> = vec![number.into(), text.into()];
/// p1.set_result(1).unwrap();
/// p2.set_result("one".into()).unwrap();
/// let text = mixed[1].clone().downcast::<String>().unwrap();
/// assert_eq!(text.result().unwrap(), "one");
/// ```
pub struct AnyFuture {
    header: NonNull<Header>,
    ops: &'static ErasedOps,
}

/// The typed operations an [`AnyFuture`] needs.
struct ErasedOps {
    /// Drops one consumer handle of a `Cell<T>`.
    release: unsafe fn(NonNull<Header>),
    type_id: fn() -> TypeId,
}

struct OpsFor<T>(PhantomData<T>);

impl<T: 'static> OpsFor<T> {
    const OPS: ErasedOps = ErasedOps {
        release: release::<T>,
        type_id: TypeId::of::<T>,
    };
}

/// # Safety
/// `header` heads a `Cell<T>` and the caller gives up one consumer handle to it.
unsafe fn release<T>(header: NonNull<Header>) {
    // SAFETY: the header is the first field of a `repr(C)` `Cell<T>` (caller), and the handle
    // we rebuild is the one the caller gives up.
    drop(unsafe { Future::<T>::from_raw_cell(header.cast::<Cell<T>>()) });
}

// SAFETY: an `AnyFuture` is only made from a `Future<T>` that is `Send + Sync` (`T: Send +
// Sync`), and it only exposes the type-independent part or the typed handle back.
unsafe impl Send for AnyFuture {}
// SAFETY: as above.
unsafe impl Sync for AnyFuture {}

impl<T: Send + Sync + 'static> From<Future<T>> for AnyFuture {
    fn from(future: Future<T>) -> Self {
        let header = future.into_raw_cell().cast::<Header>();
        AnyFuture {
            header,
            ops: &OpsFor::<T>::OPS,
        }
    }
}

impl AnyFuture {
    /// The typed handle, if the output type is `T`.
    ///
    /// # Errors
    /// Returns `self` unchanged if the output type is not `T`.
    pub fn downcast<T: 'static>(self) -> Result<Future<T>, AnyFuture> {
        if (self.ops.type_id)() != TypeId::of::<T>() {
            return Err(self);
        }
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: the type id matches, so the header heads a `Cell<T>`; our handle moves over.
        Ok(unsafe { Future::from_raw_cell(this.header.cast::<Cell<T>>()) })
    }

    /// Cancels the future; see [`Future::cancel`].
    pub fn cancel(&self) -> bool {
        sealed::Sealed::header(self).cancel()
    }

    /// Whether the future was cancelled.
    pub fn is_cancelled(&self) -> bool {
        let state = sealed::Sealed::header(self).load(ord::FAST_PATH_LOAD);
        state.phase() == crate::word::CANCELLED
    }
}

impl sealed::Sealed for AnyFuture {
    fn raw_header(&self) -> NonNull<Header> {
        self.header
    }
}
impl Waitable for AnyFuture {}

impl Clone for AnyFuture {
    fn clone(&self) -> Self {
        sealed::Sealed::header(self).add_consumer();
        AnyFuture {
            header: self.header,
            ops: self.ops,
        }
    }
}

impl Drop for AnyFuture {
    fn drop(&mut self) {
        // SAFETY: the header heads a `Cell<T>` for the `T` of `ops`, and this handle is ours.
        unsafe { (self.ops.release)(self.header) };
    }
}

impl PartialEq for AnyFuture {
    fn eq(&self, other: &Self) -> bool {
        self.header == other.header
    }
}

impl Eq for AnyFuture {}

impl Hash for AnyFuture {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.header.cast::<()>().hash(state);
    }
}

impl fmt::Debug for AnyFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyFuture")
            .field("done", &self.is_done())
            .finish()
    }
}
