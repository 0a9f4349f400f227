#!/usr/bin/env bash
# Shows that the harness can still fail (DESIGN §2 "Harness traps"): builds concur-core with each
# planted bug (`--cfg concur_bug="NAME"`: the `rule*` sites in blocking.rs and header.rs, the
# `weak-*` sites of the `ord` table in sync.rs) and runs the loom models against it. A bug is
# caught when any model fails (a panic, a reported race, a deadlock, a leak, or a crash). A bug
# that no loom model catches gets the Miri twins, built with the same cfg (loom does not see a
# use-after-free of raw memory).
#
#   loom-tests/planted-bugs.sh [NAME...]     default: every planted bug
#
# PLANTED_SKIP_LOOM=1 skips the loom runs, to see what the Miri twins alone catch.
#
# Prints one line per bug, `caught by loom`, `caught by miri` or `MISSED`, and exits non-zero if
# any bug was missed (or if the models fail without a bug, which would make every catch
# meaningless). Logs: target/loom/planted/logs/.
#
# How the cfg reaches the build: RUSTFLAGS carries `--cfg concur_loom` for every crate (cargo
# needs it to pick loom as concur-core's dependency), while the bug's cfg goes through
# RUSTC_WORKSPACE_WRAPPER, i.e. to the workspace crates only. Cargo hashes the wrapper's path
# into each workspace crate's fingerprint and file names, so every bug keeps its own cached
# build (a real rebuild, never a stale binary), and switching bugs recompiles concur-core and the
# tests (~5 s) instead of loom and its ~25 dependencies (~50 s on 2 cores, as a bug cfg in
# RUSTFLAGS would). For Miri the bug cfg goes in RUSTFLAGS (no loom there): cargo-miri reuses the
# environment of a fresh build, so a cfg that forces the rebuild is required, not an env var.
set -uo pipefail
cd "$(dirname "$0")/.."

# NAME, then the models meant to catch it (tried first, one process each; then every model).
plants=(
    "rule1-touch-after-fired set_get"
    "rule2-leave-before-fired set_give_up"
    "rule3-unlock-keeps-list set_give_up"
    "rule4-finish-under-lock set_give_up"
    "rule5-unlock-by-store set_give_up"
    "weak-fast-path-load set_get"
    "weak-fired-load set_get"
    "weak-lock-cas two_give_ups_set"
    "weak-push set_get"
    "weak-fired-store set_get"
    "weak-set-detach set_get"
    "weak-set-phase-only set_give_up"
    "weak-unlock two_give_ups_set"
    "weak-cancel-detach cancel_set"
    "weak-delegating-unlock set_give_up"
)

