#!/usr/bin/env bash
# Runs each cargo-fuzz target for N seconds (default 30) and prints its executions.
#   fuzz/run.sh [SECONDS] [TARGET...]
# Needs nightly and cargo-fuzz (`cargo install cargo-fuzz`). The committed seeds in
# corpus/<target> are read, never written: new inputs go to target/work-corpus/<target>.
# A crash leaves its input under artifacts/<target>/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-30}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(core_state wait_sets frame_decoder pool_ops)
fi
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}

mkdir -p target
if ! cargo +nightly fuzz build >target/fuzz-build.log 2>&1; then
    cat target/fuzz-build.log
    exit 1
fi
failed=0
for t in "${targets[@]}"; do
    work=target/work-corpus/$t
    log=target/fuzz-$t.log
    mkdir -p "$work"
    # -timeout: one input taking 30 s is a hang; pool_ops' own waits give up after 20 s.
    if cargo +nightly fuzz run "$t" "$work" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=30 -print_final_stats=1 >"$log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed=1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    printf '%-14s %s  %s executions in %s s (%s/s), %s\n' "$t" "$status" "${execs:-?}" \
        "$seconds" "${rate:-?}" "${cov:-cov: ?}"
    if [ "$status" != ok ]; then
        tail -40 "$log"
    fi
done
exit "$failed"
