//! [`Task`]: a unit of work and the cell of its future in one allocation, so an executor's queue
//! holds one pointer per submitted task and `submit` allocates once.
//!
//! The right to run the work is claimed by moving the future from PENDING to RUNNING: normally
//! by whoever calls [`Task::run`], but a thread that blocks on the future while it is still
//! pending may claim it first and run it inline (see [`crate::hook`]); the queued `Task` then
//! finds it taken and only releases its share.

use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::cell::Cell;
use crate::header::{CellOps, Claim, Header};
use crate::sync::{UnsafeCell, heap};
use crate::{Failure, Future};

/// The cell, its owner tag and the work, in one allocation.
///
/// Invariant: `work` is `Some` until the claim's winner takes it, or the producer drops it
/// after a cancellation; only they touch it.
#[repr(C)]
struct TaskCell<T, F> {
    cell: Cell<T>,
    owner: usize,
    work: UnsafeCell<Option<F>>,
}

/// The typed operations of a task cell.
#[derive(Clone, Copy)]
pub(crate) struct TaskOps {
    /// Takes the work out, runs it (catching a panic with `std`) and completes the future.
    ///
    /// # Safety
    /// The caller won the claim and keeps the cell alive (a handle or the producer's share);
    /// `producer_done` only if it is the producer.
    pub(crate) run: unsafe fn(NonNull<Header>, producer_done: bool),
    /// Drops the work unrun.
    ///
    /// # Safety
    /// The caller is the producer and nobody took the work (the claim said Cancelled, or the
    /// caller won it).
    pub(crate) discard: unsafe fn(NonNull<Header>),
    /// Completes a claimed future with a failure (abandoned, or an executor's reason), as the
    /// producer.
    ///
    /// # Safety
    /// The caller is the producer, won the claim, and discarded the work.
    pub(crate) fail: unsafe fn(NonNull<Header>, Failure),
    /// The owner tag given at creation.
    ///
    /// # Safety
    /// `header` heads a live task cell.
    pub(crate) owner: unsafe fn(NonNull<Header>) -> usize,
}

struct OpsFor<T, F>(PhantomData<(T, F)>);

impl<T, F: FnOnce() -> T> OpsFor<T, F> {
    const OPS: CellOps = CellOps {
        free: free_task::<T, F>,
        task: Some(TaskOps {
            run: run_task::<T, F>,
            discard: discard_task::<T, F>,
            fail: fail_task::<T>,
            owner: owner_of::<T, F>,
        }),
        #[cfg(feature = "std")]
        drive: None,
        plain: false,
    };
}

/// Moves the work out of its slot.
///
/// # Safety
/// `task` is alive and the caller owns its work (won the claim, or is the producer of a
/// cancelled task).
unsafe fn take_work<T, F>(task: NonNull<TaskCell<T, F>>) -> Option<F> {
    // SAFETY: alive per the contract.
    let slot = unsafe { &task.as_ref().work };
    // SAFETY: the caller owns the work, so nobody else touches the slot.
    slot.with_mut(|work| unsafe { (*work).take() })
}

/// # Safety
/// As `TaskOps::run`.
unsafe fn run_task<T, F: FnOnce() -> T>(header: NonNull<Header>, producer_done: bool) {
    let task = header.cast::<TaskCell<T, F>>();
    // SAFETY: the claim's winner owns the work (invariant) and the cell is alive (caller).
    let work = unsafe { take_work(task) };
    let outcome = match work {
        Some(work) => catch(work),
        None => Err(Failure::abandoned()),
    };
    // SAFETY: we won the claim, so we hold the right to complete; RUNNING cannot be cancelled,
    // so this is never refused.
    let _ = unsafe { Cell::complete(task.cast::<Cell<T>>(), outcome, producer_done) };
}

/// Runs `work`, turning a panic into the future's failure when `std` can catch it.
fn catch<T>(work: impl FnOnce() -> T) -> Result<T, Failure> {
    #[cfg(feature = "std")]
    return std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
        .map_err(Failure::from_panic);
    #[cfg(not(feature = "std"))]
    return Ok(work());
}

/// # Safety
/// As `TaskOps::discard`.
unsafe fn discard_task<T, F>(header: NonNull<Header>) {
    let task = header.cast::<TaskCell<T, F>>();
    // SAFETY: per the contract the work is ours to drop.
    let work = unsafe { take_work(task) };
    crate::callback::catch_and_report(|| drop(work));
}

/// # Safety
/// As `TaskOps::fail`.
unsafe fn fail_task<T>(header: NonNull<Header>, failure: Failure) {
    // SAFETY: the producer completes its claimed future once.
    let _ = unsafe { Cell::<T>::complete(header.cast(), Err(failure), true) };
}

