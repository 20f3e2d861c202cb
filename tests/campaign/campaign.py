"""The fault campaign: a Hypothesis rule-based state machine whose steps make instances, move the
clock, run the real ec2snap binary with random valid flags (backups, list, restore, drill, fleets
of accounts and regions), inject faults in the proxy, send real signals, run two at once and act
by hand as another admin would; after each step every promise of promises.py that the step can
break is checked against the emulator's real state.

Replay a failure: scripts/campaign.sh --seed S (the seed is printed), or paste the shrunk steps
that Hypothesis prints into a file and run it with the lab (see docs/promises.md).
"""
import json
import os
import shlex
import time
from pathlib import Path

import hypothesis.strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import fakeroot
from known import KNOWN
from promises import PROMISES
from lab import BASE_ACCOUNT, OTHER, REGION, SIGNALS, Lab, role_arn
from promises import (Broken, broken, check_escaped, check_no_panic, deleted_of, errors_of, instances_of,
                      report_of)

ACCOUNTS = [BASE_ACCOUNT, "111111111111", "222222222222"]
CELLS = [(BASE_ACCOUNT, REGION), (BASE_ACCOUNT, OTHER), ("111111111111", REGION), ("222222222222", REGION)]
# A name a hostile admin (or a compromised instance's tag) could give: ESC sequences, a newline
# that would forge a log line, a tab.
NASTY = "c\x1b[31mred\x1b[0m\n2026-06-01 02:30:00,000 [INFO] forged\tline"

LAB = None


def lab():
    global LAB
    if LAB is None:
        LAB = Lab()
    return LAB


# --- the flags of a run ---------------------------------------------------------------------
@st.composite
def run_flags(draw):
    """A valid combination of a backup run's flags, as a dict (to_args turns it into argv)."""
    f = {"real": draw(st.booleans()) or draw(st.booleans())}
    f["g"] = draw(st.sampled_from([None, None, "1 d", "2 d", "12 h", "1 w", "3 d"]))
    f["d"] = draw(st.sampled_from([None, None, 1, 2, 3]))
    keep = {}
    for rule_name in draw(st.lists(st.sampled_from(["daily", "weekly", "monthly", "yearly", "hourly"]), max_size=2, unique=True)):
        keep[rule_name] = draw(st.integers(1, 4))
    f["keep"] = keep
    f["consistent"] = draw(st.booleans())
    f["no_root"] = draw(st.integers(0, 4)) == 0
    f["no_snap"] = draw(st.integers(0, 5)) == 0
    f["copy"] = draw(st.booleans())
    f["copy_keep"] = draw(st.sampled_from([None, 1, 2])) if f["copy"] else None
    f["copy_max_age"] = draw(st.sampled_from([None, "1 d", "2 d"])) if f["copy"] else None
    has_time = bool(f["g"] or keep)
    f["lock"] = draw(st.sampled_from([None, None, "governance", "compliance"])) if has_time else None
    f["copy_lock"] = draw(st.sampled_from([None, "governance", "compliance"])) if f["copy"] and has_time else None
    # --archive-after archives what the rules keep 90 days more: it needs -g or a --keep-* rule.
    f["archive_after"] = draw(st.sampled_from([None, None, "1 d", "2 w"])) if has_time else None
    f["freeze"] = not f["no_snap"] and draw(st.integers(0, 2)) == 0
    if f["freeze"]:
        f["freeze_timeout"] = draw(st.integers(1, 4))
        f["hook_timeout"] = draw(st.integers(1, 6))
    f["wait"] = draw(st.integers(0, 3)) == 0
    f["parallel"] = draw(st.sampled_from([1, 1, 2, 8]))
    f["orphans"] = draw(st.sampled_from([None, None, "1 d", "30 d"]))
    # Large values the flags accept: nothing may panic on them.
    f["huge"] = draw(st.integers(0, 9)) == 0
    # Many accounts or regions, when there are instances there.
    f["fleet"] = draw(st.sampled_from([None, None, "regions", "accounts", "all"]))
    f["fleet_pick"] = draw(st.lists(st.sampled_from(ACCOUNTS[1:]), min_size=1, max_size=3))
    return f


def notify_of(f):
    """--notify and how its listener behaves, from what was drawn (no draw of its own, as
    vault_of): on about a third of the runs; the listener answers most of the time, else hangs,
    answers 500 or is not there. A replay may set them."""
    on = f.get("notify", f["d"] in (1, 3) or f["orphans"] == "1 d")
    k = (len(f["fleet_pick"]) + (f["parallel"] > 1) + (f["g"] is not None)) % 8
    mode = f.get("notify_mode", {5: "hang", 6: "500", 7: "refuse"}.get(k, "answer"))
    return on, mode


def vault_of(f):
    """--vault-role and --vault-lock, decided from what was drawn (no draw of their own, so that
    each fixed seed explores the same steps as before the vault existed, now with the vault on
    about half of its runs); a replay may set them."""
    vault = f.get("vault", f["parallel"] > 1 or bool(f["keep"]) or f["d"] == 2)
    lock = f.get("vault_lock", "governance" if vault and f["g"] and f["d"] else None)
    return vault, lock


# The vault account, its copy role (what runs assume) and its own pruning role.
VAULT = "999999999999"
VAULT_ROLE = f"arn:aws:iam::{VAULT}:role/ec2snap-copy"
PRUNE_ROLE = f"arn:aws:iam::{VAULT}:role/ec2snap-prune"


