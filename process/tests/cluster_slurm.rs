//! The pool's launcher mode through a real Slurm: each worker is an `srun -u -N1 -n1` job on
//! the one-node cluster `.ci/engines/slurm.sh` starts on this machine.

mod common;
mod engines;

use std::time::Duration;

use concur_process::ProcessPool;
use engines::{Engine, RESULT_BOUND, Victim, tasks};

concur_process::test_worker!();

/// How long a finished job may take to leave `squeue`.
const JOB_GONE_BOUND: Duration = Duration::from_secs(10);

fn srun_pool(workers: usize, job_name: &str) -> concur_process::ProcessPoolBuilder {
    ProcessPool::builder()
        .max_workers(workers)
        .launcher(engines::srun_launcher(job_name))
        .startup_timeout(RESULT_BOUND)
}

/// A job name of this test process's own, so parallel tests see only their own jobs.
fn job_name(test: &str) -> String {
    format!("concur-{test}-{}", std::process::id())
}

/// The ids of the jobs named `name` that are in the queue (pending, running, completing).
fn jobs_named(name: &str) -> Vec<String> {
    let conf = format!("SLURM_CONF={}", engines::slurm_conf());
    engines::output_of("env", &[&conf, "squeue", "-h", "-n", name, "-o", "%i"])
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// Drops `pool` and checks that none of its jobs (named `name`) stays in the queue.
fn assert_no_job_after_drop(pool: ProcessPool, name: &str) {
    drop(pool);
    assert!(
        engines::eventually(JOB_GONE_BOUND, || jobs_named(name).is_empty()),
        "jobs left after the pool was dropped: {:?}",
        jobs_named(name)
    );
}

fn scancel(job: &str) {
    let conf = format!("SLURM_CONF={}", engines::slurm_conf());
    engines::output_of("env", &[&conf, "scancel", job]);
}

#[test]
fn tasks_run_as_srun_steps_and_leave_no_job() {
    if !engines::require(Engine::Slurm) {
        return;
    }
    let name = job_name("run");
    let pool = srun_pool(2, &name)
        .stderr(std::fs::File::create("/dev/null").unwrap())
        .build()
        .unwrap();
    engines::assert_tasks_run(&pool, 100);
    let job = pool
        .submit(tasks::env_var, "SLURM_JOB_ID".to_owned())
        .unwrap();
    let job = job.result_timeout(RESULT_BOUND).unwrap().clone();
    let job = job.expect("the worker runs inside a Slurm job");
    assert!(jobs_named(&name).contains(&job), "job {job} not in squeue");
    assert_no_job_after_drop(pool, &name);
}

#[test]
fn scancel_of_a_step_fails_only_its_call() {
    if !engines::require(Engine::Slurm) {
        return;
    }
    let name = job_name("scancel");
    let pool = srun_pool(1, &name).build().unwrap();
    let (hung, announced) = engines::hung_call(&pool, "slurm-scancel");
    let job = announced[1].clone();
    let srun = pool.worker_pids();
    scancel(&job);
    let died = engines::worker_died(&hung);
    assert_eq!(srun, [died.pid]);
    println!("step of job {job} cancelled: {died}");
    let after = pool.submit(tasks::square, 3).unwrap();
    assert_eq!(*after.result_timeout(RESULT_BOUND).unwrap(), 9);
    assert_no_job_after_drop(pool, &name);
}

#[test]
fn killing_the_steps_worker_fails_only_its_call() {
    if !engines::require(Engine::Slurm) {
        return;
    }
    let name = job_name("kill");
    let pool = srun_pool(1, &name).build().unwrap();
    let died = engines::kill_during_a_call(&pool, Victim::Worker);
    // srun reports a task killed by a signal as 128 + the signal.
    assert_eq!(
        died.status,
        concur_process::ExitStatus::Exited(128 + libc::SIGKILL)
    );
    assert_no_job_after_drop(pool, &name);
}

/// What a fix for leaked jobs can rely on: `srun` given SIGTERM cancels its step and exits,
/// where the SIGKILL the pool sends today leaves the job running (and holding its CPUs) until
/// `scancel`.
#[test]
fn sigterm_to_srun_cancels_its_step() {
    if !engines::require(Engine::Slurm) {
        return;
    }
    let name = job_name("sigterm");
    let pool = srun_pool(1, &name).build().unwrap();
    let (hung, announced) = engines::hung_call(&pool, "slurm-sigterm");
    let job = announced[1].clone();
    let [srun] = pool.worker_pids()[..] else {
        panic!("one worker, one srun: {:?}", pool.worker_pids());
    };
    // SAFETY: plain kill(2) of the pool's live launcher process.
    unsafe { libc::kill(srun as libc::pid_t, libc::SIGTERM) };
    let died = engines::worker_died(&hung);
    assert_eq!(died.pid, srun);
    println!("srun of job {job} given SIGTERM: {died}");
    assert!(
        engines::eventually(JOB_GONE_BOUND, || !jobs_named(&name).contains(&job)),
        "job {job} still queued after its srun got SIGTERM"
    );
    assert_no_job_after_drop(pool, &name);
}

/// The pool kills a step's `srun` with SIGTERM before SIGKILL, so the step is cancelled rather
/// than its job left running (a SIGKILLed srun leaves it in state R for minutes).
fn assert_no_job_after_the_pool_kills(name: &str, kill: impl FnOnce(&ProcessPool)) {
    let pool = srun_pool(1, name)
        .task_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let (hung, announced) = engines::hung_call(&pool, name);
    let job = announced[1].clone();
    kill(&pool);
    let failure = hung.error_timeout(RESULT_BOUND).unwrap().unwrap();
    println!("job {job}: {failure}");
    assert!(
        engines::eventually(JOB_GONE_BOUND, || !jobs_named(name).contains(&job)),
        "job {job} still queued after the pool killed its srun: {:?}",
        jobs_named(name)
    );
    assert_no_job_after_drop(pool, name);
}

#[test]
fn a_timed_out_step_leaves_no_job() {
    if !engines::require(Engine::Slurm) {
        return;
    }
    let name = job_name("timeout");
    assert_no_job_after_the_pool_kills(&name, |_| {});
}

#[test]
fn kill_workers_leaves_no_job() {
    if !engines::require(Engine::Slurm) {
        return;
    }
    let name = job_name("killworkers");
    assert_no_job_after_the_pool_kills(&name, ProcessPool::kill_workers);
}
