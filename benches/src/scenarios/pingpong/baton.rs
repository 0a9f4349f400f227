//! The message a ping-pong passes: the receiving end of the sender's *next* message.
//!
//! A one-shot cell carries one message, so every message travels in a fresh pair, and the
//! receiver must hold that pair's receiving end before it blocks. Each message therefore
//! carries the receiving end of the next one: one pair created, completed and waited on per
//! message, through each library's public API and nothing else.

use std::sync::mpsc;

use crate::peers::condvar_slot;

/// One library's one-shot primitive, as used by the ping-pong.
///
/// `Self` is the receiving end of a message whose payload is another `Self`.
pub trait Baton: Sized + Send + 'static {
    /// The sending end.
    type Sender: Send + 'static;
    /// A fresh pair.
    fn pair() -> (Self::Sender, Self);
    /// Sends `next` (waking the receiver if it is blocked).
    fn pass(to: Self::Sender, next: Self);
    /// Blocks until the message arrives; `None` if its sender was dropped unsent.
    fn take(self) -> Option<Self>;
}

/// Ours, read by reference: `promise()`, `set_result`, a blocking `result()`, then a clone of
/// the handle inside (one reference count, as a reader of a shared outcome would do).
pub struct OursResult(concur_core::Future<OursResult>);

impl Baton for OursResult {
    type Sender = concur_core::Promise<OursResult>;
    fn pair() -> (Self::Sender, Self) {
        let (promise, future) = concur_core::promise();
        (promise, Self(future))
    }
    fn pass(to: Self::Sender, next: Self) {
        to.set_result(next).unwrap();
    }
    fn take(self) -> Option<Self> {
        self.0.result().ok().map(|next| Self(next.0.clone()))
    }
}

/// Ours, moved out: `promise()`, `set_result`, a blocking `into_result()`.
pub struct OursIntoResult(concur_core::Future<OursIntoResult>);

impl Baton for OursIntoResult {
    type Sender = concur_core::Promise<OursIntoResult>;
    fn pair() -> (Self::Sender, Self) {
        let (promise, future) = concur_core::promise();
        (promise, Self(future))
    }
    fn pass(to: Self::Sender, next: Self) {
        to.set_result(next).unwrap();
    }
    fn take(self) -> Option<Self> {
        self.0.into_result().ok()
    }
}

/// The `oneshot` crate: blocking `recv`.
pub struct Oneshot(oneshot::Receiver<Oneshot>);

impl Baton for Oneshot {
    type Sender = oneshot::Sender<Oneshot>;
    fn pair() -> (Self::Sender, Self) {
        let (tx, rx) = oneshot::channel();
        (tx, Self(rx))
    }
    fn pass(to: Self::Sender, next: Self) {
        if to.send(next).is_err() {
            panic!("oneshot: the receiver is gone");
        }
    }
    fn take(self) -> Option<Self> {
        self.0.recv().ok()
    }
}

/// `tokio::sync::oneshot`: `blocking_recv`.
pub struct Tokio(tokio::sync::oneshot::Receiver<Tokio>);

impl Baton for Tokio {
    type Sender = tokio::sync::oneshot::Sender<Tokio>;
    fn pair() -> (Self::Sender, Self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (tx, Self(rx))
    }
    fn pass(to: Self::Sender, next: Self) {
        if to.send(next).is_err() {
            panic!("tokio: the receiver is gone");
        }
    }
    fn take(self) -> Option<Self> {
        self.0.blocking_recv().ok()
    }
}

/// crossbeam-channel `bounded(1)`: blocking `recv`.
pub struct Crossbeam(crossbeam_channel::Receiver<Crossbeam>);

impl Baton for Crossbeam {
    type Sender = crossbeam_channel::Sender<Crossbeam>;
    fn pair() -> (Self::Sender, Self) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        (tx, Self(rx))
    }
    fn pass(to: Self::Sender, next: Self) {
        if to.send(next).is_err() {
            panic!("crossbeam: the receiver is gone");
        }
    }
    fn take(self) -> Option<Self> {
        self.0.recv().ok()
    }
}

/// std `mpsc::sync_channel(1)`: blocking `recv`.
pub struct StdMpsc(mpsc::Receiver<StdMpsc>);

impl Baton for StdMpsc {
    type Sender = mpsc::SyncSender<StdMpsc>;
    fn pair() -> (Self::Sender, Self) {
        let (tx, rx) = mpsc::sync_channel(1);
        (tx, Self(rx))
    }
    fn pass(to: Self::Sender, next: Self) {
        if to.send(next).is_err() {
            panic!("std mpsc: the receiver is gone");
        }
    }
    fn take(self) -> Option<Self> {
        self.0.recv().ok()
    }
}

/// The Mutex + Condvar slot: blocking `recv`.
pub struct MutexCondvar(condvar_slot::Receiver<MutexCondvar>);

impl Baton for MutexCondvar {
    type Sender = condvar_slot::Sender<MutexCondvar>;
    fn pair() -> (Self::Sender, Self) {
        let (tx, rx) = condvar_slot::channel();
        (tx, Self(rx))
    }
    fn pass(to: Self::Sender, next: Self) {
        to.send(next);
    }
    fn take(self) -> Option<Self> {
        self.0.recv()
    }
}
