//! The CPython peer: `python/peers.py` (standard library only) run as a subprocess, its
//! `result` lines read back as peer measurements named `cpython`.
//!
//! The script's line format (`#` lines are comments):
//!
//! ```text
//! result<TAB>scenario<TAB>name<TAB>median_ns<TAB>min_ns<TAB>max_ns
//! ```
//!
//! The interpreter is `$CONCUR_PYTHON` if set, else `python3` from `PATH`. A missing
//! interpreter or script, a failed run, and a run over its time limit (the child is killed) are
//! all reported as a reason to skip, never as a hang or a panic.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::contender::Side;
use crate::measure::Measured;

/// The peer's name in `compare`'s rows.
pub const PEER: &str = "cpython";

/// The script, as found in this crate's source tree.
pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/peers.py")
}

/// The interpreter to run.
pub fn interpreter() -> String {
    std::env::var("CONCUR_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// One figure of the script: the scenario it belongs to and the measurement.
#[derive(Debug, Clone)]
pub struct Figure {
    /// `compare`'s scenario name, e.g. `wait_any/10000`.
    pub scenario: String,
    /// The measurement (a peer).
    pub measured: Measured,
}

/// How to run the script.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// Pass `--quick`.
    pub quick: bool,
    /// Pass `--smoke` (a few operations each; for tests).
    pub smoke: bool,
    /// Kill the child after this long.
    pub limit: Duration,
}

/// Runs the script for `groups` (`wait_any`, `wait_register`, `as_completed`, `pool`) and
/// returns its figures, or why it could not.
pub fn measure(groups: &[&str], run: Run) -> Result<Vec<Figure>, String> {
    let script = script();
    if !script.is_file() {
        return Err(format!("{} not found", script.display()));
    }
    let python = interpreter();
    let mut command = Command::new(&python);
    command.arg(&script).arg("--only").arg(groups.join(","));
    if run.quick {
        command.arg("--quick");
    }
    if run.smoke {
        command.arg("--smoke");
    }
    // Its own process group, so that a time-out kills whatever it started too.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + run.limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                kill_group(&mut child);
                let _ = child.wait();
                // The reader ends when the last holder of the pipe is gone; it is not waited
                // for, in case something outside the group still holds it.
                drop(reader);
                return Err(format!(
                    "{python} {} ran over {:?} and was killed",
                    script.display(),
                    run.limit
                ));
            }
            Err(e) => return Err(format!("cannot wait for {python}: {e}")),
        }
    };
    let text = reader
        .join()
        .map_err(|_| "the output reader panicked".to_string())?;
    if !status.success() {
        return Err(format!("{python} {} failed: {status}", script.display()));
    }
    // Its comments (interpreter version, task counts) are for a reader.
    for comment in text.lines().filter(|line| line.starts_with('#')) {
        eprintln!("  {comment}");
    }
    parse(&text).ok_or_else(|| "the script's output is malformed".to_string())
}

/// Kills `child` and its process group.
fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill has no memory-safety preconditions; -pid names the group the child
        // leads (it was spawned with process_group(0)).
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    let _ = child.kill();
}

/// Reads the script's output; `None` if a `result` line is malformed.
pub fn parse(text: &str) -> Option<Vec<Figure>> {
    text.lines()
        .filter(|line| line.starts_with("result\t"))
        .map(|line| {
            let mut fields = line.split('\t').skip(1);
            let scenario = fields.next()?.to_string();
            let name = fields.next()?.to_string();
            let mut number = || fields.next()?.trim().parse::<f64>().ok();
            let ns = number()?;
            let range = (number()?, number()?);
            Some(Figure {
                scenario,
                measured: Measured {
                    name,
                    side: Side::Peer,
                    ns,
                    range,
                    rounds: Vec::new(),
                    latency: None,
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_result_lines_and_skips_comments() {
        let text = "# cpython 3.11\nresult\twait_any/16\tcpython\t5.5\t4\t9\n\nresult\tas_completed\tcpython\t3200.0\t3100.0\t3300.0\n";
        let figures = parse(text).unwrap();
        assert_eq!(figures.len(), 2);
        assert_eq!(figures[0].scenario, "wait_any/16");
        assert_eq!(figures[0].measured.name, "cpython");
        assert_eq!(figures[0].measured.ns, 5.5);
        assert_eq!(figures[0].measured.range, (4.0, 9.0));
        assert_eq!(figures[1].measured.side, Side::Peer);
        assert!(parse("result\tx\tcpython\tfast\t1\t2\n").is_none());
    }
}
