//! Workers that die during start-up: killed from outside, they are replaced (after a short
//! back-off) as often as it takes; dying by themselves, they break the pool. The call a
//! starting worker was sent with its INIT never ran, so it goes to the replacement, unless it
//! was what `ProcessPool::cancel` killed the worker for.

mod common;

use concur_process::{BrokenProcessPool, ExitStatus, HandshakeError, ProcessPool, TaskKilled};

use common::sigkill;

concur_process::test_worker!();

concur_process::task! {
    fn square(x: u64) -> u64 { x * x }
    /// An initializer that holds its worker in start-up until the test opens the FIFO.
    fn await_gate(path: String) {
        // Opening a FIFO for reading blocks until someone opens it for writing.
        drop(std::fs::File::open(path).unwrap());
    }
    /// An initializer that says it runs, then waits at the gate as `await_gate` does.
    fn announce_then_await_gate(paths: (String, String)) {
        common::announce(&paths.0);
        drop(std::fs::File::open(paths.1).unwrap());
    }
    fn exit_with(code: i32) { std::process::exit(code) }
    fn abort() { std::process::abort() }
}

/// More than the three start-up failures in a row that break a pool.
const KILLS: usize = 10;

/// A one-worker pool whose workers stay in start-up until [`open_gate`].
fn gated_pool(gate: &common::Fifo) -> ProcessPool {
    ProcessPool::builder()
        .max_workers(1)
        .initializer(await_gate, gate.path_string())
        .build()
        .unwrap()
}

/// Lets the current worker (and any later one) finish starting for as long as the returned
/// end is open: while it is open for writing, opening the FIFO for reading does not block.
/// (Opening it for writing alone could pair with a killed worker that has not quite gone yet.)
/// On Linux, opening a FIFO read-write never blocks.
fn open_gate(gate: &common::Fifo) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&gate.path)
        .unwrap()
}

#[test]
fn workers_killed_from_outside_during_start_up_never_break_the_pool() {
    let gate = common::Fifo::new("gate");
    let pool = gated_pool(&gate);
    let first = pool.submit(square, 7).unwrap();
    // No worker can finish starting before the gate opens, so every pid listed is a worker in
    // start-up.
    let mut killed = Vec::new();
    while killed.len() < KILLS {
        assert!(
            !first.is_done(),
            "the pool gave up after {} kills: {:?}",
            killed.len(),
            first.error()
        );
        match pool.worker_pids().first() {
            Some(&pid) if !killed.contains(&pid) => {
                sigkill(pid);
                killed.push(pid);
            }
            _ => std::thread::yield_now(),
        }
    }
    let _open_gate = open_gate(&gate);
    assert_eq!(*first.result().unwrap(), 49);
    let later: Vec<_> = (0..20u64)
        .map(|i| pool.submit(square, i).unwrap())
        .collect();
    for (i, future) in later.iter().enumerate() {
        assert_eq!(*future.result().unwrap(), (i * i) as u64);
    }
    let survivor = pool.worker_pids();
    assert_eq!(survivor.len(), 1);
    assert!(!killed.contains(&survivor[0]));
}

#[test]
fn cancelling_the_call_a_starting_worker_was_sent_fails_it_as_killed_and_nothing_else() {
    let gate = common::Fifo::new("gate-cancel");
    let pool = gated_pool(&gate);
    let first = pool.submit(square, 3).unwrap();
    // Running as soon as it is written to the worker, which is held in its initializer.
    while !(first.is_running() && pool.worker_pids().len() == 1) {
        assert!(!first.is_done(), "{:?}", first.error());
        std::thread::yield_now();
    }
    assert!(pool.cancel(&first));
    let failure = first.error().unwrap().expect("the cancelled call failed");
    assert!(
        failure.downcast_ref::<TaskKilled>().is_some(),
        "killed, not requeued or broken: {failure}"
    );
    let _open_gate = open_gate(&gate);
    assert_eq!(*pool.submit(square, 4).unwrap().result().unwrap(), 16);
}

#[test]
fn a_launched_worker_is_sent_no_call_before_the_pool_has_seen_it_ready() {
    // Its READY comes through the launcher, which may die holding it: a call sent earlier
    // could have run without a trace, and requeued it would run twice.
    let announced = common::Fifo::new("launched-init");
    let gate = common::Fifo::new("launched-gate");
    let pool = ProcessPool::builder()
        .max_workers(2)
        .launcher(Vec::<String>::new())
        .initializer(
            announce_then_await_gate,
            (announced.path_string(), gate.path_string()),
        )
        .build()
        .unwrap();
    let call = pool.submit(square, 5).unwrap();
    // A call for a starting worker is assigned when the worker is spawned, before it runs.
    announced.read_line();
    assert!(!call.is_running(), "sent to a launched worker in start-up");
    // The starting worker will take the call: no second one is started for it.
    assert_eq!(pool.worker_pids().len(), 1);
    let _open_gate = open_gate(&gate);
    assert_eq!(*call.result().unwrap(), 25);
}

/// The status in a broken pool's cause, which must be a start-up death.
fn startup_death(pool: &ProcessPool) -> ExitStatus {
    let failure = pool.submit(square, 2).unwrap().error().unwrap().unwrap();
    let broken = failure
        .downcast_ref::<BrokenProcessPool>()
        .expect("BrokenProcessPool");
    match broken.cause.downcast_ref::<HandshakeError>() {
        Some(HandshakeError::Exited(status)) => *status,
        other => panic!("cause {other:?}, not a start-up death"),
    }
}

#[test]
fn workers_that_keep_exiting_during_start_up_break_the_pool() {
    let pool = ProcessPool::builder()
        .max_workers(1)
        .initializer(exit_with, 3)
        .build()
        .unwrap();
    assert_eq!(startup_death(&pool), ExitStatus::Exited(3));
}

#[test]
fn workers_that_keep_aborting_during_start_up_break_the_pool() {
    let pool = ProcessPool::builder()
        .max_workers(1)
        .initializer(abort, ())
        .build()
        .unwrap();
    assert_eq!(startup_death(&pool), ExitStatus::Signaled(libc::SIGABRT));
}
