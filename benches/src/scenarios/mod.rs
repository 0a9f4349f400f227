//! The scenarios, one module each. A scenario is a [`Scenario`](crate::contender::Scenario):
//! ours and its peers doing the same job through their public APIs.

pub mod pingpong;
pub mod same_thread;
