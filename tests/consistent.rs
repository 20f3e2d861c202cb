//! `--consistent`: one CreateSnapshots call per instance, sets tagged so that each member's volume
//! and device can be recovered, cold cycles around it, and retention that keeps or deletes whole
//! sets (members of detached volumes included) beside the per-volume rules for older snapshots.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const DAY: i64 = 86_400;

/// db1: root, /dev/sdb (tagged team=db) and /dev/sdc.
fn db_lab() -> (Lab, Value) {
    let lab = Lab::start();
    let seeded = lab.seed(json!({"instances": [{"name": "db1", "volumes": [
        {"device": "/dev/sdb", "tags": {"team": "db"}}, {"device": "/dev/sdc"}]}]}));
    (lab, seeded)
}

fn set_of(s: &Value) -> String {
    s["tags"]["ec2snap:set"].as_str().unwrap_or("").to_string()
}

/// Makes one set per age (days, oldest first) with the emulator's clock moved back; their ids.
fn make_sets(lab: &Lab, ages: &[i64]) -> Vec<String> {
    let mut made = Vec::new();
    for age in ages {
        lab.set_clock(-age * DAY);
        let before: BTreeSet<String> = lab.snapshots().iter().map(set_of).collect();
        let r = lab.run(&["-t", "Name", "db1", "--consistent", "-u"]);
        assert_eq!(r.code, 0, "{r:?}");
        let after: BTreeSet<String> = lab.snapshots().iter().map(set_of).collect();
        made.extend(after.difference(&before).cloned());
    }
    lab.set_clock(0);
    assert_eq!(made.len(), ages.len());
    made
}

/// The set ids left, each with its number of members.
fn sets_left(lab: &Lab) -> Vec<(String, usize)> {
    let mut count = std::collections::BTreeMap::new();
    for s in lab.snapshots() {
        *count.entry(set_of(&s)).or_insert(0) += 1;
    }
    count.into_iter().collect()
}

