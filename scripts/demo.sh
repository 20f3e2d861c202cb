#!/usr/bin/env bash
# The main job against a local EC2 emulator it starts by itself: seeds three instances with old
# snapshots, then runs the admin's cron line as a dry run and for real, showing the snapshots made
# and pruned. Needs only Rust and Python 3.
set -euo pipefail
source "$(dirname "$0")/lab.sh"
cd "$ROOT"
echo "== Building ec2snap (the first time: about 5 minutes on 2 cores, then seconds)"
cargo build --locked
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/ec2snap"
echo

echo "== Seeding front1, front2 and back1: each a root volume and /dev/sdb, whose snapshots are 12, 9 and 2 days old"
old='[{"device": "/dev/sdb", "age": 1036800}, {"device": "/dev/sdb", "age": 777600}, {"device": "/dev/sdb", "age": 172800}]'
lab seed >/dev/null <<JSON
{"instances": [
  {"name": "front1", "tags": {"env": "prod"}, "volumes": [{"device": "/dev/sdb"}], "snapshots": $old},
  {"name": "front2", "tags": {"env": "prod"}, "volumes": [{"device": "/dev/sdb", "tags": {"team": "web"}}], "snapshots": $old},
  {"name": "back1", "tags": {"env": "prod"}, "volumes": [{"device": "/dev/sdb"}], "snapshots": $old}
]}
JSON
lab table
echo
echo "== Dry run (the default): ec2snap -t Name 'front*' -g 5 d"
"$BIN" --endpoint-url "$MOTO_URL" -t Name 'front*' -g 5 d
echo
lab snapshots >"$LAB_DIR/before.json"
echo "== Run mode: ec2snap -t Name 'front*' -g 5 d -u"
"$BIN" --endpoint-url "$MOTO_URL" -t Name 'front*' -g 5 d -u
echo
echo "== Snapshots now: front1 and front2 each have 2 new ones (root and /dev/sdb), keep the 2-day-old"
echo "   one, and lost those older than 5 days; back1 was not selected: its snapshots are untouched"
lab table "$LAB_DIR/before.json"
