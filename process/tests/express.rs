//! The express path: `submit` writes straight to an idle worker lent by the sleeping I/O
//! thread, and the thread blocking on the future reads the answer itself (`crate::drive`).
//! Every kind of waiter must still get the answer (readers, `.await`, wait sets, callbacks,
//! `is_done` polling), and cancel, terminate, timeouts and worker limits must still reach a
//! call whose answer a waiting thread is reading.
//!
//! Which path a call takes depends on whether the I/O thread was asleep when it was submitted,
//! so each test warms the pool up and repeats its step; every assertion holds on either path.

mod common;

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use concur_core::{Error, ReturnWhen};
use concur_process::{ProcessPool, TaskKilled, Terminated, WorkerDied};

use common::{Fifo, announce, hang, sigkill};

concur_process::test_worker!();

concur_process::task! {
    fn echo(x: u64) -> u64 { x }
    fn pid() -> u32 { std::process::id() }
    fn nap(ms: u64) -> u64 { std::thread::sleep(Duration::from_millis(ms)); ms }
    fn announce_and_hang(path: String) { announce(&path); hang() }
    fn bytes(n: usize) -> Vec<u8> { (0..n).map(|i| i as u8).collect() }
    fn fork_then_hang(path: String) { fork_holding_the_pipes(&path); hang() }
    fn half_a_frame_then_fork_and_hang(path: String) {
        write_half_a_frame();
        fork_holding_the_pipes(&path);
        hang()
    }
    fn announce_then_nap(path: String, ms: u64) -> u64 {
        announce(&path);
        std::thread::sleep(Duration::from_millis(ms));
        ms
    }
}

/// Task-side: forks a child that keeps every descriptor (the results pipe among them) and
/// sleeps, announces the child's pid on the FIFO at `path`, and returns.
fn fork_holding_the_pipes(path: &str) {
    use std::io::Write;
    // SAFETY: the child only calls async-signal-safe `pause` until it is killed.
    let child = unsafe { libc::fork() };
    if child == 0 {
        loop {
            // SAFETY: plain pause(2).
            unsafe { libc::pause() };
        }
    }
    let mut fifo = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    writeln!(fifo, "{child}").unwrap();
}

/// Task-side: writes to the worker's results stream the first 6 bytes of a 10-byte HEARTBEAT
/// frame, as a worker killed in the middle of a frame leaves it.
fn write_half_a_frame() {
    let half = [6u8, 0, 0, 0, concur_process::fuzzing::PROTOCOL_VERSION, 7];
    // SAFETY: write(2) from a live buffer to the worker's results descriptor (4).
    let written = unsafe { libc::write(4, half.as_ptr().cast(), half.len()) };
    assert_eq!(written, half.len() as isize);
}

/// Generous bound for an answer that is due at once; only a hang exceeds it.
const PROMPT: Duration = Duration::from_secs(10);

/// A one-worker pool whose worker is started and idle (so the next submit can be expressed).
fn warm_pool() -> ProcessPool {
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    assert_eq!(*pool.submit(echo, 0).unwrap().result().unwrap(), 0);
    pool
}

#[test]
fn a_thousand_round_trips_each_get_their_own_answer() {
    let pool = warm_pool();
    for i in 0..1000u64 {
        assert_eq!(*pool.submit(echo, i).unwrap().result().unwrap(), i);
    }
}

#[test]
fn polling_is_done_sees_every_answer() {
    // Nobody reads these answers for the future: the I/O thread must collect them.
    let pool = warm_pool();
    for i in 0..20u64 {
        let future = pool.submit(echo, i).unwrap();
        let deadline = Instant::now() + PROMPT;
        while !future.is_done() {
            assert!(Instant::now() < deadline, "call {i} never completed");
            std::thread::yield_now();
        }
        assert_eq!(*future.try_result().unwrap().unwrap(), i);
    }
}

