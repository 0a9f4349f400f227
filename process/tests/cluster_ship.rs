//! `Launcher::ship_executable` through a real OpenSSH: the pool copies this test binary to the
//! test sshd's host (127.0.0.1, so the copy can be inspected here) and the workers run the copy.

mod common;
mod engines;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use concur_process::{BuildError, Launcher, ProcessPool};
use engines::{Engine, RESULT_BOUND};

concur_process::test_worker!();

concur_process::task! {
    /// The executable the worker runs, as its kernel sees it.
    fn own_exe() -> String {
        std::fs::read_link("/proc/self/exe").unwrap().to_string_lossy().into_owned()
    }
}

/// A fresh directory for this test's copies.
fn ship_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("concur-ship-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Where the pool must put the copy under `dir`.
fn expected_copy(dir: &Path) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    dir.join(format!("{:016x}", concur_process::fuzzing::fingerprint()))
        .join(exe.file_name().unwrap())
}

fn shipping_pool(launcher: Launcher) -> Result<ProcessPool, BuildError> {
    ProcessPool::builder()
        .max_workers(2)
        .launcher(launcher)
        .startup_timeout(RESULT_BOUND)
        .build()
}

/// The first result of a fresh pool, how long from `build` to it, and the pool.
fn first_exe(launcher: Launcher) -> (String, Duration, ProcessPool) {
    let started = Instant::now();
    let pool = shipping_pool(launcher).expect("build a pool over ssh");
    let exe = pool.submit(own_exe, ()).unwrap();
    let exe = exe.result_timeout(RESULT_BOUND).unwrap().to_string();
    (exe, started.elapsed(), pool)
}

#[test]
fn workers_run_the_shipped_copy_and_later_pools_reuse_it() {
    if !engines::require(Engine::Ssh) {
        return;
    }
    let dir = ship_dir("reuse");
    let copy = expected_copy(&dir);
    let launcher = engines::ssh_launcher().ship_directory(dir.to_string_lossy());
    let (exe, shipped_in, pool) = first_exe(launcher.clone());
    assert_eq!(Path::new(&exe), copy, "the worker runs {exe}");
    // The shipping session became the connection master the workers use (the pool only
    // checks for it), and the pool closes it like any master.
    engines::assert_master_lives_until_dropped(pool);
    assert_ne!(Path::new(&exe), std::env::current_exe().unwrap());
    let before = std::fs::metadata(&copy).unwrap();
    assert_eq!(before.mode() & 0o777, 0o700);
    assert_eq!(
        before.len(),
        std::fs::metadata("/proc/self/exe").unwrap().len()
    );
    // No temporary file is left next to the copy.
    let entries = std::fs::read_dir(copy.parent().unwrap()).unwrap().count();
    assert_eq!(entries, 1);

    let (exe, reused_in, _pool) = first_exe(launcher);
    assert_eq!(Path::new(&exe), copy);
    let after = std::fs::metadata(&copy).unwrap();
    assert_eq!(
        (after.ino(), after.mtime_nsec(), after.mtime()),
        (before.ino(), before.mtime_nsec(), before.mtime())
    );

    let (plain, plain_in, _pool) = first_exe(engines::ssh_launcher());
    assert_eq!(Path::new(&plain), std::env::current_exe().unwrap());
    eprintln!(
        "first result: shipping {} bytes {shipped_in:?}, reusing the copy {reused_in:?}, \
         not shipping {plain_in:?}",
        before.len()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_copy_that_cannot_be_written_fails_the_build_naming_the_host() {
    if !engines::require(Engine::Ssh) {
        return;
    }
    // A directory under a file: mkdir fails on the host.
    let launcher = engines::ssh_launcher().ship_directory("/proc/version/concur");
    let started = Instant::now();
    let Err(BuildError::Ship(error)) = shipping_pool(launcher) else {
        panic!("shipping under a file did not fail the build");
    };
    assert!(started.elapsed() < RESULT_BOUND, "{:?}", started.elapsed());
    assert_eq!(error.host, "concur-local");
    assert!(error.reason.contains("mkdir"), "{error}");
    assert!(error.to_string().contains("concur-local"), "{error}");
}

#[test]
fn a_host_that_never_answers_fails_the_build_within_the_startup_timeout() {
    if !engines::require(Engine::Ssh) {
        return;
    }
    // The connection goes to a proxy that never speaks.
    let launcher = engines::ssh_launcher()
        .option("ProxyCommand=sleep 60")
        .ship_executable();
    let started = Instant::now();
    let built = ProcessPool::builder()
        .max_workers(1)
        .launcher(launcher)
        .startup_timeout(Duration::from_secs(1))
        .build();
    let elapsed = started.elapsed();
    let Err(BuildError::Ship(error)) = built else {
        panic!("a silent host did not fail the build");
    };
    assert!(elapsed < RESULT_BOUND, "{elapsed:?}");
    assert_eq!(error.host, "concur-local");
    assert!(error.reason.contains("start-up timeout"), "{error}");
}

#[test]
fn shipping_and_a_remote_program_together_are_refused() {
    let launcher = Launcher::ssh(["nowhere"])
        .program("/bin/app")
        .ship_executable();
    assert!(matches!(
        shipping_pool(launcher),
        Err(BuildError::ShipWithProgram)
    ));
}