def to_args(f):
    a = ["-t", "Name", "c*"]
    if f["real"]:
        a.append("-u")
    if f["g"]:
        a += ["-g", *f["g"].split()]
    if f["d"]:
        a += ["-d", str(f["d"])]
    for k, n in f["keep"].items():
        a += [f"--keep-{k}", str(n)]
    if f["keep"]:
        a.append("--utc")
    if f["consistent"]:
        a.append("--consistent")
    if f["no_root"]:
        a.append("-o")
    if f["no_snap"]:
        a.append("-n")
    if f["copy"]:
        a += ["--copy-to", OTHER]
        if f["copy_keep"]:
            a += ["--copy-keep", str(f["copy_keep"])]
        if f["copy_max_age"]:
            a += ["--copy-max-age", *f["copy_max_age"].split()]
        if f["copy_lock"]:
            a += ["--copy-lock", f["copy_lock"]]
    if f["lock"]:
        a += ["--lock", f["lock"]]
    if f["archive_after"]:
        a += ["--archive-after", *f["archive_after"].split()]
    if f["freeze"]:
        a += ["--freeze", "ssm", "--freeze-timeout", str(f["freeze_timeout"]), "--hook-timeout", str(f["hook_timeout"])]
    if f["wait"]:
        a += ["--wait", "--wait-interval", "1", "--wait-timeout", "20"]
    if f["parallel"] > 1:
        a += ["--parallel", str(f["parallel"])]
    if f["orphans"]:
        a += ["--prune-orphans-after", *f["orphans"].split()]
    if f["huge"]:
        # The largest values the flags accept (issue 34 item 8 bounded them: 100000 periods,
        # 1000 years); what the date arithmetic derives from them must not panic.
        if f["keep"]:
            a += ["--keep-daily", "100000"] if "daily" not in f["keep"] else []
        if f["copy"] and f["copy_lock"]:
            a += ["--copy-max-age", "1000", "y"] if not f["copy_max_age"] else []
        if not f["lock"] and (f["g"] or f["keep"]):
            a += ["--lock", "governance"]
        a += ["--lock-max", "36500"] if (f["lock"] or f["copy_lock"] or not f["lock"] and (f["g"] or f["keep"])) else []
    vault, vault_lock = vault_of(f)
    if vault:
        a += ["--vault-role", VAULT_ROLE]
        if vault_lock:
            a += ["--vault-lock", vault_lock]
    a += ["--max-attempts", "3"]
    return a


def floor_of(f):
    """How many newest usable snapshots of each volume the run promises to keep."""
    n = f["d"] or 0
    if f["keep"]:
        n = max(n, 1)
    return n


def copy_floor_of(f):
    n = f["copy_keep"] if f["copy_keep"] else (f["d"] or 0)
    return max(n, 1)


# --- faults ---------------------------------------------------------------------------------
FAULT = st.one_of(
    st.none(), st.none(), st.none(),
    st.tuples(st.just("error"), st.sampled_from(["CreateSnapshot", "CreateSnapshots", "DeleteSnapshot", "CopySnapshot",
                                                 "LockSnapshot", "SendCommand", "GetCommandInvocation", "ModifySnapshotTier"]),
              st.sampled_from(["UnauthorizedOperation", "InternalError"]), st.integers(1, 3)),
    st.tuples(st.just("5xx"), st.sampled_from(["DescribeSnapshots", "CreateSnapshot", "DeleteSnapshot", "DescribeInstances", "*"]),
              st.just(503), st.integers(1, 3)),
    st.tuples(st.just("throttle"), st.sampled_from(["CreateSnapshot", "DeleteSnapshot", "CopySnapshot", "DescribeSnapshots"]),
              st.just(400), st.integers(1, 2)),
    st.tuples(st.just("delay"), st.sampled_from(["CreateSnapshot", "SendCommand", "DeleteSnapshot", "CopySnapshot"]),
              st.sampled_from([1.0, 3.0]), st.integers(1, 2)),
    st.tuples(st.just("pending"), st.just("DescribeSnapshots"), st.just(0), st.integers(1, 4)),
    st.tuples(st.just("copy-limit"), st.just("CopySnapshot"), st.just(400), st.integers(1, 2)),
    st.tuples(st.just("refuse-account"), st.sampled_from(ACCOUNTS[1:]), st.just(403), st.just(-1)),
)


def fault_rules(fault):
    if fault is None:
        return []
    kind, action, code, times = fault
    if kind == "error":
        return [{"action": action, "times": times, "status": 400 if code != "InternalError" else 500, "code": code,
                 "message": f"injected {code}"}]
    if kind == "5xx":
        return [{"action": action, "times": times, "status": 503, "code": "ServiceUnavailable", "message": "injected 503"}]
    if kind == "throttle":
        return [{"action": action, "times": times, "status": 400, "code": "RequestLimitExceeded", "message": "Request limit exceeded."}]
    if kind == "delay":
        return [{"action": action, "times": times, "delay": code}]
    if kind == "pending":
        return [{"action": "DescribeSnapshots", "skip": 1, "times": times,
                 "rewrite": [["<status>completed</status>", "<status>pending</status>"]]}]
    if kind == "copy-limit":
        return [{"action": "CopySnapshot", "times": times, "status": 400, "code": "ResourceLimitExceeded",
                 "message": "Too many snapshot copies in progress."}]
    if kind == "refuse-account":
        return [{"action": "AssumeRole", "times": -1, "status": 403, "code": "AccessDenied",
                 "message": f"not authorized to assume {role_arn(action)}", "match": action}]
    raise ValueError(kind)


SIGNAL = st.one_of(st.none(), st.none(), st.none(),
                   st.tuples(st.sampled_from(["TERM", "INT", "KILL"]), st.sampled_from([0.2, 0.6, 1.5, 3.0])))


