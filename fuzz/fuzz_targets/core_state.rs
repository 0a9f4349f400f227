//! Random operation sequences over several handles of one future, checked against a
//! sequential model: the outcome every handle sees, callbacks run exactly once (and are
//! dropped exactly once), values dropped exactly once.
#![no_main]

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use concur_core::{Error, Future, Promise, promise};
use concur_fuzz::{Bytes, PLANTED, tolerate_planted_panics};
use libfuzzer_sys::fuzz_target;

thread_local! {
    /// Drops seen per value id, for the current input.
    static DROPS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// A value that counts its drops.
struct Tracked(usize);

impl Tracked {
    fn new() -> Self {
        DROPS.with(|d| {
            let mut d = d.borrow_mut();
            d.push(0);
            Tracked(d.len() - 1)
        })
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        DROPS.with(|d| {
            let mut d = d.borrow_mut();
            d[self.0] += 1;
            assert_eq!(d[self.0], 1, "value {} dropped twice", self.0);
        });
    }
}

/// What the model says the future is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    Pending,
    Running,
    Value(usize),
    Failed,
    Abandoned,
    Cancelled,
    /// The value was moved out by `into_result` (no handle is left to look).
    Taken,
}

impl State {
    fn done(self) -> bool {
        !matches!(self, State::Pending | State::Running)
    }
}

/// Per-callback counters shared with the callbacks: runs and drops of the closure.
#[derive(Default)]
struct CallbackLog {
    runs: Vec<AtomicU32>,
    drops: Vec<AtomicU32>,
}

/// Increments a drop counter when the closure holding it goes.
struct DropGuard(Arc<CallbackLog>, usize);

impl Drop for DropGuard {
    fn drop(&mut self) {
        // ORDERING: single-threaded target; the counters are only read on this thread.
        self.0.drops[self.1].fetch_add(1, Ordering::Relaxed);
    }
}

const MAX_CALLBACKS: usize = 64;

fn check_outcome(state: State, got: Option<Result<&Tracked, Error>>) {
    match (state, got) {
        (State::Pending | State::Running, None) => {}
        (State::Value(id), Some(Ok(v))) => assert_eq!(v.0, id),
        (State::Failed, Some(Err(Error::Failed(f)))) => {
            assert!(f.is_error() && !f.is_abandoned(), "{f:?}")
        }
        (State::Abandoned, Some(Err(Error::Failed(f)))) => assert!(f.is_abandoned(), "{f:?}"),
        (State::Cancelled, Some(Err(Error::Cancelled))) => {}
        (state, got) => panic!(
            "model says {state:?}, future says {:?}",
            got.map(|r| r.map(|v| v.0))
        ),
    }
}

