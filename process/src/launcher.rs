//! [`Launcher`]: how a worker is started, on this machine or on another host through an engine
//! the user already runs (OpenSSH, Slurm's `srun`, `mpirun`, or any command prefix). A launcher
//! expands into [`Target`]s, one per host, each with the argv prefix that starts a worker there
//! and the way the pool kills it (`crate::io::link`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::ship::Shipment;

/// How the workers of a pool (or of a group of them, see
/// [`add_workers`](crate::ProcessPoolBuilder::add_workers)) are started.
///
/// Every launcher but [`local`](Launcher::local) starts the worker program as
/// `LAUNCHER... env CONCUR_PROCESS_WORKER=stdio PROGRAM ARGS...` and speaks the pool's frames
/// over the launcher's stdin and stdout. The pool kills a launched worker by sending its launcher
/// `SIGTERM` and, after [`terminate_grace`](crate::ProcessPoolBuilder::terminate_grace),
/// `SIGKILL`: `srun` given `SIGKILL` leaves its job running, given `SIGTERM` it cancels the step.
///
/// # Examples
///
/// ```no_run
/// use concur_process::{Launcher, ProcessPool};
///
/// let pool = ProcessPool::builder()
///     .max_workers(2) // two workers on this machine
///     .add_workers(8, Launcher::ssh(["node1", "node2"]).port(2222).program("/opt/app/bin/app"))
///     .build()
///     .unwrap();
/// # drop(pool);
/// ```
#[derive(Clone, Debug)]
pub struct Launcher {
    kind: Kind,
    program: Option<PathBuf>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    /// Ship this executable to the ssh hosts, under this directory if given.
    ship: Option<Option<String>>,
}

#[derive(Clone, Debug)]
enum Kind {
    Local,
    Prefix(Vec<OsString>),
    Ssh(Ssh),
    Srun { nodes: Option<Vec<String>> },
    Mpirun,
}

#[derive(Clone, Debug)]
struct Ssh {
    hosts: Vec<String>,
    port: Option<u16>,
    identity: Option<PathBuf>,
    options: Vec<String>,
    multiplex: bool,
}

/// How the pool kills a worker it gave up on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KillPolicy {
    /// The worker is the pool's child: `SIGKILL`.
    Direct,
    /// A launcher stands between: `SIGTERM` first (it passes it on or cancels its step), then
    /// `SIGKILL` after the grace.
    ThroughLauncher,
}

/// Bringing up an ssh connection master once per host before the workers use it.
#[derive(Clone, Debug)]
pub(crate) struct Master {
    /// `ssh ... -o ControlMaster=yes -o ControlPersist=60 -N -f host`: exits once the master is up.
    pub(crate) start: Vec<OsString>,
    /// `ssh ... -O exit host`, run when the pool ends.
    pub(crate) exit: Vec<OsString>,
}

/// The ssh commands of one multiplexed host.
struct Multiplexed {
    master: Master,
    /// `ssh ... -o ControlMaster=auto -o ControlPersist=60 host`: the shipping session, which
    /// becomes the host's master and stays up in the background for the workers.
    ship: Vec<OsString>,
    /// `ssh ... -O check host`: what brings the master up once shipping did.
    check: Vec<OsString>,
}

/// One host a launcher reaches.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// What errors and `Debug` call the host.
    pub(crate) host: String,
    /// The argv before `env CONCUR_PROCESS_WORKER=stdio PROGRAM`; `None` for a local worker with
    /// private pipes.
    pub(crate) prefix: Option<Vec<OsString>>,
    pub(crate) kill: KillPolicy,
    pub(crate) master: Option<Master>,
    /// The launcher process's own environment additions.
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) program: Option<PathBuf>,
    /// Ship this executable there before the first worker (`crate::ship`).
    pub(crate) ship: Option<Shipment>,
}

impl Launcher {
    fn of(kind: Kind) -> Self {
        Launcher {
            kind,
            program: None,
            args: Vec::new(),
            env: Vec::new(),
            ship: None,
        }
    }

    /// Workers on this machine, spawned by the pool with private pipes (the default).
    pub fn local() -> Self {
        Self::of(Kind::Local)
    }

