//! [`ThreadPool::scope`]: tasks that borrow from the caller's stack, like `std::thread::scope`.
//!
//! # Why this is sound
//!
//! A scoped task is made with [`Task::new_unchecked`], whose contract is that nothing the work
//! or its output borrows goes away while the work can still run or be dropped, or while its
//! output can still be read or dropped. `scope` does not return (nor unwind) before all of:
//!
//! 1. **Every work closure is gone.** Each one is wrapped in a [`ScopedWork`] whose `Drop` (run
//!    when the closure has been called, or dropped unrun by a cancel, a broken pool or a
//!    refused submit, on whatever thread that happens) counts it down in the scope's
//!    `pending` counter, after the closure and its captures are gone. The scope waits for the
//!    counter to reach zero.
//! 2. **Every future is done.** The scope keeps its own handle to each future and waits on it
//!    (again and again until no new entry appears: scoped tasks may submit more, but not once
//!    every closure is gone).
//!    After a future is done, the thread that completed it touches only the cell's header and
//!    waiter nodes, never the output: nobody can add a done-callback that reads it, because a
//!    [`ScopedFuture`] does not hand out its inner [`Future`].
//! 3. **Every output is gone.** The scope moves each output out of its own handle (the last
//!    one: a [`ScopedFuture`] cannot outlive the scope's closure, the closure's result cannot
//!    name `'scope`, and the handles captured by scoped tasks went with their closures in 1.)
//!    and drops it on the calling thread. What a worker may still hold afterwards (a queued task
//!    that finds its future already run inline) is a cell with no work and no output in it.
//!
//! A handle leaked with `mem::forget` keeps its cell (and output) alive forever; that leaks but
//! never touches the borrowed data.

use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use concur_core::{
    Blocking, BlockingHook, Error, Failure, Future, SubmitError, Task, Verdict, with_blocking_hook,
};

use crate::ThreadPool;
use crate::pool::Shared;

impl ThreadPool {
    /// Runs `f` with a [`Scope`] whose tasks may borrow from the caller's stack, and returns
    /// `f`'s result once every task submitted through the scope is finished (like
    /// [`std::thread::scope`]).
    ///
    /// It waits for every scoped task even if `f` panics, then re-raises the panic. A scoped
    /// task's own panic is its future's [`Failure`]; `scope` does not re-raise it.
    ///
    /// Called from one of this pool's own tasks it does not deadlock: the scoped tasks still
    /// queued run inline on the calling worker.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = concur_pool::ThreadPool::new(2).unwrap();
    /// let words = vec!["alpha".to_string(), "beta".to_string()];
    /// let mut total = 0;
    /// pool.scope(|s| {
    ///     let lengths: Vec<_> = words.iter().map(|w| s.submit(|| w.len()).unwrap()).collect();
    ///     total = lengths.iter().map(|f| *f.result().unwrap()).sum();
    /// });
    /// assert_eq!(total, 9);
    /// assert_eq!(words.len(), 2); // still ours
    /// ```
    pub fn scope<'env, F, R>(&self, f: F) -> R
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
    {
        let scope = Scope {
            shared: Arc::clone(self.shared()),
            data: Arc::new(ScopeData::default()),
            entries: Mutex::new(Vec::new()),
            _scope: PhantomData,
            _env: PhantomData,
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| f(&scope)));
        scope.finish();
        match outcome {
            Ok(value) => value,
            Err(payload) => resume_unwind(payload),
        }
    }
}

/// Submits tasks that may borrow anything that outlives the scope (`'env`); see
/// [`ThreadPool::scope`].
///
/// Invariant: every task submitted through it has a `ScopedWork` counted in `data.pending`
/// until its closure is gone, and an entry in `entries` holding a handle to its future.
pub struct Scope<'scope, 'env: 'scope> {
    shared: Arc<Shared>,
    data: Arc<ScopeData>,
    entries: Mutex<Vec<Box<dyn Entry + Send + 'env>>>,
    /// Invariant over `'scope` and `'env`, as `std::thread::Scope`.
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Schedules `work`, which may borrow from outside the scope, on the pool. Its output may
    /// borrow from outside the scope too (`T: 'env`).
    ///
    /// # Errors
    /// As [`ThreadPool::submit`]: the pool was shut down or is broken.
    pub fn submit<F, T>(&'scope self, work: F) -> Result<ScopedFuture<'scope, T>, SubmitError>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'env,
    {
        self.data.add();
        let work = ScopedWork {
            work: Some(work),
            data: Arc::clone(&self.data),
        };
        // SAFETY: `scope` does not return before the work is gone and the output was moved out
        // of the last handle and dropped on the scope's thread (module docs, points 1 to 3).
        let (task, future) = unsafe { Task::new_unchecked(self.shared.id, move || work.call()) };
        self.shared.execute(task)?;
        let entry: Box<dyn Entry + Send + 'env> = Box::new(EntryFor(future.clone()));
        self.entries().push(entry);
        Ok(ScopedFuture {
            future,
            _scope: PhantomData,
        })
    }

    /// Waits for every task, then drops every output here (module docs).
    fn finish(&self) {
        let mut done = Vec::new();
        loop {
            let batch = core::mem::take(&mut *self.entries());
            if batch.is_empty() {
                // Scoped tasks may still submit more; once every closure is gone none can.
                self.data.wait_for_all();
                if self.entries().is_empty() {
                    break;
                }
                continue;
            }
            for entry in &batch {
                entry.wait();
            }
            done.extend(batch);
        }
        // Drop every output here even if one's `Drop` panics, then re-raise the first panic.
        let mut panic = None;
        for entry in done {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| entry.finish())) {
                panic.get_or_insert(payload);
            }
        }
        if let Some(payload) = panic {
            resume_unwind(payload);
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<Box<dyn Entry + Send + 'env>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl core::fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Scope").finish_non_exhaustive()
    }
}

