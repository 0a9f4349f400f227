//! No self-deadlock (DESIGN §4): a worker that waits on a queued task of its own pool runs it
//! inline, and a wait that would close a wait-for cycle between running tasks fails with
//! `Error::Deadlock` instead of hanging. The tests are built from the seeds' examples in
//! `shared/seeds/004_51b71ad4c8d3f7e8.txt` ("Deadlock can occur when the callable associated
//! with a Future waits on the results of another Future"): `wait_on_future` and
//! `wait_on_a` / `wait_on_b`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::thread;
use std::time::Duration;

use concur_core::{Error, Future, ReturnWhen, as_completed, wait};
use concur_pool::ThreadPool;

/// The seeds' `wait_on_future`, with `max_workers=1`: the only worker runs a task that submits
/// `pow(5, 2)` and waits for it. Python hangs; here the worker runs the queued task inline.
#[test]
fn seeds_wait_on_future_with_one_worker_completes() {
    let executor = ThreadPool::new(1).unwrap();
    let inner = executor.clone();
    let wait_on_future = move || {
        let f = inner.submit(|| 5u32.pow(2)).unwrap();
        // This would never complete in Python: one worker, and it is running this function.
        *f.result().unwrap()
    };
    let outer = executor.submit(wait_on_future).unwrap();
    assert_eq!(*outer.result_timeout(Duration::from_secs(10)).unwrap(), 25);
}

/// What each of the seeds' functions returns: its own value, and how its wait ended.
type Outcome = (u32, Result<u32, String>);

fn wait_on(slot: &OnceLock<Future<Outcome>>, gate: &Barrier, own: u32) -> Outcome {
    // The seeds' time.sleep(5), so that both tasks run before either waits; a barrier (with
    // the thread that fills the slots) makes it certain rather than likely.
    gate.wait();
    let seen = match slot.get().unwrap().result() {
        Ok((value, _)) => Ok(*value),
        Err(Error::Deadlock) => Err("deadlock".to_owned()),
        Err(other) => Err(other.to_string()),
    };
    (own, seen)
}

/// The seeds' `wait_on_a` / `wait_on_b` with `max_workers=2`: `a` waits on `b` while `b`
/// waits on `a`. Python hangs; here the wait that closes the cycle fails with
/// `Error::Deadlock`, its task returns, and then the other wait succeeds.
#[test]
fn seeds_wait_on_a_and_wait_on_b_report_the_cycle() {
    let executor = ThreadPool::new(2).unwrap();
    let a_slot: Arc<OnceLock<Future<Outcome>>> = Arc::default();
    let b_slot: Arc<OnceLock<Future<Outcome>>> = Arc::default();
    let gate = Arc::new(Barrier::new(3));
    let wait_on_b = {
        let (b, gate) = (b_slot.clone(), gate.clone());
        move || wait_on(&b, &gate, 5) // print(b.result()): b is waiting on a
    };
    let wait_on_a = {
        let (a, gate) = (a_slot.clone(), gate.clone());
        move || wait_on(&a, &gate, 6) // print(a.result()): a is waiting on b
    };
    let a = executor.submit(wait_on_b).unwrap();
    let b = executor.submit(wait_on_a).unwrap();
    a_slot.set(a.clone()).unwrap();
    b_slot.set(b.clone()).unwrap();
    gate.wait();

    let (a_value, a_saw) = a.result_timeout(Duration::from_secs(10)).unwrap().clone();
    let (b_value, b_saw) = b.result_timeout(Duration::from_secs(10)).unwrap().clone();
    assert_eq!((a_value, b_value), (5, 6));
    // Exactly one wait closed the cycle; the other saw the first one's value.
    match (a_saw, b_saw) {
        (Ok(6), Err(e)) | (Err(e), Ok(5)) => assert_eq!(e, "deadlock"),
        other => panic!("expected one deadlock and one value, got {other:?}"),
    }
}

