//! The seeds' `ProcessPoolExecutor` example: check six large numbers for primality on a pool of
//! worker processes, with `map`, printing the results in input order.
//!
//! ```text
//! cargo run --release -p concur-process --example primes
//! ```

use concur_process::ProcessPool;

const PRIMES: [u64; 6] = [
    112_272_535_095_293,
    112_582_705_942_171,
    112_272_535_095_293,
    115_280_095_190_773,
    115_797_848_077_099,
    1_099_726_899_285_419,
];

mod tasks {
    concur_process::task! {
        /// Trial division by odd numbers up to the square root, as in the seed.
        pub fn is_prime(n: u64) -> bool {
            if n % 2 == 0 {
                return n == 2;
            }
            let sqrt_n = (n as f64).sqrt().floor() as u64;
            let mut i = 3;
            while i <= sqrt_n {
                if n % i == 0 {
                    return false;
                }
                i += 2;
            }
            n > 1
        }
    }
}

fn main() {
    // In a worker process this serves tasks and never returns.
    concur_process::worker_main();

    let pool = ProcessPool::builder()
        .build()
        .expect("start the process pool");
    for (number, prime) in PRIMES.iter().zip(pool.map(tasks::is_prime, &PRIMES)) {
        let prime = prime.expect("is_prime ran in a worker");
        println!("{number} is prime: {prime}");
    }
}
