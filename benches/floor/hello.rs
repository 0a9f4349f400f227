//! The smallest Rust program `process/startup` spawns: one byte to stdout, first thing in
//! `main`. Built by `benches/build.rs` with the workspace's `rustc`, it shows what any Rust
//! process pays on this machine to reach `main` (exec, the dynamic loader, std's start-up)
//! without the size of the benchmark binary.

use std::io::Write;

fn main() {
    // Nothing useful to do if the parent is gone: it then has no clock to stop.
    let _ = std::io::stdout().write_all(b"x");
}