/// A task waits on a task it queued, which (run inline on the same worker, above it on the
/// stack) waits on the first one: the inner wait closes the cycle and gets `Error::Deadlock`.
#[test]
fn a_task_waiting_on_a_task_lower_on_its_own_stack_is_a_deadlock() {
    let pool = ThreadPool::new(1).unwrap();
    let outer_slot: Arc<OnceLock<Future<String>>> = Arc::default();
    let gate = Arc::new(Barrier::new(2));
    let inner_pool = pool.clone();
    let slot = outer_slot.clone();
    let task_gate = gate.clone();
    let outer = pool
        .submit(move || {
            task_gate.wait();
            let slot = slot.clone();
            let inner = inner_pool
                .submit(move || match slot.get().unwrap().result() {
                    Err(Error::Deadlock) => "inner saw deadlock".to_owned(),
                    other => format!("inner saw {other:?}"),
                })
                .unwrap();
            // One worker: `inner` is queued behind us, so this runs it inline.
            inner.result().unwrap().clone()
        })
        .unwrap();
    outer_slot.set(outer.clone()).unwrap();
    gate.wait();
    assert_eq!(
        *outer.result_timeout(Duration::from_secs(10)).unwrap(),
        "inner saw deadlock"
    );
}

#[test]
fn a_task_waiting_on_its_own_future_is_a_deadlock() {
    let pool = ThreadPool::new(2).unwrap();
    let slot: Arc<OnceLock<Future<bool>>> = Arc::default();
    let gate = Arc::new(Barrier::new(2));
    let (task_slot, task_gate) = (slot.clone(), gate.clone());
    let me = pool
        .submit(move || {
            task_gate.wait();
            let me = task_slot.get().unwrap();
            matches!(me.result(), Err(Error::Deadlock))
                && matches!(
                    me.result_timeout(Duration::from_secs(60)),
                    Err(Error::Deadlock)
                )
                && !me.wait()
        })
        .unwrap();
    slot.set(me.clone()).unwrap();
    gate.wait();
    assert!(*me.result_timeout(Duration::from_secs(10)).unwrap());
}

/// A three-task cycle across three workers: the last wait to arrive gets the error.
#[test]
fn a_cycle_through_three_workers_is_reported_once() {
    let pool = ThreadPool::new(3).unwrap();
    let slots: Vec<Arc<OnceLock<Future<bool>>>> = (0..3).map(|_| Arc::default()).collect();
    let gate = Arc::new(Barrier::new(4));
    let futures: Vec<Future<bool>> = (0..3)
        .map(|i| {
            let next = slots[(i + 1) % 3].clone();
            let gate = gate.clone();
            pool.submit(move || {
                gate.wait();
                matches!(next.get().unwrap().result(), Err(Error::Deadlock))
            })
            .unwrap()
        })
        .collect();
    for (slot, f) in slots.iter().zip(&futures) {
        slot.set(f.clone()).unwrap();
    }
    gate.wait();
    let deadlocks = futures
        .iter()
        .filter(|f| *f.result_timeout(Duration::from_secs(10)).unwrap())
        .count();
    assert_eq!(deadlocks, 1);
}

/// Waits that form no cycle are not reported: many tasks wait on one slow running task, and a
/// chain of tasks each waits on the next.
#[test]
fn waits_without_a_cycle_just_wait() {
    let pool = ThreadPool::new(4).unwrap();
    let slow = pool
        .submit(|| {
            thread::sleep(Duration::from_millis(50));
            1u32
        })
        .unwrap();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let slow = slow.clone();
            pool.submit(move || *slow.result().unwrap() + 1).unwrap()
        })
        .collect();
    for w in &waiters {
        assert_eq!(*w.result().unwrap(), 2);
    }

    let depth = Arc::new(AtomicUsize::new(0));
    fn chain(pool: ThreadPool, n: u32, depth: Arc<AtomicUsize>) -> u32 {
        depth.fetch_max(n as usize, Ordering::SeqCst);
        if n == 0 {
            return 0;
        }
        let next_pool = pool.clone();
        let d = depth.clone();
        let next = pool.submit(move || chain(next_pool, n - 1, d)).unwrap();
        *next.result().unwrap() + 1
    }
    let top_pool = pool.clone();
    let d = depth.clone();
    let top = pool.submit(move || chain(top_pool, 20, d)).unwrap();
    assert_eq!(*top.result_timeout(Duration::from_secs(10)).unwrap(), 20);
}

