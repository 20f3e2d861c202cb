//! Retention decisions: which instance prunes a volume, which snapshots of a volume are looked
//! at, and which of them go, by age (`-g`), by count (`-d`) or both, with `now` passed in.

use crate::model::{matches_all, Instance, Snapshot, SnapshotState, TagPattern};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Delete snapshots strictly older than this (whole seconds, like the original).
    pub max_age_secs: Option<i64>,
    /// Always keep this many of the newest usable (not `error`) snapshots.
    pub keep_last: usize,
}

impl Rule {
    pub fn is_enabled(&self) -> bool {
        self.max_age_secs.is_some() || self.keep_last > 0
    }
}

/// Hands each instance the listed snapshots of its volumes. A volume attached to two instances goes
/// with the first of them in `instances`' order, so that it is pruned once.
pub fn share_out(
    instances: &[Instance],
    mut by_volume: HashMap<String, Vec<Snapshot>>,
) -> Vec<HashMap<String, Vec<Snapshot>>> {
    instances
        .iter()
        .map(|i| {
            i.disks
                .iter()
                .filter_map(|d| by_volume.remove_entry(&d.volume_id))
                .collect()
        })
        .collect()
}

/// The snapshots retention looks at for one volume: `None` when this run's new snapshot of it
/// failed (its old snapshots are then kept this time); else the listed ones, plus the one this
/// run made (or would make) when it passes `--snap-filter` and is not listed yet.
pub fn candidates(
    listed: Vec<Snapshot>,
    made: Option<&Snapshot>,
    failed: bool,
    snap_filter: &[TagPattern],
) -> Option<Vec<Snapshot>> {
    if failed {
        return None;
    }
    let mut all = listed;
    if let Some(mine) = made {
        if !all.iter().any(|s| s.id == mine.id) && matches_all(snap_filter, &mine.tags) {
            all.push(mine.clone());
        }
    }
    Some(all)
}

