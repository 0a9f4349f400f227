//! `pingpong`: a waiter blocked in another thread is woken, and replies the same way; the
//! cost of one round trip (two fresh pairs, two cross-thread wake-ups).
//!
//! Three placements: free (the scheduler's choice on a multi-core machine), both threads
//! pinned to one CPU in a process that may use several ([`PINNED`]), and a whole process
//! restricted to one CPU ([`ONE_CPU`], which `compare` runs in a child process pinned before
//! anything else runs).

pub mod baton;
pub mod rally;

use baton::Baton;
use rally::Rally;

use crate::contender::{Contender, Scenario, Side};

/// Free placement.
pub const NAME: &str = "pingpong";
/// Both threads pinned to one CPU, in a process that may use more.
pub const PINNED: &str = "pingpong_pinned";
/// The whole process restricted to one CPU.
pub const ONE_CPU: &str = "pingpong_1cpu";

fn contender<B: Baton>(name: &'static str, side: Side, cpu: Option<usize>) -> Contender {
    Contender::new(name, side, move || Box::new(Rally::<B>::start(cpu)))
}

/// The scenario under `name`, with both threads pinned to `cpu` if given.
pub fn scenario(name: &'static str, cpu: Option<usize>) -> Scenario {
    if cpu.is_some() {
        settle_spin_decision();
    }
    Scenario {
        name,
        contenders: vec![
            contender::<baton::OursResult>("ours/result", Side::Ours, cpu),
            contender::<baton::OursIntoResult>("ours/into_result", Side::Ours, cpu),
            contender::<baton::Oneshot>("oneshot", Side::Peer, cpu),
            contender::<baton::Tokio>("tokio", Side::Peer, cpu),
            contender::<baton::Crossbeam>("crossbeam", Side::Peer, cpu),
            contender::<baton::StdMpsc>("std_mpsc", Side::Peer, cpu),
            contender::<baton::MutexCondvar>("mutex_condvar", Side::Peer, cpu),
        ],
    }
}

/// The core decides once per process, at its first blocking wait, whether spinning can help
/// (more than one CPU available to the thread that asks). A pinned thread would answer "no"
/// for the whole process, so make that first wait happen unpinned: the pinned scenario is
/// about a multi-CPU process whose two threads happen to share a CPU.
fn settle_spin_decision() {
    let mut rally = Rally::<baton::OursIntoResult>::start(None);
    rally.round_trips(100);
}
