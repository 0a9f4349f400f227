//! The worker side: [`worker_main`] and the loop that runs calls.

use std::cell::RefCell;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use crate::frame::{
    self, DEFAULT_MAX_FRAME, Frame, FrameError, RESULT_OVERHEAD, WireError,
    decode_frame_with_limit, frame_size, put_err,
};
use crate::heartbeat::Liveness;
use crate::lifeline::{self, Guard};
use crate::next_call_poll::NextCallPoll;
use crate::pipe_spin::PipeSpin;
use crate::registry;
use crate::sys;

/// Environment variable that marks a process as a worker: `<parent pid>` or
/// `<parent pid>:stdout6` (restore stdout from descriptor 6, for libtest helpers).
pub(crate) const ENV_WORKER: &str = "CONCUR_PROCESS_WORKER";

/// Descriptor a worker reads calls from.
pub(crate) const FD_CALLS: i32 = 3;
/// Descriptor a worker writes results to.
pub(crate) const FD_RESULTS: i32 = 4;
/// Descriptor of the lifeline pipe's write end (`crate::lifeline`), spawned workers only.
pub(crate) const FD_LIFELINE: i32 = 5;
/// Descriptor carrying the real stdout while libtest starts (test helpers only).
pub(crate) const FD_STDOUT: i32 = 6;

/// What a worker started through a launcher writes before its HELLO, so the pool can skip
/// whatever the launcher, a login shell or libtest printed on stdout before the worker started.
pub(crate) const SYNC: &[u8] = b"\0\x1bconcur-process sync\0";

/// Exit code of a worker that received bytes it could not understand (`EX_PROTOCOL`).
const EXIT_PROTOCOL: i32 = 76;

/// Hash identifying builds whose frames are compatible: this crate's version and protocol, and
/// the platform's word size and byte order.
pub(crate) fn fingerprint() -> u64 {
    registry::fnv1a(&[
        b"concur-process",
        env!("CARGO_PKG_VERSION").as_bytes(),
        &[frame::PROTOCOL_VERSION],
        std::env::consts::ARCH.as_bytes(),
        std::env::consts::OS.as_bytes(),
        &(usize::BITS as u16).to_le_bytes(),
        if cfg!(target_endian = "little") {
            b"le"
        } else {
            b"be"
        },
    ])
}

/// Runs this process as a pool worker if it was started as one; otherwise returns at once.
///
/// Call it first thing in `main` of every program that builds a
/// [`ProcessPool`](crate::ProcessPool) (or that serves as a pool's worker program): a pool
/// starts its workers by running the program again, and in a worker this call serves tasks until
/// the pool closes its pipe, then exits the process, so it never returns there. Whatever `main`
/// does before the call also happens in every worker. In `cargo test` binaries use
/// [`test_worker!`](crate::test_worker) instead.
///
/// A worker leads its own process group (so a terminal's Ctrl-C reaches only the parent), exits
/// when its pool's pipe closes, and is killed with `SIGKILL` as soon as the pool's process dies
/// (by `SIGKILL`, abort or exit, whatever the running task does): by `PR_SET_PDEATHSIG`, and by
/// a lifeline pipe whose only reader is the pool, which the kernel answers with `SIGKILL` when
/// it closes (through a launcher, a watchdog thread sees the pool's end of the results pipe
/// close instead). So it outlives neither the pool nor the parent process. (Processes a task
/// started are not killed with it.)
///
/// # Examples
///
/// ```no_run
/// concur_process::task! {
///     fn square(x: u64) -> u64 { x * x }
/// }
///
/// fn main() {
///     concur_process::worker_main();
///     let pool = concur_process::ProcessPool::builder().build().unwrap();
///     assert_eq!(*pool.submit(square, 12).unwrap().result().unwrap(), 144);
/// }
/// ```
pub fn worker_main() {
    let Some(value) = std::env::var_os(ENV_WORKER) else {
        return;
    };
    let value = value.to_string_lossy().into_owned();
    if value == "stdio" {
        stdio_main();
    }
    let (parent, restore_stdout) = match value.split_once(':') {
        Some((pid, "stdout6")) => (pid, true),
        _ => (value.as_str(), false),
    };
    let Ok(parent) = parent.parse::<libc::pid_t>() else {
        return;
    };
    if !sys::is_open(FD_CALLS) || !sys::is_open(FD_RESULTS) {
        // Started with the variable but without the pipes: not one of our workers.
        return;
    }
    // SAFETY: this runs before the worker starts any thread of its own or any task, at the top
    // of `main` (or in the libtest helper, whose other threads only wait for it), so no other
    // thread reads the environment concurrently. Removing the variable keeps processes that
    // tasks start from taking themselves for workers.
    unsafe { std::env::remove_var(ENV_WORKER) };
    if !lifeline::arm_death_signal(Some(parent)) {
        // The pool died before the death signal was armed.
        std::process::exit(0);
    }
    let Some(guard) = lifeline::arm_lifeline() else {
        // The pool died before the lifeline was armed.
        std::process::exit(0);
    };
    if restore_stdout {
        let _ = sys::move_fd(FD_STDOUT, 1);
    }
    // Processes started by tasks must not inherit the protocol pipes (or a dead worker's pipe
    // would stay open in them and hide its death).
    let _ = sys::set_cloexec(FD_CALLS);
    let _ = sys::set_cloexec(FD_RESULTS);
    std::process::exit(serve(false, guard));
}

