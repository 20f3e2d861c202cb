//! Retention against moto with a moved clock: -g, -d, both, --snap-filter, in-use snapshots,
//! deletion errors, and runs over more than 1,000 snapshots in pages.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const DAY: i64 = 86_400;

/// One instance "web" whose data volume has snapshots of these ages (days), oldest first.
fn web_with_snapshots(lab: &Lab, ages: &[i64], tags: Value) -> Value {
    let snaps: Vec<Value> = ages
        .iter()
        .map(|a| json!({"device": "/dev/sdb", "age": a * DAY, "tags": tags}))
        .collect();
    lab.seed(json!({"instances": [{"name": "web", "volumes": [{"device": "/dev/sdb"}], "snapshots": snaps}]}))
}

#[test]
fn max_age_dry_run_then_run() {
    let lab = Lab::start();
    let seeded = web_with_snapshots(&lab, &[30, 20, 3], json!({}));
    let old = seeded_snapshot_ids(&seeded, "web");
    let vol = vol_of(&seeded, "web", "/dev/sdb");
    lab.reset_stats();
    let r = lab.run(&["-t", "Name", "web", "-n", "-g", "10", "d"]);
    assert_eq!(r.code, 0, "{r:?}");
    let deleting = r.deleting();
    assert_eq!(
        deleting,
        vec![
            format!("[INFO] Deleting snapshot {} ({vol}|/dev/sdb)", old[0]),
            format!("[INFO] Deleting snapshot {} ({vol}|/dev/sdb)", old[1]),
        ]
    );
    assert_eq!(lab.snapshots().len(), 3, "dry run deletes nothing");
    assert_eq!(lab.stats().get("DeleteSnapshot"), None);
    let r = lab.run(&["-t", "Name", "web", "-n", "-g", "10", "d", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        snapshot_ids(&lab.snapshots()),
        BTreeSet::from([old[2].clone()])
    );
}

#[test]
fn keep_last_counts_the_new_snapshot() {
    let lab = Lab::start();
    let seeded = web_with_snapshots(&lab, &[4, 3, 2, 1], json!({}));
    let old = seeded_snapshot_ids(&seeded, "web");
    let vol = vol_of(&seeded, "web", "/dev/sdb");
    let r = lab.run(&["-t", "Name", "web", "-o", "-d", "2", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    let after = lab.snapshots();
    let on_vol: Vec<&Value> = after
        .iter()
        .filter(|s| s["volume"] == vol.as_str())
        .collect();
    assert_eq!(on_vol.len(), 2, "{after:?}");
    let kept = snapshot_ids(&after);
    assert!(kept.contains(&old[3]), "newest old one kept");
    assert!(
        on_vol
            .iter()
            .any(|s| s["description"].as_str().unwrap().contains("Hot /dev/sdb")),
        "new one kept"
    );
    // Deleted in the log order: oldest first.
    let deleting = r.deleting();
    assert_eq!(deleting.len(), 3);
    assert!(
        deleting[0].contains(&old[0])
            && deleting[1].contains(&old[1])
            && deleting[2].contains(&old[2])
    );
}

#[test]
fn age_and_count_together_keep_a_floor() {
    let lab = Lab::start();
    // Backups stopped 20 days ago: age alone would delete them all.
    let seeded = web_with_snapshots(&lab, &[40, 30, 20], json!({}));
    let old = seeded_snapshot_ids(&seeded, "web");
    let r = lab.run(&["-t", "Name", "web", "-n", "-g", "5", "d", "-d", "2", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        snapshot_ids(&lab.snapshots()),
        BTreeSet::from([old[1].clone(), old[2].clone()])
    );
    // And young snapshots beyond N stay under the age rule.
    let lab = Lab::start();
    let seeded = web_with_snapshots(&lab, &[40, 3, 2, 1], json!({}));
    let old = seeded_snapshot_ids(&seeded, "web");
    let r = lab.run(&["-t", "Name", "web", "-n", "-g", "5", "d", "-d", "1", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        snapshot_ids(&lab.snapshots()),
        old[1..].iter().cloned().collect()
    );
}

#[test]
fn snap_filter_narrows_what_retention_sees() {
    let lab = Lab::start();
    let snaps = json!([
        {"device": "/dev/sdb", "age": 30 * DAY, "tags": {"type": "backup-daily"}},
        {"device": "/dev/sdb", "age": 30 * DAY, "tags": {"type": "manual"}},
        {"device": "/dev/sdb", "age": 30 * DAY, "tags": {"type": "backup-weekly", "env": "prod"}},
        {"device": "/dev/sdb", "age": 30 * DAY}
    ]);
    let seeded = lab.seed(json!({"instances": [{"name": "web", "volumes": [{"device": "/dev/sdb"}], "snapshots": snaps}]}));
    let s = seeded_snapshot_ids(&seeded, "web");
    let r = lab.run(&[
        "-t",
        "Name",
        "web",
        "-n",
        "-g",
        "5",
        "d",
        "--snap-filter",
        "type",
        "backup*",
        "-u",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        snapshot_ids(&lab.snapshots()),
        BTreeSet::from([s[1].clone(), s[3].clone()])
    );
    let r = lab.run(&[
        "-t",
        "Name",
        "web",
        "-n",
        "-d",
        "1",
        "--snap-filter",
        "type",
        "*",
        "--snap-filter",
        "env",
        "prod",
        "-u",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.deleting().len(),
        0,
        "only one snapshot matches both filters: {r:?}"
    );
}

#[test]
fn new_snapshots_are_never_deleted_even_with_a_tiny_age() {
    let lab = Lab::start();
    let seeded = web_with_snapshots(&lab, &[1], json!({}));
    let old = seeded_snapshot_ids(&seeded, "web");
    let r = lab.run(&["-t", "Name", "web", "-g", "1", "s", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    let after = lab.snapshots();
    assert_eq!(after.len(), 2, "both new snapshots stay: {after:?}");
    assert!(!snapshot_ids(&after).contains(&old[0]));
}

/// moto answers InvalidSnapshot.InUse only for CreateImage snapshots, whose volume is a
/// temporary one that no instance has; the proxy gives the same answer for an instance's snapshot.
#[test]
fn in_use_snapshot_is_an_error_unless_ignored() {
    for ignore in [false, true] {
        let lab = Lab::start();
        let seeded = web_with_snapshots(&lab, &[30, 20], json!({}));
        let old = seeded_snapshot_ids(&seeded, "web");
        lab.faults(json!([{"action": "DeleteSnapshot", "times": 1, "status": 400, "code": "InvalidSnapshot.InUse",
                           "message": format!("The snapshot {} is currently in use by ami-12345678", old[0])}]));
        let mut args = vec!["-t", "Name", "web", "-n", "-g", "5", "d", "-u"];
        if ignore {
            args.push("--ignore-in-use-snapshot");
        }
        let r = lab.run(&args);
        let text = format!("error deleting snapshot {0} with error InvalidSnapshot.InUse: The snapshot {0} is currently in use by ami-12345678", old[0]);
        if ignore {
            assert_eq!(r.code, 0, "{r:?}");
            assert!(r.has(&format!("[WARNING] Ignoring : {text}")), "{r:?}");
            assert_eq!(r.stdout, "");
        } else {
            assert_eq!(r.code, 2, "{r:?}");
            assert!(
                r.has(&format!(
                    "[ERROR] Error deleting snapshot {}",
                    &text["error deleting snapshot ".len()..]
                )),
                "{r:?}"
            );
            assert_eq!(r.stdout, error_summary(0, 1));
        }
        // The other old snapshot was deleted either way.
        assert_eq!(
            snapshot_ids(&lab.snapshots()),
            BTreeSet::from([old[0].clone()])
        );
    }
}

#[test]
fn a_snapshot_an_ami_uses_is_kept_without_a_delete_call() {
    let lab = Lab::start();
    let seeded = web_with_snapshots(&lab, &[30, 20], json!({}));
    let old = seeded_snapshot_ids(&seeded, "web");
    let image = lab.register_image(&old[0]);
    let r = lab.run(&[
        "-t", "Name", "web", "-n", "-g", "5", "d", "-u", "-v", "DEBUG",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains(&format!("in use by {image}")), "{r:?}");
    let deleted: Vec<Value> = lab.requests("DeleteSnapshot");
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(deleted[0]["SnapshotId"], old[1].as_str());
    // (moto also keeps a snapshot of its own under the image.)
    let left = snapshot_ids(&lab.snapshots());
    assert!(
        left.contains(&old[0]) && !left.contains(&old[1]),
        "{left:?}"
    );
    // list says so too.
    let listed = lab.run(&["list", "-t", "Name", "web", "-g", "5", "d"]);
    assert!(
        listed.stdout.contains(&format!("KEEP in use by {image}")),
        "{listed:?}"
    );
}

#[test]
fn deletion_errors_are_counted_on_both_paths_and_the_run_goes_on() {
    for rule in [vec!["-g", "5", "d"], vec!["-d", "1"]] {
        let lab = Lab::start();
        let seeded = web_with_snapshots(&lab, &[30, 20, 10, 1], json!({}));
        let old = seeded_snapshot_ids(&seeded, "web");
        lab.faults(json!([{"action": "DeleteSnapshot", "times": 1, "status": 400, "code": "InvalidSnapshot.InUse", "message": "in use by ami-1"}]));
        let mut args = vec!["-t", "Name", "web", "-n", "-u"];
        args.extend_from_slice(&rule);
        let r = lab.run(&args);
        assert_eq!(r.code, 2, "{rule:?}: {r:?}");
        assert!(r.has(&format!("[ERROR] Error deleting snapshot {} with error InvalidSnapshot.InUse: in use by ami-1", old[0])), "{r:?}");
        assert_eq!(r.stdout, error_summary(0, 1));
        // The next ones were still deleted.
        assert_eq!(
            snapshot_ids(&lab.snapshots()),
            BTreeSet::from([old[0].clone(), old[3].clone()]),
            "{rule:?}"
        );
    }
}

#[test]
fn failed_snapshot_keeps_the_volumes_old_snapshots() {
    let lab = Lab::start();
    let seeded = web_with_snapshots(&lab, &[30], json!({}));
    let old = seeded_snapshot_ids(&seeded, "web");
    lab.faults(json!([{"action": "CreateSnapshot", "status": 400, "code": "SnapshotCreationPerVolumeRateExceeded", "message": "slow down"}]));
    let r = lab.run(&["-t", "Name", "web", "-o", "-g", "5", "d", "-u"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(snapshot_ids(&lab.snapshots()).contains(&old[0]));
    assert_eq!(r.deleting().len(), 0, "{r:?}");
}

#[test]
fn limit_limits_retention_too() {
    let lab = Lab::start();
    let spec = json!({"instances": [
        {"name": "a", "volumes": [{"device": "/dev/sdb"}], "snapshots": [{"device": "/dev/sdb", "age": 30 * DAY}]},
        {"name": "b", "volumes": [{"device": "/dev/sdb"}], "snapshots": [{"device": "/dev/sdb", "age": 30 * DAY}]}
    ]});
    let seeded = lab.seed(spec);
    let (a, b) = (id_of(&seeded, "a"), id_of(&seeded, "b"));
    let first = if a < b { "a" } else { "b" };
    let second = if a < b { "b" } else { "a" };
    let r = lab.run(&["-i", &a, "-i", &b, "-n", "-g", "1", "d", "-l", "1", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    let left = snapshot_ids(&lab.snapshots());
    assert!(!left.contains(&seeded_snapshot_ids(&seeded, first)[0]));
    assert!(left.contains(&seeded_snapshot_ids(&seeded, second)[0]));
}

#[test]
fn more_than_a_thousand_snapshots_in_pages() {
    let lab = Lab::start();
    // 3 instances x 2 volumes x 180 snapshots = 1,080 snapshots.
    let snaps: Vec<Value> = (0..180)
        .flat_map(|i| {
            ["/dev/sda1", "/dev/sdb"].map(|d| json!({"device": d, "age": (200 - i) * DAY}))
        })
        .collect();
    let inst =
        |n: &str| json!({"name": n, "volumes": [{"device": "/dev/sdb"}], "snapshots": snaps});
    lab.seed(json!({"instances": [inst("big1"), inst("big2"), inst("big3")]}));
    assert_eq!(lab.snapshots().len(), 1080);
    // The proxy cuts every DescribeSnapshots answer into pages of 100: all must be read.
    lab.faults(json!([{"action": "DescribeSnapshots", "page_size": 100}]));
    lab.reset_stats();
    let r = lab.run(&[
        "-t", "Name", "big*", "-n", "-d", "3", "-g", "100", "d", "-u",
    ]);
    assert_eq!(
        r.code,
        0,
        "{}",
        &r.stderr[r.stderr.len().saturating_sub(2000)..]
    );
    let stats = lab.stats();
    assert_eq!(
        stats.get("DescribeSnapshots"),
        Some(&11),
        "1,080 snapshots in pages of 100, one batch of volumes: {stats:?}"
    );
    // Older than 100 days: ages 200..=100 (the 100-day one is a few seconds older by now), i.e.
    // 101 per volume; the floor of 3 keeps younger ones.
    assert_eq!(stats.get("DeleteSnapshot"), Some(&606), "{stats:?}");
    assert_eq!(lab.snapshots().len(), 1080 - 606);
}

#[test]
fn snapshots_in_error_do_not_count_among_the_kept() {
    let lab = Lab::start();
    let seeded = web_with_snapshots(&lab, &[3, 2, 1], json!({}));
    let old = seeded_snapshot_ids(&seeded, "web");
    // The newest old snapshot failed: EC2 reports it in state `error`.
    let vol = vol_of(&seeded, "web", "/dev/sdb");
    let item = |status: &str| {
        format!(
            "<snapshotId>{}</snapshotId><volumeId>{vol}</volumeId><status>{status}</status>",
            old[2]
        )
    };
    lab.faults(
        json!([{"action": "DescribeSnapshots", "rewrite": [[item("completed"), item("error")]]}]),
    );
    let r = lab.run(&["-t", "Name", "web", "-n", "-d", "2", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    // Kept: the two newest usable ones; the error one is not among them, so it goes.
    assert_eq!(
        snapshot_ids(&lab.snapshots()),
        BTreeSet::from([old[0].clone(), old[1].clone()])
    );
}

/// The original README's cron example, long flags and all.
#[test]
fn original_readme_backup_example() {
    let lab = Lab::start();
    let old = json!([
        {"device": "/dev/sdb", "age": 9 * DAY, "tags": {"type": "backup"}},
        {"device": "/dev/sdb", "age": 2 * DAY, "tags": {"type": "backup"}},
        {"device": "/dev/sdb", "age": 30 * DAY, "tags": {"type": "manual"}}
    ]);
    let seeded = lab.seed(json!({"instances": [
        {"name": "front1", "tags": {"project": "foo"}, "volumes": [{"device": "/dev/sdb"}], "snapshots": old},
        {"name": "front2", "tags": {"project": "bar"}, "volumes": [{"device": "/dev/sdb"}], "snapshots": old}
    ]}));
    let home = tempfile::tempdir().unwrap();
    let cred = home.path().join("credentials");
    std::fs::write(&cred, "[default]\naws_region = us-east-1\naws_access_key_id = AKIAADMIN\naws_secret_access_key = S\n").unwrap();
    let r = run_cmd(bare_cmd(home.path()).args([
        "--endpoint-url",
        &lab.endpoint(),
        "-t",
        "project",
        "foo",
        "-t",
        "Name",
        "front*",
        "--max_age",
        "5",
        "d",
        "--region",
        "eu-west-1",
        "--credentials",
        cred.to_str().unwrap(),
        "--add_tags",
        "type:backup",
        "--snap-filter",
        "type",
        "backup",
        "-u",
    ]));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(lab.signer_keys(), ["AKIAADMIN/eu-west-1"]);
    let front1: Vec<String> = seeded_snapshot_ids(&seeded, "front1");
    let left = lab.snapshots();
    let left_ids = snapshot_ids(&left);
    assert!(
        !left_ids.contains(&front1[0]),
        "9-day-old backup of front1 pruned"
    );
    assert!(
        left_ids.contains(&front1[1]) && left_ids.contains(&front1[2]),
        "young backup and manual snapshot kept"
    );
    assert!(
        seeded_snapshot_ids(&seeded, "front2")
            .iter()
            .all(|s| left_ids.contains(s)),
        "front2 is not project foo"
    );
    let new: Vec<&Value> = left
        .iter()
        .filter(|s| s["description"].as_str().unwrap().contains(" - Hot "))
        .collect();
    assert_eq!(new.len(), 2);
    assert!(new.iter().all(|s| s["tags"]["type"] == "backup"));
}

/// A dry run lists exactly the deletions the real run then makes: the snapshots it would make
/// count among the newest there too.
#[test]
fn dry_run_predicts_the_real_run() {
    for filter in [vec![], vec!["--snap-filter", "team", "web"]] {
        let lab = Lab::start();
        let snaps = json!([
            {"device": "/dev/sdb", "age": 9 * DAY, "tags": {"team": "web"}},
            {"device": "/dev/sdb", "age": 5 * DAY, "tags": {"team": "web"}},
            {"device": "/dev/sdb", "age": 2 * DAY, "tags": {"team": "web"}}
        ]);
        lab.seed(json!({"instances": [{"name": "web", "volumes": [{"device": "/dev/sdb", "tags": {"team": "web"}}], "snapshots": snaps}]}));
        let mut args = vec!["-t", "Name", "web", "-o", "-d", "2"];
        args.extend_from_slice(&filter);
        let dry = lab.run(&args);
        assert_eq!(dry.code, 0, "{dry:?}");
        assert_eq!(
            dry.deleting().len(),
            2,
            "the new one and the 2-day-old one stay: {dry:?}"
        );
        args.push("-u");
        let real = lab.run(&args);
        assert_eq!(real.code, 0, "{real:?}");
        assert_eq!(dry.deleting(), real.deleting(), "{filter:?}");
        assert_eq!(lab.snapshots().len(), 2);
    }
}