/// Recursive fan-out on a small pool (every task waits on the tasks it queued) finishes:
/// waiting workers run the queued children inline.
#[test]
fn recursive_fan_out_on_two_workers_finishes() {
    fn fib(pool: ThreadPool, n: u64) -> u64 {
        if n < 2 {
            return n;
        }
        let (p1, p2) = (pool.clone(), pool.clone());
        let a = pool.submit(move || fib(p1, n - 1)).unwrap();
        let b = pool.submit(move || fib(p2, n - 2)).unwrap();
        *a.result().unwrap() + *b.result().unwrap()
    }
    let pool = ThreadPool::new(2).unwrap();
    let p = pool.clone();
    // Smaller under Miri, which runs some thousand times slower.
    let (n, fib_n) = if cfg!(miri) { (8, 21) } else { (15, 610) };
    let f = pool.submit(move || fib(p, n)).unwrap();
    assert_eq!(*f.result_timeout(Duration::from_secs(300)).unwrap(), fib_n);
}

/// `into_result` (moving the value out of the last handle) on a future whose task ran inline
/// while its queued task still holds its share: the queued task must find the cell alive.
#[test]
fn into_result_on_a_task_run_inline_keeps_the_cell_for_the_queued_task() {
    let pool = ThreadPool::new(1).unwrap();
    let inner = pool.clone();
    let outer = pool
        .submit(move || {
            (0..100)
                .map(|i| {
                    inner
                        .submit(move || vec![i; 4])
                        .unwrap()
                        .into_result()
                        .unwrap()[0]
                })
                .sum::<u32>()
        })
        .unwrap();
    assert_eq!(
        *outer.result_timeout(Duration::from_secs(10)).unwrap(),
        4950
    );
    for _ in 0..100 {
        pool.submit(|| ()).unwrap().result().unwrap();
    }
}

// Multi-future waits (`wait`, `as_completed`) and cycles across pools. The tasks' own waits
// carry a long timeout only so that a regression fails the test instead of hanging it.

/// A failure bound for a task's wait, never reached when the code is right.
const BOUND: Duration = Duration::from_secs(30);

/// How a task's wait ended, for the assertions.
#[derive(Clone, Debug, PartialEq)]
enum Saw {
    Value,
    Deadlock,
    Other(String),
}

fn single<T>(f: &Future<T>) -> Saw {
    match f.result_timeout(BOUND) {
        Ok(_) => Saw::Value,
        Err(Error::Deadlock) => Saw::Deadlock,
        Err(other) => Saw::Other(other.to_string()),
    }
}

fn many<'a>(fs: impl IntoIterator<Item = &'a Future<Saw>>, when: ReturnWhen) -> Saw {
    let waited = wait(fs, Some(BOUND), when);
    if waited.is_deadlock() {
        Saw::Deadlock
    } else if waited.done().is_empty() {
        Saw::Other("timed out".into())
    } else {
        Saw::Value
    }
}

type Slot = Arc<OnceLock<Future<Saw>>>;

/// Submits one task per body on `pools[i]`, each handed every task's future (through slots
/// filled after all are submitted) once all of them are running; returns what each saw.
/// A task body, given every task's future.
type Body = Box<dyn Fn(&[Slot]) -> Saw + Send>;

