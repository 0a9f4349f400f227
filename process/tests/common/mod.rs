//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::ffi::CString;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A FIFO in a fresh temporary directory: a task opens it to announce that it started.
pub struct Fifo {
    pub path: PathBuf,
}

impl Fifo {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "concur-process-{}-{tag}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("fifo");
        let c = CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        Self { path }
    }

    pub fn path_string(&self) -> String {
        self.path.to_str().unwrap().to_owned()
    }

    /// Blocks until a task opened the FIFO, wrote a line and closed it; returns the line.
    pub fn read_line(&self) -> String {
        let mut text = String::new();
        std::fs::File::open(&self.path)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text.trim().to_owned()
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Task-side: announce our pid on the FIFO at `path`.
pub fn announce(path: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    writeln!(f, "{}", std::process::id()).unwrap();
}

/// Block this thread forever (a task that never finishes on its own).
pub fn hang() -> ! {
    loop {
        std::thread::park();
    }
}

pub fn sigkill(pid: u32) {
    // SAFETY: plain kill(2) of a worker of ours.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
}

/// Children of this process that are zombies (state Z), from /proc.
pub fn zombie_children() -> Vec<u32> {
    let me = std::process::id();
    let mut zombies = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some(after) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.len() > 1 && fields[0] == "Z" && fields[1] == me.to_string() {
            zombies.push(pid);
        }
    }
    zombies
}

/// Whether a process with this pid exists (zombies included).
pub fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// A pidfd for `pid` (readable once the process has exited).
pub fn pidfd(pid: u32) -> OwnedFd {
    // SAFETY: the raw syscall returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    assert!(fd >= 0, "pidfd_open({pid})");
    // SAFETY: a fresh descriptor we own.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Runs the test `helper` of this binary in a child process with `var` set to `value`, and
/// returns it with the pids it printed on a `PIDS 1 2 ...` line.
pub fn start_helper_parent(helper: &str, var: &str, value: &str) -> (Child, Vec<u32>) {
    let mut parent = Command::new(std::env::current_exe().unwrap())
        .args([helper, "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(var, value)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(parent.stdout.take().unwrap()).lines();
    let pids = loop {
        let line = lines.next().expect("helper output").unwrap();
        if let Some(pids) = line.strip_prefix("PIDS ") {
            break pids.split(' ').map(|p| p.parse().unwrap()).collect();
        }
    };
    (parent, pids)
}
