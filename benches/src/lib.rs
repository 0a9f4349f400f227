//! Benchmarks for concur live in `benches/` and `src/bin/`; this crate has no library code.
