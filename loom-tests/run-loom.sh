#!/usr/bin/env bash
# Runs every loom model of concur-loom-tests (each loom test target, each model in its own
# process) in release with `--cfg concur_loom`, and prints each model's time.
#
#   loom-tests/run-loom.sh [FILTER]      FILTER: only models whose name contains it
#
# LOOM_MAX_PREEMPTIONS defaults to 3 (DESIGN §2: at 2 a model of this protocol misses bugs).
# Builds into target/loom (CONCUR_LOOM_TARGET_DIR), leaving the normal build cache alone;
# planted-bugs.sh shares that directory, so loom and its dependencies are built once.
set -euo pipefail
cd "$(dirname "$0")/.."

filter="${1:-}"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
export CARGO_TARGET_DIR="${CONCUR_LOOM_TARGET_DIR:-target/loom}"
jobs="${CARGO_BUILD_JOBS:-2}"

now() { date +%s%N; }
ms() { echo $((($2 - $1) / 1000000)); }

start=$(now)
# Release for speed, with concur-core's debug assertions on (not loom's: they cost ~20%).
exes=$(RUSTFLAGS="--cfg concur_loom" cargo test -j "$jobs" --release -p concur-loom-tests --tests \
    --config profile.release.package.concur-core.debug-assertions=true \
    --no-run --message-format=json |
    grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | sort)
built=$(now)
printf 'built the loom models in %d ms (LOOM_MAX_PREEMPTIONS=%s)\n' "$(ms "$start" "$built")" \
    "$LOOM_MAX_PREEMPTIONS"

failed=0
count=0
for exe in $exes; do
    target=$(basename "$exe" | sed 's/-[0-9a-f]*$//')
    for model in $("$exe" --list --format terse 2>/dev/null | sed -n 's/: test$//p'); do
        [[ -z "$filter" || "$model" == *"$filter"* ]] || continue
        count=$((count + 1))
        t0=$(now)
        if out=$("$exe" --exact "$model" --test-threads 1 --nocapture 2>&1); then
            status=ok
        else
            status=FAILED
            failed=$((failed + 1))
        fi
        t1=$(now)
        executions=$(printf '%s\n' "$out" | sed -n 's/.*loom executions: \([0-9]*\).*/\1/p' | head -n1)
        printf '%-12s %-46s %7d ms %8s executions  %s\n' "$target" "$model" "$(ms "$t0" "$t1")" \
            "${executions:-?}" "$status"
        if [[ $status == FAILED ]]; then
            printf '%s\n' "$out" | grep -v '^ \{2,\}' | head -40
        fi
    done
done

printf 'all models in %d ms\n' "$(ms "$start" "$(now)")"
printf 'loom: %d passed, %d failed\n' "$((count - failed))" "$failed"
[[ $count -gt 0 && $failed -eq 0 ]]
