//! The `Executor` trait's provided `submit` and `map` (Python's `Executor.submit` / `map`).

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use concur_core::{Error, Executor, MapOptions, SubmitError, Task};

/// Runs each task on a fresh thread.
struct ThreadPerTask;

impl Executor for ThreadPerTask {
    fn execute(&self, task: Task) -> Result<(), SubmitError> {
        thread::spawn(move || task.run());
        Ok(())
    }
}

/// Keeps tasks until told to run them; refuses once closed.
#[derive(Default)]
struct Manual {
    queue: Mutex<Vec<Task>>,
    closed: Mutex<bool>,
}

impl Manual {
    fn run_first(&self) {
        let task = self.queue.lock().unwrap().remove(0);
        task.run();
    }

    fn run_all(&self) -> usize {
        let tasks: Vec<_> = self.queue.lock().unwrap().drain(..).collect();
        let n = tasks.len();
        tasks.into_iter().for_each(Task::run);
        n
    }
}

impl Executor for Manual {
    fn execute(&self, task: Task) -> Result<(), SubmitError> {
        if *self.closed.lock().unwrap() {
            return Err(SubmitError::Shutdown);
        }
        self.queue.lock().unwrap().push(task);
        Ok(())
    }
}

#[test]
fn submit_returns_the_result() {
    let future = ThreadPerTask.submit(|| 2u64.pow(10)).unwrap();
    assert_eq!(*future.result().unwrap(), 1024);
}

#[test]
fn a_panicking_task_is_its_futures_error() {
    let future = ThreadPerTask
        .submit(|| -> u8 { panic!("task failed") })
        .unwrap();
    assert_eq!(
        future.error().unwrap().unwrap().panic_message(),
        Some("task failed")
    );
}

#[test]
fn submit_after_close_is_an_error() {
    let executor = Manual::default();
    *executor.closed.lock().unwrap() = true;
    assert!(matches!(executor.submit(|| 1), Err(SubmitError::Shutdown)));
}

#[test]
fn a_task_dropped_unrun_abandons_its_future() {
    let executor = Manual::default();
    let future = executor.submit(|| 1).unwrap();
    executor.queue.lock().unwrap().clear();
    assert!(future.error().unwrap().unwrap().is_abandoned());
}

#[test]
fn a_cancelled_task_does_not_run() {
    let executor = Manual::default();
    let (tx, rx) = mpsc::channel();
    let future = executor.submit(move || tx.send(()).unwrap()).unwrap();
    assert!(future.cancel());
    executor.run_all();
    assert!(rx.try_recv().is_err());
}

#[test]
fn map_yields_in_input_order() {
    let results: Vec<u32> = ThreadPerTask
        .map(|x: u32| x * 10, [3, 1, 2])
        .map(Result::unwrap)
        .collect();
    assert_eq!(results, [30, 10, 20]);
}

#[test]
fn map_yields_each_failure_and_goes_on() {
    let results: Vec<_> = ThreadPerTask
        .map(|x: u32| if x == 2 { panic!("two") } else { x }, 1..=3)
        .collect();
    assert_eq!(results[0].as_ref().unwrap(), &1);
    assert!(matches!(&results[1], Err(Error::Failed(f)) if f.panic_message() == Some("two")));
    assert_eq!(results[2].as_ref().unwrap(), &3);
}

#[test]
fn map_timeout_is_one_deadline_and_cancels_the_rest() {
    let executor = Manual::default();
    let options = MapOptions::new().timeout(Duration::from_millis(30));
    let mut results = executor.map_with(|x: u32| x, 0..5, options);
    // Nothing runs: the first wait hits the deadline.
    assert!(matches!(results.next(), Some(Err(Error::TimedOut))));
    assert!(results.next().is_none());
    drop(results);
    assert_eq!(executor.run_all(), 5); // the tasks exist but every future was cancelled
}

#[test]
fn map_window_bounds_what_is_in_flight() {
    let executor = Manual::default();
    let window = NonZeroUsize::new(2).unwrap();
    let mut results = executor.map_with(|x: u64| x + 1, 0.., MapOptions::new().in_flight(window));
    assert_eq!(executor.queue.lock().unwrap().len(), 2); // an infinite input is not drained
    assert_eq!(executor.run_all(), 2);
    assert_eq!(results.next().unwrap().unwrap(), 1);
    assert_eq!(executor.queue.lock().unwrap().len(), 1);
    assert_eq!(results.next().unwrap().unwrap(), 2);
}

// ORDERING (the counters below): Relaxed: a count read after the calls ran on this thread
// (`run_all`), so no other data is published through it.

#[test]
fn a_map_dropped_unread_cancels_nothing_and_its_calls_run() {
    let executor = Manual::default();
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ran);
    let results = executor.map(move |_: u32| counter.fetch_add(1, Ordering::Relaxed), 0..10);
    // Submitted by the `map` call, before any `next`.
    assert_eq!(executor.queue.lock().unwrap().len(), 10);
    drop(results);
    assert_eq!(executor.run_all(), 10);
    assert_eq!(ran.load(Ordering::Relaxed), 10);
}

#[test]
fn a_windowed_map_submits_its_first_window_at_the_call() {
    let executor = Manual::default();
    let window = NonZeroUsize::new(3).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ran);
    let results = executor.map_with(
        move |_: u64| counter.fetch_add(1, Ordering::Relaxed),
        0..,
        MapOptions::new().in_flight(window),
    );
    assert_eq!(executor.queue.lock().unwrap().len(), 3);
    drop(results);
    // Not cancelled: the three run; nothing past the window was ever submitted.
    assert_eq!(executor.run_all(), 3);
    assert_eq!(ran.load(Ordering::Relaxed), 3);
}

#[test]
fn a_map_advanced_then_dropped_cancels_what_has_not_started() {
    let executor = Manual::default();
    let (tx, rx) = mpsc::channel();
    let mut results = executor.map(move |x: u32| tx.send(x).unwrap(), 0..10);
    executor.run_first();
    results.next().unwrap().unwrap();
    drop(results);
    executor.run_all();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0]);
}

#[test]
fn map_reports_a_refused_submission_in_its_place() {
    let executor = Manual::default();
    *executor.closed.lock().unwrap() = true;
    let results: Vec<_> = executor.map(|x: u32| x, 0..2).collect();
    assert_eq!(results.len(), 2);
    assert!(
        results.iter().all(
            |r| matches!(r, Err(Error::Failed(f)) if f.downcast_ref::<SubmitError>().is_some())
        )
    );
}
