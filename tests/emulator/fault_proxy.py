#!/usr/bin/env python3
"""A small fault-injecting HTTP proxy for the EC2 query API, to put between ec2snap and an emulator.

    fault_proxy.py --port 0 --upstream http://127.0.0.1:5000

prints "PORT <n>" on its first line once it listens. Every request is forwarded to the upstream
unless a rule says otherwise. Control endpoints (JSON):

    POST   /__faults   a list of rules, appended; DELETE /__faults clears them
    GET    /__requests the parameters of every request that changes something (not Describe*, not
                       DryRun), in order, with the time it arrived:
                       [{"Action": ..., "Param.1": ..., "_time": 1764740000.123}], and each
                       DescribeSnapshots answer's states as the client saw them, when it went out:
                       {"Action": "DescribeSnapshots", "_states": {"snap-1": "pending"}, "_time": ..};
                       DELETE clears them
    GET    /__stats    {"counts": {Action: n}, "total": n, "signers": {"KEYID/region": n},
                        "max_in_flight": n, "max_writes_in_flight": n};
           DELETE /__stats resets the counts

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
- An injected error of an STS action (AssumeRole) has STS's shape (ErrorResponse), not EC2's, and
  one of SSM (a JSON-protocol service, whose action is in X-Amz-Target) SSM's JSON shape.
- CreateSnapshots with CopyTagsFromSource=volume: each new snapshot gets its volume's tags (moto
  ignores the parameter); a key the request itself sets keeps the request's value.
- ModifySnapshotTier and RestoreSnapshotTier, which moto lacks: answered here; DescribeSnapshots
  answers then give archived snapshots <storageTier>archive</storageTier> (a restore asked for
  takes hours on AWS: they stay archived; asked again, IncorrectState).
- Snapshot locks, which moto lacks: LockSnapshot, UnlockSnapshot and DescribeLockedSnapshots are
  answered here from lock state kept here (times on the emulator's clock, --clock), and a
  DeleteSnapshot of a locked snapshot gets AWS's error SnapshotLocked.
- A snapshot made by CopySnapshot has the VolumeId vol-ffffffff in DescribeSnapshots answers, as
  on AWS (moto keeps the source's volume id).
"""
import argparse
import calendar
import http.client
import json
import re
import sys
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
            lock = {"mode": one("LockMode"), "created": t, "expires": expires, "duration": days}
            if one("CoolOffPeriod") and not old:
                lock["cool_off"] = int(one("CoolOffPeriod"))
                lock["cool_off_until"] = t + int(one("CoolOffPeriod")) * 3600
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
        root = ET.fromstring(answer)
    except ET.ParseError:
        return
    states = {}
    for item in root.iter():
        sid, status = item.find("{*}snapshotId"), item.find("{*}status")
        if sid is not None and status is not None:
            states[sid.text] = status.text
    with LOCK:
        REQUESTS.append({"Action": "DescribeSnapshots", "_states": states, "_time": time.time()})


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
    root = ET.fromstring(body)
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
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def dummy_copy_volumes(body):
    """The VolumeId AWS gives a copied snapshot: vol-ffffffff."""
    root = ET.fromstring(body)
    ns = root.tag[1 : root.tag.index("}")] if root.tag.startswith("{") else ""
    ET.register_namespace("", ns)
    changed = False
    for item in root.iter():
        sid, vol = item.find("{*}snapshotId"), item.find("{*}volumeId")
        if sid is not None and vol is not None and sid.text in COPIES:
            vol.text = "vol-ffffffff"
            changed = True
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) if changed else body


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
        if self.path == "/__requests":
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
        with LOCK:
            if write:
                # "_time": when it arrived (seconds since the epoch), to order it with a test's hooks.
                REQUESTS.append({**{k: v[0] for k, v in params.items()}, "_time": time.time()})
            IN_FLIGHT += 1
            MAX_IN_FLIGHT = max(MAX_IN_FLIGHT, IN_FLIGHT)
            WRITES_IN_FLIGHT += write
            MAX_WRITES_IN_FLIGHT = max(MAX_WRITES_IN_FLIGHT, WRITES_IN_FLIGHT)
        try:
            status, headers, answer = self.proxy(body, params, action)
        finally:
            # Before the answer goes out: once the client has it, it may send its next request,
            # which must not find this one still counted.
            with LOCK:
                IN_FLIGHT -= 1
                WRITES_IN_FLIGHT -= write
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
        status, headers, answer = self.forward(body)
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
            made = ET.fromstring(answer).find("{*}snapshotId")
            if made is not None:
                with LOCK:
                    COPIES.add(made.text)
        if action == "DescribeSnapshots" and status == 200 and COPIES:
            answer = dummy_copy_volumes(answer)
        for old, new in rule.get("rewrite", []):
            answer = answer.replace(old.encode(), new.encode())
        for pattern, new in rule.get("rewrite_re", []):
            answer = re.sub(pattern.encode(), new.encode(), answer, flags=re.DOTALL)
        if action == "DescribeSnapshots" and status == 200:
            record_states(answer)
        dropped = ("content-length", "transfer-encoding", "connection", "date", "server")
        return status, [(k, v) for k, v in headers if k.lower() not in dropped], answer

    def upstream(self, params):
        """One EC2 query of the proxy's own to the emulator; the answer's XML root."""
        body = urllib.parse.urlencode({"Version": "2016-11-15", **params}).encode()
        _, _, data = self.forward(body)
        return ET.fromstring(data)

    def copy_volume_tags(self, answer):
        """What AWS does for CopyTagsFromSource=volume: the volume's tags onto its new snapshot."""
        root = ET.fromstring(answer)
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
