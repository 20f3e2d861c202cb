//! `--lock`: snapshot locks derived from the retention rules. moto has no LockSnapshot: the proxy
//! keeps lock state and answers a DeleteSnapshot of a locked snapshot as AWS does (SnapshotLocked).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// `snapshot id -> LockDuration` of each LockSnapshot request the binary sent.
fn lock_requests(lab: &Lab) -> BTreeMap<String, (String, String)> {
    lab.requests("LockSnapshot")
        .iter()
        .map(|r| {
            let id = r["SnapshotId"].as_str().unwrap().to_string();
            let days = r["LockDuration"].as_str().unwrap().to_string();
            let mode = r["LockMode"].as_str().unwrap().to_string();
            (id, (days, mode))
        })
        .collect()
}

/// A LockSnapshot request's mode, cool-off and duration.
fn lock_params(request: &Value) -> (Option<&str>, Option<&str>, Option<&str>) {
    (
        request["LockMode"].as_str(),
        request["CoolOffPeriod"].as_str(),
        request["LockDuration"].as_str(),
    )
}

fn report(lab: &Lab) -> (std::path::PathBuf, String) {
    let path = lab.dir.path().join("report.json");
    let arg = path.to_str().unwrap().to_string();
    (path, arg)
}

#[test]
fn new_snapshots_are_locked_for_the_g_window() {
    let lab = Lab::start();
    let seeded = lab.seed(
        json!({"instances": [{"name": "db1", "volumes": [{"device": "/dev/sdb"}],
        "snapshots": [{"device": "/dev/sdb", "at": "2026-11-06T12:00:00Z"}]}]}),
    );
    let old = seeded_snapshot_ids(&seeded, "db1");
    lab.pin_clock("2026-11-26T12:00:00Z");
    let (path, arg) = report(&lab);
    let r = lab.run(&[
        "-t",
        "Name",
        "db1",
        "-g",
        "10",
        "d",
        "--lock",
        "governance",
        "-u",
        "--report",
        &arg,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let locks = lock_requests(&lab);
    let new = new_snapshots(&lab, &old);
    assert_eq!(new.len(), 2);
    for s in &new {
        let id = s["id"].as_str().unwrap();
        assert_eq!(
            locks.get(id),
            Some(&("10".to_string(), "governance".to_string())),
            "{locks:?}"
        );
        let tag = s["tags"]["ec2snap:locked-until"].as_str().unwrap();
        assert!(tag.starts_with("2026-12-06T12:0"), "{tag}");
        assert!(
            r.stderr.contains(&format!(
                "[INFO] Locking snapshot {id} for 10 days, until 2026-12-06T12:0"
            )),
            "{r:?}"
        );
    }
    // The old one is outside the window, not locked, and deleted.
    assert!(!locks.contains_key(&old[0]));
    assert!(
        r.stderr.contains(&format!("Deleting snapshot {}", old[0])),
        "{r:?}"
    );
    // The proxy holds the locks as AWS would.
    let held: Vec<Value> = lab.locks();
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(
        held.iter()
            .all(|l| l["state"] == "governance" && l["days"] == 10),
        "{held:?}"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let locked = doc["instances"][0]["locked"].as_array().unwrap();
    assert_eq!(locked.len(), 2, "{doc}");
    assert_eq!(locked[0]["mode"], "governance");
}

/// db1's data volume with snapshots on 2026-10-31, 11-24, 11-25 and 11-26 (UTC).
fn calendar_lab() -> (Lab, BTreeMap<&'static str, String>) {
    let lab = Lab::start();
    let at = [
        "2026-10-31T23:00:00Z",
        "2026-11-24T23:00:00Z",
        "2026-11-25T02:00:00Z",
        "2026-11-26T02:00:00Z",
    ];
    let snaps: Vec<Value> = at
        .iter()
        .map(|t| json!({"device": "/dev/sdb", "at": t}))
        .collect();
    let seeded = lab.seed(json!({"instances": [{"name": "db1", "volumes": [{"device": "/dev/sdb"}], "snapshots": snaps}]}));
    let ids = seeded_snapshot_ids(&seeded, "db1");
    lab.pin_clock("2026-11-26T12:00:00Z");
    (lab, at.iter().map(|t| &t[..10]).zip(ids).collect())
}

#[test]
fn keep_rules_lock_a_snapshot_once_its_period_is_over_until_the_rule_lets_it_go() {
    let (lab, by_day) = calendar_lab();
    let locking_run = || {
        let rules = ["--keep-daily", "7", "--keep-monthly", "12", "--utc"];
        let mut args = vec!["-t", "Name", "db1", "-n", "--lock", "governance", "-u"];
        args.extend_from_slice(&rules);
        lab.run(&args)
    };
    let r = locking_run();
    assert_eq!(r.code, 0, "{r:?}");
    let locks = lock_requests(&lab);
    let days = |day: &str| locks.get(&by_day[day]).map(|(d, _)| d.as_str());
    // October's newest: the monthly rule keeps it until 12 months after October began
    // (2027-10-01), 308 whole days from now.
    assert_eq!(days("2026-10-31"), Some("308"), "{locks:?}");
    // Days that are over: the daily rule keeps them 7 days from their start.
    assert_eq!(days("2026-11-24"), Some("4"), "{locks:?}");
    assert_eq!(days("2026-11-25"), Some("5"), "{locks:?}");
    // Today is not over (a later snapshot may take its place): not locked yet.
    assert_eq!(days("2026-11-26"), None, "{locks:?}");
    // A second run has nothing to extend.
    lab.reset_stats();
    let r = locking_run();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(lab.stats().get("LockSnapshot"), None, "{r:?}");
    // Any run's retention, with or without --lock (the "prune" role's), keeps locked snapshots,
    // and says why.
    let (path, arg) = report(&lab);
    let r = lab.run(&["-t", "Name", "db1", "-n", "-d", "1", "-u", "--report", &arg]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.deleting().is_empty(), "{r:?}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let kept = doc["instances"][0]["kept"].as_array().unwrap();
    let reasons = |id: &str| -> Vec<String> {
        let k = kept.iter().find(|k| k["id"] == id).unwrap();
        k["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        reasons(&by_day["2026-10-31"])[0].starts_with("locked until 2027-09-3"),
        "{kept:?}"
    );
    assert_eq!(reasons(&by_day["2026-11-26"]), ["last 1"]);
    // `list` shows the same.
    let l = lab.run(&["list", "-t", "Name", "db1", "-d", "1"]);
    assert!(
        l.stdout.contains("KEEP locked until 2026-11-30"),
        "{}",
        l.stdout
    );
}

#[test]
fn locks_are_read_from_ec2_before_deleting_and_the_tag_is_only_a_hint() {
    // Three 20-day-old snapshots under -g 5 d: one locked by someone else (AWS Backup, a person),
    // one with a forged ec2snap:locked-until tag and no lock, one plain.
    let lab = Lab::start();
    let seeded = lab.seed(
        json!({"instances": [{"name": "db1", "volumes": [{"device": "/dev/sdb"}],
        "snapshots": [{"device": "/dev/sdb", "age": 20 * 86_400},
                      {"device": "/dev/sdb", "age": 20 * 86_400, "tags": {"ec2snap:locked-until": "2099-01-01T00:00:00Z"}},
                      {"device": "/dev/sdb", "age": 20 * 86_400}]}]}),
    );
    let ids = seeded_snapshot_ids(&seeded, "db1");
    let (theirs, forged, plain) = (&ids[0], &ids[1], &ids[2]);
    lab.lock_outside(theirs, 30);
    let (path, arg) = report(&lab);
    let r = lab.run(&[
        "-t", "Name", "db1", "-g", "5", "d", "-u", "-v", "DEBUG", "--report", &arg,
    ]);
    // Kept, with no failing delete call: a normal night.
    assert_eq!(r.code, 0, "{r:?}");
    let deleted: Vec<String> = lab
        .requests("DeleteSnapshot")
        .iter()
        .map(|d| d["SnapshotId"].as_str().unwrap().to_string())
        .collect();
    assert!(!deleted.contains(theirs), "{r:?}");
    assert!(
        deleted.contains(forged) && deleted.contains(plain),
        "{deleted:?}"
    );
    assert!(
        r.stderr.contains(theirs.as_str())
            && r.stderr.contains("locked until")
            && r.stderr.contains("(governance)"),
        "{r:?}"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("locked until") && text.contains("(governance)"),
        "{text}"
    );
}

#[test]
fn a_lock_undone_early_is_locked_again_and_governance_to_compliance_has_its_cool_off() {
    let lab = Lab::start();
    lab.seed(json!({"instances": [{"name": "db1"}]}));
    let run = |extra: &[&str]| {
        let mut args = vec!["-t", "Name", "db1", "-g", "10", "d", "-u"];
        args.extend_from_slice(extra);
        lab.run(&args)
    };
    let r = run(&["--lock", "governance"]);
    assert_eq!(r.code, 0, "{r:?}");
    let first = lab.requests("LockSnapshot")[0]["SnapshotId"]
        .as_str()
        .unwrap()
        .to_string();
    // Someone unlocks it: its tag still says locked; the next run locks it again.
    lab.unlock(&first);
    lab.set_clock(86_400);
    let r = run(&["--lock", "governance"]);
    assert_eq!(r.code, 0, "{r:?}");
    let again: Vec<Value> = lab
        .requests("LockSnapshot")
        .into_iter()
        .filter(|q| q["SnapshotId"] == first.as_str())
        .collect();
    assert_eq!(again.len(), 2, "{r:?}");
    // Governance to compliance: the first compliance lock of each carries the cool-off.
    lab.set_clock(2 * 86_400);
    let r = run(&["--lock", "compliance", "--lock-cool-off", "24"]);
    assert_eq!(r.code, 0, "{r:?}");
    let compliance: Vec<Value> = lab
        .requests("LockSnapshot")
        .into_iter()
        .filter(|q| q["LockMode"] == "compliance")
        .collect();
    assert!(
        compliance.iter().any(|q| q["SnapshotId"] == first.as_str()),
        "{compliance:?}"
    );
    for q in &compliance {
        assert_eq!(
            q["CoolOffPeriod"], "24",
            "a first compliance lock without its cool-off: {q}"
        );
    }
    let states: Vec<Value> = lab.locks().iter().map(|l| l["state"].clone()).collect();
    assert!(
        states.iter().all(|s| s == "compliance-cooloff"),
        "{states:?}"
    );
}

#[test]
fn compliance_mode_has_a_cool_off_and_a_dry_run_only_asks() {
    let lab = Lab::start();
    lab.seed(json!({"instances": [{"name": "db1"}]}));
    let compliance = |extra: &[&str]| {
        let mut args = vec!["-t", "Name", "db1", "-g", "3", "d", "--lock", "compliance"];
        args.extend_from_slice(&["--lock-cool-off", "6"]);
        args.extend_from_slice(extra);
        lab.run(&args)
    };
    let r = compliance(&[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        lab.requests("LockSnapshot").is_empty(),
        "a dry run locks nothing"
    );
    assert!(r.stderr.contains("[INFO] Locking snapshot"), "{r:?}");
    let r = compliance(&["-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    let sent = lab.requests("LockSnapshot");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        lock_params(&sent[0]),
        (Some("compliance"), Some("6"), Some("3"))
    );
    assert_eq!(lab.locks()[0]["state"], "compliance-cooloff");
    for (args, want) in [
        (
            &["-d", "3", "--lock", "governance"][..],
            "-d counts snapshots, not time",
        ),
        (
            &[
                "-g",
                "3",
                "d",
                "--lock",
                "governance",
                "--lock-cool-off",
                "5",
            ],
            "--lock-cool-off goes with --lock compliance",
        ),
        (
            &[
                "-g",
                "3",
                "d",
                "--lock",
                "compliance",
                "--lock-cool-off",
                "80",
            ],
            "--lock-cool-off must be from 1 to 72",
        ),
        (
            &["-g", "3", "d", "--lock-max", "10"],
            "--lock-max and --lock-cool-off go with --lock",
        ),
        (
            &["-g", "3", "d", "--copy-lock", "governance"],
            "--copy-lock go with --copy-to",
        ),
        (
            &[
                "-d",
                "3",
                "--copy-to",
                "us-east-1",
                "--copy-lock",
                "governance",
            ],
            "--copy-lock locks for as long as the rules are sure",
        ),
    ] {
        let mut all = vec!["-t", "Name", "db1", "-u"];
        all.extend_from_slice(args);
        lab.reset_stats();
        let r = lab.run(&all);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(r.stderr.contains(want), "{args:?}: {r:?}");
        assert!(lab.writes().is_empty());
    }
}

#[test]
fn the_backup_role_locks_and_deletes_nothing_with_no_delete() {
    let lab = Lab::start();
    let seeded = lab.seed(
        json!({"instances": [{"name": "db1", "volumes": [{"device": "/dev/sdb"}],
        "snapshots": [{"device": "/dev/sdb", "age": 20 * 86_400}]}]}),
    );
    let old = &seeded_snapshot_ids(&seeded, "db1")[0];
    // DeleteSnapshot is refused to this role: none may be sent.
    lab.faults(json!([{"action": "DeleteSnapshot", "times": -1, "status": 403, "code": "UnauthorizedOperation", "message": "no"}]));
    let r = lab.run(&[
        "-t",
        "Name",
        "db1",
        "-g",
        "10",
        "d",
        "--lock",
        "governance",
        "--no-delete",
        "-u",
        "-v",
        "DEBUG",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(lab.stats().get("DeleteSnapshot"), None);
    assert_eq!(lab.requests("LockSnapshot").len(), 2);
    assert!(
        r.stderr.contains(&format!(
            "[DEBUG] Not deleting snapshot {old} (--no-delete): retention lets it go"
        )),
        "{r:?}"
    );
    assert!(snapshot_ids(&lab.snapshots()).contains(old));
}

/// `--copy-lock`: a copy in another region gets its own lock from the copies' rule, and never the
/// source's lock tag.
#[test]
fn copies_get_their_own_lock_in_their_region() {
    const DR: &str = "us-east-1";
    let lab = Lab::start();
    lab.seed(json!({"instances": [{"name": "db1", "volumes": [{"device": "/dev/sdb"}]}]}));
    let base = "-t Name db1 -o -g 10 d --lock governance -u";
    let base: Vec<&str> = base.split(' ').collect();
    lab.pin_clock("2026-11-20T12:00:00Z");
    let r = lab.run(&base);
    assert_eq!(r.code, 0, "{r:?}");
    let source = lab.snapshots()[0].clone();
    let sid = source["id"].as_str().unwrap();
    assert!(source["tags"]["ec2snap:locked-until"]
        .as_str()
        .unwrap()
        .starts_with("2026-11-30"));
    // Three days later: the catch-up copies it, and the copy is locked for the copies' 10 days
    // from now, in compliance mode with its cool-off.
    lab.pin_clock("2026-11-23T12:00:00Z");
    let (path, arg) = report(&lab);
    let mut args = base.clone();
    args.extend_from_slice(&[
        "--copy-to",
        DR,
        "--copy-lock",
        "compliance",
        "--lock-cool-off",
        "2",
        "--report",
        &arg,
    ]);
    let r = lab.run(&args);
    assert_eq!(r.code, 0, "{r:?}");
    let copies = lab.snapshots_in(DR);
    assert_eq!(copies.len(), 1, "{copies:?}");
    let cid = copies[0]["id"].as_str().unwrap();
    assert_eq!(copies[0]["tags"]["ec2snap:source-snapshot"], sid);
    let until = copies[0]["tags"]["ec2snap:locked-until"].as_str().unwrap();
    assert!(
        until.starts_with("2026-12-03T12:0"),
        "its own lock, not the source's: {until}"
    );
    let sent: Vec<Value> = lab
        .requests("LockSnapshot")
        .into_iter()
        .filter(|r| r["SnapshotId"] == cid)
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        lock_params(&sent[0]),
        (Some("compliance"), Some("2"), Some("10"))
    );
    assert!(
        r.stderr.contains(&format!(
            "[INFO] Locking snapshot {cid} in {DR} for 10 days, until 2026-12-03T12:0"
        )),
        "{r:?}"
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let locked = report["instances"][0]["locked"].as_array().unwrap();
    let entry = locked.iter().find(|l| l["region"] == DR).unwrap();
    assert_eq!(entry["mode"], "compliance");
    assert_eq!(entry["days"], 10);
}

#[test]
fn a_dry_run_checks_the_lock_permission_even_for_tonights_snapshot_alone() {
    // The only snapshot to lock is the one the run would make: the dry run asks EC2 with
    // DryRun=true on an existing snapshot of the volume, so that a refusal shows before -u.
    let lab = Lab::start();
    lab.seed(
        json!({"instances": [{"name": "db1", "volumes": [{"device": "/dev/sdb"}],
        "snapshots": [{"device": "/dev/sdb", "age": 20 * 86_400}]}]}),
    );
    lab.reset_stats();
    let dry = [
        "-t",
        "Name",
        "db1",
        "-o",
        "-g",
        "10",
        "d",
        "--lock",
        "governance",
    ];
    let r = lab.run(&dry);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        lab.stats().get("DryRun:LockSnapshot").copied().unwrap_or(0) >= 1,
        "{:?}",
        lab.stats()
    );
    assert!(
        lab.requests("LockSnapshot").is_empty(),
        "a dry run locks nothing"
    );
    // Refused: the dry run says so, exit 2, as the real run would fail.
    lab.faults(
        json!([{"action": "DryRun:LockSnapshot", "times": -1, "status": 403,
        "code": "UnauthorizedOperation", "message": "not authorized to perform ec2:LockSnapshot"}]),
    );
    let r = lab.run(&dry);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("The real run would be refused: LockSnapshot"),
        "{r:?}"
    );
}
