//! `--freeze ssm`: the freeze and thaw scripts sent through SSM Run Command (moto's), the
//! invocation states AWS gives answered by the proxy, and the scripts themselves run here against
//! a fake `fsfreeze`, a fake /proc/mounts and a fake /sys.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn db1(lab: &Lab) -> Value {
    lab.seed(
        json!({"instances": [{"name": "db1", "volumes": [{"device": "/dev/sdb"}],
        "snapshots": [{"device": "/dev/sdb", "age": 10 * 86_400}]}]}),
    )
}

/// A real run of db1 with `--freeze ssm` and `extra` flags.
fn frozen_run(lab: &Lab, extra: &[&str]) -> Run {
    let mut args = vec!["-t", "Name", "db1", "-u", "--freeze", "ssm"];
    args.extend_from_slice(extra);
    lab.run(&args)
}

/// The script of each SendCommand the binary sent, with the time it arrived.
fn commands(lab: &Lab) -> Vec<(String, f64)> {
    lab.requests("SendCommand")
        .iter()
        .map(|r| {
            assert_eq!(r["DocumentName"], "AWS-RunShellScript", "{r}");
            let script = r["Parameters"]["commands"][0].as_str().unwrap().to_string();
            (script, r["_time"].as_f64().unwrap())
        })
        .collect()
}

/// GetCommandInvocation's first `times` answers say `status` instead of Success.
fn invocations_say(lab: &Lab, status: &str, times: i64) {
    lab.faults(
        json!([{"action": "GetCommandInvocation", "times": times, "rewrite_re": [
        ["\"Status\":\\s*\"Success\"", format!("\"Status\": \"{status}\"")],
        ["\"StatusDetails\":\\s*\"Success\"", format!("\"StatusDetails\": \"{status}\"")],
        ["\"ResponseCode\":\\s*0", "\"ResponseCode\": 1"]]}]),
    );
}

/// db1 as a fake Linux machine whose SSM agent the proxy plays: its root volume on `/`, its data
/// volume on `/data`. The root's path.
fn db1_machine(lab: &Lab, seeded: &Value) -> std::path::PathBuf {
    let id = id_of(seeded, "db1");
    let disks = json!([
        {"volume_id": vol_of(seeded, "db1", "/dev/sda1"), "device": "/dev/sda1", "root": true, "mounts": ["/"]},
        {"volume_id": vol_of(seeded, "db1", "/dev/sdb"), "device": "/dev/sdb", "root": false, "mounts": ["/data"]},
    ]);
    lab.machine(&id, disks, json!({}))
}

