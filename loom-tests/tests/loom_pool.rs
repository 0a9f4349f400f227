//! Loom models of concur-pool's sleep/wake protocol (`pool/src/sleep.rs`): idle workers sleep
//! and submits wake them, with no lost wake-up, and shutdown never strands a task.
//!
//! Run with:
//!
//! ```sh
//! RUSTFLAGS="--cfg concur_loom" LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test -p concur-loom-tests --release --test loom_pool
//! ```
//!
//! The models drive the pool's real `Control` (its control word, sleeper list and parking,
//! all loom types under `--cfg concur_loom`) with a loom-visible stand-in for the task queue
//! (a `Mutex<VecDeque>`): the protocol only needs the queue's push to happen before the submit's
//! `end_submit` and its emptiness check to come after the worker's load of the word.
//!
//! Shape (DESIGN §2 "Harness traps"): at most three threads; workers, the only threads that
//! park, never `join`; the main thread joins everyone at the end. A worker left parked forever
//! (a lost wake-up) makes loom report a deadlock, failing the model.
#![cfg(concur_loom)]

use std::collections::VecDeque;

use concur_pool::__loom::{Control, Idle, Parker};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// Runs `body` under loom, at `LOOM_MAX_PREEMPTIONS` (3 when unset, DESIGN §2).
fn model(body: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(body);
}

/// The protocol plus a stand-in queue and a count of tasks run.
#[derive(Default)]
struct Pool {
    control: Control,
    queue: Mutex<VecDeque<u32>>,
    ran: Mutex<usize>,
    ran_changed: Condvar,
}

impl Pool {
    /// `ThreadPool::execute`: admit, push, end (waking a sleeper). False if refused.
    fn submit(&self, task: u32) -> bool {
        if self.control.begin_submit().is_err() {
            return false;
        }
        self.queue.lock().unwrap().push_back(task);
        self.control.end_submit();
        true
    }

    fn has_work(&self) -> bool {
        !self.queue.lock().unwrap().is_empty()
    }

    fn ran(&self) -> usize {
        *self.ran.lock().unwrap()
    }

    /// Blocks until `n` tasks ran. Before shutdown: a worker that slept through a submit leaves
    /// this thread blocked too, and loom reports the deadlock (a later `close` would wake the
    /// worker and hide the lost wake-up).
    fn wait_until_ran(&self, n: usize) {
        let mut ran = self.ran.lock().unwrap();
        while *ran < n {
            ran = self.ran_changed.wait(ran).unwrap();
        }
    }

    /// A worker's loop: run what is queued, else sleep, until told to exit.
    fn work(&self) {
        let parker = Parker::new();
        loop {
            let task = self.queue.lock().unwrap().pop_front();
            if task.is_some() {
                *self.ran.lock().unwrap() += 1;
                self.ran_changed.notify_all();
                continue;
            }
            match self.control.wait_for_work(&parker, || self.has_work()) {
                Idle::Work => continue,
                Idle::Exit => return,
            }
        }
    }
}

/// A submit racing with the only worker going to sleep: the task runs (loom fails the model
/// if the worker sleeps through it, since the main thread then joins it forever).
#[test]
fn submit_races_with_a_worker_going_to_sleep() {
    model(|| {
        let pool = Arc::new(Pool::default());
        let worker = {
            let pool = pool.clone();
            thread::spawn(move || pool.work())
        };
        assert!(pool.submit(1));
        pool.wait_until_ran(1);
        pool.control.close();
        worker.join().unwrap();
        assert!(pool.queue.lock().unwrap().is_empty());
    });
}

/// Two submits, the second after the worker ran the first and went back towards sleep: both
/// run without the help of shutdown's wake-up.
#[test]
fn two_submits_race_with_a_worker_sleeping_between_them() {
    model(|| {
        let pool = Arc::new(Pool::default());
        let worker = {
            let pool = pool.clone();
            thread::spawn(move || pool.work())
        };
        assert!(pool.submit(1));
        pool.wait_until_ran(1);
        assert!(pool.submit(2));
        pool.wait_until_ran(2);
        pool.control.close();
        worker.join().unwrap();
    });
}

/// Two workers and one submit: whichever worker is asleep or about to sleep, the task runs
/// exactly once and both workers exit at shutdown.
#[test]
fn one_submit_two_sleepy_workers() {
    model(|| {
        let pool = Arc::new(Pool::default());
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let pool = pool.clone();
                thread::spawn(move || pool.work())
            })
            .collect();
        assert!(pool.submit(1));
        pool.wait_until_ran(1);
        pool.control.close();
        for worker in workers {
            worker.join().unwrap();
        }
        assert_eq!(pool.ran(), 1);
    });
}

/// Shutdown racing with a submit from another thread: the submit is either refused or its
/// task runs before the worker exits, never stranded in the queue.
#[test]
fn shutdown_races_with_a_submit() {
    model(|| {
        let pool = Arc::new(Pool::default());
        let worker = {
            let pool = pool.clone();
            thread::spawn(move || pool.work())
        };
        let submitter = {
            let pool = pool.clone();
            thread::spawn(move || pool.submit(1))
        };
        pool.control.close();
        let admitted = submitter.join().unwrap();
        worker.join().unwrap();
        assert_eq!(pool.ran(), usize::from(admitted));
        assert!(pool.queue.lock().unwrap().is_empty());
    });
}

/// A broken pool makes a sleeping worker exit, and refuses later submits.
#[test]
fn breaking_wakes_sleepers_and_refuses_submits() {
    model(|| {
        let pool = Arc::new(Pool::default());
        let worker = {
            let pool = pool.clone();
            thread::spawn(move || pool.work())
        };
        pool.control.mark_broken();
        pool.control.wait_for_submitters();
        worker.join().unwrap();
        assert!(!pool.submit(1));
    });
}
