//! Snapshot planning: which volumes of an instance get a snapshot, with the original's description
//! and tags.

use crate::model::{Disk, Instance, Snapshot, SnapshotKind, SnapshotState, Tags};
use crate::tags::{DEVICES_TAG, SET_TAG};
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRequest {
    pub disk: Disk,
    pub description: String,
    pub tags: Tags,
    /// Volume tag keys left out because a snapshot can carry at most 50 tags.
    pub dropped_tags: Vec<String>,
}

/// EC2's limit of tags on one resource.
const MAX_TAGS: usize = 50;

/// The attached volumes to snapshot, in the instance's (sorted) device order; `-o` drops the
/// volume on the root device.
pub fn disks_to_snapshot(instance: &Instance, no_root_device: bool) -> Vec<&Disk> {
    instance
        .disks
        .iter()
        .filter(|d| !(no_root_device && instance.root_device.as_deref() == Some(d.device.as_str())))
        .collect()
}

/// `<instance-id> (<Name>) - <Hot|Cold> <device> (<vol-id>)`
pub fn description(instance: &Instance, disk: &Disk, kind: SnapshotKind) -> String {
    format!(
        "{} ({}) - {kind} {} ({})",
        instance.id,
        instance.name(),
        disk.device,
        disk.volume_id
    )
}

