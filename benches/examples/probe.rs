//! Runs one contender of one scenario for a fixed number of operations, for profilers and
//! instruction counts (`compare` times slices; this just does the work, once).
//!
//! ```text
//! cargo build --release -p concur-benches --example probe
//! target/release/examples/probe SCENARIO CONTENDER [OPERATIONS]
//! valgrind --tool=callgrind target/release/examples/probe as_completed ours/as_completed 3
//! perf record -e cpu-clock target/release/examples/probe pool/throughput_100k threadpool 30
//! ```
//!
//! Instructions per operation: run with two operation counts and divide the difference (the
//! set-up cancels out). Under valgrind, threads run one at a time, so a scenario with spinning
//! threads counts their spins too: count single-threaded scenarios there, profile the others
//! with `perf`. SCENARIO is one of `same_thread`, `wait_register/N`, `as_completed`,
//! `pool/round_trip`, `pool/throughput_100k` (N as in `compare`).

use std::process::ExitCode;
use std::time::Instant;

use concur_benches::contender::Scenario;
use concur_benches::scenarios::{as_completed, pool, same_thread, wait_any};

fn scenario(name: &str) -> Option<Scenario> {
    if let Some(n) = name.strip_prefix("wait_register/") {
        let n: usize = n.parse().ok()?;
        return wait_any::SIZES
            .contains(&n)
            .then(|| wait_any::register_scenario(n));
    }
    match name {
        "same_thread" => Some(same_thread::scenario()),
        "as_completed" => Some(as_completed::scenario(as_completed::FUTURES)),
        "pool/round_trip" => Some(pool::round_trip_scenario()),
        "pool/throughput_100k" => Some(pool::throughput_scenario()),
        _ => None,
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(name), Some(contender)) = (args.first(), args.get(1)) else {
        eprintln!("usage: probe SCENARIO CONTENDER [OPERATIONS]");
        return ExitCode::from(2);
    };
    let operations: u64 = match args.get(2).map(|n| n.parse()) {
        None => 1,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("probe: OPERATIONS must be a number");
            return ExitCode::from(2);
        }
    };
    let Some(scenario) = scenario(name) else {
        eprintln!("probe: no scenario {name:?}");
        return ExitCode::from(2);
    };
    let Some(contender) = scenario.contenders.iter().find(|c| c.name == contender) else {
        let names: Vec<&str> = scenario.contenders.iter().map(|c| c.name).collect();
        eprintln!("probe: {name} has no contender {contender:?}; it has {names:?}");
        return ExitCode::from(2);
    };
    let mut batch = contender.start();
    let started = Instant::now();
    let timed = batch.run(operations);
    eprintln!(
        "probe: {name} {} x{operations}: {timed:?} timed, {:?} wall",
        contender.name,
        started.elapsed()
    );
    ExitCode::SUCCESS
}
