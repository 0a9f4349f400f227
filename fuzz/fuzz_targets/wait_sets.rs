//! `wait` and `as_completed` over random sets of futures, with completions (values, failures,
//! cancels, abandoned promises) before, between and around their steps, on one thread.
//! Checked against the model: the done/not-done split, each future yielded once (already-done
//! ones first, then in completion order), the timeout's counts, and nothing left registered.
#![no_main]

use std::time::Duration;

use concur_core::{Future, Promise, ReturnWhen, as_completed, promise, wait};
use concur_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    Pending,
    Value,
    Failed,
    Cancelled,
}

struct World {
    promises: Vec<Option<Promise<u32>>>,
    futures: Vec<Future<u32>>,
    states: Vec<State>,
    /// Indices in the order they completed.
    completions: Vec<usize>,
}

impl World {
    fn new(n: usize) -> Self {
        let (promises, futures) = (0..n)
            .map(|_| promise::<u32>())
            .map(|(p, f)| (Some(p), f))
            .unzip();
        Self {
            promises,
            futures,
            states: vec![State::Pending; n],
            completions: Vec::new(),
        }
    }

    /// Completes future `i` in one of four ways (no-op if it is done).
    fn complete(&mut self, i: usize, how: u8) {
        if self.states[i] != State::Pending {
            return;
        }
        let p = self.promises[i]
            .take()
            .expect("a pending future has its promise");
        self.states[i] = match how % 4 {
            0 => {
                p.set_result(i as u32).unwrap();
                State::Value
            }
            1 => {
                p.set_error(std::fmt::Error).unwrap();
                State::Failed
            }
            2 => {
                assert!(self.futures[i].cancel());
                drop(p);
                State::Cancelled
            }
            _ => {
                drop(p); // abandoned: a failure
                State::Failed
            }
        };
        self.completions.push(i);
    }

    fn index_of(&self, f: &Future<u32>) -> usize {
        self.futures
            .iter()
            .position(|g| g == f)
            .expect("a future of ours")
    }

    fn check_no_waiters(&self) {
        for (i, f) in self.futures.iter().enumerate() {
            assert!(!f.has_waiters(), "future {i} left registered");
        }
    }
}

/// A subset of the futures (with duplicates when `dup`), as clones.
fn subset(world: &World, mask: u8, dup: bool) -> (Vec<Future<u32>>, Vec<usize>) {
    let members: Vec<usize> = (0..world.futures.len())
        .filter(|i| mask & (1 << i) != 0)
        .collect();
    let mut list: Vec<Future<u32>> = members.iter().map(|&i| world.futures[i].clone()).collect();
    if dup && !members.is_empty() {
        list.push(world.futures[members[0]].clone());
    }
    (list, members)
}

fn timeout(code: u8) -> Duration {
    if code % 4 == 0 {
        Duration::from_millis(1)
    } else {
        Duration::ZERO
    }
}

fn run(data: &[u8]) {
    let mut input = Bytes::new(data);
    let n = 1 + input.below(8);
    let mut world = World::new(n);
    let mut steps = 0;
    while !input.is_empty() && steps < 64 {
        steps += 1;
        match input.below(4) {
            0 | 1 => {
                let (i, how) = (input.below(n), input.byte());
                world.complete(i, how);
            }
            2 => {
                let (mask, code) = (input.byte(), input.byte());
                let (list, members) = subset(&world, mask, code & 0x10 != 0);
                let return_when = match code % 3 {
                    0 => ReturnWhen::FirstCompleted,
                    1 => ReturnWhen::FirstException,
                    _ => ReturnWhen::AllCompleted,
                };
                let waited = wait(&list, Some(timeout(code >> 2)), return_when);
                let mut done: Vec<usize> =
                    waited.done().iter().map(|f| world.index_of(f)).collect();
                let mut not_done: Vec<usize> = waited
                    .not_done()
                    .iter()
                    .map(|f| world.index_of(f))
                    .collect();
                done.sort_unstable();
                not_done.sort_unstable();
                let expect_done: Vec<usize> = members
                    .iter()
                    .copied()
                    .filter(|&i| world.states[i] != State::Pending)
                    .collect();
                let expect_not: Vec<usize> = members
                    .iter()
                    .copied()
                    .filter(|&i| world.states[i] == State::Pending)
                    .collect();
                assert_eq!(done, expect_done, "done part of {members:?}");
                assert_eq!(not_done, expect_not, "not-done part of {members:?}");
                drop(waited);
                drop(list);
                world.check_no_waiters();
            }
            _ => {
                let (mask, code) = (input.byte(), input.byte());
                let (list, members) = subset(&world, mask, code & 0x10 != 0);
                let already: Vec<usize> = members
                    .iter()
                    .copied()
                    .filter(|&i| world.states[i] != State::Pending)
                    .collect();
                let mark = world.completions.len();
                let mut iter = as_completed(list, Some(timeout(code >> 2)));
                let mut yielded: Vec<usize> = Vec::new();
                let mut ended = false;
                let mut timed_out = false;
                for _ in 0..2 * n + 2 {
                    match input.below(3) {
                        0 => {
                            let (i, how) = (input.below(n), input.byte());
                            world.complete(i, how);
                        }
                        1 => break, // drop the iterator early
                        _ => {
                            let next = iter.next();
                            // The model: members completed and not yet yielded, in the order
                            // the iterator must give them.
                            let mut owed: Vec<usize> = already
                                .iter()
                                .copied()
                                .filter(|i| !yielded.contains(i))
                                .collect();
                            owed.extend(
                                world.completions[mark..]
                                    .iter()
                                    .copied()
                                    .filter(|i| members.contains(i) && !yielded.contains(i)),
                            );
                            let unfinished = members.len() - yielded.len();
                            match next {
                                Some(Ok(f)) => {
                                    assert!(!ended, "yielded after the end");
                                    let i = world.index_of(&f);
                                    assert!(!yielded.contains(&i), "future {i} yielded twice");
                                    assert!(f.is_done(), "future {i} yielded before done");
                                    if already.contains(&i) {
                                        assert!(
                                            already
                                                .iter()
                                                .all(|j| yielded.contains(j) || owed.contains(j))
                                        );
                                    } else {
                                        assert!(
                                            already.iter().all(|j| yielded.contains(j)),
                                            "{i} came before the already-done {already:?}"
                                        );
                                        assert_eq!(owed.first(), Some(&i), "completion order");
                                    }
                                    yielded.push(i);
                                }
                                Some(Err(e)) => {
                                    assert!(!ended && !timed_out);
                                    assert!(owed.is_empty(), "timed out with {owed:?} done");
                                    assert!(unfinished > 0);
                                    // No blocking hook here, so never a deadlock.
                                    assert!(e.is_timeout(), "{e:?}");
                                    assert_eq!(
                                        (e.unfinished(), e.total()),
                                        (unfinished, members.len())
                                    );
                                    timed_out = true;
                                    ended = true;
                                }
                                None => {
                                    assert!(
                                        ended || unfinished == 0,
                                        "ended with {unfinished} left"
                                    );
                                    ended = true;
                                }
                            }
                        }
                    }
                }
                drop(iter);
                world.check_no_waiters();
            }
        }
    }
    // Everything resolves: drop the promises left, every future is done, nothing registered.
    for p in world.promises.iter_mut() {
        drop(p.take());
    }
    for f in &world.futures {
        assert!(f.is_done() && f.try_result().is_some());
    }
    world.check_no_waiters();
}

fuzz_target!(|data: &[u8]| run(data));
