//! [`Promise`]: the unique producing side of a future.

use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr::NonNull;

use crate::cell::Cell;
use crate::header::Claim;
use crate::{Failure, Future, SetError, word};

/// Creates a pending future and the promise that completes it.
///
/// # Examples
///
/// ```
/// let (promise, future) = concur_core::promise();
/// std::thread::spawn(move || promise.set_result(6 * 7).unwrap());
/// assert_eq!(*future.result().unwrap(), 42);
/// ```
pub fn promise<T>() -> (Promise<T>, Future<T>) {
    let cell = Cell::alloc();
    (Promise::from_cell(cell), Future::from_cell(cell))
}

/// The producing side of a [`Future`]: unique, so "set twice" does not compile.
///
/// Completing it (`set_result`, `set_error`, `set_outcome`) consumes it. Dropping it without
/// completing finishes the future with an [abandoned](Failure::is_abandoned) failure, so no
/// future ever waits on a producer that is gone.
///
/// Invariant: owns the producer's share of the cell until PRODUCER_GONE is set.
pub struct Promise<T> {
    cell: NonNull<Cell<T>>,
    _owns: PhantomData<Cell<T>>,
}

impl<T> Promise<T> {
    /// The producer's handle on a fresh cell (whose producer share it takes over).
    pub(crate) fn from_cell(cell: NonNull<Cell<T>>) -> Self {
        Promise {
            cell,
            _owns: PhantomData,
        }
    }
}

// SAFETY: a promise only moves a `T` into the cell (and back out when cancelled), so it may
// travel to another thread when `T` may.
unsafe impl<T: Send> Send for Promise<T> {}
// SAFETY: `&Promise` only reads the state word and moves PENDING to RUNNING; it never touches
// a `T`.
unsafe impl<T: Send> Sync for Promise<T> {}

impl<T> Promise<T> {
    fn cell(&self) -> &Cell<T> {
        // SAFETY: the producer's share keeps the cell alive while `self` exists.
        unsafe { self.cell.as_ref() }
    }

    /// Claims the future before running its work (Python's `set_running_or_notify_cancel`).
    ///
    /// Returns true only to the call that moves the future from PENDING to RUNNING, after which
    /// `cancel` fails and the work must run. Returns false, leaving the state as it is, if the
    /// future was cancelled (the work must not run; just drop the promise) or if it is already
    /// RUNNING because an earlier call claimed it. Python raises on that second call; a `false`
    /// gives the same answer to "should I run the work now?" (no) without making a misuse a
    /// panic, so a producer can never believe twice that it claimed the same future.
    /// [`is_cancelled`](Self::is_cancelled) tells the two `false` cases apart.
    ///
    /// # Examples
    ///
    /// ```
    /// let (promise, future) = concur_core::promise::<u8>();
    /// assert!(promise.set_running_or_notify_cancel());
    /// assert!(future.is_running());
    /// assert!(!future.cancel());
    /// // A second claim is refused and changes nothing.
    /// assert!(!promise.set_running_or_notify_cancel());
    /// assert!(future.is_running() && !promise.is_cancelled());
    /// ```
    pub fn set_running_or_notify_cancel(&self) -> bool {
        self.cell().header.claim() == Claim::Won
    }

    /// Whether the future was cancelled (the producer may skip its work).
    pub fn is_cancelled(&self) -> bool {
        self.cell().header.load(crate::sync::ord::RETRY).phase() == word::CANCELLED
    }

    /// Completes the future with `value` and wakes every waiter.
    ///
    /// # Errors
    /// If the future was cancelled first, the value is handed back in [`SetError`].
    #[inline]
    pub fn set_result(self, value: T) -> Result<(), SetError<T>> {
        self.set_outcome(Ok(value))
            .map_err(|refused| match refused.into_inner() {
                Ok(value) => SetError::new(value),
                Err(_) => unreachable!("set_outcome hands back what it was given"),
            })
    }

    /// Completes the future with a failure (Python's `set_exception`).
    ///
    /// # Errors
    /// If the future was cancelled first, the failure is handed back in [`SetError`].
    ///
    /// # Examples
    ///
    /// ```
    /// use concur_core::Error;
    ///
    /// let (promise, future) = concur_core::promise::<u8>();
    /// promise.set_error(std::fmt::Error).unwrap();
    /// assert!(matches!(future.try_result(), Some(Err(Error::Failed(_)))));
    /// ```
    pub fn set_error<E>(self, error: E) -> Result<(), SetError<Failure>>
    where
        E: core::error::Error + Send + Sync + 'static,
    {
        self.set_outcome(Err(Failure::from_error(error)))
            .map_err(|refused| match refused.into_inner() {
                Err(failure) => SetError::new(failure),
                Ok(_) => unreachable!("set_outcome hands back what it was given"),
            })
    }

    /// Completes the future with a value or a failure.
    ///
    /// # Errors
    /// If the future was cancelled first, the outcome is handed back in [`SetError`].
    #[inline]
    pub fn set_outcome(
        self,
        outcome: Result<T, Failure>,
    ) -> Result<(), SetError<Result<T, Failure>>> {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is consumed here, so this is the producer's one completion.
        unsafe { Cell::complete(this.cell, outcome, true) }.map_err(SetError::new)
    }

    /// Runs `work` if the future was not cancelled, and completes the future with its value or,
    /// with `std`, with its panic (caught, so it never unwinds into the caller).
    ///
    /// This is what an executor's worker does with a submitted task. Called after an explicit
    /// [`set_running_or_notify_cancel`](Self::set_running_or_notify_cancel) that said true, it
    /// still runs the work.
    ///
    /// # Examples
    ///
    /// ```
    /// let (promise, future) = concur_core::promise::<u32>();
    /// promise.run(|| panic!("boom"));
    /// let failure = future.try_error().unwrap().unwrap().unwrap();
    /// assert_eq!(failure.panic_message(), Some("boom"));
    /// ```
    pub fn run(self, work: impl FnOnce() -> T) {
        // `Taken` on a live promise can only mean this producer claimed it already (finishing
        // consumes the promise), so the work is still this producer's to run.
        if self.cell().header.claim() == Claim::Cancelled {
            return;
        }
        #[cfg(feature = "std")]
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
            .map_err(Failure::from_panic);
        #[cfg(not(feature = "std"))]
        let outcome = Ok(work());
        // Running futures cannot be cancelled, so this cannot be refused.
        let _ = self.set_outcome(outcome);
    }
}

impl<T> Drop for Promise<T> {
    /// Finishes the future as abandoned, unless it was cancelled.
    fn drop(&mut self) {
        // SAFETY: drop runs once and the promise is gone afterwards.
        let _ = unsafe { Cell::complete(self.cell, Err(Failure::abandoned()), true) };
    }
}

impl<T> fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Promise")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}
