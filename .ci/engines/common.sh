# Shared by the engine scripts: where their scratch state lives, and bounded waiting.
# Sourced, not run. CONCUR_ENGINES_DIR overrides the default scratch dir (<repo>/target/engines).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
engines_dir=${CONCUR_ENGINES_DIR:-$repo/target/engines}
mkdir -p "$engines_dir/env"

say() { printf '%s: %s\n' "$(basename "$0")" "$*"; }
die() { say "ERROR: $*" >&2; exit 1; }

not() { ! "$@"; }

# wait_until SECONDS COMMAND...: polls COMMAND every 0.1 s; fails after SECONDS.
wait_until() {
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# running PID: whether PID exists and is not a zombie (an exited daemon reparented to an init
# that reaps late still answers kill -0).
running() { local state; state=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $state != Z* ]]; }

# alive PIDFILE: whether the process named in PIDFILE runs.
alive() { [[ -s $1 ]] && running "$(cat "$1")"; }

# stop_pidfile PIDFILE NAME: SIGTERM, then SIGKILL after 5 s, of the process in PIDFILE.
stop_pidfile() {
    local file=$1 name=$2 pid
    if ! alive "$file"; then rm -f "$file"; return 0; fi
    pid=$(cat "$file")
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_until 5 not running "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        wait_until 2 not running "$pid" || die "$name (pid $pid) survived SIGKILL"
        say "$name (pid $pid) needed SIGKILL"
    fi
    rm -f "$file"
    say "stopped $name (pid $pid)"
}

# free_port: a TCP port nobody listens on at 127.0.0.1.
free_port() {
    local port
    for _ in $(seq 50); do
        port=$((20000 + RANDOM % 40000))
        if [[ -z $(ss -Htln "sport = :$port") ]]; then echo "$port"; return 0; fi
    done
    return 1
}
