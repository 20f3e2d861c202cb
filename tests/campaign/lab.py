"""The campaign's lab: one moto server and one fault proxy for the whole session, reset between
examples, the real ec2snap binary pointed at them, and boto3 clients to read the truth.

Nothing here is a mock of AWS: moto serves EC2, STS and SSM, the proxy (tests/emulator/
fault_proxy.py) injects faults, keeps what moto lacks (locks, tiers) and runs the SSM scripts on
fake Linux roots (fakeroot.py).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
OTHER = "us-east-1"
BASE_ACCOUNT = "123456789012"
# The time every example starts at: no example depends on the day it runs.
EPOCH = 1780281000  # 2026-06-01T02:30:00Z


class Listener:
    """A local HTTP server for --notify (the healthchecks protocol): it records the suffix of each
    ping (`/start`, ``, `/fail`) and answers as the URL's mode says: 200, 500, or never (hang);
    `refuse` names a port where nothing listens."""

    def __init__(self):
        import http.server
        import threading
        seen = self._seen = []
        lock = self._lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                parts = self.path.split("/")  # "", "ping", MODE, TOKEN, [start|fail]
                mode = parts[2] if len(parts) > 2 else ""
                suffix = "/" + parts[4] if len(parts) > 4 else ""
                with lock:
                    seen.append(suffix)
                if mode == "hang":
                    time.sleep(30)
                    return
                self.send_response(500 if mode == "500" else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.dead_port = free_port()

    def url(self, mode):
        port = self.dead_port if mode == "refuse" else self.port
        return f"http://127.0.0.1:{port}/ping/{mode}/c4mpaign-token"

    def clear(self):
        with self._lock:
            self._seen.clear()

    def seen(self):
        with self._lock:
            return list(self._seen)


def binary():
    """The debug build (it reads EC2SNAP_CLOCK_OFFSET): EC2SNAP_BIN, else the cargo target's."""
    if os.environ.get("EC2SNAP_BIN"):
        return os.environ["EC2SNAP_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR") or str(REPO / "target")
    path = Path(target) / "debug" / "ec2snap"
    if not path.exists():
        raise RuntimeError(f"no ec2snap binary at {path}: run cargo build first (or set EC2SNAP_BIN)")
    return str(path)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(port, method, path, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        text = resp.read().decode()
    return json.loads(text) if text.strip() else None


class Result:
    """One run of the binary."""

    def __init__(self, args, code, stdout, stderr, started, ended, key, report=None, metrics=None):
        self.args, self.code, self.stdout, self.stderr = args, code, stdout, stderr
        self.started, self.ended, self.key = started, ended, key
        self.report, self.metrics = report, metrics

    def lines(self):
        return [strip_time(line) for line in self.stderr.splitlines()]

    def __repr__(self):
        tail = "\n".join(self.stderr.splitlines()[-40:])
        return f"ec2snap {' '.join(self.args)}\nexit {self.code}\n--- stdout\n{self.stdout[-3000:]}\n--- stderr (tail)\n{tail}"


def strip_time(line):
    if len(line) > 24 and line[4] == "-" and line[10] == " " and line[19] == ",":
        return line[24:]
    return line


class Lab:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="ec2snap-campaign-"))
        self.clock_file = self.dir / "clock"
        self.moto_port = free_port()
        py = str(REPO / ".venv/bin/python") if (REPO / ".venv/bin/python").exists() else "python3"
        self.py = os.environ.get("EC2SNAP_PYTHON", py)
        env = {**os.environ, "MOTO_CLOCK_FILE": str(self.clock_file), "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}
        self.moto = subprocess.Popen(
            [self.py, str(REPO / "tests/emulator/moto_server.py"), "-H", "127.0.0.1", "-p", str(self.moto_port)],
            env=env, stdout=subprocess.DEVNULL, stderr=open(self.dir / "moto.log", "w"))
        self.proxy = subprocess.Popen(
            [self.py, str(REPO / "tests/emulator/fault_proxy.py"), "--port", "0", "--upstream",
             f"http://127.0.0.1:{self.moto_port}", "--clock", str(self.clock_file)],
            stdout=subprocess.PIPE, stderr=open(self.dir / "proxy.log", "w"), text=True)
        first = self.proxy.stdout.readline()
        assert first.startswith("PORT "), f"fault proxy said {first!r}"
        self.proxy_port = int(first.split()[1])
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.moto_port}/moto-api/", timeout=2)
                break
            except OSError:
                assert time.time() < deadline, (self.dir / "moto.log").read_text()
                time.sleep(0.1)
        self.runs = 0
        self.offset = 0
        self.listener = Listener()

    def close(self):
        for p in (self.moto, self.proxy):
            p.kill()
            p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- the emulator's state -------------------------------------------------------------
    def reset(self):
        """A fresh emulator and proxy, the clock at EPOCH."""
        urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{self.moto_port}/moto-api/reset", data=b"", method="POST"), timeout=30)
        http(self.proxy_port, "POST", "/__reset", {})
        self.set_time(EPOCH)

    def set_time(self, at):
        """Moves the emulator's, the proxy's and the binary's clocks to `at` (epoch seconds)."""
        self.offset = int(at - time.time())
        self.clock_file.write_text(str(self.offset))

    def advance(self, seconds):
        self.offset += int(seconds)
        self.clock_file.write_text(str(self.offset))

    def now(self):
        return time.time() + self.offset

    def endpoint(self, direct=False):
        return f"http://127.0.0.1:{self.moto_port if direct else self.proxy_port}"

    def client(self, service="ec2", region=REGION, account=None, direct=False):
        """A boto3 client; `account` other than the base one through STS AssumeRole (moto keeps
        one set of resources per account); `direct` to moto, else through the proxy (which shows
        what AWS would: locks, tiers, the persistent states)."""
        keys = dict(aws_access_key_id="campaign", aws_secret_access_key="campaign")
        cfg = Config(retries={"max_attempts": 2, "mode": "standard"})
        if account and account != BASE_ACCOUNT:
            sts = boto3.client("sts", endpoint_url=self.endpoint(True), region_name=region, config=cfg, **keys)
            creds = sts.assume_role(RoleArn=role_arn(account), RoleSessionName="campaign")["Credentials"]
            keys = dict(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])
        c = boto3.client(service, endpoint_url=self.endpoint(direct), region_name=region, config=cfg, **keys)
        # The proxy shows this reader the control characters moto answers raw as "?" (no Python XML
        # parser takes them); the binary sees them as they are.
        c.meta.events.register("before-sign.*.*", _mark_reader)
        return c

    def faults(self, rules):
        http(self.proxy_port, "POST", "/__faults", rules)

    def clear_faults(self):
        http(self.proxy_port, "DELETE", "/__faults")

    def states(self, states):
        http(self.proxy_port, "POST", "/__states", states)

    def machines(self, machines):
        http(self.proxy_port, "POST", "/__machines", machines)

    def requests(self):
        return http(self.proxy_port, "GET", "/__requests")

    def settle(self, timeout=15):
        """Waits until the proxy answers no request: a signalled run's call still on its way
        (held by a delay fault) lands before the step reads what is there."""
        deadline = time.time() + timeout
        while time.time() < deadline and http(self.proxy_port, "GET", "/__stats").get("in_flight", 0) > 0:
            time.sleep(0.05)

    # --- the binary -----------------------------------------------------------------------
    def command(self, args, region=REGION, extra_env=None, connect=True):
        self.runs += 1
        key = f"AKIDRUN{self.runs:05d}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.dir),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": "campaign",
            "EC2SNAP_CLOCK_OFFSET": str(self.offset),
            "TZ": "UTC",
        }
        env.update(extra_env or {})
        conn = [*(["--endpoint-url", self.endpoint()] if connect else []), *(["-r", region] if region else [])]
        # A subcommand comes first; the connection flags are every command's.
        if args and args[0] in SUBCOMMANDS:
            full = [args[0], *conn, *args[1:]]
        else:
            full = [*conn, *args]
        return full, env, key

    def start(self, args, region=REGION, extra_env=None, report=True, connect=True):
        """Starts the binary; `finish` waits for it."""
        full, env, key = self.command(args, region, extra_env, connect)
        paths = {}
        if report and (not args or args[0] not in ("list", "--generate")):
            paths["report"] = self.dir / f"report-{key}.json"
            full += ["--report", str(paths["report"])]
            if not args or args[0] not in ("restore", "drill"):
                paths["metrics"] = self.dir / f"metrics-{key}.prom"
                full += ["--metrics-file", str(paths["metrics"])]
        out = tempfile.TemporaryFile()
        err = tempfile.TemporaryFile()
        started = time.time()
        proc = subprocess.Popen([binary(), *full], env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                cwd=self.dir)
        return {"proc": proc, "out": out, "err": err, "args": full, "started": started, "key": key, **paths}

    def finish(self, live, timeout=240):
        proc = live["proc"]
        try:
            proc.wait(timeout=timeout)
            hung = False
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            hung = True
        ended = time.time()
        live["out"].seek(0)
        live["err"].seek(0)
        stdout = live["out"].read().decode("utf-8", "surrogateescape")
        stderr = live["err"].read().decode("utf-8", "surrogateescape")
        report = None
        if live.get("report") and live["report"].exists():
            report = live["report"].read_text("utf-8", "surrogateescape")
            live["report"].unlink()
        code = -999 if hung else proc.returncode
        metrics = str(live["metrics"]) if live.get("metrics") else None
        return Result(live["args"], code, stdout, stderr, live["started"], ended, live["key"], report, metrics)

    def run(self, args, region=REGION, extra_env=None, report=True, timeout=240, connect=True):
        return self.finish(self.start(args, region, extra_env, report, connect), timeout)

    def wait_line(self, live, text, timeout=30):
        """Waits until the running binary's standard error holds `text` (True), or it ended or
        `timeout` passed (False)."""
        deadline = time.time() + timeout
        fd = live["err"].fileno()
        while time.time() < deadline:
            if text.encode() in os.pread(fd, 1 << 22, 0):
                return True
            if live["proc"].poll() is not None:
                return False
            time.sleep(0.02)
        return False

    def signal(self, live, sig):
        live["proc"].send_signal(sig)


def _mark_reader(request, **_):
    request.headers["X-Campaign-Reader"] = "1"


def role_arn(account):
    return f"arn:aws:iam::{account}:role/ec2snap"


SUBCOMMANDS = ("list", "restore", "drill", "check", "vault-prune")
SIGNALS = {"TERM": signal.SIGTERM, "INT": signal.SIGINT, "KILL": signal.SIGKILL}
