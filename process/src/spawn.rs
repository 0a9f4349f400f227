//! Starting a worker with `posix_spawn(3)`: fork/exec semantics without copying the parent's
//! page tables (glibc spawns with `CLONE_VM | CLONE_VFORK`), so the cost does not grow with the
//! parent's memory.
//!
//! The child gets: its calls pipe on descriptor 3, its results pipe on 4 and its lifeline pipe
//! on 5 (`crate::lifeline`); stdin from
//! `/dev/null`; stdout and stderr as configured (inherited by default); every other descriptor
//! closed; its own process group; the default disposition for the signals the pool uses and an
//! empty signal mask.

use std::ffi::CString;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::ptr;

use crate::sys;
use crate::worker::{FD_CALLS, FD_LIFELINE, FD_RESULTS, FD_STDOUT};

/// Everything needed to start a worker, prepared once per pool.
pub(crate) struct SpawnConfig {
    pub(crate) program: CString,
    pub(crate) argv: Vec<CString>,
    /// `KEY=VALUE` entries, the worker marker included.
    pub(crate) env: Vec<CString>,
    /// Replaces the worker's stdout (inherited when `None`).
    pub(crate) stdout: Option<OwnedFd>,
    /// Replaces the worker's stderr (inherited when `None`).
    pub(crate) stderr: Option<OwnedFd>,
    /// Park stdout on descriptor 6 and point 1 at `/dev/null` while libtest starts.
    pub(crate) park_stdout: bool,
    /// Launcher mode: the calls and results go over the child's stdin and stdout (which a
    /// launcher such as `ssh` relays), and `program` is looked up in `PATH`.
    pub(crate) stdio: bool,
}

/// A started worker: its pid and the parent's ends of its pipes.
pub(crate) struct Spawned {
    pub(crate) pid: libc::pid_t,
    /// Write end of the calls pipe (the worker's descriptor 3 is its read end).
    pub(crate) calls: OwnedFd,
    /// The pool's own copy of the calls pipe's read end, never read: while it is open the pipe
    /// always has a reader, so a write to a dead worker fills the pipe instead of raising
    /// `SIGPIPE` (which `submit`'s express path, running on the caller's thread, could not
    /// block cheaply). Dropped with the worker.
    pub(crate) calls_reader: OwnedFd,
    /// Read end of the results pipe (the worker's descriptor 4).
    pub(crate) results: OwnedFd,
    /// The only read end of the lifeline pipe (the worker's descriptor 5; none through a
    /// launcher). Never read: a read would signal the worker, which takes its lifeline's I/O
    /// signal, `SIGKILL`. Closing it kills the worker, so it is dropped with the worker's
    /// record, once the worker is dead.
    pub(crate) lifeline: Option<OwnedFd>,
}

/// `posix_spawn_file_actions_t`, destroyed on drop.
struct FileActions(MaybeUninit<libc::posix_spawn_file_actions_t>);

impl FileActions {
    fn new() -> io::Result<Self> {
        let mut actions = FileActions(MaybeUninit::uninit());
        // SAFETY: init writes a fresh object into the uninitialised storage.
        check(unsafe { libc::posix_spawn_file_actions_init(actions.0.as_mut_ptr()) })?;
        Ok(actions)
    }

    fn ptr(&mut self) -> *mut libc::posix_spawn_file_actions_t {
        self.0.as_mut_ptr()
    }

    fn dup2(&mut self, from: RawFd, to: RawFd) -> io::Result<()> {
        // SAFETY: the object was initialised in `new`; the call only records the action.
        check(unsafe { libc::posix_spawn_file_actions_adddup2(self.ptr(), from, to) })
    }

    fn open(&mut self, fd: RawFd, path: &CString, flags: libc::c_int) -> io::Result<()> {
        // SAFETY: initialised object; `path` is NUL-terminated and glibc copies it.
        check(unsafe {
            libc::posix_spawn_file_actions_addopen(self.ptr(), fd, path.as_ptr(), flags, 0)
        })
    }

