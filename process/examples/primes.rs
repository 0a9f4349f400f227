//! The seeds' `ProcessPoolExecutor` example: check six large numbers for primality on a pool of
//! worker processes, with `map`, printing the results in input order.
//!
//! ```text
//! cargo run --release -p concur-process --example primes
//! ```

use concur_process::ProcessPool;

#[path = "common/primes.rs"]
mod primes;
use primes::{PRIMES, is_prime};

fn main() {
    // In a worker process this serves tasks and never returns.
    concur_process::worker_main();

    let pool = ProcessPool::builder()
        .build()
        .expect("start the process pool");
    for (number, prime) in PRIMES.iter().zip(pool.map(is_prime, &PRIMES)) {
        let prime = prime.expect("is_prime ran in a worker");
        println!("{number} is prime: {prime}");
    }
}
