//! A network fault between the pool and a remote worker: the worker runs behind an sshd in a
//! network namespace this test makes (a veth pair), and the link is set down mid-task. Nothing
//! closes (no RST, no EOF): only heartbeats tell, so the call fails with `WorkerDied`
//! (`HeartbeatLost`) within twice the interval, and the cut-off worker ends itself.
//!
//! Needs root and a kernel that allows network namespaces; skips with the reason otherwise.

mod common;
mod engines;

use std::process::Command;
use std::time::{Duration, Instant};

use concur_process::{DeathCause, ProcessPool};
use engines::{Engine, RESULT_BOUND};

concur_process::test_worker!();

const INTERVAL: Duration = Duration::from_millis(200);

/// A namespace with one end of a veth pair, an sshd listening on it, and the other end here;
/// all removed on drop.
struct Island {
    ns: String,
    host_end: String,
    address: String,
    sshd_pid: std::path::PathBuf,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Island {
    fn new() -> Result<Island, String> {
        let id = std::process::id();
        let octet = id % 250 + 1;
        let island = Island {
            ns: format!("concur-{id}"),
            host_end: format!("cv{}a", id % 100_000),
            address: format!("10.233.{octet}.2"),
            sshd_pid: std::env::temp_dir().join(format!("concur-netns-sshd-{id}.pid")),
        };
        let peer = format!("cv{}b", id % 100_000);
        ip(&["netns", "add", &island.ns])?;
        ip(&[
            "link",
            "add",
            &island.host_end,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
        ])?;
        ip(&["link", "set", &peer, "netns", &island.ns])?;
        ip(&[
            "addr",
            "add",
            &format!("10.233.{octet}.1/30"),
            "dev",
            &island.host_end,
        ])?;
        ip(&["link", "set", &island.host_end, "up"])?;
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &island.ns, "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        inside(&[
            "addr",
            "add",
            &format!("{}/30", island.address),
            "dev",
            &peer,
        ])?;
        inside(&["link", "set", &peer, "up"])?;
        inside(&["link", "set", "lo", "up"])?;
        let config = engines::engines_dir().join("ssh/sshd_config");
        let status = Command::new("ip")
            .args(["netns", "exec", &island.ns, "/usr/sbin/sshd", "-f"])
            .arg(&config)
            .arg("-o")
            .arg(format!("PidFile={}", island.sshd_pid.display()))
            .args(["-o", &format!("ListenAddress={}", island.address)])
            .status()
            .map_err(|e| format!("sshd: {e}"))?;
        if !status.success() {
            return Err(format!("sshd in the namespace: {status}"));
        }
        Ok(island)
    }

    fn set_link(&self, up: bool) {
        ip(&[
            "link",
            "set",
            &self.host_end,
            if up { "up" } else { "down" },
        ])
        .unwrap();
    }
}

impl Drop for Island {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.sshd_pid) {
            if let Ok(pid) = pid.trim().parse::<u32>() {
                common::sigkill(pid);
            }
        }
        let _ = std::fs::remove_file(&self.sshd_pid);
        let _ = ip(&["link", "del", &self.host_end]);
        let _ = ip(&["netns", "del", &self.ns]);
    }
}

#[test]
fn a_link_set_down_mid_task_fails_the_call_by_heartbeat_within_the_bound() {
    if !engines::require(Engine::Ssh) {
        return;
    }
    let island = match Island::new() {
        Ok(island) => island,
        Err(reason) => {
            // The kernel or the container forbids namespaces: nothing to test here.
            eprintln!("SKIP: no network namespace: {reason}");
            return;
        }
    };
    // The same sshd (host key, port) on another address: check its key as the known one's.
    let known = std::fs::read_to_string(engines::engines_dir().join("ssh/known_hosts")).unwrap();
    let alias = known.split_whitespace().next().unwrap().to_owned();
    let ssh = engines::ssh_launcher()
        .option(format!("HostName={}", island.address))
        .option(format!("HostKeyAlias={alias}"))
        .multiplexing(false);
    let pool = ProcessPool::builder()
        .max_workers(1)
        .launcher(ssh)
        .heartbeat(INTERVAL)
        .startup_timeout(RESULT_BOUND)
        .build()
        .unwrap();
    let (hung, announced) = engines::hung_call(&pool, "netns");
    let worker: u32 = announced[0].parse().unwrap();
    island.set_link(false);
    let cut = Instant::now();
    let died = engines::worker_died(&hung);
    let latency = cut.elapsed();
    println!("link down mid-task: WorkerDied after {latency:?} at a {INTERVAL:?} interval: {died}");
    assert!(
        matches!(died.cause, DeathCause::HeartbeatLost { .. }),
        "{died}"
    );
    // Twice the interval, plus the launcher's exit after SIGTERM (at most the grace).
    assert!(
        latency < INTERVAL * 2 + Duration::from_secs(1),
        "{latency:?}"
    );
    // Cut off from its pool, the remote worker ends itself.
    let gone = engines::eventually(RESULT_BOUND, || !common::exists(worker));
    if !gone {
        common::sigkill(worker);
    }
    assert!(gone, "the cut-off worker {worker} lives on");
    island.set_link(true);
    let after = pool.submit(engines::tasks::square, 4).unwrap();
    assert_eq!(*after.result_timeout(RESULT_BOUND).unwrap(), 16);
}
