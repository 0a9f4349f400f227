//! A small ThreadPool driven by random submit / cancel / shutdown(wait, cancel_futures)
//! sequences: every future resolves, each as the model allows (its value, its planted panic,
//! or cancelled only after a cancel or a cancelling shutdown), refused submits only after a
//! shutdown, the counts add up, and no worker thread outlives the pool.
#![no_main]

use std::time::Duration;

use concur_core::{Error, Future, SubmitError};
use concur_fuzz::{Bytes, PLANTED, thread_count, tolerate_planted_panics};
use concur_pool::ThreadPool;
use libfuzzer_sys::fuzz_target;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Value,
    Panic,
    Spin,
}

struct Submitted {
    future: Future<u64>,
    kind: Kind,
    value: u64,
    /// A cancel of ours returned true for it.
    cancelled: bool,
    /// A shutdown with cancel_futures came after its submit.
    maybe_cancelled: bool,
}

fn run(data: &[u8]) {
    tolerate_planted_panics();
    let threads_before = thread_count();
    let mut input = Bytes::new(data);
    let pool = ThreadPool::new(1 + input.below(3)).unwrap();
    let mut clones: Vec<ThreadPool> = Vec::new();
    let mut subs: Vec<Submitted> = Vec::new();
    let mut shut = false;
    let mut refused = 0u64;
    let mut steps = 0;
    while !input.is_empty() && steps < 128 {
        steps += 1;
        let pick = input.byte() as usize;
        match input.below(8) {
            0..=3 => {
                let kind = match pick % 8 {
                    0 => Kind::Panic,
                    1 => Kind::Spin,
                    _ => Kind::Value,
                };
                let value = pick as u64 * 7 + 1;
                let target = clones.get(pick % 4).unwrap_or(&pool);
                let submitted = target.submit(move || match kind {
                    Kind::Panic => std::panic::panic_any(PLANTED),
                    Kind::Spin => {
                        for _ in 0..pick % 4 {
                            std::thread::yield_now();
                        }
                        value
                    }
                    Kind::Value => value,
                });
                match submitted {
                    Ok(future) => {
                        assert!(!shut, "a submit after shutdown was accepted");
                        subs.push(Submitted {
                            future,
                            kind,
                            value,
                            cancelled: false,
                            maybe_cancelled: false,
                        });
                    }
                    Err(SubmitError::Shutdown) => {
                        assert!(shut, "refused before shutdown");
                        refused += 1;
                    }
                    Err(e) => panic!("unexpected submit error {e:?}"),
                }
            }
            4 if !subs.is_empty() => {
                let len = subs.len();
                let s = &mut subs[pick % len];
                let was_done = s.future.is_done();
                let cancelled = s.future.cancel();
                if was_done && !s.future.is_cancelled() {
                    assert!(!cancelled, "cancelled a finished future");
                }
                s.cancelled |= cancelled;
                if cancelled {
                    assert!(matches!(s.future.try_result(), Some(Err(Error::Cancelled))));
                }
            }
            5 => {
                let (wait, cancel_futures) = (pick & 1 == 1, pick & 2 == 2);
                clones
                    .get(pick % 4)
                    .unwrap_or(&pool)
                    .shutdown(wait, cancel_futures);
                shut = true;
                if cancel_futures {
                    for s in &mut subs {
                        s.maybe_cancelled = true;
                    }
                }
                if wait {
                    // Every queued task ran or was cancelled.
                    for s in &subs {
                        assert!(s.future.is_done(), "shutdown(wait) returned before a task");
                    }
                }
            }
            6 if clones.len() < 4 => clones.push(pool.clone()),
            6 => drop(clones.swap_remove(pick % clones.len())),
            _ if !subs.is_empty() => {
                let s = &subs[pick % subs.len()];
                let _ = s
                    .future
                    .result_timeout(Duration::from_micros((pick % 3) as u64 * 50));
            }
            _ => {}
        }
    }
    drop(clones);
    drop(pool); // the last handle: shutdown(wait = true)

    let (mut ok, mut failed, mut cancelled) = (0u64, 0u64, 0u64);
    for (n, s) in subs.iter().enumerate() {
        assert!(
            s.future.wait_timeout(Duration::from_secs(20)),
            "future {n} never resolved"
        );
        match s.future.try_result().unwrap() {
            Ok(v) => {
                assert_ne!(s.kind, Kind::Panic);
                assert!(!s.cancelled);
                assert_eq!(*v, s.value);
                ok += 1;
            }
            Err(Error::Failed(f)) => {
                assert_eq!(s.kind, Kind::Panic, "{f:?}");
                assert!(!s.cancelled);
                assert!(f.is_panic());
                failed += 1;
            }
            Err(Error::Cancelled) => {
                assert!(s.cancelled || s.maybe_cancelled, "cancelled by no one");
                cancelled += 1;
            }
            Err(e) => panic!("future {n}: {e:?}"),
        }
        assert!(!s.future.has_waiters());
    }
    assert_eq!(ok + failed + cancelled, subs.len() as u64);
    let _ = refused;
    // The last handle's drop joined the workers; their /proc entries may linger a moment.
    let mut threads = thread_count();
    for _ in 0..200 {
        if threads <= threads_before {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
        threads = thread_count();
    }
    assert!(
        threads <= threads_before,
        "{threads} threads, {threads_before} before"
    );
}

fuzz_target!(|data: &[u8]| run(data));