/// The volume's own tags, or the four default tags when it has none; then `-e` on top.
/// `aws:` tags are reserved (CreateSnapshot refuses them), so they are never copied.
/// EC2 allows 50 tags on a snapshot: every `-e` tag is kept, then as many of the volume's own tags
/// as fit, in key order; the keys left out are returned.
pub fn snapshot_tags(
    instance: &Instance,
    disk: &Disk,
    kind: SnapshotKind,
    volume_tags: Option<&Tags>,
    add_tags: &[(String, String)],
) -> (Tags, Vec<String>) {
    let mut tags: Tags = volume_tags
        .map(|t| {
            t.iter()
                .filter(|(k, _)| !k.starts_with("aws:"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    if tags.is_empty() {
        tags.insert("type".into(), kind.to_string());
        tags.insert("volume".into(), disk.volume_id.clone());
        tags.insert("device".into(), disk.device.clone());
        tags.insert("instance name".into(), instance.name().into());
    }
    let added: Tags = add_tags.iter().cloned().collect();
    let room = MAX_TAGS.saturating_sub(added.len());
    let mut dropped = Vec::new();
    let own: Vec<String> = tags
        .keys()
        .filter(|k| !added.contains_key(*k))
        .cloned()
        .collect();
    for key in own.into_iter().skip(room) {
        tags.remove(&key);
        dropped.push(key);
    }
    tags.extend(added);
    (tags, dropped)
}

pub fn requests(
    instance: &Instance,
    kind: SnapshotKind,
    no_root_device: bool,
    volume_tags: &std::collections::HashMap<String, Tags>,
    add_tags: &[(String, String)],
) -> Vec<SnapshotRequest> {
    disks_to_snapshot(instance, no_root_device)
        .into_iter()
        .map(|disk| {
            let (tags, dropped_tags) = snapshot_tags(
                instance,
                disk,
                kind,
                volume_tags.get(&disk.volume_id),
                add_tags,
            );
            SnapshotRequest {
                disk: disk.clone(),
                description: description(instance, disk, kind),
                tags,
                dropped_tags,
            }
        })
        .collect()
}

/// What one instance's snapshots are: one call per volume, or one set (`--consistent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Volumes(Vec<SnapshotRequest>),
    Set(SetRequest),
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        match self {
            Plan::Volumes(v) => v.is_empty(),
            Plan::Set(s) => s.members.is_empty(),
        }
    }
}

/// An instance's snapshots: one set (`--consistent`) or a request per volume. `volume_tags` are
/// copied onto each volume's snapshot (EC2 copies them onto a set's members itself).
pub fn for_instance(
    instance: &Instance,
    kind: SnapshotKind,
    consistent: bool,
    no_root_device: bool,
    volume_tags: &HashMap<String, Tags>,
    add_tags: &[(String, String)],
    now: DateTime<Utc>,
) -> Plan {
    if consistent {
        Plan::Set(set_request(instance, kind, no_root_device, add_tags, now))
    } else {
        Plan::Volumes(requests(
            instance,
            kind,
            no_root_device,
            volume_tags,
            add_tags,
        ))
    }
}

/// The id a dry run (and `list`) gives the snapshot it would make of a volume.
pub fn planned_id(volume_id: &str) -> String {
    format!("(planned for {volume_id})")
}

/// Whether a run needs its volumes' tags before snapshotting: a real run copies them onto each
/// snapshot (with `--consistent` EC2 does it: CopyTagsFromSource); a dry run needs them only to
/// know whether its planned snapshots pass `--snap-filter` under keep rules (`filter_check`).
pub fn volume_tags_needed(mode: crate::model::Mode, sets: bool, filter_check: bool) -> bool {
    match (mode.is_dry(), sets) {
        (true, _) => filter_check,
        (false, true) => false,
        (false, false) => true,
    }
}

/// Whether `id` is a snapshot or a copy a dry run would make (`planned_id`, `planned_copy_id`):
/// it exists in no other mode.
pub fn is_planned(id: &str) -> bool {
    id.starts_with("(planned ")
}

/// The id shown for a copy a dry run would make of `source`.
pub fn planned_copy_id(source: &str) -> String {
    format!("(planned copy of {source})")
}

/// A snapshot just made (or planned), still pending: the newest of its volume.
pub fn pending(id: String, volume_id: &str, tags: Tags, now: DateTime<Utc>) -> Snapshot {
    Snapshot {
        id,
        volume_id: volume_id.to_string(),
        start_time: now,
        state: SnapshotState::Pending,
        tags,
        description: String::new(),
        progress: None,
        tier: None,
        size_bytes: None,
        lock: Default::default(),
        in_use_by: None,
    }
}

/// A set member's tags as EC2 gives them: the volume's own (when known), then the set's.
pub fn member_tags(volume_tags: Option<&Tags>, set: &SetRequest) -> Tags {
    let mut tags = volume_tags.cloned().unwrap_or_default();
    tags.extend(set.tags.clone());
    tags
}

/// The snapshots a plan would make, as a dry run counts them for retention: pending, taken
/// `now`, with the tags EC2 would give them; and the set's id with `--consistent`.
pub fn planned(
    plan: &Plan,
    volume_tags: &HashMap<String, Tags>,
    now: DateTime<Utc>,
) -> (Vec<Snapshot>, Option<String>) {
    match plan {
        Plan::Volumes(requests) => {
            let made = requests
                .iter()
                .map(|r| {
                    let id = planned_id(&r.disk.volume_id);
                    pending(id, &r.disk.volume_id, r.tags.clone(), now)
                })
                .collect();
            (made, None)
        }
        Plan::Set(set) => {
            let made = set
                .members
                .iter()
                .map(|d| {
                    let tags = member_tags(volume_tags.get(&d.volume_id), set);
                    pending(planned_id(&d.volume_id), &d.volume_id, tags, now)
                })
                .collect();
            (made, Some(set.set_id.clone()))
        }
    }
}

/// `--consistent`: every volume of an instance in one CreateSnapshots call, which takes one
/// description and one tag set for all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetRequest {
    pub set_id: String,
    pub description: String,
    /// The same on every member (the volumes' own tags are copied by EC2 on top of them).
    pub tags: Tags,
    /// The volumes EC2 will snapshot, in device order (`-o` leaves the root out).
    pub members: Vec<Disk>,
}

/// `<instance-id>@<UTC time with milliseconds>`: it sorts by time within an instance, and an
/// instance's sets are found with the filter value `<instance-id>@*`.
pub fn set_id(instance_id: &str, now: DateTime<Utc>) -> String {
    format!(
        "{instance_id}@{}",
        now.to_rfc3339_opts(SecondsFormat::Millis, true)
    )
}

/// The instance a set id names.
pub fn set_instance(set_id: &str) -> &str {
    set_id.split_once('@').map(|(i, _)| i).unwrap_or(set_id)
}

/// EC2's limit on a tag value.
const MAX_TAG_VALUE: usize = 256;

/// `ec2snap:devices` = `vol-a=/dev/sda1,vol-b=/dev/sdb`; entries that do not fit in 256 characters
/// go on in `ec2snap:devices-2`, `-3`, ... (8 volumes with 17-digit ids and /dev/sdX devices fit in one).
pub fn device_tags(members: &[Disk]) -> Vec<(String, String)> {
    let mut values: Vec<String> = Vec::new();
    for d in members {
        let entry = format!("{}={}", d.volume_id, d.device);
        match values.last_mut() {
            Some(v) if v.chars().count() + 1 + entry.chars().count() <= MAX_TAG_VALUE => {
                v.push(',');
                v.push_str(&entry);
            }
            _ => values.push(entry),
        }
    }
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| match i {
            0 => (DEVICES_TAG.to_string(), v),
            n => (format!("{DEVICES_TAG}-{}", n + 1), v),
        })
        .collect()
}

