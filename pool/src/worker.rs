//! A worker thread: its loop, its per-thread state, and the blocking hook that runs the pool's
//! own pending tasks inline and reports wait-for cycles (DESIGN §4 "No self-deadlock").

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use concur_core::{
    Blocking, BlockingHook, BlockingMany, Failure, Needs, Task, Verdict, with_blocking_hook,
};

use crate::BrokenThreadPool;
use crate::idle_spin;
use crate::pool::Shared;
use crate::sleep::{Idle, Parker};
use crate::wait_for;

/// What a worker thread knows about itself, in a thread-local so a task body can tell the pool
/// it is done before its future completes (see [`BodyDone`]).
///
/// Invariant: `pool` is 0 on threads that are not workers; on a worker it is its pool's id and
/// `shared` points to that pool's [`Shared`], kept alive by the worker's `Arc` for as long as
/// `pool` is set. `stack` holds the ids of the tasks this thread is running, outermost first
/// (inline runs nest).
struct WorkerState {
    pool: Cell<usize>,
    shared: Cell<*const Shared>,
    stack: RefCell<Vec<usize>>,
    released: Cell<bool>,
}

thread_local! {
    static WORKER: WorkerState = const {
        WorkerState {
            pool: Cell::new(0),
            shared: Cell::new(core::ptr::null()),
            stack: RefCell::new(Vec::new()),
            released: Cell::new(false),
        }
    };
}

/// Whether the calling thread is a worker of the pool `pool`.
pub(crate) fn is_worker_of(pool: usize) -> bool {
    WORKER.try_with(|w| w.pool.get() == pool).unwrap_or(false)
}

/// Dropped at the end of a submitted task's body (also on unwind): if this is the outermost
/// task of one of its pool's workers, the worker counts itself idle *before* the future
/// completes, so a caller that submits again as soon as it sees the result finds the worker idle
/// (Python's idle semaphore without its race).
pub(crate) struct BodyDone(pub(crate) usize);

impl Drop for BodyDone {
    fn drop(&mut self) {
        body_done(self.0);
    }
}

fn body_done(pool: usize) {
    let _ = WORKER.try_with(|w| {
        if w.pool.get() != pool || w.released.get() || w.stack.borrow().len() != 1 {
            return;
        }
        w.released.set(true);
        // SAFETY: `pool` is set, so `shared` is alive (the invariant of `WorkerState`).
        let shared = unsafe { &*w.shared.get() };
        shared.release_idle();
    });
}

/// Sets and clears the thread-local worker state around the worker's life.
struct Registered<'a>(&'a WorkerState);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.pool.set(0);
        self.0.shared.set(core::ptr::null());
    }
}

/// The body of worker thread: initializer, then the loop until shutdown.
pub(crate) fn main(shared: Arc<Shared>) {
    let _exit = ExitGuard(&shared);
    if let Some(initializer) = shared.config.initializer.clone() {
        let init = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| initializer()));
        if let Err(payload) = init {
            let broken = BrokenThreadPool::initializer(Failure::from_panic(payload));
            shared.break_pool(Failure::from_error(broken));
            return;
        }
    }
    let parker = Parker::new();
    WORKER.with(|state| {
        state.pool.set(shared.id);
        state.shared.set(Arc::as_ptr(&shared));
        let _registered = Registered(state);
        let hook = Hook {
            shared: &shared,
            state,
        };
        with_blocking_hook(&hook, || work_loop(&shared, state, &parker));
    });
}

/// Counts the worker out when its thread function ends, however it ends.
struct ExitGuard<'a>(&'a Shared);

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        self.0.worker_exited();
    }
}

fn work_loop(shared: &Shared, state: &WorkerState, parker: &crate::sync::Arc<Parker>) {
    loop {
        let task = match find_task(shared) {
            Some(task) => task,
            None => match shared
                .control
                .wait_for_work(parker, || !shared.queue.is_empty())
            {
                Idle::Work => continue,
                Idle::Exit => return,
            },
        };
        if let Some(failure) = shared.broken() {
            task.fail(failure.clone());
            continue;
        }
        run_task(shared, state, task);
    }
}

/// Pops a task, spinning a while (see [`idle_spin`]) before giving up.
fn find_task(shared: &Shared) -> Option<Task> {
    shared.queue.pop().or_else(|| {
        let moves = shared.config.move_idle_workers;
        idle_spin::spin(shared.control.submit_cpu(), moves, || shared.queue.pop())
    })
}

fn run_task(shared: &Shared, state: &WorkerState, task: Task) {
    state.stack.borrow_mut().push(task.id());
    state.released.set(false);
    task.run();
    state.stack.borrow_mut().pop();
    if !state.released.get() {
        shared.release_idle();
    }
}

/// The worker's [`BlockingHook`]: consulted when a task running on this worker is about to
/// block on a future.
struct Hook<'a> {
    shared: &'a Shared,
    state: &'a WorkerState,
}

impl Hook<'_> {
    /// The task this thread is running (the innermost inline run).
    fn current_task(&self) -> Option<usize> {
        self.state.stack.borrow().last().copied()
    }

    fn end_wait(&self) {
        if let Some(waiter) = self.current_task() {
            wait_for::graph().unblock(waiter);
        }
    }
}

impl BlockingHook for Hook<'_> {
    fn before_block(&self, future: &Blocking<'_>) -> Verdict {
        let Some(waiter) = self.current_task() else {
            return Verdict::Block;
        };
        let target = future.id();
        if !wait_for::graph().block(waiter, Needs::All, vec![target]) {
            return Verdict::Deadlock;
        }
        if future.owner() == Some(self.shared.id) {
            // Ours and maybe still queued: run it here rather than wait for a worker that may
            // never come (the seeds' `wait_on_future` with one worker).
            self.state.stack.borrow_mut().push(target);
            future.run_inline();
            self.state.stack.borrow_mut().pop();
        }
        Verdict::Block
    }

    fn after_block(&self, _future: &Blocking<'_>) {
        self.end_wait();
    }

    /// `wait` over several futures and `as_completed` steps: recorded in the same graph, as
    /// needing any one or all of them; no inline run (a queued task of ours among them waits
    /// for a worker like any other).
    fn before_block_on_many(&self, futures: &BlockingMany<'_>) -> Verdict {
        let Some(waiter) = self.current_task() else {
            return Verdict::Block;
        };
        let targets = futures.futures().map(|f| f.id()).collect();
        if wait_for::graph().block(waiter, futures.needs(), targets) {
            Verdict::Block
        } else {
            Verdict::Deadlock
        }
    }

    fn after_block_on_many(&self, _futures: &BlockingMany<'_>) {
        self.end_wait();
    }
}
