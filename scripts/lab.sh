# Sourced by demo.sh and bench.sh: starts moto (movable clock) and the fault proxy on free local
# ports, and stops them when the calling script exits. Sets PY, MOTO_URL, PROXY_URL, CLOCK, LAB_DIR.
# shellcheck shell=bash
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/scripts/setup-emulator.sh" >&2
PY="$ROOT/.venv/bin/python"
LAB_DIR=$(mktemp -d)
CLOCK="$LAB_DIR/clock"
MOTO_PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MOTO_CLOCK_FILE="$CLOCK" MOTO_EC2_LOAD_DEFAULT_AMIS=false \
    "$PY" "$ROOT/tests/emulator/moto_server.py" -H 127.0.0.1 -p "$MOTO_PORT" >"$LAB_DIR/moto.log" 2>&1 &
LAB_PIDS=$!
"$PY" "$ROOT/tests/emulator/fault_proxy.py" --port 0 --upstream "http://127.0.0.1:$MOTO_PORT" >"$LAB_DIR/proxy.out" 2>&1 &
LAB_PIDS="$LAB_PIDS $!"
trap 'kill $LAB_PIDS 2>/dev/null; rm -rf "$LAB_DIR"' EXIT
for _ in $(seq 1 200); do
    if grep -q '^PORT ' "$LAB_DIR/proxy.out" 2>/dev/null && "$PY" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$MOTO_PORT/moto-api/')" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
MOTO_URL="http://127.0.0.1:$MOTO_PORT"
PROXY_URL="http://127.0.0.1:$(awk '/^PORT /{print $2}' "$LAB_DIR/proxy.out")"
[ "$PROXY_URL" != "http://127.0.0.1:" ] || { echo "the fault proxy did not start" >&2; exit 1; }
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=eu-west-1
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL
lab() { "$PY" "$ROOT/scripts/ec2lab.py" --endpoint "$MOTO_URL" --clock "$CLOCK" "$@"; }