/// Volume id to device, read back from a member's device tags.
pub fn devices_of(tags: &Tags) -> HashMap<String, String> {
    tags.iter()
        .filter(|(k, _)| {
            k.as_str() == DEVICES_TAG
                || k.strip_prefix(DEVICES_TAG)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .flat_map(|(_, v)| v.split(','))
        .filter_map(|entry| entry.split_once('='))
        .map(|(vol, dev)| (vol.to_string(), dev.to_string()))
        .collect()
}

/// The set of one instance: `type` and `instance name` as the original's default tags, the set
/// tag, the device tags, then `-e` on top. Description: `<id> (<Name>) - <Hot|Cold> set <set-id>`.
pub fn set_request(
    instance: &Instance,
    kind: SnapshotKind,
    no_root_device: bool,
    add_tags: &[(String, String)],
    now: DateTime<Utc>,
) -> SetRequest {
    let members: Vec<Disk> = disks_to_snapshot(instance, no_root_device)
        .into_iter()
        .cloned()
        .collect();
    let set_id = set_id(&instance.id, now);
    let mut tags = Tags::new();
    tags.insert("type".into(), kind.to_string());
    tags.insert("instance name".into(), instance.name().into());
    tags.insert(SET_TAG.into(), set_id.clone());
    tags.extend(device_tags(&members));
    tags.extend(add_tags.iter().cloned());
    SetRequest {
        description: format!(
            "{} ({}) - {kind} set {set_id}",
            instance.id,
            instance.name()
        ),
        set_id,
        tags,
        members,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{tags as t, InstanceState};
    use SnapshotKind::{Cold, Hot};

    fn instance(name: Option<&str>) -> Instance {
        Instance {
            id: "i-1".into(),
            state: InstanceState::Running,
            tags: name.map(|n| t(&[("Name", n)])).unwrap_or_default(),
            root_device: Some("/dev/sda1".into()),
            machine: Default::default(),
            disks: vec![
                Disk {
                    volume_id: "vol-root".into(),
                    device: "/dev/sda1".into(),
                },
                Disk {
                    volume_id: "vol-data".into(),
                    device: "/dev/sdb".into(),
                },
            ],
        }
    }

    #[test]
    fn root_device_skipped_only_with_o() {
        let i = instance(Some("web"));
        let all: Vec<_> = disks_to_snapshot(&i, false)
            .iter()
            .map(|d| d.volume_id.as_str())
            .collect();
        assert_eq!(all, ["vol-root", "vol-data"]);
        let data: Vec<_> = disks_to_snapshot(&i, true)
            .iter()
            .map(|d| d.volume_id.as_str())
            .collect();
        assert_eq!(data, ["vol-data"]);
    }

    #[test]
    fn descriptions() {
        let i = instance(Some("web"));
        assert_eq!(
            description(&i, &i.disks[1], Hot),
            "i-1 (web) - Hot /dev/sdb (vol-data)"
        );
        assert_eq!(
            description(&i, &i.disks[0], Cold),
            "i-1 (web) - Cold /dev/sda1 (vol-root)"
        );
        let unnamed = instance(None);
        assert_eq!(
            description(&unnamed, &unnamed.disks[1], Hot),
            "i-1 () - Hot /dev/sdb (vol-data)"
        );
    }

    #[test]
    fn tags_cases() {
        let i = instance(Some("web"));
        let d = &i.disks[1];
        let defaults = t(&[
            ("type", "Hot"),
            ("volume", "vol-data"),
            ("device", "/dev/sdb"),
            ("instance name", "web"),
        ]);
        let add = vec![
            ("type".to_string(), "backup".to_string()),
            ("env".to_string(), "prod".to_string()),
        ];
        // (volume tags, -e tags, kind, expected)
        type Case = (Option<Tags>, Vec<(String, String)>, SnapshotKind, Tags);
        let cases: Vec<Case> = vec![
            (None, vec![], Hot, defaults.clone()),
            (Some(Tags::new()), vec![], Hot, defaults.clone()),
            (
                None,
                vec![],
                Cold,
                t(&[
                    ("type", "Cold"),
                    ("volume", "vol-data"),
                    ("device", "/dev/sdb"),
                    ("instance name", "web"),
                ]),
            ),
            (Some(t(&[("team", "a")])), vec![], Hot, t(&[("team", "a")])),
            (
                Some(t(&[("aws:cloudformation:stack-name", "s")])),
                vec![],
                Hot,
                defaults.clone(),
            ),
            (
                Some(t(&[("team", "a"), ("aws:x", "y")])),
                vec![],
                Hot,
                t(&[("team", "a")]),
            ),
            (
                None,
                add.clone(),
                Hot,
                t(&[
                    ("type", "backup"),
                    ("volume", "vol-data"),
                    ("device", "/dev/sdb"),
                    ("instance name", "web"),
                    ("env", "prod"),
                ]),
            ),
            (
                Some(t(&[("team", "a")])),
                add.clone(),
                Hot,
                t(&[("team", "a"), ("type", "backup"), ("env", "prod")]),
            ),
        ];
        for (vt, add, kind, want) in cases {
            assert_eq!(
                snapshot_tags(&i, d, kind, vt.as_ref(), &add),
                (want, vec![]),
                "{vt:?} {add:?} {kind}"
            );
        }
        let unnamed = instance(None);
        assert_eq!(
            snapshot_tags(&unnamed, d, Hot, None, &[])
                .0
                .get("instance name")
                .map(String::as_str),
            Some("")
        );
    }

    #[test]
    fn at_most_50_tags_and_every_e_tag_kept() {
        let i = instance(Some("web"));
        let d = &i.disks[1];
        let volume =
            |n: usize| -> Tags { (0..n).map(|k| (format!("v{k:02}"), "x".into())).collect() };
        let e = |n: usize| -> Vec<(String, String)> {
            (0..n).map(|k| (format!("e{k:02}"), "y".into())).collect()
        };
        // (volume tags, -e tags, tags kept, keys dropped)
        let cases: Vec<(usize, usize, usize, Vec<String>)> = vec![
            (50, 0, 50, vec![]),
            (50, 1, 50, vec!["v49".into()]),
            (49, 1, 50, vec![]),
            (50, 3, 50, vec!["v47".into(), "v48".into(), "v49".into()]),
            (10, 50, 50, (0..10).map(|k| format!("v{k:02}")).collect()),
        ];
        for (nv, ne, kept, dropped) in cases {
            let (tags, gone) = snapshot_tags(&i, d, Hot, Some(&volume(nv)), &e(ne));
            assert_eq!((tags.len(), &gone), (kept, &dropped), "{nv} + {ne}");
            assert!(e(ne).iter().all(|(k, _)| tags.contains_key(k)));
        }
        // A volume tag that -e overrides is not dropped in its place.
        let mut vt = volume(50);
        vt.insert("e00".into(), "old".into());
        let (tags, gone) = snapshot_tags(&i, d, Hot, Some(&vt), &e(1));
        assert_eq!(tags.len(), 50);
        assert_eq!(tags.get("e00").map(String::as_str), Some("y"));
        assert_eq!(gone, ["v49"]);
    }

    fn disk(vol: &str, dev: &str) -> Disk {
        Disk {
            volume_id: vol.into(),
            device: dev.into(),
        }
    }

    #[test]
    fn set_ids_sort_and_name_their_instance() {
        use chrono::TimeZone;
        let t = |ms: i64| {
            Utc.with_ymd_and_hms(2026, 11, 26, 2, 30, 0).unwrap()
                + chrono::Duration::milliseconds(ms)
        };
        assert_eq!(set_id("i-1", t(5)), "i-1@2026-11-26T02:30:00.005Z");
        assert!(set_id("i-1", t(5)) < set_id("i-1", t(1_000)));
        assert_eq!(set_instance("i-1@2026-11-26T02:30:00.005Z"), "i-1");
        assert_eq!(set_instance("no-at"), "no-at");
    }

    #[test]
    fn device_tags_fit_in_256_and_read_back() {
        // (members, tag keys expected)
        let vol = |n: usize| format!("vol-{n:017}");
        let members = |n: usize| -> Vec<Disk> {
            (0..n)
                .map(|i| disk(&vol(i), &format!("/dev/sd{}", (b'a' + i as u8) as char)))
                .collect()
        };
        let cases: &[(usize, &[&str])] = &[
            (0, &[]),
            (1, &["ec2snap:devices"]),
            (8, &["ec2snap:devices"]),
            (9, &["ec2snap:devices", "ec2snap:devices-2"]),
            (
                20,
                &["ec2snap:devices", "ec2snap:devices-2", "ec2snap:devices-3"],
            ),
        ];
        for (n, keys) in cases {
            let m = members(*n);
            let tags: Tags = device_tags(&m).into_iter().collect();
            let got: Vec<&str> = tags.keys().map(String::as_str).collect();
            assert_eq!(got, *keys, "{n} members");
            assert!(tags.values().all(|v| v.chars().count() <= 256), "{tags:?}");
            let back = devices_of(&tags);
            assert_eq!(back.len(), *n);
            assert!(m.iter().all(|d| back.get(&d.volume_id) == Some(&d.device)));
        }
        let mut other = Tags::new();
        other.insert("ec2snap:devices-x".into(), "vol-1=/dev/x".into());
        assert!(devices_of(&other).is_empty());
    }

    #[test]
    fn set_request_tags_and_members() {
        use chrono::TimeZone;
        let i = instance(Some("db"));
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 2, 30, 0).unwrap();
        let add = vec![("backup".to_string(), "yes".to_string())];
        let r = set_request(&i, Cold, false, &add, now);
        assert_eq!(r.set_id, "i-1@2026-11-26T02:30:00.000Z");
        assert_eq!(
            r.description,
            "i-1 (db) - Cold set i-1@2026-11-26T02:30:00.000Z"
        );
        assert_eq!(r.members, i.disks);
        assert_eq!(
            r.tags,
            t(&[
                ("type", "Cold"),
                ("instance name", "db"),
                ("ec2snap:set", "i-1@2026-11-26T02:30:00.000Z"),
                ("ec2snap:devices", "vol-root=/dev/sda1,vol-data=/dev/sdb"),
                ("backup", "yes"),
            ])
        );
        let no_root = set_request(&i, Hot, true, &[], now);
        assert_eq!(no_root.members, vec![disk("vol-data", "/dev/sdb")]);
        assert_eq!(
            no_root.tags.get("ec2snap:devices").map(String::as_str),
            Some("vol-data=/dev/sdb")
        );
        assert!(!Plan::Set(no_root).is_empty());
    }
}
