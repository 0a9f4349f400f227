//! The waiting thread reads its own answer: a call `submit` wrote straight to a lent worker
//! (the express path) is answered on that worker's results pipe, and the thread blocking on the
//! call's future reads it there, decodes it and completes the future itself. The round trip is
//! then caller → worker → caller, two synchronous pipe hand-offs as over a bare pipe, instead of
//! caller → worker → I/O thread → caller, whose last hop is a futex wake-up of a thread parked
//! on another CPU (the slowest step by far on a virtual machine).
//!
//! Who reads a lent worker's results pipe is decided under the pool's lock, so it is never two
//! readers at once. A worker is in exactly one of these places:
//!
//! - owned by the I/O thread (it polls and reads the pipe);
//! - `State::express`: idle, lent to `submit` while the I/O thread sleeps (which does not poll
//!   the pipes of the workers it lent, only their pidfds);
//! - `State::expressed`: running an expressed call nobody reads yet; a driver takes the call
//!   over, or the I/O thread adopts it when it wakes: for a request, for a waiter that cannot
//!   read ([`Drive::watch`]), or for the express timer, so an answer nobody waits for is still
//!   collected;
//! - `State::driving` (a [`Loan`]): a waiting thread reads its answer; the I/O thread leaves the
//!   pipe alone (it still watches the pidfd, and may kill the worker);
//! - `State::returned` ([`Returned`]): given back by a driver, with whatever it read, for the
//!   I/O thread to adopt.
//!
//! A driver without a deadline reads with one blocking `read` on the worker's results line
//! (`crate::results_line`), as over a bare pipe; one with a deadline reads without blocking and
//! waits in `poll` on the pipe and the pidfd.
//!
//! A driver that read a clean answer lends the worker out again itself when the I/O thread is
//! still asleep and nothing is queued; otherwise (it gave up, or the I/O thread is awake or has
//! work to hand out) it hands the worker back and wakes the I/O thread. A driver gives up on a
//! deadline, EOF, the worker's exit, an error or any bytes but exactly its own answer; the I/O
//! thread then reads the rest, so deaths, protocol errors and cancels keep their single code
//! path there.

use std::os::fd::RawFd;
use std::sync::{Arc, MutexGuard, Weak};
use std::time::Instant;

use concur_core::Drive;

use crate::frame::{self, Frame, FrameError, Outcomes};
use crate::job::Job;
use crate::pipe_spin::{PipeSpin, Polled};
use crate::results_line::ResultsLine;
use crate::shared::{Express, Expressed, Loan, Returned, Shared, State};
use crate::sys;

std::thread_local! {
    /// The read buffer of this thread's drives, kept between them (taken while in use, so a
    /// drive nested in a completion callback gets its own).
    static READ_BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Largest read buffer kept for the next drive.
const KEPT_BUFFER: usize = 64 * 1024;

/// The [`Drive`] of a `submit` future: reads the call's answer if the call took the express
/// path and nobody reads it yet; otherwise returns at once and the wait parks as usual.
pub(crate) struct Driver {
    /// Weak: a future outliving its pool must not keep the pool's state alive.
    shared: Weak<Shared>,
    id: u64,
}

impl Driver {
    pub(crate) fn new(shared: &Arc<Shared>, id: u64) -> Self {
        Self {
            shared: Arc::downgrade(shared),
            id,
        }
    }
}

impl Drive for Driver {
    fn drive(&self, deadline: Option<Instant>) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let Some((lent, job)) = take_over(&shared, self.id) else {
            return;
        };
        let source = Source::of(&lent, deadline);
        let mut guard = UnwindGuard {
            shared: &shared,
            lent: Some(lent),
        };
        let mut bytes = READ_BUFFER.take();
        let job = match read_answer(&source, shared.max_frame, &mut bytes) {
            Read::Frame => match complete(job, self.id, &mut bytes, shared.max_frame) {
                Ok(worker_cpu) => {
                    if let Some(lent) = guard.lent.as_mut() {
                        lent.worker_cpu = frame::known_cpu(worker_cpu);
                    }
                    None
                }
                Err(job) => Some(job),
            },
            Read::GaveUp => Some(job),
        };
        let unread = if job.is_some() && !bytes.is_empty() {
            std::mem::take(&mut bytes)
        } else {
            Vec::new()
        };
        if bytes.capacity() <= KEPT_BUFFER {
            bytes.clear();
            READ_BUFFER.set(bytes);
        }
        if let Some(lent) = guard.lent.take() {
            give_back(&shared, lent, job, unread);
        }
    }

    /// Someone waits without reading: if the call's answer is left to a driver, hand the call
    /// to the I/O thread now.
    fn watch(&self) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let wake = {
            let mut state = shared.lock();
            state.expressed.iter().any(|e| e.job.id == self.id) && Shared::touch(&mut state)
        };
        if wake {
            shared.wake.notify();
        }
    }
}

