//! A blocking way into a worker's results pipe, for the thread waiting on an expressed call
//! without a deadline: one `read(2)` that sleeps until the answer arrives, as over a bare pipe,
//! instead of a non-blocking read that finds nothing, a `poll` and a second read.
//!
//! `O_NONBLOCK` belongs to the open file description, which a `dup` shares, so the blocking
//! descriptor is a second open of the same pipe through `/proc/self/fd`.
//!
//! A blocking read returns on bytes or EOF. EOF does not come when a process the task forked
//! still holds the pipe's write end after the worker died. For that case the I/O thread, once it
//! sees the worker's pidfd report the exit while a reader is on loan, sets the line's `dead`
//! flag and writes a [`Marker`] into the pipe (through a write end it opens the same way), which
//! wakes the reader. The worker is dead by then, so the marker comes after everything the worker
//! wrote, and it may end a frame the worker left half written. So no marker byte may be
//! decoded:
//!
//! - a reader checks the flag after every read, and gives up, undecoded, once it is set;
//! - the I/O thread cuts the stream at the marker before it decodes any more of it
//!   (`Worker::marker`).
//!
//! With a deadline the reader keeps the `poll` path, because a read blocked past its deadline
//! can be woken only by writing into the stream, and a live worker may be in the middle of a
//! frame.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::sys;

/// A worker's blocking read end, shared by the I/O thread (which owns the worker) and the
/// reader it is on loan to.
///
/// Invariant: `blocking` reads the same pipe as the worker's non-blocking `results` descriptor,
/// and only one thread reads the pipe at a time (the one the worker is on loan to, or the I/O
/// thread). Once `dead` is set it stays set.
pub(crate) struct ResultsLine {
    blocking: OwnedFd,
    dead: AtomicBool,
}

impl ResultsLine {
    /// Opens a blocking read end of the pipe `results`, checking that a write end can be opened
    /// the same way (without one, a reader could not be woken). `None` if `/proc` is missing or
    /// `results` is not a pipe.
    pub(crate) fn open(results: BorrowedFd<'_>) -> Option<Arc<Self>> {
        let blocking = sys::reopen(results, libc::O_RDONLY).ok()?;
        drop(sys::reopen(results, libc::O_WRONLY | libc::O_NONBLOCK).ok()?);
        Some(Arc::new(Self {
            blocking,
            dead: AtomicBool::new(false),
        }))
    }

    /// The blocking read end.
    pub(crate) fn fd(&self) -> RawFd {
        self.blocking.as_raw_fd()
    }

    /// Whether the worker is dead and the reader must give up.
    pub(crate) fn is_dead(&self) -> bool {
        // ORDERING: pairs with the Release store in `wake_reader`, made before the marker's
        // write(2). A read that returned any marker byte began after that write (the pipe's lock
        // orders the two), so the reader that checks after its read sees the flag.
        self.dead.load(Ordering::Acquire)
    }

    /// Tells the reader the worker `results` belongs to is dead, and writes `marker` into the
    /// pipe to wake it. Returns whether the marker went in: it does not when the pipe is full,
    /// but then the reader is not blocked either, and sees the flag after its next read.
    pub(crate) fn wake_reader(&self, results: BorrowedFd<'_>, marker: &Marker) -> bool {
        // ORDERING: see `is_dead`.
        self.dead.store(true, Ordering::Release);
        let Ok(writer) = sys::reopen(results, libc::O_WRONLY | libc::O_NONBLOCK) else {
            return false;
        };
        // At most PIPE_BUF bytes on a non-blocking pipe: all or nothing.
        let bytes = [std::io::IoSlice::new(&marker.0)];
        matches!(sys::write_vectored(writer.as_raw_fd(), &bytes), Ok(n) if n == marker.0.len())
    }
}

/// The bytes the I/O thread writes to wake a reader: random per pool, so a worker's output
/// contains them by chance with probability 2^-128.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Marker([u8; 16]);

impl Marker {
    pub(crate) fn random() -> Self {
        // RandomState's keys come from the OS's random source once per process, then change per
        // instance; each hasher is keyed with fresh ones.
        let half = || RandomState::new().build_hasher().finish().to_le_bytes();
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&half());
        bytes[8..].copy_from_slice(&half());
        Self(bytes)
    }

    /// Where the marker starts in `bytes` (the last time it occurs), if it does.
    pub(crate) fn find(&self, bytes: &[u8]) -> Option<usize> {
        bytes.windows(self.0.len()).rposition(|w| w == self.0)
    }

    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_blocked_reader_is_woken_by_the_marker_and_sees_the_flag() {
        let (read, write) = sys::pipe().unwrap();
        sys::set_nonblocking(read.as_raw_fd(), true).unwrap();
        let line = ResultsLine::open(read.as_fd()).unwrap();
        let marker = Marker::random();
        let reader = {
            let line = Arc::clone(&line);
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let n = sys::read_into_spare(line.fd(), &mut buf, 64).unwrap();
                (buf[..n].to_vec(), line.is_dead())
            })
        };
        // The write end stays open (as a forked grandchild would hold it): no EOF comes.
        assert!(line.wake_reader(read.as_fd(), &marker));
        let (got, dead) = reader.join().unwrap();
        assert_eq!(got, marker.bytes());
        assert!(dead);
        drop(write);
    }

    #[test]
    fn the_blocking_end_reads_what_the_worker_wrote() {
        let (read, write) = sys::pipe().unwrap();
        sys::set_nonblocking(read.as_raw_fd(), true).unwrap();
        let line = ResultsLine::open(read.as_fd()).unwrap();
        sys::write_all(write.as_raw_fd(), b"answer").unwrap();
        let mut buf = Vec::new();
        let n = sys::read_into_spare(line.fd(), &mut buf, 64).unwrap();
        assert_eq!(&buf[..n], b"answer");
        assert!(!line.is_dead());
        // The non-blocking end is still non-blocking.
        let mut rest = Vec::new();
        let again = sys::read_into_spare(read.as_raw_fd(), &mut rest, 64);
        assert_eq!(again.unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    }

    #[test]
    fn the_marker_is_found_where_it_was_appended() {
        let marker = Marker::random();
        assert_ne!(marker, Marker::random());
        let mut stream = vec![7u8; 100];
        assert_eq!(marker.find(&stream), None);
        stream.extend_from_slice(marker.bytes());
        stream.extend_from_slice(b"junk after it");
        assert_eq!(marker.find(&stream), Some(100));
    }
}
