//! ssh connection masters: one per host, brought up before that host's first worker so that
//! every worker's session goes through it. Started together, ssh clients race to become the
//! master and the losers open full connections of their own ("ControlSocket ... already
//! exists, disabling multiplexing"); started after the master, each is a cheap new session.
//!
//! The master is `ssh -M -N -f`: it forks into the background once it is connected, so its
//! foreground process exiting (seen on its pidfd, without blocking the I/O thread) says it is
//! up. The host's workers wait for that, bounded by the start-up timeout; if it fails, they
//! connect directly. When the pool ends, `ssh -O exit` closes it (`ControlPersist=60` ends it
//! anyway should the pool die first).

use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::launcher::Master;
use crate::sys;

use super::Io;

/// Most time `ssh -O exit` may take when the pool ends.
const EXIT_BOUND: Duration = Duration::from_secs(2);

pub(super) enum MasterState {
    Starting {
        child: Child,
        pidfd: OwnedFd,
        since: Instant,
    },
    /// Up, or failed (the workers then connect directly): either way workers may start.
    Settled { up: bool },
}

/// The master of one host slot of one group.
pub(super) struct HostMaster {
    pub(super) group: usize,
    pub(super) slot: usize,
    pub(super) state: MasterState,
}

impl Io {
    fn master_of(&self, group: usize, slot: usize) -> Option<&Master> {
        self.config.groups[group].slots[slot].master.as_ref()
    }

    /// Whether workers may start on this host now; starts its master the first time.
    pub(super) fn master_ready(&mut self, group: usize, slot: usize) -> bool {
        let Some(master) = self.master_of(group, slot).cloned() else {
            return true;
        };
        let found = self
            .masters
            .iter()
            .find(|m| m.group == group && m.slot == slot);
        if let Some(m) = found {
            return matches!(m.state, MasterState::Settled { .. });
        }
        let state = match run(&master.start) {
            Some((child, pidfd)) => MasterState::Starting {
                child,
                pidfd,
                since: Instant::now(),
            },
            None => MasterState::Settled { up: false },
        };
        let ready = matches!(state, MasterState::Settled { .. });
        self.masters.push(HostMaster { group, slot, state });
        ready
    }

    /// Notes the masters that came up or failed, and gives up on the ones past the start-up
    /// timeout.
    pub(super) fn check_masters(&mut self, now: Instant) {
        let timeout = self.config.startup_timeout;
        for m in &mut self.masters {
            let MasterState::Starting { child, since, .. } = &mut m.state else {
                continue;
            };
            let settled = match child.try_wait() {
                Ok(Some(status)) => Some(status.success()),
                Ok(None) if now.duration_since(*since) >= timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    Some(false)
                }
                Ok(None) => None,
                Err(_) => Some(false),
            };
            if let Some(up) = settled {
                m.state = MasterState::Settled { up };
            }
        }
    }

    /// The pidfds of masters still starting, for `poll`, and when the first one times out.
    pub(super) fn starting_masters(&self) -> (Vec<i32>, Option<Instant>) {
        let mut fds = Vec::new();
        let mut first: Option<Instant> = None;
        for m in &self.masters {
            if let MasterState::Starting { pidfd, since, .. } = &m.state {
                fds.push(pidfd.as_raw_fd());
                let at = *since + self.config.startup_timeout;
                first = Some(first.map_or(at, |f| f.min(at)));
            }
        }
        (fds, first)
    }

    /// Closes every master this pool brought up (at the I/O thread's end).
    pub(super) fn close_masters(&mut self) {
        for m in std::mem::take(&mut self.masters) {
            let master = self.master_of(m.group, m.slot).cloned();
            match (m.state, master) {
                (MasterState::Starting { mut child, .. }, _) => {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                (MasterState::Settled { up: true }, Some(master)) => {
                    if let Some((mut child, pidfd)) = run(&master.exit) {
                        if !sys::wait_readable_for(pidfd.as_raw_fd(), EXIT_BOUND) {
                            let _ = child.kill();
                        }
                        let _ = child.wait();
                    }
                }
                _ => {}
            }
        }
    }
}

/// Starts a command with its pidfd; `None` if it cannot be started or watched (for a master,
/// the workers then connect directly).
fn run(argv: &[std::ffi::OsString]) -> Option<(Child, OwnedFd)> {
    let (program, args) = argv.split_first()?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    match sys::pidfd_open(child.id() as libc::pid_t) {
        Some(pidfd) => Some((child, pidfd)),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }
}
