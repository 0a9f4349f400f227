//! Worker deaths, protocol violations, codec errors, unknown tasks, broken pools.

mod common;

use std::time::Duration;

use concur_core::SubmitError;
use concur_process::{
    BrokenProcessPool, BuildError, CodecError, CodecStage, ExitStatus, InitializerFailed,
    ProcessPool, ProtocolError, TaskPanicked, UnknownTask, WorkerDied,
};
use serde::{Deserialize, Serialize, Serializer};

use common::{Fifo, announce, hang, sigkill};

use concur_process::fuzzing::PROTOCOL_VERSION;

concur_process::test_worker!();

concur_process::task! {
    fn square(x: u64) -> u64 { x * x }
    fn pid() -> u32 { std::process::id() }
    fn announce_and_hang(path: String) { announce(&path); hang() }
    fn exit_with(code: i32) { std::process::exit(code) }
    fn abort() { std::process::abort() }
    fn big(len: usize) -> Vec<u8> { vec![0xab; len] }
    fn shout(bytes: usize) -> usize {
        use std::io::Write;
        let line = [b'x'; 1023];
        let mut out = std::io::stdout().lock();
        let mut written = 0;
        while written < bytes {
            out.write_all(&line).unwrap();
            out.write_all(b"\n").unwrap();
            written += 1024;
        }
        out.flush().unwrap();
        written
    }
    fn scribble(bytes: Vec<u8>) {
        // A task that writes on the protocol descriptor, as buggy native code might.
        // SAFETY: fd 4 is the worker's results pipe; writing bytes to it is memory-safe.
        unsafe { libc::write(4, bytes.as_ptr().cast(), bytes.len()) };
        hang()
    }
    fn echo_unencodable(x: Unencodable) -> Unencodable { x }
    fn make_unencodable() -> Unencodable { Unencodable(true) }
    fn make_odd() -> u64 { 3 }
    fn init_fails(message: String) { panic!("{message}") }
    fn init_ok(_level: u8) {}
}

/// Serializes only when its flag is false.
#[derive(Debug, Deserialize)]
struct Unencodable(bool);

impl Serialize for Unencodable {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 {
            Err(serde::ser::Error::custom("refusing to serialize"))
        } else {
            s.serialize_bool(false)
        }
    }
}

/// Deserializes only even numbers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(try_from = "u64")]
struct Even(u64);

impl TryFrom<u64> for Even {
    type Error = String;
    fn try_from(n: u64) -> Result<Self, String> {
        if n % 2 == 0 {
            Ok(Even(n))
        } else {
            Err(format!("{n} is odd"))
        }
    }
}

fn died(failure: &concur_core::Failure) -> &WorkerDied {
    failure
        .downcast_ref::<WorkerDied>()
        .unwrap_or_else(|| panic!("not WorkerDied: {failure}"))
}

#[test]
fn sigkill_fails_only_the_running_task_and_queued_work_runs_on_a_replacement() {
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    let fifo = Fifo::new("sigkill");
    let victim = pool.submit(announce_and_hang, fifo.path_string()).unwrap();
    // Queued behind the victim on the same (only) worker.
    let queued: Vec<_> = (0..5u64).map(|i| pool.submit(square, i).unwrap()).collect();
    let worker: u32 = fifo.read_line().parse().unwrap();
    sigkill(worker);
    let failure = victim.error().unwrap().unwrap();
    let died = died(&failure);
    assert_eq!(died.pid, worker);
    assert_eq!(died.status, ExitStatus::Signaled(libc::SIGKILL));
    for (i, f) in queued.iter().enumerate() {
        assert_eq!(*f.result().unwrap(), (i * i) as u64);
    }
    let replacement = *pool.submit(pid, ()).unwrap().result().unwrap();
    assert_ne!(replacement, worker);
}

#[test]
fn a_death_on_one_worker_leaves_the_other_workers_tasks_alone() {
    let pool = ProcessPool::builder().max_workers(2).build().unwrap();
    let a = Fifo::new("a");
    let b = Fifo::new("b");
    let fa = pool.submit(announce_and_hang, a.path_string()).unwrap();
    let fb = pool.submit(announce_and_hang, b.path_string()).unwrap();
    let pa: u32 = a.read_line().parse().unwrap();
    let pb: u32 = b.read_line().parse().unwrap();
    assert_ne!(pa, pb);
    sigkill(pa);
    assert_eq!(died(&fa.error().unwrap().unwrap()).pid, pa);
    assert!(!fb.is_done());
    assert_eq!(*pool.submit(square, 9).unwrap().result().unwrap(), 81);
    assert!(!fb.is_done());
    sigkill(pb);
    assert_eq!(died(&fb.error().unwrap().unwrap()).pid, pb);
}

