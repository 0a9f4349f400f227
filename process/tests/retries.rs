//! `retries(n)`: a call whose worker died runs again elsewhere, only for tasks declared
//! `#[idempotent]`; when every attempt fails, the error lists each attempt's host and cause.

use std::path::Path;
use std::time::Duration;

use concur_process::{AttemptsFailed, DeathCause, ExitStatus, ProcessPool, WorkerDied};

concur_process::test_worker!();

concur_process::task! {
    /// Crashes its worker the first time (leaving `marker` behind), answers the second.
    #[idempotent]
    fn crash_once(marker: String) -> u32 {
        if create(&marker) {
            std::process::abort();
        }
        7
    }
    /// The same, not declared idempotent.
    fn crash_once_unsafe(marker: String) -> u32 {
        if create(&marker) {
            std::process::abort();
        }
        7
    }
    #[idempotent]
    fn always_crash() { std::process::abort() }
}

/// Creates `path`; whether this call created it.
fn create(path: &str) -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .is_ok()
}

const BOUND: Duration = Duration::from_secs(20);

fn marker(tag: &str) -> String {
    let path = std::env::temp_dir().join(format!("concur-retry-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path.to_string_lossy().into_owned()
}

fn pool(retries: u32) -> ProcessPool {
    ProcessPool::builder()
        .max_workers(2)
        .retries(retries)
        .build()
        .unwrap()
}

#[test]
fn an_idempotent_call_whose_worker_died_runs_again() {
    let marker = marker("again");
    let call = pool(1).submit(crash_once, marker.clone()).unwrap();
    assert_eq!(*call.result_timeout(BOUND).unwrap(), 7);
    assert!(Path::new(&marker).exists(), "the first attempt ran");
    let _ = std::fs::remove_file(marker);
}

#[test]
fn a_call_not_declared_idempotent_is_never_retried() {
    let marker = marker("unsafe");
    let call = pool(3).submit(crash_once_unsafe, marker.clone()).unwrap();
    let failure = call.error_timeout(BOUND).unwrap().unwrap();
    let died = failure
        .downcast_ref::<WorkerDied>()
        .unwrap_or_else(|| panic!("not WorkerDied: {failure}"));
    assert_eq!(died.status, ExitStatus::Signaled(libc::SIGABRT));
    let _ = std::fs::remove_file(marker);
}

#[test]
fn retries_are_off_by_default() {
    let marker = marker("default");
    let call = pool(0).submit(crash_once, marker.clone()).unwrap();
    let failure = call.error_timeout(BOUND).unwrap().unwrap();
    assert!(failure.downcast_ref::<WorkerDied>().is_some(), "{failure}");
    let _ = std::fs::remove_file(marker);
}

#[test]
fn when_every_attempt_fails_the_error_lists_each_one() {
    let pool = pool(2);
    let call = pool.submit(always_crash, ()).unwrap();
    let failure = call.error_timeout(BOUND).unwrap().unwrap();
    let failed = failure
        .downcast_ref::<AttemptsFailed>()
        .unwrap_or_else(|| panic!("not AttemptsFailed: {failure}"));
    assert_eq!(failed.attempts.len(), 3, "{failed}");
    for died in &failed.attempts {
        assert_eq!(died.status, ExitStatus::Signaled(libc::SIGABRT));
        assert_eq!(died.cause, DeathCause::Ended);
        assert!(!died.host.is_empty());
    }
    let shown = failed.to_string();
    assert!(shown.starts_with("all 3 attempts failed"), "{shown}");
    assert!(shown.contains(&failed.attempts[2].host), "{shown}");
    // The pool keeps working.
    let marker = marker("after");
    assert_eq!(
        *pool
            .submit(crash_once, marker.clone())
            .unwrap()
            .result_timeout(BOUND)
            .unwrap(),
        7
    );
    let _ = std::fs::remove_file(marker);
}
