//! Restore decisions, with `now`/`at` passed in: which snapshots make an instance's backup (its
//! newest complete set, or each volume's newest snapshot), the volume each becomes (zone, type,
//! size, performance, tags), the AMI a set becomes, the devices a target already uses, and the
//! instances a drill samples.

use crate::model::{
    matches_all, Disk, ImageSpec, Instance, Snapshot, SnapshotState, TagPattern, Tags, Volume,
    VolumeSpec,
};
use crate::retention::decide::{group_sets, Set};
use crate::snapshot::plan;
use crate::tags::is_ours;
use crate::tags::{DRILL_TAG, RESTORED_FROM_TAG, SET_TAG, SOURCE_DEVICE_TAG, SOURCE_VOLUME_TAG};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// EC2's limit of tags on one resource.
const MAX_TAGS: usize = 50;

/// One snapshot of a backup and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub snapshot: Snapshot,
    /// The volume it is a snapshot of (for a copy, the one its `ec2snap:source-volume` names).
    pub source_volume: String,
    /// Its device, when known (`?` otherwise).
    pub device: String,
}

/// What is restored together: a set, or one snapshot per volume.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Backup {
    /// The instance it is a backup of, when known.
    pub instance_id: Option<String>,
    pub set: Option<String>,
    /// In device order.
    pub members: Vec<Member>,
    /// Volumes the backup should hold and does not (a set's missing member, a volume without a
    /// usable snapshot).
    pub missing: Vec<Disk>,
}

/// A copy (from `--copy-to`) seen as the snapshot it copies: its source volume's id in place of
/// `vol-ffffffff`, so that it restores as its source would.
pub fn as_source(mut copy: Snapshot) -> Snapshot {
    if let Some(vol) = copy.tags.get(SOURCE_VOLUME_TAG) {
        copy.volume_id = vol.clone();
    }
    copy
}

/// A snapshot's device: its set's device tags, the instance's mapping, its `device` tag, or
/// the device its description names (`i-.. (web) - Hot /dev/sdb (vol-..)`).
pub fn device_of(s: &Snapshot, instance: Option<&Instance>) -> Option<String> {
    if let Some(d) = plan::devices_of(&s.tags).remove(&s.volume_id) {
        return Some(d);
    }
    if let Some(d) = instance.and_then(|i| i.device_of(&s.volume_id)) {
        return Some(d.to_string());
    }
    if let Some(d) = s.tags.get("device").filter(|d| d.starts_with("/dev/")) {
        return Some(d.clone());
    }
    s.description
        .split_whitespace()
        .find(|w| w.starts_with("/dev/"))
        .map(String::from)
}

fn member(s: &Snapshot, instance: Option<&Instance>) -> Member {
    Member {
        snapshot: s.clone(),
        source_volume: s.volume_id.clone(),
        device: device_of(s, instance).unwrap_or_else(|| "?".into()),
    }
}

fn by_device(members: &mut [Member]) {
    members.sort_by(|a, b| {
        a.device
            .cmp(&b.device)
            .then_with(|| a.source_volume.cmp(&b.source_volume))
    });
}

/// A set's members and its missing ones.
pub fn set_backup(set: &Set, instance: Option<&Instance>) -> Backup {
    let gaps = set.gaps();
    let mut members: Vec<Member> = set
        .members
        .iter()
        .filter(|m| m.state == SnapshotState::Completed)
        .map(|m| member(m, instance))
        .collect();
    by_device(&mut members);
    let mut missing = gaps.missing.clone();
    missing.extend(gaps.errored.iter().map(|m| Disk {
        volume_id: m.volume_id.clone(),
        device: device_of(m, instance).unwrap_or_else(|| "?".into()),
    }));
    Backup {
        instance_id: Some(plan::set_instance(&set.id).to_string()),
        set: Some(set.id.clone()),
        members,
        missing,
    }
}

/// How far apart one run's snapshots of one instance may be: its volumes' snapshot calls follow
/// each other within seconds (a cold cycle's, once the instance is stopped), so snapshots of its
/// volumes further apart than this were not taken together.
pub const ONE_RUN_SECS: i64 = 600;

