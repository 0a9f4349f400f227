#!/usr/bin/env bash
# sshd.sh start|stop|status: an OpenSSH server on 127.0.0.1 for the cluster tests.
#
# start: a free port, host and user keys generated now in a scratch dir, key-only auth, root
# login by key, no PAM and no DNS look-ups; writes $CONCUR_ENGINES_DIR/env/ssh_config so that
# `ssh -F <that file> concur-local true` works (host alias, port, identity, known_hosts,
# connection multiplexing). Idempotent: a running server is kept. Bounded: fails after 10 s.
# stop: closes the multiplexing master, stops the server by its pid file and the sessions it
# forked (by parent pid).
source "$(dirname "$0")/common.sh"
dir=$engines_dir/ssh
config=$engines_dir/env/ssh_config
pidfile=$dir/sshd.pid

ssh_ok() { timeout 10 ssh -F "$config" concur-local true; }

start() {
    if alive "$pidfile" && [[ -f $config ]] && ssh_ok; then
        say "sshd already running (pid $(cat "$pidfile")); config $config"
        return 0
    fi
    stop >/dev/null
    [[ -x /usr/sbin/sshd ]] || die "/usr/sbin/sshd missing (run .ci/engines/install.sh)"
    command -v ssh >/dev/null || die "ssh client missing (run .ci/engines/install.sh)"
    rm -rf "$dir"
    mkdir -p "$dir" /run/sshd
    chmod 700 "$dir"
    ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$dir/id_ed25519" -C concur-tests
    cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
    local port user
    port=$(free_port) || die "no free port"
    user=$(id -un)
    cat >"$dir/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $port
HostKey $dir/host_key
PidFile $pidfile
AuthorizedKeysFile $dir/authorized_keys
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $user
UsePAM no
UseDNS no
StrictModes no
PrintMotd no
PrintLastLog no
MaxSessions 64
MaxStartups 64:30:128
AcceptEnv CONCUR_*
Subsystem sftp internal-sftp
CONF
    echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/host_key.pub")" >"$dir/known_hosts"
    cat >"$config" <<CONF
# Written by .ci/engines/sshd.sh start; read by process/tests/engines.
Host concur-local
    HostName 127.0.0.1
    Port $port
    User $user
    IdentityFile $dir/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile $dir/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    BatchMode yes
    PasswordAuthentication no
    ConnectTimeout 5
    ServerAliveInterval 5
    ServerAliveCountMax 3
    ControlMaster auto
    ControlPath $dir/cm-%C
    ControlPersist 60
    # AES-GCM uses the CPU's AES instructions: map over ssh at chunksize 1000 ran 1.9x the
    # local pool's time with it against 2.4-2.8x with OpenSSH's default chacha20 (2 cores).
    Ciphers aes128-gcm@openssh.com,chacha20-poly1305@openssh.com
    LogLevel ERROR
CONF
    /usr/sbin/sshd -t -f "$dir/sshd_config" || die "sshd rejected its config"
    /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
    wait_until 10 ssh_ok || { tail "$dir/sshd.log" >&2; die "sshd did not accept a login in 10 s"; }
    say "started sshd (pid $(cat "$pidfile")) on 127.0.0.1:$port; config $config"
}

stop() {
    if [[ -f $config ]]; then
        timeout 5 ssh -F "$config" -O exit concur-local 2>/dev/null || true
    fi
    local listener=""
    alive "$pidfile" && listener=$(cat "$pidfile")
    stop_pidfile "$pidfile" sshd
    # Sessions forked by the listener outlive it; end them by their parent's pid.
    if [[ -n $listener ]]; then
        local sessions
        sessions=$(ps -o pid= --ppid "$listener" 2>/dev/null || true)
        for pid in $sessions; do kill -TERM "$pid" 2>/dev/null || true; done
    fi
    rm -f "$config"
}

status() { alive "$pidfile" && ssh_ok; }

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) die "usage: $0 start|stop|status" ;;
esac
