#!/usr/bin/env bash
# Benchmark (not a test): builds the release binary, starts moto and the fault proxy, and runs
# scripts/bench.py. Arguments go to bench.py, e.g. --sizes 20,200 --parallel 1,8 --latency-ms 20.
set -euo pipefail
source "$(dirname "$0")/lab.sh"
cd "$ROOT"
cargo build --quiet --locked --release
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/ec2snap"
"$PY" "$ROOT/scripts/bench.py" --binary "$BIN" --moto "$MOTO_URL" --proxy "$PROXY_URL" --clock "$CLOCK" "$@"
