//! Heartbeats with local workers (`ProcessPoolBuilder::heartbeat`): a silent worker is declared
//! dead within twice the interval and only its call fails; a busy or idle worker that keeps
//! beating is not; a worker whose pool falls silent, though its stream stays open, kills itself.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use concur_process::{DeathCause, ProcessPool, WorkerDied};

concur_process::test_worker!();

concur_process::task! {
    fn square(x: u64) -> u64 { x * x }
    fn pid() -> u32 { std::process::id() }
    fn announce_and_hang(path: String) {
        common::announce(&path);
        common::hang()
    }
    /// Works (sleeps) for `ms` milliseconds, far past the silence bound, then answers.
    fn work_for(ms: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(ms));
        ms
    }
}

const INTERVAL: Duration = Duration::from_millis(50);
/// Any wait in these tests fails the test after this instead of hanging.
const BOUND: Duration = Duration::from_secs(20);

fn pool() -> ProcessPool {
    ProcessPool::builder()
        .max_workers(1)
        .heartbeat(INTERVAL)
        .build()
        .unwrap()
}

#[test]
fn a_stopped_worker_is_declared_dead_and_only_its_call_fails() {
    let pool = pool();
    let fifo = common::Fifo::new("stop");
    let hung = pool.submit(announce_and_hang, fifo.path_string()).unwrap();
    let worker: u32 = fifo.read_line().parse().unwrap();
    // SAFETY: plain kill(2) of this pool's worker.
    unsafe { libc::kill(worker as libc::pid_t, libc::SIGSTOP) };
    let stopped = Instant::now();
    let failure = hung.error_timeout(BOUND).unwrap().unwrap();
    let latency = stopped.elapsed();
    let died = failure
        .downcast_ref::<WorkerDied>()
        .unwrap_or_else(|| panic!("not WorkerDied: {failure}"));
    let DeathCause::HeartbeatLost { silent } = died.cause else {
        panic!("not a lost heartbeat: {died}");
    };
    assert!(silent >= INTERVAL * 2, "{died}");
    assert!(died.to_string().contains("heartbeat lost"), "{died}");
    println!("SIGSTOP -> WorkerDied in {latency:?} at a {INTERVAL:?} interval: {died}");
    let after = pool.submit(square, 6).unwrap();
    assert_eq!(*after.result_timeout(BOUND).unwrap(), 36);
}

#[test]
fn a_busy_worker_that_beats_outlives_the_silence_bound() {
    let pool = pool();
    let long = INTERVAL.as_millis() as u64 * 10;
    let call = pool.submit(work_for, long).unwrap();
    assert_eq!(*call.result_timeout(BOUND).unwrap(), long);
}

#[test]
fn an_idle_worker_that_beats_outlives_the_silence_bound() {
    let pool = pool();
    let first = *pool.submit(pid, ()).unwrap().result_timeout(BOUND).unwrap();
    // Time passing idle is the condition under test, not a stand-in for an event.
    std::thread::sleep(INTERVAL * 10);
    let second = *pool.submit(pid, ()).unwrap().result_timeout(BOUND).unwrap();
    assert_eq!(first, second, "the idle worker was replaced");
}

/// Plays a pool that greets a launched worker, turns heartbeats on, then falls silent with the
/// stream still open (what a partition or a stuck intermediary looks like to the worker).
#[test]
fn a_worker_whose_pool_falls_silent_kills_itself() {
    let mut worker = Command::new(std::env::current_exe().unwrap())
        .args(["__concur_process_worker", "--exact", "--nocapture"])
        .args(["--test-threads=1", "-q"])
        .env("CONCUR_PROCESS_WORKER", "stdio")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut frames = Vec::new();
    concur_process::fuzzing::encode_init(&mut frames, 1 << 20, None);
    concur_process::fuzzing::encode_heartbeat(&mut frames, INTERVAL.as_millis() as u32);
    let mut stdin = worker.stdin.take().unwrap();
    stdin.write_all(&frames).unwrap();
    let started = Instant::now();
    // The worker's output ends when it dies (its heartbeats until then).
    let mut out = Vec::new();
    let reader = {
        let mut stdout = worker.stdout.take().unwrap();
        std::thread::spawn(move || stdout.read_to_end(&mut out).map(|_| out))
    };
    let pidfd = common::pidfd(worker.id());
    let mut fds = [libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&pidfd),
        events: libc::POLLIN,
        revents: 0,
    }];
    // SAFETY: one valid pollfd.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), 1, BOUND.as_millis() as i32) };
    if ready != 1 {
        let _ = worker.kill();
    }
    let status = worker.wait().unwrap();
    assert_eq!(ready, 1, "the worker outlived its silent pool");
    println!(
        "worker ended {:?} after its pool fell silent: {status}",
        started.elapsed()
    );
    drop(stdin);
    let out = reader.join().unwrap().unwrap();
    assert!(
        out.len() > 20,
        "the worker greeted and beat: {} bytes",
        out.len()
    );
}
