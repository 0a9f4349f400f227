//! The tasks the engine tests run in their remote workers.

use std::io::Write;

concur_process::task! {
    pub fn square(x: u64) -> u64 { x * x }

    /// Prints to the worker's stdout (which the worker points at stderr, away from the frames).
    pub fn chatty(x: u64) -> u64 {
        println!("chatty {x}");
        x + 1
    }

    pub fn pid() -> u32 { std::process::id() }

    /// An environment variable as the worker sees it (what its launcher set).
    pub fn env_var(name: String) -> Option<String> { std::env::var(name).ok() }

    /// Writes `<pid> <SLURM_JOB_ID or ->` to the FIFO at `path`, then never returns.
    pub fn announce_and_hang(path: String) {
        let job = std::env::var("SLURM_JOB_ID").unwrap_or_else(|_| "-".into());
        let mut fifo = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        writeln!(fifo, "{} {job}", std::process::id()).unwrap();
        drop(fifo);
        loop {
            std::thread::park();
        }
    }
}

concur_process::task! {
    /// Writes `<pid> <SLURM_JOB_ID or ->` to the FIFO at `path` and hangs the first time (when
    /// `marker` does not exist yet, creating it); answers `x * x` on any later attempt.
    #[idempotent]
    pub fn hang_once_then_square(path: String, marker: String, x: u64) -> u64 {
        let first = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
            .is_ok();
        if first {
            announce_and_hang.call(path);
        }
        x * x
    }
}
