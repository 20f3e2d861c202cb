#!/usr/bin/env bash
# Builds the Debian package: the release binary, its man page and shell completions (made by
# `ec2snap --generate`), then `cargo deb --no-build` with the assets of Cargo.toml. Prints the
# .deb's path. Needs cargo-deb (`cargo install cargo-deb --locked`).
#   PROFILE=dev scripts/package.sh   packs the debug binary instead (quicker, for checks)
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
PROFILE=${PROFILE:-release}
if [[ $PROFILE == release ]]; then
    DIR=release
    cargo build --locked --release
else
    # cargo-deb reads the assets' target/release/ from the profile's own folder.
    DIR=debug
    cargo build --locked
fi
BIN="$TARGET/$DIR/ec2snap"
OUT="$TARGET/$DIR/assets"
mkdir -p "$OUT"
"$BIN" --generate man | gzip -9n >"$OUT/ec2snap.1.gz"
"$BIN" --generate complete-bash >"$OUT/ec2snap.bash"
"$BIN" --generate complete-zsh >"$OUT/_ec2snap"
"$BIN" --generate complete-fish >"$OUT/ec2snap.fish"
cargo deb --no-build --locked --profile "$PROFILE" --output "$TARGET/debian/" | tail -n 1
