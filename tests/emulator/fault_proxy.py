#!/usr/bin/env python3
"""A small fault-injecting HTTP proxy for the EC2 query API, to put between ec2snap and an emulator.

    fault_proxy.py --port 0 --upstream http://127.0.0.1:5000

prints "PORT <n>" on its first line once it listens. Every request is forwarded to the upstream
unless a rule says otherwise. Control endpoints (JSON):

    POST   /__faults   a list of rules, appended; DELETE /__faults clears them
    GET    /__requests the parameters of every request that changes something (not Describe*, not
                       DryRun), in order, with the time it arrived, the access key id that signed it
                       ("" if unsigned) and the time its answer was ready:
                       [{"Action": ..., "Param.1": ..., "_time": 1764740000.123, "_signer": "AKID",
                         "_done": 1764740000.456}]; an answer other than 200 adds its error code,
                       "_error": "RequestLimitExceeded"; a 200 answer of CreateSnapshot(s),
                       CopySnapshot, CreateVolume, CreateImage or RegisterImage adds the ids it made,
                       in order, "_made": ["snap-1", ...]; and each DescribeSnapshots answer's states
                       as the client saw them, when it went out:
                       {"Action": "DescribeSnapshots", "_states": {"snap-1": "pending"}, "_time": ..};
                       DELETE clears them
    GET    /__stats    {"counts": {Action: n}, "total": n, "signers": {"KEYID/region": n},
                        "max_in_flight": n, "max_writes_in_flight": n};
           DELETE /__stats resets the counts
    POST   /__machines instances whose SSM agent this proxy plays (merged; null removes one):
                       {"i-abc": {"root": "/abs/dir", "agent": true, "delivery_delay": 0}};
                       GET /__machines answers them with the commands each ran:
                       {"i-abc": {"root": .., "agent": .., "commands": [{"command_id": .., "script": ..,
                         "started": epoch|null, "ended": epoch|null, "exit_code": n|null,
                         "status": "Pending"|"InProgress"|"Success"|"Failed"|"Cancelled"|
                                   "DeliveryTimedOut"|"TimedOut"}]}}
    POST   /__states   snapshot states DescribeSnapshots answers show, whatever moto says (merged;
                       null removes one): {"snap-1": "error", "snap-2": "pending"}; GET answers them
    POST   /__reset    everything back as a fresh proxy has it: rules, request log, counts, signers,
                       maxima, copies, tiers, locks, machines (their running commands killed), states

A rule: {"action": "CreateSnapshot",   # EC2 Action it applies to ("*" for any)
         "times": 2,                   # how many matching requests it applies to (-1: all)
         "skip": 0,                    # let this many matching requests through first
         "delay": 0.5,                 # seconds to wait before answering
         "status": 503, "code": "RequestLimitExceeded", "message": "...",   # answer an error
         "rewrite": [["<name>stopped</name>", "<name>stopping</name>"]],     # edit the answer
         "rewrite_re": [["(snap-1</snapshotId>.*?<status>)completed", "\\1pending"]],  # by regex
         "page_size": 10,              # serve a Describe* list in pages of this size (NextToken)
         "match": "snap-123"}          # only requests whose body holds this text
A request with DryRun=true (a permission check) is counted and matched as "DryRun:<Action>".
Requests are counted by Action whatever the rules do.

Where moto differs from AWS, the proxy makes the answers AWS's:
- Control characters in moto's XML (a tag value with an ESC) go out as character references
  (&#x1B;), as AWS sends them, not raw (which no XML parser takes).
- An injected error of an STS action (AssumeRole) has STS's shape (ErrorResponse), not EC2's, and
  one of SSM (a JSON-protocol service, whose action is in X-Amz-Target) SSM's JSON shape.
- CreateSnapshots with CopyTagsFromSource=volume: each new snapshot gets its volume's tags (moto
  ignores the parameter); a key the request itself sets keeps the request's value.
- ModifySnapshotTier and RestoreSnapshotTier, which moto lacks: answered here; DescribeSnapshots
  answers then give archived snapshots <storageTier>archive</storageTier> (a restore asked for
  takes hours on AWS: they stay archived; asked again, IncorrectState).
- RegisterImage: moto replaces the snapshots named in the block device mappings by snapshots of
  its own; DescribeImages answers here show the ones named, as AWS does.
- Snapshot locks, which moto lacks: LockSnapshot, UnlockSnapshot and DescribeLockedSnapshots are
  answered here from lock state kept here (times on the emulator's clock, --clock), and a
  DeleteSnapshot of a locked snapshot gets AWS's error SnapshotLocked.
- A snapshot made by CopySnapshot has the VolumeId vol-ffffffff in DescribeSnapshots answers, as
  on AWS (moto keeps the source's volume id).
- SSM Run Command, which moto only pretends (its SendCommand runs nothing, its invocations always
  say Success), is real for the instances of POST /__machines: this proxy is their SSM agent.
  - SendCommand to one whose "agent" is false (default true) gets AWS's answer for an instance
    without a running agent: 400 InvalidInstanceId "Instances [[i-abc]] not in a valid state for
    account 123456789012", nothing forwarded.
  - Else moto answers it (its CommandId is kept) and the script (Parameters.commands joined by
    newlines) runs here with sh -c, in a session of its own, in the machine's root, with the
    proxy's environment plus PATH=<root>/bin:$PATH, EC2SNAP_MOUNTS=<root>/mounts,
    EC2SNAP_SYS=<root>/sys, EC2SNAP_STATE_DIR=<root>/run and FAKE_ROOT=<root>; its output goes to
    <root>/ssm/<command id>.out and .err. It starts "delivery_delay" seconds late (default 0); if
    that is more than the command's TimeoutSeconds (default 3600) it never starts: DeliveryTimedOut.
    Parameters.executionTimeout (default 3600 s) kills its process group (SIGKILL): TimedOut.
  - GetCommandInvocation of such a command is answered here, in moto's shape: Status Pending,
    InProgress, Success (exit 0), Failed, Cancelled, DeliveryTimedOut or TimedOut; ResponseCode
    the exit status once it ended with one (Success, Failed), else -1; the output as AWS keeps it
    (its first 24000 characters).
  - CancelCommand of such a command (of the InstanceIds given, else of all) is answered here: {}
    after its pending or running invocations are cancelled (process group killed with SIGKILL).
  The fault rules apply to these SSM actions first, as to any other.
"""
import argparse
import calendar
import datetime
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


