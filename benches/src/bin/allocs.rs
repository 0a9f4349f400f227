//! `allocs`: allocations per create + complete + get for ours and each peer, and the size of
//! our handles.
//!
//! ```text
//! cargo run --release -p concur-benches --bin allocs
//! ```

use concur_benches::alloc_count::{self, Counting};
use concur_benches::footprint;

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    assert!(
        alloc_count::installed(),
        "the counting allocator is not installed"
    );
    println!("contender\tallocs_per_op\tfrees_per_op\tbytes_per_op");
    for f in footprint::same_thread(100_000) {
        println!(
            "{}\t{:.2}\t{:.2}\t{:.1}",
            f.name, f.allocs, f.frees, f.bytes
        );
    }
    println!();
    println!("type\tsize_of");
    for (ty, size) in footprint::handle_sizes() {
        println!("{ty}\t{size}");
    }
}
