#!/usr/bin/env bash
# The main job against a local EC2 emulator it starts by itself: seeds three instances with old
# snapshots, then runs the admin's cron line as a dry run and for real, showing the snapshots made
# and pruned. Needs only Rust and Python 3.
set -euo pipefail
source "$(dirname "$0")/lab.sh"
cd "$ROOT"
cargo build --quiet --locked
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/ec2snap"

show() { lab table; }

echo "== Seeding: front1 and front2 (2 volumes each, snapshots 12, 9 and 2 days old), and back1"
old='[{"device": "/dev/sdb", "age": 1036800}, {"device": "/dev/sdb", "age": 777600}, {"device": "/dev/sdb", "age": 172800}]'
lab seed >/dev/null <<JSON
{"instances": [
  {"name": "front1", "tags": {"env": "prod"}, "volumes": [{"device": "/dev/sdb"}], "snapshots": $old},
  {"name": "front2", "tags": {"env": "prod"}, "volumes": [{"device": "/dev/sdb", "tags": {"team": "web"}}], "snapshots": $old},
  {"name": "back1", "tags": {"env": "prod"}, "volumes": [{"device": "/dev/sdb"}], "snapshots": $old}
]}
JSON
show
echo
echo "== Dry run (the default): ec2snap -t Name 'front*' -g 5 d"
"$BIN" --endpoint-url "$MOTO_URL" -t Name 'front*' -g 5 d
echo
echo "== Run mode: ec2snap -t Name 'front*' -g 5 d -u"
"$BIN" --endpoint-url "$MOTO_URL" -t Name 'front*' -g 5 d -u
echo
echo "== Snapshots now: 4 new ones, the 12- and 9-day-old ones of front1 and front2 pruned, back1's untouched"
show