fn run_tasks(pools: &[&ThreadPool], bodies: Vec<Body>) -> Vec<Saw> {
    let slots: Vec<Slot> = (0..bodies.len()).map(|_| Arc::default()).collect();
    let gate = Arc::new(Barrier::new(bodies.len() + 1));
    let futures: Vec<Future<Saw>> = bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let (slots, gate) = (slots.clone(), gate.clone());
            pools[i]
                .submit(move || {
                    gate.wait();
                    body(&slots)
                })
                .unwrap()
        })
        .collect();
    for (slot, f) in slots.iter().zip(&futures) {
        slot.set(f.clone()).unwrap();
    }
    gate.wait();
    futures
        .iter()
        .map(|f| f.result_timeout(Duration::from_secs(60)).unwrap().clone())
        .collect()
}

fn get(slots: &[Slot], i: usize) -> &Future<Saw> {
    slots[i].get().unwrap()
}

fn deadlocks(saw: &[Saw]) -> usize {
    saw.iter().filter(|s| **s == Saw::Deadlock).count()
}

/// The seeds' `wait_on_a` / `wait_on_b`, where `a` waits with `wait(AllCompleted)` on `b` and
/// on a promise that a third task completes: one unfinishable future is enough to make it a
/// deadlock, reported once, to whichever wait closes the cycle.
#[test]
fn wait_all_completed_closing_the_seeds_cycle_is_a_deadlock() {
    let pool = ThreadPool::new(3).unwrap();
    let (promise, free) = concur_core::promise::<Saw>();
    let promise = std::sync::Mutex::new(Some(promise));
    let saw = run_tasks(
        &[&pool, &pool, &pool],
        vec![
            Box::new(move |s| many([get(s, 1), &free], ReturnWhen::AllCompleted)),
            Box::new(|s| single(get(s, 0))),
            Box::new(move |_| {
                let promise = promise.lock().unwrap().take().unwrap();
                promise.set_result(Saw::Value).unwrap();
                Saw::Value
            }),
        ],
    );
    assert_eq!(deadlocks(&saw), 1, "{saw:?}");
    assert!(
        saw.iter().all(|s| matches!(s, Saw::Value | Saw::Deadlock)),
        "{saw:?}"
    );
}

/// `wait(FirstCompleted)` on two tasks that both wait on the waiter: a deadlock, reported to
/// whichever wait closes it, once.
#[test]
fn wait_first_completed_on_tasks_that_all_wait_back_is_a_deadlock() {
    let pool = ThreadPool::new(3).unwrap();
    let saw = run_tasks(
        &[&pool, &pool, &pool],
        vec![
            Box::new(|s| many([get(s, 1), get(s, 2)], ReturnWhen::FirstCompleted)),
            Box::new(|s| single(get(s, 0))),
            Box::new(|s| single(get(s, 0))),
        ],
    );
    assert_eq!(deadlocks(&saw), 1, "{saw:?}");
}

/// Runs `body` in a task `a` of a two-worker pool once a second task `b` is parked waiting on
/// `a`, with `b` and a promise that the test completes once something waits on it (a real
/// condition, not a delay: a wait links its nodes after its hook let it block). Returns what
/// `body` returned and what `b` saw.
fn with_a_task_waiting_back<R>(
    body: impl FnOnce(&Future<Saw>, &Future<Saw>) -> R + Send + 'static,
) -> (R, Saw)
where
    R: Clone + Send + Sync + 'static,
{
    let pool = ThreadPool::new(2).unwrap();
    let (promise, free) = concur_core::promise::<Saw>();
    let watched = free.clone();
    let slot = Arc::new(OnceLock::new());
    let gate = Arc::new(Barrier::new(2));
    let (a_slot, a_gate, inner) = (slot.clone(), gate.clone(), pool.clone());
    let a = pool
        .submit(move || {
            a_gate.wait();
            let me: Future<_> = Future::clone(a_slot.get().unwrap());
            let b = inner.submit(move || single(&me)).unwrap();
            // `b` runs on the second worker; wait until it is parked on us.
            while !a_slot.get().unwrap().has_waiters() {
                thread::yield_now();
            }
            (body(&b, &free), b)
        })
        .unwrap();
    slot.set(a.clone()).unwrap();
    gate.wait();
    while !watched.has_waiters() {
        thread::yield_now();
    }
    promise.set_result(Saw::Value).unwrap();
    let (seen, b) = a.result_timeout(Duration::from_secs(60)).unwrap().clone();
    let b_saw = b.result_timeout(Duration::from_secs(60)).unwrap().clone();
    (seen, b_saw)
}

