"""Fake Linux roots for the SSM scripts of `--freeze ssm`: what the fault proxy's SSM agent runs
them on (tests/emulator/fault_proxy.py, POST /__machines).

    make_root(path, "i-abc", [{"volume_id": "vol-0abc", "device": "/dev/sda1", "root": True, "mounts": ["/"]},
                              {"volume_id": "vol-0def", "device": "/dev/sdb", "root": False, "mounts": ["/data"]}],
              slow={"/data": 2.0})

lays out in `path`:

    mounts          a /proc/mounts: the root volume's nvme0n1p1 on /, proc, tmpfs, and each data
                    volume's nvme<k>n1 (k = 1, 2, .. in the order given) on each of its mount
                    points, ext4 rw (spaces and the like written \\040 as the kernel does)
    sys/            /sys/class/block/<dev> symlinks into sys/devices/.../nvme/nvme<k>/nvme<k>n1, whose
                    `device` is the controller nvme<k> with its `serial`: the volume id without its
                    dash, padded with spaces to 20 characters as NVMe does; nvme0n1p1 a partition
    run/            the state directory (EC2SNAP_STATE_DIR)
    bin/fsfreeze    an fsfreeze that behaves as util-linux's and the kernel's do (below)
    slow.json       {mount point: seconds a freeze of it takes (the sync)}, from `slow`
    instance-id     the instance id

bin/fsfreeze -f MNT / -u MNT keeps the filesystems' states in frozen.json, guarded by an flock
of `lock`:
- a mount point not in `mounts`: exit 1, "fsfreeze: cannot open MNT: No such file or directory";
- -f of a filesystem frozen or being frozen: exit 1, "fsfreeze: MNT: freeze failed: Device or
  resource busy"; else it is "freezing" for slow.json's seconds (the lock released meanwhile),
  then frozen;
- -u of a filesystem not frozen (being frozen included): exit 1, "fsfreeze: MNT: unfreeze failed:
  Invalid argument"; else it is thawed.
A freeze whose fsfreeze was killed during its sync still ends frozen at the sync's end, as the
kernel's ioctl does (seen by the next call, or by frozen_now / intervals / log).
Every call appends one JSON line to fsfreeze.log: {"t", "op": "-f"|"-u", "mnt", "ok", "error":
str|None, "pid", "ppid"}, a freeze's when it ends (frozen or failed).
"""
import fcntl
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def escape(mnt):
    """A mount point as /proc/mounts writes it: space, tab, newline and backslash in octal."""
    for char, code in (("\\", "\\134"), (" ", "\\040"), ("\t", "\\011"), ("\n", "\\012")):
        mnt = mnt.replace(char, code)
    return mnt


def unescape(field):
    """A /proc/mounts field as the path it names."""
    out, i = "", 0
    while i < len(field):
        if field[i] == "\\" and len(field) >= i + 4 and all(c in "01234567" for c in field[i + 1 : i + 4]):
            out += chr(int(field[i + 1 : i + 4], 8))
            i += 4
        else:
            out += field[i]
            i += 1
    return out


