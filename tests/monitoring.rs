//! Knowing that backups work: the JSON run report, the Prometheus metrics file (read with the
//! Prometheus client library's parser) and the freshness check with the plugin exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::Path;

const DAY: i64 = 86_400;

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn report_of_a_dry_run_then_of_the_real_run() {
    let (lab, seeded) = web_lab_with_old_snapshot();
    let id = id_of(&seeded, "web1");
    let sdb = vol_of(&seeded, "web1", "/dev/sdb");
    let old = seeded_snapshot_ids(&seeded, "web1");
    let file = lab.dir.path().join("report.json");
    let f = file.to_str().unwrap();
    let args = [
        "-t",
        "Name",
        "web1",
        "-g",
        "5",
        "d",
        "--report",
        f,
        "-k",
        "AKIAX",
        "-a",
        "SECRETKEY",
    ];
    let r = lab.run(&args);
    assert_eq!(r.code, 0, "{r:?}");
    let dry = read_json(&file);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["exit_code"], 0);
    assert_eq!(dry["region"], REGION);
    assert_eq!(dry["version"], env!("CARGO_PKG_VERSION"));
    let inst = &dry["instances"][0];
    assert_eq!(
        (
            inst["id"].as_str(),
            inst["name"].as_str(),
            inst["cold"].as_bool()
        ),
        (Some(id.as_str()), Some("web1"), Some(false))
    );
    assert_eq!(inst["snapshots"].as_array().unwrap().len(), 2);
    assert!(inst["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["id"].is_null() && s["state"] == "planned"));
    assert_eq!(
        inst["deleted"],
        json!([{"id": old[0], "volume": sdb, "start_time": inst["deleted"][0]["start_time"], "reason": "age"}])
    );
    assert_eq!(
        dry["totals"],
        json!({"instances": 1, "snapshots_made": 0, "snapshot_errors": 0, "deleted": 0, "deletion_errors": 0, "copies_made": 0, "held": 0})
    );
    assert!(!std::fs::read_to_string(&file)
        .unwrap()
        .contains("SECRETKEY"));

    let mut run_args = args.to_vec();
    run_args.push("-u");
    let r = lab.run(&run_args);
    assert_eq!(r.code, 0, "{r:?}");
    let real = read_json(&file);
    assert_eq!(real["dry_run"], false);
    let snaps = real["instances"][0]["snapshots"].as_array().unwrap();
    let made: Vec<String> = lab
        .snapshots()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    for s in snaps {
        assert!(made.contains(&s["id"].as_str().unwrap().to_string()), "{s}");
        assert_eq!(s["state"], "pending");
        assert!(s["description"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{id} (web1) - Hot /dev/")));
    }
    assert_eq!(
        real["totals"],
        json!({"instances": 1, "snapshots_made": 2, "snapshot_errors": 0, "deleted": 1, "deletion_errors": 0, "copies_made": 0, "held": 0})
    );
    assert!(real["started"].as_str().unwrap() <= real["finished"].as_str().unwrap());
}

#[test]
fn report_lists_errors_with_their_aws_codes_and_goes_to_stdout_with_dash() {
    let (lab, seeded) = web_lab_with_old_snapshot();
    let root = vol_of(&seeded, "web1", "/dev/sda1");
    let old = seeded_snapshot_ids(&seeded, "web1");
    // The root's snapshot is refused; the data volume's is made and its old one cannot be deleted.
    lab.faults(json!([
        {"action": "CreateSnapshot", "times": 1, "status": 403, "code": "UnauthorizedOperation", "message": "no snapshot"},
        {"action": "DeleteSnapshot", "times": 1, "status": 400, "code": "InvalidSnapshot.InUse", "message": "in use"}
    ]));
    let r = lab.run(&["-t", "Name", "web1", "-g", "5", "d", "-u", "--report", "-"]);
    assert_eq!(r.code, 2, "{r:?}");
    let report: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    assert!(
        r.stderr.contains("Number of snapshots errors: 1"),
        "the summary goes to stderr: {r:?}"
    );
    assert_eq!(report["exit_code"], 2);
    let errors = &report["instances"][0]["errors"];
    assert_eq!(
        errors,
        &json!([
            {"action": "CreateSnapshot", "resource": root, "kind": "aws", "code": "UnauthorizedOperation", "message": "no snapshot"},
            {"action": "DeleteSnapshot", "resource": old[0], "kind": "aws", "code": "InvalidSnapshot.InUse", "message": "in use"}
        ])
    );
    assert_eq!(report["totals"]["snapshot_errors"], 1);
    assert_eq!(report["totals"]["deletion_errors"], 1);
    assert_eq!(report["totals"]["snapshots_made"], 1);
}

#[test]
fn report_is_written_when_a_signal_ends_a_cold_run() {
    let lab = Lab::start();
    let seeded = lab.seed(json!({"instances": [{"name": "db1"}]}));
    let id = id_of(&seeded, "db1");
    let file = lab.dir.path().join("report.json");
    lab.faults(json!([{"action": "CreateSnapshot", "delay": 5}]));
    let live = lab.spawn(&[
        "-t",
        "Name",
        "db1",
        "-H",
        "-u",
        "--report",
        file.to_str().unwrap(),
    ]);
    live.wait_for(&format!("Instance {id} now stopped !"), 1);
    live.signal("TERM");
    let (code, lines) = live.finish();
    assert_eq!(code, Some(143), "{lines:#?}");
    let report = read_json(&file);
    assert_eq!(report["exit_code"], 143);
    assert_eq!(report["instances"][0]["cold"], true);
    assert_eq!(lab.instance_state(&id), "running");
}

#[test]
fn metrics_are_parsed_by_prometheus_and_last_success_survives_a_failure() {
    let (lab, _) = web_lab_with_old_snapshot();
    let file = lab.dir.path().join("ec2snap.prom");
    let f = file.to_str().unwrap();
    let r = lab.run(&[
        "-t",
        "Name",
        "web1",
        "-g",
        "5",
        "d",
        "-u",
        "--metrics-file",
        f,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let first = parse_metrics(&file);
    assert!(
        first.iter().all(|s| s["labels"]["job"] == "Name=web1"),
        "{first:?}"
    );
    let success = metric(&first, "ec2snap_last_success_timestamp_seconds");
    assert!(success > 1.7e9, "{first:?}");
    assert_eq!(
        success,
        metric(&first, "ec2snap_last_run_timestamp_seconds")
    );
    assert_eq!(metric(&first, "ec2snap_exit_code"), 0.0);
    assert_eq!(metric(&first, "ec2snap_snapshots_created"), 2.0);
    assert_eq!(metric(&first, "ec2snap_snapshots_deleted"), 1.0);
    assert!(metric(&first, "ec2snap_run_duration_seconds") > 0.0);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    lab.faults(
        json!([{"action": "CreateSnapshot", "status": 403, "code": "UnauthorizedOperation"}]),
    );
    let r = lab.run(&["-t", "Name", "web1", "-u", "--metrics-file", f]);
    assert_eq!(r.code, 2, "{r:?}");
    let second = parse_metrics(&file);
    assert_eq!(
        metric(&second, "ec2snap_last_success_timestamp_seconds"),
        success,
        "carried over"
    );
    assert!(metric(&second, "ec2snap_last_run_timestamp_seconds") > success);
    assert_eq!(metric(&second, "ec2snap_exit_code"), 2.0);
    assert_eq!(metric(&second, "ec2snap_snapshot_errors"), 2.0);
    // No temporary file is left beside it.
    let names: Vec<String> = std::fs::read_dir(lab.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".tmp-")), "{names:?}");
}

/// `ec2snap -t Name fresh --check-max-age 1 d` and `extra`.
fn check_fresh(lab: &Lab, extra: &[&str]) -> Run {
    let mut args = vec!["-t", "Name", "fresh", "--check-max-age", "1", "d"];
    args.extend_from_slice(extra);
    lab.run(&args)
}

#[test]
fn freshness_check_ok_critical_and_unknown() {
    let lab = Lab::start();
    let seeded = lab.seed(json!({"instances": [
        {"name": "fresh", "volumes": [{"device": "/dev/sdb"}], "snapshots": [{"device": "/dev/sdb", "age": 3600}]},
        {"name": "stale", "volumes": [{"device": "/dev/sdb"}], "snapshots": [{"device": "/dev/sdb", "age": 3 * DAY}]},
        {"name": "never", "volumes": [{"device": "/dev/sdb"}]},
        {"name": "pending", "volumes": [{"device": "/dev/sdb"}], "snapshots": [{"device": "/dev/sdb", "age": 60}]}
    ]}));
    let vol = |n: &str| vol_of(&seeded, n, "/dev/sdb");
    let id = |n: &str| id_of(&seeded, n);
    let pending_snap = seeded_snapshot_ids(&seeded, "pending")[0].clone();
    lab.reset_stats();
    let r = lab.run(&["-t", "Name", "fresh", "-o", "--check-max-age", "1", "d"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.starts_with(
            "EC2SNAP OK - 1 volumes, newest snapshots at most 1h old | volumes=1 stale=0 oldest="
        ),
        "{r:?}"
    );
    let stats = lab.stats();
    assert!(stats.keys().all(|a| a.starts_with("Describe")), "{stats:?}");
    assert_eq!(
        stats.get("DescribeInstances"),
        Some(&1),
        "no stop-mark scan in a check: {stats:?}"
    );

    // The pending one: its only snapshot looks pending to the check.
    lab.faults(json!([{"action": "DescribeSnapshots", "rewrite_re": [[format!("({pending_snap}</snapshotId>.*?<status>)completed"), "\\1pending"]]}]));
    let r = lab.run(&[
        "-t",
        "Name",
        "*",
        "-o",
        "--check-max-age",
        "1",
        "d",
        "-v",
        "DEBUG",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    let line = r.stdout.trim_end();
    assert!(
        line.starts_with("EC2SNAP CRITICAL - 3 of 4 volumes stale: "),
        "{line}"
    );
    for (name, age) in [("stale", "72h"), ("never", "none"), ("pending", "none")] {
        let part = format!("{} ({} {name} /dev/sdb) {age}", vol(name), id(name));
        assert!(line.contains(&part), "{part} in {line}");
    }
    assert!(line.contains("| volumes=4 stale=3 oldest="), "{line}");
    assert_eq!(
        r.count("[DEBUG] vol-"),
        4,
        "a line per volume with -v DEBUG: {r:?}"
    );
    lab.clear_faults();

    // UNKNOWN: a broken credentials file, an API that keeps failing, flags that change things.
    let bad = lab.dir.path().join("bad.ini");
    std::fs::write(&bad, "[default\nnot ini").unwrap();
    let r = check_fresh(&lab, &["-c", bad.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stdout.starts_with("EC2SNAP UNKNOWN - Credentials file"),
        "{r:?}"
    );
    lab.faults(json!([{"action": "DescribeInstances", "status": 500, "code": "InternalError", "message": "boom"}]));
    let r = check_fresh(&lab, &["--max-attempts", "2"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stdout.starts_with("EC2SNAP UNKNOWN - ") && r.stdout.contains("InternalError"),
        "{r:?}"
    );
    lab.clear_faults();
    let r = check_fresh(&lab, &["-u", "-n"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stdout.contains("cannot go with -u, -n"), "{r:?}");
    let r = lab.run(&["-t", "Name", "nothing", "--check-max-age", "1", "d"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (3, "EC2SNAP UNKNOWN - no instance selected\n"),
        "{r:?}"
    );
}

#[test]
fn output_files_must_be_regular_files() {
    let (lab, _) = web_lab_with_old_snapshot();
    lab.reset_stats();
    // A device would be read without end for its previous value, or replaced by the rename.
    for (flag, path) in [("--metrics-file", "/dev/full"), ("--report", "/dev/null")] {
        let r = lab.run(&["-t", "Name", "web1", "-u", flag, path]);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(
            r.stderr.contains(&format!(
                "{flag} {path}: it exists and is not a regular file"
            )),
            "{r:?}"
        );
    }
    assert_eq!(lab.stats(), Default::default(), "no request may be sent");
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata("/dev/full")
        .unwrap()
        .file_type()
        .is_char_device());
}