    /// Workers started behind a plain command prefix, such as `["ssh", "host"]` (what
    /// `launcher(["ssh", "host"])` means). An empty prefix runs the worker locally in stdio
    /// mode.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use concur_process::{Launcher, ProcessPool};
    ///
    /// let pool = ProcessPool::builder()
    ///     .launcher(Launcher::prefix(["ssh", "compute-7"]))
    ///     .build()
    ///     .unwrap();
    /// # drop(pool);
    /// ```
    pub fn prefix<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Self::of(Kind::Prefix(argv.into_iter().map(Into::into).collect()))
    }

    /// Workers on these hosts over OpenSSH (`ssh [options] host`), spread evenly across them.
    ///
    /// Batch mode is on (no password prompt can hang a worker's start). Connection
    /// multiplexing is on by default: before the first worker on a host the pool brings up one
    /// `ControlMaster` for it (`ssh -M -N -f`, with `ControlPersist=60` as a safety net), every
    /// worker's session then goes through that one connection, and the pool closes it with
    /// `ssh -O exit` when it ends. Should the master fail to start, workers connect directly.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use concur_process::{Launcher, ProcessPool};
    ///
    /// let ssh = Launcher::ssh(["node1", "node2"])
    ///     .port(2222)
    ///     .identity("/home/me/.ssh/cluster")
    ///     .option("StrictHostKeyChecking=accept-new")
    ///     .program("/opt/app/bin/app");
    /// let pool = ProcessPool::builder().max_workers(8).launcher(ssh).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn ssh<I, S>(hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::of(Kind::Ssh(Ssh {
            hosts: hosts.into_iter().map(Into::into).collect(),
            port: None,
            identity: None,
            options: Vec::new(),
            multiplex: true,
        }))
    }

    /// Workers as Slurm job steps: `srun -u -N1 -n1 [-w node] [args] --`, one step per worker.
    ///
    /// Inside an allocation (`sbatch`, `salloc`) the nodes are read from `SLURM_JOB_NODELIST`
    /// at `build` and the workers spread across them; outside one, each `srun` asks for an
    /// allocation of its own. `-u` is always given: `srun` otherwise buffers a step's stdout by
    /// lines and the binary frames never arrive.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use concur_process::{Launcher, ProcessPool};
    ///
    /// let pool = ProcessPool::builder()
    ///     .max_workers(4)
    ///     .launcher(Launcher::srun().args(["--cpus-per-task=1"]))
    ///     .build()
    ///     .unwrap();
    /// # drop(pool);
    /// ```
    pub fn srun() -> Self {
        Self::of(Kind::Srun { nodes: None })
    }

    /// Workers as rank 0 of their own `mpirun -np 1` (which relays stdin to rank 0 and forwards
    /// its stdout unbuffered). `--mca odls_base_sigkill_timeout 0` is given, so a dead rank is
    /// seen in milliseconds rather than 2 s; `--allow-run-as-root` when this process runs as
    /// root.
    pub fn mpirun() -> Self {
        Self::of(Kind::Mpirun)
    }

    /// The ssh port (`-p`).
    pub fn port(mut self, port: u16) -> Self {
        if let Kind::Ssh(ssh) = &mut self.kind {
            ssh.port = Some(port);
        }
        self
    }

    /// The ssh identity file (`-i`).
    pub fn identity(mut self, path: impl Into<PathBuf>) -> Self {
        if let Kind::Ssh(ssh) = &mut self.kind {
            ssh.identity = Some(path.into());
        }
        self
    }

    /// An ssh option (`-o KEY=VALUE`).
    pub fn option(mut self, option: impl Into<String>) -> Self {
        if let Kind::Ssh(ssh) = &mut self.kind {
            ssh.options.push(option.into());
        }
        self
    }

    /// Whether ssh sessions share one connection per host (default: on).
    pub fn multiplexing(mut self, on: bool) -> Self {
        if let Kind::Ssh(ssh) = &mut self.kind {
            ssh.multiplex = on;
        }
        self
    }

    /// The Slurm nodes to spread the steps across (`-w`), instead of `SLURM_JOB_NODELIST`.
    pub fn nodes<I, S>(mut self, nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        if let Kind::Srun { nodes: slot } = &mut self.kind {
            *slot = Some(nodes.into_iter().map(Into::into).collect());
        }
        self
    }

    /// More arguments for the launcher itself (before the host or the `--` that ends its
    /// options), such as `["-F", "ssh_config"]` or `["--cpus-per-task=1"]`.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// An environment variable for the launcher process (on this machine), such as
    /// `SLURM_CONF`; [`ProcessPoolBuilder::env`](crate::ProcessPoolBuilder::env) sets the
    /// workers' own.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The worker program's path where the launcher runs it (default: the builder's
    /// [`worker_program`](crate::ProcessPoolBuilder::worker_program), else this executable's
    /// path, which must then exist at the same path on the remote host). It cannot be combined
    /// with [`ship_executable`](Launcher::ship_executable) (`build` refuses that with
    /// [`BuildError::ShipWithProgram`](crate::BuildError::ShipWithProgram)).
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = Some(path.into());
        self
    }

    /// Copies this executable (`/proc/self/exe`) to every ssh host before its workers start,
    /// and runs the workers from the copy: the hosts need no install of the program, only a
    /// POSIX `sh`, `mkdir`, `cat`, `chmod` and `mv`.
    ///
    /// [`build`](crate::ProcessPoolBuilder::build) runs one `ssh HOST sh -c '...'` per host,
    /// all at once and bounded together by the
    /// [start-up timeout](crate::ProcessPoolBuilder::startup_timeout). The copy is
    /// `${TMPDIR:-/tmp}/concur-$USER/<build fingerprint>/<executable name>` on the host
    /// (or under [`ship_directory`](Launcher::ship_directory)); when it is there already,
    /// nothing is sent, so later pools of the same build reuse it. A new copy is written
    /// next to its place and renamed into it, so no pool ever runs a half-written file.
    /// With [multiplexing](Launcher::multiplexing) on, the shipping session becomes the host's
    /// connection master, which the workers then share; off, it is a connection of its own.
    /// Only ssh launchers ship; the others ignore this. Shipping replaces the builder's
    /// [`worker_program`](crate::ProcessPoolBuilder::worker_program) on these hosts.
    ///
    /// # Errors
    /// `build` fails with [`BuildError::Ship`](crate::BuildError::Ship), naming the host and
    /// quoting ssh's stderr, when a host cannot be reached, the copy cannot be written (no
    /// space, a read-only or missing directory) or no answer comes within the start-up
    /// timeout; and with [`BuildError::ShipWithProgram`](crate::BuildError::ShipWithProgram)
    /// when the launcher also names a [`program`](Launcher::program).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use concur_process::{Launcher, ProcessPool};
    ///
    /// let pool = ProcessPool::builder()
    ///     .max_workers(8)
    ///     .launcher(Launcher::ssh(["node1", "node2"]).ship_executable())
    ///     .build()
    ///     .unwrap();
    /// # drop(pool);
    /// ```
    pub fn ship_executable(mut self) -> Self {
        self.ship.get_or_insert(None);
        self
    }

    /// Ships this executable ([`ship_executable`](Launcher::ship_executable)) under `dir` on
    /// the hosts instead of `${TMPDIR:-/tmp}/concur-$USER` (the remote shell expands `$`
    /// forms in it; a single quote is refused).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use concur_process::{Launcher, ProcessPool};
    ///
    /// let ssh = Launcher::ssh(["node1"]).ship_directory("/scratch/me/bin");
    /// let pool = ProcessPool::builder().launcher(ssh).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn ship_directory(mut self, dir: impl Into<String>) -> Self {
        self.ship = Some(Some(dir.into()));
        self
    }

    /// The hosts this launcher reaches, each with its argv prefix.
    pub(crate) fn targets(&self) -> Vec<Target> {
        let target = |host: String, prefix: Option<Vec<OsString>>, kill| Target {
            host,
            prefix,
            kill,
            master: None,
            env: self.env.clone(),
            program: self.program.clone(),
            ship: None,
        };
        let extra = || self.args.iter().cloned();
        match &self.kind {
            Kind::Local => vec![target(local_host(), None, KillPolicy::Direct)],
            Kind::Prefix(argv) if argv.is_empty() => {
                vec![target(local_host(), Some(Vec::new()), KillPolicy::Direct)]
            }
            Kind::Prefix(argv) => {
                let label = argv
                    .iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" ");
                let full = argv.iter().cloned().chain(extra()).collect();
                vec![target(label, Some(full), KillPolicy::ThroughLauncher)]
            }
            Kind::Ssh(ssh) => {
                // ORDERING: only uniqueness matters.
                let pool = EXPANDED.fetch_add(1, Ordering::Relaxed);
                ssh.hosts
                    .iter()
                    .map(|host| {
                        let (prefix, multiplexed) = ssh.commands(host, &self.args, pool);
                        let (master, ship) = match (multiplexed, self.ship.clone()) {
                            (None, ship) => (
                                None,
                                ship.map(|dir| Shipment {
                                    ssh: prefix.clone(),
                                    dir,
                                }),
                            ),
                            (Some(m), None) => (Some(m.master), None),
                            // The shipping session brings the master up, so the copy and the
                            // workers share one connection.
                            (Some(m), Some(dir)) => {
                                let master = Master {
                                    start: m.check,
                                    ..m.master
                                };
                                (Some(master), Some(Shipment { ssh: m.ship, dir }))
                            }
                        };
                        Target {
                            master,
                            ship,
                            ..target(host.clone(), Some(prefix), KillPolicy::ThroughLauncher)
                        }
                    })
                    .collect()
            }
            Kind::Srun { nodes } => {
                let nodes = nodes.clone().unwrap_or_else(|| {
                    std::env::var("SLURM_JOB_NODELIST")
                        .map(|list| expand_hostlist(&list))
                        .unwrap_or_default()
                });
                let srun = |node: Option<&str>| {
                    let mut argv: Vec<OsString> =
                        ["srun", "-u", "-N1", "-n1"].map(Into::into).into();
                    if let Some(node) = node {
                        argv.extend(["-w".into(), node.into()]);
                    }
                    argv.extend(extra());
                    argv.push("--".into());
                    argv
                };
                if nodes.is_empty() {
                    return vec![target(
                        "srun".into(),
                        Some(srun(None)),
                        KillPolicy::ThroughLauncher,
                    )];
                }
                nodes
                    .iter()
                    .map(|node| {
                        target(
                            node.clone(),
                            Some(srun(Some(node))),
                            KillPolicy::ThroughLauncher,
                        )
                    })
                    .collect()
            }
            Kind::Mpirun => {
                let mut argv: Vec<OsString> = [
                    "mpirun",
                    "--mca",
                    "odls_base_sigkill_timeout",
                    "0",
                    "-np",
                    "1",
                ]
                .map(Into::into)
                .into();
                // SAFETY: geteuid cannot fail and touches no memory.
                if unsafe { libc::geteuid() } == 0 {
                    argv.push("--allow-run-as-root".into());
                }
                argv.extend(extra());
                vec![target(
                    "mpirun".into(),
                    Some(argv),
                    KillPolicy::ThroughLauncher,
                )]
            }
        }
    }
}

