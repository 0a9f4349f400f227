//! The seeds' prime check, shared by the `primes` and `cluster` examples.

/// The seeds' six large numbers.
pub const PRIMES: [u64; 6] = [
    112_272_535_095_293,
    112_582_705_942_171,
    112_272_535_095_293,
    115_280_095_190_773,
    115_797_848_077_099,
    1_099_726_899_285_419,
];

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