/// A worker started through a launcher: the frames come over stdin and go out over stdout.
fn stdio_main() -> ! {
    // SAFETY: as in `worker_main`: no other thread of ours runs yet.
    unsafe { std::env::remove_var(ENV_WORKER) };
    // The parent is the launcher (or, past a local `env`, the pool's thread): it cannot be
    // checked, but the watchdog sees a pool that is already gone.
    lifeline::arm_death_signal(None);
    // Calls: stdin moves to 3, and stdin becomes /dev/null. Results: stdout moves to 4, and
    // stdout becomes a copy of stderr, so tasks' prints cannot corrupt the frames.
    let moved = sys::move_fd(0, FD_CALLS)
        .and_then(|()| sys::reopen_dev_null(0))
        .and_then(|()| sys::move_fd(1, FD_RESULTS))
        .and_then(|()| sys::dup_to(2, 1));
    if moved.is_err() {
        std::process::exit(EXIT_PROTOCOL);
    }
    let _ = sys::set_cloexec(FD_CALLS);
    let _ = sys::set_cloexec(FD_RESULTS);
    std::process::exit(serve(true, Guard::Watchdog));
}

/// A panic's message and `(file, line, column)`.
type PanicReport = (Option<String>, Option<(String, u32, u32)>);

thread_local! {
    /// The last panic on the worker's main thread.
    static LAST_PANIC: RefCell<Option<PanicReport>> = const { RefCell::new(None) };
}

fn install_panic_hook() {
    let worker_thread = std::thread::current().id();
    let default = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() != worker_thread {
            // A thread the task started: report as Rust normally does.
            return default(info);
        }
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned());
        let location = info
            .location()
            .map(|l| (l.file().to_owned(), l.line(), l.column()));
        LAST_PANIC.with(|slot| *slot.borrow_mut() = Some((message, location)));
    }));
}

/// Reads frames from a blocking descriptor.
struct FrameReader {
    fd: i32,
    buf: Vec<u8>,
    start: usize,
    /// With heartbeats on, reads go through the heartbeat thread's inbox first.
    liveness: Option<Arc<Liveness>>,
    /// For a spawned worker, whose pool is on this machine: poll for the next call briefly
    /// before blocking (`crate::pipe_spin`). A launched worker's caller may be across a
    /// network, where the next call never comes within the window.
    polls: bool,
    /// The call being answered was an AWAITED_CALL from another CPU: its caller may call
    /// again at once, while this worker still runs (one on this CPU cannot until it blocks).
    poll_after_answer: bool,
    /// Whether this answer's window is polled, from how the last ones ended.
    next_call: NextCallPoll,
}

