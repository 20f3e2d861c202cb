//! Hot snapshots, selection, dry run, logs and exit codes, against moto through the fault proxy.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::json;

#[test]
fn dry_run_reports_every_volume_and_changes_nothing() {
    let lab = Lab::start();
    let seeded = lab.seed(json!({"instances": [
        {"name": "instance-name1", "volumes": [{"device": "/dev/sdb"}]},
        {"name": "instance-name2", "volumes": [{"device": "/dev/sdb"}, {"device": "/dev/sdc"}]},
        {"name": "other"}
    ]}));
    lab.reset_stats();
    let r = lab.run(&["-t", "Name", "instance-name*"]);
    assert_eq!(r.code, 0, "{r:?}");
    let mut ids = vec![
        id_of(&seeded, "instance-name1"),
        id_of(&seeded, "instance-name2"),
    ];
    ids.sort();
    let mut want = vec![
        "[INFO] == Launching dry run mode ==".to_string(),
        "[INFO] Connecting to AWS".into(),
        "[INFO] Getting instances information".into(),
    ];
    for id in &ids {
        let name = if *id == id_of(&seeded, "instance-name1") {
            "instance-name1"
        } else {
            "instance-name2"
        };
        want.push(format!("[INFO] Working on instance {id} ({name})"));
        let mut devices: Vec<&str> = vec!["/dev/sda1", "/dev/sdb"];
        if name == "instance-name2" {
            devices.push("/dev/sdc");
        }
        for d in devices {
            want.push(format!(
                "[INFO] Hot snapshot made for {}({d})",
                vol_of(&seeded, name, d)
            ));
        }
    }
    assert_eq!(r.lines(), want);
    assert!(lab.writes().is_empty(), "dry run sent {:?}", lab.stats());
    assert!(lab.snapshots().is_empty());
}

