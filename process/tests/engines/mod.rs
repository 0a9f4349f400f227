//! Real cluster engines for the integration tests: OpenSSH, Slurm and OpenMPI, started by the
//! scripts in `.ci/engines/` (once per test binary, stopped when it exits if it started them).
//!
//! An engine that truly cannot run here (its package is missing and cannot be installed, or the
//! tests do not run as root) skips its test with `SKIP: <reason>` on the real stderr; under
//! `CI=true` that is a failure instead, so CI never passes without having run them.
#![allow(dead_code)]

pub mod tasks;

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use concur_process::Launcher;

/// How long any wait on a task's result may take before the test fails instead of hanging.
pub const RESULT_BOUND: Duration = Duration::from_secs(30);

/// One of the engines the scripts start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Ssh,
    Slurm,
    Mpi,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Ssh => "ssh",
            Engine::Slurm => "slurm",
            Engine::Mpi => "mpi",
        }
    }

    /// The programs the engine needs (all installed by `.ci/engines/install.sh`).
    fn tools(self) -> &'static [&'static str] {
        match self {
            Engine::Ssh => &["/usr/sbin/sshd", "ssh", "ssh-keygen"],
            Engine::Slurm => &["slurmctld", "slurmd", "srun", "sinfo", "squeue", "munged"],
            Engine::Mpi => &["mpirun"],
        }
    }

    /// The script that starts and stops it, if it runs a daemon.
    fn script(self) -> Option<&'static str> {
        match self {
            Engine::Ssh => Some("sshd.sh"),
            Engine::Slurm => Some("slurm.sh"),
            Engine::Mpi => None,
        }
    }
}

/// The checkout's root (the parent of `process/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("process/ has a parent")
        .to_owned()
}

/// Where the scripts keep their state and write the files the tests read (`env/`).
pub fn engines_dir() -> PathBuf {
    std::env::var_os("CONCUR_ENGINES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/engines"))
}

/// The ssh client configuration `sshd.sh start` writes (host alias `concur-local`).
pub fn ssh_config() -> String {
    path_string(engines_dir().join("env/ssh_config"))
}

/// The Slurm configuration `slurm.sh start` writes; clients read it through `SLURM_CONF`.
pub fn slurm_conf() -> String {
    path_string(engines_dir().join("env/slurm.conf"))
}

fn path_string(path: PathBuf) -> String {
    path.into_os_string()
        .into_string()
        .expect("engine paths are UTF-8")
}

/// The launcher that runs workers on the test sshd: `ssh -F <config> concur-local`, with the
/// pool's own connection master.
pub fn ssh_launcher() -> Launcher {
    Launcher::ssh(["concur-local"]).args(["-F", &ssh_config()])
}

/// The launcher that runs each worker as a one-task `srun` step, named `job_name` so a test
/// can find its own jobs in `squeue`.
pub fn srun_launcher(job_name: &str) -> Launcher {
    Launcher::srun()
        .env("SLURM_CONF", slurm_conf())
        .args(["-J", job_name])
}

/// The launcher that runs a worker as rank 0 of `mpirun -np 1`, allowed to run as root.
pub fn mpirun_launcher() -> Launcher {
    Launcher::mpirun()
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl", "self")
        .args(["--oversubscribe"])
}

/// Makes sure `engine` runs (installing and starting it once per test binary). Returns false
/// after printing `SKIP: <reason>` when it truly cannot run here; panics instead under
/// `CI=true`, and whenever an installed engine fails to start.
#[must_use]
pub fn require(engine: Engine) -> bool {
    static READY: [OnceLock<Result<(), String>>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = &READY[engine as usize];
    match slot.get_or_init(|| prepare(engine)) {
        Ok(()) => true,
        Err(reason) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{} engine unavailable under CI=true: {reason}",
                    engine.name()
                );
            }
            // The real stderr, past libtest's capture: a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "SKIP: {} engine: {reason}",
                engine.name()
            );
            false
        }
    }
}

/// Installs (as root) and starts `engine`; `Err` only when it cannot run here at all.
fn prepare(engine: Engine) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !missing_tools(engine).is_empty() {
        if !root {
            return Err(format!(
                "{} missing and not root to install them (run .ci/engines/install.sh as root)",
                missing_tools(engine).join(", ")
            ));
        }
        run_script("install.sh", &[]).map_err(|e| format!("install.sh failed: {e}"))?;
        let still = missing_tools(engine);
        if !still.is_empty() {
            return Err(format!("{} missing after install.sh", still.join(", ")));
        }
    }
    let Some(script) = engine.script() else {
        return Ok(());
    };
    if run_script(script, &["status"]).is_ok() {
        return Ok(());
    }
    if !root {
        return Err(format!("{script} start needs root"));
    }
    if let Err(error) = run_script(script, &["start"]) {
        panic!("{script} start failed with the engine installed: {error}");
    }
    stop_at_exit(script);
    Ok(())
}