impl Ssh {
    /// The worker's argv prefix for `host` and, with multiplexing, the master's commands.
    fn commands(
        &self,
        host: &str,
        extra: &[OsString],
        pool: u64,
    ) -> (Vec<OsString>, Option<Multiplexed>) {
        let mut base: Vec<OsString> = vec!["ssh".into(), "-o".into(), "BatchMode=yes".into()];
        if let Some(port) = self.port {
            base.extend(["-p".into(), port.to_string().into()]);
        }
        if let Some(identity) = &self.identity {
            base.extend(["-i".into(), identity.clone().into_os_string()]);
        }
        for option in &self.options {
            base.extend(["-o".into(), option.into()]);
        }
        base.extend(extra.iter().cloned());
        if !self.multiplex {
            // Off means off, whatever an ssh config file says.
            for s in ["ControlMaster=no", "ControlPath=none"] {
                base.extend(["-o".into(), s.into()]);
            }
            base.push(host.into());
            return (base, None);
        }
        let path = control_path(pool);
        let with = |settings: &[&str], tail: &[&str]| -> Vec<OsString> {
            let mut argv = base.clone();
            argv.extend(["-o".into(), format!("ControlPath={path}").into()]);
            for s in settings {
                argv.extend(["-o".into(), (*s).into()]);
            }
            argv.extend(tail.iter().map(OsString::from));
            argv.push(host.into());
            argv
        };
        let worker = with(&["ControlMaster=no"], &[]);
        let master = Master {
            start: with(&["ControlMaster=yes", "ControlPersist=60"], &["-N", "-f"]),
            exit: with(&[], &["-O", "exit"]),
        };
        let multiplexed = Multiplexed {
            master,
            ship: with(&["ControlMaster=auto", "ControlPersist=60"], &[]),
            check: with(&[], &["-O", "check"]),
        };
        (worker, Some(multiplexed))
    }
}

