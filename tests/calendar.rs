//! Calendar retention (`--keep-hourly` ... `--keep-yearly`, restic's rules) against moto, with
//! snapshots made at fixed dates by moving the emulator's clock: exactly which stay over 400 days,
//! with `-d` and `-g`, the reasons at DEBUG and in the report, a dry run that lists exactly what
//! the real run deletes, the local time zone and `--utc`, and bad counts refused before any call.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use common::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The last seeded day: every date is in the past whenever the test runs.
const LAST: &str = "2026-11-25";

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// One instance "web" whose /dev/sdb has one snapshot a day at `hh:mm` UTC for `days` days up to
/// `LAST`; the snapshot ids by date.
fn daily_snapshots(lab: &Lab, days: i64, hh_mm: &str) -> BTreeMap<String, String> {
    let dates: Vec<String> = (0..days)
        .rev()
        .map(|n| (day(LAST) - Duration::days(n)).to_string())
        .collect();
    at_times(
        lab,
        &dates
            .iter()
            .map(|d| format!("{d}T{hh_mm}:00Z"))
            .collect::<Vec<_>>(),
    )
    .into_iter()
    .map(|(t, id)| (t[..10].to_string(), id))
    .collect()
}

/// "web" with one /dev/sdb snapshot at each of these times (RFC 3339); the ids by time.
fn at_times(lab: &Lab, times: &[String]) -> BTreeMap<String, String> {
    let snaps: Vec<Value> = times
        .iter()
        .map(|t| json!({"device": "/dev/sdb", "at": t}))
        .collect();
    let seeded = lab.seed(
        json!({"instances": [{"name": "web", "volumes": [{"device": "/dev/sdb"}],
        "snapshots": snaps}]}),
    );
    let ids = seeded_snapshot_ids(&seeded, "web");
    assert_eq!(ids.len(), times.len());
    times.iter().cloned().zip(ids).collect()
}