/// The backup to restore of an instance: **one point in time** of this tool's backups (made by
/// ec2snap: its description or set tag; a snapshot made by hand is restored only when named with
/// `--snapshot`), among its completed snapshots that pass `--snap-filter` and were taken at or
/// before `at`: its newest complete set, or, when newer, the newest point where every volume has
/// a snapshot of one run (within [`ONE_RUN_SECS`] of each other). With neither, the newest
/// partial backup (an incomplete set, or the volumes one run has), its missing volumes named.
/// `None`: nothing to restore.
pub fn instance_backup(
    instance: &Instance,
    snapshots: &[Snapshot],
    at: Option<DateTime<Utc>>,
    snap_filter: &[TagPattern],
) -> Option<Backup> {
    let before = |s: &&Snapshot| at.is_none_or(|t| s.start_time <= t);
    let usable: Vec<Snapshot> = snapshots
        .iter()
        .filter(before)
        .filter(|s| is_ours(s) && matches_all(snap_filter, &s.tags))
        .filter(|s| {
            s.state == SnapshotState::Completed
                || (s.tags.contains_key(SET_TAG) && s.state == SnapshotState::Error)
        })
        .cloned()
        .collect();
    let (loose, sets) = group_sets(usable);
    let mut own_sets: Vec<&Set> = sets
        .iter()
        .filter(|s| plan::set_instance(&s.id) == instance.id)
        .collect();
    own_sets.sort_by_key(|s| s.time());
    let complete = own_sets.iter().rev().find(|s| s.is_complete());
    let volumes = one_run(instance, &loose);
    match (complete, volumes) {
        (Some(set), Some((b, t))) if b.missing.is_empty() && set.time() < Some(t) => Some(b),
        (Some(set), _) => Some(set_backup(set, Some(instance))),
        (None, Some((b, t))) => match own_sets.last() {
            Some(set) if b.missing.len() > set.gaps().missing.len() && set.time() > Some(t) => {
                Some(set_backup(set, Some(instance)))
            }
            _ => Some(b),
        },
        (None, None) => own_sets.last().map(|set| set_backup(set, Some(instance))),
    }
}

/// The instance's volumes as one run left them: at the newest point `t` (a snapshot's time) where
/// every volume has a completed snapshot within [`ONE_RUN_SECS`] before it, each volume's newest
/// there; with no such point, the newest point's, the others missing. With the point's time.
fn one_run(instance: &Instance, loose: &[Snapshot]) -> Option<(Backup, DateTime<Utc>)> {
    let own: Vec<&Snapshot> = loose
        .iter()
        .filter(|s| s.state == SnapshotState::Completed)
        .filter(|s| instance.disks.iter().any(|d| d.volume_id == s.volume_id))
        .collect();
    let mut points: Vec<DateTime<Utc>> = own.iter().map(|s| s.start_time).collect();
    points.sort_unstable_by(|a, b| b.cmp(a));
    points.dedup();
    let at = |t: DateTime<Utc>| {
        let from = t - chrono::Duration::seconds(ONE_RUN_SECS);
        let mut backup = Backup {
            instance_id: Some(instance.id.clone()),
            ..Backup::default()
        };
        for disk in &instance.disks {
            let newest = own
                .iter()
                .filter(|s| s.volume_id == disk.volume_id)
                .filter(|s| s.start_time >= from && s.start_time <= t)
                .max_by_key(|s| (s.start_time, s.id.clone()));
            match newest {
                Some(s) => backup.members.push(member(s, Some(instance))),
                None => backup.missing.push(disk.clone()),
            }
        }
        (backup, t)
    };
    points
        .iter()
        .map(|t| at(*t))
        .find(|(b, _)| b.missing.is_empty())
        .or_else(|| points.first().map(|t| at(*t)))
}

/// The volume a member becomes: in `zone` (else the source volume's), with the source volume's
/// type, size, IOPS (io1, io2, gp3) and throughput (gp3); what is unknown is left to EC2 (the
/// snapshot's size, the default type). Encryption follows the snapshot (EC2 does it).
pub fn volume_spec(
    member: &Member,
    source: Option<&Volume>,
    zone: Option<&str>,
) -> Result<VolumeSpec, String> {
    let zone = match (zone, source) {
        (Some(z), _) => z.to_string(),
        (None, Some(v)) if !v.zone.is_empty() => v.zone.clone(),
        _ => {
            return Err(format!(
                "no zone for {}: its volume {} is gone, give --az",
                member.snapshot.id, member.source_volume
            ))
        }
    };
    let Some(v) = source else {
        return Ok(VolumeSpec {
            zone,
            ..VolumeSpec::default()
        });
    };
    let kind = v.kind.as_deref();
    Ok(VolumeSpec {
        zone,
        kind: v.kind.clone(),
        size_gib: v.size_gib,
        iops: v
            .iops
            .filter(|_| matches!(kind, Some("io1" | "io2" | "gp3"))),
        throughput: v.throughput.filter(|_| kind == Some("gp3")),
    })
}

