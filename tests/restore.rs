#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `ec2snap restore` against moto behind the fault proxy: per-volume backups and sets, `--at`,
//! `--az`, `--attach-to`, `--ami`, and what goes wrong (a missing snapshot or set member, a zone
//! that does not exist, CreateVolume refused, a volume that ends in error).

mod common;

use common::*;
use serde_json::{json, Value};

const DAY: i64 = 86_400;

/// web1 with a tagged gp2 data volume, backed up 3 and 1 days ago; db1 with two data volumes and
/// a set 2 days ago; spare, a bare instance to attach to.
fn restore_lab() -> (Lab, Value) {
    let lab = Lab::start();
    let seeded = lab.seed(json!({"instances": [
        {"name": "web1", "volumes": [{"device": "/dev/sdb", "tags": {"team": "a"}}]},
        {"name": "db1", "volumes": [{"device": "/dev/sdb"}, {"device": "/dev/sdc"}]},
        {"name": "spare"}]}));
    for (age, who, extra) in [
        (3, "web1", None),
        (2, "db1", Some("--consistent")),
        (1, "web1", None),
    ] {
        lab.set_clock(-age * DAY);
        let mut args = vec!["-t", "Name", who, "-u"];
        args.extend(extra);
        let r = lab.run(&args);
        assert_eq!(r.code, 0, "{r:?}");
    }
    lab.set_clock(0);
    (lab, seeded)
}

/// The volumes a restore made (they carry `ec2snap:restored-from`).
fn restored(lab: &Lab) -> Vec<Value> {
    lab.volumes()
        .into_iter()
        .filter(|v| v["tags"]["ec2snap:restored-from"].is_string())
        .collect()
}

fn volume<'a>(all: &'a [Value], id: &str) -> &'a Value {
    all.iter().find(|v| v["id"] == id).unwrap()
}

/// The snapshots of a volume, oldest first.
fn snapshots_of(lab: &Lab, volume: &str) -> Vec<Value> {
    let mut all: Vec<Value> = lab
        .snapshots()
        .into_iter()
        .filter(|s| s["volume"] == volume)
        .collect();
    all.sort_by(|a, b| a["start_time"].as_str().cmp(&b["start_time"].as_str()));
    all
}

