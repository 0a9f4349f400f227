//! Driven futures: a future whose waiting thread may complete it itself.
//!
//! Some producers finish a future by reading something that a blocked thread could read just
//! as well: a worker process's result pipe, a socket, a device's completion queue. Handing the
//! result from a reader thread to the waiting thread costs one more wake-up, and a wake-up
//! across CPUs is the slowest step of such a round trip (tens of microseconds on a virtual
//! machine, where a pipe's synchronous hand-off between two processes costs a few). A
//! [`Drive`] attached with [`driven_promise`] lets the waiting thread do the reading instead.

use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr::NonNull;
use std::time::Instant;

use crate::cell::Cell;
use crate::header::{CellOps, Header};
use crate::sync::heap;
use crate::{Future, Promise};

/// What a thread about to block on a [driven](driven_promise) future may do to complete it
/// itself.
///
/// Every blocking single-future wait ([`result`](Future::result), [`error`](Future::error),
/// [`wait`](Future::wait), [`into_result`](Future::into_result) and their timed forms) calls
/// [`drive`](Drive::drive) once the future is found not done, before spinning or parking;
/// afterwards the wait proceeds as usual (it returns at once if the future is now done).
/// Waits over many futures ([`wait`](crate::wait), [`as_completed`](crate::as_completed)),
/// `.await` and callbacks never drive: the producer must complete the future without help.
///
/// Those waiters are announced with [`watch`](Drive::watch) instead, so a producer that
/// leaves the reading to waiting threads knows when it must read itself.
///
/// Several threads may drive the same future at once; the driver arbitrates between them (and
/// with its producer), typically by letting one of them read and the others return at once.
pub trait Drive: Send + Sync {
    /// Works toward completing the future, until it is done, `deadline` passes (`None`: no
    /// deadline) or there is nothing this thread can do; returning early is always correct.
    ///
    /// # Panics
    /// A panic propagates out of the wait that called it.
    fn drive(&self, deadline: Option<Instant>);

    /// Called each time a waiter that will not drive starts waiting on the pending future: a
    /// thread parking after its `drive` returned, a waker (`.await`), a
    /// [`wait`](crate::wait) or [`as_completed`](crate::as_completed) call, a done-callback.
    /// The producer must then complete the future without help. Does nothing by default.
    ///
    /// # Panics
    /// A panic propagates out of the call that linked the waiter (which stays linked).
    fn watch(&self) {}
}

/// Creates a pending future, the promise that completes it, and attaches `driver`, which every
/// blocking wait on the future calls before it parks (see [`Drive`]).
///
/// The driver lives in the future's allocation (no extra allocation) and is dropped when the
/// last handle and the promise are gone.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Instant;
/// use concur_core::{driven_promise, Drive, Promise};
///
/// /// Completes the future on the waiting thread, with the value a reader would have read.
/// struct ReadItMyself(Arc<Mutex<Option<Promise<u32>>>>);
/// impl Drive for ReadItMyself {
///     fn drive(&self, _deadline: Option<Instant>) {
///         if let Some(promise) = self.0.lock().unwrap().take() {
///             let _ = promise.set_result(7);
///         }
///     }
/// }
///
/// let slot = Arc::new(Mutex::new(None));
/// let (promise, future) = driven_promise(ReadItMyself(slot.clone()));
/// *slot.lock().unwrap() = Some(promise);
/// assert_eq!(*future.result().unwrap(), 7); // completed by this thread's own drive
/// ```
pub fn driven_promise<T, D: Drive + 'static>(driver: D) -> (Promise<T>, Future<T>) {
    let cell = heap::alloc(DrivenCell {
        cell: Cell::<T>::with_ops(&OpsFor::<T, D>::OPS),
        driver: ManuallyDrop::new(driver),
    })
    .cast::<Cell<T>>();
    (Promise::from_cell(cell), Future::from_cell(cell))
}

/// A cell with its driver, header first (`repr(C)`), so it is reached as a `Cell<T>`.
///
/// Invariant: `driver` is initialised until `free_driven` takes it out; it is only ever
/// borrowed shared before that.
#[repr(C)]
struct DrivenCell<T, D> {
    cell: Cell<T>,
    driver: ManuallyDrop<D>,
}

/// The ops of a driven cell, reached through its header.
#[derive(Clone, Copy)]
pub(crate) struct DriveOps {
    /// Calls [`Drive::drive`].
    ///
    /// # Safety
    /// As `driver_of`.
    pub(crate) drive: unsafe fn(NonNull<Header>, Option<Instant>),
    /// Calls [`Drive::watch`].
    ///
    /// # Safety
    /// As `driver_of`.
    pub(crate) watch: unsafe fn(NonNull<Header>),
}

struct OpsFor<T, D>(PhantomData<(T, D)>);

impl<T, D: Drive> OpsFor<T, D> {
    const OPS: CellOps = CellOps {
        free: free_driven::<T, D>,
        task: None,
        drive: Some(DriveOps {
            drive: drive::<T, D>,
            watch: watch::<T, D>,
        }),
        plain: false,
    };
}

/// The driver of the cell `header` heads.
///
/// # Safety
/// `header` heads a live `DrivenCell<T, D>`, with the whole cell's provenance, and the caller
/// holds a consumer handle for `'a` (so the driver is not dropped under it).
unsafe fn driver_of<'a, T, D>(header: NonNull<Header>) -> &'a D {
    let cell = header.cast::<DrivenCell<T, D>>();
    // SAFETY: the cell is alive for 'a (caller's handle), and `driver` is initialised and only
    // shared-borrowed until the free (invariant). The reference covers the driver field alone,
    // so another thread completing the slot meanwhile does not alias it.
    unsafe { &(*cell.as_ptr()).driver }
}

/// # Safety
/// As `driver_of`.
unsafe fn drive<T, D: Drive>(header: NonNull<Header>, deadline: Option<Instant>) {
    // SAFETY: per the contract.
    unsafe { driver_of::<T, D>(header) }.drive(deadline);
}

/// # Safety
/// As `driver_of`.
unsafe fn watch<T, D: Drive>(header: NonNull<Header>) {
    // SAFETY: per the contract.
    unsafe { driver_of::<T, D>(header) }.watch();
}

/// # Safety
/// As [`Cell::free`], for a driven cell.
unsafe fn free_driven<T, D>(header: NonNull<Header>, outcome_taken: bool) {
    let cell = header.cast::<DrivenCell<T, D>>();
    // SAFETY: exclusive access per the contract.
    unsafe { cell.as_ref().cell.drop_outcome(outcome_taken) };
    // SAFETY: allocated by `heap::alloc` in `driven_promise`, unused from here on.
    let DrivenCell { cell: _, driver } = unsafe { heap::take(cell) };
    // A driver's drop is the user's code: a panic in it must not unwind through a completion.
    crate::callback::catch_and_report(|| drop(ManuallyDrop::into_inner(driver)));
}
