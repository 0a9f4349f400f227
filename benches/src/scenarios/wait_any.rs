//! `wait_any`: `wait(.., FirstCompleted)` over N pending futures, N = 1, 16, 1,024 and 10,000,
//! against crossbeam-channel's `Select` over N `bounded(1)` receivers (and CPython's
//! `concurrent.futures.wait`, measured by `python/peers.py`).
//!
//! Two figures per N:
//!
//! - **completion to return** ([`wake_scenario`], `wait_any/N`): a partner thread is blocked
//!   in the wait over N pending futures; the measuring thread completes one of them. The
//!   figure is the time from just before the completing call (`set_result`, `send`) to the
//!   wait returning in the partner, read from one monotonic clock in both threads: the wake-up
//!   and leaving the other N-1 futures (unlinking N-1 nodes, or unregistering N-1 operations).
//!   The clock starts only once the partner is seen asleep in the kernel (`/proc`), after it
//!   has registered everything. Between rounds one fresh future replaces the completed one (a
//!   crossbeam receiver is simply empty again), so set-up is O(1) per round.
//! - **registration** ([`register_scenario`], `wait_register/N`): one thread registers a
//!   waiter with N pending futures and leaves them all, nothing ever completing. Ours is an
//!   `as_completed` iterator made and dropped: it links one node of its wait set into each
//!   future and unlinks them, the same wait-set code `wait` uses, without a timer (a `wait`
//!   with a tiny timeout would add a timer's sleep, some 50 µs of timer slack, to every call
//!   that registers fast). crossbeam: a `Select` built over the N receivers, run with a
//!   deadline already past (it registers every operation, sees the deadline, unregisters
//!   them). CPython: `wait(fs, timeout=0)`, which installs its waiter in every future and
//!   removes it. The slope over N is the cost of one more future.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use concur_core::{Future, Promise, ReturnWhen};
use crossbeam_channel::Select;

use crate::contender::{Batch, Contender, Scenario, Side};
use crate::latency::Recorder;
use crate::procfs;

/// The sizes measured.
pub const SIZES: [usize; 4] = [1, 16, 1_024, 10_000];

/// The size the DESIGN §6 budget names.
pub const BUDGET_SIZE: usize = 10_000;

/// The completion-to-return scenario's name for `n` (`wait_any/<n>`).
pub fn wake_name(n: usize) -> &'static str {
    match n {
        1 => "wait_any/1",
        16 => "wait_any/16",
        1_024 => "wait_any/1024",
        10_000 => "wait_any/10000",
        _ => panic!("wait_any: no scenario for N = {n}"),
    }
}

/// The registration scenario's name for `n` (`wait_register/<n>`).
pub fn register_name(n: usize) -> &'static str {
    match n {
        1 => "wait_register/1",
        16 => "wait_register/16",
        1_024 => "wait_register/1024",
        10_000 => "wait_register/10000",
        _ => panic!("wait_register: no scenario for N = {n}"),
    }
}

/// How long a partner's wait may block before the round is declared hung.
const WAIT_LIMIT: Duration = Duration::from_secs(5);
/// How long the measuring thread waits for the partner's answer.
const ANSWER_LIMIT: Duration = Duration::from_secs(10);

/// One library's "wait for any of N": the partner's side holds the N receiving ends.
pub trait AnyOf: Send + Sized + 'static {
    /// The measuring thread's side: the N sending ends.
    type Setter;
    /// A fresh receiving end that replaces a used one (sent to the partner between rounds).
    type Fresh: Send + 'static;
    /// N pending pairs.
    fn new(n: usize) -> (Self::Setter, Self);
    /// Completes pair `k`; returns the instant taken just before the completing call, and a
    /// fresh receiving end for slot `k` if the old one is used up.
    fn complete(setter: &mut Self::Setter, k: usize) -> (Instant, Option<Self::Fresh>);
    /// Puts a fresh receiving end in slot `k`.
    fn refresh(&mut self, k: usize, fresh: Self::Fresh);
    /// Blocks until one of the N is ready, at most `limit`; returns the instant the wait call
    /// returned, or `None` if it timed out.
    fn wait_any(&mut self, limit: Duration) -> Option<Instant>;
}

/// Ours: `wait(&futures, .., FirstCompleted)`.
pub struct OursWait {
    futures: Vec<Future<u64>>,
}

impl AnyOf for OursWait {
    type Setter = Vec<Promise<u64>>;
    type Fresh = Future<u64>;

    fn new(n: usize) -> (Self::Setter, Self) {
        let (promises, futures) = (0..n).map(|_| concur_core::promise()).unzip();
        (promises, Self { futures })
    }

    fn complete(setter: &mut Self::Setter, k: usize) -> (Instant, Option<Self::Fresh>) {
        let (promise, future) = concur_core::promise();
        let used = std::mem::replace(&mut setter[k], promise);
        let start = Instant::now();
        used.set_result(k as u64)
            .unwrap_or_else(|_| panic!("wait_any: future {k} was not pending"));
        (start, Some(future))
    }

