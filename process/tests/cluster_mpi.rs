//! The pool's launcher mode through a real OpenMPI: each worker is rank 0 of its own
//! `mpirun -np 1`, which relays the pool's frames over its stdin and stdout.

mod common;
mod engines;

use concur_process::ProcessPool;
use engines::{Engine, RESULT_BOUND, tasks};

concur_process::test_worker!();

#[test]
fn tasks_run_as_mpirun_ranks() {
    if !engines::require(Engine::Mpi) {
        return;
    }
    let pool = ProcessPool::builder()
        .max_workers(2)
        .launcher(engines::mpirun_prefix())
        .startup_timeout(RESULT_BOUND)
        .stderr(std::fs::File::create("/dev/null").unwrap())
        .build()
        .expect("start a pool under mpirun");
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
