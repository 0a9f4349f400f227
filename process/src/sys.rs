//! Small, documented wrappers over the `libc` calls the crate makes. Every `unsafe` block of the
//! crate that touches the OS lives here or in `spawn.rs`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::error::ExitStatus;

/// Lowest descriptor number the pool uses for its own pipes, so that none of them can collide
/// with the numbers a worker expects (0 to 5) when the spawn file actions run.
const MIN_FD: RawFd = 10;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Duplicates `fd` to a close-on-exec descriptor numbered at least [`MIN_FD`].
pub(crate) fn dup_high(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on a borrowed (so open) descriptor; it only creates a new one.
    let new = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, MIN_FD) })?;
    // SAFETY: `new` was just created by fcntl and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Opens the pipe `fd` refers to once more, through `/proc/self/fd`: a new open file
/// description with its own status flags (`flags`: `O_RDONLY` or `O_WRONLY`, maybe with
/// `O_NONBLOCK`), close-on-exec and numbered at least [`MIN_FD`]. Opening an anonymous pipe
/// this way never waits for the other end (unlike a named FIFO).
pub(crate) fn reopen(fd: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let access = flags & libc::O_ACCMODE;
    let file = std::fs::OpenOptions::new()
        .read(access == libc::O_RDONLY)
        .write(access == libc::O_WRONLY)
        .custom_flags(flags & !libc::O_ACCMODE)
        .open(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    dup_high(file.as_fd())
}

/// A pipe `(read end, write end)`, both close-on-exec and numbered at least [`MIN_FD`].
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both descriptors are new and ours.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((dup_high(r.as_fd())?, dup_high(w.as_fd())?))
}

/// `writev(2)` of up to `IOV_MAX` slices, retrying on EINTR. On the pool's non-blocking calls
/// pipes it never blocks, and never raises `SIGPIPE` on any thread: the pool keeps a read end of
/// each calls pipe open for as long as it writes to it (see `spawn::Spawned::calls_reader`).
pub(crate) fn write_vectored(fd: RawFd, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    let count = bufs.len().min(1024) as libc::c_int;
    loop {
        // SAFETY: `IoSlice` is ABI-compatible with `iovec`; `bufs` holds at least `count` live
        // slices, each describing readable bytes, and writev only reads through the pointer.
        let n = unsafe { libc::writev(fd, bufs.as_ptr().cast(), count) };
        match cvt_size(n) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Sets or clears `O_NONBLOCK`.
pub(crate) fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL on a descriptor the caller keeps open; no memory is passed.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: as above, F_SETFL only changes status flags.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) })?;
    Ok(())
}

/// Sets `FD_CLOEXEC` on `fd`.
pub(crate) fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_SETFD on a descriptor number; an invalid one yields EBADF, nothing else.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) })?;
    Ok(())
}

/// Whether `fd` is an open descriptor.
pub(crate) fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// `read(2)` into `buf`, retrying on EINTR.
pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        match cvt_size(n) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// `read(2)` of at most `max` bytes into the spare capacity of `buf` (reserving some if there is
/// none), retrying on EINTR; the bytes read are appended.
pub(crate) fn read_into_spare(fd: RawFd, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    if buf.capacity() == buf.len() {
        buf.reserve(64 * 1024);
    }
    let spare = buf.spare_capacity_mut();
    let len = spare.len().min(max);
    loop {
        // SAFETY: the spare capacity is valid for writes of `len` bytes; read initialises at
        // most that many.
        let n = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), len) };
        match cvt_size(n) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(n) => {
                // SAFETY: read initialised the first `n` bytes of the spare capacity.
                unsafe { buf.set_len(buf.len() + n) };
                return Ok(n);
            }
        }
    }
}

/// Writes all of `buf` to a blocking descriptor.
pub(crate) fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        match cvt_size(n) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// An eventfd used to wake the pool's I/O thread.
pub(crate) struct EventFd(OwnedFd);

impl EventFd {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers and returns a new descriptor or -1.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: `fd` is new and ours.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Makes the descriptor readable. Never blocks (a saturated counter is readable anyway).
    pub(crate) fn notify(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live array to our own eventfd.
        let _ = unsafe { libc::write(self.raw(), one.as_ptr().cast(), 8) };
    }

    /// Resets the counter.
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 8];
        let _ = read(self.raw(), &mut buf);
    }
}

/// A one-shot monotonic timer descriptor: readable once the time set with [`arm`](Timer::arm)
/// has passed, until [`drain`](Timer::drain)ed.
pub(crate) struct Timer(OwnedFd);

impl Timer {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: timerfd_create takes no pointers and returns a new descriptor or -1.
        let fd = cvt(unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_CLOEXEC | libc::TFD_NONBLOCK,
            )
        })?;
        // SAFETY: `fd` is new and ours.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Fires once, `after` from now (replacing any earlier setting).
    pub(crate) fn arm(&self, after: std::time::Duration) {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs() as libc::time_t,
                // At least 1 ns: an all-zero value would disarm the timer.
                tv_nsec: libc::c_long::from(after.subsec_nanos().max(1)),
            },
        };
        // SAFETY: `spec` is a live itimerspec; a null old value is allowed.
        let _ = unsafe { libc::timerfd_settime(self.raw(), 0, &spec, std::ptr::null_mut()) };
    }

    /// Consumes the expiry, so the descriptor is no longer readable.
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 8];
        let _ = read(self.raw(), &mut buf);
    }
}

