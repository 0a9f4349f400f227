//! Fault injection (issue 7, DESIGN §7): workers that write random garbage or a truncated
//! frame to their results pipe and then exit, interleaved with ordinary tasks, and panicking
//! done-callbacks on the pool's I/O thread. Every future resolves, submitted = succeeded +
//! failed, the garbage fails only its own task, and after the pool is dropped no child process
//! and no file descriptor is left behind.

mod common;

use std::time::{Duration, Instant};

use concur_core::Error;
use concur_process::{ProcessPool, ProtocolError, WorkerDied};

concur_process::test_worker!();

/// A result whose decoding panics in the parent (a user's `Deserialize` with a bug).
#[derive(Debug)]
struct DecodesByPanicking;

impl serde::Serialize for DecodesByPanicking {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit()
    }
}

impl<'de> serde::Deserialize<'de> for DecodesByPanicking {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        panic!("this Deserialize panics")
    }
}

/// An argument whose encoding panics in the parent (a user's `Serialize` with a bug).
#[derive(Debug)]
struct EncodesByPanicking;

impl serde::Serialize for EncodesByPanicking {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        panic!("this Serialize panics")
    }
}

impl<'de> serde::Deserialize<'de> for EncodesByPanicking {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <()>::deserialize(deserializer).map(|()| EncodesByPanicking)
    }
}

concur_process::task! {
    fn square(x: u64) -> u64 { x * x }
    fn undecodable() -> DecodesByPanicking { DecodesByPanicking }
    fn takes_unencodable(_x: EncodesByPanicking) {}
    fn scribble_and_exit(bytes: Vec<u8>) {
        // A worker that corrupts its protocol descriptor and dies, as crashing native code might.
        // SAFETY: fd 4 is the worker's results pipe; writing bytes to it is memory-safe.
        unsafe { libc::write(4, bytes.as_ptr().cast(), bytes.len()) };
        std::process::exit(3)
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Live or zombie children of this process, from /proc.
fn children() -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if rest.split_whitespace().nth(1) == Some(me.as_str()) {
            found.push(pid);
        }
    }
    found
}

/// A RESULT frame for call `id` carrying one value, for cutting short.
fn result_frame(id: u64) -> Vec<u8> {
    let outcomes = [0u8, 1, 42]; // tag OK, one byte of postcard value
    let mut buf = Vec::new();
    concur_process::fuzzing::encode_result(&mut buf, id, 1, &outcomes, u32::MAX);
    buf
}

#[test]
fn garbage_or_truncated_frames_then_death_fail_only_their_task() {
    let fds_before = open_fds();
    let pool = ProcessPool::builder().max_workers(2).build().unwrap();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut bad = Vec::new();
    let mut good = Vec::new();
    for round in 0..40u64 {
        let junk: Vec<u8> = match round % 4 {
            // Random bytes of a random length (possibly none).
            0 | 1 => (0..next() % 48).map(|_| next() as u8).collect(),
            // A valid frame cut short at a random point (the header, or inside the body).
            2 => {
                let frame = result_frame(next() % 64);
                frame[..(next() as usize % frame.len())].to_vec()
            }
            // A header announcing a long frame, then a few bytes of it.
            _ => vec![0, 1, 0, 0, 1, 6, 7, 7],
        };
        bad.push((junk.clone(), pool.submit(scribble_and_exit, junk).unwrap()));
        good.push((round, pool.submit(square, round).unwrap()));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut succeeded, mut failed) = (0, 0);
    for (junk, f) in &bad {
        assert!(
            f.wait_deadline(deadline),
            "a scribbling task never resolved"
        );
        let failure = match f.result() {
            Err(Error::Failed(failure)) => failure,
            other => panic!("{junk:?}: expected a failure, got {other:?}"),
        };
        assert!(
            failure.downcast_ref::<WorkerDied>().is_some()
                || failure.downcast_ref::<ProtocolError>().is_some(),
            "{junk:?}: {failure}"
        );
        failed += 1;
    }
    for (x, f) in &good {
        assert!(f.wait_deadline(deadline), "task {x} never resolved");
        assert_eq!(
            *f.result().unwrap(),
            x * x,
            "an ordinary task paid for the garbage"
        );
        succeeded += 1;
    }
    assert_eq!(succeeded + failed, 80);
    assert_eq!(*pool.submit(square, 9).unwrap().result().unwrap(), 81);
    drop(pool);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !children().is_empty() || open_fds() > fds_before {
        assert!(
            Instant::now() < deadline,
            "left behind: children {:?}, {} fds (was {fds_before})",
            children(),
            open_fds()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_result_whose_decoding_panics_fails_its_future_and_nothing_else() {
    // Decoding runs on the thread reading the answer: the waiting thread (express path) or the
    // pool's I/O thread. Either way the panic is the future's failure, not the caller's panic
    // or a broken pool.
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    for round in 0..5u64 {
        let future = pool.submit(undecodable, ()).unwrap();
        let failure = match future.result() {
            Err(Error::Failed(failure)) => failure,
            other => panic!("expected a failure, got {other:?}"),
        };
        assert_eq!(failure.panic_message(), Some("this Deserialize panics"));
        // Not waited on by a reader: decoded on the I/O thread.
        let polled = pool.submit(undecodable, ()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !polled.is_done() {
            assert!(Instant::now() < deadline, "round {round}: never completed");
            std::thread::yield_now();
        }
        assert!(polled.try_error().unwrap().unwrap().unwrap().is_panic());
        assert_eq!(
            *pool.submit(square, round).unwrap().result().unwrap(),
            round * round
        );
    }
}

#[test]
fn an_argument_whose_encoding_panics_fails_its_future_and_nothing_else() {
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    let future = pool.submit(takes_unencodable, EncodesByPanicking).unwrap();
    match future.result() {
        Err(Error::Failed(failure)) => {
            assert_eq!(failure.panic_message(), Some("this Serialize panics"));
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    let mapped: Vec<_> = pool
        .map(takes_unencodable, [EncodesByPanicking, EncodesByPanicking])
        .collect();
    assert_eq!(mapped.len(), 2);
    assert!(
        mapped
            .iter()
            .all(|r| matches!(r, Err(Error::Failed(f)) if f.is_panic()))
    );
    assert_eq!(*pool.submit(square, 9).unwrap().result().unwrap(), 81);
}