/// Hands a loaned worker back if a drive unwinds (a bug: nothing in it should panic), so the
/// worker is never left on loan with the I/O thread waiting for it.
struct UnwindGuard<'a> {
    shared: &'a Shared,
    lent: Option<Express>,
}

impl Drop for UnwindGuard<'_> {
    fn drop(&mut self) {
        if let Some(lent) = self.lent.take() {
            // Not clean: the I/O thread takes it back and reads whatever is left in the pipe.
            hand_back(self.shared, lent, None, Vec::new());
        }
    }
}

/// Where a drive reads its answer: the blocking read end when it has no deadline and the
/// worker has one (`crate::results_line`), else the non-blocking one, waited on with `poll`.
struct Source {
    pipe: Pipe,
    deadline: Option<Instant>,
    /// The worker's results line, if it has one. Its `dead` flag is checked after every read
    /// on either end: the marker that wakes a blocked reader lands in the same pipe.
    line: Option<Arc<ResultsLine>>,
    /// The CPU the worker answered its last driven call on, if known.
    worker_cpu: Option<u32>,
}

impl Source {
    fn of(lent: &Express, deadline: Option<Instant>) -> Self {
        Self {
            pipe: Pipe {
                results: lent.results,
                pidfd: lent.pidfd,
            },
            deadline,
            line: lent.line.clone(),
            worker_cpu: lent.worker_cpu,
        }
    }

    /// Polls a little for the answer before blocking (`crate::pipe_spin`); returns whether it
    /// came. Not at all if the worker last answered on this CPU (it needs this CPU to answer),
    /// across CPUs if it answered on another, and guessing if it has answered nothing yet.
    fn poll_for_answer(&self, deadline: Option<Instant>) -> bool {
        let fd = self.pipe.results;
        match self.worker_cpu {
            Some(cpu) if frame::this_cpu() == cpu => false,
            Some(_) => PipeSpin::poll_across(fd, deadline) == Polled::Readable,
            None => PipeSpin::on_this_thread(fd, deadline),
        }
    }

    fn fd(&self) -> RawFd {
        match (&self.line, self.deadline) {
            (Some(line), None) => line.fd(),
            _ => self.pipe.results,
        }
    }

    /// Whether a read of [`Source::fd`] blocks until bytes come.
    fn blocks(&self) -> bool {
        self.line.is_some() && self.deadline.is_none()
    }

    /// Whether the worker is known dead, so no byte read may be decoded here (a marker may end
    /// them).
    fn worker_dead(&self) -> bool {
        self.line.as_ref().is_some_and(|line| line.is_dead())
    }
}

/// Moves the expressed call `id` (whole in the worker's pipe, unadopted) into `driving`.
fn take_over(shared: &Shared, id: u64) -> Option<(Express, Job)> {
    let mut state = shared.lock();
    let at = state
        .expressed
        .iter()
        .position(|e| e.job.id == id && e.written == e.job.frame.len())?;
    let Expressed { lent, job, .. } = state.expressed.swap_remove(at);
    state.driving.push(Loan {
        worker: lent.worker,
        id,
        key: job.key,
    });
    Some((lent, job))
}

enum Read {
    /// `bytes` holds exactly one whole frame.
    Frame,
    /// Deadline, EOF, an error, or bytes that are not exactly one frame.
    GaveUp,
}

/// A lent worker's results pipe and its pidfd.
#[derive(Clone, Copy)]
struct Pipe {
    results: RawFd,
    pidfd: Option<RawFd>,
}

/// Reads from the results pipe until one whole frame is in `bytes`.
///
/// On the polling path it reads before it polls: on a shared CPU the worker usually ran (and
/// answered) while this thread was preempted by its wake-up, so the answer is there and the
/// `poll` would be a wasted system call; across CPUs the failed read costs a fraction of the
/// wait.
fn read_answer(source: &Source, limit: usize, bytes: &mut Vec<u8>) -> Read {
    if source.worker_dead() {
        return Read::GaveUp;
    }
    loop {
        let want = match frame::frame_size(bytes, limit) {
            Ok(total) if bytes.len() >= total => return Read::GaveUp,
            Ok(total) => total - bytes.len(),
            // Most answers are small: a small first read keeps the buffer in malloc's
            // thread cache (a 4 KiB one measurably is not).
            Err(FrameError::Incomplete { .. }) => 256,
            Err(_) => return Read::GaveUp,
        };
        if bytes.try_reserve(want).is_err() {
            return Read::GaveUp;
        }
        if source.blocks() {
            // Before a read that blocks, poll a little while the worker may still answer.
            source.poll_for_answer(None);
        }
        match sys::read_into_spare(source.fd(), bytes, want) {
            Ok(0) => return Read::GaveUp,
            Ok(_) if source.worker_dead() => return Read::GaveUp,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // Only the non-blocking end says EAGAIN.
                if !source.poll_for_answer(source.deadline)
                    && !wait_readable(source.pipe, source.deadline)
                {
                    return Read::GaveUp;
                }
                continue;
            }
            Err(_) => return Read::GaveUp,
        }
        match frame::frame_size(bytes, limit) {
            Ok(total) if bytes.len() == total => return Read::Frame,
            Ok(total) if bytes.len() > total => return Read::GaveUp,
            Ok(_) | Err(FrameError::Incomplete { .. }) => {}
            Err(_) => return Read::GaveUp,
        }
    }
}

