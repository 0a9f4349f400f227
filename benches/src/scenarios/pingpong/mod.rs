//! `pingpong`: a waiter blocked in another thread is woken, and replies the same way; the
//! cost of one round trip (two fresh pairs, two cross-thread wake-ups).
//!
//! Four placements: free (the scheduler's choice), both threads pinned to one CPU in a process
//! that may use several ([`PINNED`]), each thread pinned to its own CPU ([`SPLIT`]), and a
//! whole process restricted to one CPU ([`ONE_CPU`], which `compare` runs in a child process
//! pinned before anything else runs). Free placement on a busy machine is a mix of the split
//! and the shared cases (the scheduler often wakes the partner on the waker's CPU), so the
//! pinned placements are the ones to read when tuning.

pub mod baton;
pub mod rally;

use baton::Baton;
use rally::{Placement, Rally};

use crate::contender::{Contender, Scenario, Side};

/// Free placement.
pub const NAME: &str = "pingpong";
/// Both threads pinned to one CPU, in a process that may use more.
pub const PINNED: &str = "pingpong_pinned";
/// Each thread pinned to its own CPU.
pub const SPLIT: &str = "pingpong_split";
/// The whole process restricted to one CPU.
pub const ONE_CPU: &str = "pingpong_1cpu";

fn contender<B: Baton>(name: &'static str, side: Side, placement: Placement) -> Contender {
    Contender::new(name, side, move || Box::new(Rally::<B>::start(placement)))
}

/// The scenario under `name`, its threads placed as `placement` says.
pub fn scenario(name: &'static str, placement: Placement) -> Scenario {
    if placement.is_pinned() {
        settle_spin_decision();
    }
    Scenario {
        name,
        contenders: vec![
            contender::<baton::OursResult>("ours/result", Side::Ours, placement),
            contender::<baton::OursIntoResult>("ours/into_result", Side::Ours, placement),
            contender::<baton::Oneshot>("oneshot", Side::Peer, placement),
            contender::<baton::Tokio>("tokio", Side::Peer, placement),
            contender::<baton::Crossbeam>("crossbeam", Side::Peer, placement),
            contender::<baton::StdMpsc>("std_mpsc", Side::Peer, placement),
            contender::<baton::MutexCondvar>("mutex_condvar", Side::Peer, placement),
        ],
    }
}

/// The core decides once per process, at its first blocking wait, whether spinning can help
/// (more than one CPU available to the thread that asks). A pinned thread would answer "no"
/// for the whole process, so make that first wait happen unpinned: the pinned scenario is
/// about a multi-CPU process whose two threads happen to share a CPU.
fn settle_spin_decision() {
    let mut rally = Rally::<baton::OursIntoResult>::start(Placement::FREE);
    rally.round_trips(100);
}
