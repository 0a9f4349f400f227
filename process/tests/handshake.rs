//! A worker whose greeting does not match breaks the pool with a typed error.

use concur_process::{BrokenProcessPool, HandshakeError, ProcessPool};

concur_process::test_worker!();

concur_process::task! {
    fn square(x: u64) -> u64 { x * x }
}

/// Not a test: a fake worker, run by the pools below, that greets wrongly and then waits for
/// its pipe to close.
#[test]
fn fake_worker() {
    let Ok(mode) = std::env::var("FAKE_WORKER_MODE") else {
        return;
    };
    let fingerprint = concur_process::fuzzing::fingerprint();
    let mut hello = Vec::new();
    match mode.as_str() {
        "version" => {
            concur_process::fuzzing::encode_hello(&mut hello, fingerprint, std::process::id());
            hello[4] = 99;
        }
        "fingerprint" => {
            concur_process::fuzzing::encode_hello(&mut hello, !fingerprint, std::process::id())
        }
        _ => hello.extend_from_slice(b"HTTP/1.1 200 OK\r\n"),
    }
    // SAFETY: fd 4 is the results pipe the pool gave this process.
    unsafe { libc::write(4, hello.as_ptr().cast(), hello.len()) };
    let mut byte = [0u8; 1];
    // SAFETY: fd 3 is the calls pipe; read until the pool closes it.
    while unsafe { libc::read(3, byte.as_mut_ptr().cast(), 1) } > 0 {}
    std::process::exit(0);
}

fn broken_by(mode: &str) -> HandshakeError {
    let pool = ProcessPool::builder()
        .max_workers(1)
        .worker_args([
            "fake_worker",
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env("FAKE_WORKER_MODE", mode)
        .stdout(std::fs::File::create("/dev/null").unwrap())
        .build()
        .unwrap();
    let failure = pool.submit(square, 3).unwrap().error().unwrap().unwrap();
    let broken = failure
        .downcast_ref::<BrokenProcessPool>()
        .expect("BrokenProcessPool");
    assert!(matches!(
        pool.submit(square, 4),
        Err(concur_core::SubmitError::Broken(_))
    ));
    broken
        .cause
        .downcast_ref::<HandshakeError>()
        .expect("HandshakeError")
        .clone()
}

#[test]
fn another_protocol_version_is_a_typed_error() {
    assert_eq!(
        broken_by("version"),
        HandshakeError::Version {
            expected: concur_process::fuzzing::PROTOCOL_VERSION,
            found: 99
        }
    );
}

#[test]
fn another_build_fingerprint_is_a_typed_error() {
    let fingerprint = concur_process::fuzzing::fingerprint();
    assert_eq!(
        broken_by("fingerprint"),
        HandshakeError::Fingerprint {
            expected: fingerprint,
            found: !fingerprint
        }
    );
}

#[test]
fn a_greeting_that_is_not_a_frame_is_a_typed_error() {
    assert!(matches!(broken_by("garbage"), HandshakeError::Malformed(_)));
}