# moto answers control characters (a tag value with an ESC) raw, which no XML parser takes; the
# proxy's own parsing carries each as a private-use character and gives it back raw.
RAW_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CARRIED = re.compile("[\ue000-\ue07f]")
CONTROL_REF = re.compile(rb"&#x(0?[0-8BCEF]|1[0-9A-F]|7F);", re.IGNORECASE)


def xml_in(body):
    """ET.fromstring that takes moto's raw control characters."""
    if isinstance(body, str):
        body = body.encode()
    return ET.fromstring(RAW_CONTROL.sub(lambda m: chr(0xE000 + m.group()[0]).encode(), body))


def xml_out(root):
    """ET.tostring with the control characters xml_in carried given back raw."""
    text = ET.tostring(root, encoding="unicode")
    text = CARRIED.sub(lambda m: chr(ord(m.group()) - 0xE000), text)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + text.encode()


LOCK = threading.Lock()
RULES = []
COUNTS = {}
# "<access key id>/<region>" from each request's SigV4 Authorization header, counted.
SIGNERS = {}
# Requests being answered right now, and the most there ever were at once; the same for writes
# (every Action but Describe*).
IN_FLIGHT = 0
MAX_IN_FLIGHT = 0
WRITES_IN_FLIGHT = 0
MAX_WRITES_IN_FLIGHT = 0
UPSTREAM = None
# The parameters of each write request, in order (GET /__requests).
REQUESTS = []
# Snapshot ids made by CopySnapshot through this proxy.
COPIES = set()
# Snapshots in the archive tier (ModifySnapshotTier, which moto lacks): id -> when it was asked.
ARCHIVED = {}
# Archived snapshots whose restore to the standard tier was asked for (RestoreSnapshotTier): it
# takes hours on AWS, so here they stay archived.
RESTORING = set()
# Snapshot locks: id -> {"mode", "created", "expires", "cool_off_until", "duration"} (epoch seconds).
LOCKS = {}
# moto_server.py's clock file: its offset (seconds) moves this proxy's clock too.
CLOCK_FILE = None
# The instances whose SSM agent this proxy plays (POST /__machines): id -> {"root", "agent",
# "delivery_delay"?, "commands": [the record of each Run sent to it, in order]}.
MACHINES = {}
# Their commands: (command id, instance id) -> Run.
RUNS = {}
# Snapshot states every DescribeSnapshots answer shows, whatever moto says (POST /__states).
STATES = {}
# RegisterImage's own block device mappings, which moto replaces by snapshots of its own: image
# id -> {device: snapshot id}, shown in DescribeImages answers as AWS shows them.
IMAGES = {}


def now():
    offset = 0.0
    if CLOCK_FILE:
        try:
            with open(CLOCK_FILE, encoding="utf-8") as f:
                text = f.read().strip()
            offset = float(text) if text else 0.0
        except FileNotFoundError:
            pass
    return time.time() + offset


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))


def ssm_time(t):
    """A time as moto's SSM writes it: '2026-12-04T18:58:10.193863' (UTC, no zone)."""
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds")


