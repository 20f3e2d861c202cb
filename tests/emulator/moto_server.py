#!/usr/bin/env python3
"""moto_server with a movable clock, so tests can make snapshots "days old".

moto stamps every time (snapshot start times included) from moto.core.utils.utcnow. This launcher
wraps that function before the EC2 models import it: each call adds the offset in seconds (float,
may be negative) read from the file named by MOTO_CLOCK_FILE, or 0 when the file is absent or empty.
Arguments are moto_server's own (-H HOST -p PORT).
"""
import datetime
import os
import sys

import moto.core.utils as moto_utils

_real_utcnow = moto_utils.utcnow


def _offset_seconds() -> float:
    path = os.environ.get("MOTO_CLOCK_FILE")
    if not path:
        return 0.0
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read().strip()
    except FileNotFoundError:
        return 0.0
    return float(text) if text else 0.0


def utcnow() -> datetime.datetime:
    return _real_utcnow() + datetime.timedelta(seconds=_offset_seconds())


moto_utils.utcnow = utcnow

from moto.server import main  # noqa: E402  (must come after the patch)

if __name__ == "__main__":
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    sys.exit(main(sys.argv[1:]))
