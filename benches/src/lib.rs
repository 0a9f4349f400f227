//! Benchmarks of concur side by side with its peers, shared by the criterion suites
//! (`benches/`) and the `compare` binary.
//!
//! - [`scenarios`]: one module per scenario; each builds a [`contender::Scenario`] of ours
//!   and the peers doing the same job through their public APIs.
//! - [`measure`]: interleaved rounds and medians; [`budget`]: DESIGN §6 judged;
//!   [`report`]: `compare`'s output.
//! - [`alloc_count`], [`footprint`]: allocations per operation and handle sizes.
//! - [`affinity`]: CPU pinning for the one-CPU scenarios.
//!
//! Adding a scenario (wait_any, as_completed, pool, process): a module under `scenarios/`
//! returning a `Scenario`, a criterion group in `benches/core.rs` (or a new bench file), a
//! call in `src/bin/compare.rs`, and its budget in [`budget`].

pub mod affinity;
pub mod alloc_count;
pub mod budget;
pub mod contender;
pub mod footprint;
pub mod measure;
pub mod peers;
pub mod report;
pub mod scenarios;