def kill_group(proc):
    """SIGKILL to the process group of a script still running (its own: start_new_session)."""
    if proc is not None and proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class Run:
    """One SendCommand's script on one registered machine, run here as its SSM agent would."""

    def __init__(self, command_id, instance_id, machine, params):
        parameters = params.get("Parameters", [{}])[0] or {}
        self.command_id, self.instance_id = command_id, instance_id
        self.root = machine["root"]
        self.script = "\n".join(parameters.get("commands", []))
        self.comment = params.get("Comment", [""])[0]
        self.execution_timeout = float((parameters.get("executionTimeout") or ["3600"])[0])
        self.delivery_timeout = float(params.get("TimeoutSeconds", [3600])[0])
        self.delay = float(machine.get("delivery_delay") or 0)
        self.out = os.path.join(self.root, "ssm", f"{command_id}.out")
        self.err = os.path.join(self.root, "ssm", f"{command_id}.err")
        # Why the script could not be started, if it could not (shown as its standard error).
        self.failure = ""
        self.proc = None
        self.cancelled = False
        # Set by a cancel: ends the wait for the delivery at once.
        self.wake = threading.Event()
        # What GET /__machines shows; changed under LOCK.
        self.record = {"command_id": command_id, "script": self.script, "started": None, "ended": None,
                       "exit_code": None, "status": "Pending"}

    def run(self):
        """The delivery (late by delivery_delay, or never past TimeoutSeconds), then the script."""
        self.wake.wait(min(self.delay, self.delivery_timeout))
        with LOCK:
            if self.cancelled:
                return
            if self.delay > self.delivery_timeout:
                self.record.update(status="DeliveryTimedOut", ended=time.time())
                return
        root = self.root
        env = dict(os.environ, PATH=f"{root}/bin:{os.environ.get('PATH', '')}", EC2SNAP_MOUNTS=f"{root}/mounts",
                   EC2SNAP_SYS=f"{root}/sys", EC2SNAP_STATE_DIR=f"{root}/run", FAKE_ROOT=root)
        try:
            os.makedirs(os.path.dirname(self.out), exist_ok=True)
            with open(self.out, "wb") as out, open(self.err, "wb") as err:
                proc = subprocess.Popen(["sh", "-c", self.script], cwd=root, env=env, stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=err, start_new_session=True)
        except OSError as e:
            with LOCK:
                self.failure = f"cannot start the script: {e}"
                if not self.cancelled:
                    self.record.update(status="Failed", ended=time.time())
            return
        with LOCK:
            self.proc = proc
            self.record["started"] = time.time()
            if self.cancelled:
                # Cancelled while it was being started.
                kill_group(proc)
            else:
                self.record["status"] = "InProgress"
        timed_out = False
        try:
            code = proc.wait(timeout=self.execution_timeout)
        except subprocess.TimeoutExpired:
            with LOCK:
                kill_group(proc)
            code = proc.wait()
            timed_out = True
        with LOCK:
            self.record.update(ended=time.time(), exit_code=code)
            if self.cancelled:
                pass
            elif timed_out:
                self.record["status"] = "TimedOut"
            else:
                self.record["status"] = "Success" if code == 0 else "Failed"

    def cancel(self):
        """CancelCommand: a pending or running invocation ends Cancelled, its processes killed."""
        with LOCK:
            if self.record["status"] not in ("Pending", "InProgress"):
                return
            self.cancelled = True
            self.record["status"] = "Cancelled"
            if self.proc is None:
                self.record["ended"] = time.time()
            kill_group(self.proc)
        self.wake.set()

    def invocation(self):
        """GetCommandInvocation's answer, in moto's shape."""
        with LOCK:
            record = dict(self.record)
        status, started, ended = record["status"], record["started"], record["ended"]
        # The SSM times are on the emulator's clock, as moto's are.
        offset = now() - time.time()
        elapsed = ""
        if started is not None:
            elapsed = f"PT{(ended if ended is not None else time.time()) - started:.3f}S"
        code = record["exit_code"]
        if status not in ("Success", "Failed") or code is None or code < 0:
            code = -1

        def content(path, extra=""):
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read()
            except OSError:
                text = ""
            # AWS keeps the first 24000 characters of each.
            return (text + extra)[:24000]

        return {
            "CommandId": self.command_id,
            "InstanceId": self.instance_id,
            "Comment": self.comment,
            "DocumentName": "AWS-RunShellScript",
            "PluginName": "aws:runShellScript",
            "ResponseCode": code,
            "ExecutionStartDateTime": ssm_time(started + offset) if started is not None else "",
            "ExecutionElapsedTime": elapsed,
            "ExecutionEndDateTime": ssm_time(ended + offset) if started is not None and ended is not None else "",
            "Status": status,
            "StatusDetails": "ExecutionTimedOut" if status == "TimedOut" else status,
            "StandardOutputContent": content(self.out),
            "StandardOutputUrl": "",
            "StandardErrorContent": content(self.err, self.failure),
        }


def lock_item(sid, lock, t):
    if lock["expires"] <= t:
        state = "expired"
    elif lock["mode"] == "compliance" and lock.get("cool_off_until", 0) > t:
        state = "compliance-cooloff"
    else:
        state = lock["mode"]
    extra = ""
    if lock.get("cool_off_until"):
        extra = f"<coolOffPeriod>{lock['cool_off']}</coolOffPeriod><coolOffPeriodExpiresOn>{iso(lock['cool_off_until'])}</coolOffPeriodExpiresOn>"
    return (f"<snapshotId>{sid}</snapshotId><lockState>{state}</lockState>"
            f"<lockDuration>{lock['duration']}</lockDuration>{extra}"
            f"<lockCreatedOn>{iso(lock['created'])}</lockCreatedOn>"
            f"<lockExpiresOn>{iso(lock['expires'])}</lockExpiresOn>"
            f"<lockDurationStartTime>{iso(lock['created'])}</lockDurationStartTime>")


