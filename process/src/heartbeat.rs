//! The worker's side of liveness, on when the pool's first HEARTBEAT says so: a thread that
//! sends a HEARTBEAT every interval (idle or busy, so the pool hears from it either way), and
//! ends the worker when the pool falls silent for twice the interval or, while a task runs, when
//! its calls stream ends. Across a network nothing else tells a busy worker that its pool is
//! gone: an ssh client killed, a partition, or an intermediary that keeps the stream open
//! without relaying it.
//!
//! The main thread reads calls itself (blocking, no extra system call per call); between calls
//! it notes when it last heard from the pool. While a task runs nobody reads the calls stream,
//! so the thread reads it instead, into an inbox the main thread empties before its next read.
//! Holding the inbox's lock is the right to read the stream, so the bytes keep their order.
//! Writes to the results stream (answers, heartbeats) go under one lock, whole frames at a time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::frame;
use crate::sys;
use crate::worker::{FD_CALLS, FD_RESULTS};

/// Stack of the heartbeat thread: it only polls, reads, writes and sleeps.
const STACK: usize = 64 * 1024;

/// Shared by the worker's main thread and its heartbeat thread.
pub(crate) struct Liveness {
    interval: Duration,
    started: Instant,
    /// Milliseconds since `started` when bytes last came from the pool.
    heard_ms: AtomicU64,
    /// The main thread is not reading the calls stream (a task runs).
    busy: AtomicBool,
    /// Bytes of the calls stream the heartbeat thread read while a task ran.
    inbox: Mutex<Vec<u8>>,
    /// Held for every write to the results stream.
    write: Mutex<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain buffers: consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Liveness {
    /// Starts the heartbeat thread at `interval`; `None` if the thread cannot be created (the
    /// worker then runs without, and the pool, hearing nothing, replaces it).
    pub(crate) fn start(interval: Duration) -> Option<Arc<Liveness>> {
        let liveness = Arc::new(Liveness {
            interval,
            started: Instant::now(),
            heard_ms: AtomicU64::new(0),
            busy: AtomicBool::new(false),
            inbox: Mutex::new(Vec::new()),
            write: Mutex::new(()),
        });
        let beat = Arc::clone(&liveness);
        // Signals stay blocked here, so the task's threads still get the worker's signals.
        sys::with_signals_blocked(|| {
            std::thread::Builder::new()
                .name("concur-process-heartbeat".into())
                .stack_size(STACK)
                .spawn(move || beat.run())
        })
        .ok()?;
        Some(liveness)
    }

    fn heard(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        // ORDERING: a timestamp read only by the heartbeat thread's silence check; a stale
        // value there errs by at most one wake-up.
        self.heard_ms.store(ms, Ordering::Relaxed);
    }

    /// Writes a whole frame to the results stream.
    pub(crate) fn write_frame(&self, bytes: &[u8]) -> std::io::Result<()> {
        let _turn = lock(&self.write);
        sys::write_all(FD_RESULTS, bytes)
    }

    /// Reads more of the calls stream into `buf` for the main thread: first what the heartbeat
    /// thread read meanwhile, else a blocking read. Returns the bytes added (0 at its end).
    pub(crate) fn read_calls(&self, buf: &mut Vec<u8>, max: usize) -> std::io::Result<usize> {
        // ORDERING: the inbox lock below orders the reads themselves; `busy` only keeps the
        // heartbeat thread from trying for it while the main thread reads.
        self.busy.store(false, Ordering::Relaxed);
        let mut inbox = lock(&self.inbox);
        if !inbox.is_empty() {
            buf.extend_from_slice(&inbox);
            let n = inbox.len();
            inbox.clear();
            return Ok(n);
        }
        let n = sys::read_into_spare(FD_CALLS, buf, max)?;
        self.heard();
        Ok(n)
    }

    /// The main thread has a frame and stops reading until it asks for more.
    pub(crate) fn reading_done(&self) {
        // ORDERING: as in `read_calls`.
        self.busy.store(true, Ordering::Relaxed);
    }

    fn run(&self) {
        self.heard();
        let mut beat = Vec::new();
        let interval_ms = self.interval.as_millis().min(u32::MAX as u128) as u32;
        frame::encode_heartbeat(&mut beat, interval_ms);
        let mut next_beat = Instant::now();
        loop {
            let now = Instant::now();
            if now >= next_beat {
                self.send(&beat);
                next_beat = now + self.interval;
            }
            // ORDERING: Relaxed, as in `heard`: a stale timestamp errs by one wake-up.
            let silent = self
                .started
                .elapsed()
                .saturating_sub(Duration::from_millis(self.heard_ms.load(Ordering::Relaxed)));
            if silent > self.interval * 2 {
                sys::kill_self();
            }
            self.wait(next_beat.saturating_duration_since(Instant::now()));
        }
    }

    /// Sends one heartbeat, unless the main thread is writing (its answer is news enough) or
    /// the results stream is full (the pool is not reading: it hears nothing either way, and
    /// this thread must not block, so that its silence check still runs).
    fn send(&self, beat: &[u8]) {
        let Ok(_turn) = self.write.try_lock() else {
            return;
        };
        if !sys::writable_now(FD_RESULTS) {
            return;
        }
        if sys::write_all(FD_RESULTS, beat).is_err() {
            // Nobody reads the results stream: the pool is gone.
            sys::kill_self();
        }
    }

    /// Sleeps until `left` has passed; while a task runs, reads the calls stream meanwhile,
    /// and ends the worker when the stream ends. The inbox is locked only for a read that
    /// cannot block, so the main thread, done with its task, never waits for this one.
    fn wait(&self, left: Duration) {
        // ORDERING: see `read_calls`.
        if !self.busy.load(Ordering::Relaxed) {
            std::thread::sleep(left);
            return;
        }
        if !sys::wait_readable_for(FD_CALLS, left) {
            return;
        }
        let Ok(mut inbox) = self.inbox.try_lock() else {
            // The main thread is reading: the bytes are its.
            return;
        };
        // ORDERING: see `read_calls`.
        if !self.busy.load(Ordering::Relaxed) || !sys::wait_readable_for(FD_CALLS, Duration::ZERO) {
            return;
        }
        match sys::read_into_spare(FD_CALLS, &mut inbox, 64 * 1024) {
            // The calls stream ended mid-task (the pool or its launcher is gone): no answer can
            // reach anyone, so the task is not finished.
            Ok(0) => sys::kill_self(),
            Ok(_) => self.heard(),
            // A transient error; the silence check still ends a worker cut off for good.
            Err(_) => {}
        }
    }
}