impl FrameReader {
    fn new(fd: i32, polls: bool) -> Self {
        Self {
            fd,
            buf: Vec::with_capacity(64 * 1024),
            start: 0,
            liveness: None,
            polls,
            poll_after_answer: false,
            next_call: NextCallPoll::default(),
        }
    }

    /// Writes a whole frame to the results descriptor.
    fn write(&self, bytes: &[u8]) -> io::Result<()> {
        match &self.liveness {
            Some(liveness) => liveness.write_frame(bytes),
            None => sys::write_all(FD_RESULTS, bytes),
        }
    }

    /// The next whole frame, `Ok(None)` at end of input.
    fn next(&mut self, limit: usize) -> io::Result<Option<Result<(usize, usize), FrameError>>> {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        loop {
            let available = &self.buf[self.start..];
            let need = match frame_size(available, limit) {
                Ok(total) if available.len() >= total => {
                    let at = self.start;
                    self.start += total;
                    if let Some(liveness) = &self.liveness {
                        liveness.reading_done();
                    }
                    return Ok(Some(Ok((at, total))));
                }
                Ok(total) => total,
                Err(FrameError::Incomplete { needed }) => needed,
                Err(error) => return Ok(Some(Err(error))),
            };
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let want = need.max(64 * 1024);
            self.buf.reserve(want.saturating_sub(self.buf.len()));
            let poll = std::mem::take(&mut self.poll_after_answer);
            // One window per answer: after it the worker blocks until the next call.
            if poll && self.polls && self.liveness.is_none() && self.next_call.should_poll() {
                self.next_call.polled(PipeSpin::poll_across(self.fd, None));
            }
            let n = match &self.liveness {
                Some(liveness) => liveness.read_calls(&mut self.buf, 1 << 20)?,
                None => sys::read_into_spare(self.fd, &mut self.buf, 1 << 20)?,
            };
            if n == 0 {
                return Ok(None);
            }
            self.next_call.call_came();
        }
    }

    fn frame(&self, at: usize, len: usize) -> &[u8] {
        &self.buf[at..at + len]
    }
}

