//! Hand-written peers; the library peers (`oneshot`, `tokio`, `crossbeam-channel`, std) are
//! used directly by the scenarios.

pub mod condvar_slot;
