//! Legal holds (`ec2snap hold`, `ec2snap release`) and `--keep-tag` against moto: a held snapshot
//! (or set, or copy) is never deleted and does not count among the N the rules keep; a release
//! lets the next run delete it; bad input changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const DAY: i64 = 86_400;

/// "web" with one data volume and six snapshots, 6 to 1 days old (oldest first).
fn six(lab: &Lab) -> (Vec<String>, String) {
    let snaps: Vec<Value> = (1..=6)
        .rev()
        .map(|a| json!({"device": "/dev/sdb", "age": a * DAY}))
        .collect();
    let seeded = lab.seed(json!({"instances": [{"name": "web", "volumes": [{"device": "/dev/sdb"}], "snapshots": snaps}]}));
    (
        seeded_snapshot_ids(&seeded, "web"),
        vol_of(&seeded, "web", "/dev/sdb"),
    )
}

fn tags_of(lab: &Lab, id: &str) -> Value {
    lab.snapshots()
        .into_iter()
        .find(|s| s["id"] == id)
        .map(|s| s["tags"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn a_held_snapshot_stays_outside_the_n_kept_until_released() {
    let lab = Lab::start();
    let (old, _) = six(&lab);
    // A dry run of the hold changes nothing.
    let r = lab.run(&["hold", &old[0], "--reason", "incident 42"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.has(&format!("[INFO] Dry run: would hold {}", old[0]))
            || r.lines().iter().any(|l| l.contains("would hold")),
        "{r:?}"
    );
    assert_eq!(tags_of(&lab, &old[0]).get("ec2snap:hold"), None);
    let r = lab.run(&["hold", &old[0], "--reason", "incident 42", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    let tags = tags_of(&lab, &old[0]);
    assert_eq!(tags["ec2snap:hold"], "incident 42", "{tags}");
    assert!(
        tags["ec2snap:hold-by"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:"),
        "{tags}"
    );
    assert!(
        tags["ec2snap:hold-at"].as_str().unwrap().ends_with('Z'),
        "{tags}"
    );

    // list says it, with the reason.
    let l = lab.run(&["list", "-t", "Name", "web", "-d", "2"]);
    assert_eq!(l.code, 0, "{l:?}");
    assert!(l.stdout.contains("HELD: incident 42"), "{}", l.stdout);

    // -d 2: the held one and the 2 newest stay; 3 go.
    let report = lab.dir.path().join("report.json");
    let r = lab.run(&[
        "-t",
        "Name",
        "web",
        "-o",
        "-n",
        "-d",
        "2",
        "-u",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.deleting().len(), 3, "{r:?}");
    let left = snapshot_ids(&lab.snapshots());
    assert_eq!(
        left,
        BTreeSet::from([old[0].clone(), old[4].clone(), old[5].clone()])
    );
    let rep: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(rep["totals"]["held"], 1, "{rep}");
    let kept = rep["instances"][0]["kept"].as_array().unwrap();
    let held: Vec<&Value> = kept.iter().filter(|k| k.get("held").is_some()).collect();
    assert_eq!(held.len(), 1, "{kept:?}");
    assert_eq!(held[0]["id"], old[0].as_str());
    assert_eq!(held[0]["held"], "HELD: incident 42");

    // Released: the next run deletes it.
    let r = lab.run(&["release", &old[0], "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(tags_of(&lab, &old[0]).get("ec2snap:hold"), None);
    let r = lab.run(&["-t", "Name", "web", "-o", "-n", "-d", "2", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        snapshot_ids(&lab.snapshots()),
        BTreeSet::from([old[4].clone(), old[5].clone()])
    );
}

#[test]
fn a_keep_tag_keeps_as_a_hold_does() {
    let lab = Lab::start();
    let (old, _) = six(&lab);
    lab.tag_snapshot(&old[1], "legal", "yes");
    lab.tag_snapshot(&old[2], "legal", "no");
    let r = lab.run(&[
        "-t",
        "Name",
        "web",
        "-o",
        "-n",
        "-d",
        "2",
        "--keep-tag",
        "legal=yes",
        "-u",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        snapshot_ids(&lab.snapshots()),
        BTreeSet::from([old[1].clone(), old[4].clone(), old[5].clone()])
    );
    // A wrong --keep-tag is refused before anything is sent.
    let r = lab.run(&[
        "-t",
        "Name",
        "web",
        "-o",
        "-n",
        "-d",
        "1",
        "--keep-tag",
        "legal",
        "-u",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("--keep-tag"), "{r:?}");
    assert_eq!(lab.snapshots().len(), 3);
}

#[test]
fn a_held_set_survives_consistent_keep_one() {
    let lab = Lab::start();
    lab.seed(json!({"instances": [{"name": "db", "volumes": [{"device": "/dev/sdb"}, {"device": "/dev/sdc"}]}]}));
    for day in [-3, -2, -1] {
        lab.set_clock(day * DAY);
        let r = lab.run(&["-t", "Name", "db", "--consistent", "-u"]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    lab.set_clock(0);
    let sets: BTreeSet<String> = lab
        .snapshots()
        .iter()
        .filter_map(|s| s["tags"]["ec2snap:set"].as_str().map(String::from))
        .collect();
    assert_eq!(sets.len(), 3, "{sets:?}");
    let oldest = sets.iter().next().unwrap().clone();
    let r = lab.run(&["hold", "--set", &oldest, "--reason", "audit", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = lab.run(&["-t", "Name", "db", "--consistent", "-n", "-d", "1", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    let left: BTreeSet<String> = lab
        .snapshots()
        .iter()
        .filter_map(|s| s["tags"]["ec2snap:set"].as_str().map(String::from))
        .collect();
    let newest = sets.iter().last().unwrap().clone();
    assert_eq!(left, BTreeSet::from([oldest.clone(), newest]));
    // Whole: every member of the held set is still there and held.
    let members: Vec<Value> = lab
        .snapshots()
        .into_iter()
        .filter(|s| s["tags"]["ec2snap:set"] == oldest.as_str())
        .collect();
    assert!(members.len() >= 2, "{members:?}");
    assert!(
        members.iter().all(|m| m["tags"]["ec2snap:hold"] == "audit"),
        "{members:?}"
    );
}

#[test]
fn held_copies_survive_copy_keep_one() {
    const DR: &str = "us-east-1";
    let lab = Lab::start();
    let seeded =
        lab.seed(json!({"instances": [{"name": "web", "volumes": [{"device": "/dev/sdb"}]}]}));
    let _ = seeded;
    for day in [-4, -3, -2, -1] {
        lab.set_clock(day * DAY);
        let r = lab.run(&["-t", "Name", "web", "-o", "--copy-to", DR, "-u"]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    lab.set_clock(0);
    // Each run copies the newest *completed* snapshot: its own is still pending then.
    let mut copies = lab.snapshots_in(DR);
    assert_eq!(copies.len(), 3, "{copies:?}");
    copies.sort_by_key(|c| c["start_time"].as_str().unwrap_or("").to_string());
    let oldest = copies[0]["tags"]["ec2snap:source-snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let r = lab.run(&["hold", &oldest, "--copy-to", DR, "--reason", "legal", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    let held_copy: Vec<String> = lab
        .snapshots_in(DR)
        .iter()
        .filter(|c| c["tags"]["ec2snap:hold"] == "legal")
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(held_copy.len(), 1, "{:?}", lab.snapshots_in(DR));
    let r = lab.run(&[
        "-t",
        "Name",
        "web",
        "-o",
        "-n",
        "--copy-to",
        DR,
        "--copy-keep",
        "1",
        "-u",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    // This run copies the newest snapshot (pending: it does not count yet); of the three older
    // copies, the newest completed one is the floor, the held one stays, the other goes.
    assert_eq!(r.count("[INFO] Deleting copy"), 1, "{r:?}");
    let left = snapshot_ids(&lab.snapshots_in(DR));
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.contains(&held_copy[0]));
    assert!(
        !left.contains(copies[1]["id"].as_str().unwrap()),
        "{left:?}"
    );
}

#[test]
fn a_hold_on_what_is_not_there_changes_nothing() {
    let lab = Lab::start();
    let (old, _) = six(&lab);
    lab.reset_stats();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "hold",
                "snap-0123456789abcdef0",
                &old[0],
                "--reason",
                "x",
                "-u",
            ],
            "snap-0123456789abcdef0",
        ),
        (vec!["hold", &old[0], "-u"], "--reason"),
        (
            vec!["hold", &old[0], "--reason", "two\nlines", "-u"],
            "--reason",
        ),
        (
            vec!["hold", &old[0], "--reason", "evil\u{202e}abc", "-u"],
            "--reason",
        ),
        (
            vec!["hold", "vol-123", "--reason", "x", "-u"],
            "not a snapshot id",
        ),
        (
            vec!["hold", "--set", "i-0@nowhere", "--reason", "x", "-u"],
            "--set",
        ),
        (
            vec![
                "hold",
                &old[0],
                "--reason",
                "x",
                "--lock",
                "governance",
                "-u",
            ],
            "--lock-days",
        ),
        (vec!["release", "-u"], "give snapshot ids"),
    ];
    for (args, names) in cases {
        let r = lab.run(&args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(r.stderr.contains(names), "{args:?} names {names}: {r:?}");
    }
    assert_eq!(lab.writes(), Vec::<String>::new(), "nothing changed");
    assert!(lab
        .snapshots()
        .iter()
        .all(|s| s["tags"].get("ec2snap:hold").is_none()));
}
