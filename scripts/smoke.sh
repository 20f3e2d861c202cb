#!/usr/bin/env bash
# Smoke test of the main job against an EC2 endpoint (moto, LocalStack): seeds two instances with
# names of its own, then checks a dry run, a real run with -e, a prune with -d and the freshness
# check, each ec2snap exit code included, looking only at the volumes it seeded (an emulator may
# hold other snapshots: LocalStack's default AMIs).
#
#   scripts/smoke.sh ENDPOINT          e.g. http://localhost:4566
#
# EC2SNAP: the binary to test (default: built here with cargo). PYTHON: a Python with boto3
# (default: .venv's, see scripts/setup-emulator.sh). AWS_REGION (default us-east-1) and dummy
# credentials are set when missing.
set -euo pipefail
ENDPOINT=${1:?usage: scripts/smoke.sh ENDPOINT}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
export AWS_REGION=${AWS_REGION:-us-east-1}
if [[ -z ${EC2SNAP:-} ]]; then
    cargo build --locked --manifest-path "$ROOT/Cargo.toml"
    EC2SNAP="${CARGO_TARGET_DIR:-$ROOT/target}/debug/ec2snap"
fi
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
NAME="smoke-$(date +%s)-$$"

fail() {
    echo "SMOKE FAILED: $*" >&2
    exit 1
}

lab() { "$PYTHON" "$ROOT/scripts/ec2lab.py" --endpoint "$ENDPOINT" --region "$AWS_REGION" "$@"; }

# ec2snap LOGNAME WANTED_EXIT ARGS...: runs the binary, shows its log, checks its exit code.
ec2snap() {
    local log="$WORK/$1.log" want=$2 code=0
    shift 2
    echo "\$ ec2snap $(printf "%q " "$@")"
    "$EC2SNAP" --endpoint-url "$ENDPOINT" -r "$AWS_REGION" "$@" >"$log" 2>&1 || code=$?
    sed 's/^/    /' "$log"
    [[ $code == "$want" ]] || fail "ec2snap $* exited $code, not $want"
}

# check STEP PYTHON_CODE: runs the code with `seeded` (ec2lab seed's answer) and `snaps` (this
# run's snapshots: those of the seeded volumes) defined.
check() {
    local step=$1
    lab snapshots >"$WORK/all.json"
    STEP=$step WORK=$WORK "$PYTHON" - "$2" <<'PY' || fail "$step"
import json, os, sys
work = os.environ["WORK"]
seeded = json.load(open(f"{work}/seeded.json"))
volumes = {v for i in seeded["instances"] for v in i["volumes"].values()}
snaps = [s for s in json.load(open(f"{work}/all.json")) if s["volume"] in volumes]
exec(sys.argv[1])
print(f"ok: {os.environ['STEP']}")
PY
}

echo "== Seeding $NAME-web1 (root and /dev/sdb) and $NAME-web2 (root) at $ENDPOINT"
echo "{\"instances\": [{\"name\": \"$NAME-web1\", \"volumes\": [{\"device\": \"/dev/sdb\"}]}, {\"name\": \"$NAME-web2\"}]}" |
    lab seed >"$WORK/seeded.json"
check "three volumes seeded, no snapshot of them" '
assert len(volumes) == 3, volumes
assert snaps == [], snaps'

ec2snap dry 0 -t Name "$NAME-web*"
[[ $(grep -c 'Hot snapshot made for' "$WORK/dry.log") == 3 ]] || fail "the dry run did not list 3 snapshots"
check "the dry run made nothing" 'assert snaps == [], snaps'

ec2snap run 0 -t Name "$NAME-web*" -u -e type:backup
check "one snapshot per volume, described and tagged" '
assert len(snaps) == 3, snaps
assert {s["volume"] for s in snaps} == volumes, snaps
assert all(" - Hot /dev/" in s["description"] for s in snaps), snaps
assert all(s["tags"].get("type") == "backup" for s in snaps), snaps
json.dump([s["id"] for s in snaps], open(f"{work}/first.json", "w"))'

ec2snap prune 0 -t Name "$NAME-web*" -u -d 1
[[ $(grep -c 'Deleting snapshot' "$WORK/prune.log") == 3 ]] || fail "the prune did not delete 3 snapshots"
check "-d 1: the second run replaced the first" '
first = set(json.load(open(f"{work}/first.json")))
assert len(snaps) == 3, snaps
assert {s["volume"] for s in snaps} == volumes, snaps
assert not first & {s["id"] for s in snaps}, snaps'

ec2snap check 0 -t Name "$NAME-web*" --check-max-age 1 h
grep -q '^EC2SNAP OK' "$WORK/check.log" || fail "the freshness check did not say OK"

echo "SMOKE PASSED against $ENDPOINT"
