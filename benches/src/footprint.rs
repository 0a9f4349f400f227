//! Memory footprint: allocations per create + complete + get, and handle sizes.

use std::mem::size_of;

use concur_core::{Future, Promise};

use crate::alloc_count::{self, Allocations};
use crate::contender::Side;
use crate::scenarios::same_thread;

/// One contender's allocations per operation.
#[derive(Debug, Clone)]
pub struct Footprint {
    /// The contender's name.
    pub name: &'static str,
    /// Ours or a peer.
    pub side: Side,
    /// Allocations per create + complete + get.
    pub allocs: f64,
    /// Frees per create + complete + get.
    pub frees: f64,
    /// Bytes requested per create + complete + get.
    pub bytes: f64,
}

/// Counts the allocations of every `same_thread` contender over `ops` operations.
///
/// Needs [`Counting`](crate::alloc_count::Counting) as the global allocator (see
/// [`alloc_count::installed`]); otherwise every count is zero.
pub fn same_thread(ops: u64) -> Vec<Footprint> {
    let scenario = same_thread::scenario();
    scenario
        .contenders
        .iter()
        .map(|contender| {
            let mut batch = contender.start();
            batch.run(ops.min(16)); // first-use allocations (thread-locals) are not per-op
            let (
                Allocations {
                    allocs,
                    frees,
                    bytes,
                },
                _,
            ) = alloc_count::count(|| batch.run(ops));
            let per_op = |n: u64| n as f64 / ops as f64;
            Footprint {
                name: contender.name,
                side: contender.side,
                allocs: per_op(allocs),
                frees: per_op(frees),
                bytes: per_op(bytes),
            }
        })
        .collect()
}

/// `size_of` of our handles: `(type, bytes)`.
pub fn handle_sizes() -> [(&'static str, usize); 3] {
    [
        ("Future<u64>", size_of::<Future<u64>>()),
        ("Promise<u64>", size_of::<Promise<u64>>()),
        ("Option<Future<u64>>", size_of::<Option<Future<u64>>>()),
    ]
}

/// Allocations of one `wait` / `as_completed` call over `n` pending futures (DESIGN §6: one
/// allocation per call for the wait set, plus collecting the futures): `(call, allocations)`.
///
/// The `wait` call times out after 2 ms (long enough that it registers even over 10,000
/// futures: a deadline already past when it would register skips registering), then leaves;
/// the `as_completed` iterator is made and dropped. Needs [`Counting`](crate::alloc_count::Counting) as the
/// global allocator.
pub fn wait_calls(n: usize) -> Vec<(&'static str, Allocations)> {
    let (promises, futures): (Vec<Promise<u64>>, Vec<Future<u64>>) =
        (0..n).map(|_| concur_core::promise()).unzip();
    let wait = || {
        concur_core::wait(
            &futures,
            Some(std::time::Duration::from_millis(2)),
            concur_core::ReturnWhen::FirstCompleted,
        )
    };
    let as_completed = || drop(concur_core::as_completed(&futures, None));
    drop(wait()); // first-use allocations (thread-locals) are not per call
    let (waited, _) = alloc_count::count(wait);
    as_completed();
    let (iterated, ()) = alloc_count::count(as_completed);
    drop(promises);
    vec![("wait", waited), ("as_completed", iterated)]
}
