//! The frame decoder's fuzz seeds (`fuzz/corpus/frame_decoder`) stay at this protocol version:
//! a seed the decoder refuses at the header leaves every path past it unexplored, which is
//! what happened to all of them across two version bumps before this test.

use std::path::PathBuf;

use concur_process::fuzzing::{DEFAULT_MAX_FRAME, Frame, FrameError, decode_frame};

fn seed(name: &str) -> Vec<u8> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "fuzz",
        "corpus",
        "frame_decoder",
        name,
    ]
    .iter()
    .collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Decodes every frame of `bytes` in turn.
fn decode_all(mut bytes: &[u8]) -> Vec<Frame<'_>> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let (frame, used) = decode_frame(bytes).expect("a seed frame does not decode");
        frames.push(frame);
        bytes = &bytes[used..];
    }
    frames
}

#[test]
fn every_well_formed_seed_decodes() {
    for name in [
        "awaited_call",
        "call",
        "heartbeat",
        "hello",
        "init",
        "init_failed",
        "ready",
        "result",
    ] {
        let bytes = seed(name);
        assert_eq!(decode_all(&bytes).len(), 1, "{name}");
    }
    // The first byte chooses the fuzzer's small limit; two frames follow.
    assert_eq!(decode_all(&seed("two_frames")[1..]).len(), 2);
}

#[test]
fn the_awaited_call_and_the_result_carry_their_cpus() {
    let awaited = seed("awaited_call");
    let Ok((Frame::Call { caller_cpu, .. }, _)) = decode_frame(&awaited) else {
        panic!("not a call")
    };
    assert_eq!(caller_cpu, Some(1));
    let result = seed("result");
    let Ok((Frame::Result { worker_cpu, .. }, _)) = decode_frame(&result) else {
        panic!("not a result")
    };
    assert_eq!(worker_cpu, 1);
}

#[test]
fn the_malformed_seeds_fail_past_the_header() {
    assert!(matches!(
        decode_frame(&seed("bad_kind")),
        Err(FrameError::Kind { .. })
    ));
    assert!(matches!(
        decode_frame(&seed("truncated")),
        Err(FrameError::Incomplete { .. })
    ));
    assert!(matches!(
        concur_process::fuzzing::decode_frame_with_limit(&seed("oversized"), DEFAULT_MAX_FRAME),
        Err(FrameError::Oversized { .. })
    ));
}
