//! Snapshot planning: which volumes of an instance get a snapshot, with the original's description
//! and tags.

use crate::model::{Disk, Instance, SnapshotKind, Tags};

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
}
