//! Orphans, the decisions: snapshots this tool made (not copies from another region) of volumes
//! that no longer exist, and which of them `--prune-orphans-after` lets go.

use crate::model::{matches_all, Snapshot, TagPattern};
use crate::tags::is_ours;
use crate::tags::SOURCE_SNAPSHOT_TAG;
use chrono::{DateTime, Utc};
use std::collections::HashSet;

/// Made by this tool in this region (a copy from another region carries its source's tags).
fn made_here(s: &Snapshot) -> bool {
    is_ours(s) && !s.tags.contains_key(SOURCE_SNAPSHOT_TAG)
}

/// The volumes of this tool's snapshots that are not among `known` (the selected instances'):
/// they are described, to learn which still exist.
pub fn volumes_to_check(snapshots: &[Snapshot], known: &HashSet<&str>) -> Vec<String> {
    let mut out: Vec<String> = snapshots
        .iter()
        .filter(|s| made_here(s) && !known.contains(s.volume_id.as_str()))
        .map(|s| s.volume_id.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// This tool's snapshots whose volume is not in `existing`, oldest first.
pub fn orphans<'a>(snapshots: &'a [Snapshot], existing: &HashSet<String>) -> Vec<&'a Snapshot> {
    let mut out: Vec<&Snapshot> = snapshots
        .iter()
        .filter(|s| made_here(s) && !existing.contains(&s.volume_id))
        .collect();
    out.sort_by(|a, b| {
        a.start_time
            .cmp(&b.start_time)
            .then_with(|| a.id.cmp(&b.id))
    });
    out
}

/// `--prune-orphans-after N UNIT`: the orphans strictly older than N (a snapshot exactly N old
/// stays, as with `-g`) that pass `--snap-filter`, oldest first. The newest snapshot of a deleted
/// volume goes too when it is that old: its volume is gone, so no floor keeps it.
pub fn to_prune<'a>(
    orphans: &[&'a Snapshot],
    max_age_secs: i64,
    snap_filter: &[TagPattern],
    now: DateTime<Utc>,
) -> Vec<&'a Snapshot> {
    orphans
        .iter()
        .copied()
        .filter(|s| (now - s.start_time).num_seconds() > max_age_secs)
        .filter(|s| matches_all(snap_filter, &s.tags))
        // Locked: it stays until its lock ends; used by an AMI: while the AMI is there.
        .filter(|s| crate::retention::lock::locked_until(s).is_none_or(|until| until <= now))
        .filter(|s| s.in_use_by.is_none())
        .collect()
}

/// An orphan that a legal hold or a `--keep-tag` keeps: itself, or a member of its set (`all`:
/// the listing), since a set is held whole.
pub fn held(
    s: &Snapshot,
    all: &[Snapshot],
    keep_tags: &[crate::retention::policy::KeepTag],
) -> bool {
    use crate::retention::hold;
    if hold::held(s, keep_tags).is_some() {
        return true;
    }
    let Some(set) = s.tags.get(crate::tags::SET_TAG) else {
        return false;
    };
    all.iter()
        .filter(|m| m.tags.get(crate::tags::SET_TAG) == Some(set))
        .any(|m| hold::held(m, keep_tags).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SnapshotState;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
    }

    const DAY: i64 = 86_400;

    fn snap(id: &str, vol: &str, age: i64, description: &str, tags: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            id: id.into(),
            volume_id: vol.into(),
            start_time: now() - chrono::Duration::seconds(age),
            state: SnapshotState::Completed,
            tags: crate::model::tags(tags),
            description: description.into(),
            progress: None,
            tier: None,
            size_bytes: None,
            lock: Default::default(),
            in_use_by: None,
        }
    }

    #[test]
    fn a_held_orphan_or_a_member_of_a_held_set_stays() {
        use crate::tags::{HOLD_TAG, SET_TAG};
        let all = vec![
            snap("held", "vol-x", 40 * DAY, "", &[(HOLD_TAG, "audit")]),
            snap("free", "vol-x", 40 * DAY, "", &[]),
            snap(
                "m1",
                "vol-x",
                40 * DAY,
                "",
                &[(SET_TAG, "i-1@a"), (HOLD_TAG, "r")],
            ),
            snap("m2", "vol-y", 40 * DAY, "", &[(SET_TAG, "i-1@a")]),
            snap("tagged", "vol-y", 40 * DAY, "", &[("legal", "yes")]),
        ];
        let keep = [crate::retention::policy::KeepTag::parse("legal=yes").unwrap()];
        let kept: Vec<&str> = all
            .iter()
            .filter(|s| held(s, &all, &keep))
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(kept, ["held", "m1", "m2", "tagged"]);
    }

    #[test]
    fn orphans_and_what_goes() {
        let ours = "i-1 (web) - Hot /dev/sdb (vol-x)";
        let all = vec![
            snap("gone-old", "vol-x", 40 * DAY, ours, &[]),
            snap("gone-new", "vol-x", 3 * DAY, ours, &[]),
            snap("gone-edge", "vol-x", 30 * DAY, ours, &[]),
            snap("alive", "vol-a", 50 * DAY, ours, &[]),
            snap("by-hand", "vol-x", 50 * DAY, "taken by hand", &[]),
            snap(
                "a-copy",
                "vol-ffffffff",
                50 * DAY,
                ours,
                &[(SOURCE_SNAPSHOT_TAG, "snap-1")],
            ),
            snap(
                "other-set",
                "vol-y",
                60 * DAY,
                "",
                &[(crate::tags::SET_TAG, "i-1@x")],
            ),
        ];
        let known: HashSet<&str> = ["vol-a"].into();
        assert_eq!(volumes_to_check(&all, &known), ["vol-x", "vol-y"]);
        let existing: HashSet<String> = ["vol-a".to_string()].into();
        let found: Vec<&str> = orphans(&all, &existing)
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(found, ["other-set", "gone-old", "gone-edge", "gone-new"]);
        let list = orphans(&all, &existing);
        let gone: Vec<&str> = to_prune(&list, 30 * DAY, &[], now())
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(gone, ["other-set", "gone-old"], "exactly 30 days old stays");
        let filter = vec![TagPattern::new("ec2snap:set", "*").unwrap()];
        let filtered: Vec<&str> = to_prune(&list, DAY, &filter, now())
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(filtered, ["other-set"]);
    }
}
