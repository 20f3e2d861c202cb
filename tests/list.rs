//! `ec2snap list`: every backup of the selected instances, per volume, with copies, sets and
//! problems (no backup, error, incomplete set, orphan), as a table and as JSON; read-only (only
//! Describe calls); its DELETE marks are exactly what a run with the same flags deletes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const DAY: i64 = 86_400;

/// web1 (/dev/sdb with snapshots 10, 6 and 2 days old, then one this tool made half a day ago),
/// db1 (/dev/sdb, /dev/sdc, /dev/sdd) with two sets and /dev/sdd detached since, and "gone"
/// (/dev/sdb, snapshotted half a day ago).
fn fleet_lab() -> (Lab, Value) {
    let lab = Lab::start();
    let old = json!([{"device": "/dev/sdb", "age": 10 * DAY}, {"device": "/dev/sdb", "age": 6 * DAY},
                     {"device": "/dev/sdb", "age": 2 * DAY}]);
    let seeded = lab.seed(json!({"instances": [
        {"name": "web1", "volumes": [{"device": "/dev/sdb"}], "snapshots": old},
        {"name": "db1", "volumes": [{"device": "/dev/sdb"}, {"device": "/dev/sdc"}, {"device": "/dev/sdd"}]},
        {"name": "gone", "volumes": [{"device": "/dev/sdb"}]}]}));
    // Sets of db1, 3 and 1 days old; the newest loses its /dev/sdc member.
    for age in [3, 1] {
        lab.set_clock(-age * DAY);
        let r = lab.run(&["-t", "Name", "db1", "--consistent", "-u"]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    lab.detach(&vol_of(&seeded, "db1", "/dev/sdd"));
    // A snapshot of web1's /dev/sdb and of gone's made by this tool, half a day ago.
    lab.set_clock(-DAY / 2);
    let r = lab.run(&["-t", "Name", "web1", "-o", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = lab.run(&["-t", "Name", "gone", "-o", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    lab.set_clock(0);
    (lab, seeded)
}

fn snapshot_ids_in(doc: &Value, verdict: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for i in doc["instances"].as_array().unwrap() {
        for v in i["volumes"].as_array().unwrap() {
            for s in v["snapshots"].as_array().unwrap() {
                if let (true, Some(id)) = (s["verdict"] == verdict, s["id"].as_str()) {
                    out.insert(id.to_string());
                }
            }
        }
    }
    out
}

/// The snapshot ids a run's `Deleting snapshot snap-.. (...)` lines name.
fn deleting_ids(r: &Run) -> BTreeSet<String> {
    r.deleting()
        .iter()
        .filter_map(|l| l.split_whitespace().nth(3).map(String::from))
        .collect()
}

#[test]
fn list_shows_every_backup_with_its_problems_and_changes_nothing() {
    let (lab, seeded) = fleet_lab();
    let sdc = vol_of(&seeded, "db1", "/dev/sdc");
    let gone = vol_of(&seeded, "gone", "/dev/sdb");
    let web_sdb = vol_of(&seeded, "web1", "/dev/sdb");
    let db1 = id_of(&seeded, "db1");
    let snaps = lab.snapshots();
    let newest_set = snaps
        .iter()
        .filter_map(|s| s["tags"]["ec2snap:set"].as_str())
        .max()
        .unwrap()
        .to_string();
    let sdc_member = snaps
        .iter()
        .find(|s| s["tags"]["ec2snap:set"] == newest_set.as_str() && s["volume"] == sdc.as_str())
        .map(|s| s["id"].as_str().unwrap().to_string())
        .unwrap();
    lab.delete_snapshot(&sdc_member);
    let orphan = snaps
        .iter()
        .find(|s| s["volume"] == gone.as_str())
        .map(|s| s["id"].as_str().unwrap().to_string())
        .unwrap();
    lab.delete_volume(&gone);
    // A copy in a second region of web1's newest snapshot (this tool's), and one of its older
    // snapshots in error.
    let r = lab.run(&["-t", "Name", "web1", "-n", "-u", "--copy-to", "us-east-1"]);
    assert_eq!(r.code, 0, "{r:?}");
    let web_snaps: Vec<String> = seeded_snapshot_ids(&seeded, "web1");
    // One in error, one pending at 40%, one in the archive tier.
    lab.faults(json!([{"action": "DescribeSnapshots", "times": -1, "rewrite_re": [
        [format!("({}</snapshotId>.*?<status>)completed", web_snaps[1]), "\\1error"],
        [format!("({}</snapshotId>.*?<status>)completed", web_snaps[2]), "\\1pending"],
        [format!("({}</snapshotId>.*?<progress>)100%", web_snaps[2]), "\\g<1>40%"],
        [format!("(<snapshotId>{}</snapshotId>)", web_snaps[0]), "\\1<storageTier>archive</storageTier>"]]}]));
    lab.reset_stats();
    let args = [
        "list",
        "-t",
        "Name",
        "*",
        "-d",
        "2",
        "--copy-to",
        "us-east-1",
    ];
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let r = lab.run(&json_args);
    assert_eq!(r.code, 0, "{r:?}");
    let doc: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    let stats = lab.stats();
    assert!(
        stats.keys().all(|a| a.starts_with("Describe")),
        "list only reads: {stats:?}"
    );
    let problems: BTreeSet<(String, String)> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap().to_string(),
                p["resource"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for want in [
        ("incomplete-set", newest_set.as_str()),
        ("error", web_snaps[1].as_str()),
        ("orphan", orphan.as_str()),
    ] {
        assert!(
            problems.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} in {problems:?}"
        );
    }
    // Per volume, newest first, with its copy; the set members with their set.
    let web = doc["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "web1")
        .unwrap();
    let sdb = web["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == web_sdb.as_str())
        .unwrap();
    // First, the snapshot the next run makes (no id yet): one of the 2 that `-d 2` keeps.
    let all = sdb["snapshots"].as_array().unwrap();
    assert_eq!(
        (&all[0]["id"], &all[0]["state"], &all[0]["verdict"]),
        (&Value::Null, &json!("planned"), &json!("keep")),
        "{sdb:#}"
    );
    assert_eq!(all[0]["reasons"], json!(["last 1"]));
    let real = &all[1..];
    let listed: Vec<&str> = real.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert_eq!(listed[1..], [&web_snaps[2], &web_snaps[1], &web_snaps[0]]);
    let newest = &real[0];
    assert_eq!(newest["verdict"], "keep");
    assert_eq!(newest["reasons"], json!(["last 2"]));
    assert_eq!(newest["copies"][0]["region"], "us-east-1");
    assert_eq!(real[2]["state"], "error");
    assert_eq!(
        (&real[1]["state"], &real[1]["progress"]),
        (&json!("pending"), &json!("40%"))
    );
    assert_eq!(real[3]["tier"], "archive");
    assert_eq!(real[0]["tier"], "standard");
    for older in &real[1..] {
        assert_eq!(older["verdict"], "delete", "{sdb:#}");
    }
    let db = doc["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == db1.as_str())
        .unwrap();
    assert!(db["volumes"][0]["snapshots"][1]["set"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{db1}@")));
    // The volume detached since is still listed with its device, from the sets' tags.
    let sdd = vol_of(&seeded, "db1", "/dev/sdd");
    let detached = db["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == sdd.as_str())
        .unwrap();
    assert_eq!(
        (&detached["device"], &detached["attached"]),
        (&json!("/dev/sdd"), &json!(false))
    );
    assert_eq!(detached["snapshots"].as_array().unwrap().len(), 2);
    // The table says the same, problems first.
    let r = lab.run(&args);
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("PROBLEMS: "), "{}", r.stdout);
    assert!(
        lines.iter().any(|l| l.trim_start().starts_with("orphan")
            && l.contains(&orphan)
            && l.contains("(deleted)")),
        "{}",
        r.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start().starts_with(listed[0]) && l.ends_with("KEEP last 2")),
        "{}",
        r.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start().starts_with("(next run)")
                && l.contains("planned")
                && l.ends_with("KEEP last 1")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains(&format!("{web_sdb} /dev/sdb 1 GiB: 4 snapshots")),
        "the planned one is not counted: {}",
        r.stdout
    );
    assert!(!r.stdout.contains('\u{1b}'), "no colour when piped");
    assert!(
        r.stdout.contains(&format!("{sdd} /dev/sdd (detached)")),
        "{}",
        r.stdout
    );
    // On a terminal (script(1) gives it one), KEEP and DELETE in colour; never with NO_COLOR.
    for (no_color, coloured) in [(false, true), (true, false)] {
        let env: &[(&str, &str)] = if no_color { &[("NO_COLOR", "1")] } else { &[] };
        let (ok, screen) = lab.on_terminal("list -t Name web1 -d 2", env);
        assert!(ok, "{screen}");
        assert!(
            screen.contains("KEEP") && screen.contains("last 2"),
            "{screen}"
        );
        assert_eq!(
            screen.contains("\u{1b}[31mDELETE"),
            coloured,
            "NO_COLOR={no_color}: {screen}"
        );
    }
    // What a run would ignore is refused, naming the flag: clap's usage error (list takes no
    // -u; see docs/differences.md).
    let r = lab.run(&["list", "-t", "Name", "*", "-u"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("unexpected argument '-u'"), "{r:?}");
    assert!(lab.stats().keys().all(|a| a.starts_with("Describe")));
}

/// For each kind of rule, the snapshots `list` marks DELETE are the ones a dry run with the same
/// flags names in its `Deleting` lines: with the snapshot that run would make counted among the
/// newest, and with `-n` (no new snapshot). `-H` gives the planned snapshots `type=Cold`, which
/// `--snap-filter type Hot` then leaves out.
#[test]
fn delete_marks_are_what_a_run_deletes() {
    let (lab, _) = fleet_lab();
    let rules: [&[&str]; 8] = [
        &["-g", "5", "d"],
        &["-d", "1"],
        &["-g", "5", "d", "-d", "2"],
        &["--keep-daily", "2", "--utc"],
        &["--consistent", "-d", "1"],
        &["--consistent", "-g", "2", "d"],
        &["--snap-filter", "type", "Hot", "-d", "1"],
        &["-H", "--snap-filter", "type", "Hot", "-d", "1"],
    ];
    for rule in rules {
        let mut marks = Vec::new();
        for no_snap in [false, true] {
            let mut list = vec!["list", "-t", "Name", "*", "--json"];
            list.extend_from_slice(rule);
            let mut dry = vec!["-t", "Name", "*", "--no-permission-check"];
            dry.extend_from_slice(rule);
            if no_snap {
                list.push("-n");
                dry.push("-n");
            }
            let r = lab.run(&list);
            assert_eq!(r.code, 0, "{rule:?}: {r:?}");
            let doc: Value = serde_json::from_str(&r.stdout).unwrap();
            let marked = snapshot_ids_in(&doc, "delete");
            let r = lab.run(&dry);
            assert_eq!(r.code, 0, "{rule:?}: {r:?}");
            assert_eq!(marked, deleting_ids(&r), "{rule:?} -n: {no_snap}");
            marks.push(marked);
        }
        assert!(
            !marks[0].is_empty() || rule[0] == "--keep-daily" || rule[0] == "-H",
            "{rule:?} deletes something"
        );
        if rule[0] == "-H" {
            assert_eq!(marks[0], marks[1], "a Cold snapshot does not pass type=Hot");
        } else if rule.ends_with(&["-d", "1"]) {
            assert!(
                marks[0].len() > marks[1].len(),
                "{rule:?}: the new snapshot counts for -d: {marks:?}"
            );
        }
    }
}

/// `--prune-orphans-after 30 d`: this tool's snapshots of a deleted volume go once older than 30
/// days (the newest of the volume too, when it is that old), younger ones stay; a dry run lists
/// them; the report has them, with the reason `orphan`.
#[test]
fn orphans_older_than_the_limit_are_pruned() {
    let lab = Lab::start();
    let seeded = lab.seed(json!({"instances": [{"name": "web1"}, {"name": "gone", "volumes": [{"device": "/dev/sdb"}]}]}));
    let gone = vol_of(&seeded, "gone", "/dev/sdb");
    for age in [40, 35, 2] {
        lab.set_clock(-age * DAY);
        let r = lab.run(&["-t", "Name", "gone", "-o", "-u"]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    lab.set_clock(0);
    let by_age: Vec<String> = {
        let mut of_gone: Vec<Value> = lab
            .snapshots()
            .into_iter()
            .filter(|s| s["volume"] == gone.as_str())
            .collect();
        of_gone.sort_by(|a, b| a["start_time"].as_str().cmp(&b["start_time"].as_str()));
        of_gone
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(by_age.len(), 3);
    lab.delete_volume(&gone);
    let args = [
        "-t",
        "Name",
        "web1",
        "-n",
        "--prune-orphans-after",
        "30",
        "d",
    ];
    let dry = lab.run(&args);
    assert_eq!(dry.code, 0, "{dry:?}");
    let planned: Vec<String> = dry.starting_with("[INFO] Deleting orphan ");
    assert_eq!(planned.len(), 2, "{dry:?}");
    assert!(
        planned[0].contains(&format!("{} ({gone} deleted, 40d 0h old)", by_age[0])),
        "{planned:?}"
    );
    assert_eq!(lab.snapshots().len(), 3, "a dry run deletes nothing");
    let report = lab.dir.path().join("report.json");
    let mut real = args.to_vec();
    real.extend(["-u", "--report", report.to_str().unwrap()]);
    let r = lab.run(&real);
    assert_eq!(r.code, 0, "{r:?}");
    let left: BTreeSet<String> = snapshot_ids(&lab.snapshots());
    assert_eq!(left, BTreeSet::from([by_age[2].clone()]), "{r:?}");
    let rep: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let deleted = rep["deleted"].as_array().unwrap();
    assert_eq!(deleted.len(), 2, "{rep:#}");
    assert!(deleted
        .iter()
        .all(|d| d["reason"] == "orphan" && d["volume"] == gone.as_str()));
    assert_eq!(rep["totals"]["deleted"], 2);
    // With --consistent, the run's own listing of every snapshot serves for the orphans too.
    lab.reset_stats();
    let mut sets = real.to_vec();
    sets.extend(["--consistent", "-d", "5"]);
    let r = lab.run(&sets);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(lab.stats().get("DescribeSnapshots"), Some(&1), "{r:?}");
    // What is left is still an orphan for `list`; `list` refuses the flag (it only reads).
    let r = lab.run(&["list", "-t", "Name", "web1", "--json"]);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    assert_eq!(
        doc["problems"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["kind"] == "orphan")
            .count(),
        1
    );
    let r = lab.run(&[
        "list",
        "-t",
        "Name",
        "web1",
        "--prune-orphans-after",
        "1",
        "d",
    ]);
    // clap's usage error (see docs/differences.md).
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("unexpected argument '--prune-orphans-after'"),
        "{r:?}"
    );
}