/// # Safety
/// As `TaskOps::owner`.
unsafe fn owner_of<T, F>(header: NonNull<Header>) -> usize {
    // SAFETY: the cell is alive (caller); `owner` never changes.
    unsafe { header.cast::<TaskCell<T, F>>().as_ref() }.owner
}

/// # Safety
/// As [`Cell::free`], for a task cell.
unsafe fn free_task<T, F>(header: NonNull<Header>, outcome_taken: bool) {
    let task = header.cast::<TaskCell<T, F>>();
    // SAFETY: exclusive access per the contract.
    unsafe { task.as_ref().cell.drop_outcome(outcome_taken) };
    // SAFETY: allocated by `heap::alloc` in `Task::with_owner`; `work` is already `None`.
    unsafe { heap::free(task) };
}

/// A unit of work for an executor, holding the cell of its [`Future`]: run it once, on any
/// thread (one pointer, one allocation with its future).
///
/// [`run`](Task::run) claims the future (skipping the work if it was cancelled), runs the work,
/// catches a panic (with `std`) and completes the future. Dropping a task unrun resolves its
/// future as [abandoned](Failure::is_abandoned), so nothing waits on a task an executor lost.
///
/// # Examples
///
/// ```
/// use concur_core::Task;
///
/// let (task, future) = Task::new(|| 6 * 7);
/// std::thread::spawn(move || task.run());
/// assert_eq!(*future.result().unwrap(), 42);
/// ```
pub struct Task {
    header: NonNull<Header>,
}

// SAFETY: a task is only made from `Send` work with a `Send` output (or under the caller's
// promise, for `new_unchecked`), and only its claimer touches the work.
unsafe impl Send for Task {}

impl Task {
    /// A task for `work` and the future of its result.
    pub fn new<F, T>(work: F) -> (Task, Future<T>)
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Self::with_owner(0, work)
    }

    /// As [`Task::new`], tagged with `owner` (an executor's identity, for instance the address
    /// of its shared state) so a [`BlockingHook`](crate::BlockingHook) can tell its own tasks.
    pub fn with_owner<F, T>(owner: usize, work: F) -> (Task, Future<T>)
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // SAFETY: `'static` work and output outlive anything.
        unsafe { Self::new_unchecked(owner, work) }
    }

    /// As [`Task::with_owner`] without the `'static` bounds, for scoped executors.
    ///
    /// # Safety
    /// The task must be run or dropped, and every handle to the future dropped, before
    /// anything `work` or its output borrows goes away.
    pub unsafe fn new_unchecked<F, T>(owner: usize, work: F) -> (Task, Future<T>)
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let cell = heap::alloc(TaskCell {
            cell: Cell::<T>::with_ops(&OpsFor::<T, F>::OPS),
            owner,
            work: UnsafeCell::new(Some(work)),
        });
        let task = Task {
            header: cell.cast(),
        };
        // SAFETY: the cell starts with one consumer share, which this handle takes.
        let future = unsafe { Future::from_raw_cell(cell.cast::<Cell<T>>()) };
        (task, future)
    }

    /// A task whose outcome nobody reads.
    pub fn from_fn(work: impl FnOnce() + Send + 'static) -> Task {
        Self::new(work).0
    }

    fn header(&self) -> &Header {
        // SAFETY: the producer's share keeps the cell alive while `self` exists.
        unsafe { self.header.as_ref() }
    }

    fn ops(&self) -> TaskOps {
        match self.header().ops().task {
            Some(ops) => ops,
            None => unreachable!("a Task always heads a task cell"),
        }
    }

    /// This task's identity: equal to the [`id`](crate::Blocking::id) its future shows a
    /// blocking hook.
    pub fn id(&self) -> usize {
        self.header.addr().get()
    }

    /// The owner tag given at creation (0 for [`Task::new`]).
    pub fn owner(&self) -> usize {
        // SAFETY: our cell is alive.
        unsafe { (self.ops().owner)(self.header) }
    }

    /// Whether the future was cancelled (running the task would only release it).
    pub fn is_cancelled(&self) -> bool {
        self.header().load(crate::sync::ord::FAST_PATH_LOAD).phase() == crate::word::CANCELLED
    }

    /// Runs the work and completes the future, unless the future was cancelled or another
    /// thread already claimed it (then this only releases the task).
    pub fn run(self) {
        let ops = self.ops();
        let header = core::mem::ManuallyDrop::new(self).header;
        // SAFETY: we hold the producer's share.
        match unsafe { header.as_ref() }.claim() {
            // SAFETY: we won the claim and are the producer.
            Claim::Won => unsafe { (ops.run)(header, true) },
            // SAFETY: cancelled: the work is ours to drop.
            Claim::Cancelled => unsafe { discard_and_release(header, ops) },
            // SAFETY: someone else ran it; only our share is left.
            Claim::Taken => unsafe { release_producer(header) },
        }
    }

    /// Cancels the future without running the work (as [`Future::cancel`], for an executor
    /// that holds only the task, e.g. `shutdown(cancel_futures)`), drops the work and releases
    /// the task. Returns whether the future is cancelled: false if it was already claimed.
    ///
    /// # Examples
    ///
    /// ```
    /// let (task, future) = concur_core::Task::new(|| 1);
    /// assert!(task.cancel());
    /// assert!(future.is_cancelled());
    /// ```
    pub fn cancel(self) -> bool {
        let cancelled = self.header().cancel();
        drop(self); // cancelled: drops the work; claimed: only releases our share
        cancelled
    }

    /// Resolves the future with `failure` without running the work (an executor that can no
    /// longer run it, e.g. a broken pool), unless it was cancelled or already claimed; drops
    /// the work and releases the task.
    ///
    /// # Examples
    ///
    /// ```
    /// let (task, future) = concur_core::Task::new(|| 1);
    /// task.fail(concur_core::Failure::from_error(std::io::Error::other("pool broken")));
    /// assert_eq!(future.error().unwrap().unwrap().to_string(), "pool broken");
    /// ```
    pub fn fail(self, failure: Failure) {
        let ops = self.ops();
        let header = core::mem::ManuallyDrop::new(self).header;
        // SAFETY: we hold the producer's share.
        match unsafe { header.as_ref() }.claim() {
            Claim::Won => {
                // SAFETY: we won the claim and are the producer.
                unsafe { (ops.discard)(header) };
                // SAFETY: as above; the work is gone.
                unsafe { (ops.fail)(header, failure) };
            }
            // SAFETY: cancelled: the work is ours to drop.
            Claim::Cancelled => unsafe { discard_and_release(header, ops) },
            // SAFETY: someone else ran it; only our share is left.
            Claim::Taken => unsafe { release_producer(header) },
        }
    }
}