/// The dates (of `by_date`) whose snapshots are still there.
fn dates_left(lab: &Lab, by_date: &BTreeMap<String, String>) -> BTreeSet<String> {
    let left = snapshot_ids(&lab.snapshots());
    by_date
        .iter()
        .filter(|(_, id)| left.contains(*id))
        .map(|(d, _)| d.clone())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The run said at DEBUG why each of these (date, reasons) stays: `Keeping snap-.. (vol-..|/dev/sdb):
/// reasons`.
fn assert_keeping(lab: &Lab, r: &Run, by_date: &BTreeMap<String, String>, want: &[(&str, &str)]) {
    let vol = lab.snapshots()[0]["volume"].as_str().unwrap().to_string();
    for (date, why) in want {
        let line = format!("[DEBUG] Keeping {} ({vol}|/dev/sdb): {why}", by_date[*date]);
        assert!(r.has(&line), "{line}\n{r:?}");
    }
}

/// The snapshot ids named by the run's `Deleting snapshot` lines, in order.
fn deleted_ids(r: &Run) -> Vec<String> {
    r.deleting()
        .iter()
        .filter_map(|l| l.split_whitespace().nth(3).map(String::from))
        .collect()
}

/// 400 days of daily snapshots, `--keep-daily 7 --keep-weekly 4 --keep-monthly 12`: the 7 last
/// days, the Sundays of the 3 weeks before, the last day of the 11 months before (28 February
/// included) stay; 380 go, oldest first; the dry run names exactly those; a second run deletes
/// nothing.
#[test]
fn seven_daily_four_weekly_twelve_monthly_over_400_days() {
    let lab = Lab::start();
    let by_date = daily_snapshots(&lab, 400, "03:00");
    assert_eq!(
        by_date.keys().next().map(String::as_str),
        Some("2025-10-22")
    );
    let rules = [
        "--keep-daily",
        "7",
        "--keep-weekly",
        "4",
        "--keep-monthly",
        "12",
        "--utc",
    ];
    let report = lab.dir.path().join("report.json");
    let report_arg = report.to_str().unwrap();
    let mut dry = vec![
        "-t", "Name", "web", "-n", "-v", "DEBUG", "--report", report_arg,
    ];
    dry.extend(rules);
    let r = lab.run(&dry);
    assert_eq!(r.code, 0, "{r:?}");
    let planned = deleted_ids(&r);
    assert_eq!(planned.len(), 380, "{r:?}");
    assert_eq!(lab.snapshots().len(), 400, "a dry run deletes nothing");
    // Oldest first.
    assert_eq!(planned[0], by_date["2025-10-22"]);
    // The reasons, at DEBUG.
    assert_keeping(
        &lab,
        &r,
        &by_date,
        &[
            (
                "2026-11-25",
                "daily 2026-11-25, weekly 2026-W48, monthly 2026-11",
            ),
            ("2026-11-22", "daily 2026-11-22, weekly 2026-W47"),
            ("2026-11-15", "weekly 2026-W46"),
            ("2026-02-28", "monthly 2026-02"),
            ("2025-12-31", "monthly 2025-12"),
        ],
    );
    // And in the report.
    let rep: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let kept = rep["instances"][0]["kept"].as_array().unwrap();
    assert_eq!(kept.len(), 20, "{kept:?}");
    assert_eq!(kept[0]["id"], by_date["2026-11-25"].as_str());
    assert_eq!(
        kept[0]["reasons"],
        json!(["daily 2026-11-25", "weekly 2026-W48", "monthly 2026-11"])
    );
    assert_eq!(rep["instances"][0]["deleted"][0]["reason"], "calendar");

    let mut real = vec!["-t", "Name", "web", "-n", "-u"];
    real.extend(rules);
    let r = lab.run(&real);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(deleted_ids(&r), planned, "the dry run named exactly these");
    let want = set(&[
        "2026-11-25",
        "2026-11-24",
        "2026-11-23",
        "2026-11-22",
        "2026-11-21",
        "2026-11-20",
        "2026-11-19",
        "2026-11-15",
        "2026-11-08",
        "2026-10-31",
        "2026-09-30",
        "2026-08-31",
        "2026-07-31",
        "2026-06-30",
        "2026-05-31",
        "2026-04-30",
        "2026-03-31",
        "2026-02-28",
        "2026-01-31",
        "2025-12-31",
    ]);
    assert_eq!(dates_left(&lab, &by_date), want);
    let r = lab.run(&real);
    assert_eq!((r.code, r.deleting().len()), (0, 0), "{r:?}");
}

/// With `-d` and `-g`: `-g` is a window that is never pruned, `-d` keeps the N newest, the
/// calendar rules keep the rest; everything else goes. Then a run that makes a snapshot: it stays,
/// counts for its periods, and is named in the report.
#[test]
fn calendar_rules_with_keep_last_and_a_window() {
    let lab = Lab::start();
    let by_date = daily_snapshots(&lab, 60, "03:00");
    // Every run, and the snapshot the third one makes, on 2026-11-26 at noon UTC, whatever the
    // day the test runs: the periods of the rules never depend on it.
    let now = lab.pin_clock("2026-11-26T12:00:00Z");
    // The window reaches back to 2026-11-20 12:00 UTC.
    let since = DateTime::parse_from_rfc3339("2026-11-20T12:00:00Z").unwrap();
    let window = (now - since.with_timezone(&Utc)).num_seconds().to_string();
    let run = |extra: &[&str]| {
        let mut all = vec![
            "-t",
            "Name",
            "web",
            "-o",
            "-d",
            "3",
            "--keep-weekly",
            "2",
            "--keep-monthly",
            "2",
            "--utc",
            "-g",
            &window,
            "s",
        ];
        all.extend_from_slice(extra);
        lab.run(&all)
    };
    let r = run(&["-n", "-v", "DEBUG"]);
    assert_eq!(r.code, 0, "{r:?}");
    let planned = deleted_ids(&r);
    assert_keeping(
        &lab,
        &r,
        &by_date,
        &[
            (
                "2026-11-25",
                "younger than -g, last 1, weekly 2026-W48, monthly 2026-11",
            ),
            ("2026-11-22", "younger than -g, weekly 2026-W47"),
            ("2026-11-21", "younger than -g"),
            ("2026-10-31", "monthly 2026-10"),
        ],
    );
    let r = run(&["-n", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(deleted_ids(&r), planned);
    let kept = set(&[
        "2026-11-25",
        "2026-11-24",
        "2026-11-23",
        "2026-11-22",
        "2026-11-21",
        "2026-10-31",
    ]);
    assert_eq!(dates_left(&lab, &by_date), kept);
    assert_eq!(planned.len(), 54);

    // A run that makes a snapshot: the new one stays as this run's, and takes the place of
    // 2026-11-23 among the three last ones.
    let report = lab.dir.path().join("report.json");
    let r = run(&["-u", "--report", report.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    let rep: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let new_id = rep["instances"][0]["snapshots"][0]["id"].as_str().unwrap();
    let entries = rep["instances"][0]["kept"].as_array().unwrap();
    let mine = entries.iter().find(|k| k["id"] == new_id).unwrap();
    let reasons: Vec<&str> = mine["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        reasons[..3],
        ["made by this run", "younger than -g", "last 1"]
    );
    // The window still holds 2026-11-21 .. 2026-11-25: nothing goes.
    assert!(r.deleting().is_empty(), "{r:?}");
    assert_eq!(entries.len(), 7, "{entries:?}");
}

/// Periods are the machine's local time unless `--utc`: three snapshots on the evening of
/// 24 November UTC are two days in Berlin (23:30 UTC is 00:30 on the 25th there). With
/// `--keep-daily 2`, Berlin keeps the newest of each day; UTC has one day and keeps its newest
/// and, as restic does when a rule has periods left, the oldest.
#[test]
fn days_are_local_unless_utc() {
    let lab = Lab::start();
    let times: Vec<String> = ["21:30", "22:30", "23:30"]
        .iter()
        .map(|t| format!("2026-11-24T{t}:00Z"))
        .collect();
    let ids = at_times(&lab, &times);
    let run = |utc: bool| {
        let mut cmd = lab.cmd();
        cmd.env("TZ", "Europe/Berlin").args([
            "-t",
            "Name",
            "web",
            "-n",
            "--keep-daily",
            "2",
            "-v",
            "DEBUG",
        ]);
        if utc {
            cmd.arg("--utc");
        }
        run_cmd(&mut cmd)
    };
    let berlin = run(false);
    assert_eq!(berlin.code, 0, "{berlin:?}");
    assert_eq!(deleted_ids(&berlin), [ids[&times[0]].clone()]);
    assert!(berlin
        .lines()
        .iter()
        .any(|l| l.ends_with(": daily 2026-11-25")));
    let utc = run(true);
    assert_eq!(utc.code, 0, "{utc:?}");
    assert_eq!(deleted_ids(&utc), [ids[&times[1]].clone()]);
    assert!(utc
        .lines()
        .iter()
        .any(|l| l.ends_with(": daily 2026-11-24 (oldest)")));
}

/// A negative or non-numeric count is a usage error naming the flag: exit 1, no AWS call.
#[test]
fn bad_counts_are_refused_before_any_call() {
    let lab = Lab::start();
    daily_snapshots(&lab, 3, "03:00");
    lab.reset_stats();
    for (flag, value) in [
        ("--keep-daily", "-1"),
        ("--keep-monthly", "twelve"),
        ("--keep-yearly", "999999999"),
    ] {
        let r = lab.run(&["-t", "Name", "web", "-u", flag, value]);
        assert_eq!(r.code, 1, "{r:?}");
        let want =
            format!("{flag} takes a whole number of periods, 0 to 100000 (here \"{value}\")");
        assert!(
            r.stderr.contains(&want) || r.stdout.contains(&want),
            "{r:?}"
        );
    }
    assert!(lab.stats().is_empty(), "{:?}", lab.stats());
    assert_eq!(lab.snapshots().len(), 3);
}