def locks(action, params):
    """The answer of a lock action, or of a DeleteSnapshot of a locked snapshot; None: not ours."""
    one = lambda k: params.get(k, [""])[0]
    t = now()
    head = '<?xml version="1.0" encoding="UTF-8"?>\n'
    ns = 'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"'
    if action == "LockSnapshot":
        sid = one("SnapshotId")
        if one("LockDuration"):
            days = int(one("LockDuration"))
            expires = t + days * 86400
        else:
            expires = calendar.timegm(time.strptime(one("ExpirationDate")[:19], "%Y-%m-%dT%H:%M:%S"))
            days = max(1, round((expires - t) / 86400))
        with LOCK:
            old = LOCKS.get(sid)
            if old and old["expires"] > t and old["mode"] == "compliance" and old.get("cool_off_until", 0) <= t and expires < old["expires"]:
                return 400, [("Content-Type", "text/xml")], error_body("IncorrectState", f"The lock on {sid} cannot be shortened.")
            live = old if old and old["expires"] > t else None
            past_cool_off = live and live["mode"] == "compliance" and live.get("cool_off_until", 0) <= t
            if one("CoolOffPeriod") and past_cool_off:
                # AWS: an extension of a compliance lock past its cool-off must omit it.
                return 400, [("Content-Type", "text/xml")], error_body(
                    "InvalidParameterCombination", f"The cooling-off period of {sid} has expired.")
            lock = {"mode": one("LockMode"), "created": t, "expires": expires, "duration": days}
            if one("LockMode") == "compliance" and one("CoolOffPeriod"):
                # A first compliance lock, a governance lock made compliance, or a change within
                # the cool-off: the cool-off runs from now.
                lock["cool_off"] = int(one("CoolOffPeriod"))
                lock["cool_off_until"] = t + int(one("CoolOffPeriod")) * 3600
            elif live and live["mode"] == "compliance" and not past_cool_off and one("LockMode") == "compliance":
                # Changed within the cool-off without one: it ends now (compliance at once).
                pass
            LOCKS[sid] = lock
        body = f"{head}<LockSnapshotResponse {ns}><requestId>fault-proxy</requestId>{lock_item(sid, lock, t)}</LockSnapshotResponse>"
        return 200, [("Content-Type", "text/xml")], body.encode()
    if action == "UnlockSnapshot":
        sid = one("SnapshotId")
        with LOCK:
            lock = LOCKS.get(sid)
            if lock and lock["mode"] == "compliance" and lock.get("cool_off_until", 0) <= t and lock["expires"] > t:
                return 400, [("Content-Type", "text/xml")], error_body("IncorrectState", f"{sid} is locked in compliance mode.")
            LOCKS.pop(sid, None)
        body = f"{head}<UnlockSnapshotResponse {ns}><requestId>fault-proxy</requestId><snapshotId>{sid}</snapshotId></UnlockSnapshotResponse>"
        return 200, [("Content-Type", "text/xml")], body.encode()
    if action == "DescribeLockedSnapshots":
        wanted = [v[0] for k, v in params.items() if k.startswith("SnapshotId.")]
        with LOCK:
            items = [f"<item><ownerId>123456789012</ownerId>{lock_item(sid, lock, t)}</item>"
                     for sid, lock in sorted(LOCKS.items()) if not wanted or sid in wanted]
        body = f"{head}<DescribeLockedSnapshotsResponse {ns}><requestId>fault-proxy</requestId><snapshotSet>{''.join(items)}</snapshotSet></DescribeLockedSnapshotsResponse>"
        return 200, [("Content-Type", "text/xml")], body.encode()
    if action == "ModifySnapshotTier":
        sid = one("SnapshotId")
        with LOCK:
            ARCHIVED[sid] = t
        body = (f"{head}<ModifySnapshotTierResponse {ns}><requestId>fault-proxy</requestId>"
                f"<snapshotId>{sid}</snapshotId><tieringStartTime>{iso(t)}</tieringStartTime></ModifySnapshotTierResponse>")
        return 200, [("Content-Type", "text/xml")], body.encode()
    if action == "RestoreSnapshotTier":
        sid = one("SnapshotId")
        with LOCK:
            again = sid in RESTORING
            RESTORING.add(sid)
        if again:
            return 400, [("Content-Type", "text/xml")], error_body("IncorrectState", f"The snapshot {sid} is already being restored.")
        body = (f"{head}<RestoreSnapshotTierResponse {ns}><requestId>fault-proxy</requestId>"
                f"<snapshotId>{sid}</snapshotId><restoreStartTime>{iso(t)}</restoreStartTime>"
                f"<restoreDuration>{one('TemporaryRestoreDays') or 0}</restoreDuration>"
                f"<isPermanentRestore>false</isPermanentRestore></RestoreSnapshotTierResponse>")
        return 200, [("Content-Type", "text/xml")], body.encode()
    if action == "DeleteSnapshot":
        sid = one("SnapshotId")
        with LOCK:
            lock = LOCKS.get(sid)
        if lock and lock["expires"] > t:
            message = f"The snapshot '{sid}' is locked and can't be deleted."
            return 400, [("Content-Type", "text/xml")], error_body("SnapshotLocked", message)
    return None