/// # Safety
/// The caller is the producer, the work is still in the cell, and the future is not running.
unsafe fn discard_and_release(header: NonNull<Header>, ops: TaskOps) {
    // SAFETY: per the contract.
    unsafe { (ops.discard)(header) };
    // SAFETY: per the contract.
    unsafe { release_producer(header) };
}

/// # Safety
/// The caller holds the producer's share and gives it up.
unsafe fn release_producer(header: NonNull<Header>) {
    // SAFETY: alive through our share.
    let header_ref = unsafe { header.as_ref() };
    if header_ref.release_producer() {
        // SAFETY: both ownership flags are set; we synchronised through the flag CAS.
        unsafe { (header_ref.ops().free)(header, false) };
    }
}

impl Drop for Task {
    /// Resolves the future as abandoned, unless it was cancelled or already claimed.
    fn drop(&mut self) {
        let ops = self.ops();
        let header = self.header;
        match self.header().claim() {
            Claim::Won => {
                // SAFETY: we won the claim and are the producer.
                unsafe { (ops.discard)(header) };
                // SAFETY: as above; the work is gone.
                unsafe { (ops.fail)(header, Failure::abandoned()) };
            }
            // SAFETY: cancelled: the work is ours to drop.
            Claim::Cancelled => unsafe { discard_and_release(header, ops) },
            // SAFETY: someone else ran it; only our share is left.
            Claim::Taken => unsafe { release_producer(header) },
        }
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.id())
            .field("owner", &self.owner())
            .finish()
    }
}

/// Claims a pending task cell and runs it in this thread, as a consumer (the queued `Task`
/// keeps the producer's share). Returns whether it ran.
///
/// # Safety
/// `header` is a live cell's header pointer with the provenance of its whole allocation (as a
/// handle holds it), kept alive by the caller's handle.
pub(crate) unsafe fn run_inline(header: NonNull<Header>) -> bool {
    // SAFETY: alive per the contract.
    let header_ref = unsafe { header.as_ref() };
    let Some(ops) = header_ref.ops().task else {
        return false;
    };
    if header_ref.claim() != Claim::Won {
        return false;
    }
    // SAFETY: we won the claim; the caller's handle keeps the cell alive; not the producer.
    unsafe { (ops.run)(header, false) };
    true
}

/// The owner tag of a task cell, if it is one.
///
/// # Safety
/// As [`run_inline`].
pub(crate) unsafe fn owner(header: NonNull<Header>) -> Option<usize> {
    // SAFETY: alive per the contract.
    let ops = unsafe { header.as_ref() }.ops().task?;
    // SAFETY: as above; the pointer covers the whole task cell.
    Some(unsafe { (ops.owner)(header) })
}