/// A pool's ssh control sockets: `%C` (a hash of host, port and user) keeps hosts apart, the
/// process id and `pool` keep pools apart, so one pool's `ssh -O exit` never closes the
/// sessions of another's workers.
fn control_path(pool: u64) -> String {
    let dir = std::env::temp_dir();
    format!(
        "{}/concur-ssh-{}-{pool}-%C",
        dir.to_string_lossy().trim_end_matches('/'),
        std::process::id()
    )
}

/// Numbers the launchers expanded in this process (`control_path`).
static EXPANDED: AtomicU64 = AtomicU64::new(0);

/// This machine's host name, what a local worker's host is called.
pub(crate) fn local_host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it (or the
    // result is cut, which the search for NUL below tolerates).
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if ok && end > 0 {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "localhost".into()
    }
}

/// Expands a Slurm host list such as `node[01-03,7],gpu1` into its host names.
pub(crate) fn expand_hostlist(list: &str) -> Vec<String> {
    let mut hosts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in list.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                expand_one(&list[start..i], &mut hosts);
                start = i + 1;
            }
            _ => {}
        }
    }
    expand_one(&list[start..], &mut hosts);
    hosts
}

fn expand_one(item: &str, hosts: &mut Vec<String>) {
    let item = item.trim();
    if item.is_empty() {
        return;
    }
    let (Some(open), Some(close)) = (item.find('['), item.find(']')) else {
        hosts.push(item.to_owned());
        return;
    };
    let (head, ranges, tail) = (&item[..open], &item[open + 1..close], &item[close + 1..]);
    for range in ranges.split(',') {
        let (from, to) = range.split_once('-').unwrap_or((range, range));
        let (Ok(a), Ok(b)) = (from.parse::<u64>(), to.parse::<u64>()) else {
            hosts.push(format!("{head}{range}{tail}"));
            continue;
        };
        for n in a..=b {
            hosts.push(format!("{head}{n:0width$}{tail}", width = from.len()));
        }
    }
}