# The list element of each paginated Describe answer.
LIST_ELEMENT = {
    "DescribeSnapshots": "snapshotSet",
    "DescribeVolumes": "volumeSet",
    "DescribeInstances": "reservationSet",
}


def record_states(answer):
    """A DescribeSnapshots answer's snapshot states, as sent, in the request log."""
    try:
        root = xml_in(answer)
    except ET.ParseError:
        return
    states = {}
    for item in root.iter():
        sid, status = item.find("{*}snapshotId"), item.find("{*}status")
        if sid is not None and status is not None:
            states[sid.text] = status.text
    with LOCK:
        REQUESTS.append({"Action": "DescribeSnapshots", "_states": states, "_time": time.time()})


def registered_mappings(params, answer):
    """Keeps the snapshots a RegisterImage named, by device, under the image moto made."""
    made = xml_in(answer).find("{*}imageId")
    if made is None:
        return
    wanted = {}
    for key, value in params.items():
        m = re.fullmatch(r"BlockDeviceMapping\.(\d+)\.Ebs\.SnapshotId", key)
        if m:
            device = params.get(f"BlockDeviceMapping.{m.group(1)}.DeviceName", [""])[0]
            wanted[device] = value[0]
    if wanted:
        with LOCK:
            IMAGES[made.text] = wanted


def images_as_registered(body):
    """A DescribeImages answer with each registered image's own snapshots (see IMAGES)."""
    with LOCK:
        images = dict(IMAGES)
    root = xml_in(body)
    ns = root.tag[1 : root.tag.index("}")] if root.tag.startswith("{") else ""
    ET.register_namespace("", ns)
    changed = False
    for item in root.iter():
        image = item.find("{*}imageId")
        if image is None or image.text not in images:
            continue
        for mapping in item.iterfind(".//{*}blockDeviceMapping/{*}item"):
            device, sid = mapping.find("{*}deviceName"), mapping.find(".//{*}snapshotId")
            if device is not None and sid is not None and device.text in images[image.text]:
                sid.text = images[image.text][device.text]
                changed = True
    return xml_out(root) if changed else body


def forced_states(body):
    """A DescribeSnapshots answer with the states of POST /__states, whatever moto said."""
    with LOCK:
        states = dict(STATES)
    root = xml_in(body)
    ns = root.tag[1 : root.tag.index("}")] if root.tag.startswith("{") else ""
    ET.register_namespace("", ns)
    changed = False
    for item in root.iter():
        sid, status, progress = item.find("{*}snapshotId"), item.find("{*}status"), item.find("{*}progress")
        if sid is not None and status is not None and sid.text in states:
            status.text = states[sid.text]
            if progress is not None:
                progress.text = "0%" if states[sid.text] == "pending" else "100%"
            changed = True
    return xml_out(root) if changed else body


# The element that names what each creating action made, in its answer (for "_made").
MADE = {
    "CreateSnapshot": "snapshotId",
    "CreateSnapshots": "snapshotId",
    "CopySnapshot": "snapshotId",
    "CreateVolume": "volumeId",
    "CreateImage": "imageId",
    "RegisterImage": "imageId",
    # STS: the access key id of the credentials it handed out, to tell whose requests they sign.
    "AssumeRole": "AccessKeyId",
}


def made_ids(action, answer):
    """The ids a 200 answer of a creating action names as made, in order. A description or tag
    with a control character (a hostile Name tag) is in the answer as a character reference that
    XML 1.0 parsers refuse: read as "?" here, as the campaign's own reads see it."""
    try:
        root = xml_in(CONTROL_REF.sub(b"?", RAW_CONTROL.sub(b"?", answer)))
    except ET.ParseError:
        return []
    return [e.text for e in root.iterfind(f".//{{*}}{MADE[action]}")]


def error_code(status, answer):
    """The error code of an answer other than 200: SSM's JSON __type, else EC2's or STS's <Code>,
    else the HTTP status."""
    try:
        code = json.loads(answer).get("__type", "")
        if code:
            return str(code).rsplit("#", 1)[-1]
    except (ValueError, AttributeError):
        pass
    found = re.search(rb"<Code>(.*?)</Code>", answer)
    return found.group(1).decode("utf-8", "replace") if found else str(status)


def take_rule(action, body=b""):
    """The first rule that applies to this request, consuming one of its uses."""
    with LOCK:
        for rule in RULES:
            if rule.get("action", "*") not in ("*", action):
                continue
            if rule.get("match") and rule["match"].encode() not in body:
                continue
            if rule.get("skip", 0) > 0:
                rule["skip"] -= 1
                continue
            times = rule.get("times", -1)
            if times == 0:
                continue
            if times > 0:
                rule["times"] = times - 1
            return dict(rule)
    return None


