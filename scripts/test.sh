#!/usr/bin/env bash
# The whole test suite: installs the EC2 emulator into .venv if needed, checks formatting, then runs
# the unit tests and the integration tests (the real binary against moto and the fault proxy).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-emulator.sh
cargo fmt --check
cargo test --locked "$@"
