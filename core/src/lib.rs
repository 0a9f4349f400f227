//! # concur-core
//!
//! Python's `concurrent.futures` `Future`, done right in Rust: a lock-free, model-checked
//! one-shot result cell that any executor can hand out, any number of readers can wait on
//! (blocking, with a timeout, or `.await` from any async runtime), and that never leaves a
//! reader hanging when its producer vanishes.
//!
//! - [`promise`] makes a pending [`Future`] and its unique producer [`Promise`].
//! - [`Future`]: `cancel`, `is_done`, `result` / `result_timeout` / `result_deadline` /
//!   `try_result`, `error` (Python's `exception`), `add_done_callback`, `into_result`, and
//!   `.await`.
//! - [`Executor`]: implement one method, get `submit` and `map`.
//!
//! ```
//! use concur_core::{promise, Error};
//!
//! let (promise, future) = promise::<u64>();
//! let reader = future.clone();
//! std::thread::spawn(move || promise.set_result(323u64.pow(2)).unwrap());
//! assert_eq!(*reader.result().unwrap(), 104_329);
//! ```
//!
//! ## Design
//!
//! One atomic word holds the phase (PENDING, RUNNING, FINISHED, CANCELLED), a LOCK bit, two
//! ownership flags and the head of an intrusive stack of waiter nodes. Completion writes the
//! result slot, then publishes the phase and detaches the whole waiter list in one CAS, so no
//! waiter can be missed and no transient "completing" state exists for anyone to spin on. A
//! blocking waiter keeps its node on its own stack (no allocation); a waiter that times out
//! unlinks its node under LOCK, and the completer never waits for it. Every rule of the protocol
//! is checked by loom models and Miri twins in `loom-tests`; see the README.
//!
//! ## Thread safety
//!
//! A [`Future<T>`] is `Send` and `Sync` exactly when `T` is both: clones on several threads
//! read `&T` at once, and the last one may move or drop the `T` anywhere. A [`Promise<T>`]
//! only needs `T: Send`. So a future of a non-`Send` value cannot leave its thread:
//!
//! ```compile_fail
//! fn send_it<T: Send>(_: T) {}
//! let (_promise, future) = concur_core::promise::<std::rc::Rc<u8>>();
//! send_it(future); // error: `Rc<u8>` cannot be sent between threads safely
//! ```
//!
//! and neither can a future of a `Send` but not `Sync` value, whose clones would share it:
//!
//! ```compile_fail
//! fn send_it<T: Send>(_: T) {}
//! let (_promise, future) = concur_core::promise::<std::cell::Cell<u8>>();
//! send_it(future); // error: `Cell<u8>` cannot be shared between threads safely
//! ```
//!
//! ## Features
//!
//! - `std` (default): blocking waits, catching panics in tasks and callbacks, [`Executor::map`].
//!   Without it the crate is `no_std` + `alloc`: everything but blocking waits works.
#![no_std]
// Without `std` the blocking waits are gone, and with them the only users of a few protocol
// pieces (FIRED, the loom probe); they stay compiled so both builds share one protocol.
#![cfg_attr(not(feature = "std"), allow(unused_imports, dead_code))]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "std")]
mod as_completed;
mod atomic_waker;
mod awaiting;
mod backoff;
#[cfg(feature = "std")]
mod blocking;
mod callback;
mod cell;
#[cfg(feature = "std")]
mod driven;
mod error;
mod executor;
mod failure;
mod future;
mod header;
#[cfg(feature = "std")]
mod hook;
#[cfg(feature = "std")]
mod map;
mod node;
mod promise;
mod sync;
mod task;
#[cfg(feature = "std")]
mod wait;
#[cfg(feature = "std")]
mod wait_set;
mod waitable;
mod word;

#[cfg(feature = "std")]
pub use as_completed::{AsCompleted, AsCompletedError, TimeoutError, as_completed};
pub use awaiting::{IntoResultFuture, ResultFuture};
pub use callback::CallbackPanic;
#[cfg(feature = "std")]
pub use callback::set_callback_panic_hook;
#[cfg(feature = "std")]
pub use driven::{Drive, driven_promise};
pub use error::{Error, SetError};
pub use executor::{Executor, SubmitError};
pub use failure::Failure;
pub use future::Future;
#[cfg(feature = "std")]
pub use hook::{Blocking, BlockingHook, BlockingMany, Needs, Verdict, with_blocking_hook};
#[cfg(feature = "std")]
pub use map::{Map, MapOptions};
pub use promise::{Promise, promise};
pub use task::Task;
#[cfg(feature = "std")]
pub use wait::{ReturnWhen, Waited, wait};
pub use waitable::{AnyFuture, Waitable};

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
