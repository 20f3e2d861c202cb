//! One record of what happened: every failure a run counts is in the report's `errors[]` with its
//! action, resource and kind (or code), and the report's totals, the metrics and the exit code are
//! all derived from that record, so they always agree; deleted copies are in `deleted[]` with
//! their region, and in the metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::{json, Value};

/// A run with `--report` and `--metrics-file` in the lab's folder: the run, its report, the
/// metrics' samples.
fn reported(lab: &Lab, args: &[&str]) -> (Run, Value, Vec<Value>) {
    let report = lab.dir.path().join("report.json");
    let metrics = lab.dir.path().join("metrics.prom");
    let mut all = args.to_vec();
    all.extend(["--report", report.to_str().unwrap()]);
    all.extend(["--metrics-file", metrics.to_str().unwrap()]);
    let r = lab.run(&all);
    let text = std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    let rep: Value = serde_json::from_str(&text).unwrap();
    (r, rep, parse_metrics(&metrics))
}

/// Every error of the report: the instances', then the run's own.
fn all_errors(rep: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = rep["instances"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["errors"].as_array().unwrap().clone())
        .collect();
    out.extend(rep["errors"].as_array().unwrap().clone());
    out
}

/// The totals are the lengths of the lists, the metrics say the same, and the exit code follows.
fn assert_agree(r: &Run, rep: &Value, samples: &[Value]) {
    let errors = all_errors(rep);
    let deletions = errors
        .iter()
        .filter(|e| e["action"] == "DeleteSnapshot")
        .count();
    let others = errors
        .iter()
        .filter(|e| e["action"] != "DeleteSnapshot" && e["kind"] != "setup")
        .count();
    let t = &rep["totals"];
    assert_eq!(t["snapshot_errors"], others, "{rep:#}");
    assert_eq!(t["deletion_errors"], deletions, "{rep:#}");
    let instances = rep["instances"].as_array().unwrap();
    let deleted: usize = instances
        .iter()
        .map(|i| i["deleted"].as_array().unwrap().len())
        .sum();
    if rep["dry_run"] == false {
        assert_eq!(t["deleted"], deleted, "{rep:#}");
    }
    assert_eq!(metric(samples, "ec2snap_snapshot_errors"), others as f64);
    assert_eq!(metric(samples, "ec2snap_deletion_errors"), deletions as f64);
    assert_eq!(
        metric(samples, "ec2snap_snapshots_deleted"),
        t["deleted"].as_f64().unwrap()
    );
    let want = if others + deletions > 0 { 2 } else { 0 };
    assert_eq!(
        (r.code, rep["exit_code"].as_i64()),
        (want, Some(want.into())),
        "{r:?}"
    );
    assert_eq!(metric(samples, "ec2snap_exit_code"), want as f64);
    if want == 2 {
        let summary = error_summary(others, deletions);
        assert_eq!(r.stdout, summary, "the summary counts the same");
    }
}

