//! [`Future`]: a cloneable handle to the outcome of a computation (PEP 3148's `Future`).

use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::cell::Cell;
use crate::header::Header;
use crate::sync::ord;
use crate::word::Snapshot;
use crate::{Error, Failure, word};

/// The outcome of a computation that may not have finished yet: Python's
/// `concurrent.futures.Future`, as a handle one pointer wide.
///
/// Handles are cheap to clone (one reference count) and every clone sees the same outcome.
/// Readers get the value by reference ([`result`](Future::result)); the last handle can move it
/// out ([`into_result`](Future::into_result)). Equality and hashing are by identity, so a
/// future can key a map (as in the seeds' `future_to_url` example).
///
/// Not to be confused with [`core::future::Future`]: a `Future` can be awaited, because it
/// implements [`IntoFuture`](core::future::IntoFuture), but it is also usable without any async
/// runtime.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use concur_core::Error;
///
/// let (promise, future) = concur_core::promise::<String>();
/// assert!(!future.is_done());
/// assert!(matches!(future.result_timeout(Duration::ZERO), Err(Error::TimedOut)));
///
/// let reader = future.clone();
/// let t = std::thread::spawn(move || reader.result().map(|s| s.len()).unwrap());
/// promise.set_result("hello".to_string()).unwrap();
/// assert_eq!(t.join().unwrap(), 5);
/// assert_eq!(future.into_result().unwrap(), "hello");
/// ```
pub struct Future<T> {
    cell: NonNull<Cell<T>>,
    _owns: PhantomData<Cell<T>>,
}

// SAFETY: clones on several threads read `&T` at once (needs `Sync`), and the last handle may
// move or drop the `T` on any thread (needs `Send`).
unsafe impl<T: Send + Sync> Send for Future<T> {}
// SAFETY: as above: `&Future` gives `&T` and can be cloned into an owning handle.
unsafe impl<T: Send + Sync> Sync for Future<T> {}

// A handle is a pointer; pinning it pins nothing of the cell.
impl<T> Unpin for Future<T> {}

impl<T> Future<T> {
    /// A handle for a fresh cell, taking over the cell's initial consumer count.
    pub(crate) fn from_cell(cell: NonNull<Cell<T>>) -> Self {
        Self {
            cell,
            _owns: PhantomData,
        }
    }

    /// Gives up this handle as a raw cell pointer (its consumer share goes with it).
    pub(crate) fn into_raw_cell(self) -> NonNull<Cell<T>> {
        core::mem::ManuallyDrop::new(self).cell
    }

    /// Takes back a handle given up by [`Future::into_raw_cell`].
    ///
    /// # Safety
    /// `cell` carries one consumer share of a live `Cell<T>`, which this handle now owns.
    pub(crate) unsafe fn from_raw_cell(cell: NonNull<Cell<T>>) -> Self {
        Self::from_cell(cell)
    }

    pub(crate) fn cell(&self) -> &Cell<T> {
        // SAFETY: this handle's consumer share keeps the cell alive.
        unsafe { self.cell.as_ref() }
    }

    pub(crate) fn header(&self) -> &Header {
        &self.cell().header
    }

    /// The header pointer with the whole cell's provenance (task cells reach past the header).
    pub(crate) fn raw_header(&self) -> NonNull<Header> {
        self.cell.cast()
    }

    /// Attempts to cancel the computation (Python's `cancel()`).
    ///
    /// Returns true if the future was pending and is now cancelled, or was already cancelled;
    /// false if it is running or finished. A successful cancel finishes the future at once: every
    /// waiter, `wait` and `as_completed` sees it done, and done-callbacks run in this thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_promise, future) = concur_core::promise::<u8>();
    /// assert!(future.cancel());
    /// assert!(future.cancel()); // still true
    /// assert!(future.is_cancelled() && future.is_done());
    /// ```
    pub fn cancel(&self) -> bool {
        self.header().cancel()
    }

    fn phase(&self) -> usize {
        self.header().load(ord::FAST_PATH_LOAD).phase()
    }

    /// Whether the future was cancelled (Python's `cancelled()`).
    pub fn is_cancelled(&self) -> bool {
        self.phase() == word::CANCELLED
    }

    /// Whether the computation is running and can no longer be cancelled (`running()`).
    pub fn is_running(&self) -> bool {
        self.phase() == word::RUNNING
    }

    /// Whether the future finished or was cancelled (`done()`).
    pub fn is_done(&self) -> bool {
        self.header().load(ord::FAST_PATH_LOAD).is_final()
    }

    /// Whether any waiter, async task, wait set or callback is registered on this future right
    /// now. A diagnostic: every wait removes its registration on every exit path (return,
    /// timeout, drop), so a long-lived pending future retains nothing from past waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (_promise, future) = concur_core::promise::<u8>();
    /// for _ in 0..3 {
    ///     assert!(future.result_timeout(Duration::from_millis(1)).is_err());
    /// }
    /// assert!(!future.has_waiters());
    /// ```
    pub fn has_waiters(&self) -> bool {
        !self.header().load(ord::FAST_PATH_LOAD).head().is_null()
    }

    /// The outcome if the future is done, without waiting.
    ///
    /// Returns `None` while pending or running; otherwise the value, [`Error::Cancelled`] or
    /// [`Error::Failed`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (promise, future) = concur_core::promise();
    /// assert!(future.try_result().is_none());
    /// promise.set_result(7).unwrap();
    /// assert_eq!(future.try_result().unwrap().unwrap(), &7);
    /// ```
    #[inline]
    pub fn try_result(&self) -> Option<Result<&T, Error>> {
        let state = self.header().load(ord::FAST_PATH_LOAD);
        match state.phase() {
            // SAFETY: FINISHED was loaded with Acquire and our handle keeps the cell alive.
            word::FINISHED => Some(
                unsafe { self.cell().slot() }
                    .as_ref()
                    .map_err(|f| Error::Failed(f.clone())),
            ),
            word::CANCELLED => Some(Err(Error::Cancelled)),
            _ => None,
        }
    }

