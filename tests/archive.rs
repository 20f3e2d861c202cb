//! `--archive-after`: which kept snapshots of a 400-day history go to the archive tier (moto
//! implements ModifySnapshotTier), and the warning when an archived one is deleted early.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// db1's data volume with a snapshot at 23:00 UTC on the last day of each month from 2025-10 to
/// 2026-10, and on each of the 7 days to 2026-11-26; the clock pinned at 2026-11-26 12:00 UTC.
/// The ids by day.
fn history() -> (Lab, BTreeMap<String, String>) {
    let lab = Lab::start();
    let mut days: Vec<String> = Vec::new();
    for (y, m) in (0..13).map(|n: u32| (2025 + (9 + n as i32) / 12, (9 + n) % 12 + 1)) {
        let last = chrono::NaiveDate::from_ymd_opt(y, m, 1).unwrap() + chrono::Months::new(1)
            - chrono::Days::new(1);
        days.push(last.to_string());
    }
    for d in 20..=26 {
        days.push(format!("2026-11-{d}"));
    }
    let snaps: Vec<Value> = days.iter().map(|d| json!({"device": "/dev/sdb", "at": format!("{d}T23:00:00Z").replace("2026-11-26T23", "2026-11-26T02")})).collect();
    let seeded = lab.seed(json!({"instances": [{"name": "db1", "volumes": [{"device": "/dev/sdb"}], "snapshots": snaps}]}));
    let ids = seeded_snapshot_ids(&seeded, "db1");
    lab.pin_clock("2026-11-26T12:00:00Z");
    (lab, days.into_iter().zip(ids).collect())
}