#[test]
fn exit_and_abort_report_their_code_and_signal() {
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    let exit = pool.submit(exit_with, 3).unwrap();
    let aborted = pool.submit(abort, ()).unwrap();
    let after = pool.submit(square, 7).unwrap();
    assert_eq!(
        died(&exit.error().unwrap().unwrap()).status,
        ExitStatus::Exited(3)
    );
    assert_eq!(
        died(&aborted.error().unwrap().unwrap()).status,
        ExitStatus::Signaled(libc::SIGABRT)
    );
    assert_eq!(*after.result().unwrap(), 49);
}

#[test]
fn garbage_and_oversized_frames_replace_the_worker() {
    let pool = ProcessPool::builder()
        .max_workers(1)
        .max_frame_size(1 << 20)
        .build()
        .unwrap();
    // A well-sized frame with an unknown kind.
    let garbage = pool
        .submit(scribble, vec![4, 0, 0, 0, PROTOCOL_VERSION, 99, 0, 0])
        .unwrap();
    let failure = garbage.error().unwrap().unwrap();
    let protocol = failure
        .downcast_ref::<ProtocolError>()
        .expect("ProtocolError");
    assert!(
        protocol.to_string().contains("unknown frame kind"),
        "{protocol}"
    );
    // A header announcing 2 GiB.
    let huge = pool
        .submit(scribble, vec![0, 0, 0, 0x80, PROTOCOL_VERSION, 6])
        .unwrap();
    let failure = huge.error().unwrap().unwrap();
    let protocol = failure
        .downcast_ref::<ProtocolError>()
        .expect("ProtocolError");
    assert!(
        protocol.to_string().contains("exceeds the limit"),
        "{protocol}"
    );
    assert_eq!(*pool.submit(square, 5).unwrap().result().unwrap(), 25);
}

#[test]
fn a_ten_megabyte_result_does_not_deadlock() {
    let pool = ProcessPool::builder().max_workers(2).build().unwrap();
    let futures: Vec<_> = (0..2)
        .map(|_| pool.submit(big, 10 << 20).unwrap())
        .collect();
    for f in futures {
        let v = f.into_result().unwrap();
        assert_eq!(v.len(), 10 << 20);
        assert!(v.iter().all(|&b| b == 0xab));
    }
    // And large arguments the other way at the same time.
    let echo = pool.submit(big, 1).unwrap();
    assert_eq!(echo.result().unwrap().len(), 1);
}