/// Waits until the results pipe is readable (or at EOF); false if `deadline` passed, a
/// descriptor is unusable or the worker exited (the I/O thread reads what it left).
fn wait_readable(pipe: Pipe, deadline: Option<Instant>) -> bool {
    let pollfd = |fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // Without a pidfd (old kernels) the entry is ignored (negative descriptor).
    let mut fds = [pollfd(pipe.results), pollfd(pipe.pidfd.unwrap_or(-1))];
    loop {
        match sys::poll(&mut fds, timeout_ms(deadline)) {
            Ok(_) if (fds[0].revents | fds[1].revents) & libc::POLLNVAL != 0 => return false,
            Ok(_) if fds[1].revents != 0 => return false,
            Ok(_) if fds[0].revents != 0 => return true,
            Ok(_) if deadline.is_some_and(|d| Instant::now() >= d) => return false,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

/// `poll`'s timeout until `deadline`, rounded up to whole milliseconds.
fn timeout_ms(deadline: Option<Instant>) -> libc::c_int {
    deadline.map_or(-1, |at| {
        let left = at.saturating_duration_since(Instant::now());
        left.as_micros()
            .div_ceil(1000)
            .min(libc::c_int::MAX as u128) as libc::c_int
    })
}

/// Completes `job` with the answer in `bytes` if it is its RESULT frame (then `bytes` is
/// consumed and the CPU the worker answered on returned); otherwise hands the job back
/// untouched.
fn complete(job: Job, id: u64, bytes: &mut Vec<u8>, limit: usize) -> Result<u32, Job> {
    let (count, raw, worker_cpu) = match frame::decode_frame_with_limit(bytes, limit) {
        Ok((
            Frame::Result {
                id: answered,
                outcomes,
                worker_cpu,
            },
            used,
        )) if answered == id && used == bytes.len() => {
            let (count, raw) = outcomes.raw();
            (count, raw, worker_cpu)
        }
        _ => return Err(job),
    };
    job.completion
        .complete(job.name, Ok(Outcomes::from_raw(count, raw)));
    bytes.clear();
    Ok(worker_cpu)
}

/// Ends a drive: lends the worker out again if that needs no I/O thread (a clean answer, the
/// I/O thread asleep and nothing queued), else hands it back and wakes the I/O thread.
fn give_back(shared: &Shared, mut lent: Express, job: Option<Job>, bytes: Vec<u8>) {
    let clean = job.is_none();
    if clean {
        lent.used += 1;
        lent.left = lent.left.map(|left| left.saturating_sub(1));
    }
    let mut state = shared.lock();
    // Queued calls mean the I/O thread must hand this worker one: wake it instead.
    if clean && state.lending && state.queue.is_empty() && lent.left != Some(0) {
        end_loan(&mut state, lent.worker);
        state.express.push(lent);
        return;
    }
    hand_back_locked(shared, state, lent, job, bytes);
}

/// Gives a loaned worker back to the I/O thread, with its call and the bytes read if the drive
/// did not complete it, and wakes the I/O thread.
fn hand_back(shared: &Shared, lent: Express, job: Option<Job>, bytes: Vec<u8>) {
    hand_back_locked(shared, shared.lock(), lent, job, bytes);
}

fn hand_back_locked(
    shared: &Shared,
    mut state: MutexGuard<'_, State>,
    lent: Express,
    job: Option<Job>,
    bytes: Vec<u8>,
) {
    end_loan(&mut state, lent.worker);
    state.returned.push(Returned {
        worker: lent.worker,
        job,
        bytes,
        used: lent.used,
        worker_cpu: lent.worker_cpu,
    });
    let wake = Shared::touch(&mut state);
    drop(state);
    if wake {
        shared.wake.notify();
    }
}

/// Removes the loan of `worker` from `driving`.
fn end_loan(state: &mut State, worker: u64) {
    if let Some(at) = state.driving.iter().position(|l| l.worker == worker) {
        state.driving.swap_remove(at);
    }
}
