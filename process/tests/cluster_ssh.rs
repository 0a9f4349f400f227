//! The pool's launcher mode through a real OpenSSH: workers started as
//! `ssh -F <config> concur-local <this test binary>` against an sshd on 127.0.0.1 that
//! `.ci/engines/sshd.sh` starts (with connection multiplexing, as the generated config sets).

mod common;
mod engines;

use concur_process::{BrokenProcessPool, ExitStatus, HandshakeError, ProcessPool};
use engines::{Engine, RESULT_BOUND, Victim, tasks};

concur_process::test_worker!();

fn ssh_pool(workers: usize) -> ProcessPool {
    ProcessPool::builder()
        .max_workers(workers)
        .launcher(engines::ssh_launcher())
        .startup_timeout(RESULT_BOUND)
        .build()
        .expect("start a pool over ssh")
}

#[test]
fn tasks_run_over_ssh_print_freely_and_map() {
    if !engines::require(Engine::Ssh) {
        return;
    }
    let log = tempfile_path("ssh-prints");
    let pool = ProcessPool::builder()
        .max_workers(2)
        .launcher(engines::ssh_launcher())
        .startup_timeout(RESULT_BOUND)
        .stderr(std::fs::File::create(&log).unwrap())
        .build()
        .unwrap();
    engines::assert_tasks_run(&pool, 200);
    let worker = pool.submit(tasks::pid, ()).unwrap();
    let worker = *worker.result_timeout(RESULT_BOUND).unwrap();
    // The worker runs under sshd's session, not as a child of this process.
    let chain = engines::ancestors(worker);
    assert!(
        chain.iter().any(|name| name == "sshd"),
        "worker {worker}'s ancestors {chain:?} include no sshd"
    );
    assert!(
        !chain
            .iter()
            .take(2)
            .any(|name| name.starts_with("cluster_ssh"))
    );
    // The sessions went through the connection master the pool brought up.
    engines::assert_master_lives_until_dropped(pool);
    let printed = std::fs::read_to_string(&log).unwrap();
    assert!(printed.contains("chatty 0\n"), "prints: {printed:?}");
    assert!(printed.contains("chatty 199\n"), "prints: {printed:?}");
    let _ = std::fs::remove_file(log);
}

#[test]
fn killing_the_remote_worker_fails_only_its_call() {
    if !engines::require(Engine::Ssh) {
        return;
    }
    let pool = ssh_pool(1);
    let died = engines::kill_during_a_call(&pool, Victim::Worker);
    // The replacement that ran the next call is listed with its host.
    assert!(format!("{pool:?}").contains("@concur-local"), "{pool:?}");
    // ssh reports a remote command killed by a signal as its own exit status 255.
    assert_eq!(died.status, ExitStatus::Exited(255));
    assert_eq!(died.host, "concur-local");
    assert!(died.to_string().contains(" on concur-local "), "{died}");
}

#[test]
fn killing_the_local_ssh_client_fails_only_its_call() {
    if !engines::require(Engine::Ssh) {
        return;
    }
    engines::kill_during_a_call(&ssh_pool(1), Victim::Launcher);
}

/// Not a test: a worker of "another build" that the pool below starts over ssh. It greets
/// with a fingerprint that is not this build's, then waits for its stdin to close.
#[test]
fn other_build_worker() {
    if std::env::var_os("CONCUR_TEST_OTHER_BUILD").is_none() {
        return;
    }
    let ours = concur_process::fuzzing::fingerprint();
    let mut greeting = concur_process::fuzzing::launcher_sync().to_vec();
    concur_process::fuzzing::encode_hello(&mut greeting, !ours, std::process::id());
    // SAFETY: plain write(2) and read(2) on this process's stdout and stdin, which the launcher
    // connects to the pool; libtest's capture does not see them.
    unsafe {
        libc::write(1, greeting.as_ptr().cast(), greeting.len());
        let mut byte = [0u8; 1];
        while libc::read(0, byte.as_mut_ptr().cast(), 1) > 0 {}
    }
    std::process::exit(0);
}

