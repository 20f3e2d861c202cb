#!/usr/bin/env bash
# Creates .venv with the EC2 emulator the tests, the demo and the benchmark use (moto server, with
# flask and flask-cors, and boto3 for seeding), and prometheus_client, whose parser the tests use on
# --metrics-file, and the fault campaign's Hypothesis and pytest (tests/campaign). Idempotent: a ready .venv is left as it is; a .venv missing a package gets it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PACKAGES=('moto[ec2,server]==5.2.1' 'flask==3.1.3' 'flask-cors==6.0.2' 'prometheus-client==0.26.0'
    'hypothesis==6.170.27' 'pytest==9.2.0')
if .venv/bin/python -c 'import moto, flask, flask_cors, boto3' 2>/dev/null; then
    if ! .venv/bin/python -c 'import prometheus_client, hypothesis, pytest' 2>/dev/null; then
        .venv/bin/python -m pip install --quiet --disable-pip-version-check "${PACKAGES[@]}"
    fi
else
    # Debian's python3 comes without venv/ensurepip: install it when we may, else say how.
    if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
        else
            echo "$PY has no venv module: install it first (sudo apt-get install python3-venv)" >&2
            exit 1
        fi
    fi
    rm -rf .venv
    "$PY" -m venv .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "${PACKAGES[@]}"
fi
.venv/bin/python -c 'import moto; print("emulator ready: moto", moto.__version__)'
