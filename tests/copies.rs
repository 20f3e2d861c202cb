//! `--copy-to`: copies in another region (two regions of one moto server), matched by their tags
//! (the proxy gives copies AWS's dummy VolumeId), with their own retention, deferred on copy
//! limits, and encryption kept.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::{json, Value};

const DAY: i64 = 86_400;
const DR: &str = "us-east-1";

/// web1 with a data volume, and backups made by ec2snap itself at these ages (days, oldest
/// first), so that they carry its descriptions.
fn web_with_backups(lab: &Lab, ages: &[i64], volume: Value) -> Value {
    let seeded = lab.seed(json!({"instances": [{"name": "web1", "volumes": [volume]}]}));
    for age in ages {
        lab.set_clock(-age * DAY);
        let r = lab.run(&["-t", "Name", "web1", "-o", "-u", "-e", "backup:yes"]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    lab.set_clock(0);
    seeded
}

fn newest(snaps: &[Value]) -> Value {
    snaps
        .iter()
        .max_by_key(|s| s["start_time"].as_str().unwrap().to_string())
        .unwrap()
        .clone()
}

#[test]
fn copies_the_newest_completed_backup_once_with_its_tags() {
    let lab = Lab::start();
    let seeded = web_with_backups(&lab, &[3, 2], json!({"device": "/dev/sdb"}));
    let vol = vol_of(&seeded, "web1", "/dev/sdb");
    let source = newest(&lab.snapshots());
    let sid = source["id"].as_str().unwrap();
    // Dry run: the line without an id, nothing copied.
    let dry = lab.run(&["-t", "Name", "web1", "-o", "-n", "--copy-to", DR]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.has(&format!(
            "[INFO] Copying snapshot {sid} ({vol}|/dev/sdb) to {DR}"
        )),
        "{dry:?}"
    );
    assert!(lab.snapshots_in(DR).is_empty());
    let r = lab.run(&["-t", "Name", "web1", "-o", "-n", "-u", "--copy-to", DR]);
    assert_eq!(r.code, 0, "{r:?}");
    let copies = lab.snapshots_in(DR);
    assert_eq!(copies.len(), 1, "{copies:?}");
    let copy = &copies[0];
    let cid = copy["id"].as_str().unwrap();
    assert!(
        r.has(&format!(
            "[INFO] Copying snapshot {sid} ({vol}|/dev/sdb) to {DR} - {cid}"
        )),
        "{r:?}"
    );
    // What AWS answers for a copy: the dummy volume id; the tags say where it comes from.
    assert_eq!(copy["volume"], "vol-ffffffff");
    assert_eq!(copy["tags"]["ec2snap:source-snapshot"], sid);
    assert_eq!(copy["tags"]["ec2snap:source-volume"], vol.as_str());
    assert_eq!(copy["tags"]["ec2snap:source-region"], REGION);
    assert_eq!(copy["tags"]["backup"], "yes");
    assert_eq!(copy["tags"]["device"], "/dev/sdb");
    assert_eq!(copy["description"], source["description"]);
    // A second run finds the copy by its tags and copies nothing.
    lab.reset_stats();
    let r = lab.run(&["-t", "Name", "web1", "-o", "-n", "-u", "--copy-to", DR]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(lab.stats().get("CopySnapshot"), None, "{r:?}");
    assert_eq!(lab.snapshots_in(DR).len(), 1);
}

#[test]
fn a_copy_limit_defers_to_the_next_run() {
    let lab = Lab::start();
    web_with_backups(&lab, &[2], json!({"device": "/dev/sdb"}));
    lab.faults(json!([{"action": "CopySnapshot", "times": 1, "status": 400,
                       "code": "ResourceLimitExceeded", "message": "too many copies in progress"}]));
    let r = lab.run(&["-t", "Name", "web1", "-o", "-n", "-u", "--copy-to", DR]);
    assert_eq!(r.code, 0, "a deferral is no error: {r:?}");
    assert_eq!(r.count("[WARNING] Copy of snapshot"), 1, "{r:?}");
    assert!(
        r.stderr
            .contains("left for a later run: ResourceLimitExceeded"),
        "{r:?}"
    );
    assert!(lab.snapshots_in(DR).is_empty());
    let r = lab.run(&["-t", "Name", "web1", "-o", "-n", "-u", "--copy-to", DR]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(lab.snapshots_in(DR).len(), 1);
    // Any other refusal is an error, counted: a new backup, then its copy refused.
    let r = lab.run(&["-t", "Name", "web1", "-o", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    lab.faults(json!([{"action": "CopySnapshot", "times": 1, "status": 403,
                       "code": "UnauthorizedOperation", "message": "no"}]));
    let r = lab.run(&["-t", "Name", "web1", "-o", "-n", "-u", "--copy-to", DR]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("failed: UnauthorizedOperation: no"),
        "{r:?}"
    );
    assert_eq!(r.stdout, error_summary(1, 0));
}

/// Four generations: each run makes a backup and copies the previous one.
fn lab_with_copies() -> (Lab, Value) {
    let lab = Lab::start();
    let seeded =
        lab.seed(json!({"instances": [{"name": "web1", "volumes": [{"device": "/dev/sdb"}]}]}));
    for age in [10, 8, 6, 4] {
        lab.set_clock(-age * DAY);
        let r = lab.run(&["-t", "Name", "web1", "-o", "-u", "--copy-to", DR]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    lab.set_clock(0);
    assert_eq!(
        lab.snapshots_in(DR).len(),
        3,
        "copies of the 10, 8 and 6 day old backups"
    );
    (lab, seeded)
}

/// `ec2snap -t Name web1 -o -n --copy-to us-east-1` and `extra`, in run mode when `run`.
fn copy_step(lab: &Lab, extra: &[&str], run: bool) -> Run {
    let mut args = vec!["-t", "Name", "web1", "-o", "-n", "--copy-to", DR];
    args.extend_from_slice(extra);
    if run {
        args.push("-u");
    }
    lab.run(&args)
}

#[test]
fn copies_have_their_own_retention_and_the_source_is_untouched() {
    // --copy-keep 1: the copy made by this run is still pending (on AWS, for minutes to hours), so
    // it does not count toward the floor yet: the newest completed copy stays, the two older go.
    let (lab, _) = lab_with_copies();
    let source = snapshot_ids(&lab.snapshots());
    let before = snapshot_ids(&lab.snapshots_in(DR));
    let dry = copy_step(&lab, &["--copy-keep", "1"], false);
    let r = copy_step(&lab, &["--copy-keep", "1"], true);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.count("[INFO] Deleting copy"), 2, "{r:?}");
    assert_eq!(
        dry.count("[INFO] Deleting copy"),
        2,
        "the dry run lists the same: {dry:?}"
    );
    let after = lab.snapshots_in(DR);
    assert_eq!(after.len(), 2);
    let new = newest(&after);
    assert!(
        !before.contains(new["id"].as_str().unwrap()),
        "the new copy stays"
    );
    assert_eq!(
        snapshot_ids(&lab.snapshots()),
        source,
        "no source snapshot deleted"
    );
    // Once it is completed (moto: at once), the next run keeps it alone.
    let r = copy_step(&lab, &["--copy-keep", "1"], true);
    assert_eq!(r.count("[INFO] Deleting copy"), 1, "{r:?}");
    assert_eq!(
        snapshot_ids(&lab.snapshots_in(DR)),
        [new["id"].as_str().unwrap().to_string()].into()
    );

    // --copy-max-age 7 d: the 8-day-old copy goes; the 6- and 4-day-old ones and the new one stay.
    let (lab, _) = lab_with_copies();
    let source = snapshot_ids(&lab.snapshots());
    let r = copy_step(&lab, &["--copy-max-age", "7", "d"], true);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.count("[INFO] Deleting copy"), 1, "{r:?}");
    assert_eq!(lab.snapshots_in(DR).len(), 3);
    assert_eq!(snapshot_ids(&lab.snapshots()), source);

    // -d 2 with no copy rule of its own: the source keeps 2, the copies keep their 2 newest
    // completed ones and the new one (pending until the next run sees it completed).
    let (lab, seeded) = lab_with_copies();
    let r = copy_step(&lab, &["-d", "2"], true);
    assert_eq!(r.code, 0, "{r:?}");
    let vol = vol_of(&seeded, "web1", "/dev/sdb");
    assert_eq!(
        lab.snapshots()
            .iter()
            .filter(|s| s["volume"] == vol)
            .count(),
        2
    );
    assert_eq!(lab.snapshots_in(DR).len(), 3);
    let r = copy_step(&lab, &["-d", "2"], true);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(lab.snapshots_in(DR).len(), 2);
}

#[test]
fn encryption_is_kept_and_the_kms_key_used() {
    let lab = Lab::start();
    web_with_backups(&lab, &[2], json!({"device": "/dev/sdb", "encrypted": true}));
    assert_eq!(lab.snapshots()[0]["encrypted"], true);
    let r = lab.run(&[
        "-t",
        "Name",
        "web1",
        "-o",
        "-n",
        "-u",
        "--copy-to",
        DR,
        "--copy-kms-key",
        "alias/dr-backups",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let copies = lab.snapshots_in(DR);
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0]["encrypted"], true);
    assert_eq!(copies[0]["kms_key"], "alias/dr-backups");
}

/// Throttled copies are retried with the SDK's standard backoff: two `RequestLimitExceeded`
/// answers, then the copy is made (the run's time with them, 0.7 s against 38 s in the adaptive
/// mode's rate limiter, is measured outside the suite: speed is no test's business).
#[test]
fn a_throttled_copy_is_retried_and_made() {
    let lab = Lab::start();
    lab.seed(fleet("web", 1));
    let r = lab.run(&["-t", "Name", "web1", "-o", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    lab.faults(json!([{"action": "CopySnapshot", "times": 2, "status": 503,
                       "code": "RequestLimitExceeded", "message": "slow down"}]));
    lab.reset_stats();
    let r = lab.run(&["-t", "Name", "web1", "-n", "-u", "--copy-to", "us-east-1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.count("[INFO] Copying snapshot"), 1, "{r:?}");
    assert_eq!(lab.stats().get("CopySnapshot"), Some(&3));
    assert_eq!(lab.snapshots_in("us-east-1").len(), 1);
}

/// When the proxy first answered `id` as completed, and how many answers showed it pending
/// before.
fn completed_at(lab: &Lab, id: &str) -> (f64, usize) {
    let answers = lab.requests("DescribeSnapshots");
    let states: Vec<(&str, f64)> = answers
        .iter()
        .filter_map(|a| Some((a["_states"][id].as_str()?, a["_time"].as_f64()?)))
        .collect();
    let pending = states.iter().take_while(|(s, _)| *s == "pending").count();
    let done = states.iter().find(|(s, _)| *s == "completed");
    (done.expect("never seen completed").1, pending)
}

/// When the binary asked for a copy of `source`, and how many times.
fn copy_called(lab: &Lab, source: &str) -> (f64, usize) {
    let calls: Vec<f64> = lab
        .requests("CopySnapshot")
        .iter()
        .filter(|r| r["SourceSnapshotId"] == source)
        .map(|r| r["_time"].as_f64().unwrap())
        .collect();
    (calls.first().copied().unwrap_or(f64::NAN), calls.len())
}

/// `--wait --copy-to`, with what `extra` adds, writing a report: the run and its report.
fn wait_and_copy(lab: &Lab, instance: &str, extra: &[&str]) -> (Run, Value) {
    let path = lab.dir.path().join("report.json");
    let report = path.to_str().unwrap().to_string();
    let mut args = vec![
        "-t",
        "Name",
        instance,
        "-o",
        "-u",
        "-g",
        "5",
        "d",
        "--copy-to",
        DR,
        "--wait",
        "--wait-interval",
        "1",
        "--report",
        &report,
    ];
    args.extend_from_slice(extra);
    let r = lab.run(&args);
    let report = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    (r, serde_json::from_str(&report).unwrap())
}

/// The ids of the snapshots the report says this run made.
fn made_by(report: &Value) -> Vec<String> {
    let instances = report["instances"].as_array().unwrap();
    let snaps = instances
        .iter()
        .flat_map(|i| i["snapshots"].as_array().unwrap());
    snaps
        .filter_map(|s| s["id"].as_str().map(String::from))
        .collect()
}

#[test]
fn with_wait_this_runs_snapshot_is_copied_once_completed() {
    let lab = Lab::start();
    let seeded = web_with_backups(&lab, &[2], json!({"device": "/dev/sdb"}));
    let vol = vol_of(&seeded, "web1", "/dev/sdb");
    let old = newest(&lab.snapshots())["id"].as_str().unwrap().to_string();
    // The dry run plans the copy of the snapshot it plans (and the catch-up's of the old one).
    let dry = lab.run(&["-t", "Name", "web1", "-o", "--copy-to", DR, "--wait"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.has(&format!(
            "[INFO] Copying snapshot (planned for {vol}) ({vol}|/dev/sdb) to {DR}"
        )),
        "{dry:?}"
    );
    assert!(dry.has(&format!(
        "[INFO] Copying snapshot {old} ({vol}|/dev/sdb) to {DR}"
    )));
    assert!(lab.snapshots_in(DR).is_empty());

    // The new snapshot pending for the copies' listing in DR and two polls.
    after_listing(&lab, "pending", 3);
    let metrics = lab.dir.path().join("ec2snap.prom");
    let (r, report) = wait_and_copy(&lab, "web1", &["--metrics-file", metrics.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    let new = made_by(&report);
    assert_eq!(new.len(), 1, "{report}");
    let (completed, pending) = completed_at(&lab, &new[0]);
    let (copied, calls) = copy_called(&lab, &new[0]);
    assert!(pending >= 2, "seen pending {pending} times");
    assert_eq!(calls, 1);
    assert!(
        copied > completed,
        "copied at {copied}, completed at {completed}"
    );
    // The catch-up copied the old backup, which was complete, at once.
    assert_eq!(copy_called(&lab, &old).1, 1);
    assert!(copy_called(&lab, &old).0 < completed);
    // Both copies are there at the end of the run; the copies' retention deleted neither.
    let sources: std::collections::BTreeSet<String> = lab
        .snapshots_in(DR)
        .iter()
        .map(|c| {
            c["tags"]["ec2snap:source-snapshot"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(sources, [old.clone(), new[0].clone()].into());
    // The recovery point lag of the new one: at least the poll interval; none for the catch-up.
    let copies = report["instances"][0]["copies"].as_array().unwrap();
    let lag = |source: &str| {
        let c = copies.iter().find(|c| c["source"] == source).unwrap();
        c["recovery_point_lag_ms"].as_u64()
    };
    assert!(lag(&new[0]).is_some_and(|ms| ms >= 1_000), "{report}");
    assert_eq!(lag(&old), None, "{report}");
    // And in the metrics, per region: the longest one.
    let samples = parse_metrics(&metrics);
    let seconds = metric(&samples, "ec2snap_copy_recovery_point_lag_seconds");
    assert!(seconds >= 1.0, "{samples:?}");
    // The order of the log: completed, then copied, then the source's retention.
    let lines = r.lines();
    let at = |text: &str| lines.iter().position(|l| l.contains(text));
    let done_line = at(&format!("Snapshot {} (", new[0]));
    let copy_line = at(&format!(
        "Copying snapshot {} ({vol}|/dev/sdb) to {DR} - ",
        new[0]
    ));
    assert!(done_line.is_some() && done_line < copy_line, "{r:?}");
}

#[test]
fn with_wait_a_set_is_copied_once_all_its_members_are_completed() {
    let lab = Lab::start();
    lab.seed(json!({"instances": [{"name": "db1",
        "volumes": [{"device": "/dev/sdb"}, {"device": "/dev/sdc"}]}]}));
    after_listing(&lab, "pending", 3);
    let (r, report) = wait_and_copy(&lab, "db1", &["--consistent"]);
    assert_eq!(r.code, 0, "{r:?}");
    let members = made_by(&report);
    assert_eq!(members.len(), 2, "{report}");
    let last_completed = members
        .iter()
        .map(|m| completed_at(&lab, m).0)
        .fold(f64::MIN, f64::max);
    for m in &members {
        let (copied, calls) = copy_called(&lab, m);
        assert_eq!(calls, 1, "{m}");
        assert!(copied > last_completed, "{m}");
    }
    let copies = lab.snapshots_in(DR);
    assert_eq!(copies.len(), 2, "{copies:?}");
    // The copies carry the set's tag, as the members do.
    assert!(
        copies.iter().all(|c| c["tags"]["ec2snap:set"].is_string()),
        "{copies:?}"
    );
}

#[test]
fn with_wait_a_copy_limit_waits_for_the_next_run_and_without_wait_nothing_changes() {
    let lab = Lab::start();
    lab.seed(json!({"instances": [{"name": "web1", "volumes": [{"device": "/dev/sdb"}]}]}));
    lab.faults(json!([{"action": "CopySnapshot", "times": 1, "status": 400,
                       "code": "ResourceLimitExceeded", "message": "too many copies in progress"}]));
    let (r, report) = wait_and_copy(&lab, "web1", &[]);
    assert_eq!(r.code, 0, "a deferral is no error: {r:?}");
    let first = made_by(&report);
    assert!(
        r.stderr.contains(&format!(
            "[WARNING] Copy of snapshot {} to {DR} left for a later run: ResourceLimitExceeded",
            first[0]
        )),
        "{r:?}"
    );
    assert!(lab.snapshots_in(DR).is_empty());
    // Without --wait: the catch-up copies the last run's snapshot, not the one this run makes.
    let r = lab.run(&["-t", "Name", "web1", "-o", "-u", "--copy-to", DR]);
    assert_eq!(r.code, 0, "{r:?}");
    let copies = lab.snapshots_in(DR);
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(
        copies[0]["tags"]["ec2snap:source-snapshot"],
        first[0].as_str()
    );
    assert_eq!(
        lab.requests("CopySnapshot").len(),
        2,
        "the refused one and this one"
    );
}

#[test]
fn a_copy_in_error_is_no_copy_and_never_the_floor() {
    // The newest backup's copy ends in `error`: the region's last usable copy must stay, the
    // source is copied again, and list says so.
    let (lab, _) = lab_with_copies();
    let r = copy_step(&lab, &[], true);
    assert_eq!(r.code, 0, "{r:?}");
    let copies = lab.snapshots_in(DR);
    let failed = newest(&copies);
    let source = failed["tags"]["ec2snap:source-snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let usable = copies
        .iter()
        .filter(|c| c["id"] != failed["id"])
        .max_by_key(|c| c["start_time"].as_str().unwrap().to_string())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    lab.states(json!({ failed["id"].as_str().unwrap(): "error" }));
    let listed = lab.run(&[
        "list",
        "-t",
        "Name",
        "web1",
        "-o",
        "--copy-to",
        DR,
        "--copy-max-age",
        "1",
        "d",
    ]);
    assert!(
        listed.stdout.contains(&format!(
            "{} in {DR} (copy of {source}) is in state error",
            failed["id"].as_str().unwrap()
        )),
        "{listed:?}"
    );
    let earlier = lab.requests("CopySnapshot").len();
    let r = copy_step(&lab, &["--copy-max-age", "1", "d"], true);
    assert_eq!(r.code, 0, "{r:?}");
    let left = snapshot_ids(&lab.snapshots_in(DR));
    assert!(
        left.contains(&usable),
        "the last usable copy was deleted: {r:?}"
    );
    let again = lab.requests("CopySnapshot")[earlier..].to_vec();
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0]["SourceSnapshotId"], source.as_str());
}
