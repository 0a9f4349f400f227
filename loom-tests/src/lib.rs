//! Loom models of concur-core live in `tests/`; this crate has no library code.
