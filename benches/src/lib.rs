//! Benchmarks of concur side by side with its peers, shared by the criterion suites
//! (`benches/`) and the `compare` binary.
//!
//! - [`scenarios`]: one module per scenario; each builds a [`contender::Scenario`] of ours
//!   and the peers doing the same job through their public APIs.
//! - [`measure`]: interleaved rounds and medians; [`budget`]: DESIGN §6 judged;
//!   [`report`]: `compare`'s output.
//! - [`latency`]: per-call distributions (HDR histograms, block means) of the contenders that
//!   time single calls; [`runs`]: such contenders measured one at a time, in runs (issue 13's
//!   protocol); [`tail`]: the tail-latency budgets judged from them.
//! - [`alloc_count`], [`footprint`]: allocations per operation and handle sizes.
//! - [`affinity`]: CPU pinning for the one-CPU scenarios; [`procfs`]: thread states and CPU
//!   time from `/proc`; [`line_trip`]: the machine's cache-line round trip between its CPUs.
//! - [`python`]: the CPython peer, `python/peers.py` run as a subprocess.
//!
//! Adding a scenario (process): a module under `scenarios/` returning a `Scenario`, a
//! criterion group in `benches/core.rs` or `benches/pool.rs` (or a new bench file), a call in
//! `src/bin/compare.rs`, its budget in [`budget`], and its CPython figure in `python/peers.py`.

pub mod affinity;
pub mod alloc_count;
pub mod budget;
pub mod contender;
pub mod footprint;
pub mod latency;
pub mod line_trip;
pub mod measure;
pub mod others;
pub mod peers;
pub mod procfs;
pub mod python;
pub mod report;
pub mod runs;
pub mod scenarios;
pub mod tail;
