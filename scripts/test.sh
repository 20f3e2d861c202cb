#!/usr/bin/env bash
# The whole test suite: installs the EC2 emulator into .venv if needed, checks formatting, then runs
# the unit tests and the integration tests (the real binary against moto and the fault proxy), then
# the fault campaign (tests/campaign: fixed seeds, and the replays of what it found) against the
# debug binary those tests built.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-emulator.sh
cargo fmt --check
cargo test --locked "$@"
export EC2SNAP_BIN="${CARGO_TARGET_DIR:-target}/debug/ec2snap"
.venv/bin/python -m pytest -q -p no:cacheprovider -rx tests/campaign
