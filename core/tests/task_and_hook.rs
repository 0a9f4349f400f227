//! `Task` (work and future in one allocation) and the blocking hook that lets an executor run a
//! pending task inline or report a deadlock.

mod common;

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::DropCounter;
use concur_core::{Blocking, BlockingHook, Error, Task, Verdict, with_blocking_hook};

#[test]
fn a_task_runs_once_and_completes_its_future() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let (task, future) = Task::new(move || counter.fetch_add(1, Ordering::SeqCst) + 10);
    assert!(!future.is_done());
    thread::spawn(move || task.run()).join().unwrap();
    assert_eq!(*future.result().unwrap(), 10);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn a_dropped_task_abandons_its_future_and_drops_its_work_once() {
    let counter = DropCounter::default();
    let token = counter.token();
    let (task, future) = Task::new(move || drop(token));
    drop(task);
    assert!(future.error().unwrap().unwrap().is_abandoned());
    assert_eq!(counter.dropped(), 1);
}

#[test]
fn a_cancelled_task_does_not_run_and_drops_its_work_once() {
    let counter = DropCounter::default();
    let token = counter.token();
    let (task, future) = Task::new(move || -> u8 {
        drop(token);
        unreachable!("cancelled")
    });
    assert!(future.cancel());
    assert!(task.is_cancelled());
    task.run();
    assert_eq!(counter.dropped(), 1);
    assert!(matches!(future.result(), Err(Error::Cancelled)));
}

#[test]
fn a_panicking_task_fails_its_future() {
    let (task, future) = Task::new(|| -> u8 { panic!("inside the task") });
    task.run();
    assert_eq!(
        future.error().unwrap().unwrap().panic_message(),
        Some("inside the task")
    );
}

#[test]
fn values_are_dropped_once_on_every_task_path() {
    let counter = DropCounter::default();
    let token = counter.token();
    let (task, future) = Task::new(move || token);
    drop(future); // nobody reads it: the value goes when the task completes
    task.run();
    assert_eq!(counter.dropped(), 1);
}

#[test]
fn ids_and_owner_tags() {
    let (task, _future) = Task::with_owner(7, || ());
    assert_eq!(task.owner(), 7);
    let (plain, _f) = Task::new(|| ());
    assert_eq!(plain.owner(), 0);
    assert_ne!(task.id(), plain.id());
    let fire_and_forget = Task::from_fn(|| ());
    fire_and_forget.run();
}

/// Records what it sees; runs tasks inline when told to; can report deadlock.
#[derive(Default)]
struct Recorder {
    inline: bool,
    deadlock: bool,
    seen: Mutex<Vec<(usize, Option<usize>)>>,
    after: AtomicUsize,
}

impl BlockingHook for Recorder {
    fn before_block(&self, future: &Blocking<'_>) -> Verdict {
        self.seen
            .lock()
            .unwrap()
            .push((future.id(), future.owner()));
        if self.deadlock {
            return Verdict::Deadlock;
        }
        if self.inline {
            future.run_inline();
        }
        Verdict::Block
    }

    fn after_block(&self, _future: &Blocking<'_>) {
        self.after.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn the_hook_runs_a_pending_task_inline() {
    // The seeds' `wait_on_future` with one worker: the waiter runs the task it waits for.
    let hook = Recorder {
        inline: true,
        ..Recorder::default()
    };
    let (task, future) = Task::with_owner(42, || 5u32.pow(2));
    let id = task.id();
    let value = with_blocking_hook(&hook, || *future.result().unwrap());
    assert_eq!(value, 25);
    assert_eq!(*hook.seen.lock().unwrap(), [(id, Some(42))]);
    assert_eq!(hook.after.load(Ordering::SeqCst), 1);
    task.run(); // taken already: only releases itself
    assert_eq!(*future.result().unwrap(), 25);
}

#[test]
fn a_deadlock_verdict_is_an_error_not_a_hang() {
    let hook = Recorder {
        deadlock: true,
        ..Recorder::default()
    };
    let (task, future) = Task::new(|| 1u8);
    assert!(matches!(
        with_blocking_hook(&hook, || future.result().copied()),
        Err(Error::Deadlock)
    ));
    assert!(matches!(
        with_blocking_hook(&hook, || future
            .result_timeout(Duration::from_secs(60))
            .copied()),
        Err(Error::Deadlock)
    ));
    assert!(!with_blocking_hook(&hook, || future.wait()));
    assert_eq!(hook.after.load(Ordering::SeqCst), 0);
    assert!(!future.has_waiters());
    task.run();
    assert_eq!(*future.result().unwrap(), 1); // no hook here
}

#[test]
fn the_hook_is_not_consulted_for_done_futures_or_after_its_scope() {
    let hook = Recorder {
        deadlock: true,
        ..Recorder::default()
    };
    let (task, future) = Task::new(|| 3u8);
    task.run();
    assert_eq!(with_blocking_hook(&hook, || *future.result().unwrap()), 3);
    assert!(hook.seen.lock().unwrap().is_empty());
}

#[test]
fn hooks_nest_and_are_restored_after_a_panic() {
    let outer = Recorder {
        deadlock: true,
        ..Recorder::default()
    };
    let inner = Recorder::default();
    let (_task, future) = Task::new(|| 0u8);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        with_blocking_hook(&outer, || {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                with_blocking_hook(&inner, || panic!("in the inner scope"))
            }));
            // The outer hook is back.
            assert!(matches!(
                future.result_timeout(Duration::from_millis(1)),
                Err(Error::Deadlock)
            ));
            panic!("in the outer scope")
        })
    }));
    assert!(caught.is_err());
    // No hook any more: a plain timeout.
    assert!(matches!(
        future.result_timeout(Duration::from_millis(1)),
        Err(Error::TimedOut)
    ));
}

thread_local! {
    static DEPTH: RefCell<u32> = const { RefCell::new(0) };
}

#[test]
fn an_inline_task_may_itself_block_on_another_pending_task() {
    struct Inline;
    impl BlockingHook for Inline {
        fn before_block(&self, future: &Blocking<'_>) -> Verdict {
            DEPTH.with(|d| *d.borrow_mut() += 1);
            future.run_inline();
            Verdict::Block
        }
        fn after_block(&self, _: &Blocking<'_>) {}
    }
    let (inner_task, inner) = Task::new(|| 2u32);
    let (outer_task, outer) = Task::new(move || *inner.result().unwrap() * 10);
    let value = with_blocking_hook(&Inline, || *outer.result().unwrap());
    assert_eq!(value, 20);
    assert_eq!(DEPTH.with(|d| *d.borrow()), 2);
    inner_task.run();
    outer_task.run();
}