/// The snapshots of one volume to delete, oldest first.
///
/// - age only: those older than the age;
/// - count only: all but the `keep_last` newest;
/// - both: those older than the age, except the `keep_last` newest (the floor the original lacked);
/// - snapshots in `protected` (made by this run) are never deleted, and count among the newest;
/// - snapshots in state `error` never count among the kept.
pub fn to_delete<'a>(
    snapshots: &'a [Snapshot],
    rule: Rule,
    now: DateTime<Utc>,
    protected: &HashSet<String>,
) -> Vec<&'a Snapshot> {
    if !rule.is_enabled() {
        return Vec::new();
    }
    let mut newest_first: Vec<&Snapshot> = snapshots.iter().collect();
    // Ties in start time are broken by id so that the same input always gives the same answer.
    newest_first.sort_by(|a, b| {
        b.start_time
            .cmp(&a.start_time)
            .then_with(|| b.id.cmp(&a.id))
    });
    let kept: HashSet<&str> = newest_first
        .iter()
        .filter(|s| s.state != SnapshotState::Error)
        .take(rule.keep_last)
        .map(|s| s.id.as_str())
        .collect();
    let mut out: Vec<&Snapshot> = newest_first
        .into_iter()
        .filter(|s| !protected.contains(&s.id) && !kept.contains(s.id.as_str()))
        .filter(|s| match rule.max_age_secs {
            Some(max) => (now - s.start_time).num_seconds() > max,
            None => true,
        })
        .collect();
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
    }

    /// `(id, age in seconds, state)`
    fn snaps(spec: &[(&str, i64, &str)]) -> Vec<Snapshot> {
        spec.iter()
            .map(|(id, age, state)| Snapshot {
                id: id.to_string(),
                volume_id: "vol-1".into(),
                start_time: now() - chrono::Duration::seconds(*age),
                state: SnapshotState::from_name(state),
                tags: Default::default(),
            })
            .collect()
    }

    const DAY: i64 = 86_400;

    #[test]
    fn table() {
        let age = |d: i64| Some(d * DAY);
        // (name, snapshots as (id, age, state), rule, protected ids, expected deletions)
        type Case<'a> = (
            &'a str,
            Vec<(&'a str, i64, &'a str)>,
            Rule,
            &'a [&'a str],
            Vec<&'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                "empty input",
                vec![],
                Rule {
                    max_age_secs: age(1),
                    keep_last: 2,
                },
                &[],
                vec![],
            ),
            (
                "no rule",
                vec![("a", 9 * DAY, "completed")],
                Rule {
                    max_age_secs: None,
                    keep_last: 0,
                },
                &[],
                vec![],
            ),
            (
                "age: older than N goes, exactly N stays",
                vec![
                    ("old", 5 * DAY + 1, "completed"),
                    ("edge", 5 * DAY, "completed"),
                    ("new", 10, "completed"),
                ],
                Rule {
                    max_age_secs: age(5),
                    keep_last: 0,
                },
                &[],
                vec!["old"],
            ),
            (
                "age: every snapshot may go without -d",
                vec![("a", 30 * DAY, "completed"), ("b", 20 * DAY, "completed")],
                Rule {
                    max_age_secs: age(5),
                    keep_last: 0,
                },
                &[],
                vec!["a", "b"],
            ),
            (
                "count: keep 2 newest, oldest first",
                vec![
                    ("s1", 4 * DAY, "completed"),
                    ("s2", 3 * DAY, "completed"),
                    ("s3", 2 * DAY, "completed"),
                    ("s4", DAY, "completed"),
                ],
                Rule {
                    max_age_secs: None,
                    keep_last: 2,
                },
                &[],
                vec!["s1", "s2"],
            ),
            (
                "count: fewer than N, nothing goes",
                vec![("s1", 4 * DAY, "completed")],
                Rule {
                    max_age_secs: None,
                    keep_last: 3,
                },
                &[],
                vec![],
            ),
            (
                "both: the floor keeps N newest even when all are old",
                vec![
                    ("a", 30 * DAY, "completed"),
                    ("b", 20 * DAY, "completed"),
                    ("c", 10 * DAY, "completed"),
                ],
                Rule {
                    max_age_secs: age(5),
                    keep_last: 2,
                },
                &[],
                vec!["a"],
            ),
            (
                "both: young snapshots beyond N stay",
                vec![
                    ("a", 30 * DAY, "completed"),
                    ("b", 3 * DAY, "completed"),
                    ("c", 2 * DAY, "completed"),
                    ("d", DAY, "completed"),
                ],
                Rule {
                    max_age_secs: age(5),
                    keep_last: 1,
                },
                &[],
                vec!["a"],
            ),
            (
                "error snapshots do not count among the kept",
                vec![
                    ("good-old", 9 * DAY, "completed"),
                    ("err-new", DAY, "error"),
                    ("good-new", 2 * DAY, "completed"),
                ],
                Rule {
                    max_age_secs: None,
                    keep_last: 2,
                },
                &[],
                vec!["err-new"],
            ),
            (
                "error snapshots with the floor: old error goes, the two good stay",
                vec![
                    ("g1", 9 * DAY, "completed"),
                    ("e", 8 * DAY, "error"),
                    ("g2", 7 * DAY, "completed"),
                ],
                Rule {
                    max_age_secs: age(1),
                    keep_last: 2,
                },
                &[],
                vec!["e"],
            ),
            (
                "pending counts among the kept",
                vec![("old", 9 * DAY, "completed"), ("p", 0, "pending")],
                Rule {
                    max_age_secs: None,
                    keep_last: 1,
                },
                &[],
                vec!["old"],
            ),
            (
                "ties in start time broken by id",
                vec![
                    ("snap-b", DAY, "completed"),
                    ("snap-a", DAY, "completed"),
                    ("snap-c", DAY, "completed"),
                ],
                Rule {
                    max_age_secs: None,
                    keep_last: 1,
                },
                &[],
                vec!["snap-a", "snap-b"],
            ),
            (
                "snapshot made by this run is never deleted, and counts among N",
                vec![
                    ("old", 9 * DAY, "completed"),
                    ("mine", 0, "pending"),
                    ("mid", 3 * DAY, "completed"),
                ],
                Rule {
                    max_age_secs: None,
                    keep_last: 2,
                },
                &["mine"],
                vec!["old"],
            ),
            (
                "protected even by age with tiny max age",
                vec![("mine", 5, "completed")],
                Rule {
                    max_age_secs: Some(1),
                    keep_last: 0,
                },
                &["mine"],
                vec![],
            ),
        ];
        for (name, spec, rule, protected, want) in cases {
            let s = snaps(&spec);
            let protected: HashSet<String> = protected.iter().map(|p| p.to_string()).collect();
            let got: Vec<&str> = to_delete(&s, rule, now(), &protected)
                .iter()
                .map(|s| s.id.as_str())
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn order_does_not_depend_on_input_order() {
        let mut s = snaps(&[
            ("a", 5 * DAY, "completed"),
            ("b", 4 * DAY, "completed"),
            ("c", 3 * DAY, "completed"),
        ]);
        let rule = Rule {
            max_age_secs: None,
            keep_last: 1,
        };
        let first: Vec<String> = to_delete(&s, rule, now(), &HashSet::new())
            .iter()
            .map(|s| s.id.clone())
            .collect();
        s.reverse();
        let second: Vec<String> = to_delete(&s, rule, now(), &HashSet::new())
            .iter()
            .map(|s| s.id.clone())
            .collect();
        assert_eq!(first, second);
        assert_eq!(first, ["a", "b"]);
    }

    fn snap(id: &str, volume: &str, tags: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            id: id.into(),
            volume_id: volume.into(),
            start_time: now(),
            state: SnapshotState::Completed,
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn candidates_merge_the_new_snapshot() {
        let filter = vec![TagPattern::new("type", "backup").unwrap()];
        let listed = || vec![snap("old", "vol-1", &[("type", "backup")])];
        let ids =
            |v: Option<Vec<Snapshot>>| v.map(|v| v.into_iter().map(|s| s.id).collect::<Vec<_>>());
        let mine_ok = snap("mine", "vol-1", &[("type", "backup")]);
        let mine_other = snap("mine", "vol-1", &[("type", "other")]);
        let old_again = snap("old", "vol-1", &[("type", "backup")]);
        // (name, made, failed, filter, expected ids)
        type Case<'a> = (
            &'a str,
            Option<&'a Snapshot>,
            bool,
            &'a [TagPattern],
            Option<Vec<&'a str>>,
        );
        let cases: Vec<Case> = vec![
            ("nothing made", None, false, &[], Some(vec!["old"])),
            (
                "made, no filter",
                Some(&mine_other),
                false,
                &[],
                Some(vec!["old", "mine"]),
            ),
            (
                "made, passes the filter",
                Some(&mine_ok),
                false,
                &filter,
                Some(vec!["old", "mine"]),
            ),
            (
                "made, fails the filter",
                Some(&mine_other),
                false,
                &filter,
                Some(vec!["old"]),
            ),
            (
                "made and already listed",
                Some(&old_again),
                false,
                &[],
                Some(vec!["old"]),
            ),
            ("new snapshot failed: keep all", None, true, &[], None),
        ];
        for (name, made, failed, f, want) in cases {
            let want = want.map(|w| w.into_iter().map(String::from).collect::<Vec<_>>());
            assert_eq!(ids(candidates(listed(), made, failed, f)), want, "{name}");
        }
    }

    #[test]
    fn a_shared_volume_goes_with_the_first_instance() {
        use crate::model::{Disk, InstanceState};
        let inst = |id: &str, vols: &[&str]| Instance {
            id: id.into(),
            state: InstanceState::Running,
            tags: Default::default(),
            root_device: None,
            disks: vols
                .iter()
                .map(|v| Disk {
                    volume_id: v.to_string(),
                    device: "/dev/sdb".into(),
                })
                .collect(),
        };
        let instances = vec![
            inst("i-a", &["vol-1", "vol-shared"]),
            inst("i-b", &["vol-shared", "vol-2"]),
            inst("i-c", &["vol-none"]),
        ];
        let by_volume: HashMap<String, Vec<Snapshot>> =
            ["vol-1", "vol-shared", "vol-2", "vol-other"]
                .iter()
                .map(|v| (v.to_string(), vec![snap(&format!("s-{v}"), v, &[])]))
                .collect();
        let shares = share_out(&instances, by_volume);
        let keys = |m: &HashMap<String, Vec<Snapshot>>| {
            let mut k: Vec<String> = m.keys().cloned().collect();
            k.sort();
            k
        };
        let got: Vec<Vec<String>> = shares.iter().map(keys).collect();
        assert_eq!(
            got,
            vec![
                vec!["vol-1".to_string(), "vol-shared".to_string()],
                vec!["vol-2".to_string()],
                vec![],
            ]
        );
    }
}
