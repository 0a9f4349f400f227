#!/usr/bin/env bash
# Miri over concur-core's tests and every twin with many seeds (issue 7; the exhaustive version
# of CI's single-seed core run and 8-seed twin run).
#   .ci/miri-seeds.sh [SEEDS]        default 0..32
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-0..32}
export MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-many-seeds=${seeds}"
cargo +nightly miri test -p concur-core
cargo +nightly miri test -p concur-loom-tests --test miri_twins --test miri_wait_twins
echo "==> Miri clean over seeds ${seeds}"
