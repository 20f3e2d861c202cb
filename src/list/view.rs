//! `ec2snap list`, the decisions: from the selected instances, the account's snapshots and the
//! copies in other regions, what each volume has, what a run with the same flags would keep (and
//! why) or delete — computed by retention's own code — and the problems, first.

use crate::copies::policy::{self as copies, SOURCE_SNAPSHOT_TAG, SOURCE_VOLUME_TAG};
use crate::model::{matches_all, Instance, Snapshot, SnapshotState, TagPattern, SET_TAG};
use crate::output::messages::age;
use crate::retention;
use crate::retention::decide::{Rule, Set};
use crate::snapshot::plan;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// What `list` is computed from.
pub struct Input<'a> {
    /// The selected instances (after `-l`), in id order.
    pub instances: &'a [Instance],
    /// Volume sizes in GiB, by volume id.
    pub sizes: &'a HashMap<String, i32>,
    /// Every snapshot this account owns in the region.
    pub snapshots: &'a [Snapshot],
    /// `--copy-to`: each region with the copies this tool made there of this region's snapshots.
    pub copies: &'a [(String, Vec<Snapshot>)],
    /// Volumes known to exist (the instances', and those described among the snapshots' others).
    pub existing_volumes: &'a HashSet<String>,
    /// `-g`, `-d`, the `--keep-*` rules (nothing is marked when no rule is set).
    pub rule: Rule,
    /// `--copy-max-age`/`--copy-keep` (or `-g`/`-d`) for the copies.
    pub copy_rule: Option<Rule>,
    /// `--consistent`: sets are kept and deleted whole, as a run would.
    pub sets: bool,
    pub snap_filter: &'a [TagPattern],
    /// `--check-max-age`: a volume whose newest completed snapshot is older is a problem.
    pub stale_after: Option<i64>,
    pub now: DateTime<Utc>,
}