    fn refresh(&mut self, k: usize, fresh: Self::Fresh) {
        self.futures[k] = fresh;
    }

    fn wait_any(&mut self, limit: Duration) -> Option<Instant> {
        let waited = concur_core::wait(&self.futures, Some(limit), ReturnWhen::FirstCompleted);
        let returned = Instant::now();
        (!waited.done().is_empty()).then_some(returned)
    }
}

/// crossbeam-channel: a `Select` over N `bounded(1)` receivers, then the selected `recv`.
pub struct CrossbeamSelect {
    receivers: Vec<crossbeam_channel::Receiver<u64>>,
}

impl AnyOf for CrossbeamSelect {
    type Setter = Vec<crossbeam_channel::Sender<u64>>;
    type Fresh = ();

    fn new(n: usize) -> (Self::Setter, Self) {
        let (senders, receivers) = (0..n).map(|_| crossbeam_channel::bounded(1)).unzip();
        (senders, Self { receivers })
    }

    fn complete(setter: &mut Self::Setter, k: usize) -> (Instant, Option<Self::Fresh>) {
        let start = Instant::now();
        setter[k]
            .send(k as u64)
            .expect("wait_any: crossbeam receiver gone");
        (start, None)
    }

    fn refresh(&mut self, _: usize, (): Self::Fresh) {}

    fn wait_any(&mut self, limit: Duration) -> Option<Instant> {
        let mut select = Select::new();
        for receiver in &self.receivers {
            select.recv(receiver);
        }
        let selected = select.select_timeout(limit).ok();
        let returned = Instant::now();
        let selected = selected?;
        let index = selected.index();
        // A selected operation must be completed; this empties the channel for the next round.
        selected.recv(&self.receivers[index]).ok()?;
        Some(returned)
    }
}

/// A fresh receiving end for slot `k`, sent with the next round's command.
type Refill<F> = Option<(usize, F)>;

/// A partner thread blocked in `W::wait_any`, and the measuring side's senders.
pub struct Wake<W: AnyOf> {
    setter: W::Setter,
    n: usize,
    round: u64,
    /// The fresh receiving end for the slot the last round used up.
    fresh: Refill<W::Fresh>,
    commands: Option<mpsc::Sender<Refill<W::Fresh>>>,
    answers: mpsc::Receiver<Option<Instant>>,
    entered: Arc<AtomicU64>,
    tid: Option<i32>,
    /// Rounds in which the partner was not seen asleep.
    never_asleep: u32,
    partner: Option<JoinHandle<()>>,
}

impl<W: AnyOf> Wake<W> {
    /// N pending pairs and a partner thread waiting for its first round.
    pub fn start(n: usize) -> Self {
        let (setter, mut waiter) = W::new(n);
        let (commands, inbox) = mpsc::channel::<Refill<W::Fresh>>();
        let (to_measurer, answers) = mpsc::channel();
        let (tid_tx, tid_rx) = mpsc::channel();
        let entered = Arc::new(AtomicU64::new(0));
        let partner_entered = Arc::clone(&entered);
        let partner = thread::Builder::new()
            .name("wait-any-partner".into())
            .spawn(move || {
                let _ = tid_tx.send(procfs::current_tid());
                // Ends when the measuring side hangs up (drops `commands`).
                while let Ok(fresh) = inbox.recv() {
                    if let Some((k, fresh)) = fresh {
                        waiter.refresh(k, fresh);
                    }
                    // ORDERING: Release: the measuring side's Acquire load sees the round begun;
                    // only a progress signal, nothing else is published through it.
                    partner_entered.fetch_add(1, Ordering::Release);
                    let returned = waiter.wait_any(WAIT_LIMIT);
                    if to_measurer.send(returned).is_err() {
                        break;
                    }
                }
            })
            .expect("cannot spawn the wait_any partner");
        let tid = tid_rx
            .recv_timeout(ANSWER_LIMIT)
            .expect("the wait_any partner did not start");
        Self {
            setter,
            n,
            round: 0,
            fresh: None,
            commands: Some(commands),
            answers,
            entered,
            tid,
            never_asleep: 0,
            partner: Some(partner),
        }
    }

