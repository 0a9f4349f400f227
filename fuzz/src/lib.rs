//! Helpers shared by the fuzz targets: a byte cursor that turns the fuzzer's input into
//! operations, and a panic hook that tolerates the panics a target plants on purpose.

use std::sync::Once;

/// Reads small numbers from the fuzzer's bytes; returns zeros once they run out.
pub struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    /// A cursor over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// Whether every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte (0 once exhausted).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.byte() as usize % n
    }

    /// A coin flip.
    pub fn flip(&mut self) -> bool {
        self.byte() & 1 == 1
    }
}

/// The payload every planted panic carries; the hook stays quiet for it.
pub const PLANTED: &str = "concur-fuzz: planted panic";

/// Installs (once) a panic hook that ignores planted panics and aborts on any other, so a
/// failed check still ends the run as a crash (libFuzzer's own hook would abort on the planted
/// panics too, which the library catches on purpose).
pub fn tolerate_planted_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            if info.payload().downcast_ref::<&str>() == Some(&PLANTED) {
                return;
            }
            eprintln!("{info}");
            std::process::abort();
        }));
    });
}

/// Threads of this process, from /proc/self/task.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}
