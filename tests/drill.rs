#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `ec2snap drill` against moto behind the fault proxy, with real signals: a drill that passes,
//! one whose check fails, one stopped by SIGTERM, one killed with SIGKILL and cleaned up by the
//! next; no drill volume is ever left; the metrics and `--drill-max-age`.

mod common;

use common::*;
use serde_json::{json, Value};

/// web1 and db1, each backed up once; the lab and web1's id.
fn drill_lab() -> (Lab, Value) {
    let lab = Lab::start();
    let seeded = lab.seed(json!({"instances": [
        {"name": "web1", "volumes": [{"device": "/dev/sdb"}]},
        {"name": "db1"}]}));
    let r = lab.run(&["-t", "Name", "*", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    (lab, seeded)
}

/// The volumes a drill made that are still there.
fn drill_volumes(lab: &Lab) -> Vec<Value> {
    lab.volumes()
        .into_iter()
        .filter(|v| v["tags"]["ec2snap:drill"].is_string())
        .collect()
}

#[test]
fn a_drill_restores_checks_and_deletes_and_monitoring_sees_it() {
    let (lab, seeded) = drill_lab();
    let web = id_of(&seeded, "web1");
    let db = id_of(&seeded, "db1");
    // Before any drill, the check is CRITICAL for both instances.
    let r = lab.run(&["-t", "Name", "*", "--drill-max-age", "8", "d"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stdout
            .starts_with("EC2SNAP CRITICAL - 2 of 2 instances without a passed drill within 8d"),
        "{}",
        r.stdout
    );
    // The dry run says what it would restore and makes nothing.
    lab.reset_stats();
    let dry = lab.run(&["drill", "-i", &web]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert_eq!(dry.count("[INFO] Would restore snap-"), 2, "{dry:?}");
    assert!(lab.writes().is_empty(), "{:?}", lab.stats());
    // The real one: the check sees the volumes in its environment; they are deleted after.
    let dir = lab.dir.path();
    let seen = dir.join("seen");
    let metrics = dir.join("drill.prom");
    let check = format!(
        "echo \"$EC2SNAP_DRILL_INSTANCE $EC2SNAP_DRILL_VOLUMES\" > {}",
        seen.display()
    );
    let r = lab.run(&[
        "drill",
        "-i",
        &web,
        "--drill-check",
        &check,
        "-u",
        "--metrics-file",
        metrics.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let seen = std::fs::read_to_string(&seen).unwrap();
    let (instance, volumes) = seen.trim().split_once(' ').unwrap();
    assert_eq!(instance, web);
    let volumes: Vec<&str> = volumes.split(' ').collect();
    assert_eq!(volumes.len(), 2, "{seen}");
    assert!(volumes.iter().any(|v| v.ends_with("=/dev/sdb")), "{seen}");
    for v in &volumes {
        let id = v.split('=').next().unwrap();
        assert!(
            r.has(&format!("[INFO] Deleting drill volume {id}")),
            "{r:?}"
        );
    }
    assert!(drill_volumes(&lab).is_empty());
    assert!(
        r.has(&format!(
            "[INFO] Drill of {web} passed: 2 volumes restored and deleted"
        )),
        "{r:?}"
    );
    let samples = parse_metrics(&metrics);
    let last = samples
        .iter()
        .find(|s| {
            s["name"] == "ec2snap_drill_last_success_timestamp_seconds"
                && s["labels"]["instance"] == web.as_str()
        })
        .unwrap();
    assert!(last["value"].as_f64().unwrap() > 1.7e9, "{last}");
    assert_eq!(metric(&samples, "ec2snap_drill_success"), 1.0);
    // web1 is drilled now, db1 is not.
    let r = lab.run(&["-i", &web, "--drill-max-age", "1", "d"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .starts_with("EC2SNAP OK - 1 instances, restore drills passed at most"),
        "{}",
        r.stdout
    );
    let r = lab.run(&[
        "-t",
        "Name",
        "*",
        "--drill-max-age",
        "1",
        "d",
        "--check-max-age",
        "1",
        "d",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stdout.contains(&format!(
            "1 of 2 instances without a passed drill within 24h: {db} (db1) none"
        )),
        "{}",
        r.stdout
    );
}

#[test]
fn a_failed_check_fails_the_drill_and_still_deletes_its_volumes() {
    let (lab, seeded) = drill_lab();
    let web = id_of(&seeded, "web1");
    let report = lab.dir.path().join("report.json");
    let r = lab.run(&[
        "drill",
        "-i",
        &web,
        "--drill-check",
        "exit 3",
        "-u",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.has(&format!(
            "[ERROR] Drill of {web} FAILED: --drill-check exited 3"
        )),
        "{r:?}"
    );
    assert!(drill_volumes(&lab).is_empty(), "nothing left");
    let rep: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let drill = &rep["instances"][0]["drill"];
    assert_eq!(
        (&drill["result"], &drill["check_exit"]),
        (&json!("failed"), &json!(3)),
        "{rep:#}"
    );
    let states: Vec<&str> = rep["instances"][0]["restored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["deleted", "deleted"], "{rep:#}");
    // No pass was tagged on the instance.
    let inst = lab
        .instances()
        .into_iter()
        .find(|i| i["id"] == web.as_str())
        .unwrap();
    assert!(inst["tags"]["ec2snap:drill-ok"].is_null(), "{inst}");
}

#[test]
fn sigterm_in_the_check_deletes_the_volumes_and_sigkill_is_cleaned_up_by_the_next_drill() {
    let (lab, seeded) = drill_lab();
    let web = id_of(&seeded, "web1");
    // The check waits (its output is logged, escaped, line by line once it ends).
    let check = "echo check-started >&2; exec sleep 60 >/dev/null 2>&1";
    let live = lab.spawn(&["drill", "-i", &web, "--drill-check", check, "-u"]);
    live.wait_for(&format!("Running --drill-check for {web}"), 1);
    assert_eq!(drill_volumes(&lab).len(), 2);
    live.signal("TERM");
    let (code, lines) = live.finish();
    assert_eq!(code, Some(143), "{lines:#?}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("[INFO] Deleting drill volume vol-"))
            .count(),
        2,
        "{lines:#?}"
    );
    assert!(drill_volumes(&lab).is_empty(), "SIGTERM leaves nothing");
    // SIGKILL: nothing can run, the volumes stay, tagged; the next drill deletes them first.
    let live = lab.spawn(&["drill", "-i", &web, "--drill-check", check, "-u"]);
    live.wait_for(&format!("Running --drill-check for {web}"), 1);
    live.signal("KILL");
    let (code, _) = live.finish();
    assert_eq!(code, None, "killed");
    let left: Vec<String> = drill_volumes(&lab)
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left.len(), 2);
    let dry = lab.run(&["drill", "-i", &web]);
    for id in &left {
        assert!(
            dry.lines()
                .iter()
                .any(|l| l.starts_with(&format!("[INFO] Would delete volume {id} left by drill "))),
            "{dry:?}"
        );
    }
    assert_eq!(drill_volumes(&lab).len(), 2, "a dry run deletes nothing");
    let r = lab.run(&["drill", "-i", &web, "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    for id in &left {
        assert!(
            r.lines()
                .iter()
                .any(|l| l.starts_with(&format!("[INFO] Deleting volume {id} left by drill "))),
            "{r:?}"
        );
    }
    assert!(drill_volumes(&lab).is_empty());
}

#[test]
fn a_sample_drills_n_of_the_selected_instances() {
    let (lab, _) = drill_lab();
    let r = lab.run(&["drill", "-t", "Name", "*", "--drill-sample", "1", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.count("[INFO] Drill of i-"), 1, "{r:?}");
    assert!(drill_volumes(&lab).is_empty());
}

#[test]
fn two_drills_at_once_never_delete_each_others_volumes() {
    let (lab, seeded) = drill_lab();
    let web = id_of(&seeded, "web1");
    let db = id_of(&seeded, "db1");
    // The first drill holds web1's volumes while its check runs.
    let first = lab.spawn(&["drill", "-i", &web, "--drill-check", "sleep 4", "-u"]);
    first.wait_for(&format!("Running --drill-check for {web}"), 1);
    let held: Vec<String> = drill_volumes(&lab)
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(held.len(), 2);
    // The second, of db1, leaves them to it.
    let second = lab.run(&["drill", "-i", &db, "-u"]);
    assert_eq!(second.code, 0, "{second:?}");
    for v in &held {
        assert!(
            second
                .stderr
                .contains(&format!("[INFO] Leaving volume {v} to drill host=")),
            "{second:?}"
        );
    }
    let deleted: Vec<Value> = lab.requests("DeleteVolume");
    assert!(
        deleted
            .iter()
            .all(|d| !held.contains(&d["VolumeId"].as_str().unwrap().to_string())),
        "the second drill deleted a running drill's volume: {deleted:?}"
    );
    let (code, lines) = first.finish();
    assert_eq!(code, Some(0), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l == &format!("[INFO] Drill of {web} passed: 2 volumes restored and deleted")),
        "{lines:#?}"
    );
    assert!(drill_volumes(&lab).is_empty());
}

#[test]
fn the_check_is_bounded_its_group_killed_and_a_killed_check_is_a_failed_check() {
    let (lab, seeded) = drill_lab();
    let web = id_of(&seeded, "web1");
    // A check that leaves a child behind and never ends: killed at --drill-timeout, children too.
    let pid_file = lab.dir.path().join("child.pid");
    let check = format!("sleep 300 & echo $! > {}; wait", pid_file.display());
    let r = lab.run(&[
        "drill",
        "-i",
        &web,
        "--drill-check",
        &check,
        "--drill-timeout",
        "2",
        "-u",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.has(&format!("[ERROR] Drill of {web} FAILED: --drill-check was still running after 2 s (--drill-timeout): its process group was killed")),
        "{r:?}"
    );
    let child = std::fs::read_to_string(&pid_file).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.trim())).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "its child still runs: {stat}"
    );
    assert!(drill_volumes(&lab).is_empty());
    // A check killed by a signal (here, by itself) failed: it is not the backup's fault. Its
    // output is in the log, escaped, a line each.
    let r = lab.run(&[
        "drill",
        "-i",
        &web,
        "--drill-check",
        "printf 'one\\033[31m\\ntwo\\n'; kill -9 $$",
        "-u",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.has(&format!(
            "[ERROR] Drill of {web} FAILED: --drill-check was killed by a signal"
        )),
        "{r:?}"
    );
    assert!(
        r.has(&format!("[INFO] --drill-check for {web}: one\\u{{1b}}[31m")),
        "{r:?}"
    );
    assert!(
        r.has(&format!("[INFO] --drill-check for {web}: two")),
        "{r:?}"
    );
    // Bad input.
    let r = lab.run(&[
        "drill",
        "-i",
        &web,
        "--drill-timeout",
        "0",
        "--drill-check",
        "true",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("--drill-timeout takes 1 to 86400 seconds"),
        "{r:?}"
    );
}

#[test]
fn restore_and_drill_with_no_matching_instance_fail_and_say_so() {
    let (lab, _) = drill_lab();
    for cmd in ["restore", "drill"] {
        let r = lab.run(&[cmd, "-t", "Name", "nothing-like-this", "-u"]);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(
            r.has(&format!(
                "[ERROR] No instance matches the selection: nothing to {cmd}"
            )),
            "{r:?}"
        );
    }
}