class Campaign(RuleBasedStateMachine):
    """One example: a fresh emulator, then steps; each step checks what it can break."""

    # A replay's own promise is never tolerated: it is there to show that one broken, or kept.
    watched = None
    # True: every other promise is tolerated (a found defect's replay shows its own promise broken,
    # whatever else breaks on the way); False: only the known ones are.
    watched_only = False

    def __init__(self):
        super().__init__()
        self.lab = lab()
        self.lab.reset()
        self.instances = {}      # id -> {account, region, name, zone, volumes: [{id, device, root}], root_dir, agent}
        self.origin = {}         # snapshot id -> "run:<key>" (made by ec2snap) or "hand"
        self.killed = False      # the last backup run was killed with SIGKILL: the next must recover
        self.steps = 0
        self.tolerated = []      # (promise, detail) seen in tolerate mode
        self.vault_used = False  # a run had --vault-role: the vault's promises are checked
        self.held = set()        # snapshots `ec2snap hold` put a hold on (released ones leave it)
        self.root_base = self.lab.dir / f"roots-{time.time_ns()}"
        self.root_base.mkdir()

    # --- what is there --------------------------------------------------------------------
    def cells(self):
        return sorted({(i["account"], i["region"]) for i in self.instances.values()})

    def ec2(self, account=BASE_ACCOUNT, region=REGION, direct=False):
        return self.lab.client("ec2", region=region, account=account, direct=direct)

    def snapshots(self):
        """Every snapshot of every account and region in play, as AWS shows it (through the proxy:
        persistent states, tiers, copies' dummy volume id): id -> info."""
        out = {}
        seen = set(self.cells()) | {(a, OTHER) for a, _ in self.cells()}
        for account, region in sorted(seen):
            ec2 = self.ec2(account, region)
            for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"]):
                for s in page["Snapshots"]:
                    tags = {t["Key"]: t["Value"] for t in s.get("Tags", [])}
                    out[s["SnapshotId"]] = {"id": s["SnapshotId"], "volume": s.get("VolumeId"), "state": s["State"],
                                            "start": s["StartTime"].timestamp(), "tags": tags, "region": region,
                                            "account": account, "description": s.get("Description", "")}
        return out

    def vault_snapshots(self):
        """The vault account's snapshots (its copies), in both regions: id -> info."""
        out = {}
        for region in (REGION, OTHER):
            ec2 = self.ec2(VAULT, region)
            for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"]):
                for s in page["Snapshots"]:
                    tags = {t["Key"]: t["Value"] for t in s.get("Tags", [])}
                    out[s["SnapshotId"]] = {"id": s["SnapshotId"], "state": s["State"], "region": region,
                                            "start": s["StartTime"].timestamp(), "tags": tags}
        return out

    def instance_states(self):
        out = {}
        for account, region in self.cells():
            for r in self.ec2(account, region).describe_instances()["Reservations"]:
                for i in r["Instances"]:
                    out[i["InstanceId"]] = i["State"]["Name"]
        return out

    def outputs(self, r):
        """The checks every run gets: no panic or hang, nothing unescaped."""
        for check in (check_no_panic, check_escaped):
            try:
                check(r)
            except Broken as b:
                self.fail(b.promise, str(b).split("\n", 1)[-1])

    def my_requests(self, key):
        """The writes the run with this access key sent (STS's AssumeRole is no change)."""
        every = self.lab.requests()
        keys = {key} | {k for r in every if r.get("_signer") == key and r.get("Action") == "AssumeRole"
                        for k in r.get("_made") or []}
        return [r for r in every if r.get("_signer") in keys and r.get("Action") != "AssumeRole"]

    def fail(self, promise, detail):
        """A promise broken: raised, or in tolerate mode (CAMPAIGN_TOLERATE=id,id) noted."""
        given = os.environ.get("CAMPAIGN_TOLERATE")
        tolerate = set(filter(None, given.split(","))) if given is not None else set(KNOWN)
        if self.watched is not None:
            tolerate = set(PROMISES) - {self.watched} if self.watched_only else tolerate - {self.watched}
        if promise in tolerate:
            self.tolerated.append((promise, detail))
            print(f"campaign: tolerated [{promise}] {detail[:300]}")
            return
        raise broken(promise, detail)

    # --- steps ----------------------------------------------------------------------------
    @initialize(n=st.integers(1, 3), extra=st.integers(0, 2))
    def first_instances(self, n, extra):
        self.make_instances(n, extra, False, 0, True, "plain", "plain", 0)

    @precondition(lambda self: len(self.instances) < 7)
    @rule(n=st.integers(1, 2), extra=st.integers(0, 2), root_only=st.booleans(), cell=st.integers(0, len(CELLS) - 1),
          agent=st.booleans(), name=st.sampled_from(["plain", "plain", "plain", "nasty"]),
          mounts=st.sampled_from(["plain", "var", "space", "shell", "none", "bind"]),
          slow=st.sampled_from([0, 0, 0, 3]))
    def make_instances(self, n, extra, root_only, cell, agent, name, mounts, slow=0):
        account, region = CELLS[cell]
        ec2 = self.ec2(account, region, direct=True)
        made = ec2.run_instances(ImageId="ami-12345678", MinCount=n, MaxCount=n, InstanceType="t3.micro")["Instances"]
        for inst in made:
            iid = inst["InstanceId"]
            k = len(self.instances) + 1
            nm = f"c{k}" if name == "plain" else f"{NASTY}{k}"
            ec2.create_tags(Resources=[iid], Tags=[{"Key": "Name", "Value": nm}])
            zone = inst["Placement"]["AvailabilityZone"]
            vols = [{"id": m["Ebs"]["VolumeId"], "device": m["DeviceName"], "root": True}
                    for m in inst.get("BlockDeviceMappings", [])]
            if not root_only:
                for j in range(extra):
                    vid = ec2.create_volume(AvailabilityZone=zone, Size=1)["VolumeId"]
                    dev = f"/dev/sd{'bcd'[j]}"
                    ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device=dev)
                    vols.append({"id": vid, "device": dev, "root": False})
            disks = []
            for j, v in enumerate(vols):
                if v["root"]:
                    mnts = ["/"]
                elif mounts == "none":
                    mnts = []   # LVM, md or LUKS: nothing ec2snap can find to freeze
                elif mounts == "var" and j == 1:
                    mnts = ["/var"]
                elif mounts == "space":
                    mnts = [f"/srv/my data{j}"]
                elif mounts == "shell":
                    mnts = [f"/srv/$(touch${{IFS}}{self.root_base}/pwned){j}"]
                elif mounts == "bind":
                    mnts = [f"/data{j}", f"/bind{j}"]
                else:
                    mnts = [f"/data{j}"]
                disks.append({"volume_id": v["id"], "device": v["device"], "root": v["root"], "mounts": mnts})
            root_dir = self.root_base / iid
            # A busy filesystem whose fsfreeze -f syncs for `slow` seconds.
            slowness = {m: slow for d in disks if not d["root"] for m in d["mounts"]} if slow else None
            fakeroot.make_root(str(root_dir), iid, disks, slow=slowness)
            self.lab.machines({iid: {"root": str(root_dir), "agent": agent}})
            self.instances[iid] = {"id": iid, "account": account, "region": region, "name": nm, "zone": zone,
                                   "volumes": vols, "root_dir": str(root_dir), "agent": agent, "mounts": mounts,
                                   "disks": disks}

    @rule(hours=st.sampled_from([1, 5, 23, 24, 24, 72, 24 * 10, 24 * 40]))
    def advance_clock(self, hours):
        self.lab.advance(hours * 3600)
        # The vault's own pruning, when runs made vault copies (no draw of its own: see vault_of).
        if self.vault_used:
            self.vault_prune("3 d" if hours < 72 else "10 d", 1 if hours > 24 else None)

    # --- by hand, as another admin would ----------------------------------------------------
    @rule(pick=st.integers(0, 50))
    def snapshot_by_hand(self, pick):
        inst = self.pick_instance(pick)
        vol = inst["volumes"][pick % len(inst["volumes"])]
        ec2 = self.ec2(inst["account"], inst["region"], direct=True)
        sid = ec2.create_snapshot(VolumeId=vol["id"], Description="manual snapshot before an upgrade")["SnapshotId"]
        self.origin[sid] = "hand"

    @rule(pick=st.integers(0, 500), what=st.sampled_from(["lock", "unlock", "delete", "tag", "error", "image"]))
    def by_hand(self, pick, what):
        snaps = sorted(self.snapshots().values(), key=lambda s: s["id"])
        if not snaps:
            return
        s = snaps[pick % len(snaps)]
        ec2 = self.ec2(s["account"], s["region"])
        if what == "lock":
            ec2.lock_snapshot(SnapshotId=s["id"], LockMode="governance", LockDuration=30)
        elif what == "unlock":
            try:
                ec2.unlock_snapshot(SnapshotId=s["id"])
            except ec2.exceptions.ClientError:
                pass
        elif what == "delete":
            try:
                ec2.delete_snapshot(SnapshotId=s["id"])
                self.held.discard(s["id"])
            except ec2.exceptions.ClientError:
                pass
        elif what == "tag":
            ec2.create_tags(Resources=[s["id"]], Tags=[{"Key": "ec2snap:set", "Value": NASTY}])
        elif what == "error":
            self.lab.states({s["id"]: "error"})
        elif what == "image":
            inst = self.pick_instance(pick)
            ec2 = self.ec2(inst["account"], inst["region"], direct=False)
            before = {x["SnapshotId"] for x in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
            ec2.create_image(InstanceId=inst["id"], Name=f"by-hand-{time.time_ns()}")
            for x in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]:
                if x["SnapshotId"] not in before:
                    self.origin[x["SnapshotId"]] = "hand"

    @rule(pick=st.integers(0, 500), release=st.integers(0, 3))
    def hold(self, pick, release):
        """`ec2snap hold` on one of this tool's snapshots of the base cell (its set with it), or
        `release` of one held."""
        self.steps += 1
        if release == 0 and self.held:
            sid = sorted(self.held)[pick % len(self.held)]
            r = self.lab.run(["release", sid, "-u"], report=False)
            self.outputs(r)
            if r.code == 0:
                self.held.discard(sid)
            return
        # The oldest of this tool's snapshots (those retention goes for first), or one at random.
        ours = [s["id"] for s in sorted(self.snapshots().values(), key=lambda s: (s["start"], s["id"]))
                if s["account"] == BASE_ACCOUNT and s["region"] == REGION
                and self.origin.get(s["id"], "").startswith("run:") and s["state"] == "completed"]
        if not ours:
            return
        sid = ours[pick % len(ours)] if pick % 3 == 0 else ours[pick % min(2, len(ours))]
        before = self.snapshots()
        # One line (a hold's reason may hold no control or bidi character), but nasty all the same.
        r = self.lab.run(["hold", sid, "--reason", "campaign $(touch held) `id` é", "-u"], report=False)
        self.outputs(r)
        if r.code != 0:
            self.fail("no-false-alarm", f"hold of {sid}: {r!r}")
            return
        set_id = before[sid]["tags"].get("ec2snap:set")
        for s in self.snapshots().values():
            # Its set in its own cell (copies elsewhere carry the set tag too: not held by this).
            home = s["account"] == BASE_ACCOUNT and s["region"] == REGION
            if s["id"] == sid or (home and set_id and s["tags"].get("ec2snap:set") == set_id):
                if "ec2snap:hold" not in s["tags"]:
                    self.fail("held-kept", f"{s['id']} not tagged by `hold {sid}`: {r!r}")
                self.held.add(s["id"])
        self.check_held(before, self.snapshots(), "hold")

    def check_held(self, before, after, what):
        gone = sorted(x for x in self.held if x in before and x not in after)
        if gone:
            self.fail("held-kept", f"held snapshots {gone} deleted by {what}")
        # What a person deleted by hand is no longer held.
        self.held &= set(after)

    def pick_instance(self, pick):
        ids = sorted(self.instances)
        return self.instances[ids[pick % len(ids)]]

    # --- backups --------------------------------------------------------------------------
    def fleet_args(self, f):
        """-r / --accounts for a fleet run, and the cells (account, region) it targets."""
        if f["fleet"] == "regions":
            return ["-r", REGION, "-r", OTHER], None, [(BASE_ACCOUNT, REGION), (BASE_ACCOUNT, OTHER)]
        if f["fleet"] in ("accounts", "all"):
            accounts = f["fleet_pick"]
            path = self.lab.dir / f"accounts-{time.time_ns()}.yml"
            lines = ["accounts:"]
            for k, a in enumerate(accounts):
                lines += [f"- account_id: '{a}'", f"  name: acct{a[:3]}-{k}", f"  role: {role_arn(a)}"]
            path.write_text("\n".join(lines) + "\n")
            extra = ["--accounts", str(path)]
            if f["fleet"] == "all":
                extra += ["-r", "all"]
                return extra, "all", sorted({(a, r) for a in accounts for r in (REGION, OTHER)})
            return extra, REGION, sorted({(a, REGION) for a in accounts})
        return [], REGION, [(BASE_ACCOUNT, REGION)]

    @rule(f=run_flags(), fault=FAULT, sig=SIGNAL, twice=st.integers(0, 7))
    def backup(self, f, fault, sig, twice):
        self.steps += 1
        extra, region, cells = self.fleet_args(f)
        args = to_args(f) + extra
        if region == "all":
            region = None
        targeted = [i for i in self.instances.values() if (i["account"], i["region"]) in cells]
        before = self.snapshots()
        states_before = self.instance_states()
        locks_before = self.locks()
        self.vault_used = self.vault_used or vault_of(f)[0]
        vault_before = self.vault_snapshots() if self.vault_used else {}
        clean = fault is None and sig is None
        predicted = None
        if f["real"] and clean and not f["fleet"] and not f["huge"]:
            predicted = self.predict(f, args, region)
        notify, notify_mode = notify_of(f)
        if notify:
            args += ["--notify", self.lab.listener.url(notify_mode)]
            self.lab.listener.clear()
        rules = fault_rules(fault)
        if rules:
            self.lab.faults(rules)
        lives = [self.lab.start(args, region=region)]
        if twice == 0 and sig is None:
            lives.append(self.lab.start(args, region=region))
        if sig:
            if isinstance(sig[1], str):
                # At a moment the log names: the signal lands inside that step.
                self.lab.wait_line(lives[0], sig[1])
            else:
                time.sleep(sig[1])
            self.lab.signal(lives[0], SIGNALS[sig[0]])
        results = [self.lab.finish(live) for live in lives]
        self.lab.clear_faults()
        # A killed run's call held by a delay still lands: counted in this step, not the next.
        self.lab.settle()
        after = self.snapshots()
        for r in results:
            for sid in set(after) - set(before):
                if any(sid in (q.get("_made") or []) for q in self.my_requests(r.key)):
                    self.origin[sid] = f"run:{r.key}"
        killed = sig is not None and sig[0] == "KILL"
        self.check_held(before, after, f"a backup run (flags {f})")
        if notify:
            self.check_notified(f, notify_mode, results, killed, clean)
        if f["fleet"] in ("accounts", "all") and len(set(f["fleet_pick"])) < len(f["fleet_pick"]):
            # The same account twice: bad input, refused before any request.
            for r in results:
                self.outputs(r)
                if r.code != 1 or self.my_requests(r.key):
                    self.fail("bad-input", f"an accounts file naming {f['fleet_pick']} was not refused: {r!r}")
                else:
                    self.check_bad_input(r)
            return
        for r in results:
            self.outputs(r)
            self.check_bad_input(r)
            if not f["real"]:
                self.check_dry(r)
            elif not killed:
                self.check_report(r, before, after)
                self.check_metrics(f, r)
        if f["real"]:
            self.check_floor(f, before, after, targeted)
            if f["copy"]:
                self.check_copy_floor(f, before, after, targeted)
            self.check_cool_off(results, locks_before)
            if not killed:
                self.check_not_stopped(states_before, results)
            scoped = fault is None or fault[0] == "refuse-account"
            if scoped and sig is None and not f["no_snap"]:
                self.check_isolation(f, results, before, after, targeted, fault)
            if clean and targeted and len(results) == 1 and results[0].code != 0:
                self.fail("no-false-alarm", f"{results[0]!r}")
            if predicted is not None and len(results) == 1:
                self.check_predicted(predicted, results[0])
        elif fault is None and sig is None and results[0].code not in (0,):
            self.fail("no-false-alarm", f"a dry run without fault: {results[0]!r}")
        if f["freeze"]:
            if not killed:
                self.check_thaw_sent(results)
            self.check_freeze(f, results, after)
        if self.vault_used:
            vault_after = self.vault_snapshots()
            gone = sorted(set(vault_before) - set(vault_after))
            if gone:
                self.fail("vault-kept", f"vault copies {gone} deleted by a backup run (flags {f})")
            if vault_of(f)[0] and f["real"] and clean and len(results) == 1:
                # The run's own targets: another account's shares are its own runs' to close.
                marked = sorted((s["id"], s["account"], s["region"], s["description"][:60], s["state"])
                                for s in after.values()
                                if "ec2snap:vault-shared" in s["tags"] and (s["account"], s["region"]) in cells)
                if marked:
                    self.fail("shares-closed", f"{marked} still marked shared after {results[0]!r}")
        self.killed = killed

    def vault_prune(self, age, keep):
        """The vault's own retention, with the vault's credentials: never below its floor."""
        self.steps += 1
        before = self.vault_snapshots()
        try:
            items = self.ec2(VAULT, REGION).describe_locked_snapshots().get("Snapshots", [])
        except Exception:  # noqa: BLE001 (no locks known)
            items = []
        locked = {i["SnapshotId"] for i in items if i.get("LockState") != "expired"}
        args = ["vault-prune", "--assume-role", PRUNE_ROLE, "--vault-max-age", *age.split(), "-u"]
        if keep:
            args += ["--vault-keep", str(keep)]
        r = self.lab.run(args, report=False)
        self.outputs(r)
        after = self.vault_snapshots()
        groups = {}
        for s in before.values():
            if s["region"] == REGION and "ec2snap:source-account" in s["tags"]:
                key = (s["tags"]["ec2snap:source-account"], s["tags"].get("ec2snap:source-volume"))
                groups.setdefault(key, []).append(s)
        for key, copies in groups.items():
            usable = sorted((c for c in copies if c["state"] == "completed"),
                            key=lambda c: (c["start"], c["id"]), reverse=True)
            for c in usable[:max(keep or 0, 1)]:
                if c["id"] not in after:
                    self.fail("vault-floor", f"{c['id']} of {key} deleted: among its {max(keep or 0, 1)} newest usable: {r!r}")
            for c in copies:
                if c["id"] in locked and c["id"] not in after:
                    self.fail("vault-floor", f"locked vault copy {c['id']} deleted: {r!r}")

    @precondition(lambda self: any(i["account"] != BASE_ACCOUNT for i in self.instances.values()))
    @rule(f=run_flags(), all_regions=st.booleans(), refuse=st.sampled_from([None, "111111111111", "222222222222"]))
    def fleet_backup(self, f, all_regions, refuse):
        """A run over the accounts that have instances, one of whose roles may be refused."""
        accounts = sorted({i["account"] for i in self.instances.values() if i["account"] != BASE_ACCOUNT}
                          | ({refuse} if refuse else set()))
        f = {**f, "real": True, "fleet": "all" if all_regions else "accounts", "fleet_pick": accounts}
        fault = ("refuse-account", refuse, 403, -1) if refuse else None
        self.backup(f, fault, None, 1)

    @precondition(lambda self: any(i["agent"] and i["account"] == BASE_ACCOUNT and i["region"] == REGION
                                   for i in self.instances.values()))
    @rule(f=run_flags(), sig=st.sampled_from(["TERM", "INT", "KILL"]), held=st.booleans())
    def interrupted_freeze(self, f, sig, held):
        """A freeze run signalled while an instance is frozen (its snapshot call held, or not):
        the thaw must still go out, and nothing may stay frozen."""
        f = {**f, "real": True, "freeze": True, "no_snap": False, "fleet": None,
             "freeze_timeout": f.get("freeze_timeout", 3), "hook_timeout": f.get("hook_timeout", 3)}
        action = "CreateSnapshots" if f["consistent"] else "CreateSnapshot"
        fault = ("delay", action, 2.0, 1) if held else None
        self.backup(f, fault, (sig, "Running the freeze hook of"), 1)

    def predict(self, f, args, region):
        """What list and a dry run with the same flags say the run will delete: (list ids, dry ids)."""
        list_args = ["list", "--json"] + [a for a in list_flags(args)]
        listed = self.lab.run(list_args, region=region)
        self.outputs(listed)
        dry = self.lab.run([a for a in args if a != "-u"], region=region)
        self.outputs(dry)
        self.check_dry(dry)
        marked = set()
        if listed.code == 0:
            doc = json.loads(listed.stdout)
            for target in doc.get("targets", [doc]):
                for inst in target.get("instances", []):
                    for vol in inst.get("volumes", []):
                        for s in vol.get("snapshots", []):
                            if s.get("verdict") == "delete" and s.get("id"):
                                marked.add(s["id"])
                            for c in s.get("copies", []) or []:
                                if c.get("verdict") == "delete" and c.get("id"):
                                    marked.add(c["id"])
        logged = set()
        for line in dry.lines():
            for prefix in ("[INFO] Deleting snapshot ", "[INFO] Deleting copy "):
                if line.startswith(prefix):
                    logged.add(line[len(prefix):].split()[0])
        return {"list": marked if listed.code == 0 else None, "dry": logged, "listed": listed, "dry_run": dry}

    def locks(self):
        out = {}
        for account, region in sorted(set(self.cells()) | {(a, OTHER) for a, _ in self.cells()}):
            try:
                for item in self.ec2(account, region).describe_locked_snapshots().get("Snapshots", []):
                    out[item["SnapshotId"]] = item.get("LockState")
            except Exception:  # noqa: BLE001 (an old boto3 without the call: no locks known)
                pass
        return out

    # --- restore and drill ----------------------------------------------------------------
    @rule(pick=st.integers(0, 50), ami=st.integers(0, 4))
    def restore(self, pick, ami):
        inst = self.pick_instance(pick)
        args = ["restore", "-t", "Name", inst["name"], "-u"]
        if ami == 0:
            args += ["--ami", f"restored-{time.time_ns()}"]
        r = self.lab.run(args, region=inst["region"])
        self.outputs(r)
        used = [q.get("SnapshotId") for q in self.my_requests(r.key) if q.get("Action") == "CreateVolume"]
        if ami == 0:
            used += [v for q in self.my_requests(r.key) if q.get("Action") == "RegisterImage"
                     for k, v in q.items() if k.endswith("Ebs.SnapshotId")]
        used = [u for u in used if u]
        if inst["account"] == BASE_ACCOUNT and used:
            origins = {u: self.origin.get(u, "unknown") for u in used}
            runs = set(origins.values())
            if "hand" in runs or len(runs) > 1:
                self.fail("one-point", f"restore of {inst['id']} used {origins}: {r!r}")
        self.delete_volumes_made(r.key, inst)

    def delete_volumes_made(self, key, inst):
        ec2 = self.ec2(inst["account"], inst["region"], direct=True)
        for q in self.my_requests(key):
            if q.get("Action") == "CreateVolume":
                for vid in q.get("_made") or []:
                    try:
                        ec2.delete_volume(VolumeId=vid)
                    except Exception:  # noqa: BLE001 (already gone)
                        pass

    @rule(twice=st.booleans(), sig=st.one_of(st.none(), st.just("TERM")))
    def drill(self, twice, sig):
        args = ["drill", "-t", "Name", "c*", "-u", "--drill-check", "sleep 2"]
        lives = [self.lab.start(args)]
        if twice:
            time.sleep(0.5)
            lives.append(self.lab.start(args))
        if sig:
            time.sleep(1.5)
            self.lab.signal(lives[0], SIGNALS[sig])
        results = [self.lab.finish(live) for live in lives]
        spans = {r.key: (r.started, r.ended) for r in results}
        made = {}
        for r in results:
            self.outputs(r)
            for q in self.my_requests(r.key):
                if q.get("Action") == "CreateVolume":
                    for vid in q.get("_made") or []:
                        made[vid] = r.key
        for r in results:
            for q in self.my_requests(r.key):
                if q.get("Action") == "DeleteVolume":
                    vid = q.get("VolumeId")
                    owner = made.get(vid)
                    if owner and owner != r.key:
                        start, end = spans[owner]
                        if q["_time"] < end:
                            self.fail("drill-own", f"{r.key} deleted {vid} made by {owner} while that drill ran: {r!r}")
        left = [v["VolumeId"] for v in self.ec2().describe_volumes()["Volumes"] if v["VolumeId"] in made]
        if left:
            self.fail("drill-own", f"volumes left after the drills: {left}: {results!r}")

    @rule(flags=st.sampled_from([[], ["-d", "2"], ["-g", "2", "d", "-d", "1"], ["--keep-daily", "3", "--consistent"]]))
    def list_backups(self, flags):
        r = self.lab.run(["list", "-t", "Name", "c*", *flags])
        self.outputs(r)

    @rule(odd=st.sampled_from(["endpoint-empty", "env-endpoint-empty", "accounts-fifo", "keep-huge",
                                "copy-age-huge", "lock-huge", "archive-huge", "parallel-huge"]))
    def odd_input(self, odd):
        """Values the flags accept, or ones a careless admin gives: no panic, no hang, exit 1 names it."""
        base = ["-t", "Name", "c*", "-u"]
        env = None
        endpoint = True
        if odd == "endpoint-empty":
            # Empty means unset, as in the AWS SDKs: the endpoint then comes from the environment
            # (here the lab's; without one the run would go to AWS itself, which this machine
            # cannot reach).
            args, endpoint = base + ["--endpoint-url", ""], False
            env = {"AWS_ENDPOINT_URL": self.lab.endpoint()}
        elif odd == "env-endpoint-empty":
            args, env = base, {"AWS_ENDPOINT_URL": ""}
        elif odd == "accounts-fifo":
            fifo = self.lab.dir / f"fifo-{time.time_ns()}"
            os.mkfifo(fifo)
            args = base + ["--accounts", str(fifo)]
        elif odd == "keep-huge":
            args = base + ["--keep-daily", "999999999", "--copy-to", OTHER, "--copy-lock", "governance"]
        elif odd == "copy-age-huge":
            args = base + ["-g", "1", "d", "--copy-to", OTHER, "--copy-max-age", "300000000", "y", "--copy-lock", "governance"]
        elif odd == "lock-huge":
            args = base + ["-g", "300000000", "y", "--lock", "governance"]
        elif odd == "archive-huge":
            args = base + ["-g", "1", "d", "--archive-after", "300000000", "y"]
        else:
            args = base + ["--parallel", "256", "--parallel-targets", "100"]
        r = self.lab.run(args, extra_env=env, timeout=15, connect=endpoint)
        self.outputs(r)
        self.check_bad_input(r)

    # --- checks ---------------------------------------------------------------------------
    def check_bad_input(self, r):
        if r.code == 1:
            writes = [q["Action"] for q in self.my_requests(r.key)]
            if writes:
                self.fail("bad-input", f"exit 1 after writes {writes}: {r!r}")

    def check_dry(self, r):
        changed = [q["Action"] for q in self.my_requests(r.key)
                   if not (q["Action"] == "SendCommand" and "DRY=1" in json.dumps(q.get("Parameters", "")))]
        if changed:
            self.fail("dry-run", f"a dry run sent {changed}: {r!r}")

    def check_metrics(self, f, r):
        path = r.metrics
        if not path or not os.path.exists(path):
            if r.code in (0, 2):
                self.fail("report", f"no metrics file: {r!r}")
            return
        text = open(path, encoding="utf-8", errors="surrogateescape").read()
        os.unlink(path)
        if f["copy"] and r.code in (0, 2) and f'ec2snap_copies_created{{' not in text:
            self.fail("report", f"no ec2snap_copies_created series for --copy-to {OTHER}: {text[:2000]}\n{r!r}")

    def check_report(self, r, before, after):
        doc = report_of(r)
        if doc is None:
            if r.code in (0, 2):
                self.fail("report", f"no report: {r!r}")
            return
        if doc.get("exit_code") != r.code:
            self.fail("report", f"the report says exit {doc.get('exit_code')}, the process {r.code}")
        if r.code in (0, 2) and (r.code == 2) != bool(errors_of(doc)):
            self.fail("report", f"exit {r.code} with errors {errors_of(doc)}: {r!r}")
        reqs = self.my_requests(r.key)
        made = {sid for q in reqs if q["Action"] in ("CreateSnapshot", "CreateSnapshots", "CopySnapshot")
                for sid in (q.get("_made") or [])}
        reported = set()
        for i in instances_of(doc):
            reported |= {s["id"] for s in i.get("snapshots", []) if s.get("id")}
            reported |= {c["id"] for c in i.get("copies", []) if c.get("id")}
        # A call in flight when a signal came is abandoned (exit 128+N): its snapshot may have been
        # made, and the report says exactly that (an `interrupted` error naming its volume or
        # instance) without an id it never got.
        interrupted = {e.get("resource") for e in errors_of(doc) if e.get("kind") == "interrupted"}
        for q in reqs:
            if q["Action"] in ("CreateSnapshot", "CreateSnapshots", "CopySnapshot") and \
                    (q.get("VolumeId") or q.get("InstanceSpecification.InstanceId") or q.get("SourceSnapshotId")) in interrupted:
                made -= set(q.get("_made") or [])
        if made != reported:
            self.fail("report", f"made {sorted(made)}, reported {sorted(reported)}: {r!r}")
        gone = {q["SnapshotId"] for q in reqs if q["Action"] == "DeleteSnapshot" and not q.get("_error")}
        said = {d["id"] for d in deleted_of(doc)}
        if gone != said:
            self.fail("report", f"deleted {sorted(gone)}, reported {sorted(said)}: {r!r}")

    def check_notified(self, f, mode, results, killed, clean):
        pings = self.lab.listener.seen()
        codes = [r.code for r in results]
        if not f["real"]:
            if pings:
                self.fail("notified", f"a dry run pinged {pings}: {results!r}")
            return
        if mode == "answer" and not killed:
            # A run whose command line is refused (exit 1) pings /fail without a /start; one that
            # could not go on after its start (exit 1 too: a set-up error) has its /start.
            starts = [p for p in pings if p == "/start"]
            ends = sorted(p for p in pings if p != "/start")
            want = sorted("" if c == 0 else "/fail" for c in codes)
            if not len([c for c in codes if c != 1]) <= len(starts) <= len(codes) or ends != want:
                self.fail("notified", f"pings {pings} for exit codes {codes} (flags {f})")
        for r in results:
            if "c4mpaign-token" in r.stdout + r.stderr:
                self.fail("notified", f"the --notify URL's token is in the output: {r!r}")
        if mode != "answer" and clean and len(results) == 1 and results[0].code != 0:
            self.fail("notify-exit-code", f"a run whose --notify target {mode}s exited {results[0].code}: {results[0]!r}")

    def check_floor(self, f, before, after, targeted):
        n = floor_of(f)
        if n == 0:
            return
        for inst in targeted:
            for v in inst["volumes"]:
                usable = sorted((s for s in list(before.values()) + [after[x] for x in set(after) - set(before)]
                                 if s["volume"] == v["id"] and s["state"] == "completed"),
                                key=lambda s: (s["start"], s["id"]), reverse=True)
                for s in usable[:n]:
                    if s["id"] not in after:
                        self.fail("floor", f"{s['id']} of {v['id']} deleted: it was among its {n} newest usable "
                                           f"{[x['id'] for x in usable[:n]]} (flags {f})")

    def check_copy_floor(self, f, before, after, targeted):
        n = copy_floor_of(f)
        for inst in targeted:
            for v in inst["volumes"]:
                copies = [s for s in list(before.values()) + [after[x] for x in set(after) - set(before)]
                          if s["tags"].get("ec2snap:source-volume") == v["id"] and s["region"] == OTHER]
                usable = sorted((c for c in copies if c["state"] == "completed"),
                                key=lambda s: (s["start"], s["id"]), reverse=True)
                for c in usable[:n]:
                    if c["id"] not in after:
                        states = {x["id"]: x["state"] for x in copies}
                        self.fail("copy-floor", f"copy {c['id']} of {v['id']} in {OTHER} deleted: among the {n} newest "
                                                f"usable copies; copies then {states} (flags {f})")

    def check_cool_off(self, results, locks_before):
        for r in results:
            for q in self.my_requests(r.key):
                if q["Action"] == "LockSnapshot" and q.get("LockMode") == "compliance" and not q.get("CoolOffPeriod"):
                    prior = locks_before.get(q.get("SnapshotId"))
                    if prior not in ("compliance", "compliance-cooloff"):
                        self.fail("cool-off", f"{q.get('SnapshotId')} locked in compliance mode without a cool-off "
                                              f"(its lock before: {prior}): {r!r}")

    def check_not_stopped(self, states_before, results):
        now = self.instance_states()
        stopped = [i for i, s in now.items() if i in self.instances and s != "running"]
        if stopped:
            self.fail("not-stopped", f"instances {stopped} left {[now[i] for i in stopped]}: {results!r}")

    def check_isolation(self, f, results, before, after, targeted, fault):
        for r in results:
            # Killed, or refused as bad input before any request (bad-input's promise): no target
            # ran, so none changed another's outcome.
            if r.code < 0 or r.code > 100 or r.code == 1:
                return
        new = [after[x] for x in set(after) - set(before)]
        for inst in targeted:
            if fault and fault[0] == "refuse-account" and inst["account"] == fault[1]:
                continue
            for v in inst["volumes"]:
                if f["no_root"] and v["root"]:
                    continue
                mine = [s["id"] for s in new if s["volume"] == v["id"]]
                if not mine:
                    self.fail("isolation", f"{inst['id']} {v['device']} ({inst['account']}/{inst['region']}) got no "
                                           f"snapshot: {results!r}")
                if len(mine) > len(results):
                    self.fail("once", f"{inst['id']} {v['device']} got {len(mine)} snapshots from {len(results)} run(s): "
                                      f"{mine}: {results!r}")

    def check_predicted(self, predicted, r):
        deleted = {q["SnapshotId"] for q in self.my_requests(r.key) if q["Action"] == "DeleteSnapshot"}
        if predicted["dry"] != deleted:
            self.fail("predicted", f"the dry run said {sorted(predicted['dry'])}, the run deleted {sorted(deleted)}: "
                                   f"{predicted['dry_run']!r}\n{r!r}")
        if predicted["list"] is not None and predicted["list"] != deleted:
            self.fail("predicted", f"list marked {sorted(predicted['list'])} DELETE, the run deleted {sorted(deleted)}: "
                                   f"{predicted['listed']!r}\n{r!r}")

    def check_thaw_sent(self, results):
        for r in results:
            sent = [q for q in self.my_requests(r.key) if q["Action"] == "SendCommand"]
            for q in sent:
                script = json.dumps(q.get("Parameters", ""))
                # A freeze no agent took (refused: no agent, no permission) has nothing to thaw.
                if q.get("Comment") != "ec2snap freeze" or "DRY=1" in script or q.get("_error"):
                    continue
                iid = (q.get("InstanceIds") or [""])[0]
                thawed = any(t["_time"] >= q["_time"] and (t.get("InstanceIds") or [""])[0] == iid
                             and t.get("Comment") == "ec2snap thaw" for t in sent)
                if not thawed:
                    self.fail("thaw-sent", f"{iid} was sent a freeze and no thaw: {r!r}")

    def check_freeze(self, f, results, after):
        bound = f["freeze_timeout"] + 3
        # Let every watchdog fire (or not) before judging.
        deadline = time.time() + bound + max(f["hook_timeout"], 1) + 1
        roots = [i["root_dir"] for i in self.instances.values() if i["agent"]]
        # A freeze still syncing (its script still running) counts too: it may freeze later.
        while time.time() < deadline and any(fakeroot.settled(root) for root in roots):
            time.sleep(0.2)
        if (self.root_base / "pwned").exists():
            self.fail("inert", f"a mount point's name was run as code: {results!r}")
        for inst in self.instances.values():
            if not inst["agent"]:
                continue
            ivs = fakeroot.intervals(inst["root_dir"])
            for iv in ivs:
                end = iv["end"] if iv["end"] is not None else time.time()
                # The watchdog counts from the last freeze of the script that froze it.
                last = max(o["start"] for o in ivs if o["ppid"] == iv["ppid"])
                if end - last > bound:
                    self.fail("thawed", f"{inst['id']} {iv['mnt']} frozen {end - iv['start']:.1f} s "
                                        f"(--freeze-timeout {f['freeze_timeout']}){' and still is' if iv['end'] is None else ''}: {results!r}")
        calls = {}
        for r in results:
            for q in self.my_requests(r.key):
                if q["Action"] in ("CreateSnapshot", "CreateSnapshots"):
                    for sid in q.get("_made") or []:
                        calls[sid] = (q["_time"], q.get("_done", q["_time"]))
        for sid, (t0, t1) in calls.items():
            s = after.get(sid)
            if not s or s["tags"].get("ec2snap:consistency") != "application":
                continue
            inst = next((i for i in self.instances.values() if any(v["id"] == s["volume"] for v in i["volumes"])), None)
            if inst is None:
                continue
            vol = next(v for v in inst["volumes"] if v["id"] == s["volume"])
            mounts = next(d["mounts"] for d in inst["disks"] if d["volume_id"] == vol["id"])
            if vol["root"] or not mounts:
                self.fail("application", f"{sid} of {vol['id']} ({vol['device']}, root={vol['root']}) tagged application, "
                                         f"but no filesystem of it can be frozen: {results!r}")
                continue
            ivs = fakeroot.intervals(inst["root_dir"])
            for m in mounts:
                dev = fakeroot.device_of(inst["root_dir"], m)
                held = any(iv["dev"] == dev and iv["start"] <= t0 and (iv["end"] is None or iv["end"] >= t1) for iv in ivs)
                if not held:
                    self.fail("application", f"{sid} of {vol['id']} tagged application, but {m} was not frozen "
                                             f"during its call ({t0:.3f}-{t1:.3f}); freezes {[iv for iv in ivs if iv['mnt'] == m]}: {results!r}")

    def teardown(self):
        # The next run after the last step: a SIGKILLed run's instance must be started again and
        # nothing may stay frozen.
        if self.killed and self.instances:
            r = self.lab.run(["-t", "Name", "c*", "-n", "-u"])
            self.outputs(r)
            self.check_not_stopped({}, [r])


def list_flags(args):
    """The flags of a run that list takes too (selection, retention, copies)."""
    keep = {"-t": 2, "-g": 2, "-d": 1, "--keep-hourly": 1, "--keep-daily": 1, "--keep-weekly": 1,
            "--keep-monthly": 1, "--keep-yearly": 1, "--utc": 0, "--consistent": 0, "--copy-to": 1,
            "--copy-keep": 1, "--copy-max-age": 2, "-n": 0, "-H": 0, "-o": 0, "-e": 1}
    out, i = [], 0
    while i < len(args):
        a = args[i]
        if a in keep:
            out += args[i:i + 1 + keep[a]]
            i += 1 + keep[a]
            continue
        i += 1
    return out