/// A descriptor that becomes readable when process `pid` exits (`pidfd_open(2)`), or `None`
/// where the kernel lacks it (death is then seen by EOF alone).
pub(crate) fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: the raw syscall takes two integers and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the syscall returned a new descriptor that we own (pidfds are close-on-exec).
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `poll(2)`; `timeout_ms < 0` waits forever. EINTR counts as a wake with no events.
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout_ms: libc::c_int) -> io::Result<usize> {
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfds.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    match cvt(n) {
        Ok(n) => Ok(n as usize),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}

/// Sends `signal` to the process `pid` and to its process group (a worker leads its own group,
/// so this also reaches processes its task started). The caller must not have reaped `pid`.
/// Waits up to `bound` for `fd` to become readable (a pidfd: its process exited).
pub(crate) fn wait_readable_for(fd: RawFd, bound: std::time::Duration) -> bool {
    let mut fds = [libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }];
    let ms = bound.as_millis().min(i32::MAX as u128) as libc::c_int;
    matches!(poll(&mut fds, ms), Ok(n) if n > 0)
}

/// Whether a read of `fd` would not block now (bytes waiting, or end of input).
pub(crate) fn readable_now(fd: RawFd) -> bool {
    wait_readable_for(fd, std::time::Duration::ZERO)
}

/// The CPU the calling thread runs on (-1 if the kernel cannot say).
pub(crate) fn current_cpu() -> libc::c_int {
    // SAFETY: no arguments; reads the CPU number the kernel keeps for this thread.
    unsafe { libc::sched_getcpu() }
}

/// Gives the CPU to another runnable thread, if any.
pub(crate) fn yield_cpu() {
    // SAFETY: no arguments; cannot fail on Linux.
    unsafe { libc::sched_yield() };
}

/// Whether this machine has more than one CPU online, so that the other end of a pipe may
/// run beside this process (cached: the answer rarely changes, and a stale one only costs a
/// poll window or a wasted wake-up). Not this process's affinity: a worker pinned to one CPU
/// still answers a caller on another.
pub(crate) fn several_cpus() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    // 0 unknown, 1 yes, 2 no.
    static CACHE: AtomicU8 = AtomicU8::new(0);
    // ORDERING: Relaxed: an idempotent cache of a value every thread computes identically.
    match CACHE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            // SAFETY: sysconf reads a system value; no memory is passed.
            let many = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) } > 1;
            CACHE.store(if many { 1 } else { 2 }, Ordering::Relaxed);
            many
        }
    }
}

/// Whether a write of at most `PIPE_BUF` bytes to `fd` would not block now.
pub(crate) fn writable_now(fd: RawFd) -> bool {
    let mut fds = [libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    }];
    matches!(poll(&mut fds, 0), Ok(1) if fds[0].revents & libc::POLLOUT != 0)
}

/// Bytes waiting to be read in the pipe `fd` (`FIONREAD`).
pub(crate) fn unread_bytes(fd: RawFd) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the valid pointer.
    let ret = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    (ret == 0).then_some(n.max(0) as usize)
}

pub(crate) fn kill_worker(pid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: kill/killpg take plain integers; the pid is an unreaped child of ours, so it cannot
    // have been recycled for another process.
    unsafe {
        libc::killpg(pid, signal);
        libc::kill(pid, signal);
    }
}

/// Reaps `pid` if it has exited (`block == false`) or waits for it to exit (`block == true`).
pub(crate) fn wait_pid(pid: libc::pid_t, block: bool) -> Option<ExitStatus> {
    let mut status: libc::c_int = 0;
    let flags = if block { 0 } else { libc::WNOHANG };
    loop {
        // SAFETY: `status` is a valid out-pointer for waitpid.
        let ret = unsafe { libc::waitpid(pid, &mut status, flags) };
        if ret == pid {
            return Some(decode_status(status));
        }
        if ret < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if ret < 0 {
            // ECHILD: someone else reaped it (a SIGCHLD handler set to SIG_IGN, say); the status
            // is lost.
            return Some(ExitStatus::Unknown);
        }
        return None;
    }
}

fn decode_status(status: libc::c_int) -> ExitStatus {
    if libc::WIFSIGNALED(status) {
        ExitStatus::Signaled(libc::WTERMSIG(status))
    } else if libc::WIFEXITED(status) {
        ExitStatus::Exited(libc::WEXITSTATUS(status))
    } else {
        ExitStatus::Unknown
    }
}