/// Counts the scoped work closures not yet gone.
#[derive(Default)]
struct ScopeData {
    pending: Mutex<usize>,
    gone: Condvar,
}

impl ScopeData {
    fn add(&self) {
        *self.pending.lock().unwrap_or_else(PoisonError::into_inner) += 1;
    }

    fn done(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        *pending -= 1;
        if *pending == 0 {
            self.gone.notify_all();
        }
    }

    fn wait_for_all(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        while *pending > 0 {
            pending = self
                .gone
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// A scoped work closure; counted out of its scope when it is gone (called or dropped).
///
/// Invariant: `work` is `Some` until called or dropped; `data` outlives it (an `Arc`).
struct ScopedWork<F> {
    work: Option<F>,
    data: Arc<ScopeData>,
}

impl<F> ScopedWork<F> {
    fn call<T>(mut self) -> T
    where
        F: FnOnce() -> T,
    {
        match self.work.take() {
            // The closure and its captures are gone when it returns (or unwinds); then `self`
            // drops and counts it out, before the task completes its future.
            Some(work) => work(),
            None => unreachable!("a scoped work closure is called once"),
        }
    }
}

impl<F> Drop for ScopedWork<F> {
    fn drop(&mut self) {
        drop(self.work.take());
        self.data.done();
    }
}

/// The scope's own handle to one future.
trait Entry {
    /// Blocks until the future is done.
    fn wait(&self);
    /// Moves the output out of the (last) handle and drops it here.
    fn finish(self: Box<Self>);
}

struct EntryFor<T>(Future<T>);

// SAFETY: an entry never shares `&T`: it is made on one thread and, on the scope's thread,
// waits for completion and moves the output out, which needs only `T: Send`.
unsafe impl<T: Send> Send for EntryFor<T> {}

impl<T> Entry for EntryFor<T> {
    fn wait(&self) {
        if self.0.wait() {
            return;
        }
        // This thread's hook reports a wait-for cycle through this scope: the task cannot
        // finish, and the scope cannot return while it may still run. Block anyway, as
        // `std::thread::scope` would, without asking the hook again.
        with_blocking_hook(&JustBlock, || while !self.0.wait() {});
    }

    fn finish(self: Box<Self>) {
        drop(self.0.into_result());
    }
}

/// A hook that always lets the wait block.
struct JustBlock;

impl BlockingHook for JustBlock {
    fn before_block(&self, _future: &Blocking<'_>) -> Verdict {
        Verdict::Block
    }

    fn after_block(&self, _future: &Blocking<'_>) {}
}

/// The future of a scoped task: read its outcome by reference until the scope ends.
///
/// Unlike a [`Future`] it cannot be cancelled, cloned out of the scope, given done-callbacks
/// or passed to `wait` / `as_completed` (so no code outside the scope's control ever reads its
/// output); the scope drops the output when it ends.
pub struct ScopedFuture<'scope, T> {
    future: Future<T>,
    _scope: PhantomData<&'scope ()>,
}

impl<T> ScopedFuture<'_, T> {
    /// Waits for the outcome (as [`Future::result`]).
    ///
    /// # Errors
    /// [`Error::Failed`] if the task panicked or the pool failed it; [`Error::Deadlock`] if this
    /// thread's pool hook found a wait-for cycle.
    pub fn result(&self) -> Result<&T, Error> {
        self.future.result()
    }

    /// Waits at most `timeout` for the outcome (as [`Future::result_timeout`]).
    ///
    /// # Errors
    /// [`Error::TimedOut`], or as [`result`](ScopedFuture::result).
    pub fn result_timeout(&self, timeout: Duration) -> Result<&T, Error> {
        self.future.result_timeout(timeout)
    }

    /// Waits until `deadline` at most for the outcome (as [`Future::result_deadline`]).
    ///
    /// # Errors
    /// [`Error::TimedOut`], or as [`result`](ScopedFuture::result).
    pub fn result_deadline(&self, deadline: Instant) -> Result<&T, Error> {
        self.future.result_deadline(deadline)
    }

    /// The outcome if done, without waiting (as [`Future::try_result`]).
    pub fn try_result(&self) -> Option<Result<&T, Error>> {
        self.future.try_result()
    }

    /// Waits and returns the task's failure, if any (as [`Future::error`]).
    ///
    /// # Errors
    /// As [`Future::error`].
    pub fn error(&self) -> Result<Option<Failure>, Error> {
        self.future.error()
    }

    /// Whether the task finished.
    pub fn is_done(&self) -> bool {
        self.future.is_done()
    }

    /// Whether the task is running.
    pub fn is_running(&self) -> bool {
        self.future.is_running()
    }
}

impl<T> core::fmt::Debug for ScopedFuture<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ScopedFuture")
            .field("done", &self.is_done())
            .field("running", &self.is_running())
            .finish()
    }
}