export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
export CARGO_TARGET_DIR="${CONCUR_LOOM_TARGET_DIR:-target/loom}"
jobs="${CARGO_BUILD_JOBS:-2}"
model_timeout="${PLANTED_MODEL_TIMEOUT:-300}"
miri_seeds="${PLANTED_MIRI_SEEDS:-0..16}"
work="$CARGO_TARGET_DIR/planted"
[[ "$work" == /* ]] || work="$(pwd)/$work"
logs="$work/logs"
mkdir -p "$work/wrappers" "$logs"

now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }

# Builds the loom test targets; prints their executables. $1: wrapper path or "" for none.
build() {
    local wrapper="$1" log="$2"
    RUSTC_WORKSPACE_WRAPPER="$wrapper" RUSTFLAGS="--cfg concur_loom" \
        cargo test -j "$jobs" --release -p concur-loom-tests --tests --no-run \
        --config profile.release.package.concur-core.debug-assertions=true \
        --message-format=json 2>"$log" |
        grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | sort
}

# The first report of a failing run: which model ($2 if the log does not say), and why.
reason() {
    local log="$1" model why
    model=$(grep -o -m1 "thread '[a-z0-9_]*'[^:]* panicked" "$log" | cut -d"'" -f2)
    why=$(grep -m1 -A1 'panicked at' "$log" | tail -n1)
    [[ -n "$why" ]] || why=$(grep -m1 -E 'concur: |deadlock|leak|timed out|SIGSEGV' "$log")
    [[ -n "$why" ]] || why="exit status $(tail -n1 "$log")"
    # Loom's words for a loom object (an atomic or cell) used after its owner dropped it.
    why=${why/\[loom internal bug\] unexpected object stored at reference/use after free of a loom object (loom: \"unexpected object stored at reference\")}
    printf '%s: %s' "${model:-${2:-?}}" "$(cut -c1-110 <<<"$why")"
}

# Runs a test executable (extra args: test filters) under a timeout; logs to $1.
run_models() {
    local log="$1" exe="$2"
    shift 2
    # In a subshell (kept by the `exit`) whose stderr is dropped: bash's own "Aborted" notice.
    (
        timeout "$model_timeout" "$exe" --test-threads 2 "$@" >"$log" 2>&1
        exit $?
    ) 2>/dev/null
    local status=$?
    [[ $status -eq 124 ]] && echo "timed out after ${model_timeout}s" >>"$log"
    echo "$status" >>"$log"
    return $status
}

start=$(now)

# 1. Without a bug every model must pass, or a "catch" below would mean nothing.
skip_loom="${PLANTED_SKIP_LOOM:-0}"
[[ $skip_loom == 1 ]] || clean_exes=$(build "" "$logs/clean.build.log")
if [[ $skip_loom != 1 && -z "$clean_exes" ]]; then
    echo "the loom models do not build:" >&2
    tail -n 30 "$logs/clean.build.log" >&2
    exit 2
fi
for exe in ${clean_exes:-}; do
    if ! run_models "$logs/clean.run.log" "$exe"; then
        echo "the loom models fail WITHOUT a planted bug ($(reason "$logs/clean.run.log"))" >&2
        exit 2
    fi
done
[[ $skip_loom == 1 ]] || printf 'clean: every loom model passes (%s s, LOOM_MAX_PREEMPTIONS=%s)\n' \
    "$(secs "$start" "$(now)")" "$LOOM_MAX_PREEMPTIONS"

# 2. Each planted bug.
selected=("$@")
missed=0
for plant in "${plants[@]}"; do
    read -r bug first <<<"$plant"
    if [[ ${#selected[@]} -gt 0 && " ${selected[*]} " != *" $bug "* ]]; then
        continue
    fi
    t0=$(now)
    wrapper="$work/wrappers/$bug"
    printf '#!/bin/sh\nexec "$@" --cfg '\''concur_bug="%s"'\''\n' "$bug" >"$wrapper"
    chmod +x "$wrapper"
    exes=""
    if [[ $skip_loom != 1 ]]; then
        exes=$(build "$wrapper" "$logs/$bug.build.log")
        if [[ -z "$exes" ]]; then
            printf '%-26s MISSED (build failed, see %s)\n' "$bug" "$logs/$bug.build.log"
            missed=$((missed + 1))
            continue
        fi
    fi
    verdict=""
    # The models meant to catch it, one process each, then every model of every loom target.
    for model in $first; do
        for exe in $exes; do
            # Listed first, then searched: `list | grep -q` can kill the lister with SIGPIPE.
            list=$("$exe" --list --format terse 2>/dev/null)
            grep -qx "$model: test" <<<"$list" || continue
            if ! run_models "$logs/$bug.loom.log" "$exe" --exact "$model"; then
                verdict="caught by loom  ($(reason "$logs/$bug.loom.log" "$model"))"
                break 2
            fi
        done
    done
    if [[ -z "$verdict" ]]; then
        for exe in $exes; do
            if ! run_models "$logs/$bug.loom.log" "$exe"; then
                verdict="caught by loom  ($(reason "$logs/$bug.loom.log"))"
                break
            fi
        done
    fi
    if [[ -z "$verdict" ]]; then
        # Loom saw nothing: the Miri twins of the same models, then all of them.
        for filter in "$first" ""; do
            # shellcheck disable=SC2086 # $filter is a list of test names
            if ! RUSTFLAGS="--cfg concur_bug=\"$bug\"" CARGO_TARGET_DIR="$work/miri" \
                MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-many-seeds=$miri_seeds" \
                timeout 1800 cargo +nightly miri test -j "$jobs" -p concur-loom-tests \
                --test miri_twins -- $filter >"$logs/$bug.miri.log" 2>&1; then
                if grep -q 'Undefined Behavior\|panicked\|abort' "$logs/$bug.miri.log"; then
                    verdict="caught by miri  ($(grep -m1 -E 'Undefined Behavior|panicked|abort' \
                        "$logs/$bug.miri.log" | cut -c1-110))"
                else
                    verdict="MISSED (miri did not run, see $logs/$bug.miri.log)"
                fi
                break
            fi
        done
    fi
    if [[ -z "$verdict" || "$verdict" == MISSED* ]]; then
        verdict="${verdict:-MISSED}"
        missed=$((missed + 1))
    fi
    printf '%-26s %s  [%s s]\n' "$bug" "$verdict" "$(secs "$t0" "$(now)")"
done

printf 'planted bugs: %s missed, %s s in all\n' "$missed" "$(secs "$start" "$(now)")"
[[ $missed -eq 0 ]]