#[test]
fn one_call_per_instance_makes_a_set_whose_members_can_be_told_apart() {
    let (lab, seeded) = db_lab();
    let id = id_of(&seeded, "db1");
    let dev = |d: &str| vol_of(&seeded, "db1", d);
    // Dry run: the same lines, without ids, and no call.
    lab.reset_stats();
    let r = lab.run(&["-t", "Name", "db1", "--consistent"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.lines()[4..].to_vec(),
        vec![
            format!(
                "[INFO] Hot snapshot made for {}(/dev/sda1)",
                dev("/dev/sda1")
            ),
            format!("[INFO] Hot snapshot made for {}(/dev/sdb)", dev("/dev/sdb")),
            format!("[INFO] Hot snapshot made for {}(/dev/sdc)", dev("/dev/sdc")),
            format!("[INFO] Hot snapshot set made for instance {id} (3 volumes)"),
        ]
    );
    assert!(lab.writes().is_empty(), "{:?}", lab.stats());

    lab.reset_stats();
    let r = lab.run(&[
        "-t",
        "Name",
        "db1",
        "--consistent",
        "-u",
        "-e",
        "backup:yes",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let stats = lab.stats();
    assert_eq!(stats.get("CreateSnapshots"), Some(&1), "{stats:?}");
    assert_eq!(stats.get("CreateSnapshot"), None, "{stats:?}");
    assert_eq!(
        stats.get("DescribeVolumes"),
        None,
        "EC2 copies the volume tags: {stats:?}"
    );
    assert_eq!(
        stats.get("CreateTags"),
        None,
        "no tagging call after it: {stats:?}"
    );
    let snaps = lab.snapshots();
    assert_eq!(snaps.len(), 3);
    let set = set_of(&snaps[0]);
    assert!(set.starts_with(&format!("{id}@")), "{set}");
    for s in &snaps {
        assert_eq!(set_of(s), set);
        assert_eq!(s["tags"]["backup"], "yes");
        assert_eq!(s["tags"]["type"], "Hot");
        assert_eq!(s["tags"]["instance name"], "db1");
        assert_eq!(s["description"], format!("{id} (db1) - Hot set {set}"));
    }
    // Each member's device, from the shared tag, and the volume's own tags.
    let devices = snaps[0]["tags"]["ec2snap:devices"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        devices,
        format!(
            "{}=/dev/sda1,{}=/dev/sdb,{}=/dev/sdc",
            dev("/dev/sda1"),
            dev("/dev/sdb"),
            dev("/dev/sdc")
        )
    );
    let sdb = snaps
        .iter()
        .find(|s| s["volume"] == dev("/dev/sdb"))
        .unwrap();
    assert_eq!(sdb["tags"]["team"], "db", "copied from the volume");
    for (device, line_dev) in [("/dev/sda1", "/dev/sda1"), ("/dev/sdb", "/dev/sdb")] {
        let snap = snaps.iter().find(|s| s["volume"] == dev(device)).unwrap();
        let line = format!(
            "[INFO] Hot snapshot made for {}({line_dev}) - {}",
            dev(device),
            snap["id"].as_str().unwrap()
        );
        assert!(r.has(&line), "{line} in {r:?}");
    }
    assert!(r.has(&format!(
        "[INFO] Hot snapshot set {set} made for instance {id} (3 volumes)"
    )));
}

#[test]
fn no_root_device_leaves_the_root_out_of_the_set() {
    let (lab, seeded) = db_lab();
    let r = lab.run(&["-t", "Name", "db1", "--consistent", "-u", "-o"]);
    assert_eq!(r.code, 0, "{r:?}");
    let vols: BTreeSet<String> = lab
        .snapshots()
        .iter()
        .map(|s| s["volume"].as_str().unwrap().to_string())
        .collect();
    let want: BTreeSet<String> = [
        vol_of(&seeded, "db1", "/dev/sdb"),
        vol_of(&seeded, "db1", "/dev/sdc"),
    ]
    .into();
    assert_eq!(vols, want);
}

#[test]
fn cold_consistent_cycle_and_its_failures_restart_the_instance() {
    let (lab, seeded) = db_lab();
    let id = id_of(&seeded, "db1");
    lab.reset_stats();
    let r = lab.run(&["-t", "Name", "db1", "--consistent", "-H", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.count("[INFO] Cold snapshot made for"), 3, "{r:?}");
    assert!(r.has(&format!("[INFO] Instance {id} now running !")));
    let stats = lab.stats();
    assert_eq!(
        (
            stats.get("StopInstances"),
            stats.get("CreateSnapshots"),
            stats.get("StartInstances")
        ),
        (Some(&1), Some(&1), Some(&1))
    );
    // Refused: CRITICAL naming the instance and the code, counted, restarted, old set kept.
    lab.faults(
        json!([{"action": "CreateSnapshots", "times": 1, "status": 400,
                       "code": "UnsupportedOperation", "message": "instance store root"}]),
    );
    let r = lab.run(&["-t", "Name", "db1", "--consistent", "-H", "-u", "-d", "1"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.has(&format!(
            "[CRITICAL] Cold snapshot set failed for instance {id} [UnsupportedOperation: instance store root]"
        )),
        "{r:?}"
    );
    assert_eq!(r.stdout, error_summary(1, 0));
    assert_eq!(r.deleting().len(), 0);
    assert_eq!(lab.instance_state(&id), "running");
    assert_eq!(lab.snapshots().len(), 3, "the old set is kept");
    // A signal while the call is in flight: the instance is started again, 143.
    lab.faults(json!([{"action": "CreateSnapshots", "times": 1, "delay": 5}]));
    let live = lab.spawn(&["-t", "Name", "db1", "--consistent", "-H", "-u"]);
    live.wait_for(&format!("Instance {id} now stopped !"), 1);
    live.signal("TERM");
    let (code, lines) = live.finish();
    assert_eq!(code, Some(143), "{lines:#?}");
    assert!(
        lines.contains(&format!("[INFO] Instance {id} now running !")),
        "{lines:#?}"
    );
    assert_eq!(lab.instance_state(&id), "running");
}

#[test]
fn keep_last_keeps_the_newest_sets_whole() {
    let (lab, _) = db_lab();
    let sets = make_sets(&lab, &[10, 8, 6, 4]);
    let r = lab.run(&["-t", "Name", "db1", "--consistent", "-n", "-d", "2", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        sets_left(&lab),
        vec![(sets[2].clone(), 3), (sets[3].clone(), 3)]
    );
    assert_eq!(r.count("[INFO] Deleting set"), 2);
    assert!(r.has(&format!("[INFO] Deleting set {} (3 snapshots)", sets[0])));
    assert_eq!(r.deleting().len(), 6);
}

/// The calendar rules on sets: each set is one item (its time is its newest member's), kept or
/// deleted whole, with its reasons at DEBUG; the set this run makes counts for today.
#[test]
fn calendar_rules_keep_whole_sets() {
    let (lab, _) = db_lab();
    let sets = make_sets(&lab, &[10, 8, 6, 4]);
    let args = [
        "-t",
        "Name",
        "db1",
        "--consistent",
        "--keep-daily",
        "2",
        "--utc",
    ];
    let mut dry = args.to_vec();
    dry.extend(["-n", "-v", "DEBUG"]);
    let r = lab.run(&dry);
    assert_eq!(r.code, 0, "{r:?}");
    let keeping: Vec<String> = r.starting_with("[DEBUG] Keeping set ");
    assert_eq!(keeping.len(), 2, "{r:?}");
    assert!(keeping[0].starts_with(&format!(
        "[DEBUG] Keeping set {} (3 snapshots): daily ",
        sets[3]
    )));
    assert_eq!(r.count("[INFO] Deleting set"), 2);
    // A run that makes a set: it is today's, so only the 4-day-old one stays beside it.
    let mut dry = args.to_vec();
    dry.push("-v");
    dry.push("DEBUG");
    let planned = lab.run(&dry);
    assert!(
        planned.has(&format!("[INFO] Deleting set {} (3 snapshots)", sets[2])),
        "{planned:?}"
    );
    let mut real = args.to_vec();
    real.push("-u");
    let r = lab.run(&real);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.deleting(),
        planned.deleting(),
        "the dry run named exactly these"
    );
    let left: Vec<String> = sets_left(&lab)
        .into_iter()
        .map(|(id, n)| {
            assert_eq!(n, 3);
            id
        })
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left.contains(&sets[3]) && !left.contains(&sets[2]),
        "{left:?} {sets:?}"
    );
}

#[test]
fn max_age_and_both_rules_on_sets() {
    let (lab, _) = db_lab();
    let sets = make_sets(&lab, &[10, 8, 6, 4]);
    // Dry run first: it lists what the real run deletes.
    let mut args = vec![
        "-t",
        "Name",
        "db1",
        "--consistent",
        "-n",
        "-g",
        "5",
        "d",
        "-d",
        "3",
    ];
    let dry = lab.run(&args);
    args.push("-u");
    let r = lab.run(&args);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(dry.deleting(), r.deleting());
    // Older than 5 days: 10, 8, 6; but the 3 newest stay whatever their age.
    assert_eq!(
        sets_left(&lab),
        vec![
            (sets[1].clone(), 3),
            (sets[2].clone(), 3),
            (sets[3].clone(), 3)
        ]
    );
    let r = lab.run(&[
        "-t",
        "Name",
        "db1",
        "--consistent",
        "-n",
        "-g",
        "7",
        "d",
        "-u",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        sets_left(&lab),
        vec![(sets[2].clone(), 3), (sets[3].clone(), 3)]
    );
}

#[test]
fn a_set_is_deleted_whole_even_when_a_volume_was_detached() {
    let (lab, seeded) = db_lab();
    let sets = make_sets(&lab, &[10, 8]);
    let sdc = vol_of(&seeded, "db1", "/dev/sdc");
    lab.detach(&sdc);
    let r = lab.run(&["-t", "Name", "db1", "--consistent", "-n", "-d", "1", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(sets_left(&lab), vec![(sets[1].clone(), 3)]);
    // The detached volume's member is named with its device, read from the set's tags.
    assert!(
        r.deleting()
            .iter()
            .any(|l| l.ends_with(&format!("({sdc}|/dev/sdc)"))),
        "{r:?}"
    );
}

#[test]
fn old_snapshots_without_the_set_tag_keep_the_per_volume_rules() {
    let lab = Lab::start();
    let old = json!([{"device": "/dev/sdb", "age": 12 * DAY}, {"device": "/dev/sdb", "age": 9 * DAY},
                     {"device": "/dev/sdb", "age": 2 * DAY}]);
    let seeded = lab.seed(
        json!({"instances": [{"name": "db1", "volumes": [{"device": "/dev/sdb"}],
                                                "snapshots": old}]}),
    );
    let loose = seeded_snapshot_ids(&seeded, "db1");
    let sets = make_sets(&lab, &[10, 3]);
    let r = lab.run(&["-t", "Name", "db1", "--consistent", "-n", "-d", "1", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    let left = lab.snapshots();
    // Per volume: the newest loose snapshot stays; per set: the newest set stays.
    let want: BTreeSet<String> = left
        .iter()
        .filter(|s| set_of(s) == sets[1])
        .map(|s| s["id"].as_str().unwrap().to_string())
        .chain([loose[2].clone()])
        .collect();
    assert_eq!(snapshot_ids(&left), want, "{r:?}");
    assert_eq!(
        left.len(),
        3,
        "the 3-day set (2 members) and one loose snapshot"
    );
}

/// A dry run, then the same with `-u`: the real run exits 0 and deletes exactly what the dry run
/// named. The real run.
fn dry_then_real(lab: &Lab, args: &[&str]) -> Run {
    let dry = lab.run(args);
    assert_eq!(dry.code, 0, "{dry:?}");
    let mut real = args.to_vec();
    real.push("-u");
    let r = lab.run(&real);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        dry.deleting(),
        r.deleting(),
        "the dry run names what the real run deletes"
    );
    r
}

/// The members of one set.
fn members(lab: &Lab, set: &str) -> Vec<Value> {
    lab.snapshots()
        .into_iter()
        .filter(|s| set_of(s) == set)
        .collect()
}

/// The newest set lost its /dev/sdb member (deleted by hand, or in state `error`): it is
/// incomplete, a WARNING names the device, and it never counts among the kept sets. `-d 1` keeps
/// the newest complete set (the last usable backup of /dev/sdb) and the incomplete one for the
/// floor of the other two volumes; only the oldest set goes. Dry run = real run.
#[test]
fn an_incomplete_set_never_counts_among_the_kept() {
    for flaw in ["deleted", "error"] {
        let (lab, seeded) = db_lab();
        let sets = make_sets(&lab, &[3, 2, 1]);
        let dev = |d: &str| vol_of(&seeded, "db1", d);
        let sdb = dev("/dev/sdb");
        let member = members(&lab, &sets[2])
            .into_iter()
            .find(|s| s["volume"] == sdb)
            .map(|s| s["id"].as_str().unwrap().to_string())
            .unwrap();
        let warning = if flaw == "deleted" {
            lab.delete_snapshot(&member);
            format!("no snapshot of {sdb}(/dev/sdb)")
        } else {
            lab.faults(json!([{"action": "DescribeSnapshots",
                "rewrite_re": [[format!("({member}</snapshotId>.*?<status>)completed"), "\\1error"]]}]));
            format!("{member} of {sdb}(/dev/sdb) is in state error")
        };
        let args = [
            "-t",
            "Name",
            "db1",
            "--consistent",
            "-n",
            "-d",
            "1",
            "-v",
            "DEBUG",
        ];
        let r = dry_then_real(&lab, &args);
        assert!(
            r.has(&format!(
                "[WARNING] Set {} is incomplete: {warning}; it does not count among the kept sets",
                sets[2]
            )),
            "{flaw}: {r:?}"
        );
        let left: Vec<String> = sets_left(&lab).into_iter().map(|(id, _)| id).collect();
        assert_eq!(
            left,
            vec![sets[1].clone(), sets[2].clone()],
            "{flaw}: {r:?}"
        );
        // /dev/sdb keeps a usable snapshot: the complete set's member.
        assert!(
            members(&lab, &sets[1]).iter().any(|s| s["volume"] == sdb),
            "{flaw}"
        );
        let keeping = r.starting_with(&format!("[DEBUG] Keeping set {} ", sets[2]));
        assert_eq!(keeping.len(), 1, "{flaw}: {r:?}");
        for device in ["/dev/sda1", "/dev/sdc"] {
            assert!(
                keeping[0].contains(&format!("floor of {}", dev(device))),
                "{flaw}: {keeping:?}"
            );
        }
        assert!(
            !keeping[0].contains(&format!("floor of {sdb}")),
            "{keeping:?}"
        );
        assert!(r.has(&format!(
            "[DEBUG] Keeping set {} (3 snapshots): last 1",
            sets[1]
        )));
    }
}

/// `-o` added to a `--consistent` job: the new set has no root member, so the newest old set
/// stays for the floor of the root volume (plain mode keeps one too); the older one goes.
#[test]
fn no_root_device_never_takes_the_roots_last_backup() {
    let (lab, seeded) = db_lab();
    let sets = make_sets(&lab, &[3, 2]);
    let root = vol_of(&seeded, "db1", "/dev/sda1");
    let args = [
        "-t",
        "Name",
        "db1",
        "--consistent",
        "-o",
        "-d",
        "1",
        "-v",
        "DEBUG",
    ];
    let r = dry_then_real(&lab, &args);
    assert!(
        r.has(&format!("[INFO] Deleting set {} (3 snapshots)", sets[0])),
        "{r:?}"
    );
    assert!(
        r.has(&format!(
            "[DEBUG] Keeping set {} (3 snapshots): floor of {root}",
            sets[1]
        )),
        "{r:?}"
    );
    let left = sets_left(&lab);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&(sets[1].clone(), 3)), "{left:?}");
    let roots = lab
        .snapshots()
        .iter()
        .filter(|s| s["volume"] == root)
        .count();
    assert_eq!(roots, 1, "the root volume keeps its newest backup");
}

/// After a cron line switched to `--consistent -d 1`, the snapshots made before it (no set tag)
/// that are older than the volume's newest (a set member) go, as they would without
/// `--consistent`: a volume's N newest are the newest of all its snapshots.
#[test]
fn loose_snapshots_older_than_the_newest_set_are_not_stranded() {
    let lab = Lab::start();
    let old =
        json!([{"device": "/dev/sdb", "age": 12 * DAY}, {"device": "/dev/sdb", "age": 9 * DAY}]);
    let seeded = lab.seed(
        json!({"instances": [{"name": "db1", "volumes": [{"device": "/dev/sdb"}],
                                                "snapshots": old}]}),
    );
    let loose = seeded_snapshot_ids(&seeded, "db1");
    let sets = make_sets(&lab, &[10, 3]);
    let args = ["-t", "Name", "db1", "--consistent", "-n", "-d", "1"];
    let r = dry_then_real(&lab, &args);
    for id in &loose {
        assert!(
            r.deleting().iter().any(|l| l.contains(id.as_str())),
            "{id} {r:?}"
        );
    }
    assert_eq!(sets_left(&lab), vec![(sets[1].clone(), 2)], "{r:?}");
}

/// `--consistent -o` on an instance whose only volume is the root: nothing to snapshot is a
/// WARNING naming the instance and no call, in a dry run too.
#[test]
fn consistent_with_nothing_to_snapshot_sends_no_call() {
    let lab = Lab::start();
    let seeded = lab.seed(json!({"instances": [{"name": "solo"}]}));
    let id = id_of(&seeded, "solo");
    for extra in [None, Some("-u")] {
        lab.reset_stats();
        let mut args = vec!["-t", "Name", "solo", "--consistent", "-o"];
        args.extend(extra);
        let r = lab.run(&args);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(
            r.has(&format!(
                "[WARNING] Instance {id} has no volume to snapshot (-o leaves out its root device): no snapshot made"
            )),
            "{r:?}"
        );
        assert!(!r.stderr.contains("snapshot set"), "{r:?}");
        let stats = lab.stats();
        assert_eq!(stats.get("CreateSnapshots"), None, "{stats:?}");
        assert_eq!(stats.get("DryRun:CreateSnapshots"), None, "{stats:?}");
    }
    assert!(lab.snapshots().is_empty());
}
