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

#[test]
fn the_freeze_is_reported_before_the_snapshot_call_and_the_thaw_sent_right_after() {
    let lab = Lab::start();
    let seeded = db1(&lab);
    let id = id_of(&seeded, "db1");
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
    let armed = freeze.0.find("$DETACH sh -c").unwrap();
    assert!(
        armed < freeze.0.find("fsfreeze -f").unwrap(),
        "{}",
        freeze.0
    );
    assert!(freeze.0.contains("THAW_AFTER=7\n"), "{}", freeze.0);
    assert!(thaw.0.contains("fsfreeze -u"), "{}", thaw.0);
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
    for s in lab
        .snapshots()
        .iter()
        .filter(|s| s["tags"]["ec2snap:consistency"].is_string())
    {
        assert_eq!(s["tags"]["ec2snap:consistency"], "application", "{s}");
    }
    assert!(
        r.has(&format!("[INFO] Running the freeze hook of {id}")),
        "{r:?}"
    );
    assert!(
        r.has(&format!("[INFO] Running the thaw hook of {id}")),
        "{r:?}"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(doc["instances"][0]["hooks"]["consistency"], "application");
    assert!(doc["instances"][0]["hooks"]["held_ms"].is_u64());
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

    fn state(&self, instance: &str) -> std::path::PathBuf {
        self.dir
            .path()
            .join(format!("run/ec2snap-freeze-{instance}"))
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
    assert!(m.state(&id).exists());
    // The thaw thaws them and stops the watchdog.
    let (code, out) = m.run(&thaw, "");
    assert_eq!(code, 0, "{out}");
    assert_eq!(m.log()[2..], ["-u /data", "-u /logs"], "{out}");
    assert!(!m.state(&id).exists());
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