/// The one error of the report matching `action`, `resource` and `kind`.
fn error_named(errors: &[Value], action: &str, resource: &str, kind: &str) -> Value {
    errors
        .iter()
        .find(|e| e["action"] == action && e["resource"] == resource && e["kind"] == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {action} {resource} {kind} in {errors:#?}"))
}

#[test]
fn cold_timeouts_are_in_the_report() {
    // The instance never looks stopped.
    let lab = Lab::start();
    let id = id_of(&lab.seed(json!({"instances": [{"name": "db1"}]})), "db1");
    lab.faults(
        json!([{"action": "DescribeInstances", "skip": 1, "times": -1,
        "rewrite": [["<name>stopped</name>", "<name>stopping</name>"]]}]),
    );
    let (r, rep, samples) = reported(&lab, &["-t", "Name", "db1", "-H", "-u", "-m", "2"]);
    assert_agree(&r, &rep, &samples);
    let e = error_named(&all_errors(&rep), "StopInstances", &id, "timeout");
    assert_eq!(e["message"], "not stopped within 2 s (-m)");
    assert_eq!(rep["instances"][0]["id"], id.as_str());

    // Started again, it never looks running (after the stop-mark scan and the selection).
    let lab = Lab::start();
    let id = id_of(&lab.seed(json!({"instances": [{"name": "db1"}]})), "db1");
    lab.faults(
        json!([{"action": "DescribeInstances", "skip": 2, "times": -1,
        "rewrite": [["<name>running</name>", "<name>pending</name>"]]}]),
    );
    let (r, rep, samples) = reported(&lab, &["-t", "Name", "db1", "-H", "-u", "-m", "2"]);
    assert_agree(&r, &rep, &samples);
    let e = error_named(&all_errors(&rep), "StartInstances", &id, "timeout");
    assert_eq!(e["message"], "not running within 2 s (-m)");
}

#[test]
fn a_refused_restart_of_what_a_killed_run_left_stopped_is_in_the_report() {
    let lab = Lab::start();
    let mark = "host=gone boot=0 pid=1 stopped=2026-01-01T00:00:00Z until=2026-01-01T01:00:00Z";
    let seeded = lab.seed(json!({"instances": [
        {"name": "left", "state": "stopped", "tags": {"ec2snap:stopped-by": mark}},
        {"name": "web1"}]}));
    let left = id_of(&seeded, "left");
    lab.faults(json!([{"action": "StartInstances", "status": 400,
        "code": "InsufficientInstanceCapacity", "message": "none left"}]));
    let (r, rep, samples) = reported(&lab, &["-t", "Name", "web1", "-n", "-u"]);
    assert_agree(&r, &rep, &samples);
    let e = error_named(
        &rep["errors"].as_array().unwrap().clone(),
        "StartInstances",
        &left,
        "aws",
    )
    .clone();
    assert_eq!(e["code"], "InsufficientInstanceCapacity");
}

#[test]
fn a_destination_that_cannot_be_read_is_in_the_report() {
    let (lab, _) = web_lab_with_old_snapshot();
    // The copies' listing in the destination (it asks for the source-snapshot tag) fails.
    lab.faults(
        json!([{"action": "DescribeSnapshots", "match": "source-snapshot", "status": 400,
        "code": "AuthFailure", "message": "not in this region"}]),
    );
    let (r, rep, samples) = reported(
        &lab,
        &["-t", "Name", "web1", "-n", "-u", "--copy-to", "us-east-1"],
    );
    assert_agree(&r, &rep, &samples);
    let e = error_named(
        rep["errors"].as_array().unwrap(),
        "DescribeSnapshots",
        "us-east-1",
        "aws",
    );
    assert_eq!(
        (&e["code"], &e["region"]),
        (&json!("AuthFailure"), &json!("us-east-1"))
    );
}

#[test]
fn wait_errors_and_timeouts_are_in_the_report() {
    for (state, kind, extra) in [("error", "state", None), ("pending", "timeout", Some("1"))] {
        let (lab, _) = web_lab_with_old_snapshot();
        // After retention's listing, the new snapshots never look completed.
        lab.faults(
            json!([{"action": "DescribeSnapshots", "skip": 1, "times": -1,
            "rewrite": [["<status>completed</status>", format!("<status>{state}</status>")]]}]),
        );
        let mut args = vec![
            "-t",
            "Name",
            "web1",
            "-u",
            "-g",
            "5",
            "d",
            "--wait",
            "--wait-interval",
            "1",
        ];
        if let Some(secs) = extra {
            args.extend(["--wait-timeout", secs]);
        }
        let (r, rep, samples) = reported(&lab, &args);
        assert_agree(&r, &rep, &samples);
        let made: Vec<String> = rep["instances"][0]["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(made.len(), 2, "{rep:#}");
        let errors = all_errors(&rep);
        assert_eq!(errors.len(), 2, "{state}: {errors:#?}");
        for id in &made {
            error_named(&errors, "CreateSnapshot", id, kind);
        }
        assert_eq!(rep["totals"]["deleted"], 0, "the old snapshots are kept");
    }
}

#[test]
fn deleted_copies_are_in_the_report_and_the_metrics() {
    let lab = Lab::start();
    lab.seed(fleet("web", 1));
    // Three runs an hour apart, each copying the snapshot the one before made.
    for hours_ago in [3, 2, 1] {
        lab.set_clock(-hours_ago * 3600);
        let r = lab.run(&["-t", "Name", "web1", "-o", "-u", "--copy-to", "us-east-1"]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    lab.set_clock(0);
    assert_eq!(lab.snapshots_in("us-east-1").len(), 2);
    let metrics_path = lab.dir.path().join("metrics.prom");
    let (r, rep, samples) = reported(
        &lab,
        &[
            "-t",
            "Name",
            "web1",
            "-n",
            "-u",
            "--copy-to",
            "us-east-1",
            "--copy-keep",
            "1",
        ],
    );
    assert_agree(&r, &rep, &samples);
    // --copy-keep 1: the copy this run made is pending (on AWS) and does not count yet, so the
    // newest completed copy stays and the older one goes.
    assert_eq!(r.count("[INFO] Deleting copy"), 1, "{r:?}");
    let inst = &rep["instances"][0];
    let deleted = inst["deleted"].as_array().unwrap();
    assert_eq!(deleted.len(), 1, "{rep:#}");
    assert!(
        deleted.iter().all(|d| d["region"] == "us-east-1"),
        "{deleted:?}"
    );
    let copies = inst["copies"].as_array().unwrap();
    assert_eq!(copies.len(), 1, "{rep:#}");
    assert_eq!(copies[0]["region"], "us-east-1");
    assert_eq!(
        (&rep["totals"]["deleted"], &rep["totals"]["copies_made"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(lab.snapshots_in("us-east-1").len(), 2);
    let text = std::fs::read_to_string(metrics_path).unwrap();
    assert!(text.contains("region=\"us-east-1\"} 1\n"), "{text}");
    let region = |name: &str| {
        samples
            .iter()
            .find(|s| s["name"] == name && s["labels"]["region"] == "us-east-1")
            .map(|s| s["value"].as_f64().unwrap())
    };
    assert_eq!(region("ec2snap_copies_created"), Some(1.0));
    assert_eq!(region("ec2snap_copies_deleted"), Some(1.0));
}
