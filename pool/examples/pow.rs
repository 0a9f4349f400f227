//! The seeds' first example (`shared/seeds/004_51b71ad4c8d3f7e8.txt`, `Executor.submit`):
//!
//! ```python
//! with ThreadPoolExecutor(max_workers=1) as executor:
//!     future = executor.submit(pow, 323, 1235)
//!     print(future.result())
//! ```
//!
//! Python's `pow` returns an exact big integer (3,101 digits here); `pow` below computes it
//! with a few lines of schoolbook arithmetic so the output is the same number.
//!
//! Run: `cargo run --release -p concur-pool --example pow`

use concur_pool::ThreadPool;

/// `base ** exp` in decimal, exactly.
fn pow(base: u32, exp: u32) -> String {
    const LIMB: u64 = 1_000_000_000; // nine decimal digits per limb, least significant first
    let mut limbs: Vec<u64> = vec![1];
    for _ in 0..exp {
        let mut carry = 0;
        for limb in &mut limbs {
            let product = *limb * u64::from(base) + carry;
            *limb = product % LIMB;
            carry = product / LIMB;
        }
        while carry > 0 {
            limbs.push(carry % LIMB);
            carry /= LIMB;
        }
    }
    let mut digits = String::new();
    for (i, limb) in limbs.iter().rev().enumerate() {
        if i == 0 {
            digits.push_str(&limb.to_string());
        } else {
            digits.push_str(&format!("{limb:09}"));
        }
    }
    digits
}

fn main() {
    // `with ThreadPoolExecutor(max_workers=1) as executor:` — the pool shuts down (waiting)
    // when `executor` is dropped at the end of `main`.
    let executor = ThreadPool::new(1).expect("one worker is a valid pool");
    let future = executor
        .submit(|| pow(323, 1235))
        .expect("a fresh pool accepts work");
    let value = future.result().expect("pow does not fail");
    println!("{value}");
    eprintln!("({} digits)", value.len());
}
