#!/usr/bin/env python3
"""Benchmark: ec2snap against moto behind the fault proxy, with a fixed latency per request.

For each size N (instances, 2 volumes each, 3 old snapshots per volume) and each --parallel value,
it resets and seeds the emulator, runs `ec2snap -t Name 'bench*' -g 7 d -u --parallel P` (with
`--consistent` when asked), and
prints wall time, peak RSS and requests by Action next to the request floor:

    floor = 1 + ceil(N/1000) DescribeInstances (the stop-mark scan, the selection)
          + ceil(N*V/500) DescribeVolumes + N*V CreateSnapshot
          + ceil(N*V/200) DescribeSnapshots + N*V*K DeleteSnapshot

With --list K it measures `ec2snap list` instead: N instances with K snapshots per volume (made
1..K days ago), then `ec2snap list -t Name 'bench*' -d 7 --json`, with its client time (user +
system CPU of ec2snap, what the emulator's own slowness does not change) and its requests:

    floor = ceil(N/1000) DescribeInstances + ceil(N*V*K/1000) DescribeSnapshots
          + ceil(N*V/500) DescribeVolumes

With --fleet T it measures a run over many accounts: T accounts (moto keeps one per account behind
STS AssumeRole) with N instances each, and an extra account alike; it runs the job on the extra
account alone (`--assume-role` of it), then on the T accounts at once (`--parallel-targets T`),
and prints both wall times, their ratio, and the requests of each (the fleet's should be T times
the one target's, AssumeRole included).

Run it through scripts/bench.sh, which starts the emulator and builds the release binary.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(__file__))
import ec2lab  # noqa: E402

V = 2
# K old snapshots per volume, of these ages (days).
ALL_AGES_DAYS = [30, 20, 10]


def http(url, method="GET", body=None):
    req = urllib.request.Request(url, data=body, method=method)
    with urllib.request.urlopen(req) as r:
        return r.read()


def seed(moto, clock, n, ages_days, role=None, reset=True):
    """N instances 'bench<i>', each with /dev/sda1 (root) and /dev/sdb, and a snapshot per volume
    of each age (days); in the account of `role` if given."""
    if reset:
        http(f"{moto}/moto-api/reset", "POST")
    ec2 = ec2lab.client(moto, "eu-west-1", role)
    ids = []
    for start in range(0, n, 500):
        count = min(500, n - start)
        out = ec2.run_instances(
            ImageId="ami-12345678", MinCount=count, MaxCount=count, InstanceType="t3.micro",
            TagSpecifications=ec2lab.tag_spec("instance", {"Name": f"bench{start}"}),
        )["Instances"]
        ids += [(i["InstanceId"], i["Placement"]["AvailabilityZone"], i["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]) for i in out]

    def add_volume(item):
        iid, az, root = item
        vid = ec2.create_volume(AvailabilityZone=az, Size=1)["VolumeId"]
        ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/sdb")
        return [(iid, root, "/dev/sda1"), (iid, vid, "/dev/sdb")]

    def old_snapshot(volume):
        # ec2snap's own description, so that --copy-to takes it as one of its backups.
        iid, vid, dev = volume
        ec2.create_snapshot(VolumeId=vid, Description=f"{iid} (bench) - Hot {dev} ({vid})")

    with ThreadPoolExecutor(8) as pool:
        volumes = [v for vs in pool.map(add_volume, ids) for v in vs]
        for days in ages_days:
            ec2lab.set_clock(clock, -days * 86400)
            list(pool.map(old_snapshot, volumes))
        ec2lab.set_clock(clock, 0)
    return len(ids), len(volumes)


def floor(n, k, consistent, copy_to=None):
    if copy_to:
        # The copy step alone (-n, no source retention): the destination's listing, one copy per
        # volume, and the source listing it needs.
        return {
            "DescribeInstances": 1 + math.ceil(n / 1000),
            "DescribeSnapshots": math.ceil(n * V / 200) + 1,
            "CopySnapshot": n * V,
        }
    if consistent:
        # One CreateSnapshots per instance, no DescribeVolumes (EC2 copies the volume tags), and
        # every snapshot the account owns listed in pages of 1,000.
        return {
            "DescribeInstances": 1 + math.ceil(n / 1000),
            "CreateSnapshots": n,
            "DescribeSnapshots": max(1, math.ceil(n * V * k / 1000)),
            "DeleteSnapshot": n * V * k,
        }
    return {
        # The scan for instances a killed cold run left stopped, then the selection.
        "DescribeInstances": 1 + math.ceil(n / 1000),
        "DescribeVolumes": math.ceil(n * V / 500),
        "CreateSnapshot": n * V,
        "DescribeSnapshots": math.ceil(n * V / 200),
        "DeleteSnapshot": n * V * k,
    }


def list_floor(n, k):
    return {
        "DescribeInstances": math.ceil(n / 1000),
        "DescribeSnapshots": math.ceil(n * V * k / 1000),
        "DescribeVolumes": math.ceil(n * V / 500),
    }


def run_list(binary, proxy):
    """`ec2snap list`: wall time, client CPU time, peak RSS, requests by Action."""
    http(f"{proxy}/__stats", "DELETE")
    args = [binary, "list", "--endpoint-url", proxy, "-r", "eu-west-1", "-t", "Name", "bench*",
            "-d", "7", "--json"]
    start = time.monotonic()
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(args, stdout=out, stderr=err)
        peak_kb = 0
        while True:
            peak_kb = max(peak_kb, vm_hwm_kb(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.01)
        wall = time.monotonic() - start
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            sys.exit(f"ec2snap list exited {status}:\n{err.read().decode()[-3000:]}")
        size = out.tell()
    stats = json.loads(http(f"{proxy}/__stats"))
    return wall, usage.ru_utime + usage.ru_stime, peak_kb / 1024, stats["counts"], size


def run(binary, proxy, parallel, consistent, copy_to=None):
    http(f"{proxy}/__stats", "DELETE")
    job = ["-n", "--copy-to", copy_to] if copy_to else ["-g", "7", "d"]
    args = [binary, "--endpoint-url", proxy, "-r", "eu-west-1", "-t", "Name", "bench*", *job, "-u",
            "--parallel", str(parallel)] + (["--consistent"] if consistent else [])
    start = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err)
        # Peak RSS from VmHWM, read until the process exits: getrusage's ru_maxrss would also count
        # the forked copy of this Python process that existed before exec.
        peak_kb = 0
        while proc.poll() is None:
            peak_kb = max(peak_kb, vm_hwm_kb(proc.pid))
            time.sleep(0.01)
        wall = time.monotonic() - start
        if proc.returncode != 0:
            err.seek(0)
            sys.exit(f"ec2snap exited {proc.returncode}:\n{err.read().decode()[-3000:]}")
    stats = json.loads(http(f"{proxy}/__stats"))
    return wall, peak_kb / 1024, stats["counts"]


def fleet_role(n):
    return f"arn:aws:iam::{100000000000 + n}:role/ec2snap"


def run_fleet(binary, proxy, roles, parallel):
    """The job over the accounts of `roles` at once: wall time, client CPU time, requests by
    Action, the most requests in flight."""
    http(f"{proxy}/__stats", "DELETE")
    args = [binary, "--endpoint-url", proxy, "-r", "eu-west-1", "-t", "Name", "bench*", "-g", "7", "d",
            "-u", "--parallel", str(parallel), "--parallel-targets", str(len(roles))]
    for r in roles:
        args += ["--assume-role", r]
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    start = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            sys.exit(f"ec2snap exited {status}:\n{err.read().decode()[-3000:]}")
    stats = json.loads(http(f"{proxy}/__stats"))
    return wall, usage.ru_utime + usage.ru_stime, stats["counts"], stats["max_in_flight"]


def run_shards(binary, proxy, roles, parallel, shards):
    """The job over `roles` as `shards` workers at once (--shard k/S), or one process when
    `shards` is 0: wall time of the slowest, requests by Action."""
    http(f"{proxy}/__stats", "DELETE")
    base = [binary, "--endpoint-url", proxy, "-r", "eu-west-1", "-t", "Name", "bench*", "-g", "7", "d",
            "-u", "--parallel", str(parallel)]
    for r in roles:
        base += ["--assume-role", r]
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    argvs = [base] if shards == 0 else [base + ["--shard", f"{k}/{shards}"] for k in range(shards)]
    start = time.monotonic()
    procs = [subprocess.Popen(a, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env) for a in argvs]
    codes = [p.wait() for p in procs]
    wall = time.monotonic() - start
    if any(codes):
        sys.exit(f"ec2snap exited {codes}")
    stats = json.loads(http(f"{proxy}/__stats"))
    return wall, stats["counts"]


def vm_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--binary", required=True)
    p.add_argument("--moto", required=True)
    p.add_argument("--proxy", required=True)
    p.add_argument("--clock", required=True)
    p.add_argument("--sizes", default="20,200,2000")
    p.add_argument("--parallel", default="1,8")
    p.add_argument("--latency-ms", type=float, default=20)
    p.add_argument("--old", type=int, default=3, choices=[1, 2, 3], help="old snapshots per volume (K)")
    p.add_argument("--consistent", action="store_true", help="run ec2snap with --consistent")
    p.add_argument("--copy-to", help="measure the copy step instead: -n --copy-to REGION")
    p.add_argument("--list", type=int, metavar="K", help="measure `ec2snap list` over K snapshots per volume")
    p.add_argument("--fleet", type=int, metavar="T", help="measure a run over T accounts against one alone")
    p.add_argument("--shards", type=int, metavar="S", help="with --fleet T: S workers (--shard k/S) against one process")
    a = p.parse_args()
    http(f"{a.proxy}/__faults", "DELETE")
    http(f"{a.proxy}/__faults", "POST", json.dumps([{"action": "*", "delay": a.latency_ms / 1000}]).encode())
    if a.fleet and a.shards:
        par = int(a.parallel.split(",")[-1])
        print(f"latency {a.latency_ms:g} ms per request; {a.fleet} targets (accounts in one region), V={V} volumes, K={a.old} old snapshots per volume, --parallel {par}, --parallel-targets 4 per process")
        print("| N per target | one process s | S workers s | one process requests | S workers requests |")
        print("|---|---|---|---|---|")
        for n in [int(x) for x in a.sizes.split(",")]:
            rows = []
            for shards in (0, a.shards):
                http(f"{a.moto}/moto-api/reset", "POST")
                for t in range(a.fleet):
                    seed(a.moto, a.clock, n, ALL_AGES_DAYS[: a.old], role=fleet_role(t), reset=False)
                rows.append(run_shards(a.binary, a.proxy, [fleet_role(t) for t in range(a.fleet)], par, shards))
            (one, c1), (many, cs) = rows
            print(f"| {n} | {one:.1f} | {many:.1f} | {sum(c1.values())} | {sum(cs.values())} |", flush=True)
        return
    if a.fleet:
        par = int(a.parallel.split(",")[-1])
        print(f"latency {a.latency_ms:g} ms per request; {a.fleet} accounts, V={V} volumes, K={a.old} old snapshots per volume, --parallel {par}")
        print("| N per target | one target s | fleet s | ratio | one target requests | fleet requests | ratio | fleet client CPU s | most in flight |")
        print("|---|---|---|---|---|---|---|---|---|")
        for n in [int(x) for x in a.sizes.split(",")]:
            http(f"{a.moto}/moto-api/reset", "POST")
            for t in range(a.fleet + 1):
                seed(a.moto, a.clock, n, ALL_AGES_DAYS[: a.old], role=fleet_role(t), reset=False)
            one, _, one_counts, _ = run_fleet(a.binary, a.proxy, [fleet_role(a.fleet)], par)
            many, cpu, counts, in_flight = run_fleet(a.binary, a.proxy, [fleet_role(t) for t in range(a.fleet)], par)
            r1, rn = sum(one_counts.values()), sum(counts.values())
            print(f"| {n} | {one:.1f} | {many:.1f} | {many / one:.2f} | {r1} | {rn} | {rn / r1:.2f} | {cpu:.2f} | {in_flight} |", flush=True)
        return
    if a.list:
        print(f"latency {a.latency_ms:g} ms per request; ec2snap list, V={V} volumes, K={a.list} snapshots per volume")
        print("| N | snapshots | requests | floor | wall s | client CPU s | peak RSS MB | JSON KB | by Action (got/floor) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for n in [int(x) for x in a.sizes.split(",")]:
            _, volumes = seed(a.moto, a.clock, n, range(1, a.list + 1))
            wall, cpu, rss, counts, size = run_list(a.binary, a.proxy)
            fl = list_floor(n, a.list)
            detail = ", ".join(f"{k} {counts.get(k, 0)}/{v}" for k, v in fl.items())
            print(f"| {n} | {volumes * a.list} | {sum(counts.values())} | {sum(fl.values())} | {wall:.1f} | {cpu:.2f} | {rss:.1f} | {size // 1024} | {detail} |",
                  flush=True)
        return
    mode = " --consistent" if a.consistent else ""
    print(f"latency {a.latency_ms:g} ms per request; V={V} volumes, K={a.old} old snapshots per volume{mode}")
    print("| N | --parallel | requests | floor | ratio | wall s | target s | peak RSS MB | by Action (got/floor) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in [int(x) for x in a.sizes.split(",")]:
        for par in [int(x) for x in a.parallel.split(",")]:
            seed(a.moto, a.clock, n, ALL_AGES_DAYS[: a.old])
            wall, rss, counts = run(a.binary, a.proxy, par, a.consistent, a.copy_to)
            fl = floor(n, a.old, a.consistent, a.copy_to)
            got, want = sum(counts.values()), sum(fl.values())
            target = 2 * want * a.latency_ms / 1000 / par if par > 1 else float("nan")
            detail = ", ".join(f"{k} {counts.get(k, 0)}/{v}" for k, v in fl.items())
            extra = ", ".join(f"{k} {v}" for k, v in counts.items() if k not in fl)
            if extra:
                detail += f"; other: {extra}"
            print(f"| {n} | {par} | {got} | {want} | {got / want:.3f} | {wall:.1f} | {target:.1f} | {rss:.1f} | {detail} |",
                  flush=True)


if __name__ == "__main__":
    main()