/// Blocks `SIGPIPE` in the calling thread, so a write to a dead worker's pipe fails with
/// `EPIPE` instead of killing the process (whatever the program's disposition for `SIGPIPE`).
/// A `SIGPIPE` raised by such a write stays pending on this thread and is never delivered.
pub(crate) fn block_sigpipe() {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set before sigaddset and pthread_sigmask read it.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), std::ptr::null_mut());
    }
}

/// The parent's process id.
pub(crate) fn getppid() -> libc::pid_t {
    // SAFETY: getppid has no arguments and cannot fail.
    unsafe { libc::getppid() }
}

/// This process's id.
pub(crate) fn getpid() -> libc::pid_t {
    // SAFETY: getpid has no arguments and cannot fail.
    unsafe { libc::getpid() }
}

/// Asks the kernel to SIGKILL this process when the thread that spawned it exits.
pub(crate) fn set_parent_death_signal() {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number; no memory is passed.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
    }
}

/// Runs `f` with every signal blocked in the calling thread, then restores its mask. A thread
/// spawned inside `f` inherits the full mask, so process-directed signals never pick it.
pub(crate) fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    let mut all = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    let mut old = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigfillset initialises `all` before pthread_sigmask reads it; pthread_sigmask
    // writes the previous mask into `old`, which is read back only after that.
    unsafe {
        libc::sigfillset(all.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_SETMASK, all.as_ptr(), old.as_mut_ptr());
    }
    let result = f();
    // SAFETY: `old` was initialised by the first pthread_sigmask call.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old.as_ptr(), std::ptr::null_mut()) };
    result
}

/// Blocks until `fd`, the write end of a pipe (or a socket), has no reader left; `false` if
/// `fd` is not open (there is then nothing to watch). Reads and writes nothing.
pub(crate) fn wait_until_unread(fd: RawFd) -> bool {
    // No events requested: poll still reports POLLERR (a pipe without readers) and POLLHUP
    // (a socket whose peer closed), and nothing else wakes it.
    let mut fds = [libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    }];
    loop {
        match poll(&mut fds, -1) {
            Ok(0) => continue,
            Ok(_) if fds[0].revents & libc::POLLNVAL != 0 => return false,
            Ok(_) => return true,
            Err(_) => return false,
        }
    }
}

/// `fcntl` command that sets a descriptor's I/O signal: `F_SETSIG` of Linux's generic
/// `<asm-generic/fcntl.h>`, which every architecture Rust targets uses (the `libc` crate does
/// not export it).
const F_SETSIG: libc::c_int = 10;

/// Has the kernel send this process `SIGKILL` when the pipe whose write end is `fd` loses its
/// last reader: this process becomes `fd`'s owner, `SIGKILL` its I/O signal, and `O_ASYNC` is
/// set. The kernel also signals a pipe's writers on every read from it, so this is only for a
/// pipe that nobody reads (`crate::lifeline`).
pub(crate) fn kill_when_unread(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor number with integer arguments; no memory is passed.
    unsafe {
        cvt(libc::fcntl(fd, libc::F_SETOWN, libc::getpid()))?;
        cvt(libc::fcntl(fd, F_SETSIG, libc::SIGKILL))?;
        let flags = cvt(libc::fcntl(fd, libc::F_GETFL))?;
        cvt(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_ASYNC))?;
    }
    Ok(())
}

/// Whether `fd`, the write end of a pipe, has no reader left now; waits for nothing.
pub(crate) fn is_unread(fd: RawFd) -> bool {
    let mut fds = [libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    }];
    matches!(poll(&mut fds, 0), Ok(1) if fds[0].revents & libc::POLLERR != 0)
}

/// Kills this whole process with `SIGKILL`, which nothing can catch or delay.
pub(crate) fn kill_self() -> ! {
    // SAFETY: kill(2) of our own pid; no memory is passed.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    // SIGKILL to ourselves is delivered before kill returns to user space; abort is
    // unreachable in practice and ends the process all the same.
    std::process::abort()
}

/// `dup2(from, to)` followed by closing `from`.
pub(crate) fn move_fd(from: RawFd, to: RawFd) -> io::Result<()> {
    // SAFETY: dup2 on descriptor numbers; `to` is replaced atomically.
    cvt(unsafe { libc::dup2(from, to) })?;
    // SAFETY: `from` was ours to close (handed over by the parent at spawn).
    unsafe { libc::close(from) };
    Ok(())
}

/// `dup2(from, to)`, keeping `from` open.
pub(crate) fn dup_to(from: RawFd, to: RawFd) -> io::Result<()> {
    // SAFETY: dup2 on descriptor numbers; `to` is replaced atomically.
    cvt(unsafe { libc::dup2(from, to) })?;
    Ok(())
}

/// Opens `/dev/null` read-write on descriptor `fd`.
pub(crate) fn reopen_dev_null(fd: RawFd) -> io::Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    if null.as_raw_fd() != fd {
        dup_to(null.as_raw_fd(), fd)?;
    } else {
        // Already in place: keep it open.
        std::mem::forget(null);
    }
    Ok(())
}

/// The name of a signal, as in `SIGKILL`.
pub(crate) fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => return None,
    })
}
