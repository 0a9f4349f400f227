//! One allocation per submit: the task (closure, future state and result slot in one cell);
//! the queue stores task pointers in blocks of 31, so it adds one allocation per 31 submits.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use concur_pool::ThreadPool;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // ORDERING: Relaxed: a statistic, read after the measured work is joined.
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn a_submit_allocates_its_task_and_a_31st_of_a_queue_block() {
    const TASKS: usize = 31 * 1000;
    let pool = ThreadPool::new(2).unwrap();
    // Start both workers and let every lazily allocated buffer reach its size.
    let warm: Vec<_> = (0..TASKS)
        .map(|i| pool.submit(move || i).unwrap())
        .collect();
    warm.into_iter().for_each(|f| drop(f.into_result()));
    let mut futures = Vec::with_capacity(TASKS);

    // ORDERING: Relaxed: see `alloc`; this thread did every submit.
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for i in 0..TASKS {
        futures.push(pool.submit(move || i).unwrap());
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    for (i, f) in futures.into_iter().enumerate() {
        assert_eq!(f.into_result().unwrap(), i);
    }
    let per_submit = (after - before) as f64 / TASKS as f64;
    assert!(
        (1.0..=1.0 + 1.0 / 31.0 + 0.001).contains(&per_submit),
        "{per_submit} allocations per submit"
    );
}
