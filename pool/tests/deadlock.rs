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

use concur_core::{Error, Future};
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