/// What a run with the same flags would do with a snapshot.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Keep,
    Delete,
    /// No retention flag, or retention does not look at it (`--snap-filter`, a set member
    /// without `--consistent`).
    None,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Listing {
    pub problems: Vec<Problem>,
    pub instances: Vec<InstanceView>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InstanceView {
    pub id: String,
    pub name: String,
    pub state: String,
    pub volumes: Vec<VolumeView>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VolumeView {
    pub id: String,
    pub device: String,
    /// False for a volume detached since its instance's sets were taken: its members are still
    /// kept and deleted with their sets.
    pub attached: bool,
    pub size_gib: Option<i32>,
    /// Newest first.
    pub snapshots: Vec<SnapshotView>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SnapshotView {
    pub id: String,
    pub start_time: String,
    pub age_secs: i64,
    pub state: String,
    /// EC2's progress while `pending`, e.g. `40%`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// The storage tier: `standard` or `archive`.
    pub tier: String,
    /// `--consistent`: the set it belongs to.
    pub set: Option<String>,
    pub verdict: Verdict,
    /// Why it stays (`last 1`, `daily 2026-11-22`, `floor of vol-..`).
    pub reasons: Vec<String>,
    /// Its copies in the `--copy-to` regions.
    pub copies: Vec<CopyView>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CopyView {
    pub region: String,
    pub id: String,
    pub state: String,
    pub verdict: Verdict,
}

/// What needs a look, listed first.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// A volume with no completed snapshot.
    NoBackup,
    /// A volume whose newest completed snapshot is older than `--check-max-age`.
    Stale,
    /// A set that lacks a member or has one in state `error`.
    IncompleteSet,
    /// A snapshot in state `error`.
    Error,
    /// A snapshot this tool made of a volume that no longer exists.
    Orphan,
}

impl ProblemKind {
    pub fn label(self) -> &'static str {
        match self {
            ProblemKind::NoBackup => "no backup",
            ProblemKind::Stale => "stale",
            ProblemKind::IncompleteSet => "incomplete set",
            ProblemKind::Error => "error",
            ProblemKind::Orphan => "orphan",
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The volume, set or snapshot.
    pub resource: String,
    pub detail: String,
}

/// The listing. Verdicts are those of `retention::plan_instance`, as a run that makes no new
/// snapshot (`-n`) with the same flags would decide; a volume attached to two instances is
/// decided with the first, as a run does.
pub fn listing(input: &Input) -> Listing {
    let (loose, all_sets) = retention::decide::group_sets(input.snapshots.to_vec());
    let mut verdicts: HashMap<String, (Verdict, Vec<String>)> = HashMap::new();
    let mut problems = Vec::new();
    let mut decided: HashSet<&str> = HashSet::new();
    for instance in input.instances {
        let own_sets: Vec<Set> = all_sets
            .iter()
            .filter(|s| plan::set_instance(&s.id) == instance.id)
            .cloned()
            .collect();
        for set in &own_sets {
            let gaps = set.gaps();
            if !gaps.is_empty() {
                let mut what: Vec<String> = gaps
                    .missing
                    .iter()
                    .map(|d| format!("no snapshot of {}({})", d.volume_id, d.device))
                    .collect();
                what.extend(
                    gaps.errored
                        .iter()
                        .map(|m| format!("{} of {} is in state error", m.id, m.volume_id)),
                );
                problems.push(Problem {
                    kind: ProblemKind::IncompleteSet,
                    resource: set.id.clone(),
                    detail: format!("set {}: {}", set.id, what.join("; ")),
                });
            }
        }
        let fresh: Vec<&str> = instance
            .disks
            .iter()
            .map(|d| d.volume_id.as_str())
            .filter(|v| decided.insert(v))
            .collect();
        if !input.rule.is_enabled() {
            continue;
        }
        let decide_input = retention::decide::Input {
            volumes: fresh
                .iter()
                .map(|vol| {
                    let own = loose
                        .iter()
                        .filter(|s| s.volume_id == *vol && matches_all(input.snap_filter, &s.tags))
                        .cloned()
                        .collect();
                    (vol.to_string(), Some(own))
                })
                .collect(),
            sets: Some(if input.sets {
                retention::decide::sets_matching(own_sets, input.snap_filter)
            } else {
                Vec::new()
            }),
            protected: HashSet::new(),
            protected_set: None,
        };
        let plan = retention::decide::plan_instance(&decide_input, &input.rule, input.now);
        let mut mark = |id: &str, verdict: Verdict, why: Vec<String>| {
            verdicts.insert(id.to_string(), (verdict, why));
        };
        for (_, decision) in &plan.volumes {
            for (s, why) in &decision.keep {
                mark(
                    &s.id,
                    Verdict::Keep,
                    why.iter().map(|r| r.to_string()).collect(),
                );
            }
            for s in &decision.delete {
                mark(&s.id, Verdict::Delete, Vec::new());
            }
        }
        for (set, why) in &plan.sets.keep {
            for m in &set.members {
                mark(
                    &m.id,
                    Verdict::Keep,
                    why.iter().map(|r| r.to_string()).collect(),
                );
            }
        }
        for set in &plan.sets.delete {
            for m in &set.members {
                mark(&m.id, Verdict::Delete, Vec::new());
            }
        }
    }
    let copy_verdicts = copy_verdicts(input);
    let instances = input
        .instances
        .iter()
        .map(|i| {
            let mut volumes: Vec<VolumeView> = i
                .disks
                .iter()
                .map(|d| {
                    let own = of_volume(input, &d.volume_id);
                    volume_problems(input, &d.volume_id, &i.id, &d.device, &own, &mut problems);
                    volume_view(
                        input,
                        &d.volume_id,
                        &d.device,
                        true,
                        &own,
                        &verdicts,
                        &copy_verdicts,
                    )
                })
                .collect();
            // Volumes detached since: named by the instance's sets, with their devices.
            let mut detached: BTreeMap<String, String> = BTreeMap::new();
            for set in all_sets
                .iter()
                .filter(|s| plan::set_instance(&s.id) == i.id)
            {
                for m in &set.members {
                    if i.device_of(&m.volume_id).is_none() {
                        let device = plan::devices_of(&m.tags).remove(&m.volume_id);
                        detached
                            .entry(m.volume_id.clone())
                            .or_insert_with(|| device.unwrap_or_else(|| "?".into()));
                    }
                }
            }
            for (vol, device) in detached {
                let own = of_volume(input, &vol);
                volumes.push(volume_view(
                    input,
                    &vol,
                    &device,
                    false,
                    &own,
                    &verdicts,
                    &copy_verdicts,
                ));
            }
            InstanceView {
                id: i.id.clone(),
                name: i.name().to_string(),
                state: i.state.to_string(),
                volumes,
            }
        })
        .collect();
    problems.extend(orphans(input));
    problems.sort();
    problems.dedup();
    Listing {
        problems,
        instances,
    }
}

/// A volume's snapshots, newest first.
fn of_volume<'a>(input: &Input<'a>, volume_id: &str) -> Vec<&'a Snapshot> {
    let mut own: Vec<&Snapshot> = input
        .snapshots
        .iter()
        .filter(|s| s.volume_id == volume_id)
        .collect();
    own.sort_by(|a, b| {
        b.start_time
            .cmp(&a.start_time)
            .then_with(|| b.id.cmp(&a.id))
    });
    own
}

fn volume_view(
    input: &Input,
    volume_id: &str,
    device: &str,
    attached: bool,
    own: &[&Snapshot],
    verdicts: &HashMap<String, (Verdict, Vec<String>)>,
    copy_verdicts: &HashMap<String, Verdict>,
) -> VolumeView {
    VolumeView {
        id: volume_id.to_string(),
        device: device.to_string(),
        attached,
        size_gib: input.sizes.get(volume_id).copied(),
        snapshots: own
            .iter()
            .map(|s| snapshot_view(input, s, verdicts, copy_verdicts))
            .collect(),
    }
}

/// The state's name, as EC2 writes it.
fn state_name(state: &SnapshotState) -> String {
    match state {
        SnapshotState::Pending => "pending".into(),
        SnapshotState::Completed => "completed".into(),
        SnapshotState::Error => "error".into(),
        SnapshotState::Other(s) => s.clone(),
    }
}

fn snapshot_view(
    input: &Input,
    s: &Snapshot,
    verdicts: &HashMap<String, (Verdict, Vec<String>)>,
    copy_verdicts: &HashMap<String, Verdict>,
) -> SnapshotView {
    let (verdict, reasons) = verdicts
        .get(&s.id)
        .cloned()
        .unwrap_or((Verdict::None, Vec::new()));
    let copies = input
        .copies
        .iter()
        .flat_map(|(region, list)| {
            list.iter()
                .filter(|c| c.tags.get(SOURCE_SNAPSHOT_TAG) == Some(&s.id))
                .map(move |c| CopyView {
                    region: region.clone(),
                    id: c.id.clone(),
                    state: state_name(&c.state),
                    verdict: copy_verdicts.get(&c.id).copied().unwrap_or(Verdict::None),
                })
        })
        .collect();
    SnapshotView {
        id: s.id.clone(),
        start_time: s.start_time.to_rfc3339(),
        age_secs: (input.now - s.start_time).num_seconds(),
        state: state_name(&s.state),
        progress: s
            .progress
            .clone()
            .filter(|_| s.state == SnapshotState::Pending),
        tier: s.tier.clone().unwrap_or_else(|| "standard".into()),
        set: s.tags.get(SET_TAG).cloned(),
        verdict,
        reasons,
        copies,
    }
}

/// What a run's copy step would keep or delete in each region, per source volume.
fn copy_verdicts(input: &Input) -> HashMap<String, Verdict> {
    let mut out = HashMap::new();
    let Some(rule) = input.copy_rule.filter(Rule::is_enabled) else {
        return out;
    };
    for (_, list) in input.copies {
        let mut by_volume: BTreeMap<&str, Vec<Snapshot>> = BTreeMap::new();
        for c in list {
            if let Some(vol) = c.tags.get(SOURCE_VOLUME_TAG) {
                by_volume.entry(vol.as_str()).or_default().push(c.clone());
            }
        }
        for (vol, group) in &by_volume {
            let of_volume: Vec<Snapshot> = input
                .snapshots
                .iter()
                .filter(|s| s.volume_id == *vol && matches_all(input.snap_filter, &s.tags))
                .cloned()
                .collect();
            let newest = copies::newest_completed(&of_volume).map(|s| s.id.as_str());
            let gone: HashSet<&str> =
                copies::copies_to_delete(group, rule, input.now, &HashSet::new(), newest)
                    .into_iter()
                    .map(|c| c.id.as_str())
                    .collect();
            for c in group {
                let verdict = if gone.contains(c.id.as_str()) {
                    Verdict::Delete
                } else {
                    Verdict::Keep
                };
                out.insert(c.id.clone(), verdict);
            }
        }
    }
    out
}

/// No backup, a stale one, snapshots in state error.
fn volume_problems(
    input: &Input,
    volume_id: &str,
    instance_id: &str,
    device: &str,
    own: &[&Snapshot],
    problems: &mut Vec<Problem>,
) {
    let at = format!("{volume_id} ({instance_id} {device})");
    let newest = own
        .iter()
        .find(|s| s.state == SnapshotState::Completed)
        .map(|s| (input.now - s.start_time).num_seconds());
    match (newest, input.stale_after) {
        (None, _) => problems.push(Problem {
            kind: ProblemKind::NoBackup,
            resource: volume_id.to_string(),
            detail: format!("{at}: no completed snapshot"),
        }),
        (Some(secs), Some(max)) if secs > max => problems.push(Problem {
            kind: ProblemKind::Stale,
            resource: volume_id.to_string(),
            detail: format!("{at}: newest completed snapshot {} old", age(secs)),
        }),
        _ => {}
    }
    for s in own.iter().filter(|s| s.state == SnapshotState::Error) {
        problems.push(Problem {
            kind: ProblemKind::Error,
            resource: s.id.clone(),
            detail: format!("{} of {at} is in state error", s.id),
        });
    }
}

/// This tool's snapshots of volumes that no longer exist.
fn orphans(input: &Input) -> Vec<Problem> {
    retention::orphans::orphans(input.snapshots, input.existing_volumes)
        .into_iter()
        .map(|s| Problem {
            kind: ProblemKind::Orphan,
            resource: s.id.clone(),
            detail: format!(
                "{} of {} (deleted), {} old: {}",
                s.id,
                s.volume_id,
                age((input.now - s.start_time).num_seconds()),
                s.description
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Disk, InstanceState, Tags};
    use crate::retention::policy::Keep;
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
                .collect::<Tags>(),
            description: format!("i-1 (web) - Hot /dev/sdb ({vol})"),
            progress: None,
            tier: None,
        }
    }

    #[test]
    fn verdicts_and_problems() {
        let instance = Instance {
            id: "i-1".into(),
            state: InstanceState::Running,
            tags: [("Name".to_string(), "web".to_string())].into(),
            root_device: None,
            disks: vec![
                Disk {
                    volume_id: "vol-b".into(),
                    device: "/dev/sdb".into(),
                },
                Disk {
                    volume_id: "vol-c".into(),
                    device: "/dev/sdc".into(),
                },
            ],
        };
        let snapshots = vec![
            snap("s-old", "vol-b", 9 * DAY, "completed", &[]),
            snap("s-mid", "vol-b", 5 * DAY, "completed", &[]),
            snap("s-new", "vol-b", DAY, "completed", &[]),
            snap("s-err", "vol-b", 3_600, "error", &[]),
            snap("s-gone", "vol-x", 40 * DAY, "completed", &[]),
        ];
        let existing: HashSet<String> = ["vol-b".to_string(), "vol-c".to_string()].into();
        let input = Input {
            instances: std::slice::from_ref(&instance),
            sizes: &[("vol-b".to_string(), 8)].into(),
            snapshots: &snapshots,
            copies: &[],
            existing_volumes: &existing,
            rule: Rule {
                keep: Keep {
                    last: 2,
                    ..Keep::default()
                },
                ..Rule::default()
            },
            copy_rule: None,
            sets: false,
            snap_filter: &[],
            stale_after: Some(2 * DAY),
            now: now(),
        };
        let l = listing(&input);
        let vol = &l.instances[0].volumes[0];
        let got: Vec<(&str, Verdict)> = vol
            .snapshots
            .iter()
            .map(|s| (s.id.as_str(), s.verdict))
            .collect();
        assert_eq!(
            got,
            [
                ("s-err", Verdict::Delete),
                ("s-new", Verdict::Keep),
                ("s-mid", Verdict::Keep),
                ("s-old", Verdict::Delete)
            ]
        );
        assert_eq!(vol.snapshots[1].reasons, ["last 1"]);
        assert_eq!(vol.size_gib, Some(8));
        let kinds: Vec<(ProblemKind, &str)> = l
            .problems
            .iter()
            .map(|p| (p.kind, p.resource.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                (ProblemKind::NoBackup, "vol-c"),
                (ProblemKind::Error, "s-err"),
                (ProblemKind::Orphan, "s-gone")
            ]
        );
        // Without a rule nothing is marked; with a newer limit the volume is stale.
        let bare = Input {
            rule: Rule::default(),
            stale_after: Some(3_600),
            ..input
        };
        let l = listing(&bare);
        assert!(l.instances[0].volumes[0]
            .snapshots
            .iter()
            .all(|s| s.verdict == Verdict::None));
        assert!(l
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::Stale && p.resource == "vol-b"));
    }
}