#[test]
fn run_mode_makes_tagged_snapshots_in_one_call() {
    let lab = Lab::start();
    let seeded = lab.seed(json!({"instances": [
        {"name": "front1", "volumes": [{"device": "/dev/sdb", "tags": {"team": "web", "aws:cloudformation:stack-name": "s"}}]}
    ]}));
    lab.reset_stats();
    let r = lab.run(&[
        "-t",
        "Name",
        "front*",
        "-u",
        "-e",
        "type:backup",
        "env:prod",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = id_of(&seeded, "front1");
    let root = vol_of(&seeded, "front1", "/dev/sda1");
    let data = vol_of(&seeded, "front1", "/dev/sdb");
    let snaps = lab.snapshots();
    assert_eq!(snaps.len(), 2);
    let of = |vol: &str| snaps.iter().find(|s| s["volume"] == vol).unwrap().clone();
    let root_snap = of(&root);
    assert_eq!(
        root_snap["description"],
        format!("{id} (front1) - Hot /dev/sda1 ({root})")
    );
    assert_eq!(
        root_snap["tags"],
        json!({"type": "backup", "volume": root, "device": "/dev/sda1", "instance name": "front1", "env": "prod"})
    );
    let data_snap = of(&data);
    assert_eq!(
        data_snap["description"],
        format!("{id} (front1) - Hot /dev/sdb ({data})")
    );
    assert_eq!(
        data_snap["tags"],
        json!({"team": "web", "type": "backup", "env": "prod"})
    );
    assert!(r.has("[INFO] == Launching run mode =="));
    assert!(r.has(&format!(
        "[INFO] Hot snapshot made for {root}(/dev/sda1) - {}",
        root_snap["id"].as_str().unwrap()
    )));
    assert!(r.has(&format!(
        "[INFO] Hot snapshot made for {data}(/dev/sdb) - {}",
        data_snap["id"].as_str().unwrap()
    )));
    let stats = lab.stats();
    assert_eq!(stats.get("CreateSnapshot"), Some(&2));
    assert_eq!(
        stats.get("CreateTags"),
        None,
        "tags must be set in CreateSnapshot itself: {stats:?}"
    );
    assert_eq!(r.stdout, "");
}

#[test]
fn selection_union_dedup_and_every_tag_must_match() {
    let lab = Lab::start();
    let seeded = lab.seed(json!({"instances": [
        {"name": "front1", "tags": {"env": "prod", "project": "foo"}},
        {"name": "front2", "tags": {"env": "dev", "project": "foo"}},
        {"name": "back1", "tags": {"env": "prod", "project": "foo"}},
        {"name": "front3", "tags": {"env": "prod", "project": "foo"}, "state": "terminated"},
        {"tags": {"env": "prod", "project": "bar"}}
    ]}));
    // Two tags: both must match; the terminated match is skipped, not fatal.
    let r = lab.run(&[
        "-t", "project", "foo", "-t", "Name", "front*", "-t", "env", "prod",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.working_on().len(), 1, "{r:?}");
    assert!(r.has(&format!(
        "[INFO] Working on instance {} (front1)",
        id_of(&seeded, "front1")
    )));
    // Same tag twice: both patterns must match.
    let r = lab.run(&["-t", "Name", "*1", "-t", "Name", "front*"]);
    assert_eq!(r.working_on().len(), 1, "{r:?}");
    assert!(r.has(&format!(
        "[INFO] Working on instance {} (front1)",
        id_of(&seeded, "front1")
    )));
    // -i plus -t: union, each once.
    let back = id_of(&seeded, "back1");
    let f1 = id_of(&seeded, "front1");
    let r = lab.run(&["-t", "Name", "front1", "-i", &back, "-i", &f1, "-i", &back]);
    assert_eq!(r.working_on().len(), 2, "{r:?}");
    // -i all: every instance that is not terminated, the unnamed one included, in id order.
    let r = lab.run(&["-i", "all"]);
    assert_eq!(r.code, 0, "{r:?}");
    let working = r.working_on();
    assert_eq!(working.len(), 4, "{r:?}");
    let mut sorted = working.clone();
    sorted.sort();
    assert_eq!(working, sorted, "instances are processed in id order");
    assert!(
        working.iter().any(|l| l.ends_with(" ()")),
        "unnamed instance shows an empty name: {working:?}"
    );
    assert!(!r.stderr.contains(&id_of(&seeded, "front3")));
}

#[test]
fn no_match_is_an_error_line_and_unknown_id_is_counted() {
    let lab = Lab::start();
    lab.seed(json!({"instances": [{"name": "front1"}]}));
    let r = lab.run(&["-t", "Name", "nothing*"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.lines().last().unwrap(),
        "[ERROR] No instances found with those parameters !"
    );
    let r = lab.run(&["-i", "i-0123456789abcdef0", "-u"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.has("[ERROR] Instance i-0123456789abcdef0 not found"),
        "{r:?}"
    );
    assert_eq!(r.stdout, error_summary(1, 0));
}

#[test]
fn limit_root_device_and_no_snap() {
    let lab = Lab::start();
    let seeded = lab.seed(fleet("node", 3));
    let mut ids: Vec<String> = (1..=3)
        .map(|i| id_of(&seeded, &format!("node{i}")))
        .collect();
    ids.sort();
    let r = lab.run(&["-t", "Name", "node*", "-l", "1", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    let working: Vec<String> = r
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("[INFO] Working"))
        .collect();
    assert_eq!(working.len(), 2);
    assert!(working[0].contains(&ids[0]) && working[1].contains(&ids[1]));
    assert_eq!(
        r.lines().last().unwrap(),
        "[INFO] The requested limit of snapshots has been reached: 1"
    );
    assert_eq!(
        lab.snapshots().len(),
        2,
        "only the first instance's two volumes"
    );

    let before = lab.snapshots().len();
    let r = lab.run(&["-t", "Name", "node*", "-o", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.count("[INFO] Hot snapshot made for"), 3);
    assert!(
        !r.stderr.contains("(/dev/sda1)"),
        "root device skipped: {r:?}"
    );
    let snaps = lab.snapshots();
    assert_eq!(snaps.len(), before + 3);

    lab.reset_stats();
    let r = lab.run(&["-t", "Name", "node*", "-n", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.count("[INFO] Hot snapshot"), 0);
    assert_eq!(lab.stats().get("CreateSnapshot"), None);
}

#[test]
fn log_file_levels_and_format() {
    let lab = Lab::start();
    lab.seed(json!({"instances": [{"name": "front1"}]}));
    let log = lab.dir.path().join("ec2snap.log");
    std::fs::write(&log, "earlier line\n").unwrap();
    let r = lab.run(&["-t", "Name", "front1", "-f", log.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    let file = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        file,
        format!("earlier line\n{}", r.stderr),
        "the file gets the same lines, appended"
    );
    for line in r.stderr.lines() {
        assert_ne!(strip_time(line), line, "timestamped: {line}");
    }
    let r = lab.run(&["-t", "Name", "front1", "-v", "ERROR"]);
    assert_eq!(r.stderr, "");
    let r = lab.run(&["-t", "Name", "front1", "-v", "LOUD", "-s"]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.lines()[0],
        "[WARNING] Option of log level LOUD incorrect, using INFO."
    );
    assert!(r.has("[INFO] Connecting to AWS"));
    let r = lab.run(&["-t", "Name", "front1", "-v", "debug"]);
    assert!(r.count("[DEBUG]") > 0, "{r:?}");
}

#[test]
fn failed_snapshot_is_critical_counted_and_exit_2() {
    let lab = Lab::start();
    let seeded = lab.seed(fleet("db", 2));
    lab.faults(json!([{"action": "CreateSnapshot", "times": 1, "status": 400, "code": "IncorrectState", "message": "volume is busy"}]));
    let r = lab.run(&["-t", "Name", "db*", "-u"]);
    assert_eq!(r.code, 2, "{r:?}");
    let crit: Vec<String> = r
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("[CRITICAL]"))
        .collect();
    assert_eq!(crit.len(), 1, "{r:?}");
    assert!(
        crit[0].starts_with("[CRITICAL] Hot snapshot failed for vol-"),
        "{}",
        crit[0]
    );
    assert!(
        crit[0].ends_with("[IncorrectState: volume is busy]"),
        "{}",
        crit[0]
    );
    assert_eq!(r.stdout, error_summary(1, 0));
    // The run went on: the other three volumes were snapshotted.
    assert_eq!(lab.snapshots().len(), 3);
    let _ = seeded;
}

#[test]
fn throttling_and_5xx_are_retried() {
    let lab = Lab::start();
    lab.seed(fleet("web", 1));
    lab.faults(json!([
        {"action": "DescribeInstances", "times": 1, "status": 500, "code": "InternalError"},
        {"action": "CreateSnapshot", "times": 2, "status": 503, "code": "RequestLimitExceeded", "message": "Request limit exceeded."}
    ]));
    lab.reset_stats();
    let r = lab.run(&["-t", "Name", "web*", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(lab.snapshots().len(), 2);
    let stats = lab.stats();
    assert_eq!(
        stats.get("CreateSnapshot"),
        Some(&4),
        "2 throttled + 2 made: {stats:?}"
    );
    // The stop-mark scan (its 500 retried once), then the selection.
    assert_eq!(stats.get("DescribeInstances"), Some(&3), "{stats:?}");
}

#[test]
fn persistent_throttling_gives_up_with_the_aws_code() {
    let lab = Lab::start();
    lab.seed(fleet("web", 1));
    lab.faults(json!([{"action": "CreateSnapshot", "status": 503, "code": "RequestLimitExceeded", "message": "Request limit exceeded."}]));
    let r = lab.run(&["-t", "Name", "web*", "-u", "--max-attempts", "2"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.count("[CRITICAL] Hot snapshot failed"), 2);
    assert!(
        r.stderr
            .contains("[RequestLimitExceeded: Request limit exceeded.]"),
        "{r:?}"
    );
    assert_eq!(lab.stats().get("CreateSnapshot"), Some(&4));
}

#[test]
fn describe_instances_is_paginated() {
    let lab = Lab::start();
    lab.seed(fleet("n", 5));
    lab.faults(json!([{"action": "DescribeInstances", "page_size": 2}]));
    lab.reset_stats();
    let r = lab.run(&["-t", "Name", "n*"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.working_on().len(), 5, "{r:?}");
    // One for the stop-mark scan (nothing found), three pages for the selection.
    assert_eq!(lab.stats().get("DescribeInstances"), Some(&4));
}

#[test]
fn unreachable_endpoint_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_cmd(
        bare_cmd(dir.path())
            .env("AWS_ACCESS_KEY_ID", "x")
            .env("AWS_SECRET_ACCESS_KEY", "y")
            .args([
                "-i",
                "all",
                "-r",
                REGION,
                "--endpoint-url",
                "http://127.0.0.1:9",
                "--max-attempts",
                "1",
            ]),
    );
    assert_eq!(r.code, 1, "{r:?}");
    let last = r.lines().last().unwrap().clone();
    assert!(
        last.starts_with("[CRITICAL] Cannot list instances"),
        "{last}"
    );
    assert!(
        !last.ends_with("service error") && !last.ends_with("dispatch failure"),
        "{last}"
    );
}