#[test]
fn printing_a_megabyte_to_stdout_does_not_disturb_results() {
    let path = std::env::temp_dir().join(format!("concur-process-stdout-{}", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    let pool = ProcessPool::builder()
        .max_workers(2)
        .stdout(file)
        .build()
        .unwrap();
    let loud = pool.submit(shout, 1 << 20).unwrap();
    let quiet: Vec<_> = (0..50u64)
        .map(|i| pool.submit(square, i).unwrap())
        .collect();
    assert_eq!(*loud.result().unwrap(), 1 << 20);
    for (i, f) in quiet.iter().enumerate() {
        assert_eq!(*f.result().unwrap(), (i * i) as u64);
    }
    drop(pool);
    let printed = std::fs::metadata(&path).unwrap().len();
    let _ = std::fs::remove_file(&path);
    assert_eq!(printed, 1 << 20);
}

#[test]
fn codec_failures_fail_only_their_task() {
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    // Arguments that do not encode: the future fails at once, nothing is sent.
    let bad_args = pool.submit(echo_unencodable, Unencodable(true)).unwrap();
    let failure = bad_args.error().unwrap().unwrap();
    assert_eq!(
        failure.downcast_ref::<CodecError>().unwrap().stage,
        CodecStage::EncodeArgs
    );
    // A result that does not encode in the worker.
    let bad_result = pool.submit(make_unencodable, ()).unwrap();
    let failure = bad_result.error().unwrap().unwrap();
    assert_eq!(
        failure.downcast_ref::<CodecError>().unwrap().stage,
        CodecStage::EncodeResult
    );
    let ok = pool.submit(echo_unencodable, Unencodable(false)).unwrap();
    assert!(!ok.result().unwrap().0);
    assert_eq!(*pool.submit(square, 4).unwrap().result().unwrap(), 16);
}

#[test]
fn a_result_that_does_not_decode_fails_only_its_task() {
    // The worker's task returns u64; the parent's handle claims `Even` (same wire shape, a
    // validating decoder): an odd value cannot decode.
    static ENTRY: concur_process::__private::TaskEntry = concur_process::__private::TaskEntry {
        name: "failures::make_odd",
        run: |_, _| {},
        signature: concur_process::__private::signature::<(), u64>,
        idempotent: false,
    };
    fn local(_: ()) -> Even {
        Even(0)
    }
    let as_even = concur_process::Task::__new(&ENTRY, local);
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    let f = pool.submit(as_even, ()).unwrap();
    let failure = f.error().unwrap().unwrap();
    let codec = failure.downcast_ref::<CodecError>().expect("CodecError");
    assert_eq!(codec.stage, CodecStage::DecodeResult);
    assert_eq!(make_odd.call(()), 3);
    assert_eq!(*pool.submit(square, 6).unwrap().result().unwrap(), 36);
}

#[test]
fn an_unknown_task_fails_only_its_future() {
    // A handle whose name the worker never registered (as when the worker program is another
    // build).
    static ENTRY: concur_process::__private::TaskEntry = concur_process::__private::TaskEntry {
        name: "elsewhere::missing",
        run: |_, _| {},
        signature: concur_process::__private::signature::<u64, u64>,
        idempotent: false,
    };
    fn local(x: u64) -> u64 {
        x
    }
    let missing = concur_process::Task::__new(&ENTRY, local);
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    let f = pool.submit(missing, 1).unwrap();
    let g = pool.submit(square, 8).unwrap();
    let failure = f.error().unwrap().unwrap();
    assert_eq!(
        failure.downcast_ref::<UnknownTask>().unwrap().name,
        "elsewhere::missing"
    );
    assert_eq!(*g.result().unwrap(), 64);
    // Mapped, every item gets the error.
    let items: Vec<_> = pool.map(missing, [1u64, 2, 3]).collect();
    assert!(items.iter().all(|r| {
        r.as_ref()
            .unwrap_err()
            .failure()
            .unwrap()
            .downcast_ref::<UnknownTask>()
            .is_some()
    }));
}

#[test]
fn a_failing_initializer_breaks_the_pool() {
    let pool = ProcessPool::builder()
        .max_workers(2)
        .initializer(init_fails, "no database".to_string())
        .build()
        .unwrap();
    let futures: Vec<_> = (0..4u64).map(|i| pool.submit(square, i).unwrap()).collect();
    for f in futures {
        let failure = f.error().unwrap().unwrap();
        let broken = failure
            .downcast_ref::<BrokenProcessPool>()
            .expect("BrokenProcessPool");
        let init = broken.cause.downcast_ref::<InitializerFailed>().unwrap();
        assert!(init.message.contains("no database"), "{init}");
    }
    match pool.submit(square, 1) {
        Err(SubmitError::Broken(failure)) => {
            assert!(failure.downcast_ref::<BrokenProcessPool>().is_some())
        }
        other => panic!("expected Broken, got {other:?}"),
    }
}

#[test]
fn a_working_initializer_runs_before_tasks() {
    let pool = ProcessPool::builder()
        .max_workers(1)
        .initializer(init_ok, 3u8)
        .build()
        .unwrap();
    assert_eq!(*pool.submit(square, 11).unwrap().result().unwrap(), 121);
}

#[test]
fn a_worker_program_that_is_not_a_worker_breaks_the_pool_with_a_hint() {
    let pool = ProcessPool::builder()
        .max_workers(1)
        .worker_program("/bin/true")
        .build()
        .unwrap();
    let failure = pool.submit(square, 2).unwrap().error().unwrap().unwrap();
    let broken = failure
        .downcast_ref::<BrokenProcessPool>()
        .expect("BrokenProcessPool");
    assert!(broken.to_string().contains("worker_main"), "{broken}");
}

#[test]
fn zero_workers_is_a_typed_error() {
    assert!(matches!(
        ProcessPool::builder().max_workers(0).build(),
        Err(BuildError::ZeroWorkers)
    ));
    assert!(matches!(
        ProcessPool::builder().max_tasks_per_child(0).build(),
        Err(BuildError::ZeroTasksPerChild)
    ));
}

#[test]
fn panics_carry_message_and_location() {
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    let failure = pool
        .submit(init_fails, "boom".to_string())
        .unwrap()
        .error()
        .unwrap()
        .unwrap();
    let panic = failure.downcast_ref::<TaskPanicked>().unwrap();
    assert_eq!(panic.message.as_deref(), Some("boom"));
    assert!(panic.location.as_ref().unwrap().contains("failures.rs"));
}

#[test]
fn shutdown_waits_and_refuses() {
    let pool = ProcessPool::builder().max_workers(2).build().unwrap();
    let futures: Vec<_> = (0..20u64)
        .map(|i| pool.submit(square, i).unwrap())
        .collect();
    pool.shutdown(true, false);
    for (i, f) in futures.iter().enumerate() {
        assert_eq!(*f.result_timeout(Duration::ZERO).unwrap(), (i * i) as u64);
    }
    assert!(matches!(pool.submit(square, 1), Err(SubmitError::Shutdown)));
    assert!(pool.worker_pids().is_empty());
}