/// A restored volume's tags: where it comes from, a drill's run id, then as many of the
/// snapshot's own tags as fit (never `aws:` ones, nor this tool's, which would make the
/// volume's future snapshots look like members of the old set).
pub fn volume_tags(member: &Member, drill: Option<&str>) -> Tags {
    let mut tags: Tags = [
        (RESTORED_FROM_TAG.to_string(), member.snapshot.id.clone()),
        (SOURCE_VOLUME_TAG.to_string(), member.source_volume.clone()),
        (SOURCE_DEVICE_TAG.to_string(), member.device.clone()),
    ]
    .into();
    if let Some(run) = drill {
        tags.insert(DRILL_TAG.to_string(), run.to_string());
    }
    let room = MAX_TAGS - tags.len();
    let own: Vec<(String, String)> = member
        .snapshot
        .tags
        .iter()
        .filter(|(k, _)| !k.starts_with("aws:") && !k.starts_with("ec2snap:"))
        .take(room)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    tags.extend(own);
    tags
}

/// The AMI of a backup: every member at its device, the root one at the instance's root
/// device, with the instance's architecture, boot mode and ENA support.
pub fn image(
    backup: &Backup,
    instance: &Instance,
    sources: &HashMap<String, Volume>,
    name: &str,
) -> Result<ImageSpec, String> {
    let Some(root) = instance.root_device.clone() else {
        return Err(format!("{} has no root device to boot from", instance.id));
    };
    if !backup.members.iter().any(|m| m.device == root) {
        return Err(format!(
            "the backup of {} has no snapshot of its root device {root} (made with -o?): no AMI",
            instance.id
        ));
    }
    if let Some(m) = backup.members.iter().find(|m| m.device == "?") {
        return Err(format!(
            "the device of {} is not known: no AMI",
            m.snapshot.id
        ));
    }
    let disks = backup
        .members
        .iter()
        .map(|m| {
            let source = sources.get(&m.source_volume);
            let spec = volume_spec(m, source, Some("")).unwrap_or_default();
            (m.device.clone(), m.snapshot.id.clone(), spec)
        })
        .collect();
    let from = backup.set.clone().unwrap_or_else(|| instance.id.clone());
    Ok(ImageSpec {
        name: name.to_string(),
        description: format!(
            "{} ({}) restored by ec2snap from {from}",
            instance.id,
            instance.name()
        ),
        root_device: root,
        architecture: instance.machine.architecture.clone(),
        boot_mode: instance.machine.boot_mode.clone(),
        ena: instance.machine.ena,
        disks,
        tags: [(RESTORED_FROM_TAG.to_string(), from)].into(),
    })
}

/// The members' devices that `target` already uses.
pub fn taken_devices<'a>(
    target: &Instance,
    members: impl Iterator<Item = &'a Member>,
) -> Vec<String> {
    let mut taken: Vec<String> = members
        .filter(|m| target.disks.iter().any(|d| d.device == m.device))
        .map(|m| m.device.clone())
        .collect();
    taken.sort();
    taken.dedup();
    taken
}

