//! CPU pinning for the "both threads on one CPU" scenarios (Linux `sched_setaffinity`).
//!
//! On other systems pinning is unavailable: [`first_allowed_cpu`] returns `None` and the pinned
//! scenarios are skipped.

/// The lowest-numbered CPU the calling thread may run on, if pinning is supported here.
pub fn first_allowed_cpu() -> Option<usize> {
    imp::allowed_cpus().and_then(|cpus| cpus.into_iter().next())
}

/// The two lowest-numbered CPUs the calling thread may run on, if pinning is supported and
/// there are two.
pub fn two_allowed_cpus() -> Option<(usize, usize)> {
    let cpus = imp::allowed_cpus()?;
    Some((*cpus.first()?, *cpus.get(1)?))
}

/// How many CPUs the calling thread may run on, if known.
pub fn allowed_cpu_count() -> Option<usize> {
    imp::allowed_cpus().map(|cpus| cpus.len())
}

/// Pins the calling thread to `cpu` until the guard is dropped, which restores its previous
/// CPU set. Threads it spawns meanwhile inherit the pin.
///
/// # Panics
/// If the system refuses (pinning unsupported, or `cpu` not allowed).
#[must_use = "the pin ends when the guard is dropped"]
pub fn pin_current_thread(cpu: usize) -> Pin {
    let previous = imp::allowed_cpus().expect("CPU affinity is not supported here");
    imp::set_allowed_cpus(&[cpu]).unwrap_or_else(|e| panic!("cannot pin to CPU {cpu}: {e}"));
    Pin { previous }
}

/// Pins the process (the main thread of) `pid`, a child of ours, to `cpu`.
///
/// # Errors
/// If the system refuses (pinning unsupported, `cpu` not allowed, no such process).
pub fn pin_process(pid: u32, cpu: usize) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    imp::set_allowed_cpus_of(pid, &[cpu])
}

/// Restores the thread's previous CPU set when dropped.
#[derive(Debug)]
pub struct Pin {
    previous: Vec<usize>,
}

impl Drop for Pin {
    fn drop(&mut self) {
        // Best effort: failing to widen the set again only slows later scenarios down.
        let _ = imp::set_allowed_cpus(&self.previous);
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::mem::{MaybeUninit, size_of};

    fn cpu_limit() -> usize {
        8 * size_of::<libc::cpu_set_t>()
    }

    pub(super) fn allowed_cpus() -> Option<Vec<usize>> {
        let mut set = MaybeUninit::<libc::cpu_set_t>::zeroed();
        // SAFETY: `set` is a writable cpu_set_t of the size we pass; pid 0 is this thread.
        let rc =
            unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), set.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        // SAFETY: zero-initialised and then filled in by a successful sched_getaffinity.
        let set = unsafe { set.assume_init() };
        // SAFETY: CPU_ISSET only reads `set`, and every index is below its capacity.
        Some(
            (0..cpu_limit())
                .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
                .collect(),
        )
    }

    pub(super) fn set_allowed_cpus(cpus: &[usize]) -> io::Result<()> {
        set_allowed_cpus_of(0, cpus)
    }

    /// `pid` 0 is the calling thread.
    pub(super) fn set_allowed_cpus_of(pid: libc::pid_t, cpus: &[usize]) -> io::Result<()> {
        // SAFETY: an all-zero cpu_set_t is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &cpu in cpus {
            if cpu >= cpu_limit() {
                return Err(io::Error::from(io::ErrorKind::InvalidInput));
            }
            // SAFETY: `cpu` is below the set's capacity (checked above).
            unsafe { libc::CPU_SET(cpu, &mut set) };
        }
        // SAFETY: `set` is a valid cpu_set_t of the size we pass; `pid` is plain data.
        let rc = unsafe { libc::sched_setaffinity(pid, size_of::<libc::cpu_set_t>(), &set) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;

    pub(super) fn allowed_cpus() -> Option<Vec<usize>> {
        None
    }

    pub(super) fn set_allowed_cpus(_cpus: &[usize]) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    pub(super) fn set_allowed_cpus_of(_pid: i32, _cpus: &[usize]) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}
