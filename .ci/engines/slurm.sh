#!/usr/bin/env bash
# slurm.sh start|stop|status: a one-node Slurm cluster on this machine for the cluster tests
# (the recipe in shared/research/cluster-engines.md: munge, slurmctld -D and slurmd -D,
# proctrack/linuxproc, task/none).
#
# start: a munge key if there is none, munged (as user munge), then slurmctld and slurmd in the
# background with pid files and a fresh state in a scratch dir; waits until `sinfo` shows the
# node idle. Writes $CONCUR_ENGINES_DIR/env/slurm.conf; clients find it through SLURM_CONF.
# Idempotent (a running cluster is kept) and bounded (fails after 20 s).
# stop: cancels every job left, then stops the daemons it started by their pid files.
source "$(dirname "$0")/common.sh"
dir=$engines_dir/slurm
conf=$engines_dir/env/slurm.conf
export SLURM_CONF=$conf
node=$(hostname -s)
munge_pidfile=/run/munge/munged.pid

node_state() { timeout 5 sinfo -h -N -n "$node" -o %t 2>/dev/null; }
node_idle() { [[ $(node_state) == idle ]]; }
# Up: the daemons run and the node takes jobs (idle, or busy with some).
node_up() { [[ $(node_state) =~ ^(idle|mix|alloc|comp)$ ]]; }
munge_ok() { timeout 5 munge -n </dev/null 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1; }

start_munge() {
    if munge_ok; then
        say "munged already running"
        return 0
    fi
    command -v munged >/dev/null || die "munged missing (run .ci/engines/install.sh)"
    if [[ ! -s /etc/munge/munge.key ]]; then
        mkdir -p /etc/munge
        head -c 1024 /dev/urandom >/etc/munge/munge.key
    fi
    chown munge:munge /etc/munge /etc/munge/munge.key
    chmod 700 /etc/munge
    chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    timeout 10 runuser -u munge -- munged --force
    wait_until 10 munge_ok || die "munged did not answer in 10 s"
    cp "$munge_pidfile" "$dir/munged.pid"
    say "started munged (pid $(cat "$dir/munged.pid"))"
}

# daemon NAME: starts NAME -D in the background, its pid in $dir/NAME.pid and log in NAME.log.
daemon() {
    local name=$1
    setsid "$name" -D -f "$conf" >"$dir/$name.log" 2>&1 </dev/null &
    echo $! >"$dir/$name.pid"
    say "started $name (pid $!)"
}

start() {
    if alive "$dir/slurmctld.pid" && alive "$dir/slurmd.pid" && node_up; then
        say "slurm already running (slurmctld $(cat "$dir/slurmctld.pid"), slurmd $(cat "$dir/slurmd.pid"))"
        return 0
    fi
    stop >/dev/null
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v srun >/dev/null ||
        die "slurm missing (run .ci/engines/install.sh)"
    rm -rf "$dir/state" "$dir/spool"
    mkdir -p "$dir/state" "$dir/spool"
    start_munge
    # Ports of their own, so clusters of two checkouts on one machine do not collide.
    local ctld_port slurmd_port
    ctld_port=$(free_port) && slurmd_port=$(free_port) || die "no free port"
    cat >"$conf" <<CONF
# Written by .ci/engines/slurm.sh start.
ClusterName=concur
SlurmctldHost=$node
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
# CPUs only (no memory accounting), shared up to 8 jobs a CPU: a test pool's workers are
# one job each and must all run at once on 2 CPUs.
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmUser=root
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ReturnToService=2
KillWait=2
MpiDefault=none
NodeName=$node CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8
CONF
    daemon slurmctld
    daemon slurmd
    if ! wait_until 20 node_idle; then
        tail -5 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
        die "node $node not idle in sinfo after 20 s"
    fi
    say "slurm up: node $node idle; SLURM_CONF=$conf"
}

stop() {
    if alive "$dir/slurmctld.pid"; then
        local jobs
        jobs=$(timeout 5 squeue -h -o %i 2>/dev/null || true)
        if [[ -n $jobs ]]; then
            # shellcheck disable=SC2086
            timeout 5 scancel $jobs || true
            say "cancelled jobs left over: $(echo $jobs)"
        fi
    fi
    stop_pidfile "$dir/slurmd.pid" slurmd
    stop_pidfile "$dir/slurmctld.pid" slurmctld
    stop_pidfile "$dir/munged.pid" munged
}

status() { alive "$dir/slurmctld.pid" && alive "$dir/slurmd.pid" && node_up; }

mkdir -p "$dir"
case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) die "usage: $0 start|stop|status" ;;
esac