def signer_of(authorization):
    """'AKID/eu-west-1' from 'AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/ec2/aws4_request, ...'."""
    for part in authorization.replace(",", " ").split():
        if part.startswith("Credential="):
            fields = part[len("Credential=") :].split("/")
            if len(fields) >= 3:
                return f"{fields[0]}/{fields[2]}"
    return None


# Actions of STS (which the SDKs send to the same endpoint URL): their errors have STS's shape.
STS_ACTIONS = {"AssumeRole", "GetCallerIdentity", "GetSessionToken"}


# Actions of SSM (JSON protocol): their errors are JSON.
SSM_ACTIONS = {"SendCommand", "GetCommandInvocation", "CancelCommand", "ListCommandInvocations"}


def error_body(code, message, action=""):
    if action in SSM_ACTIONS:
        return json.dumps({"__type": code, "message": message}).encode()
    if action in STS_ACTIONS:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
            f"<Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>fault-proxy</RequestId></ErrorResponse>"
        ).encode()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
        f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
        "<RequestID>fault-proxy</RequestID></Response>"
    ).encode()


def paginate(body, action, params, page_size):
    """Cuts the full answer into one page, with a nextToken when more remain."""
    root = xml_in(body)
    ns = root.tag[1 : root.tag.index("}")] if root.tag.startswith("{") else ""
    ET.register_namespace("", ns)
    q = (lambda t: f"{{{ns}}}{t}") if ns else (lambda t: t)
    listing = root.find(q(LIST_ELEMENT[action]))
    if listing is None:
        return body
    items = list(listing)
    start = int(params.get("NextToken", ["0"])[0] or 0)
    for item in items:
        listing.remove(item)
    for item in items[start : start + page_size]:
        listing.append(item)
    old = root.find(q("nextToken"))
    if old is not None:
        root.remove(old)
    if start + page_size < len(items):
        token = ET.SubElement(root, q("nextToken"))
        token.text = str(start + page_size)
    return xml_out(root)