/// No false positive: `wait(FirstCompleted)` on a task that waits back and on a promise that
/// can still finish. Neither wait is a deadlock.
#[test]
fn wait_first_completed_with_one_future_that_can_finish_just_waits() {
    let (seen, b_saw) =
        with_a_task_waiting_back(|b, free| many([b, free], ReturnWhen::FirstCompleted));
    assert_eq!((seen, b_saw), (Saw::Value, Saw::Value));
}

/// `as_completed` over a task that waits back: the step that would block forever, or the
/// other task's wait, reports the cycle, once.
#[test]
fn as_completed_on_a_task_that_waits_back_is_a_deadlock() {
    let pool = ThreadPool::new(2).unwrap();
    let saw = run_tasks(
        &[&pool, &pool],
        vec![
            Box::new(|s| match as_completed([get(s, 1)], Some(BOUND)).next() {
                Some(Ok(_)) => Saw::Value,
                Some(Err(e)) if e.is_deadlock() => Saw::Deadlock,
                other => Saw::Other(format!("{other:?}")),
            }),
            Box::new(|s| single(get(s, 0))),
        ],
    );
    assert_eq!(deadlocks(&saw), 1, "{saw:?}");
}

/// `as_completed` yields what can finish, then reports the deadlock once every unfinished
/// future waits back (after the promise, only the task waiting on us is left).
#[test]
fn as_completed_yields_what_can_finish_before_reporting_the_cycle() {
    let (steps, b_saw) = with_a_task_waiting_back(|b, free| {
        as_completed([b, free], Some(BOUND))
            .map(|item| match item {
                Ok(_) => Saw::Value,
                Err(e) if e.is_deadlock() => Saw::Deadlock,
                Err(e) => Saw::Other(e.to_string()),
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(steps, [Saw::Value, Saw::Deadlock]);
    assert_eq!(b_saw, Saw::Value);
}

/// The seeds' `wait_on_a` / `wait_on_b` with `a` and `b` on two different one-worker pools:
/// the cycle spans the pools and is reported once.
#[test]
fn the_seeds_cycle_across_two_pools_is_a_deadlock() {
    let (pool_a, pool_b) = (ThreadPool::new(1).unwrap(), ThreadPool::new(1).unwrap());
    let saw = run_tasks(
        &[&pool_a, &pool_b],
        vec![
            Box::new(|s| single(get(s, 1))),
            Box::new(|s| single(get(s, 0))),
        ],
    );
    assert_eq!(deadlocks(&saw), 1, "{saw:?}");
}

/// Across two pools through `wait(AllCompleted)`, and no false positive when the other
/// pool's task waits on something else.
#[test]
fn waits_across_two_pools_without_a_cycle_just_wait() {
    let (pool_a, pool_b) = (ThreadPool::new(1).unwrap(), ThreadPool::new(1).unwrap());
    let b = pool_b.submit(|| Saw::Value).unwrap();
    let a = pool_a
        .submit(move || many([&b], ReturnWhen::AllCompleted))
        .unwrap();
    assert_eq!(
        *a.result_timeout(Duration::from_secs(60)).unwrap(),
        Saw::Value
    );
}