    fn close_from(&mut self, from: RawFd) -> io::Result<()> {
        // SAFETY: initialised object; the call only records the action (glibc 2.34+).
        check(unsafe { libc::posix_spawn_file_actions_addclosefrom_np(self.ptr(), from) })
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` and destroyed exactly once, here.
        unsafe { libc::posix_spawn_file_actions_destroy(self.ptr()) };
    }
}

/// `posix_spawnattr_t`, destroyed on drop.
struct Attributes(MaybeUninit<libc::posix_spawnattr_t>);

impl Attributes {
    fn new() -> io::Result<Self> {
        let mut attr = Attributes(MaybeUninit::uninit());
        // SAFETY: init writes a fresh object into the uninitialised storage.
        check(unsafe { libc::posix_spawnattr_init(attr.0.as_mut_ptr()) })?;
        let p = attr.0.as_mut_ptr();
        // SAFETY: the sigset_t values are initialised by sigemptyset before use, and every
        // setter only copies its arguments into the initialised attribute object.
        unsafe {
            let mut empty = MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(empty.as_mut_ptr());
            let mut defaults = MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(defaults.as_mut_ptr());
            for signal in [
                libc::SIGTERM,
                libc::SIGINT,
                libc::SIGQUIT,
                libc::SIGPIPE,
                libc::SIGCHLD,
                libc::SIGUSR1,
                libc::SIGUSR2,
            ] {
                libc::sigaddset(defaults.as_mut_ptr(), signal);
            }
            check(libc::posix_spawnattr_setsigmask(p, empty.as_ptr()))?;
            check(libc::posix_spawnattr_setsigdefault(p, defaults.as_ptr()))?;
            check(libc::posix_spawnattr_setpgroup(p, 0))?;
            let flags = libc::POSIX_SPAWN_SETPGROUP
                | libc::POSIX_SPAWN_SETSIGMASK
                | libc::POSIX_SPAWN_SETSIGDEF;
            check(libc::posix_spawnattr_setflags(p, flags as libc::c_short))?;
        }
        Ok(attr)
    }
}

impl Drop for Attributes {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` and destroyed exactly once, here.
        unsafe { libc::posix_spawnattr_destroy(self.0.as_mut_ptr()) };
    }
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(ret))
    }
}

/// Starts one worker.
pub(crate) fn spawn(config: &SpawnConfig) -> io::Result<Spawned> {
    // The parent keeps the write end of the calls pipe (and a read end, see `calls_reader`)
    // and the read end of the results pipe.
    let (calls_r, calls_w) = sys::pipe()?;
    let (results_r, results_w) = sys::pipe()?;
    let lifeline = if config.stdio {
        None
    } else {
        Some(sys::pipe()?)
    };
    // The parent's ends are separate open file descriptions from the child's, so this does not
    // make the worker's descriptors non-blocking.
    sys::set_nonblocking(calls_w.as_raw_fd(), true)?;
    sys::set_nonblocking(results_r.as_raw_fd(), true)?;
    let dev_null = c"/dev/null".to_owned();

    let mut actions = FileActions::new()?;
    // Sources are all >= 10 (see `sys::dup_high`), so no action clobbers a later source.
    if config.stdio {
        actions.dup2(calls_r.as_raw_fd(), 0)?;
        actions.dup2(results_w.as_raw_fd(), 1)?;
    } else {
        actions.dup2(calls_r.as_raw_fd(), FD_CALLS)?;
        actions.dup2(results_w.as_raw_fd(), FD_RESULTS)?;
    }
    if let Some((_, write)) = &lifeline {
        actions.dup2(write.as_raw_fd(), FD_LIFELINE)?;
    }
    let stdout = match &config.stdout {
        Some(fd) => Some(sys::dup_high(std::os::fd::AsFd::as_fd(fd))?),
        None => None,
    };
    let stderr = match &config.stderr {
        Some(fd) => Some(sys::dup_high(std::os::fd::AsFd::as_fd(fd))?),
        None => None,
    };
    if config.stdio {
        // stdout carries the results; the worker points its own stdout at stderr.
    } else if config.park_stdout {
        let source = stdout.as_ref().map_or(1, AsRawFd::as_raw_fd);
        actions.dup2(source, FD_STDOUT)?;
        actions.open(1, &dev_null, libc::O_WRONLY)?;
    } else if let Some(fd) = &stdout {
        actions.dup2(fd.as_raw_fd(), 1)?;
    }
    if let Some(fd) = &stderr {
        actions.dup2(fd.as_raw_fd(), 2)?;
    }
    if config.stdio {
        actions.close_from(3)?;
    } else {
        actions.open(0, &dev_null, libc::O_RDONLY)?;
        actions.close_from(if config.park_stdout {
            FD_STDOUT + 1
        } else {
            FD_STDOUT
        })?;
    }

    let mut attr = Attributes::new()?;
    let mut argv: Vec<*mut libc::c_char> =
        config.argv.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argv.push(ptr::null_mut());
    let mut envp: Vec<*mut libc::c_char> =
        config.env.iter().map(|e| e.as_ptr().cast_mut()).collect();
    envp.push(ptr::null_mut());

    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer is valid for the call: the program path and the NUL-terminated
    // argv/envp arrays borrow `config` and the local vectors, which outlive it; the file actions
    // and attributes were initialised above. glibc's posix_spawn does not write through argv or
    // envp despite their `*mut` types.
    let ret = unsafe {
        let spawn = if config.stdio {
            libc::posix_spawnp
        } else {
            libc::posix_spawn
        };
        spawn(
            &mut pid,
            config.program.as_ptr(),
            actions.ptr(),
            attr.0.as_mut_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
        )
    };
    check(ret)?;
    // The child's end of the results pipe is closed here, so EOF there means the worker is gone.
    drop((results_w, stdout, stderr));
    Ok(Spawned {
        pid,
        calls: calls_w,
        calls_reader: calls_r,
        results: results_r,
        lifeline: lifeline.map(|(read, _write)| read),
    })
}
