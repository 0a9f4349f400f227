//! The pool's launcher mode through a real OpenMPI: each worker is rank 0 of its own
//! `mpirun -np 1`, which relays the pool's frames over its stdin and stdout.

mod common;
mod engines;

use concur_process::ProcessPool;
use engines::{Engine, RESULT_BOUND, Victim, tasks};

concur_process::test_worker!();

fn mpirun_pool(workers: usize) -> ProcessPool {
    ProcessPool::builder()
        .max_workers(workers)
        .launcher(engines::mpirun_launcher())
        .startup_timeout(RESULT_BOUND)
        .stderr(std::fs::File::create("/dev/null").unwrap())
        .build()
        .expect("start a pool under mpirun")
}

#[test]
fn tasks_run_as_mpirun_ranks() {
    if !engines::require(Engine::Mpi) {
        return;
    }
    let pool = mpirun_pool(2);
    engines::assert_tasks_run(&pool, 100);
    let rank = pool
        .submit(tasks::env_var, "OMPI_COMM_WORLD_RANK".to_owned())
        .unwrap();
    let rank = rank.result_timeout(RESULT_BOUND).unwrap().clone();
    assert_eq!(rank.as_deref(), Some("0"), "the worker is an MPI rank");
    let worker = *pool
        .submit(tasks::pid, ())
        .unwrap()
        .result_timeout(RESULT_BOUND)
        .unwrap();
    // mpirun starts its ranks itself: the worker's parent is mpirun, which this pool started.
    let chain = engines::ancestors(worker);
    assert!(
        chain
            .first()
            .is_some_and(|parent| parent.starts_with("mpirun") || parent.starts_with("orted")),
        "worker {worker}'s ancestors {chain:?}"
    );
}

#[test]
fn killing_the_rank_fails_only_its_call() {
    if !engines::require(Engine::Mpi) {
        return;
    }
    let died = engines::kill_during_a_call(&mpirun_pool(1), Victim::Worker);
    // mpirun reports a rank killed by a signal as an exit status of its own.
    assert!(died.status.code().is_some_and(|code| code != 0), "{died}");
}

#[test]
fn killing_mpirun_fails_only_its_call() {
    if !engines::require(Engine::Mpi) {
        return;
    }
    engines::kill_during_a_call(&mpirun_pool(1), Victim::Launcher);
}
