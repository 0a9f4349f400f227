//! Reference figures for issue 11's budgets, measured against the sshd that
//! `.ci/engines/sshd.sh start` runs on 127.0.0.1 (its client config: `CONCUR_SSH_CONFIG`, by
//! default `target/engines/env/ssh_config`, host alias `concur-local`):
//!
//! - a 1-byte round trip through an ssh session's stdio to `cat`, against a local pipe to `cat`;
//! - `ssh concur-local true` with and without connection multiplexing;
//! - a no-op task's round trip over the ssh launcher, against that raw ssh round trip;
//! - 4 ssh workers started to first result, against one ssh connection's set-up;
//! - `map` at chunksize 1000 over 2 ssh workers, against the local pool's;
//! - a remote worker SIGKILLed to `WorkerDied`, against the ssh client's own EOF on a killed
//!   remote `cat`;
//! - start to first result and no-op round trip through `srun -u` (when `slurm.sh start` ran)
//!   and `mpirun -np 1`, against the same worker on local stdio (an empty launcher prefix).
//!
//! ```text
//! .ci/engines/sshd.sh start
//! cargo run --release -p concur-process --example cluster_figures
//! .ci/engines/sshd.sh stop
//! ```
//!
//! Each figure is the median of several rounds (and the best round beside it): the machine may
//! be shared, so the load average is printed before and after.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use concur_process::{Launcher, MapOptions, ProcessPool};

#[path = "common/rounds.rs"]
mod rounds;
use rounds::round_means;

mod tasks {
    concur_process::task! {
        pub fn noop(x: u64) -> u64 { x }
        pub fn pid() -> u32 { std::process::id() }
        pub fn hang() { loop { std::thread::park(); } }
    }
}

/// How long any single result may take before the run gives up.
const BOUND: Duration = Duration::from_secs(30);

/// Median and best of several rounds, each the mean of `per_round` calls of `once`.
struct Spread {
    median: Duration,
    best: Duration,
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:>9.1?} (best {:.1?})", self.median, self.best)
    }
}

impl Spread {
    fn of(mut runs: Vec<Duration>) -> Self {
        runs.sort();
        Self {
            median: runs[runs.len() / 2],
            best: runs[0],
        }
    }

    fn ratio(&self, reference: &Spread) -> f64 {
        self.median.as_secs_f64() / reference.median.as_secs_f64()
    }
}

fn rounds(rounds: usize, per_round: u32, once: impl FnMut()) -> Spread {
    Spread::of(round_means(rounds, per_round, once))
}

fn ssh_config() -> String {
    std::env::var("CONCUR_SSH_CONFIG").unwrap_or_else(|_| {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let path = repo.join("target/engines/env/ssh_config");
        path.to_string_lossy().into_owned()
    })
}

/// `ssh -F <config> [options] concur-local`, the prefix of every ssh command here.
fn ssh(options: &[&str]) -> Vec<String> {
    let mut argv = vec!["ssh".to_owned(), "-F".to_owned(), ssh_config()];
    argv.extend(options.iter().map(|o| (*o).to_owned()));
    argv.push("concur-local".to_owned());
    argv
}

const NO_MULTIPLEXING: [&str; 4] = ["-o", "ControlMaster=no", "-o", "ControlPath=none"];

/// One byte to `argv` (an echo program) and back, over its stdin and stdout.
fn byte_round_trip(argv: &[String]) -> Spread {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let mut to = child.stdin.take().unwrap();
    let mut from = child.stdout.take().unwrap();
    let mut byte = [7u8];
    let spread = rounds(10, 1000, || {
        to.write_all(&byte).unwrap();
        from.read_exact(&mut byte).unwrap();
    });
    drop(to);
    child.wait().unwrap();
    spread
}

/// `argv true` run to completion, several times.
fn command_time(argv: &[String]) -> Spread {
    rounds(10, 1, || {
        let status = Command::new(&argv[0])
            .args(&argv[1..])
            .arg("true")
            .status()
            .unwrap();
        assert!(status.success(), "{argv:?} true: {status}");
    })
}

fn ssh_pool(workers: usize) -> ProcessPool {
    ProcessPool::builder()
        .max_workers(workers)
        .launcher(Launcher::ssh(["concur-local"]).args(["-F", &ssh_config()]))
        .startup_timeout(BOUND)
        .build()
        .expect("start a pool over ssh")
}

fn noop_round_trip(pool: &ProcessPool) -> Spread {
    rounds(10, 1000, || {
        let future = pool.submit(tasks::noop, 1).unwrap();
        assert_eq!(*future.result_timeout(BOUND).unwrap(), 1);
    })
}

/// Closes the multiplexing master, so the next ssh connects from scratch.
fn close_master() {
    let mut argv = ssh(&["-O", "exit"]);
    let program = argv.remove(0);
    let _ = Command::new(program)
        .args(argv)
        .stderr(Stdio::null())
        .status();
}

