//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::ffi::CString;
use std::io::Read;
use std::path::PathBuf;

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
