"""What the campaign found: each defect's shrunk steps, replayed against the real binary.

Each replay must break its promise while the defect is there (it is then reported as xfailed); one
that keeps it fails the suite, so that nobody forgets it. The fix of a defect turns its replay
green: move it to test_regressions.py (where it must pass) and take its promise out of
known.KNOWN when no replay of it is left here.
"""
import pytest

import replays
from replays import flags


def _panic(s):
    # Issue 34 item 8: a count the flags accept panics inside retention's lock (seed 1, and 11).
    s.first_instances(n=1, extra=0)
    s.backup(f=flags(real=False, keep={"weekly": 1}, wait=True, huge=True), fault=None, sig=None, twice=1)


def _no_copy_series(s):
    # Issue 34 item 5: a run with --copy-to that copied nothing has no ec2snap_copies_created
    # series for that region, so "no copy tonight" cannot alert (seed 21, shrunk).
    s.first_instances(n=1, extra=0)
    s.backup(f=flags(no_root=True, no_snap=True, copy=True, wait=True, huge=True), fault=None, sig=None, twice=0)


def _empty_endpoint(s):
    # Issue 34 item 9: --endpoint-url '' panics in the SDK (seed 31, shrunk).
    s.first_instances(n=1, extra=0)
    s.odd_input(odd="endpoint-empty")


def _fifo_accounts(s):
    # Issue 34 item 10: --accounts naming a FIFO blocks for ever (seed 31, shrunk; the step before
    # it, an empty AWS_ENDPOINT_URL, taken out by hand: it plays no part).
    s.first_instances(n=1, extra=0)
    s.odd_input(odd="accounts-fifo")


def _raw_set_tag_in_list(s):
    # Issue 34 item 11: list prints a snapshot's ec2snap:set tag raw: an ESC sequence and a newline
    # forge a row (seed 3 of the suite's campaign, shrunk; the odd input's run made the snapshot).
    s.first_instances(n=1, extra=0)
    s.advance_clock(hours=1)
    s.advance_clock(hours=1)
    s.odd_input(odd="keep-huge")
    s.by_hand(pick=0, what="tag")
    s.list_backups(flags=[])


REPLAYS = {
    "34.8 panic: --keep-daily 999999999 with --lock": ("34.8", "no-panic", _panic),
    "34.5 no copies series when nothing was copied": ("34.5", "report", _no_copy_series),
    "34.9 panic: --endpoint-url ''": ("34.9", "no-panic", _empty_endpoint),
    "34.10 hang: --accounts naming a FIFO": ("34.10", "no-panic", _fifo_accounts),
    "34.11 list prints the set tag raw": ("34.11", "escaped", _raw_set_tag_in_list),
}


@pytest.mark.parametrize("name", sorted(REPLAYS))
def test_found(name):
    issue, promise, steps = REPLAYS[name]
    if replays.broken(promise, steps, only=True):
        pytest.xfail(f"issue {issue}: promise {promise} still broken")
    pytest.fail(f"issue {issue}: the replay keeps its promise now: move it to test_regressions.py")
