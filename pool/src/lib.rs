//! # concur-pool
//!
//! Python's `concurrent.futures.ThreadPoolExecutor` for Rust, handing out
//! [`concur_core::Future`]s.
//!
//! - [`ThreadPool`]: `submit`, `map` / `map_with`, `shutdown(wait, cancel_futures)`, `scope`;
//!   `Drop` shuts down and waits. It implements [`concur_core::Executor`], so its futures mix
//!   with any other executor's in [`concur_core::wait`] and [`concur_core::as_completed`].
//! - [`Builder`]: `max_workers`, `thread_name_prefix`, `initializer`, `stack_size`.
//! - [`BrokenThreadPool`]: why a pool whose initializer failed refuses work.
//!
//! ```
//! use concur_pool::ThreadPool;
//!
//! let pool = ThreadPool::builder().max_workers(2).build().unwrap();
//! let answer = pool.submit(|| 6 * 7).unwrap();
//! assert_eq!(*answer.result().unwrap(), 42);
//! ```
//!
//! ## No self-deadlock
//!
//! The seeds warn that a task waiting on another task of the same pool can deadlock. Here a
//! worker that blocks on a future of its own pool that is still queued runs it inline, and a
//! wait that would close a cycle between running tasks fails with
//! [`Error::Deadlock`](concur_core::Error::Deadlock):
//!
//! ```
//! use concur_pool::ThreadPool;
//!
//! let pool = ThreadPool::new(1).unwrap();
//! let inner_pool = pool.clone();
//! // The seeds' `wait_on_future`: one worker, and its task waits on a task queued behind it.
//! let outer = pool
//!     .submit(move || *inner_pool.submit(|| 5u32.pow(2)).unwrap().result().unwrap())
//!     .unwrap();
//! assert_eq!(*outer.result().unwrap(), 25);
//! ```
//!
//! ## Design
//!
//! Tasks go through one lock-free FIFO queue. Idle workers spin briefly, then sleep; whether a
//! worker may sleep and whether a submit must wake one is decided by read-modify-writes on one
//! control word (module `sleep`, model-checked by loom in `loom-tests/tests/loom_pool.rs`).
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod builder;
mod error;
mod idle_spin;
mod pool;
mod queue;
mod scope;
mod sleep;
mod sync;
mod wait_for;
mod worker;

pub use builder::{Builder, MAX_WORKERS};
pub use error::{BrokenThreadPool, BuildError};
pub use pool::ThreadPool;
pub use scope::{Scope, ScopedFuture};

/// The sleep/wake protocol, exposed only to the loom model (`--cfg concur_loom`); not an API.
#[cfg(concur_loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::sleep::{Control, Idle, Parker, Refused};
}