def make_root(path, instance_id, disks, slow=None):
    """A fake root in `path` (made if need be) for the instance's `disks`: a list of
    {"volume_id", "device", "root": bool, "mounts": [mount point, ...]}. Returns `path`."""
    path = os.path.abspath(str(path))
    sys_dir = os.path.join(path, "sys")
    os.makedirs(os.path.join(sys_dir, "class", "block"), exist_ok=True)
    for d in ("run", "bin"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    root_disk = next((d for d in disks if d.get("root")), None)
    data_disks = [d for d in disks if not d.get("root")]
    # nvme0: the root volume (a partition nvme0n1p1); nvme1, nvme2, ..: the data volumes.
    controllers = [(0, root_disk)] + [(k, d) for k, d in enumerate(data_disks, 1)]
    lines = []
    for k, disk in controllers:
        serial = disk["volume_id"].replace("-", "") if disk else "vol0000000000root"
        pci = f"devices/pci0000:00/0000:00:{k + 4:02x}.0/nvme"
        controller = os.path.join(sys_dir, pci, f"nvme{k}")
        namespace = os.path.join(controller, f"nvme{k}n1")
        os.makedirs(namespace, exist_ok=True)
        with open(os.path.join(controller, "serial"), "w") as f:
            f.write(serial.ljust(20) + "\n")
        os.symlink(f"../../nvme{k}", os.path.join(namespace, "device"))
        os.symlink(f"../../{pci}/nvme{k}/nvme{k}n1", os.path.join(sys_dir, "class", "block", f"nvme{k}n1"))
        if k == 0:
            part = os.path.join(namespace, "nvme0n1p1")
            os.makedirs(part, exist_ok=True)
            with open(os.path.join(part, "partition"), "w") as f:
                f.write("1\n")
            os.symlink(f"../../{pci}/nvme0/nvme0n1/nvme0n1p1", os.path.join(sys_dir, "class", "block", "nvme0n1p1"))
            lines.append("/dev/nvme0n1p1 / ext4 rw,relatime 0 0")
            lines.append("proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0")
            lines.append("tmpfs /tmp tmpfs rw,nosuid,nodev 0 0")
            others = [m for m in (disk or {}).get("mounts", []) if m != "/"]
            lines += [f"/dev/nvme0n1p1 {escape(m)} ext4 rw,relatime 0 0" for m in others]
        else:
            lines += [f"/dev/nvme{k}n1 {escape(m)} ext4 rw,relatime 0 0" for m in disk.get("mounts", [])]
    with open(os.path.join(path, "mounts"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(path, "slow.json"), "w") as f:
        json.dump(slow or {}, f)
    with open(os.path.join(path, "instance-id"), "w") as f:
        f.write(instance_id + "\n")
    # bin/fsfreeze: this module's fsfreeze(), for the root it lies in.
    fake = os.path.join(path, "bin", "fsfreeze")
    with open(fake, "w") as f:
        f.write(f"#!{sys.executable}\n"
                "import os, sys\n"
                f"sys.path.insert(0, {HERE!r})\n"
                "import fakeroot\n"
                "sys.exit(fakeroot.fsfreeze(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), sys.argv[1:]))\n")
    os.chmod(fake, 0o755)
    return path


def mount_points(root):
    """The mount points of the root's mounts file, as paths: {mount point: its device}."""
    out = {}
    with open(os.path.join(root, "mounts")) as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 2:
                out[unescape(fields[1])] = fields[0]
    return out


def device_of(root, mnt):
    """The filesystem (its device) mounted on `mnt`: what the kernel freezes, whichever of its
    mount points (a bind mount) is named."""
    return mount_points(str(root)).get(mnt, mnt)


def locked(root):
    """The root's lock, held once opened (closing it releases it)."""
    f = open(os.path.join(root, "lock"), "a")
    fcntl.flock(f, fcntl.LOCK_EX)
    return f


def read_state(root):
    """frozen.json: {mnt: {"state": "freezing"|"frozen", "since", "pid"?, "ppid"?, "until"?}}."""
    try:
        with open(os.path.join(root, "frozen.json")) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return {}


def write_state(root, state):
    tmp = os.path.join(root, "frozen.json.tmp")
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, os.path.join(root, "frozen.json"))


def append_log(root, entry):
    with open(os.path.join(root, "fsfreeze.log"), "a") as f:
        f.write(json.dumps(entry) + "\n")


def alive(pid):
    """Whether the process runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def settle(root, state):
    """A freeze whose fsfreeze died during its sync is frozen once the sync is over, as the
    kernel's ioctl goes on without its caller; logged then. Under the lock; True if it changed."""
    changed = False
    for mnt, fs in state.items():
        if fs["state"] == "freezing" and not alive(fs["pid"]) and time.time() >= fs["until"]:
            state[mnt] = {"state": "frozen", "since": fs["until"], "mnt": fs.get("mnt", mnt)}
            append_log(root, {"t": fs["until"], "op": "-f", "mnt": fs.get("mnt", mnt), "dev": mnt, "ok": True,
                              "error": None, "pid": fs["pid"], "ppid": fs["ppid"]})
            changed = True
    return changed


def fsfreeze(root, args):
    """bin/fsfreeze's work: `fsfreeze -f MNT` or `fsfreeze -u MNT` on this root; the exit status."""
    if len(args) != 2 or args[0] not in ("-f", "-u"):
        print("Usage: fsfreeze [options] <mountpoint>", file=sys.stderr)
        return 1
    op, mnt = args
    # The kernel freezes a filesystem (a superblock), whichever of its mount points is named:
    # the state is kept per device.
    dev = None

    def done(ok, error, t=None):
        append_log(root, {"t": t or time.time(), "op": op, "mnt": mnt, "dev": dev, "ok": ok, "error": error,
                          "pid": os.getpid(), "ppid": os.getppid()})
        if error:
            print(f"fsfreeze: {error}", file=sys.stderr)
        return 0 if ok else 1

    with locked(root):
        state = read_state(root)
        if settle(root, state):
            write_state(root, state)
        points = mount_points(root)
        if mnt not in points:
            return done(False, f"cannot open {mnt}: No such file or directory")
        dev = points[mnt]
        fs = state.get(dev)
        if op == "-u":
            if not fs or fs["state"] != "frozen":
                return done(False, f"{mnt}: unfreeze failed: Invalid argument")
            del state[dev]
            write_state(root, state)
            return done(True, None)
        if fs:
            return done(False, f"{mnt}: freeze failed: Device or resource busy")
        try:
            with open(os.path.join(root, "slow.json")) as f:
                sync = float(json.load(f).get(mnt, 0))
        except (FileNotFoundError, ValueError):
            sync = 0.0
        t = time.time()
        state[dev] = {"state": "freezing", "since": t, "pid": os.getpid(), "ppid": os.getppid(), "until": t + sync,
                      "mnt": mnt}
        write_state(root, state)
    # The sync, the lock released: a thaw meanwhile finds it not frozen, a freeze finds it busy.
    time.sleep(sync)
    with locked(root):
        state = read_state(root)
        state[dev] = {"state": "frozen", "since": time.time(), "mnt": mnt}
        write_state(root, state)
        return done(True, None, state[dev]["since"])


def log(root):
    """fsfreeze.log's entries, in the order written."""
    try:
        with open(os.path.join(str(root), "fsfreeze.log")) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def settled(root):
    """The root's state once the freezes of killed fsfreezes are settled."""
    root = str(root)
    with locked(root):
        state = read_state(root)
        if settle(root, state):
            write_state(root, state)
    return state


def frozen_now(root):
    """{mount point: since when it is frozen (epoch seconds)} for each filesystem frozen now (the
    mount point its freeze named)."""
    return {fs.get("mnt", dev): fs["since"] for dev, fs in settled(root).items() if fs["state"] == "frozen"}


def intervals(root):
    """Each time a filesystem was frozen, from the log: {"mnt", "dev", "start", "end", "ppid"}
    (end None while still frozen; ppid: the process that ran fsfreeze -f, the freeze script), in
    the order of their start."""
    settled(root)
    out, open_ = [], {}
    for entry in log(root):
        if not entry["ok"]:
            continue
        dev = entry.get("dev") or entry["mnt"]
        if entry["op"] == "-f":
            open_[dev] = {"mnt": entry["mnt"], "dev": dev, "start": entry["t"], "end": None, "ppid": entry.get("ppid")}
            out.append(open_[dev])
        elif dev in open_:
            open_.pop(dev)["end"] = entry["t"]
    return sorted(out, key=lambda i: i["start"])
