#!/usr/bin/env bash
# concur-core's and concur-pool's tests under ThreadSanitizer and AddressSanitizer (issue 7).
#   .ci/sanitizers.sh [thread|address]...     (default: both)
# Nightly with rust-src: the standard library is rebuilt with the sanitizer (-Zbuild-std), so
# its atomics and locks are instrumented too. Each sanitizer gets its own target directory.
# Doc tests are left out (they would need -Zdoctest-xcompile); the lib and integration tests
# run. TSan runs with halt_on_error: a report is a failure, never a warning to scroll past.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
target=x86_64-unknown-linux-gnu
sanitizers=("$@")
if [ ${#sanitizers[@]} -eq 0 ]; then
    sanitizers=(thread address)
fi
jobs=${CARGO_BUILD_JOBS:-2}

for san in "${sanitizers[@]}"; do
    echo "==> ${san} sanitizer: concur-core and concur-pool tests"
    export RUSTFLAGS="-Zsanitizer=${san}"
    export RUSTDOCFLAGS="$RUSTFLAGS"
    export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
    export ASAN_OPTIONS="detect_leaks=1 detect_stack_use_after_return=1"
    # ASan's leak checker needs ptrace, which some containers forbid; it is kept where allowed.
    cargo +nightly test -j "$jobs" -Zbuild-std --target "$target" \
        --target-dir "target/sanitizer-${san}" \
        -p concur-core -p concur-pool --lib --tests -- --test-threads=2
done
echo "==> sanitizers clean: ${sanitizers[*]}"
