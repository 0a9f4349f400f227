//! Builds `floor/hello.rs`, the smallest Rust program, for `process/startup`'s second floor
//! (`SPAWN_FLOOR_HELLO` in `src/scenarios/process.rs`). Its path reaches the crate as
//! `CONCUR_BENCH_HELLO`, empty when it could not be built: the scenario then measures without
//! that floor, the build prints a warning saying why, and nothing fails (the smoke test does).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=floor/hello.rs");
    println!("cargo::rerun-if-changed=build.rs");
    let built = build_hello();
    let path = match &built {
        Ok(path) => path.display().to_string(),
        Err(why) => {
            println!("cargo::warning=process/startup's hello floor is not built: {why}");
            String::new()
        }
    };
    println!("cargo::rustc-env=CONCUR_BENCH_HELLO={path}");
}

fn build_hello() -> Result<PathBuf, String> {
    let var = |name: &str| std::env::var(name).map_err(|e| format!("{name}: {e}"));
    let (target, host) = (var("TARGET")?, var("HOST")?);
    if target != host {
        // The floor runs on the machine that runs `compare`; a cross build has no use for it.
        return Err(format!("cross build ({host} to {target})"));
    }
    let out = PathBuf::from(var("OUT_DIR")?).join("spawn_floor_hello");
    let status = Command::new(var("RUSTC")?)
        .args(["-O", "--edition", "2024", "-o"])
        .arg(&out)
        .arg("floor/hello.rs")
        .status()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    if status.success() {
        Ok(out)
    } else {
        Err(format!("rustc failed: {status}"))
    }
}