/// The worker loop; returns the exit code.
fn serve(sync: bool, guard: Guard) -> i32 {
    install_panic_hook();
    let mut out = Vec::with_capacity(64 * 1024);
    if sync {
        out.extend_from_slice(SYNC);
    }
    frame::encode_hello(&mut out, fingerprint(), sys::getpid() as u32);
    if sys::write_all(FD_RESULTS, &out).is_err() {
        return 0;
    }
    let mut reader = FrameReader::new(FD_CALLS, guard == Guard::Lifeline);
    let mut limit = DEFAULT_MAX_FRAME;

    // The first frame configures the worker and names the initializer.
    let (at, len) = match reader.next(limit) {
        Ok(Some(Ok(span))) => span,
        Ok(None) | Err(_) => return 0,
        Ok(Some(Err(_))) => return EXIT_PROTOCOL,
    };
    out.clear();
    match decode_frame_with_limit(reader.frame(at, len), limit) {
        Ok((
            Frame::Init {
                max_frame,
                initializer,
            },
            _,
        )) => {
            limit = max_frame as usize;
            // A watchdog starts before any user code runs (an initializer may hang), else
            // after READY, off the start-up path: until then the worker only writes to the
            // results pipe and reads the calls pipe, which fail (EPIPE, EOF) once the pool is
            // gone, so it cannot outlive the pool waiting there.
            let watchdog = guard == Guard::Watchdog;
            let watchdog_now = watchdog && initializer.is_some();
            if watchdog_now {
                lifeline::start_watchdog();
            }
            let failure = initializer.and_then(|(name, signature, args)| {
                let mut outcome = Vec::new();
                run_one(name, signature, args, &mut outcome);
                let outcomes = frame::Outcomes::from_raw(1, &outcome);
                match outcomes.iter().next() {
                    Some(Ok(_)) => None,
                    Some(Err(error)) => Some(error),
                    None => Some(WireError::EncodeResult("no outcome".into())),
                }
            });
            match failure {
                None => frame::encode_ready(&mut out),
                Some(error) => frame::encode_init_failed(&mut out, &error),
            }
            if sys::write_all(FD_RESULTS, &out).is_err() {
                return 0;
            }
            if watchdog && !watchdog_now {
                lifeline::start_watchdog();
            }
        }
        _ => return EXIT_PROTOCOL,
    }

    let mut outcomes = Vec::with_capacity(64 * 1024);
    // The last task looked up: calls mostly repeat one task, and a name comparison is cheaper
    // than hashing it.
    let mut last: Option<&'static registry::TaskEntry> = None;
    loop {
        let (at, len) = match reader.next(limit) {
            Ok(Some(Ok(span))) => span,
            // The pool closed the pipe: no more work.
            Ok(None) | Err(_) => return 0,
            Ok(Some(Err(_))) => return EXIT_PROTOCOL,
        };
        let (id, name, signature, args, caller_cpu) =
            match decode_frame_with_limit(reader.frame(at, len), limit) {
                Ok((
                    Frame::Call {
                        id,
                        name,
                        signature,
                        args,
                        caller_cpu,
                    },
                    _,
                )) => (id, name, signature, args, caller_cpu),
                Ok((Frame::Heartbeat { interval_ms }, _)) => {
                    if reader.liveness.is_none() && interval_ms > 0 {
                        let interval = Duration::from_millis(u64::from(interval_ms));
                        reader.liveness = Liveness::start(interval);
                    }
                    continue;
                }
                _ => return EXIT_PROTOCOL,
            };
        outcomes.clear();
        // Room for the RESULT's header, id, count and CPU.
        let budget = limit.saturating_sub(RESULT_OVERHEAD);
        // Look the task up once per call, not per item.
        let found = match last {
            Some(entry) if entry.name == name => Some(entry),
            _ => registry::lookup(name),
        };
        last = found.or(last);
        let entry = match found {
            None => Err(WireError::UnknownTask),
            Some(entry) if (entry.signature)() != signature => Err(WireError::SignatureMismatch),
            Some(entry) => Ok(entry),
        };
        for item in args.iter() {
            let mark = outcomes.len();
            match &entry {
                Ok(entry) => run_entry(entry, item, &mut outcomes),
                Err(error) => put_err(&mut outcomes, error),
            }
            if outcomes.len() > budget {
                let size = (outcomes.len() - mark) as u64;
                outcomes.truncate(mark);
                put_err(&mut outcomes, &WireError::ResultTooLarge(size));
            }
        }
        out.clear();
        let cpu = frame::this_cpu();
        frame::encode_result(&mut out, id, args.len() as u32, &outcomes, cpu);
        if reader.write(&out).is_err() {
            return 0;
        }
        reader.poll_after_answer =
            caller_cpu.is_some_and(|caller| cpu != frame::UNKNOWN_CPU && caller != cpu);
        if out.capacity() > 1 << 20 {
            out = Vec::with_capacity(64 * 1024);
        }
        if outcomes.capacity() > 1 << 20 {
            outcomes = Vec::with_capacity(64 * 1024);
        }
    }
}

/// Runs one argument set of task `name`, appending exactly one outcome to `out`.
fn run_one(name: &str, signature: u64, args: &[u8], out: &mut Vec<u8>) {
    let Some(entry) = registry::lookup(name) else {
        return put_err(out, &WireError::UnknownTask);
    };
    if (entry.signature)() != signature {
        return put_err(out, &WireError::SignatureMismatch);
    }
    run_entry(entry, args, out);
}

/// Runs one argument set of `entry`, appending exactly one outcome to `out`; a panic becomes
/// that outcome.
fn run_entry(entry: &registry::TaskEntry, args: &[u8], out: &mut Vec<u8>) {
    let mark = out.len();
    let result = panic::catch_unwind(AssertUnwindSafe(|| (entry.run)(args, out)));
    if let Err(payload) = result {
        out.truncate(mark);
        let recorded = LAST_PANIC.with(|slot| slot.borrow_mut().take());
        let (message, location) = recorded.unwrap_or_else(|| {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned());
            (message, None)
        });
        // A payload whose destructor panics would unwind out of the worker; contain it.
        let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
        put_err(out, &WireError::Panicked { message, location });
    }
}
