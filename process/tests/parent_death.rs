//! Workers die with their parent, at once: whether the parent is killed with `SIGKILL`, aborts
//! or calls `std::process::exit` with tasks running, and whatever the running tasks do (park,
//! block in `read(2)`, spin with `SIGTERM` ignored).
//!
//! A helper *parent* (this binary re-run with `PARENT_DEATH_CASE` set) builds a pool of four
//! workers, starts two endless tasks, prints the four pids and dies. This process, a child
//! subreaper, inherits the orphaned workers, watches each by pidfd and reaps it, so a worker is
//! known gone by its pid, not guessed from a delay.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use concur_process::ProcessPool;

use common::{Fifo, announce, hang, pidfd, start_helper_parent};

concur_process::test_worker!();

concur_process::task! {
    fn announce_then_park(path: String) { announce(&path); hang() }
    fn announce_then_read(path: String) {
        let (reader, _writer) = pipe();
        announce(&path);
        let mut byte = 0u8;
        // Blocks in the syscall for good: this task holds the only write end.
        // SAFETY: reads one byte into a local.
        unsafe { libc::read(reader.as_raw_fd(), (&raw mut byte).cast(), 1) };
        hang()
    }
    fn announce_then_spin_ignoring_sigterm(path: String) {
        // SAFETY: setting a signal's disposition to "ignore" installs no handler code.
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
        announce(&path);
        loop { std::hint::spin_loop() }
    }
    fn announce_then_park_without_death_signal(path: String) {
        // As a task (or a library it calls) might: only the watchdog is left to end the worker.
        // SAFETY: PR_SET_PDEATHSIG takes a signal number (0 clears it); no memory is passed.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) };
        announce(&path);
        hang()
    }
    fn announce_then_await_release(paths: (String, String)) {
        announce(&paths.0);
        // Opening a FIFO for reading blocks until the helper opens it for writing.
        drop(std::fs::File::open(&paths.1).unwrap());
    }
}

const CASE_VAR: &str = "PARENT_DEATH_CASE";

/// How the helper parent dies.
#[derive(Clone, Copy, Debug)]
enum Death {
    /// This process sends it `SIGKILL`.
    Killed,
    /// It calls `std::process::abort` (what `panic = "abort"` does).
    Aborts,
    /// It calls `std::process::exit(0)` with the tasks running.
    Exits,
}

/// What the two busy workers' tasks do when the parent dies.
#[derive(Clone, Copy, Debug)]
enum Busy {
    Parked,
    BlockedInRead,
    SpinningIgnoringSigterm,
    /// Parked after clearing the worker's parent-death signal.
    ParkedWithoutDeathSignal,
}

/// How the pool starts its workers.
#[derive(Clone, Copy, Debug)]
enum Start {
    /// `posix_spawn` of this binary, the pipes on descriptors 3 and 4.
    Spawned,
    /// Through an empty launcher prefix: `env CONCUR_PROCESS_WORKER=stdio <this binary>`, the
    /// frames over stdin and stdout.
    Launched,
}

