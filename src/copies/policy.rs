//! Disaster-recovery copies, the decisions: which snapshot of a volume to copy to another region,
//! the copy's tags, and which copies a destination region lets go.

use crate::model::{Snapshot, SnapshotState, Tags};
use crate::retention::decide::{self as retention, Decision};
use crate::retention::policy::Rule;
use crate::tags::is_ours;
use crate::tags::{
    ARCHIVED_TAG, HOLD_AT_TAG, HOLD_BY_TAG, HOLD_TAG, LOCK_TAG, SOURCE_REGION_TAG,
    SOURCE_SNAPSHOT_TAG, SOURCE_VOLUME_TAG, VAULT_INTERMEDIATE_TAG, VAULT_SHARED_TAG,
};
use chrono::{DateTime, Utc};
use std::collections::HashSet;

/// EC2's limit of tags on one resource.
const MAX_TAGS: usize = 50;

/// The volume's newest `completed` snapshot made by this tool.
pub fn newest_completed(listed: &[Snapshot]) -> Option<&Snapshot> {
    listed
        .iter()
        .filter(|s| s.state == SnapshotState::Completed && is_ours(s))
        .max_by(|a, b| {
            a.start_time
                .cmp(&b.start_time)
                .then_with(|| a.id.cmp(&b.id))
        })
}

/// The source snapshots that have a copy in a destination, from its copies' tags: a copy in
/// `error` is no copy (its source is copied again); one `pending` is under way.
pub fn copied_sources(existing: &[Snapshot]) -> HashSet<String> {
    existing
        .iter()
        .filter(|c| c.state != SnapshotState::Error)
        .filter_map(|c| c.tags.get(SOURCE_SNAPSHOT_TAG).cloned())
        .collect()
}

/// What to copy for one volume: its newest completed snapshot, unless it has a copy already
/// (`copied`: see [`copied_sources`]). A snapshot still pending is copied by a later run.
pub fn to_copy<'a>(listed: &'a [Snapshot], copied: &HashSet<String>) -> Option<&'a Snapshot> {
    newest_completed(listed).filter(|s| !copied.contains(&s.id))
}

/// The copy's tags: the source's own (not `aws:`), then where it comes from; the source tags that
/// do not fit in EC2's 50 are left out.
pub fn copy_tags(source: &Snapshot, source_region: &str) -> Tags {
    let ours: Tags = [
        (SOURCE_SNAPSHOT_TAG.to_string(), source.id.clone()),
        (SOURCE_VOLUME_TAG.to_string(), source.volume_id.clone()),
        (SOURCE_REGION_TAG.to_string(), source_region.to_string()),
    ]
    .into();
    // The source's lock, tier, share with a vault and legal hold are its own, not the copy's
    // (a hold is per snapshot: `hold --copy-to` holds copies).
    let not_copied = [
        LOCK_TAG,
        ARCHIVED_TAG,
        VAULT_SHARED_TAG,
        VAULT_INTERMEDIATE_TAG,
        HOLD_TAG,
        HOLD_BY_TAG,
        HOLD_AT_TAG,
    ];
    let mut tags: Tags = source
        .tags
        .iter()
        .filter(|(k, _)| {
            !k.starts_with("aws:") && !ours.contains_key(*k) && !not_copied.contains(&k.as_str())
        })
        .take(MAX_TAGS - ours.len())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    tags.extend(ours);
    tags
}