    /// One round: the partner enters its wait, falls asleep, and we complete pair `k`;
    /// returns the time from completion to the partner's wait returning.
    fn round_trip(&mut self) -> Duration {
        self.round += 1;
        // A multiplicative hash spreads the completed slot over the N.
        let k = (self.round.wrapping_mul(2_654_435_761) % self.n as u64) as usize;
        self.commands
            .as_ref()
            .expect("wait_any partner stopped")
            .send(self.fresh.take())
            .expect("the wait_any partner is gone");
        let deadline = Instant::now() + ANSWER_LIMIT;
        // ORDERING: Acquire pairs with the partner's Release increment (a progress signal).
        while self.entered.load(Ordering::Acquire) < self.round {
            assert!(
                Instant::now() < deadline,
                "the wait_any partner did not enter its wait"
            );
            thread::yield_now();
        }
        // A waiter that is not seen asleep within 200 ms (one that spins, say) is measured as
        // it is; after three such rounds, at once, so that it cannot stall the run.
        let limit = if self.never_asleep >= 3 {
            Duration::ZERO
        } else {
            Duration::from_millis(200)
        };
        if !procfs::wait_until_asleep(self.tid, limit) {
            self.never_asleep += 1;
        }
        let (start, fresh) = W::complete(&mut self.setter, k);
        let returned = self
            .answers
            .recv_timeout(ANSWER_LIMIT)
            .expect("the wait_any partner did not answer")
            .expect("the wait_any partner's wait timed out: the completion was lost");
        self.fresh = fresh.map(|f| (k, f));
        returned.saturating_duration_since(start)
    }
}

impl<W: AnyOf> Batch for Wake<W> {
    fn run(&mut self, iters: u64) -> Duration {
        (0..iters).map(|_| self.round_trip()).sum()
    }

    /// Each round is timed on its own already (completion to return): those are the calls.
    fn run_recorded(&mut self, iters: u64, calls: &mut Recorder) -> Option<Duration> {
        Some(
            (0..iters)
                .map(|_| {
                    let one = self.round_trip();
                    calls.record(one);
                    one
                })
                .sum(),
        )
    }
}

impl<W: AnyOf> Drop for Wake<W> {
    fn drop(&mut self) {
        // Hanging up ends the partner's loop; a wait it is still in ends by its time limit.
        drop(self.commands.take());
        if let Some(partner) = self.partner.take() {
            let _ = partner.join();
        }
    }
}

/// The completion-to-return scenario over `n` futures, ours first.
pub fn wake_scenario(n: usize) -> Scenario {
    Scenario {
        name: wake_name(n),
        contenders: vec![
            Contender::new("ours/wait", Side::Ours, move || {
                Box::new(Wake::<OursWait>::start(n))
            }),
            Contender::new("crossbeam", Side::Peer, move || {
                Box::new(Wake::<CrossbeamSelect>::start(n))
            }),
        ],
    }
}

/// Ours: an `as_completed` iterator over N pending futures, made and dropped (register N, leave
/// N).
struct OursRegister {
    _promises: Vec<Promise<u64>>,
    futures: Vec<Future<u64>>,
}

impl Batch for OursRegister {
    fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            drop(black_box(concur_core::as_completed(&self.futures, None)));
        }
        start.elapsed()
    }
}

/// crossbeam: a `Select` over N receivers with a deadline already past.
struct CrossbeamRegister {
    _senders: Vec<crossbeam_channel::Sender<u64>>,
    receivers: Vec<crossbeam_channel::Receiver<u64>>,
}

impl Batch for CrossbeamRegister {
    fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            let mut select = Select::new();
            for receiver in &self.receivers {
                select.recv(receiver);
            }
            let timed_out = select.select_deadline(start).is_err();
            assert!(timed_out, "wait_register: a crossbeam receiver was ready");
        }
        start.elapsed()
    }
}

/// The registration scenario over `n` futures, ours first.
pub fn register_scenario(n: usize) -> Scenario {
    Scenario {
        name: register_name(n),
        contenders: vec![
            Contender::new("ours/as_completed", Side::Ours, move || {
                let (promises, futures) = (0..n).map(|_| concur_core::promise()).unzip();
                Box::new(OursRegister {
                    _promises: promises,
                    futures,
                })
            }),
            Contender::new("crossbeam", Side::Peer, move || {
                let (senders, receivers) = (0..n).map(|_| crossbeam_channel::bounded(1)).unzip();
                Box::new(CrossbeamRegister {
                    _senders: senders,
                    receivers,
                })
            }),
        ],
    }
}

/// The slope of a least-squares line through `(n, ns)` points: nanoseconds per future.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let count = points.len() as f64;
    let mean_n = points.iter().map(|p| p.0).sum::<f64>() / count;
    let mean_t = points.iter().map(|p| p.1).sum::<f64>() / count;
    let covariance: f64 = points.iter().map(|p| (p.0 - mean_n) * (p.1 - mean_t)).sum();
    let variance: f64 = points.iter().map(|p| (p.0 - mean_n).powi(2)).sum();
    (variance > 0.0).then(|| covariance / variance)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line() {
        let points = [(1.0, 110.0), (16.0, 260.0), (1024.0, 10_340.0)];
        assert!((slope(&points).unwrap() - 10.0).abs() < 1e-9);
        assert_eq!(slope(&points[..1]), None);
    }
}
