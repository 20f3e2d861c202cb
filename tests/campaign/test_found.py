"""What the campaign found: each defect's shrunk steps, replayed against the real binary.

Each replay must break its promise while the defect is there (it is then reported as xfailed); one
that keeps it fails the suite, so that nobody forgets it. The fix of a defect turns its replay
green: move it to test_regressions.py (where it must pass) and take its promise out of
known.KNOWN when no replay of it is left here.
"""
import pytest

import replays


# Every defect found on c3fe040 is fixed: its replay is in test_regressions.py. A new one goes
# here, with its issue and promise, until it is fixed.
REPLAYS = {}


@pytest.mark.parametrize("name", sorted(REPLAYS))
def test_found(name):
    issue, promise, steps = REPLAYS[name]
    if replays.broken(promise, steps, only=True):
        pytest.xfail(f"issue {issue}: promise {promise} still broken")
    pytest.fail(f"issue {issue}: the replay keeps its promise now: move it to test_regressions.py")
