//! The blocking hook's multi-future side: `wait` and a blocking `as_completed` step ask
//! `before_block_on_many`, with what they need (any one or all) and the unfinished futures;
//! a `Deadlock` verdict is reported in a typed way, and a hook that implements only the
//! single-future methods changes nothing for them.

use std::cell::RefCell;
use std::time::Duration;

use concur_core::{
    Blocking, BlockingHook, BlockingMany, Needs, ReturnWhen, Task, Verdict, as_completed, promise,
    wait, with_blocking_hook,
};

/// Records each multi-future consultation and answers with `verdict`.
struct Recording {
    verdict: Verdict,
    seen: RefCell<Vec<(Needs, Vec<usize>)>>,
    ended: RefCell<usize>,
}

impl Recording {
    fn new(verdict: Verdict) -> Self {
        Self {
            verdict,
            seen: RefCell::default(),
            ended: RefCell::default(),
        }
    }
}

impl BlockingHook for Recording {
    fn before_block(&self, _: &Blocking<'_>) -> Verdict {
        Verdict::Block
    }
    fn after_block(&self, _: &Blocking<'_>) {}
    fn before_block_on_many(&self, futures: &BlockingMany<'_>) -> Verdict {
        let ids = futures.futures().map(|f| f.id()).collect();
        self.seen.borrow_mut().push((futures.needs(), ids));
        self.verdict
    }
    fn after_block_on_many(&self, _: &BlockingMany<'_>) {
        *self.ended.borrow_mut() += 1;
    }
}

/// Only the single-future methods.
struct SingleOnly;

impl BlockingHook for SingleOnly {
    fn before_block(&self, _: &Blocking<'_>) -> Verdict {
        Verdict::Deadlock
    }
    fn after_block(&self, _: &Blocking<'_>) {}
}

#[test]
fn a_deadlock_verdict_returns_the_split_with_the_flag_set() {
    let (done_promise, done) = promise::<u8>();
    done_promise.set_result(1).unwrap();
    let (task_a, a) = Task::new(|| 1u8);
    let (task_b, b) = Task::new(|| 2u8);
    let mut expected = vec![task_a.id(), task_b.id()];
    let hook = Recording::new(Verdict::Deadlock);
    let waited = with_blocking_hook(&hook, || {
        wait([&a, &b, &done], None, ReturnWhen::AllCompleted)
    });
    assert!(waited.is_deadlock());
    assert_eq!(waited.done(), [&done]);
    assert_eq!(waited.not_done().len(), 2);
    let seen = hook.seen.borrow();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, Needs::All);
    // Only the unfinished ones are named.
    let mut named = seen[0].1.clone();
    named.sort_unstable();
    expected.sort_unstable();
    assert_eq!(named, expected);
    assert_eq!(*hook.ended.borrow(), 0);
}

#[test]
fn a_wait_that_already_holds_asks_nothing() {
    let (p, a) = promise::<u8>();
    p.set_result(1).unwrap();
    let (_p2, b) = promise::<u8>();
    let hook = Recording::new(Verdict::Deadlock);
    let waited = with_blocking_hook(&hook, || wait([&a, &b], None, ReturnWhen::FirstCompleted));
    assert!(!waited.is_deadlock());
    assert!(hook.seen.borrow().is_empty());
}

#[test]
fn a_block_verdict_waits_and_ends_with_after_block_on_many() {
    let (p, a) = promise::<u8>();
    let (_p2, b) = promise::<u8>();
    let hook = Recording::new(Verdict::Block);
    let completer = std::thread::spawn(move || p.set_result(1).unwrap());
    let waited = with_blocking_hook(&hook, || wait([&a, &b], None, ReturnWhen::FirstCompleted));
    completer.join().unwrap();
    assert!(!waited.is_deadlock());
    assert_eq!(waited.done(), [&a]);
    // The completer may have won before the hook was asked; if asked, it was told Any.
    let seen = hook.seen.borrow();
    assert!(seen.iter().all(|(needs, _)| *needs == Needs::Any));
    assert_eq!(*hook.ended.borrow(), seen.len());
}

#[test]
fn as_completed_yields_a_typed_deadlock_once_then_ends() {
    let (p, a) = promise::<u8>();
    p.set_result(1).unwrap();
    let (task_b, b) = Task::new(|| 2u8);
    let hook = Recording::new(Verdict::Deadlock);
    let items: Vec<_> = with_blocking_hook(&hook, || as_completed([&a, &b], None).collect());
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok());
    let error = items[1].as_ref().unwrap_err();
    assert!(error.is_deadlock() && !error.is_timeout());
    assert_eq!((error.unfinished(), error.total()), (1, 2));
    assert_eq!(hook.seen.borrow()[0], (Needs::Any, vec![task_b.id()]));
}

#[test]
fn a_hook_with_only_single_future_methods_lets_multi_waits_block() {
    let (p, a) = promise::<u8>();
    let completer = std::thread::spawn(move || p.set_result(1).unwrap());
    let waited = with_blocking_hook(&SingleOnly, || {
        wait(
            [&a],
            Some(Duration::from_secs(60)),
            ReturnWhen::AllCompleted,
        )
    });
    completer.join().unwrap();
    assert!(!waited.is_deadlock());
    assert_eq!(waited.done().len(), 1);
}