fn missing_tools(engine: Engine) -> Vec<&'static str> {
    engine
        .tools()
        .iter()
        .copied()
        .filter(|tool| !on_path(tool))
        .collect()
}

fn on_path(tool: &str) -> bool {
    if tool.contains('/') {
        return std::path::Path::new(tool).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

/// Runs `.ci/engines/<script> ARGS` under `timeout 120`; its output goes to the real stderr.
fn run_script(script: &str, args: &[&str]) -> Result<(), String> {
    let path = repo_root().join(".ci/engines").join(script);
    let output = Command::new("timeout")
        .arg("120")
        .arg(&path)
        .args(args)
        .output()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut stderr = std::io::stderr();
    let _ = stderr.write_all(&output.stdout);
    let _ = stderr.write_all(&output.stderr);
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{script} {} exited with {}",
            args.join(" "),
            output.status
        ))
    }
}

/// The scripts this process started, stopped by `stop_started` when it exits.
static STARTED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

fn stop_at_exit(script: &'static str) {
    let mut started = STARTED.lock().unwrap();
    if started.is_empty() {
        // SAFETY: `stop_started` is a plain extern "C" function that never unwinds.
        unsafe { libc::atexit(stop_started) };
    }
    started.push(script);
}

extern "C" fn stop_started() {
    let scripts = std::mem::take(&mut *STARTED.lock().unwrap_or_else(|e| e.into_inner()));
    for script in scripts.into_iter().rev() {
        let _ = run_script(script, &["stop"]);
    }
}

/// Runs a command to completion under `timeout 30`, returning its stdout; panics if it fails.
pub fn output_of(program: &str, args: &[&str]) -> String {
    let output = Command::new("timeout")
        .arg("30")
        .arg(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Polls `condition` every 50 ms (an external state change with no event to wait on, such as
/// a job leaving `squeue`); whether it held within `bound`.
pub fn eventually(bound: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads the line a task wrote to `fifo` (see [`tasks::announce_and_hang`]), failing the test
/// after `bound` rather than blocking forever when no worker ever opens it.
pub fn announcement(fifo: &crate::common::Fifo, bound: Duration) -> Vec<String> {
    let path = fifo.path.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let read = std::fs::File::open(&path)
            .and_then(|mut f| std::io::Read::read_to_string(&mut f, &mut text));
        let _ = tx.send(read.map(|_| text));
    });
    let line = rx
        .recv_timeout(bound)
        .unwrap_or_else(|_| panic!("no task announced itself within {bound:?}"))
        .expect("read the FIFO");
    line.split_whitespace().map(String::from).collect()
}

/// The names of `pid`'s ancestors, nearest first, from /proc (as far as they can be read).
pub fn ancestors(pid: u32) -> Vec<String> {
    let mut names = Vec::new();
    let mut at = pid;
    while at > 1 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{at}/stat")) else {
            break;
        };
        // pid (comm) state ppid ...
        let Some((head, rest)) = stat.rsplit_once(')') else {
            break;
        };
        let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) else {
            break;
        };
        at = ppid;
        if let Ok(parent) = std::fs::read_to_string(format!("/proc/{at}/comm")) {
            names.push(parent.trim().to_owned());
        }
        let _ = head;
    }
    names
}

/// The checks every engine's pool passes first: a call's result returns, and `map` over
/// `items` printing tasks returns every result in order.
pub fn assert_tasks_run(pool: &concur_process::ProcessPool, items: u64) {
    let nine = pool.submit(tasks::square, 9).unwrap();
    assert_eq!(*nine.result_timeout(RESULT_BOUND).unwrap(), 81);
    let got: Vec<u64> = pool
        .map_with(
            tasks::chatty,
            0..items,
            concur_process::MapOptions::new().chunksize(7),
        )
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, (1..=items).collect::<Vec<_>>());
}

/// A call that never returns, once its task runs: its future and the words the task announced
/// (its pid and its Slurm job id or `-`).
pub fn hung_call(
    pool: &concur_process::ProcessPool,
    tag: &str,
) -> (concur_core::Future<()>, Vec<String>) {
    let fifo = crate::common::Fifo::new(tag);
    let hung = pool
        .submit(tasks::announce_and_hang, fifo.path_string())
        .unwrap();
    let words = announcement(&fifo, RESULT_BOUND);
    (hung, words)
}

/// The [`WorkerDied`](concur_process::WorkerDied) the call of `future` failed with, within
/// [`RESULT_BOUND`].
pub fn worker_died(future: &concur_core::Future<()>) -> concur_process::WorkerDied {
    let failure = future.error_timeout(RESULT_BOUND).unwrap().unwrap();
    failure
        .downcast_ref::<concur_process::WorkerDied>()
        .unwrap_or_else(|| panic!("not WorkerDied: {failure}"))
        .clone()
}

