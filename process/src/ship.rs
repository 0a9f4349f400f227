//! Shipping this executable to the ssh hosts of a pool
//! ([`ship_executable`](crate::Launcher::ship_executable)), at `build`, before any worker
//! starts there.
//!
//! One `ssh HOST sh -c '...'` per host, all at once, each fed `/proc/self/exe` on its stdin and
//! bounded together by the start-up timeout. The remote script keeps one copy per build
//! fingerprint: it answers at once when the copy is there already, and otherwise writes a
//! temporary file next to it and renames it into place, so two pools shipping at once never
//! run a half-written file. It prints the copy's path, which becomes the host's worker program.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{BuildError, ShipError};
use crate::launcher::Target;

/// How one ssh host gets this executable.
#[derive(Clone, Debug)]
pub(crate) struct Shipment {
    /// The worker's ssh argv prefix, ending with the host.
    pub(crate) ssh: Vec<OsString>,
    /// The directory on the host under which the copies live (default
    /// `${TMPDIR:-/tmp}/concur-$USER`).
    pub(crate) dir: Option<String>,
}

/// Ships the executable to every target that asks for it and points the target's program at
/// the copy.
///
/// # Errors
/// [`BuildError::Ship`] for the first host that failed (ssh error, remote script failure, or no
/// answer within `timeout`), with ssh's stderr; [`BuildError::ShipWithProgram`] if the launcher
/// also names a program.
pub(crate) fn ship_all(targets: &mut [Target], timeout: Duration) -> Result<(), BuildError> {
    let deadline = Instant::now() + timeout;
    let (done, results) = mpsc::channel();
    let mut running = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        let Some(shipment) = &target.ship else {
            continue;
        };
        if target.program.is_some() {
            return Err(BuildError::ShipWithProgram);
        }
        let child = start(shipment).map_err(|error| failed(target, error.to_string()))?;
        running.push((index, child.id()));
        let done = done.clone();
        std::thread::spawn(move || {
            let _ = done.send((index, child.wait_with_output()));
        });
    }
    drop(done);
    let mut outcomes: Vec<(usize, io::Result<Output>)> = Vec::new();
    while outcomes.len() < running.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match results.recv_timeout(left) {
            Ok(outcome) => outcomes.push(outcome),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let (index, _) = running
                    .iter()
                    .find(|(i, _)| outcomes.iter().all(|(o, _)| o != i))
                    .copied()
                    .unwrap_or_default();
                kill_unfinished(&running, &outcomes);
                let reason = format!("no answer within the start-up timeout ({timeout:?})");
                return Err(failed(&targets[index], reason));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    outcomes.sort_by_key(|(index, _)| *index);
    for (index, outcome) in outcomes {
        let target = &mut targets[index];
        let path = answer(outcome).map_err(|reason| failed(target, reason))?;
        target.program = Some(path);
    }
    Ok(())
}

/// `ssh ... HOST sh -c '<script>'`, fed this executable.
fn start(shipment: &Shipment) -> io::Result<std::process::Child> {
    let (program, args) = shipment
        .ssh
        .split_first()
        .ok_or_else(|| io::Error::other("empty ssh command"))?;
    let script = script(shipment.dir.as_deref())?;
    Command::new(program)
        .args(args)
        .arg(format!("sh -c '{script}'"))
        .stdin(std::fs::File::open("/proc/self/exe")?)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}

/// The remote script: no single quote in it, so it fits in `sh -c '...'`.
fn script(dir: Option<&str>) -> io::Result<String> {
    let base = match dir {
        Some(dir) if dir.contains('\'') => {
            return Err(io::Error::other(
                "the ship directory contains a single quote",
            ));
        }
        Some(dir) => dir.to_owned(),
        None => "${TMPDIR:-/tmp}/concur-$(id -un)".to_owned(),
    };
    let name = exe_name();
    let fingerprint = crate::worker::fingerprint();
    Ok(format!(
        "set -e; d=\"{base}/{fingerprint:016x}\"; p=\"$d/{name}\"; \
         if ! test -x \"$p\"; then mkdir -p -m 700 \"$d\"; t=\"$p.tmp.$$\"; \
         trap \"rm -f \\\"$t\\\"\" EXIT; cat > \"$t\"; chmod 700 \"$t\"; mv -f \"$t\" \"$p\"; \
         trap - EXIT; fi; printf \"%s\\n\" \"$p\""
    ))
}

/// This executable's file name, kept to characters that need no quoting.
fn exe_name() -> String {
    let name = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let name: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .collect();
    if name.is_empty() || name.starts_with('.') {
        format!("concur-worker{name}")
    } else {
        name
    }
}

/// The copy's path from a finished ssh, or why there is none.
fn answer(outcome: io::Result<Output>) -> Result<PathBuf, String> {
    let output = outcome.map_err(|error| error.to_string())?;
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if !output.status.success() {
        return Err(format!("ssh ended with {}: {stderr}", output.status));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    match stdout.lines().last().map(str::trim) {
        Some(path) if path.starts_with('/') => Ok(PathBuf::from(path)),
        _ => Err(format!("no path in the answer {stdout:?}: {stderr}")),
    }
}

/// Kills the ssh clients that had not answered. One may have exited and been reaped by its
/// thread in the instant since; its pid could then only be another process's if the system's
/// pids wrapped around within that instant.
fn kill_unfinished(running: &[(usize, u32)], outcomes: &[(usize, io::Result<Output>)]) {
    for (index, pid) in running {
        if outcomes.iter().all(|(done, _)| done != index) {
            // SAFETY: kill touches no memory; the pid is this process's child (see above).
            unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

fn failed(target: &Target, reason: String) -> BuildError {
    BuildError::Ship(ShipError {
        host: target.host.clone(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_fits_in_single_quotes_and_renames_into_place() {
        let text = script(Some("/srv/x")).unwrap();
        assert!(!text.contains('\''), "{text}");
        assert!(text.contains("mv -f"), "{text}");
        assert!(text.starts_with("set -e; d=\"/srv/x/"), "{text}");
        assert!(script(Some("/it's")).is_err());
    }
}
