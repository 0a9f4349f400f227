//! `same_thread`: create + complete + get on one thread, the whole life of a one-shot cell.

use std::hint::black_box;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::contender::{Batch, Contender, Scenario, Side};
use crate::peers::condvar_slot;

/// The scenario's name.
pub const NAME: &str = "same_thread";

/// Ours: `promise()`, `set_result`, then `result()` (the value by reference).
#[inline]
pub fn ours_result(v: u64) -> u64 {
    let (promise, future) = concur_core::promise();
    promise.set_result(v).unwrap();
    *future.result().unwrap()
}

/// Ours: `promise()`, `set_result`, then `into_result()` (the value moved out).
#[inline]
pub fn ours_into_result(v: u64) -> u64 {
    let (promise, future) = concur_core::promise();
    promise.set_result(v).unwrap();
    future.into_result().unwrap()
}

/// The `oneshot` crate: `channel`, `send`, blocking `recv`.
#[inline]
pub fn oneshot(v: u64) -> u64 {
    let (tx, rx) = oneshot::channel();
    tx.send(v).unwrap();
    rx.recv().unwrap()
}

/// `tokio::sync::oneshot`: `channel`, `send`, `try_recv` (`blocking_recv` would enter tokio's
/// block-on machinery for a value that is already there).
#[inline]
pub fn tokio(v: u64) -> u64 {
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    tx.send(v).unwrap();
    rx.try_recv().unwrap()
}

/// crossbeam-channel `bounded(1)`: `send`, `recv`.
#[inline]
pub fn crossbeam(v: u64) -> u64 {
    let (tx, rx) = crossbeam_channel::bounded(1);
    tx.send(v).unwrap();
    rx.recv().unwrap()
}

/// std `mpsc::sync_channel(1)`: `send`, `recv`.
#[inline]
pub fn std_mpsc(v: u64) -> u64 {
    let (tx, rx) = mpsc::sync_channel(1);
    tx.send(v).unwrap();
    rx.recv().unwrap()
}

/// The Mutex + Condvar slot: `send`, `recv`.
#[inline]
pub fn mutex_condvar(v: u64) -> u64 {
    let (tx, rx) = condvar_slot::channel();
    tx.send(v);
    rx.recv().unwrap()
}

/// Times a loop of `op`, monomorphised so the operation inlines into it.
struct Loop<F>(F);

impl<F: Fn(u64) -> u64> Batch for Loop<F> {
    fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for i in 0..iters {
            black_box((self.0)(black_box(i)));
        }
        start.elapsed()
    }
}

macro_rules! contender {
    ($name:literal, $side:expr, $op:path) => {
        Contender::new($name, $side, || Box::new(Loop($op)))
    };
}

/// The scenario, ours first.
pub fn scenario() -> Scenario {
    Scenario {
        name: NAME,
        contenders: vec![
            contender!("ours/result", Side::Ours, ours_result),
            contender!("ours/into_result", Side::Ours, ours_into_result),
            contender!("oneshot", Side::Peer, oneshot),
            contender!("tokio", Side::Peer, tokio),
            contender!("crossbeam", Side::Peer, crossbeam),
            contender!("std_mpsc", Side::Peer, std_mpsc),
            contender!("mutex_condvar", Side::Peer, mutex_condvar),
        ],
    }
}