/// Retention of the copies of one source volume in one region: the rule (`-g`/`-d`, or
/// `--copy-max-age`/`--copy-keep`) over them, never deleting a copy made by this run
/// (`protected`), a copy of the volume's newest completed snapshot (`newest_source`) done or under
/// way, nor the floor: the max(N, 1) newest *completed* copies (N: the rule's `-d`/`--copy-keep`),
/// whatever else is there. A copy `pending` or in `error` is no usable backup: it never counts
/// toward the floor, so the last usable copy of a volume in a region is never deleted.
pub fn decide<'a>(
    copies: &'a [Snapshot],
    rule: &Rule,
    now: DateTime<Utc>,
    protected: &HashSet<String>,
    newest_source: Option<&str>,
) -> Decision<'a, Snapshot> {
    let mut keep = protected.clone();
    keep.extend(
        copies
            .iter()
            .filter(|c| {
                c.state != SnapshotState::Error
                    && newest_source.is_some()
                    && c.tags.get(SOURCE_SNAPSHOT_TAG).map(String::as_str) == newest_source
            })
            .map(|c| c.id.clone()),
    );
    // A held copy is kept in addition: the floor is of the others.
    let mut usable: Vec<&Snapshot> = copies
        .iter()
        .filter(|c| {
            c.state == SnapshotState::Completed
                && crate::retention::hold::held(c, &rule.keep_tags).is_none()
        })
        .collect();
    usable.sort_by(|a, b| {
        b.start_time
            .cmp(&a.start_time)
            .then_with(|| b.id.cmp(&a.id))
    });
    let floor: HashSet<&str> = usable
        .iter()
        .take(rule.keep.floor().max(1))
        .map(|c| c.id.as_str())
        .collect();
    let volume = copies
        .first()
        .and_then(|c| c.tags.get(SOURCE_VOLUME_TAG))
        .map(String::as_str)
        .unwrap_or("");
    retention::decide_with_floor(copies, rule, now, &keep, &floor, volume)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
    }

    const DAY: i64 = 86_400;

    fn snap(id: &str, age: i64, state: &str, description: &str, tags: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            id: id.into(),
            volume_id: "vol-1".into(),
            start_time: now() - chrono::Duration::seconds(age),
            state: SnapshotState::from_name(state),
            tags: crate::model::tags(tags),
            description: description.into(),
            progress: None,
            tier: None,
            size_bytes: None,
            lock: Default::default(),
            in_use_by: None,
        }
    }

    const OURS: &str = "i-1 (web) - Hot /dev/sdb (vol-1)";

    #[test]
    fn which_snapshot_is_copied() {
        let listed = vec![
            snap("old", 3 * DAY, "completed", OURS, &[]),
            snap(
                "newer",
                DAY,
                "completed",
                "i-1 (web) - Cold /dev/sdb (vol-1)",
                &[],
            ),
            snap("pending", 0, "pending", OURS, &[]),
            snap("manual", 10, "completed", "taken by hand", &[]),
            snap(
                "set",
                20,
                "error",
                "i-1 (web) - Hot set x",
                &[(crate::tags::SET_TAG, "i-1@x")],
            ),
        ];
        let none = HashSet::new();
        let done: HashSet<String> = ["newer".to_string()].into();
        // (copied already, expected)
        let cases: [(&HashSet<String>, Option<&str>); 2] = [(&none, Some("newer")), (&done, None)];
        for (copied, want) in cases {
            assert_eq!(
                to_copy(&listed, copied).map(|s| s.id.as_str()),
                want,
                "{copied:?}"
            );
        }
        assert_eq!(
            to_copy(&listed[2..4], &none),
            None,
            "pending and foreign ones are not"
        );
        assert!(is_ours(&listed[4]));
    }

    #[test]
    fn tags_of_a_copy() {
        let mut many: Vec<(String, String)> =
            (0..50).map(|i| (format!("k{i:02}"), "v".into())).collect();
        many.push(("aws:x".into(), "y".into()));
        many.insert(0, (LOCK_TAG.into(), "2027-01-01T00:00:00Z".into()));
        many.insert(1, (ARCHIVED_TAG.into(), "2026-01-01T00:00:00Z".into()));
        // A share with the vault is the source's (the copy was never shared).
        many.insert(2, (VAULT_SHARED_TAG.into(), "999999999999".into()));
        let pairs: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let source = snap("snap-1", 0, "completed", OURS, &pairs);
        let tags = copy_tags(&source, "eu-west-1");
        assert_eq!(tags.len(), 50);
        assert_eq!(
            tags.get(SOURCE_SNAPSHOT_TAG).map(String::as_str),
            Some("snap-1")
        );
        assert_eq!(
            tags.get(SOURCE_VOLUME_TAG).map(String::as_str),
            Some("vol-1")
        );
        assert_eq!(
            tags.get(SOURCE_REGION_TAG).map(String::as_str),
            Some("eu-west-1")
        );
        assert!(
            !tags.contains_key("aws:x") && tags.contains_key("k46") && !tags.contains_key("k47")
        );
        assert!(
            !tags.contains_key(LOCK_TAG)
                && !tags.contains_key(ARCHIVED_TAG)
                && !tags.contains_key(VAULT_SHARED_TAG),
            "a copy has its own lock, tier and shares"
        );
    }

    #[test]
    fn copies_retention() {
        let c = |id: &str, age: i64, src: &str| {
            snap(
                id,
                age * DAY,
                "completed",
                OURS,
                &[(SOURCE_SNAPSHOT_TAG, src)],
            )
        };
        let copies = vec![c("c1", 8, "s1"), c("c2", 6, "s2"), c("c3", 4, "s3")];
        let keep = Rule::last;
        let age = |d: i64| Rule::age(d * DAY);
        let made: HashSet<String> = ["c4".to_string()].into();
        let mut with_new = copies.clone();
        with_new.push(c("c4", 0, "s4"));
        // (name, copies, rule, made this run, newest source, expected)
        type Case<'a> = (
            &'a str,
            &'a [Snapshot],
            Rule,
            HashSet<String>,
            Option<&'a str>,
            Vec<&'a str>,
        );
        let mut failed = copies.clone();
        failed.push(snap("c4", 0, "error", OURS, &[(SOURCE_SNAPSHOT_TAG, "s4")]));
        let mut pending = copies.clone();
        pending.push(snap(
            "c4",
            0,
            "pending",
            OURS,
            &[(SOURCE_SNAPSHOT_TAG, "s4")],
        ));
        let cases: Vec<Case> = vec![
            (
                "the newest source's copy in error: the last completed copy stays (and the failed one, younger than -g)",
                &failed,
                age(1),
                HashSet::new(),
                Some("s4"),
                vec!["c1", "c2"],
            ),
            (
                "a pending copy does not count toward keep 1: the last completed one stays",
                &pending,
                keep(1),
                HashSet::new(),
                Some("s4"),
                vec!["c1", "c2"],
            ),
            (
                "keep 1 counts the new copy",
                &with_new,
                keep(1),
                made.clone(),
                Some("s4"),
                vec!["c1", "c2", "c3"],
            ),
            (
                "age 5 d",
                &with_new,
                age(5),
                made.clone(),
                Some("s4"),
                vec!["c1", "c2"],
            ),
            (
                "age 1 d spares the copy of the newest source",
                &copies,
                age(1),
                HashSet::new(),
                Some("s3"),
                vec!["c1", "c2"],
            ),
            (
                "newest source not copied yet: the newest copy stays",
                &copies,
                age(1),
                HashSet::new(),
                Some("s9"),
                vec!["c1", "c2"],
            ),
            (
                "no rule",
                &copies,
                keep(0),
                HashSet::new(),
                Some("s3"),
                vec![],
            ),
        ];
        for (name, list, rule, protected, newest, want) in cases {
            let got: Vec<&str> = decide(list, &rule, now(), &protected, newest)
                .delete
                .iter()
                .map(|s| s.id.as_str())
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn a_hold_is_not_copied_a_keep_tag_is() {
        let source = snap(
            "s1",
            0,
            "completed",
            "i-1 (web) - Hot /dev/sdb (vol-1)",
            &[
                (HOLD_TAG, "audit"),
                (HOLD_BY_TAG, "arn:aws:iam::1:user/a"),
                (HOLD_AT_TAG, "2026-12-01T00:00:00Z"),
                ("legal", "yes"),
            ],
        );
        let tags = copy_tags(&source, "eu-west-1");
        assert!(
            tags.keys().all(|k| !k.starts_with("ec2snap:hold")),
            "{tags:?}"
        );
        assert_eq!(tags.get("legal").map(String::as_str), Some("yes"));
    }
}
