//! The seeds' prime check on workers past this process: over ssh, or as Slurm steps when run
//! inside a Slurm allocation (`SLURM_JOB_ID` set). Each worker is this same executable,
//! started by the launcher at the same path, so the hosts must share it (here: 127.0.0.1).
//!
//! ```text
//! .ci/engines/sshd.sh start
//! cargo run --release -p concur-process --example cluster
//! .ci/engines/sshd.sh stop
//! ```
//!
//! Under Slurm (one worker per task of the allocation; the test cluster: `.ci/engines/slurm.sh
//! start`, then `export SLURM_CONF=target/engines/env/slurm.conf`):
//!
//! ```text
//! cargo build --release -p concur-process --example cluster
//! salloc -n2 target/release/examples/cluster
//! ```
//!
//! The ssh client config comes from `CONCUR_SSH_CONFIG` (default: the one `sshd.sh` writes,
//! `target/engines/env/ssh_config`), the host from `CONCUR_SSH_HOST` (default `concur-local`).

use std::path::PathBuf;

use concur_process::{Launcher, ProcessPool};

#[path = "common/primes.rs"]
mod primes;
use primes::{PRIMES, is_prime};

/// Where the workers run, and how they are started.
struct Placement {
    describe: String,
    workers: usize,
    launcher: Launcher,
}

/// One `srun` step per worker, one per task of the allocation, spread over its nodes
/// (`Launcher::srun` reads `SLURM_JOB_NODELIST` and always passes `-u`).
fn slurm(job: &str) -> Placement {
    let workers = std::env::var("SLURM_NTASKS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    Placement {
        describe: format!("{workers} srun steps in Slurm job {job}"),
        workers,
        launcher: Launcher::srun().args(["--exact"]),
    }
}

fn ssh() -> Placement {
    let config = std::env::var("CONCUR_SSH_CONFIG").unwrap_or_else(|_| {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        repo.join("target/engines/env/ssh_config")
            .to_string_lossy()
            .into_owned()
    });
    let host = std::env::var("CONCUR_SSH_HOST").unwrap_or_else(|_| "concur-local".into());
    Placement {
        describe: format!("2 workers over ssh to {host} (config {config})"),
        workers: 2,
        launcher: Launcher::ssh([host]).args(["-F", &config]),
    }
}

fn main() {
    // In a worker (started through ssh or srun) this serves tasks and never returns.
    concur_process::worker_main();

    let placement = match std::env::var("SLURM_JOB_ID") {
        Ok(job) => slurm(&job),
        Err(_) => ssh(),
    };
    println!("{}", placement.describe);
    let pool = ProcessPool::builder()
        .max_workers(placement.workers)
        .launcher(placement.launcher)
        .build()
        .expect("start the process pool");
    for (number, prime) in PRIMES.iter().zip(pool.map(is_prime, &PRIMES)) {
        match prime {
            Ok(prime) => println!("{number} is prime: {prime}"),
            Err(failure) => {
                eprintln!("{number}: {failure}");
                std::process::exit(1);
            }
        }
    }
}