#[test]
fn a_remote_worker_of_another_build_is_refused() {
    if !engines::require(Engine::Ssh) {
        return;
    }
    let pool = ProcessPool::builder()
        .max_workers(1)
        .launcher(engines::ssh_launcher())
        .worker_args([
            "other_build_worker",
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env("CONCUR_TEST_OTHER_BUILD", "1")
        .startup_timeout(RESULT_BOUND)
        .build()
        .unwrap();
    let call = pool.submit(tasks::square, 3).unwrap();
    let failure = call.error_timeout(RESULT_BOUND).unwrap().unwrap();
    let broken = failure
        .downcast_ref::<BrokenProcessPool>()
        .unwrap_or_else(|| panic!("not BrokenProcessPool: {failure}"));
    let ours = concur_process::fuzzing::fingerprint();
    assert_eq!(
        broken.cause.downcast_ref::<HandshakeError>(),
        Some(&HandshakeError::Fingerprint {
            expected: ours,
            found: !ours
        }),
        "{broken}"
    );
}

fn tempfile_path(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("concur-{tag}-{}", std::process::id()))
}

#[test]
fn an_idle_remote_worker_exits_when_its_ssh_client_dies() {
    if !engines::require(Engine::Ssh) {
        return;
    }
    let pool = ssh_pool(1);
    let remote = pool.submit(tasks::pid, ()).unwrap();
    let remote = *remote.result_timeout(RESULT_BOUND).unwrap();
    let [client] = pool.worker_pids()[..] else {
        panic!("one worker, one ssh client: {:?}", pool.worker_pids());
    };
    common::sigkill(client);
    // The session's stdin closes, and a worker between calls reads EOF and exits.
    let gone = engines::eventually(RESULT_BOUND, || !common::exists(remote));
    if !gone {
        common::sigkill(remote);
    }
    assert!(gone, "remote worker {remote} outlived its ssh client");
    // A call submitted before the pool reaped the client would go to the dead worker and fail
    // with WorkerDied (as with a local worker killed while idle).
    assert!(engines::eventually(RESULT_BOUND, || !pool
        .worker_pids()
        .contains(&client)));
    let after = pool.submit(tasks::square, 5).unwrap();
    assert_eq!(*after.result_timeout(RESULT_BOUND).unwrap(), 25);
}

#[test]
fn workers_started_together_share_one_master_without_a_race() {
    if !engines::require(Engine::Ssh) {
        return;
    }
    let log = tempfile_path("ssh-race");
    let pool = ProcessPool::builder()
        .max_workers(4)
        .launcher(engines::ssh_launcher())
        .startup_timeout(RESULT_BOUND)
        .stderr(std::fs::File::create(&log).unwrap())
        .build()
        .unwrap();
    // Four calls that each hold a worker until all four run: four workers start at once.
    let fifos: Vec<common::Fifo> = (0..4)
        .map(|i| common::Fifo::new(&format!("race{i}")))
        .collect();
    let calls: Vec<_> = fifos
        .iter()
        .map(|fifo| {
            pool.submit(tasks::announce_and_hang, fifo.path_string())
                .unwrap()
        })
        .collect();
    let pids: std::collections::BTreeSet<String> = fifos
        .iter()
        .map(|fifo| engines::announcement(fifo, RESULT_BOUND)[0].clone())
        .collect();
    assert_eq!(pids.len(), 4, "four workers: {pids:?}");
    let master = engines::control_path_of(pool.worker_pids()[0]);
    assert!(engines::master_is_up(&master), "no ssh master at {master}");
    pool.kill_workers();
    for call in &calls {
        assert!(call.error_timeout(RESULT_BOUND).unwrap().is_some());
    }
    drop(pool);
    let printed = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(log);
    assert!(
        !printed.contains("disabling multiplexing"),
        "a worker raced the master: {printed}"
    );
    assert!(
        !engines::master_is_up(&master),
        "the ssh master outlived its pool"
    );
}

#[test]
fn one_pool_mixes_local_and_ssh_workers_and_names_their_hosts() {
    if !engines::require(Engine::Ssh) {
        return;
    }
    let pool = ProcessPool::builder()
        .max_workers(1)
        .add_workers(1, engines::ssh_launcher())
        .startup_timeout(RESULT_BOUND)
        .build()
        .unwrap();
    assert_eq!(pool.max_workers(), 2);
    let (first, _) = engines::hung_call(&pool, "mixed1");
    let (second, _) = engines::hung_call(&pool, "mixed2");
    let shown = format!("{pool:?}");
    assert!(shown.contains("@concur-local"), "{shown}");
    assert_eq!(pool.worker_pids().len(), 2, "{shown}");
    for pid in pool.worker_pids() {
        common::sigkill(pid);
    }
    let mut hosts = vec![
        engines::worker_died(&first).host,
        engines::worker_died(&second).host,
    ];
    hosts.sort();
    assert!(hosts.contains(&"concur-local".to_owned()), "{hosts:?}");
    assert!(hosts.iter().any(|h| h != "concur-local"), "{hosts:?}");
    let after = pool.submit(tasks::square, 4).unwrap();
    assert_eq!(*after.result_timeout(RESULT_BOUND).unwrap(), 16);
}

#[test]
fn a_stopped_remote_worker_fails_only_its_call_within_the_heartbeat_bound() {
    if !engines::require(Engine::Ssh) {
        return;
    }
    let interval = std::time::Duration::from_millis(200);
    let pool = ProcessPool::builder()
        .max_workers(1)
        .launcher(engines::ssh_launcher())
        .heartbeat(interval)
        .startup_timeout(RESULT_BOUND)
        .build()
        .unwrap();
    let (died, _) = engines::stop_during_a_call(&pool, Victim::Worker);
    assert_eq!(died.host, "concur-local");
}

/// Without multiplexing the ssh client relays the session itself (with it, the master does,
/// and a stopped client changes nothing): stopped, it keeps the streams open and passes
/// nothing, so only heartbeats tell either side.
#[test]
fn a_stopped_ssh_client_fails_only_its_call_and_its_busy_worker_exits() {
    if !engines::require(Engine::Ssh) {
        return;
    }
    let pool = ProcessPool::builder()
        .max_workers(1)
        .launcher(engines::ssh_launcher().multiplexing(false))
        .heartbeat(std::time::Duration::from_millis(200))
        .terminate_grace(std::time::Duration::from_millis(200))
        .startup_timeout(RESULT_BOUND)
        .build()
        .unwrap();
    engines::stop_during_a_call(&pool, Victim::Launcher);
}

#[test]
fn an_idempotent_call_whose_worker_died_in_a_mixed_pool_runs_again() {
    if !engines::require(Engine::Ssh) {
        return;
    }
    let pool = ProcessPool::builder()
        .max_workers(1)
        .add_workers(1, engines::ssh_launcher())
        .retries(1)
        .startup_timeout(RESULT_BOUND)
        .build()
        .unwrap();
    // One worker (local or remote) holds a hung call; the other gets the idempotent one.
    let (busy, _) = engines::hung_call(&pool, "retry-busy");
    let fifo = common::Fifo::new("retry");
    let marker = tempfile_path("retry-marker");
    let _ = std::fs::remove_file(&marker);
    let call = pool
        .submit(
            tasks::hang_once_then_square,
            (
                fifo.path_string(),
                marker.to_string_lossy().into_owned(),
                12,
            ),
        )
        .unwrap();
    let worker: u32 = engines::announcement(&fifo, RESULT_BOUND)[0]
        .parse()
        .unwrap();
    common::sigkill(worker);
    assert_eq!(*call.result_timeout(RESULT_BOUND).unwrap(), 144);
    let _ = std::fs::remove_file(marker);
    pool.kill_workers();
    assert!(busy.error_timeout(RESULT_BOUND).unwrap().is_some());
}
