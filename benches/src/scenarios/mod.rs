//! The scenarios, one module each. A scenario is a [`Scenario`](crate::contender::Scenario):
//! ours and its peers doing the same job through their public APIs.

pub mod as_completed;
pub mod pingpong;
pub mod pool;
pub mod process;
pub mod process_spaced;
pub mod same_thread;
pub mod wait_any;
