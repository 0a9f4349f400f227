//! The command that starts a worker: the current executable (or a worker program) spawned
//! locally with its private pipes, or the same program behind a launcher prefix speaking over
//! its stdin and stdout.

use std::ffi::{CString, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::BuildError;
use crate::launcher::{Launcher, Target};
use crate::registry;
use crate::shared::{Group, Slot};
use crate::spawn::SpawnConfig;
use crate::worker::ENV_WORKER;

fn cstring(bytes: &[u8]) -> Result<CString, BuildError> {
    CString::new(bytes).map_err(|_| BuildError::Nul)
}

/// The heartbeat interval of launched workers unless the builder sets one.
pub(crate) const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);

/// What the builder says about the worker program, for every launcher of the pool.
pub(crate) struct WorkerCommand {
    pub(crate) program: Option<PathBuf>,
    pub(crate) args: Option<Vec<OsString>>,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) stdout: Option<OwnedFd>,
    pub(crate) stderr: Option<OwnedFd>,
}

impl WorkerCommand {
    fn stdout(&self) -> Result<Option<OwnedFd>, BuildError> {
        duplicate(&self.stdout)
    }

    fn stderr(&self) -> Result<Option<OwnedFd>, BuildError> {
        duplicate(&self.stderr)
    }
}

/// A copy of a descriptor the builder was given, one per host's spawn command.
fn duplicate(fd: &Option<OwnedFd>) -> Result<Option<OwnedFd>, BuildError> {
    fd.as_ref()
        .map(OwnedFd::try_clone)
        .transpose()
        .map_err(BuildError::Io)
}

/// Expands each group's launcher into the hosts it reaches, each with its spawn command.
pub(crate) fn plan(
    groups: Vec<(usize, Launcher)>,
    command: &WorkerCommand,
    heartbeat: Option<Duration>,
    startup_timeout: Duration,
) -> Result<Vec<Group>, BuildError> {
    let mut planned = Vec::new();
    for (max, launcher) in groups {
        let mut slots = Vec::new();
        let mut targets = launcher.targets();
        crate::ship::ship_all(&mut targets, startup_timeout)?;
        for target in targets {
            let spawn = match &target.prefix {
                None => spawn_config(command)?,
                Some(prefix) => launcher_config(prefix, &target, command)?,
            };
            // Launched workers are on by default: EOF and the launcher's exit are no proof of
            // a remote worker's death (or life). Local ones are off: the pidfd and EOF say at
            // once when they die, and a hung one is what `task_timeout` is for.
            let default = target.prefix.is_some().then_some(DEFAULT_HEARTBEAT);
            let heartbeat = heartbeat.map_or(default, |d| (!d.is_zero()).then_some(d));
            slots.push(Slot {
                host: Arc::from(target.host.as_str()),
                spawn,
                kill: target.kill,
                master: target.master,
                heartbeat,
            });
        }
        planned.push(Group { max, slots });
    }
    Ok(planned)
}

fn spawn_config(command: &WorkerCommand) -> Result<SpawnConfig, BuildError> {
    let (program, args, extra_env) = (command.program.clone(), command.args.clone(), &command.env);
    let custom_program = program.is_some();
    let (program, argv0) = match program {
        Some(path) => {
            let c = cstring(path.as_os_str().as_bytes())?;
            (c.clone(), c)
        }
        None => {
            let argv0 = std::env::args_os()
                .next()
                .unwrap_or_else(|| OsString::from("concur-process-worker"));
            (
                c"/proc/self/exe".to_owned(),
                cstring(argv0.as_os_str().as_bytes())?,
            )
        }
    };
    let mut argv = vec![argv0];
    let mut park_stdout = false;
    match args {
        Some(args) => {
            for arg in args {
                argv.push(cstring(arg.as_bytes())?);
            }
        }
        None if !custom_program => {
            if let Some(name) = registry::test_worker_name() {
                park_stdout = true;
                for arg in [name, "--exact", "--nocapture", "--test-threads=1", "-q"] {
                    argv.push(cstring(arg.as_bytes())?);
                }
            }
        }
        None => {}
    }
    let mut env = Vec::new();
    for (key, value) in std::env::vars_os() {
        if key == ENV_WORKER || extra_env.iter().any(|(k, _)| *k == key) {
            continue;
        }
        env.push(env_entry(&key, &value)?);
    }
    for (key, value) in extra_env {
        env.push(env_entry(key, value)?);
    }
    let marker = if park_stdout {
        format!("{}:stdout6", std::process::id())
    } else {
        std::process::id().to_string()
    };
    env.push(env_entry(
        &OsString::from(ENV_WORKER),
        &OsString::from(marker),
    )?);
    Ok(SpawnConfig {
        program,
        argv,
        env,
        stdout: command.stdout()?,
        stderr: command.stderr()?,
        park_stdout,
        stdio: false,
    })
}

