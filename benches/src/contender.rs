//! What a scenario is made of: contenders (ours and peers) that each time a batch of operations.
//!
//! Both the criterion suites and the `compare` binary drive the same contenders, so a number in
//! one can be checked against the other.

use std::time::Duration;

use crate::latency::Recorder;

/// Something that can time `iters` operations of its scenario.
///
/// It may keep state between batches (a long-lived partner thread, say), built once by
/// [`Contender::start`].
pub trait Batch {
    /// Runs `iters` operations and returns how long they took, setup excluded.
    fn run(&mut self, iters: u64) -> Duration;

    /// As [`run`](Batch::run), timing every operation into `calls` as well (see
    /// [`crate::latency`]); `None` if this contender does not time single operations.
    fn run_recorded(&mut self, iters: u64, calls: &mut Recorder) -> Option<Duration> {
        let _ = (iters, calls);
        None
    }
}

/// A contender whose one timed loop serves both [`Batch`] methods, timing each operation when
/// given a [`Recorder`], so its median and its distribution come from the same code.
pub trait Played {
    /// Runs `iters` operations, each timed into `calls` if given; returns the total time.
    fn play(&mut self, iters: u64, calls: Option<&mut Recorder>) -> Duration;
}

impl<P: Played> Batch for P {
    fn run(&mut self, iters: u64) -> Duration {
        self.play(iters, None)
    }

    fn run_recorded(&mut self, iters: u64, calls: &mut Recorder) -> Option<Duration> {
        Some(self.play(iters, Some(calls)))
    }
}

/// Whose code a contender measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// concur's public API.
    Ours,
    /// A peer library (or a hand-written baseline).
    Peer,
}

/// One implementation of a scenario.
pub struct Contender {
    /// Short stable name, e.g. `ours/result` or `crossbeam`: a criterion benchmark id and a
    /// column of `compare`'s output.
    pub name: &'static str,
    /// Ours or a peer.
    pub side: Side,
    start: Box<dyn Fn() -> Box<dyn Batch>>,
}

impl Contender {
    /// A contender whose batches are built by `start`.
    pub fn new(
        name: &'static str,
        side: Side,
        start: impl Fn() -> Box<dyn Batch> + 'static,
    ) -> Self {
        Self {
            name,
            side,
            start: Box::new(start),
        }
    }

    /// Sets up a fresh batch runner (threads and all).
    pub fn start(&self) -> Box<dyn Batch> {
        (self.start)()
    }
}

impl std::fmt::Debug for Contender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contender")
            .field("name", &self.name)
            .field("side", &self.side)
            .finish_non_exhaustive()
    }
}

/// A named scenario and its contenders, ours first.
#[derive(Debug)]
pub struct Scenario {
    /// The scenario's name: a criterion group (`core/<name>`) and `compare`'s first column.
    pub name: &'static str,
    /// Ours and the peers.
    pub contenders: Vec<Contender>,
}

impl Scenario {
    /// Our contenders.
    pub fn ours(&self) -> impl Iterator<Item = &Contender> {
        self.contenders.iter().filter(|c| c.side == Side::Ours)
    }

    /// The peers' contenders.
    pub fn peers(&self) -> impl Iterator<Item = &Contender> {
        self.contenders.iter().filter(|c| c.side == Side::Peer)
    }
}