/// SIGSTOPs `victim` while a call runs on `pool` (one worker, heartbeats on): the call fails
/// with a lost heartbeat, the pool's next call succeeds, and the worker, continued, is gone
/// within the bound (it hears no more from its pool). Returns the error and the time from the
/// stop to the failure.
pub fn stop_during_a_call(
    pool: &concur_process::ProcessPool,
    victim: Victim,
) -> (concur_process::WorkerDied, Duration) {
    let (hung, announced) = hung_call(pool, "stop");
    let worker: u32 = announced[0].parse().unwrap();
    let [launcher] = pool.worker_pids()[..] else {
        panic!("one worker, one launcher: {:?}", pool.worker_pids());
    };
    let stopped_pid = match victim {
        Victim::Worker => worker,
        Victim::Launcher => launcher,
    };
    // SAFETY: plain kill(2) of a process this test's pool started.
    unsafe { libc::kill(stopped_pid as libc::pid_t, libc::SIGSTOP) };
    let stopped = Instant::now();
    let died = worker_died(&hung);
    let latency = stopped.elapsed();
    assert!(
        matches!(died.cause, concur_process::DeathCause::HeartbeatLost { .. }),
        "{died}"
    );
    assert_eq!(died.pid, launcher);
    println!("{victim:?} SIGSTOPped mid-call: WorkerDied after {latency:?}: {died}");
    let after = pool.submit(tasks::square, 3).unwrap();
    assert_eq!(*after.result_timeout(RESULT_BOUND).unwrap(), 9);
    // SAFETY: as above; a stopped process that was killed meanwhile ignores it.
    unsafe { libc::kill(stopped_pid as libc::pid_t, libc::SIGCONT) };
    let gone = eventually(RESULT_BOUND, || !crate::common::exists(worker));
    if !gone {
        crate::common::sigkill(worker);
    }
    assert!(gone, "worker {worker} outlived the pool's verdict");
    (died, latency)
}

/// Which end of a launched worker a test kills.
#[derive(Clone, Copy, Debug)]
pub enum Victim {
    /// The worker process itself (on the far side of the launcher).
    Worker,
    /// The launcher process this pool started (the ssh client, srun, mpirun).
    Launcher,
}

/// SIGKILLs `victim` while a call runs on `pool` (one worker); checks that only that call
/// fails, with the launcher's pid (and, for a killed launcher, its SIGKILL), and that the
/// pool's next call succeeds. Returns the error.
pub fn kill_during_a_call(
    pool: &concur_process::ProcessPool,
    victim: Victim,
) -> concur_process::WorkerDied {
    let (hung, announced) = hung_call(pool, "kill");
    let worker: u32 = announced[0].parse().unwrap();
    let [launcher] = pool.worker_pids()[..] else {
        panic!("one worker, one launcher: {:?}", pool.worker_pids());
    };
    crate::common::sigkill(match victim {
        Victim::Worker => worker,
        Victim::Launcher => launcher,
    });
    let died = worker_died(&hung);
    // The pool knows the launcher, not the process behind it.
    assert_eq!(died.pid, launcher);
    println!("{victim:?} SIGKILLed mid-call: {died}");
    let after = pool.submit(tasks::square, 3).unwrap();
    assert_eq!(*after.result_timeout(RESULT_BOUND).unwrap(), 9);
    if let Victim::Launcher = victim {
        let killed = concur_process::ExitStatus::Signaled(libc::SIGKILL);
        assert_eq!(died.status, killed);
        // A busy worker learns that its pool is gone from its heartbeats (the calls stream
        // ends, or the pool's heartbeats stop): it must not outlive its launcher.
        let killed = std::time::Instant::now();
        let gone = eventually(RESULT_BOUND, || !crate::common::exists(worker));
        if !gone {
            crate::common::sigkill(worker);
        }
        assert!(
            gone,
            "busy worker {worker} outlived its SIGKILLed launcher {launcher}"
        );
        println!(
            "busy worker {worker} gone {:?} after its launcher {launcher} was SIGKILLed",
            killed.elapsed()
        );
    }
    died
}

/// The `ControlPath` option of the ssh client `pid` (a worker's launcher), from its command
/// line: the socket of its pool's connection master.
pub fn control_path_of(pid: u32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    cmdline
        .split(|&b| b == 0)
        .map(String::from_utf8_lossy)
        .find(|arg| arg.starts_with("ControlPath="))
        .unwrap_or_else(|| panic!("ssh client {pid} has no ControlPath"))
        .into_owned()
}

/// Whether the connection master at `control_path` (a `ControlPath=...` option) answers.
pub fn master_is_up(control_path: &str) -> bool {
    std::process::Command::new("timeout")
        .args(["10", "ssh", "-F", &ssh_config(), "-o", control_path])
        .args(["-O", "check", "concur-local"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Asserts that the workers of `pool` go through a live connection master and that dropping
/// the pool closes it.
pub fn assert_master_lives_until_dropped(pool: concur_process::ProcessPool) {
    let master = control_path_of(pool.worker_pids()[0]);
    assert!(master_is_up(&master), "no ssh master at {master}");
    drop(pool);
    assert!(!master_is_up(&master), "the ssh master outlived its pool");
}