impl<S: Into<OsString>> From<Vec<S>> for Launcher {
    /// A plain command prefix ([`Launcher::prefix`]).
    fn from(argv: Vec<S>) -> Self {
        Launcher::prefix(argv)
    }
}

impl<S: Into<OsString>, const N: usize> From<[S; N]> for Launcher {
    /// A plain command prefix ([`Launcher::prefix`]).
    fn from(argv: [S; N]) -> Self {
        Launcher::prefix(argv)
    }
}

impl<S: AsRef<std::ffi::OsStr>> From<&[S]> for Launcher {
    /// A plain command prefix ([`Launcher::prefix`]).
    fn from(argv: &[S]) -> Self {
        Launcher::prefix(argv.iter().map(|a| a.as_ref().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_host_lists_expand_with_their_padding() {
        assert_eq!(
            expand_hostlist("node[01-03,7],gpu1"),
            ["node01", "node02", "node03", "node7", "gpu1"]
        );
        assert_eq!(expand_hostlist("a"), ["a"]);
        assert!(expand_hostlist("").is_empty());
    }

    #[test]
    fn ssh_workers_go_through_one_master_per_host() {
        let targets = Launcher::ssh(["h1", "h2"]).port(22).targets();
        assert_eq!(targets.len(), 2);
        let worker: Vec<String> = targets[1]
            .prefix
            .as_ref()
            .unwrap()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(worker.last().map(String::as_str), Some("h2"));
        assert!(
            worker.contains(&"ControlMaster=no".to_owned()),
            "{worker:?}"
        );
        let master = targets[1].master.as_ref().unwrap();
        assert!(master.start.iter().any(|a| a == "ControlMaster=yes"));
        assert!(master.exit.iter().any(|a| a == "exit"));
        assert_eq!(targets[0].kill, KillPolicy::ThroughLauncher);
    }

    #[test]
    fn srun_is_always_unbuffered_and_placed_on_the_given_nodes() {
        let targets = Launcher::srun().nodes(["n1", "n2"]).targets();
        let argv = targets[0].prefix.as_ref().unwrap();
        assert!(argv.iter().any(|a| a == "-u"));
        assert!(argv.windows(2).any(|w| w[0] == "-w" && w[1] == "n1"));
        assert_eq!(targets[1].host, "n2");
    }
}
