"""The promises the README makes, each with the invariant that checks it (docs/promises.md is the
table for people). A check that fails raises Broken with the promise's id; the campaign then stops
and Hypothesis shrinks the steps that led to it.
"""
import json
import re

# id -> (promise, as the README says it; the invariant checked)
PROMISES = {
    "floor": ("the N newest usable snapshots of a volume are never deleted (-d N, or 1 with --keep-*)",
              "after a run, the N newest completed snapshots of each volume of a processed instance (those before the run and the run's own) still exist"),
    "copy-floor": ("the copies of a volume's newest completed snapshot are never deleted; copies follow the same floor",
                   "after a run, the max(N, 1) newest completed copies of each volume in each --copy-to region (N from --copy-keep, else -d) still exist"),
    "not-stopped": ("never leaves a server stopped (kill -9 included: the next run starts it)",
                    "after a run that was not killed, every instance the campaign made running is running"),
    "thawed": ("nothing stays frozen past --freeze-timeout, whatever happens",
               "every fsfreeze -f on the fake root is thawed within --freeze-timeout + 3 s"),
    "thaw-sent": ("the thaw is sent in every case: after a failure, a timeout, SIGTERM or SIGINT",
                  "each instance a run (not SIGKILLed) sent a freeze to that SSM accepted was sent a thaw by that run, after it"),
    "application": ("a snapshot tagged ec2snap:consistency=application was taken with its filesystems frozen",
                    "each such snapshot's volume has a mounted writable filesystem, all of them frozen while its CreateSnapshot(s) call was answered"),
    "report": ("the report, the summary and the exit code say what happened",
               "the report's made and deleted snapshots are those the emulator shows made and gone; its exit code is the process's; exit 2 iff it lists an error"),
    "predicted": ("the dry run and list show exactly what the run deletes",
                  "with no fault, the ids list marks DELETE, the ids a dry run logs as deleted, and the ids the real run deletes are the same"),
    "one-point": ("a restore or drill uses one point in time, of this tool's backups",
                  "the snapshots one restore makes volumes of were all made by one ec2snap run (not by hand)"),
    "cool-off": ("a compliance lock always has its cool-off the first time",
                 "a LockSnapshot in compliance mode of a snapshot not already compliance-locked carries CoolOffPeriod"),
    "drill-own": ("a drill deletes only what drills that are over left, and always what it made",
                  "no DeleteVolume of a volume that a drill still running made; after a drill ends no volume it made remains"),
    "isolation": ("one target's fault never changes another target's outcome; a run backs up every selected instance",
                  "after a real run, every selected running instance of every target without an injected fault has a new snapshot of each volume"),
    "once": ("a run snapshots each volume once",
             "no volume gets more new snapshots from a step than runs were started in it"),
    "vault-kept": ("a run never deletes anything in the vault account: its role may create, tag and lock, never delete",
                   "after a backup step, every vault copy that existed before it still exists"),
    "vault-floor": ("the vault's own pruning never deletes the newest usable copy of a volume, nor a locked one",
                    "after vault-prune, the max(N, 1) newest completed vault copies of each source volume (N from --vault-keep) and every locked one still exist"),
    "shares-closed": ("a share with the vault is closed once the vault copy is completed",
                      "after a real run with --vault-role without fault or signal, no snapshot is left marked ec2snap:vault-shared"),
    "no-panic": ("no panic and no hang, whatever the flags accept and AWS answers",
                 "no exit 101, no 'panicked at', every run ends within its bound"),
    "escaped": ("nothing AWS, a user or a script wrote reaches the terminal or the log unescaped",
                "no control character but newline in standard output, standard error or the report"),
    "inert": ("a name (a mount point, a tag) is data: never run as code",
              "no file that a name's $(touch ...) would make exists"),
    "bad-input": ("bad input: exit 1, nothing created or deleted",
                  "a run that exits 1 sent no write to EC2"),
    "dry-run": ("a dry run changes nothing",
                "a run without -u sends no write but DryRun permission checks, and freezes or thaws nothing"),
    "held-kept": ("a held snapshot (ec2snap hold) is never deleted by retention, in any mode, and does not count among the N kept",
                  "after any ec2snap step, every snapshot held (and not released or deleted by hand) before it still exists"),
    "notified": ("--notify pings URL/start, then URL on exit 0 or URL/fail otherwise; a dry run pings nothing",
                 "for each real run not SIGKILLed, the listener saw one /start and one end ping whose suffix matches the exit code; none for a dry run"),
    "notify-exit-code": ("a failed notification (unreachable, hanging, refused) never changes the exit code and delays the end by 10 s at most per phase",
                         "a real run without other fault whose notify target fails exits 0, within its bound"),
    "no-false-alarm": ("a normal night (other admins' locks and AMIs included) is exit 0",
                       "a real run with no injected fault exits 0"),
}


class Broken(AssertionError):
    """A promise broken: `promise` is its id in PROMISES."""

    def __init__(self, promise, detail):
        assert promise in PROMISES, promise
        self.promise = promise
        super().__init__(f"promise broken [{promise}]: {PROMISES[promise][0]}\n  {detail}")


_KINDS = {}


def broken(promise, detail):
    """A Broken of a class of its own per promise: Hypothesis tells failures apart by their type,
    so that shrinking one promise's failure never slips to another's."""
    if promise not in _KINDS:
        name = "Broken_" + promise.replace("-", "_")
        _KINDS[promise] = type(name, (Broken,), {})
    return _KINDS[promise](promise, detail)


# Raw control characters: C0 but newline (tab included: one event, one line, one field), DEL, C1.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f\x80-\x9f]")


def check_escaped(result):
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr), ("report", result.report or "")):
        m = RAW.search(text)
        if m:
            at = m.start()
            raise broken("escaped", f"{name} holds {text[at]!r} at {at}: ...{text[max(0, at - 60):at + 20]!r}")


def check_no_panic(result):
    if result.code == -999:
        raise broken("no-panic", f"the run did not end within its bound: {result!r}")
    if result.code == 101 or "panicked at" in result.stderr:
        raise broken("no-panic", f"{result!r}")


def report_of(result):
    if not result.report:
        return None
    try:
        return json.loads(result.report)
    except ValueError as e:
        raise broken("report", f"the report is not JSON ({e}): {result.report[:300]!r}")


def instances_of(report):
    """Every instance entry of a report, of one target or many."""
    out = list(report.get("instances", []))
    for t in report.get("targets", []):
        out.extend(t.get("instances", []))
    return out


def gathered(report, key):
    """The `key` list of a report at every level: top, each target, each instance."""
    out = list(report.get(key, []))
    for t in report.get("targets", []):
        out.extend(t.get(key, []))
    for i in instances_of(report):
        out.extend(i.get(key, []))
    return out


def errors_of(report):
    return gathered(report, "errors")


def deleted_of(report):
    return gathered(report, "deleted")