fn run(data: &[u8]) {
    tolerate_planted_panics();
    concur_core::set_callback_panic_hook(|_| {});
    DROPS.with(|d| d.borrow_mut().clear());
    let log = Arc::new(CallbackLog {
        runs: (0..MAX_CALLBACKS).map(|_| AtomicU32::new(0)).collect(),
        drops: (0..MAX_CALLBACKS).map(|_| AtomicU32::new(0)).collect(),
    });
    let mut callbacks = 0usize;
    // Callbacks added while the future was pending (they are registered until it is done).
    let mut registered = 0usize;

    let (p, f) = promise::<Tracked>();
    let mut producer: Option<Promise<Tracked>> = Some(p);
    let mut handles: Vec<Future<Tracked>> = vec![f];
    let mut state = State::Pending;

    let mut input = Bytes::new(data);
    let mut steps = 0;
    while !input.is_empty() && steps < 256 {
        steps += 1;
        let op = input.below(14);
        let pick = input.byte() as usize;
        let was_done = state.done();
        match op {
            0 if !handles.is_empty() && handles.len() < 16 => {
                let h = handles[pick % handles.len()].clone();
                handles.push(h);
            }
            1 if !handles.is_empty() => {
                handles.swap_remove(pick % handles.len());
            }
            2 if !handles.is_empty() => {
                let expect = matches!(state, State::Pending | State::Cancelled);
                assert_eq!(handles[pick % handles.len()].cancel(), expect, "{state:?}");
                if state == State::Pending {
                    state = State::Cancelled;
                }
            }
            3 | 4 => {
                if let Some(p) = producer.take() {
                    let refused = if op == 3 {
                        p.set_result(Tracked::new())
                            .err()
                            .map(|e| drop(e.into_inner()))
                    } else {
                        p.set_error(std::fmt::Error).err().map(drop)
                    };
                    let cancelled = state == State::Cancelled;
                    assert_eq!(refused.is_some(), cancelled, "{state:?}");
                    if !cancelled {
                        state = if op == 3 {
                            State::Value(DROPS.with(|d| d.borrow().len()) - 1)
                        } else {
                            State::Failed
                        };
                    }
                }
            }
            5 => {
                if producer.take().is_some() && !state.done() {
                    state = State::Abandoned;
                }
            }
            6 => {
                if let Some(p) = &producer {
                    // Only the claim that moves PENDING to RUNNING says true; a second one is
                    // refused and changes nothing.
                    let expect = state == State::Pending;
                    assert_eq!(p.set_running_or_notify_cancel(), expect, "{state:?}");
                    assert_eq!(p.is_cancelled(), state == State::Cancelled);
                    if state == State::Pending {
                        state = State::Running;
                    }
                }
            }
            7 if !handles.is_empty() => {
                check_outcome(state, handles[pick % handles.len()].try_result());
            }
            8 if !handles.is_empty() => {
                let h = &handles[pick % handles.len()];
                match h.result_timeout(Duration::ZERO) {
                    Err(Error::TimedOut) => assert!(!state.done(), "{state:?}"),
                    other => check_outcome(state, Some(other)),
                }
                assert_eq!(h.wait_timeout(Duration::ZERO), state.done());
            }
            9 if !handles.is_empty() && callbacks < MAX_CALLBACKS => {
                let k = callbacks;
                callbacks += 1;
                let guard = DropGuard(Arc::clone(&log), k);
                let planted = pick % 5 == 0;
                handles[pick % handles.len()].add_done_callback(move |f| {
                    let _keep = &guard;
                    assert!(f.is_done(), "a callback ran before the future was done");
                    // ORDERING: single-threaded target, see DropGuard.
                    guard.0.runs[guard.1].fetch_add(1, Ordering::Relaxed);
                    if planted {
                        std::panic::panic_any(PLANTED);
                    }
                });
                if !state.done() {
                    registered += 1;
                }
            }
            10 if !handles.is_empty() && state.done() => {
                let h = handles.swap_remove(pick % handles.len());
                let last = handles.is_empty();
                match (h.into_result(), state) {
                    (Err(Error::Cancelled), State::Cancelled) => {}
                    (Err(Error::Shared), State::Value(_) | State::Failed | State::Abandoned) => {
                        assert!(!last)
                    }
                    (Ok(v), State::Value(id)) => {
                        assert!(last);
                        assert_eq!(v.0, id);
                        state = State::Taken;
                    }
                    (Err(Error::Failed(f)), State::Failed | State::Abandoned) => {
                        assert!(last);
                        assert_eq!(f.is_abandoned(), state == State::Abandoned);
                    }
                    (got, state) => panic!(
                        "into_result: model says {state:?}, got {:?}",
                        got.map(|v| v.0)
                    ),
                }
            }
            11 if !handles.is_empty() => {
                let h = &handles[pick % handles.len()];
                assert_eq!(h.is_done(), state.done(), "{state:?}");
                assert_eq!(h.is_cancelled(), state == State::Cancelled);
                assert_eq!(h.is_running(), state == State::Running);
                assert_eq!(h.has_waiters(), !state.done() && registered > 0);
            }
            12 if !handles.is_empty() => {
                let h = &handles[pick % handles.len()];
                match (h.try_error(), state) {
                    (None, State::Pending | State::Running) => {}
                    (Some(Ok(None)), State::Value(_)) => {}
                    (Some(Ok(Some(f))), State::Failed | State::Abandoned) => {
                        assert_eq!(f.is_abandoned(), state == State::Abandoned)
                    }
                    (Some(Err(Error::Cancelled)), State::Cancelled) => {}
                    (got, state) => panic!("try_error: model says {state:?}, got {got:?}"),
                }
            }
            13 if handles.len() >= 2 => {
                let (a, b) = (pick % handles.len(), (pick / 16) % handles.len());
                assert!(handles[a] == handles[b]);
            }
            _ => {}
        }
        // Callbacks: each ran exactly once once the future is done, never before, and a
        // run callback's closure was dropped.
        let done = state.done();
        if done && !was_done {
            registered = 0;
        }
        for k in 0..callbacks {
            // ORDERING: see DropGuard.
            let runs = log.runs[k].load(Ordering::Relaxed);
            assert_eq!(
                runs,
                u32::from(done),
                "callback {k} ran {runs} times ({state:?})"
            );
            assert_eq!(log.drops[k].load(Ordering::Relaxed), u32::from(done));
        }
    }

    // Tear down: whatever is left, every value and every callback goes exactly once.
    drop(producer);
    drop(handles);
    for k in 0..callbacks {
        // ORDERING: see DropGuard.
        assert_eq!(
            log.drops[k].load(Ordering::Relaxed),
            1,
            "callback {k} leaked"
        );
        assert_eq!(
            log.runs[k].load(Ordering::Relaxed),
            1,
            "callback {k} never ran"
        );
    }
    DROPS.with(|d| {
        for (id, n) in d.borrow().iter().enumerate() {
            assert_eq!(*n, 1, "value {id} dropped {n} times");
        }
    });
}

fuzz_target!(|data: &[u8]| run(data));
