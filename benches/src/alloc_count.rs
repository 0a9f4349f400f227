//! A global allocator that counts the current thread's allocations while asked to.
//!
//! A binary or test opts in with
//! `#[global_allocator] static GLOBAL: concur_benches::alloc_count::Counting = Counting;`
//! and then calls [`count`]. Counting is per thread and off by default, so timed loops pay one
//! thread-local flag check per allocation and other threads never pollute a count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting the allocations of threads inside [`count`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Counting;

/// What one thread allocated during a [`count`] call.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Allocations {
    /// Calls to `alloc`, `alloc_zeroed` and `realloc`.
    pub allocs: u64,
    /// Calls to `dealloc`.
    pub frees: u64,
    /// Bytes requested by those `alloc` calls (the new size for `realloc`).
    pub bytes: u64,
}

struct Counters {
    on: Cell<bool>,
    allocs: Cell<u64>,
    frees: Cell<u64>,
    bytes: Cell<u64>,
}

thread_local! {
    // Const-initialised and without `Drop`: touching it never allocates nor registers a
    // destructor, so the allocator may use it.
    static COUNTERS: Counters = const {
        Counters {
            on: Cell::new(false),
            allocs: Cell::new(0),
            frees: Cell::new(0),
            bytes: Cell::new(0),
        }
    };
}

fn note_alloc(size: usize) {
    let _ = COUNTERS.try_with(|c| {
        if c.on.get() {
            c.allocs.set(c.allocs.get() + 1);
            c.bytes.set(c.bytes.get() + size as u64);
        }
    });
}

fn note_free() {
    let _ = COUNTERS.try_with(|c| {
        if c.on.get() {
            c.frees.set(c.frees.get() + 1);
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counting
// only touches a thread-local that neither allocates nor unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: forwarded with the caller's guarantees on `layout`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: forwarded with the caller's guarantees on `layout`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free();
        // SAFETY: forwarded with the caller's guarantees on `ptr` and `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc(new_size);
        // SAFETY: forwarded with the caller's guarantees on `ptr`, `layout` and `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` and returns what the current thread allocated meanwhile, with `f`'s result.
///
/// Only meaningful in a program whose global allocator is [`Counting`]; elsewhere the counts
/// are zero. Calls do not nest.
pub fn count<R>(f: impl FnOnce() -> R) -> (Allocations, R) {
    COUNTERS.with(|c| {
        c.allocs.set(0);
        c.frees.set(0);
        c.bytes.set(0);
        c.on.set(true);
    });
    let result = f();
    let counted = COUNTERS.with(|c| {
        c.on.set(false);
        Allocations {
            allocs: c.allocs.get(),
            frees: c.frees.get(),
            bytes: c.bytes.get(),
        }
    });
    (counted, result)
}

/// Whether this program's global allocator is [`Counting`] (it saw a test allocation).
pub fn installed() -> bool {
    let (counted, boxed) = count(|| std::hint::black_box(Box::new(0u64)));
    drop(boxed);
    counted.allocs > 0
}