    /// The failure if the future is done, without waiting (Python's `exception(timeout=0)`).
    ///
    /// Returns `None` while pending or running; `Some(Ok(None))` on success,
    /// `Some(Ok(Some(failure)))` on failure and `Some(Err(Error::Cancelled))` if cancelled.
    pub fn try_error(&self) -> Option<Result<Option<Failure>, Error>> {
        self.try_result().map(split_failure)
    }

    /// Adds `callback`, to be called with this future once it is done (`add_done_callback`).
    ///
    /// Callbacks run exactly once, in the order added, in the thread that completes or cancels
    /// the future, outside any lock. On a future that is already done the callback runs at once
    /// in this thread. With `std`, a panicking callback is caught and reported through the hook
    /// set by [`set_callback_panic_hook`](crate::set_callback_panic_hook), and later callbacks
    /// still run.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// let (promise, future) = concur_core::promise::<u32>();
    /// let (tx, rx) = mpsc::channel();
    /// future.add_done_callback(move |f| tx.send(*f.result().unwrap()).unwrap());
    /// promise.set_result(5).unwrap();
    /// assert_eq!(rx.recv().unwrap(), 5);
    /// ```
    pub fn add_done_callback<F>(&self, callback: F)
    where
        F: FnOnce(&Future<T>) + Send + 'static,
    {
        crate::callback::add(self, callback);
    }
}

impl<T> Future<T> {
    /// Moves the outcome out of a done future if this is the last handle.
    #[inline]
    pub(crate) fn take_outcome(self) -> Result<T, Error> {
        let state = self.header().load(ord::FAST_PATH_LOAD);
        self.take_outcome_from(state)
    }

    /// [`Future::take_outcome`] with `state`, a final word of this cell loaded with Acquire by
    /// this handle (ownership flags are only ever added, so one it shows still holds).
    #[inline(always)]
    pub(crate) fn take_outcome_from(self, state: Snapshot) -> Result<T, Error> {
        if state.phase() != word::FINISHED {
            return Err(Error::Cancelled);
        }
        self.take_finished(state)
    }

    /// [`Future::take_outcome_from`] with `state` known FINISHED: `into_result` tests the
    /// phase once, where testing "final" first and then "finished" cost it four instructions.
    #[inline(always)]
    pub(crate) fn take_finished(self, state: Snapshot) -> Result<T, Error> {
        let this = core::mem::ManuallyDrop::new(self);
        if !this.header().release_consumer_unless_last() {
            return Err(Error::Shared);
        }
        // We are the last consumer, and under FINISHED only readers touch the slot: it is ours.
        // SAFETY: sole consumer of a FINISHED cell, synchronised by the Acquire loads above; the
        // producer (if still there) never reads the slot, it only releases its share.
        let outcome = unsafe { this.cell().take_slot() };
        if state.has(word::PRODUCER_GONE) {
            // SAFETY: the outcome was moved out; nobody else can reach the cell.
            unsafe { Cell::free_emptied(this.cell) };
        } else {
            // SAFETY: as above: the slot is ours and now uninitialised.
            unsafe { Self::leave_to_producer(this.cell) };
        }
        outcome.map_err(Error::Failed)
    }

    /// The end of a take from a cell whose producer had not left yet.
    ///
    /// A task run inline by a waiter (`Blocking::run_inline`) finishes without its producer:
    /// the queued `Task` still holds a share and frees the cell if it releases last. Leave it a
    /// harmless outcome to drop in place of the one moved out.
    ///
    /// # Safety
    /// The caller is the last consumer of a FINISHED cell, moved the outcome out of the slot,
    /// and gives up its handle here.
    #[cold]
    unsafe fn leave_to_producer(cell: NonNull<Cell<T>>) {
        // SAFETY: the handle given up keeps the cell alive until its release below.
        let cell_ref = unsafe { cell.as_ref() };
        // SAFETY: the slot is ours (contract) and uninitialised.
        unsafe { cell_ref.write_slot(Err(Failure::abandoned())) };
        if cell_ref.header.release_last_consumer() {
            // SAFETY: we were the last consumer and the producer is gone (synchronised by the
            // flag's AcqRel CAS).
            unsafe { Cell::free(cell) };
        }
    }
}

/// Splits an outcome into Python's `exception()` shape.
pub(crate) fn split_failure<T>(outcome: Result<&T, Error>) -> Result<Option<Failure>, Error> {
    match outcome {
        Ok(_) => Ok(None),
        Err(Error::Failed(failure)) => Ok(Some(failure)),
        Err(other) => Err(other),
    }
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        self.header().add_consumer();
        Self::from_cell(self.cell)
    }
}

impl<T> Drop for Future<T> {
    #[inline]
    fn drop(&mut self) {
        if self.header().release_consumer() {
            // SAFETY: we were the last consumer and the producer is gone (both synchronised).
            unsafe { Cell::free(self.cell) };
        }
    }
}

impl<T> PartialEq for Future<T> {
    /// Two handles are equal when they refer to the same future.
    fn eq(&self, other: &Self) -> bool {
        self.cell == other.cell
    }
}

impl<T> Eq for Future<T> {}

impl<T> Hash for Future<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.cell.hash(state);
    }
}

impl<T> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.phase() {
            word::PENDING => "pending",
            word::RUNNING => "running",
            word::FINISHED => "finished",
            _ => "cancelled",
        };
        f.debug_struct("Future").field("state", &state).finish()
    }
}
