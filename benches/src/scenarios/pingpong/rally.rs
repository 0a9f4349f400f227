//! A ping-pong between the measuring thread and a long-lived partner thread.

use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::baton::Baton;
use crate::affinity;
use crate::contender::Batch;
use crate::latency::{Laps, Recorder};

/// The measuring side of a ping-pong; the partner lives until this is dropped.
///
/// One round trip: we create a pair, send its receiving end to the partner (waking it from its
/// blocking wait), and block until the partner's reply arrives, which it sends the same way.
pub struct Rally<B: Baton> {
    to_partner: Option<B::Sender>,
    inbox: Option<B>,
    partner: Option<JoinHandle<()>>,
    placement: Placement,
}

/// Where the two threads of a rally run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placement {
    /// The measuring thread's CPU (pinned only while it measures); `None`: anywhere.
    pub measurer: Option<usize>,
    /// The partner thread's CPU; `None`: anywhere.
    pub partner: Option<usize>,
}

impl Placement {
    /// Wherever the scheduler puts them.
    pub const FREE: Placement = Placement {
        measurer: None,
        partner: None,
    };

    /// Both threads on `cpu`.
    pub fn same(cpu: usize) -> Self {
        Self {
            measurer: Some(cpu),
            partner: Some(cpu),
        }
    }

    /// Each thread on its own CPU.
    pub fn split(measurer: usize, partner: usize) -> Self {
        Self {
            measurer: Some(measurer),
            partner: Some(partner),
        }
    }

    /// Whether any thread is pinned.
    pub fn is_pinned(&self) -> bool {
        self.measurer.is_some() || self.partner.is_some()
    }
}

impl<B: Baton> Rally<B> {
    /// Starts the partner thread, placed as `placement` says.
    pub fn start(placement: Placement) -> Self {
        let cpu = placement.partner;
        let (to_partner, partner_inbox) = B::pair();
        let (to_us, inbox) = B::pair();
        let partner = thread::Builder::new()
            .name("pingpong-partner".into())
            .spawn(move || {
                let _pin = cpu.map(affinity::pin_current_thread);
                relay(partner_inbox, to_us);
            })
            .expect("cannot spawn the ping-pong partner");
        Self {
            to_partner: Some(to_partner),
            inbox: Some(inbox),
            partner: Some(partner),
            placement,
        }
    }

    /// Plays `n` round trips and returns how long they took.
    pub fn round_trips(&mut self, n: u64) -> Duration {
        self.play(n, None)
    }

    /// As [`round_trips`](Rally::round_trips), each round trip recorded in `calls` if given.
    fn play(&mut self, n: u64, calls: Option<&mut Recorder>) -> Duration {
        let _pin = self.placement.measurer.map(affinity::pin_current_thread);
        let mut to_partner = self.to_partner.take().expect("rally in use");
        let mut inbox = self.inbox.take().expect("rally in use");
        let mut laps = Laps::start(calls);
        for _ in 0..n {
            let (to_partner_next, partner_inbox_next) = B::pair();
            B::pass(to_partner, partner_inbox_next);
            to_partner = to_partner_next;
            inbox = inbox.take().expect("the ping-pong partner hung up");
            laps.lap();
        }
        let elapsed = laps.total();
        self.to_partner = Some(to_partner);
        self.inbox = Some(inbox);
        elapsed
    }
}

/// The partner: wait for a message, reply with a fresh one; stop when we hang up.
fn relay<B: Baton>(mut inbox: B, mut to_us: B::Sender) {
    while let Some(next_inbox) = inbox.take() {
        inbox = next_inbox;
        let (to_us_next, our_inbox_next) = B::pair();
        B::pass(to_us, our_inbox_next);
        to_us = to_us_next;
    }
}

impl<B: Baton> Batch for Rally<B> {
    fn run(&mut self, iters: u64) -> Duration {
        self.round_trips(iters)
    }

    fn run_recorded(&mut self, iters: u64, calls: &mut Recorder) -> Option<Duration> {
        Some(self.play(iters, Some(calls)))
    }
}

impl<B: Baton> Drop for Rally<B> {
    fn drop(&mut self) {
        // Hanging up ends the partner's wait (each peer reports a dropped sender).
        drop(self.to_partner.take());
        if let Some(partner) = self.partner.take() {
            let _ = partner.join();
        }
    }
}
