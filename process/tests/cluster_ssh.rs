//! The pool's launcher mode through a real OpenSSH: workers started as
//! `ssh -F <config> concur-local <this test binary>` against an sshd on 127.0.0.1 that
//! `.ci/engines/sshd.sh` starts (with connection multiplexing, as the generated config sets).

mod common;
mod engines;

use concur_process::{ExitStatus, ProcessPool, WorkerDied};
use engines::{Engine, RESULT_BOUND, tasks};

concur_process::test_worker!();

fn ssh_pool(workers: usize) -> ProcessPool {
    ProcessPool::builder()
        .max_workers(workers)
        .launcher(engines::ssh_prefix())
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
        .launcher(engines::ssh_prefix())
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
    // The sessions went through the multiplexing master the config asks for.
    engines::output_of(
        "ssh",
        &["-F", &engines::ssh_config(), "-O", "check", "concur-local"],
    );
    drop(pool);
    let printed = std::fs::read_to_string(&log).unwrap();
    assert!(printed.contains("chatty 0\n"), "prints: {printed:?}");
    assert!(printed.contains("chatty 199\n"), "prints: {printed:?}");
    let _ = std::fs::remove_file(log);
}

/// Which end of a worker's ssh link a test kills.
#[derive(Clone, Copy)]
enum Victim {
    RemoteWorker,
    LocalClient,
}

/// SIGKILLs `victim` while a call runs on a one-worker pool; checks that only that call fails
/// and the pool's next call succeeds. Returns the error, the remote worker's pid and the ssh
/// client's.
fn kill_during_a_call(victim: Victim) -> (WorkerDied, u32, u32) {
    let pool = ssh_pool(1);
    let (hung, announced) = engines::hung_call(&pool, "ssh-kill");
    let remote: u32 = announced[0].parse().unwrap();
    let [client] = pool.worker_pids()[..] else {
        panic!("one worker, one ssh client: {:?}", pool.worker_pids());
    };
    common::sigkill(match victim {
        Victim::RemoteWorker => remote,
        Victim::LocalClient => client,
    });
    let died = engines::worker_died(&hung);
    // The pool knows the ssh client, not the remote process.
    assert_eq!(died.pid, client);
    let after = pool.submit(tasks::square, 3).unwrap();
    assert_eq!(*after.result_timeout(RESULT_BOUND).unwrap(), 9);
    (died, remote, client)
}

#[test]
fn killing_the_remote_worker_fails_only_its_call() {
    if !engines::require(Engine::Ssh) {
        return;
    }
    let (died, _, _) = kill_during_a_call(Victim::RemoteWorker);
    // ssh reports a remote command killed by a signal as its own exit status 255.
    assert_eq!(died.status, ExitStatus::Exited(255));
}

#[test]
fn killing_the_local_ssh_client_fails_only_its_call() {
    if !engines::require(Engine::Ssh) {
        return;
    }
    let (died, remote, _) = kill_during_a_call(Victim::LocalClient);
    assert_eq!(died.status, ExitStatus::Signaled(libc::SIGKILL));
    // Without heartbeats nothing tells a busy remote worker its pool is gone: report whether it
    // outlived its client, then end it (the test stops what it started).
    let fate = if common::exists(remote) {
        "still running (orphan)"
    } else {
        "gone"
    };
    println!("remote worker {remote} after its ssh client was killed: {fate}");
    common::sigkill(remote);
}

fn tempfile_path(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("concur-{tag}-{}", std::process::id()))
}