const STARTS: [Start; 2] = [Start::Spawned, Start::Launched];
const DEATHS: [Death; 3] = [Death::Killed, Death::Aborts, Death::Exits];
const BUSY: [Busy; 4] = [
    Busy::Parked,
    Busy::BlockedInRead,
    Busy::SpinningIgnoringSigterm,
    Busy::ParkedWithoutDeathSignal,
];

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid out-array of two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 returned two fresh descriptors that we own.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Not a test: the helper parent. Starts four workers (each task blocks until this thread has
/// read its pid, so all four run at once), lets two finish, prints `PIDS busy busy idle idle`,
/// then dies as `PARENT_DEATH_CASE` says.
#[test]
fn parent_helper() {
    let Some(case) = std::env::var_os(CASE_VAR) else {
        return;
    };
    let case = case.to_string_lossy().into_owned();
    let mut parts = case.split(':');
    let (Some(start), Some(death), Some(busy)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("{CASE_VAR} is start:death:busy, not {case}");
    };
    let busy_task = match busy {
        "Parked" => announce_then_park,
        "BlockedInRead" => announce_then_read,
        "SpinningIgnoringSigterm" => announce_then_spin_ignoring_sigterm,
        "ParkedWithoutDeathSignal" => announce_then_park_without_death_signal,
        other => panic!("unknown busy kind {other}"),
    };
    let builder = ProcessPool::builder().max_workers(4);
    let pool = match start {
        "Spawned" => builder,
        "Launched" => builder.launcher(Vec::<String>::new()),
        other => panic!("unknown start {other}"),
    }
    .build()
    .unwrap();
    let fifos: Vec<Fifo> = (0..4).map(|i| Fifo::new(&format!("parent-{i}"))).collect();
    let releases: Vec<Fifo> = (0..2).map(|i| Fifo::new(&format!("release-{i}"))).collect();
    let _busy: Vec<_> = fifos[..2]
        .iter()
        .map(|fifo| pool.submit(busy_task, fifo.path_string()).unwrap())
        .collect();
    let idle: Vec<_> = fifos[2..]
        .iter()
        .zip(&releases)
        .map(|(fifo, release)| {
            let paths = (fifo.path_string(), release.path_string());
            pool.submit(announce_then_await_release, paths).unwrap()
        })
        .collect();
    // Every task holds its worker until this thread has read all four pids.
    let pids: Vec<String> = fifos.iter().map(Fifo::read_line).collect();
    for (release, future) in releases.iter().zip(&idle) {
        drop(
            std::fs::OpenOptions::new()
                .write(true)
                .open(&release.path)
                .unwrap(),
        );
        future.result().unwrap();
    }
    // Every FIFO has served; remove their directories now, since this process dies without
    // running destructors.
    drop((fifos, releases));
    println!("PIDS {}", pids.join(" "));
    match death {
        "Killed" => hang(),
        "Aborts" => std::process::abort(),
        "Exits" => std::process::exit(0),
        other => panic!("unknown death {other}"),
    }
}

/// Waits until every pidfd is readable (its process exited); returns when each did.
fn exit_times(fds: &[OwnedFd], limit: Duration) -> Vec<Option<Instant>> {
    let deadline = Instant::now() + limit;
    let mut times = vec![None; fds.len()];
    while times.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let mut polls: Vec<libc::pollfd> = fds
            .iter()
            .zip(&times)
            .filter(|(_, t)| t.is_none())
            .map(|(fd, _)| libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `polls` is a valid array of pollfds.
        unsafe {
            libc::poll(
                polls.as_mut_ptr(),
                polls.len() as _,
                left.as_millis() as i32,
            )
        };
        let now = Instant::now();
        for p in polls.iter().filter(|p| p.revents != 0) {
            let i = fds.iter().position(|fd| fd.as_raw_fd() == p.fd).unwrap();
            times[i] = Some(now);
        }
    }
    times
}

/// Reaps a worker reparented to this subreaper; returns its wait status.
fn reap(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer; `pid` was reparented to us.
    let got = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(
        got,
        pid,
        "worker {pid} was not reparented to this subreaper: {}",
        std::io::Error::last_os_error()
    );
    status
}

/// One case: the time from the parent's death to its last worker's.
fn parent_death_to_last_worker(start: Start, death: Death, busy: Busy) -> Result<Duration, String> {
    let case = format!("{start:?}:{death:?}:{busy:?}");
    let (mut parent, workers) = start_helper_parent("parent_helper", CASE_VAR, &case);
    let parent_fd = pidfd(parent.id());
    let fds: Vec<OwnedFd> = workers.iter().map(|&pid| pidfd(pid)).collect();
    if let Death::Killed = death {
        parent.kill().unwrap();
    }
    // The parent's own end is its pidfd becoming readable; it is also reaped here.
    let parent_gone = exit_times(std::slice::from_ref(&parent_fd), Duration::from_secs(10))[0]
        .ok_or("the helper parent did not die")?;
    parent.wait().unwrap();
    // Generous for a loaded machine; the figures are what the report compares with 50 ms.
    let times = exit_times(&fds, Duration::from_secs(1));
    let mut last = Duration::ZERO;
    let mut survivors = Vec::new();
    let mut not_killed = Vec::new();
    for (i, (&pid, exited)) in workers.iter().zip(&times).enumerate() {
        match exited {
            Some(t) => last = last.max(t.saturating_duration_since(parent_gone)),
            None => {
                survivors.push(pid);
                // Do not leak it past the test.
                // SAFETY: signalling our own (reparented) child.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
        let status = reap(pid as i32);
        // The busy ones (the first two) cannot end by themselves: they must have been killed.
        let killed = libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL;
        if i < 2 && !killed {
            not_killed.push((pid, status));
        }
    }
    if !survivors.is_empty() {
        Err(format!(
            "workers {survivors:?} alive 1 s after their parent died"
        ))
    } else if !not_killed.is_empty() {
        Err(format!(
            "busy workers not killed: (pid, status) {not_killed:?}"
        ))
    } else {
        Ok(last)
    }
}

#[test]
fn every_worker_dies_with_its_parent_whatever_its_task_does() {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes a flag; no memory is passed.
    let subreaper = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(subreaper, 0);
    let mut failures = Vec::new();
    for start in STARTS {
        for death in DEATHS {
            for busy in BUSY {
                let case = format!("{start:?} workers, parent {death:?}, busy tasks {busy:?}");
                match parent_death_to_last_worker(start, death, busy) {
                    Ok(took) => eprintln!("{case}: last worker gone {took:?} after the parent"),
                    Err(error) => failures.push(format!("{case}: {error}")),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