/// Launcher mode: `PREFIX... env CONCUR_PROCESS_WORKER=stdio PROGRAM ARGS...` over stdio.
fn launcher_config(
    prefix: &[OsString],
    target: &Target,
    command: &WorkerCommand,
) -> Result<SpawnConfig, BuildError> {
    let program = target.program.clone().or_else(|| command.program.clone());
    let (args, extra_env) = (command.args.clone(), &command.env);
    let program = match program {
        Some(path) => path.into_os_string(),
        None => std::env::current_exe()
            .map_err(BuildError::Io)?
            .into_os_string(),
    };
    let args = match args {
        Some(args) => args,
        None => registry::test_worker_name()
            .map(|name| {
                [name, "--exact", "--nocapture", "--test-threads=1", "-q"]
                    .into_iter()
                    .map(OsString::from)
                    .collect()
            })
            .unwrap_or_default(),
    };
    let mut argv = Vec::new();
    for part in prefix {
        argv.push(cstring(part.as_bytes())?);
    }
    argv.push(c"env".to_owned());
    argv.push(cstring(format!("{ENV_WORKER}=stdio").as_bytes())?);
    for (key, value) in extra_env {
        argv.push(env_entry(key, value)?);
    }
    argv.push(cstring(program.as_bytes())?);
    for arg in &args {
        argv.push(cstring(arg.as_bytes())?);
    }
    let mut env = Vec::new();
    for (key, value) in std::env::vars_os() {
        if key != ENV_WORKER && !target.env.iter().any(|(k, _)| *k == key) {
            env.push(env_entry(&key, &value)?);
        }
    }
    for (key, value) in &target.env {
        env.push(env_entry(key, value)?);
    }
    Ok(SpawnConfig {
        program: argv[0].clone(),
        argv,
        env,
        stdout: None,
        stderr: command.stderr()?,
        park_stdout: false,
        stdio: true,
    })
}

fn env_entry(key: &OsString, value: &OsString) -> Result<CString, BuildError> {
    let (key, value) = (key.as_bytes(), value.as_bytes());
    if key.contains(&b'=') {
        return Err(BuildError::Nul);
    }
    // One allocation of the final size: every pool build copies the whole environment.
    let mut entry = Vec::with_capacity(key.len() + value.len() + 2);
    entry.extend_from_slice(key);
    entry.push(b'=');
    entry.extend_from_slice(value);
    entry.push(0);
    CString::from_vec_with_nul(entry).map_err(|_| BuildError::Nul)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_environment_entry_is_key_equals_value() {
        let entry = env_entry(&"KEY".into(), &"a=b c".into()).unwrap();
        assert_eq!(entry.as_bytes(), b"KEY=a=b c");
        let empty = env_entry(&"EMPTY".into(), &"".into()).unwrap();
        assert_eq!(empty.as_bytes(), b"EMPTY=");
    }

    #[test]
    fn an_entry_no_exec_could_pass_is_refused() {
        assert!(matches!(
            env_entry(&"A=B".into(), &"x".into()),
            Err(BuildError::Nul)
        ));
        assert!(matches!(
            env_entry(&"A".into(), &"x\0y".into()),
            Err(BuildError::Nul)
        ));
        assert!(matches!(
            env_entry(&"A\0".into(), &"x".into()),
            Err(BuildError::Nul)
        ));
    }
}
