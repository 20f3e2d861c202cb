//! The dry run's permission check: every change a real run would make is sent with DryRun=true;
//! an `UnauthorizedOperation` answer is an ERROR naming the action and resource, and exit 2.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::json;

const DAY: i64 = 86_400;

#[test]
fn every_change_is_checked_and_a_refusal_fails_the_dry_run() {
    let lab = Lab::start();
    let seeded = lab.seed(json!({"instances": [{"name": "db1", "volumes": [{"device": "/dev/sdb"}],
        "snapshots": [{"device": "/dev/sdb", "age": 10 * DAY}, {"device": "/dev/sdb", "age": 9 * DAY}]}]}));
    let old = seeded_snapshot_ids(&seeded, "db1");
    let id = id_of(&seeded, "db1");
    let args = ["-t", "Name", "db1", "-H", "-g", "5", "d"];
    // All allowed (moto answers DryRunOperation): exit 0, and one check per real call.
    lab.reset_stats();
    let r = lab.run(&args);
    assert_eq!(r.code, 0, "{r:?}");
    let stats = lab.stats();
    let checks = |action: &str| stats.get(&format!("DryRun:{action}")).copied();
    assert_eq!(
        (
            checks("StopInstances"),
            checks("CreateSnapshot"),
            checks("StartInstances"),
            checks("DeleteSnapshot")
        ),
        (Some(1), Some(2), Some(1), Some(2)),
        "{stats:?}"
    );
    assert!(lab.writes().is_empty(), "{stats:?}");
    assert_eq!(lab.snapshots().len(), 2, "nothing made or deleted");

    // One deletion refused: named, counted, exit 2.
    lab.faults(json!([{"action": "DryRun:DeleteSnapshot", "match": old[1], "status": 403,
                       "code": "UnauthorizedOperation", "message": "You are not authorized to perform this operation."}]));
    let r = lab.run(&args);
    assert_eq!(r.code, 2, "{r:?}");
    let line = format!(
        "[ERROR] The real run would be refused: DeleteSnapshot on {}: UnauthorizedOperation: You are not authorized to perform this operation.",
        old[1]
    );
    assert!(r.has(&line), "{r:?}");
    assert_eq!(r.count("[ERROR] The real run would be refused"), 1, "{r:?}");
    assert_eq!(r.stdout, error_summary(0, 1));
    assert_eq!(lab.instance_state(&id), "running");

    // --no-permission-check: no DryRun call at all.
    lab.clear_faults();
    lab.reset_stats();
    let mut quiet = args.to_vec();
    quiet.push("--no-permission-check");
    let r = lab.run(&quiet);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        lab.stats().keys().all(|a| a.starts_with("Describe")),
        "{:?}",
        lab.stats()
    );
}

#[test]
fn a_refused_snapshot_and_a_refused_copy_are_named() {
    let lab = Lab::start();
    let seeded =
        lab.seed(json!({"instances": [{"name": "web1", "volumes": [{"device": "/dev/sdb"}]}]}));
    let sdb = vol_of(&seeded, "web1", "/dev/sdb");
    let r = lab.run(&["-t", "Name", "web1", "-o", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    let made = lab.snapshots()[0]["id"].as_str().unwrap().to_string();
    lab.faults(json!([
        {"action": "DryRun:CreateSnapshot", "status": 403, "code": "UnauthorizedOperation", "message": "no"},
        {"action": "DryRun:CopySnapshot", "status": 403, "code": "UnauthorizedOperation", "message": "no"}
    ]));
    let r = lab.run(&["-t", "Name", "web1", "-o", "--copy-to", "us-east-1"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.has(&format!("[ERROR] The real run would be refused: CreateSnapshot on {sdb}: UnauthorizedOperation: no")), "{r:?}");
    assert!(r.has(&format!("[ERROR] The real run would be refused: CopySnapshot on {made}: UnauthorizedOperation: no")), "{r:?}");
    assert_eq!(r.stdout, error_summary(2, 0));
}