#[test]
fn a_per_volume_backup_restores_at_a_time_with_its_volumes_shape_and_tags() {
    let (lab, seeded) = restore_lab();
    let sdb = vol_of(&seeded, "web1", "/dev/sdb");
    let at = (chrono::Utc::now() - chrono::Duration::days(2))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let older = snapshots_of(&lab, &sdb)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The dry run says what it would make and makes nothing.
    lab.reset_stats();
    let dry = lab.run(&["restore", "-t", "Name", "web1", "--at", &at]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.has(&format!(
            "[INFO] Would restore {older} ({sdb} /dev/sdb) as a gp2 1 GiB volume in eu-west-1a"
        )),
        "{dry:?}"
    );
    assert!(lab.writes().is_empty(), "{:?}", lab.stats());
    assert_eq!(
        lab.stats().get("DryRun:CreateVolume"),
        Some(&2),
        "the permission is checked"
    );
    assert!(restored(&lab).is_empty());
    // The real one: the backup of 3 days ago, root and data, as the sources are.
    let r = lab.run(&["restore", "-t", "Name", "web1", "--at", &at, "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    let made = restored(&lab);
    assert_eq!(made.len(), 2, "{made:#?}");
    let data = made
        .iter()
        .find(|v| v["tags"]["ec2snap:source-device"] == "/dev/sdb")
        .unwrap();
    let source = volume(&lab.volumes(), &sdb).clone();
    assert_eq!(data["snapshot"], older.as_str());
    assert_eq!(
        (&data["zone"], &data["type"], &data["size"], &data["state"]),
        (
            &source["zone"],
            &source["type"],
            &source["size"],
            &json!("available")
        )
    );
    assert_eq!(data["tags"]["ec2snap:restored-from"], older.as_str());
    assert_eq!(data["tags"]["ec2snap:source-volume"], sdb.as_str());
    assert_eq!(data["tags"]["team"], "a", "the snapshot's own tags");
    assert!(data["attachments"].as_array().unwrap().is_empty());
    // What it made, one line each on standard output.
    let id = data["id"].as_str().unwrap();
    assert!(
        r.stdout
            .lines()
            .any(|l| l.ends_with(&format!("/dev/sdb {older} -> {id} eu-west-1a available"))),
        "{}",
        r.stdout
    );
}

#[test]
fn a_set_restores_whole_in_another_zone_attached_or_as_an_ami() {
    let (lab, seeded) = restore_lab();
    let db1 = id_of(&seeded, "db1");
    let spare = id_of(&seeded, "spare");
    let sdc = vol_of(&seeded, "db1", "/dev/sdc");
    let members: Vec<Value> = lab
        .snapshots()
        .into_iter()
        .filter(|s| s["tags"]["ec2snap:set"].is_string())
        .collect();
    assert_eq!(members.len(), 3);
    let set = members[0]["tags"]["ec2snap:set"]
        .as_str()
        .unwrap()
        .to_string();
    let r = lab.run(&[
        "restore",
        "--set",
        &set,
        "--az",
        "eu-west-1b",
        "-u",
        "--report",
        "-",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let made = restored(&lab);
    assert_eq!(made.len(), 3);
    assert!(made.iter().all(|v| v["zone"] == "eu-west-1b"), "{made:#?}");
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    let entry = report["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == db1.as_str())
        .unwrap();
    let devices: Vec<&str> = entry["restored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["device"].as_str().unwrap())
        .collect();
    assert_eq!(devices, ["/dev/sda1", "/dev/sdb", "/dev/sdc"]);
    // --attach-to: the set's root device is taken on spare: refused, nothing made.
    lab.reset_stats();
    let r = lab.run(&["restore", "--set", &set, "--attach-to", &spare, "-u"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.has(&format!("[ERROR] --attach-to {spare}: /dev/sda1 already in use there; nothing restored, nothing detached")), "{r:?}");
    assert!(lab.writes().is_empty(), "{:?}", lab.stats());
    // One member, attached at its device in spare's zone.
    let member = members
        .iter()
        .find(|m| m["volume"] == sdc.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = lab.run(&[
        "restore",
        "--snapshot",
        &member,
        "--attach-to",
        &spare,
        "-u",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let attached: Vec<Value> = restored(&lab)
        .into_iter()
        .filter(|v| v["snapshot"] == member.as_str() && v["zone"] == "eu-west-1a")
        .collect();
    assert_eq!(attached.len(), 1, "{attached:#?}");
    assert_eq!(
        attached[0]["attachments"],
        json!([{"instance": spare, "device": "/dev/sdc"}])
    );
    // --ami: one image of the set's members at their devices, db1's root device.
    let r = lab.run(&["restore", "--set", &set, "--ami", "db1-restored", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    let sent = lab.requests("RegisterImage");
    assert_eq!(sent.len(), 1, "{sent:?}");
    let image = &sent[0];
    assert_eq!(
        (&image["Name"], &image["RootDeviceName"]),
        (&json!("db1-restored"), &json!("/dev/sda1"))
    );
    let mut mapping: Vec<(String, String)> = (1..=3)
        .map(|n| {
            (
                image[format!("BlockDeviceMapping.{n}.DeviceName")]
                    .as_str()
                    .unwrap()
                    .to_string(),
                image[format!("BlockDeviceMapping.{n}.Ebs.SnapshotId")]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    mapping.sort();
    let mut want: Vec<(String, String)> = members
        .iter()
        .map(|m| {
            let devices = m["tags"]["ec2snap:devices"].as_str().unwrap();
            let vol = m["volume"].as_str().unwrap();
            let device = devices
                .split(',')
                .find_map(|e| e.strip_prefix(&format!("{vol}=")))
                .unwrap();
            (device.to_string(), m["id"].as_str().unwrap().to_string())
        })
        .collect();
    want.sort();
    assert_eq!(mapping, want);
    assert_eq!(
        image["BlockDeviceMapping.1.Ebs.DeleteOnTermination"],
        "true"
    );
    assert!(image["Architecture"].is_string(), "{image}");
    assert!(
        r.stdout.contains(" AMI db1-restored -> ami-"),
        "{}",
        r.stdout
    );
}

#[test]
fn what_cannot_be_restored_is_said_and_exits_2() {
    let (lab, seeded) = restore_lab();
    let db1 = id_of(&seeded, "db1");
    // A snapshot that does not exist.
    let r = lab.run(&["restore", "--snapshot", "snap-0123456789abcdef0", "-u"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.has("[ERROR] Snapshot snap-0123456789abcdef0 not found"),
        "{r:?}"
    );
    // A zone that does not exist: nothing is made.
    lab.reset_stats();
    let r = lab.run(&["restore", "-t", "Name", "web1", "--az", "eu-west-1z", "-u"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.lines().iter().any(|l| l.contains("[ERROR] Availability Zone eu-west-1z does not exist in eu-west-1")), "{r:?}");
    assert!(lab.writes().is_empty(), "{:?}", lab.stats());
    // CreateVolume refused: the line names the snapshot and says EC2's code.
    lab.faults(json!([{"action": "CreateVolume", "times": 1, "status": 400, "code": "VolumeLimitExceeded", "message": "too many volumes"}]));
    let r = lab.run(&["restore", "-t", "Name", "web1", "-u"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.lines()
            .iter()
            .any(|l| l.starts_with("[ERROR] Cannot restore snap-")
                && l.contains("VolumeLimitExceeded")),
        "{r:?}"
    );
    assert_eq!(restored(&lab).len(), 1, "the other volume is restored");
    // A volume that ends in state error.
    lab.clear_faults();
    lab.faults(json!([{"action": "DescribeVolumes", "times": -1, "match": "vol-", "rewrite": [["<status>available</status>", "<status>error</status>"]]}]));
    let r = lab.run(&["restore", "-t", "Name", "web1", "-u"]);
    lab.clear_faults();
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.lines()
            .iter()
            .any(|l| l.starts_with("[ERROR] Volume vol-") && l.ends_with("ended in state error")),
        "{r:?}"
    );
    // A set that lost a member: the others are restored, the missing one is said.
    let members: Vec<Value> = lab
        .snapshots()
        .into_iter()
        .filter(|s| s["tags"]["ec2snap:set"].is_string())
        .collect();
    let set = members[0]["tags"]["ec2snap:set"]
        .as_str()
        .unwrap()
        .to_string();
    let sdc = vol_of(&seeded, "db1", "/dev/sdc");
    let lost = members
        .iter()
        .find(|m| m["volume"] == sdc.as_str())
        .unwrap();
    lab.delete_snapshot(lost["id"].as_str().unwrap());
    let before = restored(&lab).len();
    let r = lab.run(&["restore", "--set", &set, "-u"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.has(&format!(
            "[ERROR] Set {set} lacks {sdc}(/dev/sdc): restoring what it has"
        )),
        "{r:?}"
    );
    assert_eq!(restored(&lab).len(), before + 2);
    // An instance with no backup.
    let r = lab.run(&["restore", "-t", "Name", "spare", "-u"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.lines()
            .iter()
            .any(|l| l.ends_with("has no completed backup: nothing to restore")),
        "{r:?}"
    );
    let _ = db1;
}

/// `--from-region`: the copies in another region restore there as their sources would, with
/// `--az` in that region.
#[test]
fn copies_in_another_region_restore_there() {
    let lab = Lab::start();
    let seeded =
        lab.seed(json!({"instances": [{"name": "web1", "volumes": [{"device": "/dev/sdb"}]}]}));
    let sdb = vol_of(&seeded, "web1", "/dev/sdb");
    let r = lab.run(&["-t", "Name", "web1", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    // A run copies the completed snapshots it finds (this one, the previous run's).
    let r = lab.run(&["-t", "Name", "web1", "-n", "--copy-to", "us-east-1", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    let copies = lab.snapshots_in("us-east-1");
    assert_eq!(copies.len(), 2, "{copies:#?}");
    let r = lab.run(&[
        "restore",
        "-t",
        "Name",
        "web1",
        "--from-region",
        "us-east-1",
        "--az",
        "us-east-1b",
        "-u",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let made: Vec<Value> = lab
        .volumes_in("us-east-1")
        .into_iter()
        .filter(|v| v["tags"]["ec2snap:restored-from"].is_string())
        .collect();
    assert_eq!(made.len(), 2, "{made:#?}");
    let data = made
        .iter()
        .find(|v| v["tags"]["ec2snap:source-volume"] == sdb.as_str())
        .unwrap();
    let copy = copies
        .iter()
        .find(|c| c["tags"]["ec2snap:source-volume"] == sdb.as_str())
        .unwrap();
    assert_eq!(
        (&data["snapshot"], &data["zone"]),
        (&copy["id"], &json!("us-east-1b"))
    );
    assert_eq!(data["tags"]["ec2snap:source-device"], "/dev/sdb");
    assert!(restored(&lab).is_empty(), "nothing in the home region");
}

/// On a terminal, a bar counts the volumes that became available; the log lines stay.
#[test]
fn a_bar_on_a_terminal_while_the_volumes_are_made() {
    let (lab, _) = restore_lab();
    // The first state poll (after the sources' DescribeVolumes) takes a second: the bar is drawn.
    lab.faults(json!([{"action": "DescribeVolumes", "skip": 1, "times": 1, "delay": 1.0}]));
    let (ok, screen) = lab.on_terminal("restore -t Name web1 -u", &[]);
    assert!(ok, "{screen}");
    assert!(screen.contains("volumes available"), "a bar: {screen}");
    assert!(screen.contains("is available ("), "log lines too: {screen}");
}

#[test]
fn a_restore_is_one_point_in_time_of_this_tools_backups() {
    // db2: a set 40 days ago; before it, a run of both volumes (50 days) and one of the data
    // volume alone (45 days); an hour ago, a snapshot of the data volume made by hand.
    let lab = Lab::start();
    lab.seed(json!({"instances": [{"name": "db2", "volumes": [{"device": "/dev/sdb"}],
        "snapshots": [{"device": "/dev/sdb", "age": 3600, "description": "manual snapshot before the upgrade"}]}]}));
    for (age, extra) in [(50, None), (45, Some("-o")), (40, Some("--consistent"))] {
        lab.set_clock(-age * DAY);
        let mut args = vec!["-t", "Name", "db2", "-u"];
        args.extend(extra);
        let r = lab.run(&args);
        assert_eq!(r.code, 0, "{r:?}");
    }
    lab.set_clock(0);
    let set: Vec<String> = lab
        .snapshots()
        .into_iter()
        .filter(|s| s["tags"]["ec2snap:set"].is_string())
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(set.len(), 2);
    let r = lab.run(&["restore", "-t", "Name", "db2", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    let mut from: Vec<String> = restored(&lab)
        .iter()
        .map(|v| {
            v["tags"]["ec2snap:restored-from"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    from.sort();
    let mut want = set.clone();
    want.sort();
    assert_eq!(from, want, "not the set, one point in time: {r:?}");
    // The AMI is of the set too.
    let r = lab.run(&[
        "restore",
        "-t",
        "Name",
        "db2",
        "-u",
        "--ami",
        "db2-restored",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let sent = lab.requests("RegisterImage");
    let mut imaged: Vec<String> = (1..=2)
        .map(|n| {
            sent[0][format!("BlockDeviceMapping.{n}.Ebs.SnapshotId")]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    imaged.sort();
    assert_eq!(imaged, want, "{sent:?}");

    // An incomplete set (its data member in error) and nothing else: volumes are restored as
    // far as it goes (exit 2, saying what lacks), an AMI only with --allow-partial.
    let lab = Lab::start();
    let seeded =
        lab.seed(json!({"instances": [{"name": "db3", "volumes": [{"device": "/dev/sdb"}]}]}));
    let r = lab.run(&["-t", "Name", "db3", "-u", "--consistent"]);
    assert_eq!(r.code, 0, "{r:?}");
    let data = vol_of(&seeded, "db3", "/dev/sdb");
    let member = lab
        .snapshots()
        .into_iter()
        .find(|s| s["volume"] == data.as_str())
        .unwrap();
    lab.states(json!({ member["id"].as_str().unwrap(): "error" }));
    let ami = [
        "restore",
        "-t",
        "Name",
        "db3",
        "-u",
        "--ami",
        "db3-restored",
    ];
    let r = lab.run(&ami);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("no AMI without --allow-partial"), "{r:?}");
    assert!(lab.requests("RegisterImage").is_empty());
    let r = lab.run(&[&ami[..], &["--allow-partial"]].concat());
    assert_eq!(lab.requests("RegisterImage").len(), 1, "{r:?}");
}