#[test]
fn waiters_that_do_not_read_get_every_answer() {
    let pool = warm_pool();
    for i in 0..10u64 {
        let future = pool.submit(echo, i).unwrap();
        let waited = concur_core::wait([&future], Some(PROMPT), ReturnWhen::AllCompleted);
        assert_eq!(waited.done().len(), 1, "wait: call {i} never completed");

        let future = pool.submit(echo, i).unwrap();
        let (tx, rx) = mpsc::channel();
        future.add_done_callback(move |f| tx.send(*f.result().unwrap()).unwrap());
        assert_eq!(rx.recv_timeout(PROMPT).unwrap(), i, "callback: call {i}");

        let futures = [
            pool.submit(echo, i).unwrap(),
            pool.submit(echo, i + 1).unwrap(),
        ];
        let done = concur_core::as_completed(&futures, Some(PROMPT)).count();
        assert_eq!(done, 2, "as_completed: call {i}");
    }
}

#[test]
fn an_awaiting_task_gets_an_expressed_answer() {
    let pool = warm_pool();
    for i in 0..10u64 {
        let future = pool.submit(echo, i).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || tx.send(block_on(future)).unwrap());
        assert_eq!(rx.recv_timeout(PROMPT).unwrap().unwrap(), i);
    }
}

/// A minimal executor: polls on this thread, parking between wake-ups.
fn block_on<T>(future: concur_core::Future<T>) -> Result<T, Error> {
    use std::future::IntoFuture;
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future.into_future());
    loop {
        if let Poll::Ready(outcome) = future.as_mut().poll(&mut cx) {
            return outcome;
        }
        std::thread::park();
    }
}

#[test]
fn a_reader_that_times_out_leaves_the_answer_to_a_later_wait() {
    let pool = warm_pool();
    for _ in 0..5 {
        // 500 ms: the call must still be running when the 1 ms wait ends, even on a CPU
        // shared with a parallel build.
        let future = pool.submit(nap, 500).unwrap();
        let early = future.result_timeout(Duration::from_millis(1));
        assert!(matches!(early, Err(Error::TimedOut)), "{early:?}");
        assert_eq!(*future.result_timeout(PROMPT).unwrap(), 500);
    }
}

#[test]
fn a_large_answer_is_read_whole_by_its_waiter() {
    let pool = warm_pool();
    for n in [0, 1, 4095, 4096, 65_537, 10 << 20] {
        let answer = pool.submit(bytes, n).unwrap().into_result().unwrap();
        assert_eq!(answer.len(), n);
        assert!(answer.iter().enumerate().all(|(i, &b)| b == i as u8));
    }
}

#[test]
fn max_tasks_per_child_counts_calls_answered_to_their_waiters() {
    let pool = ProcessPool::builder()
        .max_workers(1)
        .max_tasks_per_child(2)
        .build()
        .unwrap();
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for _ in 0..12 {
        *counts
            .entry(*pool.submit(pid, ()).unwrap().result().unwrap())
            .or_default() += 1;
    }
    assert!(counts.values().all(|&n| n <= 2), "{counts:?}");
    assert!(counts.len() >= 6, "{counts:?}");
}

/// Starts a call that hangs, on a warm pool, and a thread waiting on it (the call's reader if
/// it was expressed); returns the worker's pid and the waiter's outcome.
fn hanging_call_with_a_waiter(
    pool: &ProcessPool,
    tag: &str,
) -> (
    concur_core::Future<()>,
    u32,
    mpsc::Receiver<Option<concur_core::Failure>>,
) {
    let fifo = Fifo::new(tag);
    let future = pool.submit(announce_and_hang, fifo.path_string()).unwrap();
    let worker: u32 = fifo.read_line().parse().unwrap();
    let (tx, rx) = mpsc::channel();
    let waiting = future.clone();
    std::thread::spawn(move || tx.send(waiting.error().unwrap()).unwrap());
    (future, worker, rx)
}

#[test]
fn cancel_reaches_a_call_whose_waiter_reads_it() {
    let pool = warm_pool();
    for round in 0..3 {
        let (future, worker, outcome) = hanging_call_with_a_waiter(&pool, "cancel");
        assert!(pool.cancel(&future), "round {round}");
        let failure = outcome.recv_timeout(PROMPT).unwrap().unwrap();
        assert_eq!(failure.downcast_ref::<TaskKilled>().unwrap().pid, worker);
        assert_eq!(*pool.submit(echo, round).unwrap().result().unwrap(), round);
    }
}

