//! DESIGN §6: create + complete + get costs at most one allocation, and a handle is one
//! pointer (with a niche, so `Option<Future>` is too). Also prints every peer's count.

use concur_benches::alloc_count::{self, Counting};
use concur_benches::contender::Side;
use concur_benches::footprint;

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn allocations_per_create_complete_get() {
    assert!(alloc_count::installed());
    let footprints = footprint::same_thread(1_000);
    for f in &footprints {
        println!(
            "{:<18} {:.2} allocs {:.2} frees {:.1} bytes",
            f.name, f.allocs, f.frees, f.bytes
        );
        assert_eq!(f.allocs, f.frees, "{} leaks", f.name);
    }
    for f in footprints.iter().filter(|f| f.side == Side::Ours) {
        assert!(
            f.allocs <= 1.0,
            "{}: {} allocations per op",
            f.name,
            f.allocs
        );
    }
    assert!(
        footprints
            .iter()
            .any(|f| f.side == Side::Peer && f.allocs >= 1.0)
    );
}

#[test]
fn handles_are_one_pointer() {
    for (ty, size) in footprint::handle_sizes() {
        println!("{ty}: {size} bytes");
        assert_eq!(size, size_of::<usize>(), "{ty}");
    }
}
