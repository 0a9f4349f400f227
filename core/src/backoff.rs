//! Bounded waiting for a short, non-blocking critical section held by another thread (a waiter
//! unlinking itself under LOCK).

/// Spins with exponential backoff for a few rounds, then yields the CPU (with `std`), so that a
/// holder preempted on the same CPU gets to finish.
#[inline]
pub(crate) fn snooze(spins: &mut u32) {
    const SPIN_ROUNDS: u32 = 6;
    if cfg!(concur_loom) {
        // Loom needs a scheduling point in every spin loop.
        #[cfg(concur_loom)]
        loom::thread::yield_now();
        return;
    }
    if *spins < SPIN_ROUNDS {
        for _ in 0..(1u32 << *spins) {
            core::hint::spin_loop();
        }
        *spins += 1;
        return;
    }
    #[cfg(feature = "std")]
    std::thread::yield_now();
    #[cfg(not(feature = "std"))]
    core::hint::spin_loop();
}