/// From `build` to the first result, and to all four, of a 4-worker ssh pool given 4 calls;
/// `cold`: with no multiplexing master up at `build` (the workers race to become it).
fn four_workers_started(cold: bool) -> (Spread, Spread) {
    let (mut first, mut all) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        if cold {
            close_master();
        }
        let start = Instant::now();
        let pool = ssh_pool(4);
        let futures: Vec<_> = (0..4)
            .map(|i| pool.submit(tasks::noop, i).unwrap())
            .collect();
        futures[0].result_timeout(BOUND).unwrap();
        first.push(start.elapsed());
        for future in &futures {
            future.result_timeout(BOUND).unwrap();
        }
        all.push(start.elapsed());
    }
    (Spread::of(first), Spread::of(all))
}

fn map_rate(pool: &ProcessPool, items: u64) -> f64 {
    let options = MapOptions::new().chunksize(1000);
    let _ = pool.map_with(tasks::noop, 0..10_000u64, options).count();
    let start = Instant::now();
    let sum: u64 = pool
        .map_with(tasks::noop, 0..items, options)
        .map(Result::unwrap)
        .sum();
    assert_eq!(sum, items * (items - 1) / 2);
    items as f64 / start.elapsed().as_secs_f64()
}

fn sigkill(pid: u32) {
    // SAFETY: plain kill(2) of a process this run started (through ssh).
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
}

/// A remote `cat` SIGKILLed to its ssh client's EOF on stdout: ssh's own death detection.
fn raw_kill_to_eof() -> Spread {
    let runs = (0..10)
        .map(|_| {
            let mut argv = ssh(&[]);
            argv.push("sh -c 'echo $$; exec cat'".into());
            let mut child = Command::new(&argv[0])
                .args(&argv[1..])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut out = child.stdout.take().unwrap();
            let mut line = Vec::new();
            let mut byte = [0u8];
            while out.read_exact(&mut byte).is_ok() && byte[0] != b'\n' {
                line.push(byte[0]);
            }
            let pid: u32 = String::from_utf8_lossy(&line).trim().parse().unwrap();
            let start = Instant::now();
            sigkill(pid);
            let _ = out.read_to_end(&mut Vec::new());
            let elapsed = start.elapsed();
            child.wait().unwrap();
            elapsed
        })
        .collect();
    Spread::of(runs)
}

/// The pid of a pool's (one) remote worker and a call that hangs on it, picked up by it.
fn start_hung_call(pool: &ProcessPool) -> (u32, concur_core::Future<()>) {
    let remote = *pool
        .submit(tasks::pid, ())
        .unwrap()
        .result_timeout(BOUND)
        .unwrap();
    let hung = pool.submit(tasks::hang, ()).unwrap();
    while !hung.is_running() {
        std::thread::yield_now();
    }
    // Give the worker time to read the call, so that a kill lands mid-task (a call still
    // unread in the pipe would be re-queued, not failed). A figure, not a test: a late read
    // only shows as a slower round.
    std::thread::sleep(Duration::from_millis(5));
    (remote, hung)
}

/// A remote worker SIGKILLed mid-call to the call's `WorkerDied`.
fn pool_kill_to_error(pool: &ProcessPool) -> Spread {
    let runs = (0..10)
        .map(|_| {
            let (remote, hung) = start_hung_call(pool);
            let start = Instant::now();
            sigkill(remote);
            let failure = hung.error_timeout(BOUND).unwrap();
            let elapsed = start.elapsed();
            assert!(failure.is_some(), "the hung call failed");
            elapsed
        })
        .collect();
    Spread::of(runs)
}

/// A remote worker SIGSTOPped mid-call to the call's `WorkerDied` (heartbeat lost), at a
/// heartbeat `interval`; the stopped worker is continued afterwards (it then ends itself).
fn stop_to_error(interval: Duration, rounds: usize) -> Spread {
    let pool = ProcessPool::builder()
        .max_workers(1)
        .launcher(Launcher::ssh(["concur-local"]).args(["-F", &ssh_config()]))
        .heartbeat(interval)
        .startup_timeout(BOUND)
        .build()
        .expect("start a pool over ssh");
    let runs = (0..rounds)
        .map(|_| {
            let (remote, hung) = start_hung_call(&pool);
            let start = Instant::now();
            // SAFETY: plain kill(2) of a process this run started (through ssh).
            unsafe { libc::kill(remote as libc::pid_t, libc::SIGSTOP) };
            let failure = hung.error_timeout(BOUND).unwrap();
            let elapsed = start.elapsed();
            // SAFETY: as above.
            unsafe { libc::kill(remote as libc::pid_t, libc::SIGCONT) };
            assert!(failure.is_some(), "the stopped call failed");
            elapsed
        })
        .collect();
    Spread::of(runs)
}

/// From `build` to the first result of a one-worker pool through `prefix`, and its no-op
/// round trip.
fn through(prefix: &[String]) -> (Spread, Spread) {
    let starts = (0..5)
        .map(|_| {
            let start = Instant::now();
            let pool = ProcessPool::builder()
                .max_workers(1)
                .launcher(prefix)
                .startup_timeout(BOUND)
                .build()
                .unwrap();
            pool.submit(tasks::noop, 1)
                .unwrap()
                .result_timeout(BOUND)
                .unwrap();
            start.elapsed()
        })
        .collect();
    let pool = ProcessPool::builder()
        .max_workers(1)
        .launcher(prefix)
        .build()
        .unwrap();
    (Spread::of(starts), noop_round_trip(&pool))
}

