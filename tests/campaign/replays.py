"""Replays of the campaign's shrunk steps: test_found.py (defects still there) and
test_regressions.py (fixed ones, which must stay fixed).
"""
import campaign
from promises import Broken


def flags(**over):
    """A backup's flags as the campaign draws them: every knob off, then `over`."""
    f = {"real": True, "g": None, "d": None, "keep": {}, "consistent": False, "no_root": False, "no_snap": False,
         "copy": False, "copy_keep": None, "copy_max_age": None, "lock": None, "copy_lock": None,
         "archive_after": None, "freeze": False, "wait": False, "parallel": 1, "orphans": None, "huge": False,
         "fleet": None, "fleet_pick": ["111111111111"], "vault": False, "vault_lock": None}
    f.update(over)
    return f


def broken(promise, steps, only):
    """Runs `steps` (and the teardown) on a fresh state machine: True when `promise` broke.
    `only`: every other promise is tolerated; else only the known ones are."""
    state = campaign.Campaign()
    state.watched, state.watched_only = promise, only
    try:
        steps(state)
        state.teardown()
    except Broken as b:
        if b.promise != promise:
            raise
        print(b)
        return True
    finally:
        campaign.lab().clear_faults()
    return False