#[test]
fn kept_snapshots_that_stay_90_days_more_go_to_the_archive() {
    let (lab, by_day) = history();
    // moto gives no FullSnapshotSizeInBytes; AWS does for most snapshots: 8 GB each here.
    lab.faults(json!([{"action": "DescribeSnapshots", "times": -1, "rewrite_re": [
        ["(<snapshotId>snap-[0-9a-f]+</snapshotId>)", "\\1<fullSnapshotSizeInBytes>8000000000</fullSnapshotSizeInBytes>"]]}]));
    let rules = [
        "-t",
        "Name",
        "db1",
        "-n",
        "--keep-daily",
        "7",
        "--keep-monthly",
        "12",
        "--utc",
    ];
    let (path, arg) = (
        lab.dir.path().join("r.json"),
        lab.dir.path().join("r.json").to_str().unwrap().to_string(),
    );
    let mut args = rules.to_vec();
    args.extend_from_slice(&["--archive-after", "30", "d", "-u", "--report", &arg]);
    let r = lab.run(&args);
    assert_eq!(r.code, 0, "{r:?}");
    // Through the proxy, which keeps the tiers (moto has no ModifySnapshotTier).
    let tiers: BTreeMap<String, String> = lab
        .snapshots_in(REGION)
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["tier"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let archived: Vec<&str> = by_day
        .iter()
        .filter(|(_, id)| tiers.get(*id).map(String::as_str) == Some("archive"))
        .map(|(day, _)| day.as_str())
        .collect();
    // The monthly rule keeps December 2025 to October 2026; those it keeps 90 days more (from
    // March, kept until March 2027 and later) and older than 30 days (not October's) are archived.
    assert_eq!(
        archived,
        [
            "2026-03-31",
            "2026-04-30",
            "2026-05-31",
            "2026-06-30",
            "2026-07-31",
            "2026-08-31",
            "2026-09-30"
        ],
        "{r:?}"
    );
    // November 2025's is outside the rules: deleted.
    assert!(!tiers.contains_key(&by_day["2025-10-31"]));
    assert!(!tiers.contains_key(&by_day["2025-11-30"]));
    for day in &archived {
        assert!(
            r.has(&format!(
                "[INFO] Archiving snapshot {} of {}: the rules keep it 90 days more at least",
                by_day[*day],
                lab.snapshots()
                    .iter()
                    .find(|s| s["id"] == by_day[*day].as_str())
                    .unwrap()["volume"]
                    .as_str()
                    .unwrap()
            )),
            "{r:?}"
        );
    }
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        doc["instances"][0]["archived"].as_array().unwrap().len(),
        7,
        "{doc}"
    );
    // The next run has nothing more to archive; `list` shows the tier.
    lab.reset_stats();
    let mut again = rules.to_vec();
    let metrics = lab.dir.path().join("ec2snap.prom");
    again.extend_from_slice(&["--archive-after", "30", "d", "-u", "--metrics-file"]);
    again.push(metrics.to_str().unwrap());
    let r = lab.run(&again);
    assert_eq!(
        (r.code, lab.stats().get("ModifySnapshotTier")),
        (0, None),
        "{r:?}"
    );
    // The kept snapshots' size and monthly estimate, for a dashboard (see `list` below).
    let samples = parse_metrics(&metrics);
    assert_eq!(metric(&samples, "ec2snap_kept_snapshot_bytes"), 144e9);
    assert_eq!(metric(&samples, "ec2snap_kept_storage_monthly_usd"), 5.1);
    let l = lab.run(&["list", "-t", "Name", "db1", "--json"]);
    let listed: Value = serde_json::from_str(&l.stdout).unwrap();
    let in_archive = listed["instances"][0]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| v["snapshots"].as_array().unwrap().clone())
        .filter(|s| s["tier"] == "archive")
        .count();
    assert_eq!(in_archive, 7);
    // What the 18 kept snapshots cost a month at most: 11 standard, 7 archived, 8 GB each.
    let storage = &listed["storage"];
    assert_eq!(
        (storage["sized"].as_u64(), storage["kept_bytes"].as_u64()),
        (Some(18), Some(144_000_000_000)),
        "{listed}"
    );
    assert_eq!(
        (
            storage["monthly_usd"].as_f64(),
            storage["archive_saving_usd"].as_f64()
        ),
        (Some(5.1), Some(2.1)),
        "{listed}"
    );
    let table = lab.run(&["list", "-t", "Name", "db1"]).stdout;
    assert!(
        table.contains(
            "STORAGE: 18 snapshots, kept 144.0 GB at most $5.10/month (archive saves $2.10)"
        ),
        "{table}"
    );
    // Rules that let them go within 90 days of their archiving: deleted, with what it costs.
    let r = lab.run(&["-t", "Name", "db1", "-n", "-d", "1", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    let sep = &by_day["2026-09-30"];
    assert!(
        r.stderr.contains(&format!("[WARNING] Deleting snapshot {sep}, archived less than 90 days ago: the archive tier still bills its 90 remaining days")),
        "{r:?}"
    );
}

#[test]
fn archive_after_needs_rules_that_say_how_long() {
    let lab = Lab::start();
    lab.seed(json!({"instances": [{"name": "db1"}]}));
    let r = lab.run(&[
        "-t",
        "Name",
        "db1",
        "-d",
        "3",
        "--archive-after",
        "30",
        "d",
        "-u",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("--archive-after archives what the rules keep 90 days more at least"),
        "{r:?}"
    );
    assert!(lab.writes().is_empty());
}

#[test]
fn restoring_an_archived_snapshot_asks_for_its_tier_first() {
    let lab = Lab::start();
    let seeded = lab.seed(
        json!({"instances": [{"name": "db1", "volumes": [{"device": "/dev/sdb"}],
        "snapshots": [{"device": "/dev/sdb", "age": 200 * 86_400}]}]}),
    );
    let snap = &seeded_snapshot_ids(&seeded, "db1")[0];
    lab.archive(snap);
    let args = ["restore", "--snapshot", snap.as_str(), "-u"];
    let r = lab.run(&args);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(&format!("Snapshot {snap} is in the archive tier: its restore to the standard tier (for 7 days) is asked for, which takes up to 72 hours; run this restore again then")),
        "{r:?}"
    );
    let asked = lab.requests("RestoreSnapshotTier");
    assert_eq!(
        (asked.len(), asked[0]["SnapshotId"].as_str()),
        (1, Some(snap.as_str()))
    );
    assert!(lab.requests("CreateVolume").is_empty());
    // Again before it is back: under way, still no volume.
    let r = lab.run(&args);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("its restore to the standard tier is under way"),
        "{r:?}"
    );
    assert!(lab.requests("CreateVolume").is_empty());
}