/// The launchers besides ssh that can run here, with their prefixes.
fn other_launchers() -> Vec<(&'static str, Vec<String>)> {
    let mut launchers = vec![("local stdio (reference)", Vec::new())];
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let slurm_conf = repo.join("target/engines/env/slurm.conf");
    if slurm_conf.exists() {
        let conf = format!("SLURM_CONF={}", slurm_conf.display());
        let srun = ["env", &conf, "srun", "-u", "-N1", "-n1", "--"];
        launchers.push(("srun -u -N1 -n1", srun.map(String::from).to_vec()));
    } else {
        println!("srun: not measured (run .ci/engines/slurm.sh start first)");
    }
    let mpirun = [
        "env",
        "OMPI_ALLOW_RUN_AS_ROOT=1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1",
        "mpirun",
        "--allow-run-as-root",
        "--oversubscribe",
        "--mca",
        "odls_base_sigkill_timeout",
        "0",
        "-np",
        "1",
    ];
    launchers.push(("mpirun -np 1", mpirun.map(String::from).to_vec()));
    launchers
}

fn uptime() -> String {
    let out = Command::new("uptime").output().map(|o| o.stdout);
    String::from_utf8_lossy(&out.unwrap_or_default())
        .trim()
        .to_owned()
}

fn main() {
    concur_process::worker_main();
    println!("load before: {}", uptime());
    let cat = ["cat".to_owned()];
    let pipe = byte_round_trip(&cat);
    let mut over_ssh = ssh(&[]);
    over_ssh.push("cat".into());
    let ssh_rt = byte_round_trip(&over_ssh);
    let mut over_plain_ssh = ssh(&NO_MULTIPLEXING);
    over_plain_ssh.push("cat".into());
    let plain_ssh_rt = byte_round_trip(&over_plain_ssh);
    println!("1-byte round trip, local pipe to cat:        {pipe}");
    println!(
        "1-byte round trip, ssh stdio to cat (mux):   {ssh_rt}  {:.2}x the pipe",
        ssh_rt.ratio(&pipe)
    );
    println!(
        "1-byte round trip, ssh stdio to cat (plain): {plain_ssh_rt}  {:.2}x the pipe",
        plain_ssh_rt.ratio(&pipe)
    );

    let plain = command_time(&ssh(&NO_MULTIPLEXING));
    let muxed = command_time(&ssh(&[]));
    println!("ssh concur-local true, no multiplexing:      {plain}");
    println!(
        "ssh concur-local true, multiplexed:          {muxed}  {:.2}x",
        muxed.ratio(&plain)
    );

    let pool = ssh_pool(1);
    let task_rt = noop_round_trip(&pool);
    drop(pool);
    println!(
        "no-op task round trip over ssh launcher:     {task_rt}  {:.2}x the raw ssh round trip (budget 1.1x)",
        task_rt.ratio(&ssh_rt)
    );

    for (cold, label) in [(true, "no master"), (false, "master up")] {
        let (first, all) = four_workers_started(cold);
        println!(
            "4 ssh workers ({label}), to first result: {first}  {:.2}x one plain ssh set-up, {:.2}x a multiplexed one (budget 1.2x)",
            first.ratio(&plain),
            first.ratio(&muxed)
        );
        println!(
            "4 ssh workers ({label}), to all 4:        {all}  {:.2}x one plain ssh set-up",
            all.ratio(&plain)
        );
    }

    let items = 2_000_000;
    let remote = map_rate(&ssh_pool(2), items);
    let local = map_rate(
        &ProcessPool::builder().max_workers(2).build().unwrap(),
        items,
    );
    println!(
        "map chunksize 1000, 2 workers: ssh {remote:.0} items/s, local {local:.0} items/s ({:.2}x, budget 1.2x)",
        local / remote
    );

    let raw_kill = raw_kill_to_eof();
    let pool_kill = pool_kill_to_error(&ssh_pool(1));
    println!("remote cat SIGKILLed to ssh's EOF:          {raw_kill}");
    println!(
        "remote worker SIGKILLed to WorkerDied:       {pool_kill}  {:.2}x ssh's EOF (budget 1.2x)",
        pool_kill.ratio(&raw_kill)
    );

    for (interval, rounds) in [(100, 5), (250, 5), (1000, 3)] {
        let interval = Duration::from_millis(interval);
        let stop = stop_to_error(interval, rounds);
        println!(
            "remote worker SIGSTOPped to WorkerDied, heartbeat {interval:?}: {stop}  (bound 2x = {:?})",
            interval * 2
        );
    }

    for (label, prefix) in other_launchers() {
        let (start, rt) = through(&prefix);
        println!("{label:>24}: start to first result {start}, no-op round trip {rt}");
    }
    println!("load after: {}", uptime());
}