def dummy_copy_volumes(body):
    """The VolumeId AWS gives a copied snapshot: vol-ffffffff."""
    root = xml_in(body)
    ns = root.tag[1 : root.tag.index("}")] if root.tag.startswith("{") else ""
    ET.register_namespace("", ns)
    changed = False
    for item in root.iter():
        sid, vol = item.find("{*}snapshotId"), item.find("{*}volumeId")
        if sid is not None and vol is not None and sid.text in COPIES:
            vol.text = "vol-ffffffff"
            changed = True
    return xml_out(root) if changed else body


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle's algorithm and the client's
    # delayed ACK add up to 40 ms to every answer.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="text/xml"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def control(self, body):
        global RULES, COUNTS, SIGNERS, MAX_IN_FLIGHT, MAX_WRITES_IN_FLIGHT, REQUESTS
        if self.path == "/__machines":
            with LOCK:
                if self.command == "POST":
                    for iid, machine in json.loads(body or b"{}").items():
                        if machine is None:
                            MACHINES.pop(iid, None)
                            continue
                        machine = {k: v for k, v in machine.items() if k != "commands"}
                        MACHINES.setdefault(iid, {"agent": True, "commands": []}).update(machine)
                answer = json.dumps(MACHINES).encode()
        elif self.path == "/__states":
            with LOCK:
                if self.command == "POST":
                    for sid, state in json.loads(body or b"{}").items():
                        if state is None:
                            STATES.pop(sid, None)
                        else:
                            STATES[sid] = state
                answer = json.dumps(STATES).encode()
        elif self.path == "/__reset" and self.command == "POST":
            with LOCK:
                runs = list(RUNS.values())
                RULES, REQUESTS, COUNTS, SIGNERS = [], [], {}, {}
                MAX_IN_FLIGHT, MAX_WRITES_IN_FLIGHT = 0, 0
                for kept in (COPIES, ARCHIVED, RESTORING, LOCKS, MACHINES, RUNS, STATES, IMAGES):
                    kept.clear()
            # The machines' commands still pending or running end here, their processes killed.
            for run in runs:
                run.cancel()
            answer = b"{}"
        elif self.path == "/__requests":
            with LOCK:
                if self.command == "DELETE":
                    REQUESTS = []
                answer = json.dumps(REQUESTS).encode()
        elif self.path == "/__faults":
            with LOCK:
                if self.command == "POST":
                    RULES.extend(json.loads(body or b"[]"))
                elif self.command == "DELETE":
                    RULES = []
                answer = json.dumps(RULES).encode()
        elif self.path == "/__stats":
            with LOCK:
                if self.command == "DELETE":
                    COUNTS, SIGNERS, MAX_IN_FLIGHT, MAX_WRITES_IN_FLIGHT = {}, {}, 0, 0
                answer = json.dumps(
                    {
                        "counts": COUNTS,
                        "total": sum(COUNTS.values()),
                        "signers": SIGNERS,
                        "max_in_flight": MAX_IN_FLIGHT,
                        "max_writes_in_flight": MAX_WRITES_IN_FLIGHT,
                        # Requests being answered now (a killed client's included: the proxy
                        # still forwards what it was sent, as AWS still acts on it).
                        "in_flight": IN_FLIGHT,
                    }
                ).encode()
        else:
            return self.reply(404, b"{}", "application/json")
        self.reply(200, answer, "application/json")

    def handle_any(self):
        global IN_FLIGHT, MAX_IN_FLIGHT, WRITES_IN_FLIGHT, MAX_WRITES_IN_FLIGHT
        body = self.read_body()
        if self.path.startswith("/__"):
            return self.control(body)
        target = self.headers.get("X-Amz-Target", "")
        if target:
            # A JSON-protocol service (SSM): the action is in the header, the parameters in the body.
            action = target.rsplit(".", 1)[-1]
            try:
                params = {k: [v] for k, v in json.loads(body or b"{}").items()}
            except ValueError:
                params = {}
            params["Action"] = [action]
        else:
            params = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            if not params:
                params = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query, keep_blank_values=True)
        action = params.get("Action", ["?"])[0]
        # A permission check (DryRun=true) is counted, and matched by rules, as "DryRun:<Action>".
        if str(params.get("DryRun", [""])[0]).lower() == "true":
            action = f"DryRun:{action}"
        write = 0 if action.startswith(("Describe", "DryRun:", "Get", "List")) else 1
        entry = None
        with LOCK:
            if write:
                # "_time": when it arrived (seconds since the epoch), to order it with a test's hooks;
                # "_signer": the access key id that signed it.
                signer = signer_of(self.headers.get("Authorization", "")) or ""
                entry = {**{k: v[0] for k, v in params.items()}, "_time": time.time(), "_signer": signer.split("/")[0]}
                REQUESTS.append(entry)
            IN_FLIGHT += 1
            MAX_IN_FLIGHT = max(MAX_IN_FLIGHT, IN_FLIGHT)
            WRITES_IN_FLIGHT += write
            MAX_WRITES_IN_FLIGHT = max(MAX_WRITES_IN_FLIGHT, WRITES_IN_FLIGHT)
        try:
            status, headers, answer = self.proxy(body, params, action)
            if action not in SSM_ACTIONS:
                # moto writes control characters (a tag value with an ESC) raw into its XML, which
                # no XML parser takes; AWS sends them as character references (&#x1B;), which the
                # SDKs decode: so does this proxy.
                answer = RAW_CONTROL.sub(lambda m: b"&#x%02X;" % m.group()[0], answer)
            if self.headers.get("X-Campaign-Reader"):
                # The fault campaign's own reads (boto3, whose parser refuses those references):
                # it sees each such character as "?" (the binary sees the character itself).
                answer = CONTROL_REF.sub(b"?", answer)
        finally:
            # Before the answer goes out: once the client has it, it may send its next request,
            # which must not find this one still counted.
            with LOCK:
                IN_FLIGHT -= 1
                WRITES_IN_FLIGHT -= write
        if entry is not None:
            # What the answer says, before the client has it: when it was ready, what it made or
            # its error code.
            extra = {"_done": time.time()}
            if status != 200:
                extra["_error"] = error_code(status, answer)
            elif params.get("Action", [""])[0] in MADE:
                extra["_made"] = made_ids(params["Action"][0], answer)
            with LOCK:
                entry.update(extra)
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def proxy(self, body, params, action):
        """The answer to one EC2 request: (status, headers, body), after the rules."""
        signer = signer_of(self.headers.get("Authorization", ""))
        with LOCK:
            COUNTS[action] = COUNTS.get(action, 0) + 1
            if signer:
                SIGNERS[signer] = SIGNERS.get(signer, 0) + 1
        rule = take_rule(action, body) or {}
        if rule.get("delay"):
            time.sleep(float(rule["delay"]))
        if rule.get("status"):
            code = rule.get("code", "InternalError")
            message = rule.get("message", f"injected {code}")
            kind = "application/x-amz-json-1.1" if action in SSM_ACTIONS else "text/xml"
            return int(rule["status"]), [("Content-Type", kind)], error_body(code, message, action)
        answered = locks(action, params)
        if answered:
            return answered
        page_size = rule.get("page_size")
        if page_size and action in LIST_ELEMENT:
            # Ask the upstream for everything; this proxy does the paging.
            kept = {k: v for k, v in params.items() if k not in ("NextToken", "MaxResults")}
            body = urllib.parse.urlencode(kept, doseq=True).encode()
        # An SSM action about a registered machine is answered by its agent here (the rewrites
        # below still apply); anything else by the upstream.
        agent = self.agent(action, params, body) if action in SSM_ACTIONS else None
        status, headers, answer = agent or self.forward(body)
        if page_size and action in LIST_ELEMENT and status == 200:
            answer = paginate(answer, action, params, int(page_size))
        if action == "DescribeSnapshots" and status == 200 and ARCHIVED:
            with LOCK:
                archived = list(ARCHIVED)
            for sid in archived:
                answer = answer.replace(
                    f"<snapshotId>{sid}</snapshotId>".encode(),
                    f"<snapshotId>{sid}</snapshotId><storageTier>archive</storageTier>".encode(),
                )
        if action == "CreateSnapshots" and status == 200 and params.get("CopyTagsFromSource") == ["volume"]:
            self.copy_volume_tags(answer)
        if action == "CopySnapshot" and status == 200:
            made = xml_in(answer).find("{*}snapshotId")
            if made is not None:
                with LOCK:
                    COPIES.add(made.text)
        if action == "DescribeSnapshots" and status == 200 and COPIES:
            answer = dummy_copy_volumes(answer)
        if action == "DescribeSnapshots" and status == 200 and STATES:
            answer = forced_states(answer)
        if action == "RegisterImage" and status == 200:
            registered_mappings(params, answer)
        if action == "DescribeImages" and status == 200 and IMAGES:
            answer = images_as_registered(answer)
        for old, new in rule.get("rewrite", []):
            answer = answer.replace(old.encode(), new.encode())
        for pattern, new in rule.get("rewrite_re", []):
            answer = re.sub(pattern.encode(), new.encode(), answer, flags=re.DOTALL)
        if action == "DescribeSnapshots" and status == 200:
            record_states(answer)
        dropped = ("content-length", "transfer-encoding", "connection", "date", "server")
        return status, [(k, v) for k, v in headers if k.lower() not in dropped], answer

    def agent(self, action, params, body):
        """The answer of an SSM action about a registered machine, whose agent this proxy plays;
        None: not about one of them."""
        one = lambda k: params.get(k, [""])[0]
        json_type = [("Content-Type", "application/x-amz-json-1.1")]
        if action == "SendCommand":
            ids = params.get("InstanceIds", [[]])[0] or []
            with LOCK:
                ours = {iid: dict(MACHINES[iid]) for iid in ids if iid in MACHINES}
            if not ours:
                return None
            down = [iid for iid, machine in ours.items() if not machine.get("agent", True)]
            if down:
                message = f"Instances [[{', '.join(down)}]] not in a valid state for account 123456789012"
                return 400, json_type, error_body("InvalidInstanceId", message, action)
            status, headers, answer = self.forward(body)
            if status != 200:
                return status, headers, answer
            command_id = json.loads(answer)["Command"]["CommandId"]
            for iid, machine in ours.items():
                run = Run(command_id, iid, machine, params)
                with LOCK:
                    RUNS[(command_id, iid)] = run
                    if iid in MACHINES:
                        MACHINES[iid]["commands"].append(run.record)
                threading.Thread(target=run.run, daemon=True).start()
            return status, headers, answer
        if action == "GetCommandInvocation":
            with LOCK:
                run = RUNS.get((one("CommandId"), one("InstanceId")))
            if run is None:
                return None
            return 200, json_type, json.dumps(run.invocation()).encode()
        if action == "CancelCommand":
            wanted = params.get("InstanceIds", [None])[0]
            with LOCK:
                runs = [run for (cid, iid), run in RUNS.items()
                        if cid == one("CommandId") and (not wanted or iid in wanted)]
            if not runs:
                return None
            for run in runs:
                run.cancel()
            return 200, json_type, b"{}"
        return None

    def upstream(self, params):
        """One EC2 query of the proxy's own to the emulator; the answer's XML root."""
        body = urllib.parse.urlencode({"Version": "2016-11-15", **params}).encode()
        _, _, data = self.forward(body)
        return xml_in(data)

    def copy_volume_tags(self, answer):
        """What AWS does for CopyTagsFromSource=volume: the volume's tags onto its new snapshot."""
        root = xml_in(answer)
        for item in root.iter():
            snap, vol = item.find("{*}snapshotId"), item.find("{*}volumeId")
            if snap is None or vol is None:
                continue
            def tags_of(xml, id_tag):
                out = {}
                for entry in xml.iter():
                    key, value = entry.find("{*}key"), entry.find("{*}value")
                    if key is not None and entry.tag.endswith("item"):
                        out[key.text] = value.text if value is not None and value.text else ""
                return out
            volume_tags = tags_of(self.upstream({"Action": "DescribeVolumes", "VolumeId.1": vol.text}), "volumeId")
            own = tags_of(self.upstream({"Action": "DescribeSnapshots", "SnapshotId.1": snap.text}), "snapshotId")
            copied = {k: v for k, v in volume_tags.items() if k not in own and not k.startswith("aws:")}
            if copied:
                query = {"Action": "CreateTags", "ResourceId.1": snap.text}
                for n, (k, v) in enumerate(sorted(copied.items()), 1):
                    query[f"Tag.{n}.Key"] = k
                    query[f"Tag.{n}.Value"] = v
                self.upstream(query)

    def forward(self, body):
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=300)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        headers["Host"] = f"{UPSTREAM.hostname}:{UPSTREAM.port}"
        headers["Content-Length"] = str(len(body))
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, resp.getheaders(), data

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


def main():
    global UPSTREAM
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--clock", help="moto_server.py's clock file, to keep the same time")
    args = parser.parse_args()
    global CLOCK_FILE
    CLOCK_FILE = args.clock
    UPSTREAM = urllib.parse.urlsplit(args.upstream)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
