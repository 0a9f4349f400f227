//! Launcher mode: the same frames over the worker's stdin and stdout, as through `ssh` or
//! `srun`. An empty launcher prefix runs `env CONCUR_PROCESS_WORKER=stdio <this test binary>`.

use concur_process::{ExitStatus, MapOptions, ProcessPool, WorkerDied};

concur_process::test_worker!();

concur_process::task! {
    fn square(x: u64) -> u64 { x * x }
    fn chatty(x: u64) -> u64 {
        // Goes to the worker's stderr, not into the frames.
        println!("chatty {x}");
        x + 1
    }
    fn pid() -> u32 { std::process::id() }
    fn die() { std::process::exit(9) }
}

#[test]
fn tasks_run_over_stdio_and_may_print() {
    let pool = ProcessPool::builder()
        .max_workers(2)
        .launcher(Vec::<String>::new())
        .stderr(std::fs::File::create("/dev/null").unwrap())
        .build()
        .unwrap();
    assert_eq!(*pool.submit(square, 9).unwrap().result().unwrap(), 81);
    let got: Vec<u64> = pool
        .map_with(chatty, 0..200u64, MapOptions::new().chunksize(7))
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, (1..=200u64).collect::<Vec<_>>());
    assert_ne!(
        *pool.submit(pid, ()).unwrap().result().unwrap(),
        std::process::id()
    );
}

#[test]
fn a_dead_launched_worker_fails_only_its_task() {
    let pool = ProcessPool::builder()
        .max_workers(1)
        .launcher(Vec::<String>::new())
        .build()
        .unwrap();
    let dead = pool.submit(die, ()).unwrap();
    let after = pool.submit(square, 3).unwrap();
    let failure = dead.error().unwrap().unwrap();
    assert_eq!(
        failure.downcast_ref::<WorkerDied>().unwrap().status,
        ExitStatus::Exited(9)
    );
    assert_eq!(*after.result().unwrap(), 9);
}