#[test]
fn the_freeze_is_reported_before_the_snapshot_call_and_the_thaw_sent_right_after() {
    let lab = Lab::start();
    let seeded = db1(&lab);
    let id = id_of(&seeded, "db1");
    let data = vol_of(&seeded, "db1", "/dev/sdb");
    let root = db1_machine(&lab, &seeded);
    // SSM says InProgress twice before Success: ec2snap waits for the freeze to be reported.
    invocations_say(&lab, "InProgress", 2);
    let report = lab.dir.path().join("report.json");
    let r = frozen_run(
        &lab,
        &[
            "--freeze-timeout",
            "7",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let sent = commands(&lab);
    assert_eq!(sent.len(), 2, "{sent:?}");
    let (freeze, thaw) = (&sent[0], &sent[1]);
    // The watchdog is in the command, armed before the freeze, with --freeze-timeout.
    let armed = freeze.0.find(r#"$DETACH sh "$S/watchdog.sh""#).unwrap();
    assert!(
        armed < freeze.0.find("if fsfreeze -f").unwrap(),
        "{}",
        freeze.0
    );
    assert!(freeze.0.contains("THAW_AFTER=7\n"), "{}", freeze.0);
    assert!(thaw.0.contains(r#": > "$S/thaw""#), "{}", thaw.0);
    // Every command is dropped if no agent takes it soon, not after SSM's default hour.
    for r in lab.requests("SendCommand") {
        assert_eq!(r["TimeoutSeconds"], 30, "{r}");
    }
    let snapshot_calls = lab.requests("CreateSnapshot");
    assert_eq!(snapshot_calls.len(), 2);
    let polls = lab.stats()["GetCommandInvocation"];
    assert!(
        polls >= 4,
        "{polls} polls: the freeze's 3 (2 InProgress) and the thaw's"
    );
    for c in &snapshot_calls {
        let at = c["_time"].as_f64().unwrap();
        assert!(freeze.1 < at && at < thaw.1, "{freeze:?} {at} {thaw:?}");
    }
    // Only the data volume's filesystem was frozen: its snapshot is application-consistent,
    // the root's (never frozen) crash-consistent; the tag is raised after the thaw was sent.
    let made: Vec<Value> = lab
        .snapshots()
        .into_iter()
        .filter(|s| s["tags"]["ec2snap:consistency"].is_string())
        .collect();
    assert_eq!(made.len(), 2, "{made:?}");
    for s in &made {
        let want = if s["volume"] == data.as_str() {
            "application"
        } else {
            "crash"
        };
        assert_eq!(s["tags"]["ec2snap:consistency"], want, "{s}");
    }
    let raised = lab.requests("CreateTags");
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert!(raised[0]["_time"].as_f64().unwrap() > thaw.1);
    // Frozen once, thawed by the thaw (not the watchdog: 7 s had not passed).
    let frozen = lab.fake_root(&root, "intervals");
    assert_eq!(frozen.as_array().unwrap().len(), 1, "{frozen}");
    assert_eq!(frozen[0]["mnt"], "/data");
    assert!(frozen[0]["end"].as_f64().unwrap() - frozen[0]["start"].as_f64().unwrap() < 6.0);
    assert!(
        r.has(&format!("[INFO] Running the freeze hook of {id}")),
        "{r:?}"
    );
    assert!(
        r.has(&format!("[INFO] Running the thaw hook of {id}")),
        "{r:?}"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let hooks = &doc["instances"][0]["hooks"];
    assert_eq!(hooks["consistency"], "mixed", "{hooks}");
    assert_eq!(hooks["application"], json!([data]), "{hooks}");
    assert!(hooks["held_ms"].is_u64());
    assert!(hooks["frozen_ms"].is_u64(), "{hooks}");
    assert!(
        r.stderr.contains(&format!("Hooks of {id} done: snapshots of {data} application-consistent, the others crash-consistent, held ")),
        "{r:?}"
    );
}

#[test]
fn a_failed_or_timed_out_freeze_follows_on_hook_failure_and_is_still_thawed() {
    for (status, policy) in [
        ("Failed", "crash-consistent"),
        ("TimedOut", "crash-consistent"),
        ("Failed", "skip"),
        ("TimedOut", "skip"),
    ] {
        let lab = Lab::start();
        let seeded = db1(&lab);
        let id = id_of(&seeded, "db1");
        let old = seeded_snapshot_ids(&seeded, "db1");
        invocations_say(&lab, status, 1);
        let r = frozen_run(&lab, &["--on-hook-failure", policy]);
        assert_eq!(
            commands(&lab).len(),
            2,
            "{status} {policy}: the thaw is always sent: {r:?}"
        );
        let code = if status == "Failed" {
            " (exit status 1)"
        } else {
            ""
        };
        let why = format!("The freeze hook of {id} ended with SSM status {status}{code}");
        if policy == "skip" {
            assert_eq!(r.code, 2, "{r:?}");
            assert!(r.stderr.contains(&format!("[ERROR] {why}")), "{r:?}");
            assert!(lab.requests("CreateSnapshot").is_empty());
            assert_eq!(
                snapshot_ids(&lab.snapshots()),
                old.iter().cloned().collect()
            );
        } else {
            assert_eq!(r.code, 0, "{r:?}");
            assert!(r.stderr.contains(&format!("[WARNING] {why}")), "{r:?}");
            let crash = lab
                .snapshots()
                .into_iter()
                .filter(|s| s["tags"]["ec2snap:consistency"] == "crash")
                .count();
            assert_eq!(crash, 2, "{status}: {r:?}");
        }
    }
}

#[test]
fn a_refused_send_command_is_a_failed_freeze() {
    let lab = Lab::start();
    let seeded = db1(&lab);
    let id = id_of(&seeded, "db1");
    lab.faults(json!([{"action": "SendCommand", "times": -1, "status": 400, "code": "AccessDeniedException",
        "message": "not authorized to perform ssm:SendCommand"}]));
    let r = frozen_run(&lab, &["--on-hook-failure", "skip"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(&format!("[ERROR] The freeze hook of {id} could not be started: SendCommand: AccessDeniedException: not authorized to perform ssm:SendCommand")),
        "{r:?}"
    );
    // The thaw is tried too, and its refusal is an error of its own: the application may be held.
    assert!(
        r.stderr.contains(&format!(
            "[ERROR] The thaw hook of {id} could not be started"
        )),
        "{r:?}"
    );
}

/// A fake machine for the scripts: /proc/mounts, /sys with NVMe serials, a state directory, and
/// an `fsfreeze` that logs its arguments (and fails for the mount point in `$FAIL_ON`).
struct Machine {
    dir: tempfile::TempDir,
}

impl Machine {
    fn new(data_volume: &str) -> Machine {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let serial = data_volume.replace('-', "");
        let sys = d.join("sys");
        // nvme1n1: our volume, whole; nvme4n1p1: our volume again, a partition (two mounts of
        // one volume cannot be, but each shape must be found); nvme2n1: someone else's.
        for (dev, serial) in [
            ("nvme1n1", serial.as_str()),
            ("nvme4n1", serial.as_str()),
            ("nvme2n1", "vol0ffffff"),
            ("nvme0n1", "vol0root"),
        ] {
            std::fs::create_dir_all(sys.join(format!("devices/{dev}/device"))).unwrap();
            std::fs::write(
                sys.join(format!("devices/{dev}/device/serial")),
                format!("{serial}   \n"),
            )
            .unwrap();
        }
        for part in ["nvme4n1/nvme4n1p1", "nvme0n1/nvme0n1p1"] {
            std::fs::create_dir_all(sys.join(format!("devices/{part}"))).unwrap();
            std::fs::write(sys.join(format!("devices/{part}/partition")), "1\n").unwrap();
        }
        std::fs::create_dir_all(sys.join("class/block")).unwrap();
        for (name, target) in [
            ("nvme1n1", "nvme1n1"),
            ("nvme4n1", "nvme4n1"),
            ("nvme4n1p1", "nvme4n1/nvme4n1p1"),
            ("nvme2n1", "nvme2n1"),
            ("nvme0n1", "nvme0n1"),
            ("nvme0n1p1", "nvme0n1/nvme0n1p1"),
        ] {
            std::os::unix::fs::symlink(
                format!("../../devices/{target}"),
                sys.join(format!("class/block/{name}")),
            )
            .unwrap();
        }
        std::fs::write(
            d.join("mounts"),
            "/dev/nvme0n1p1 / ext4 rw,relatime 0 0\n\
             proc /proc proc rw 0 0\n\
             tmpfs /tmp tmpfs rw 0 0\n\
             /dev/nvme1n1 /data ext4 rw,relatime 0 0\n\
             /dev/nvme1n1 /data-ro ext4 ro,relatime 0 0\n\
             /dev/nvme4n1p1 /logs xfs rw,noatime 0 0\n\
             /dev/nvme2n1 /other ext4 rw 0 0\n",
        )
        .unwrap();
        std::fs::create_dir_all(d.join("bin")).unwrap();
        let fake = d.join("bin/fsfreeze");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\necho \"$1 $2\" >> {}/fsfreeze.log\n[ \"$2\" = \"${{FAIL_ON:-}}\" ] && exit 1\nexit 0\n",
                d.display()
            ),
        )
        .unwrap();
        let mut perms = std::fs::metadata(&fake).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&fake, perms).unwrap();
        std::fs::create_dir_all(d.join("run")).unwrap();
        Machine { dir }
    }

    /// Runs a script here: `(exit code, output)`.
    fn run(&self, script: &str, fail_on: &str) -> (i32, String) {
        let d = self.dir.path();
        let file = d.join("script.sh");
        std::fs::write(&file, script).unwrap();
        let path = format!(
            "{}:{}",
            d.join("bin").display(),
            std::env::var("PATH").unwrap()
        );
        let out = Command::new("sh")
            .arg(&file)
            .env("PATH", path)
            .env("EC2SNAP_MOUNTS", d.join("mounts"))
            .env("EC2SNAP_SYS", d.join("sys"))
            .env("EC2SNAP_STATE_DIR", d.join("run"))
            .env("FAIL_ON", fail_on)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), text)
    }

    fn log(&self) -> Vec<String> {
        let text =
            std::fs::read_to_string(self.dir.path().join("fsfreeze.log")).unwrap_or_default();
        text.lines().map(String::from).collect()
    }

    /// The state directories of the freezes of `instance` (one per run).
    fn states(&self, instance: &str) -> Vec<std::path::PathBuf> {
        let prefix = format!("ec2snap-freeze-{instance}.");
        std::fs::read_dir(self.dir.path().join("run"))
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .collect()
    }
}

/// The freeze and thaw scripts a real run sent, and the data volume they are about.
fn sent_scripts(freeze_timeout: &str) -> (String, String, String, String) {
    let lab = Lab::start();
    let seeded = db1(&lab);
    let r = frozen_run(&lab, &["--freeze-timeout", freeze_timeout]);
    assert_eq!(r.code, 0, "{r:?}");
    let sent = commands(&lab);
    (
        sent[0].0.clone(),
        sent[1].0.clone(),
        vol_of(&seeded, "db1", "/dev/sdb"),
        id_of(&seeded, "db1"),
    )
}

#[test]
fn the_scripts_freeze_the_snapshotted_filesystems_behind_a_watchdog_and_thaw_them() {
    let (freeze, thaw, data, id) = sent_scripts("2");
    for script in [&freeze, &thaw] {
        let check = Command::new("sh")
            .args(["-n", "-c", script])
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "sh -n: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let m = Machine::new(&data);
    let (code, out) = m.run(&freeze, "");
    assert_eq!(code, 0, "{out}");
    // The mounted, writable, non-root filesystems of the snapshotted volume, and only those.
    assert_eq!(m.log(), ["-f /data", "-f /logs"], "{out}");
    assert!(out.contains("watchdog armed"), "{out}");
    assert!(
        out.contains("frozen ") && out.contains("froze in "),
        "{out}"
    );
    assert_eq!(m.states(&id).len(), 1);
    // The thaw has the watchdog thaw them at once, and says for how long they were frozen.
    let (code, out) = m.run(&thaw, "");
    assert_eq!(code, 0, "{out}");
    assert_eq!(m.log()[2..], ["-u /data", "-u /logs"], "{out}");
    assert!(
        out.contains("watchdog: thawed (asked to)") && out.contains("held "),
        "{out}"
    );
    assert!(m.states(&id).is_empty());
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        m.log().len(),
        4,
        "the stopped watchdog thawed again: {:?}",
        m.log()
    );
}

#[test]
fn the_watchdog_thaws_by_itself_and_a_failed_freeze_thaws_at_once() {
    let (freeze, _, data, _) = sent_scripts("1");
    // Nobody sends the thaw (ec2snap killed, the network gone): the watchdog thaws.
    let m = Machine::new(&data);
    let (code, out) = m.run(&freeze, "");
    assert_eq!(code, 0, "{out}");
    let end = Instant::now() + Duration::from_secs(20);
    while m.log().len() < 4 {
        assert!(
            Instant::now() < end,
            "the watchdog did not thaw: {:?}",
            m.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(m.log()[2..], ["-u /data", "-u /logs"]);
    // A filesystem that cannot be frozen: what was frozen is thawed, and the script fails.
    let m = Machine::new(&data);
    let (code, out) = m.run(&freeze, "/logs");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("cannot freeze /logs"), "{out}");
    assert!(
        out.contains("watchdog: thawed (the freeze ended early)"),
        "{out}"
    );
    assert_eq!(m.log()[..2], ["-f /data", "-f /logs"]);
    assert!(
        m.log()[2..].contains(&"-u /data".to_string()),
        "{:?}",
        m.log()
    );
    // --hook-dry-run: it only says what it would freeze.
    let dry = freeze.replace("DRY=0\n", "DRY=1\n");
    let m = Machine::new(&data);
    let (code, out) = m.run(&dry, "");
    assert_eq!((code, m.log().len()), (0, 0), "{out}");
    assert!(
        out.contains("would freeze /data") && out.contains("would freeze /logs"),
        "{out}"
    );
    assert_eq!(
        Path::new(&m.dir.path().join("run"))
            .read_dir()
            .unwrap()
            .count(),
        0
    );
}

/// db1 on a fake machine whose data volume is mounted on each of `mounts`; a real run with
/// `--freeze ssm`. The run, the data volume's new snapshot's tags, and the root's freezes.
fn frozen_with_mounts(mounts: &[&str], extra: &[&str]) -> (Run, Value, Value, std::path::PathBuf) {
    let lab = Lab::start();
    let seeded = db1(&lab);
    let id = id_of(&seeded, "db1");
    let data = vol_of(&seeded, "db1", "/dev/sdb");
    let disks = json!([
        {"volume_id": vol_of(&seeded, "db1", "/dev/sda1"), "device": "/dev/sda1", "root": true, "mounts": ["/"]},
        {"volume_id": data, "device": "/dev/sdb", "root": false, "mounts": mounts},
    ]);
    let root = lab.machine(&id, disks, json!({}));
    let r = frozen_run(&lab, extra);
    let tags = lab
        .snapshots()
        .into_iter()
        .find(|s| s["volume"] == data.as_str() && s["tags"]["ec2snap:consistency"].is_string())
        .map(|s| s["tags"].clone())
        .unwrap_or(Value::Null);
    let intervals = lab.fake_root(&root, "intervals");
    (r, tags, intervals, root)
}

#[test]
fn odd_mount_points_are_frozen_by_their_real_path_never_run_and_a_bind_mount_once() {
    // A space (\040 in /proc/mounts): frozen by its real path.
    let (r, tags, frozen, _) = frozen_with_mounts(&["/srv/my data"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(tags["ec2snap:consistency"], "application", "{r:?}");
    assert_eq!(frozen[0]["mnt"], "/srv/my data", "{frozen}");
    // A name a shell would run: frozen as it is, and nothing ran.
    let (r, tags, frozen, root) = frozen_with_mounts(&["/srv/$(touch pwned)x"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(tags["ec2snap:consistency"], "application", "{r:?}");
    assert_eq!(frozen[0]["mnt"], "/srv/$(touch pwned)x", "{frozen}");
    assert!(!root.join("pwned").exists() && !std::path::Path::new("pwned").exists());
    // A bind mount of the same filesystem: frozen once (a second freeze would be EBUSY).
    let (r, tags, frozen, _) = frozen_with_mounts(&["/data", "/bind"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(tags["ec2snap:consistency"], "application", "{r:?}");
    assert_eq!(frozen.as_array().unwrap().len(), 1, "{frozen}");
}

#[test]
fn a_snapshot_answered_after_the_watchdog_could_thaw_is_crash_consistent() {
    // The snapshot call is held 3 s; the watchdog thaws 1 s after the freeze.
    let lab = Lab::start();
    let seeded = db1(&lab);
    let id = id_of(&seeded, "db1");
    let root = db1_machine(&lab, &seeded);
    lab.faults(json!([{"action": "CreateSnapshot", "times": -1, "delay": 3}]));
    let r = frozen_run(&lab, &["--freeze-timeout", "1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "[WARNING] The snapshot calls of {id} were answered after its watchdog may have thawed"
        )),
        "{r:?}"
    );
    for s in lab
        .snapshots()
        .iter()
        .filter(|s| s["tags"]["ec2snap:consistency"].is_string())
    {
        assert_eq!(s["tags"]["ec2snap:consistency"], "crash", "{s}");
    }
    assert!(lab.requests("CreateTags").is_empty());
    // The watchdog did thaw it, after about a second.
    let frozen = lab.fake_root(&root, "intervals");
    let held = frozen[0]["end"].as_f64().unwrap() - frozen[0]["start"].as_f64().unwrap();
    assert!((0.8..3.0).contains(&held), "{frozen}");
}

#[test]
fn a_second_freeze_thaws_nothing_of_the_first_and_no_process_is_killed() {
    let lab = Lab::start();
    let seeded = db1(&lab);
    let id = id_of(&seeded, "db1");
    let root = db1_machine(&lab, &seeded);
    // Another run froze /data (still within its own window) and left a state file of the old
    // shape naming a pid that is now someone else's process.
    let bystander = Command::new("sleep").arg("30").spawn().unwrap();
    std::fs::write(
        root.join(format!("run/ec2snap-freeze-{id}")),
        format!("{} /data\n", bystander.id()),
    )
    .unwrap();
    let freeze = Command::new(root.join("bin/fsfreeze"))
        .args(["-f", "/data"])
        .status()
        .unwrap();
    assert!(freeze.success());
    let r = frozen_run(&lab, &["--on-hook-failure", "crash-consistent"]);
    // Its freeze got EBUSY: crash-consistent snapshots, a warning, and the other freeze kept.
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("[WARNING] The freeze hook of {id}")),
        "{r:?}"
    );
    let now = lab.fake_root(&root, "frozen_now");
    assert!(
        now.get("/data").is_some(),
        "the other run's freeze was thawed: {now}"
    );
    let alive = std::fs::read_to_string(format!("/proc/{}/stat", bystander.id())).is_ok();
    let mut bystander = bystander;
    let _ = bystander.kill();
    let _ = bystander.wait();
    assert!(alive, "the thaw killed an unrelated process");
}

#[test]
fn a_dry_run_thaws_nothing_and_an_instance_without_the_agent_is_no_error() {
    let lab = Lab::start();
    let seeded = db1(&lab);
    let id = id_of(&seeded, "db1");
    db1_machine(&lab, &seeded);
    // --hook-dry-run: one script that only says what it would freeze; no thaw.
    let r = lab.run(&["-t", "Name", "db1", "--freeze", "ssm", "--hook-dry-run"]);
    assert_eq!(r.code, 0, "{r:?}");
    let sent = commands(&lab);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].0.contains("DRY=1\n"));
    // No SSM agent: SendCommand says InvalidInstanceId. A WARNING, crash-consistent snapshots,
    // no thaw sent, exit 0 (whatever --on-hook-failure says: no later run would do better).
    let body = json!({ id.as_str(): {"root": "/nonexistent", "agent": false} });
    lab.machines(body);
    let r = frozen_run(&lab, &["--on-hook-failure", "skip"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains(&format!("[WARNING] The freeze hook of {id} cannot run on this instance: SendCommand: InvalidInstanceId")),
        "{r:?}"
    );
    assert!(!r.stderr.contains("[ERROR]"), "{r:?}");
    assert_eq!(commands(&lab).len(), 2, "no thaw: {:?}", commands(&lab));
    let crash = lab
        .snapshots()
        .into_iter()
        .filter(|s| s["tags"]["ec2snap:consistency"] == "crash")
        .count();
    assert_eq!(crash, 2);
}
