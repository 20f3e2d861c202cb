#!/usr/bin/env bash
# Creates .venv with the EC2 emulator the tests, the demo and the benchmark use (moto server, with
# flask and flask-cors, and boto3 for seeding). Idempotent: a ready .venv is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! .venv/bin/python -c 'import moto, flask, flask_cors, boto3' 2>/dev/null; then
    "$PY" -m venv .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check \
        'moto[ec2,server]==5.2.1' 'flask==3.1.3' 'flask-cors==6.0.2'
fi
.venv/bin/python -c 'import moto; print("emulator ready: moto", moto.__version__)'