/// `--drill-sample N`: N of the items, chosen at random by `seed` (all of them without N), in
/// their order.
pub fn sample<T>(items: Vec<T>, n: Option<usize>, seed: u64) -> Vec<T> {
    let Some(n) = n.filter(|n| *n < items.len()) else {
        return items;
    };
    // xorshift64*: enough to pick a few instances.
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut index: Vec<usize> = (0..items.len()).collect();
    // A partial Fisher-Yates shuffle: the first n are the sample.
    for i in 0..n {
        let j = i + (next() % (index.len() - i) as u64) as usize;
        index.swap(i, j);
    }
    let mut chosen: Vec<usize> = index[..n].to_vec();
    chosen.sort_unstable();
    let mut items: Vec<Option<T>> = items.into_iter().map(Some).collect();
    chosen.into_iter().filter_map(|i| items[i].take()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{InstanceState, Machine};
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
    }

    const DAY: i64 = 86_400;

    fn snap(id: &str, vol: &str, age: i64, state: &str, tags: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            id: id.into(),
            volume_id: vol.into(),
            start_time: now() - chrono::Duration::seconds(age),
            state: SnapshotState::from_name(state),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            description: format!("i-1 (web) - Hot /dev/sdx ({vol})"),
            progress: None,
            tier: None,
            size_bytes: None,
            lock: Default::default(),
            in_use_by: None,
        }
    }

    fn web() -> Instance {
        Instance {
            id: "i-1".into(),
            state: InstanceState::Running,
            tags: [("Name".to_string(), "web".to_string())].into(),
            root_device: Some("/dev/sda1".into()),
            disks: vec![
                Disk {
                    volume_id: "vol-a".into(),
                    device: "/dev/sda1".into(),
                },
                Disk {
                    volume_id: "vol-b".into(),
                    device: "/dev/sdb".into(),
                },
            ],
            machine: Machine {
                zone: Some("eu-west-1a".into()),
                architecture: Some("arm64".into()),
                boot_mode: Some("uefi".into()),
                ena: Some(true),
                private_ip: None,
                platform: None,
            },
        }
    }

    fn set_member(id: &str, vol: &str, age: i64, set: &str, state: &str) -> Snapshot {
        let devices = "vol-a=/dev/sda1,vol-b=/dev/sdb";
        snap(
            id,
            vol,
            age,
            state,
            &[(SET_TAG, set), ("ec2snap:devices", devices)],
        )
    }

    fn ids(b: &Backup) -> Vec<&str> {
        b.members.iter().map(|m| m.snapshot.id.as_str()).collect()
    }

    #[test]
    fn which_backup_is_restored() {
        let old_set = "i-1@2026-11-20T00:00:00.000Z";
        let new_set = "i-1@2026-11-25T00:00:00.000Z";
        let snapshots = vec![
            snap("a-old", "vol-a", 9 * DAY, "completed", &[]),
            snap("a-new", "vol-a", 3 * DAY, "completed", &[]),
            snap("a-pending", "vol-a", DAY / 2, "pending", &[]),
            snap("b-new", "vol-b", 4 * DAY, "completed", &[]),
            set_member("s1a", "vol-a", 6 * DAY, old_set, "completed"),
            set_member("s1b", "vol-b", 6 * DAY, old_set, "completed"),
            set_member("s2a", "vol-a", DAY, new_set, "completed"),
            set_member("s2b", "vol-b", DAY, new_set, "error"),
        ];
        let i = web();
        // (at, the snapshots restored, what is missing)
        let cases: Vec<(Option<i64>, Vec<&str>, usize)> = vec![
            // The newest set is incomplete; the volumes' own newest (3 and 4 days old) are not of
            // one run: the old set, one point in time, is restored rather than a mix.
            (None, vec!["s1a", "s1b"], 0),
            // At 5 days ago: the old set, newer than the volumes' own (9 days, none).
            (Some(5 * DAY), vec!["s1a", "s1b"], 0),
            // At 8 days ago: only a-old; vol-b has nothing then.
            (Some(8 * DAY), vec!["a-old"], 1),
        ];
        for (at, want, missing) in cases {
            let at = at.map(|a| now() - chrono::Duration::seconds(a));
            let b = instance_backup(&i, &snapshots, at, &[]).unwrap();
            assert_eq!(ids(&b), want, "at {at:?}");
            assert_eq!(b.missing.len(), missing, "at {at:?}");
        }
        assert!(instance_backup(
            &i,
            &snapshots,
            Some(now() - chrono::Duration::seconds(10 * DAY)),
            &[]
        )
        .is_none());
        // Two volumes snapshotted by one run (a minute apart), newer than the set: those. A
        // snapshot made by hand, newer still, is not this tool's: never picked.
        let mut one_run = snapshots.clone();
        one_run.push(snap("a-run", "vol-a", 2 * DAY, "completed", &[]));
        one_run.push(snap("b-run", "vol-b", 2 * DAY - 60, "completed", &[]));
        let mut manual = snap("a-hand", "vol-a", DAY / 24, "completed", &[]);
        manual.description = "before the upgrade".into();
        one_run.push(manual);
        let b = instance_backup(&i, &one_run, None, &[]).unwrap();
        assert_eq!((ids(&b), b.missing.len()), (vec!["a-run", "b-run"], 0));
        // Only the incomplete set: restored as far as it goes, its error member missing.
        let only = vec![
            set_member("s2a", "vol-a", DAY, new_set, "completed"),
            set_member("s2b", "vol-b", DAY, new_set, "error"),
        ];
        let b = instance_backup(&i, &only, None, &[]).unwrap();
        assert_eq!((ids(&b), b.missing.len()), (vec!["s2a"], 1));
        assert_eq!(b.set.as_deref(), Some(new_set));
        assert_eq!(b.members[0].device, "/dev/sda1");
    }

    #[test]
    fn volumes_and_images() {
        let m = Member {
            snapshot: snap(
                "snap-1",
                "vol-b",
                DAY,
                "completed",
                &[("Name", "data"), ("aws:x", "y"), (SET_TAG, "i-1@t")],
            ),
            source_volume: "vol-b".into(),
            device: "/dev/sdb".into(),
        };
        let gp2 = Volume {
            id: "vol-b".into(),
            zone: "eu-west-1b".into(),
            kind: Some("gp2".into()),
            size_gib: Some(20),
            iops: Some(100),
            throughput: None,
            ..Volume::default()
        };
        let spec = volume_spec(&m, Some(&gp2), None).unwrap();
        assert_eq!(
            (spec.zone.as_str(), spec.size_gib, spec.iops),
            ("eu-west-1b", Some(20), None)
        );
        let gp3 = Volume {
            kind: Some("gp3".into()),
            iops: Some(4000),
            throughput: Some(250),
            ..gp2.clone()
        };
        let spec = volume_spec(&m, Some(&gp3), Some("eu-west-1c")).unwrap();
        assert_eq!(
            (spec.zone.as_str(), spec.iops, spec.throughput),
            ("eu-west-1c", Some(4000), Some(250))
        );
        let e = volume_spec(&m, None, None).unwrap_err();
        assert!(e.contains("give --az"), "{e}");
        let tags = volume_tags(&m, Some("run-1"));
        let keys: Vec<&str> = tags.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "Name",
                DRILL_TAG,
                "ec2snap:restored-from",
                "ec2snap:source-device",
                "ec2snap:source-volume"
            ]
        );
        // The AMI: root and data at their devices, the instance's machine.
        let backup = Backup {
            instance_id: Some("i-1".into()),
            set: Some("i-1@t".into()),
            members: vec![
                Member {
                    snapshot: snap("snap-0", "vol-a", DAY, "completed", &[]),
                    source_volume: "vol-a".into(),
                    device: "/dev/sda1".into(),
                },
                m.clone(),
            ],
            missing: vec![],
        };
        let sources: HashMap<String, Volume> = [("vol-b".to_string(), gp3)].into();
        let image = image(&backup, &web(), &sources, "web-restored").unwrap();
        assert_eq!(image.root_device, "/dev/sda1");
        assert_eq!(image.architecture.as_deref(), Some("arm64"));
        let devices: Vec<(&str, &str, Option<i32>)> = image
            .disks
            .iter()
            .map(|(d, s, spec)| (d.as_str(), s.as_str(), spec.size_gib))
            .collect();
        assert_eq!(
            devices,
            [
                ("/dev/sda1", "snap-0", None),
                ("/dev/sdb", "snap-1", Some(20))
            ]
        );
        let data_only = Backup {
            members: vec![m.clone()],
            ..backup
        };
        let e = super::image(&data_only, &web(), &sources, "x").unwrap_err();
        assert!(
            e.contains("no snapshot of its root device /dev/sda1"),
            "{e}"
        );
        assert_eq!(taken_devices(&web(), [m].iter()), ["/dev/sdb"]);
    }

    #[test]
    fn a_sample_is_n_distinct_items_in_order() {
        let items: Vec<u32> = (0..10).collect();
        assert_eq!(sample(items.clone(), None, 7), items);
        assert_eq!(sample(items.clone(), Some(20), 7), items);
        let mut seen = std::collections::HashSet::new();
        for seed in 0..50 {
            let s = sample(items.clone(), Some(3), seed);
            assert_eq!(s.len(), 3);
            assert!(s.windows(2).all(|w| w[0] < w[1]), "{s:?}");
            seen.extend(s);
        }
        assert_eq!(seen.len(), 10, "every item is chosen by some seed");
    }
}