#[test]
fn a_worker_killed_under_a_reading_waiter_fails_its_call_with_worker_died() {
    let pool = warm_pool();
    for round in 0..3 {
        let (_future, worker, outcome) = hanging_call_with_a_waiter(&pool, "kill");
        sigkill(worker);
        let failure = outcome.recv_timeout(PROMPT).unwrap().unwrap();
        assert_eq!(failure.downcast_ref::<WorkerDied>().unwrap().pid, worker);
        assert_eq!(*pool.submit(echo, round).unwrap().result().unwrap(), round);
    }
}

#[test]
fn terminate_reaches_a_call_whose_waiter_reads_it() {
    let pool = warm_pool();
    let (_future, _worker, outcome) = hanging_call_with_a_waiter(&pool, "terminate");
    pool.terminate_workers();
    let failure = outcome.recv_timeout(PROMPT).unwrap().unwrap();
    assert!(failure.downcast_ref::<Terminated>().is_some(), "{failure}");
}

/// Runs `task` (which forks a child holding the pipes and announces it on its FIFO) with a
/// thread blocked reading its answer (with a deadline or without), SIGKILLs the worker, and
/// checks the call fails with `WorkerDied` in time and the pool still works.
fn death_under_a_blocked_reader(
    task: concur_process::Task<String, ()>,
    name: &str,
    deadline: Option<Duration>,
) {
    let pool = warm_pool();
    let worker = pool.worker_pids()[0];
    let fifo = Fifo::new(name);
    let future = pool.submit(task, fifo.path_string()).unwrap();
    let grandchild: u32 = fifo.read_line().parse().unwrap();
    let (tx, rx) = mpsc::channel();
    let waiting = future.clone();
    std::thread::spawn(move || {
        let error = match deadline {
            None => waiting.error(),
            Some(timeout) => waiting.error_timeout(timeout),
        };
        tx.send(error.unwrap()).unwrap()
    });
    sigkill(worker);
    let outcome = rx.recv_timeout(PROMPT);
    sigkill(grandchild);
    let failure = outcome
        .expect("the reader never noticed the death")
        .unwrap();
    let died = failure.downcast_ref::<WorkerDied>();
    assert_eq!(died.map(|d| d.pid), Some(worker), "{failure}");
    assert_eq!(*pool.submit(echo, 7).unwrap().result().unwrap(), 7);
}

#[test]
fn a_reader_sees_its_worker_die_even_when_a_forked_child_holds_the_pipe() {
    // The forked child keeps the results pipe open, so the worker's death brings no EOF: the
    // pool must wake the reading thread (its pidfd tells it the worker died).
    death_under_a_blocked_reader(fork_then_hang, "forked", None);
}

#[test]
fn a_half_written_frame_is_not_completed_by_what_wakes_its_reader() {
    // As above, but the worker dies in the middle of a frame. What wakes the reader (bytes the
    // pool writes into the pipe) must not be read as the rest of that frame: the call fails with
    // WorkerDied, not as a protocol error, and nothing is decoded from it.
    death_under_a_blocked_reader(half_a_frame_then_fork_and_hang, "half-frame", None);
}

#[test]
fn a_half_written_frame_is_not_completed_for_a_reader_with_a_deadline() {
    // The same with a deadline: that reader polls the pipe and the pidfd, and must not decode
    // the marker the pool writes for blocked readers either.
    death_under_a_blocked_reader(
        half_a_frame_then_fork_and_hang,
        "half-frame-deadline",
        Some(PROMPT * 2),
    );
}

#[test]
fn a_call_queued_behind_a_read_call_runs_when_the_reader_is_done() {
    // One worker: A is expressed and read by its waiting thread; B, submitted meanwhile, is
    // queued. When A's reader finishes it must give the worker back for B, not lend it out
    // again while B waits (B would wait for some unrelated wake-up, possibly forever).
    let pool = std::sync::Arc::new(warm_pool());
    for round in 0..3u64 {
        let fifo = Fifo::new("queued-behind");
        let path = fifo.path_string();
        let reader = {
            let pool = pool.clone();
            std::thread::spawn(move || {
                *pool
                    .submit(announce_then_nap, (path, 50))
                    .unwrap()
                    .result()
                    .unwrap()
            })
        };
        fifo.read_line(); // A runs (and its waiter is, almost surely, reading)
        let queued = pool.submit(echo, round).unwrap();
        assert_eq!(
            *queued.result_timeout(PROMPT).unwrap(),
            round,
            "round {round}"
        );
        assert_eq!(reader.join().unwrap(), 50);
    }
}
