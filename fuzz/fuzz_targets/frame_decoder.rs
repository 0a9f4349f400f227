//! Arbitrary bytes into the process pool's frame decoder: it never panics, a decoded frame
//! never claims more bytes than it was given or than the limit, and decoding never allocates
//! more than the frame's own size (measured by a counting global allocator).
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use concur_process::fuzzing::{Frame, FrameError, decode_frame, decode_frame_with_limit};
use libfuzzer_sys::fuzz_target;

/// Counts the bytes allocated on every thread (the decoder runs on this one only).
struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only adds a counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // ORDERING: a statistic read on the same thread after the call it measures.
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // ORDERING: as in alloc.
        ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Decodes, returning the result and the bytes allocated meanwhile.
fn measured(bytes: &[u8], limit: usize) -> (Result<(Frame<'_>, usize), FrameError>, usize) {
    // ORDERING: see Counting.
    let before = ALLOCATED.load(Ordering::Relaxed);
    let decoded = decode_frame_with_limit(bytes, limit);
    let after = ALLOCATED.load(Ordering::Relaxed);
    (decoded, after - before)
}

fn check(bytes: &[u8], limit: usize) {
    let (decoded, allocated) = measured(bytes, limit);
    match decoded {
        Ok((frame, used)) => {
            assert!(
                (6..=bytes.len()).contains(&used),
                "used {used} of {}",
                bytes.len()
            );
            assert!(
                used <= limit,
                "frame of {used} bytes over the limit {limit}"
            );
            assert!(
                allocated <= used,
                "decoding {used} bytes allocated {allocated}"
            );
            match frame {
                Frame::Call { args, .. } => {
                    assert_eq!(args.iter().count(), args.len());
                    assert!(args.len() <= used);
                }
                Frame::Result { outcomes, .. } => {
                    // Validated at decode time, so the iterator yields every outcome.
                    assert_eq!(outcomes.iter().count(), outcomes.len());
                    assert!(outcomes.len() <= used);
                }
                _ => {}
            }
            // The same frame decodes the same way on its own, and with trailing bytes.
            let again = decode_frame_with_limit(&bytes[..used], limit).unwrap();
            assert_eq!(again.1, used);
        }
        Err(FrameError::Incomplete { needed }) => {
            assert!(
                needed > bytes.len(),
                "incomplete yet {needed} <= {}",
                bytes.len()
            );
            assert!(needed <= limit.max(4));
            assert_eq!(allocated, 0);
        }
        Err(FrameError::Oversized { size, limit: l }) => {
            assert_eq!(l, limit);
            assert!(size > limit as u64);
            assert_eq!(allocated, 0);
        }
        Err(_) => assert!(allocated <= bytes.len(), "an error allocated {allocated}"),
    }
}

fuzz_target!(|data: &[u8]| {
    // Never panics on the default limit...
    let _ = decode_frame(data);
    check(data, concur_process::fuzzing::DEFAULT_MAX_FRAME);
    // ...nor on a small one chosen by the input.
    if let Some((&l, rest)) = data.split_first() {
        check(rest, 6 + usize::from(l) * 4);
    }
});
