//! `ec2snap list`, the decisions: from the selected instances, the account's snapshots and the
//! copies in other regions, what each volume has, what a run with the same flags would keep (and
//! why) or delete — computed by retention's own code — and the problems, first.

use crate::copies::policy as copies;
use crate::model::{
    matches_all, Instance, Snapshot, SnapshotKind, SnapshotState, TagPattern, Tags,
};
use crate::output::messages::age;
use crate::retention;
use crate::retention::archive::Storage;
use crate::retention::policy::Reason;
use crate::retention::policy::Rule;
use crate::snapshot::plan;
use crate::snapshot::Done;
use crate::tags::{CONSISTENCY_TAG, SET_TAG, SOURCE_SNAPSHOT_TAG, SOURCE_VOLUME_TAG};
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
    /// What a run would make first (`None` with `-n`).
    pub next: Option<NextRun<'a>>,
    pub now: DateTime<Utc>,
}

/// The snapshots a run with the same flags would make before it prunes: they count among each
/// volume's newest, as in a dry run, so the verdicts are that run's.
pub struct NextRun<'a> {
    /// Hot, or cold with `-c`.
    pub kind: SnapshotKind,
    /// `-o`.
    pub no_root_device: bool,
    /// `-e`.
    pub add_tags: &'a [(String, String)],
    /// The volumes' own tags, which their snapshots get (and `--snap-filter` sees).
    pub volume_tags: &'a HashMap<String, Tags>,
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
    /// What the snapshots the rules keep cost a month, all volumes together.
    #[serde(skip_serializing_if = "Storage::is_empty")]
    pub storage: Storage,
}

/// What a volume's snapshots that stay (not DELETE, not the next run's) cost a month.
fn storage_of(snapshots: &[SnapshotView]) -> Storage {
    let mut out = Storage::default();
    for s in snapshots {
        if let Some(bytes) = s
            .size_bytes
            .filter(|_| s.id.is_some() && s.verdict != Verdict::Delete)
        {
            out.add_snapshot(bytes, s.tier == "archive");
        }
    }
    out
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
    /// What its kept snapshots cost a month.
    #[serde(skip_serializing_if = "Storage::is_empty")]
    pub storage: Storage,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SnapshotView {
    /// `None` for the snapshot the next run makes (state `planned`): it is counted among the
    /// newest, as a dry run counts it, so it is listed with its verdict.
    pub id: Option<String>,
    pub start_time: String,
    pub age_secs: i64,
    pub state: String,
    /// EC2's progress while `pending`, e.g. `40%`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// The storage tier: `standard` or `archive`.
    pub tier: String,
    /// Its full size (FullSnapshotSizeInBytes), where EC2 gives it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// `--consistent`: the set it belongs to.
    pub set: Option<String>,
    /// Made with hooks: `application` or `crash` (its tag `ec2snap:consistency`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency: Option<String>,
    /// When its EBS lock ends (EC2's, whoever set it; the tag `ec2snap:locked-until` where the
    /// locks could not be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<String>,
    /// The AMI of this account that uses it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_use_by: Option<String>,
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
    /// A snapshot still shared with the vault account (`--vault-role`), until its vault copy
    /// completes.
    Shared,
}

impl ProblemKind {
    pub fn label(self) -> &'static str {
        match self {
            ProblemKind::NoBackup => "no backup",
            ProblemKind::Stale => "stale",
            ProblemKind::IncompleteSet => "incomplete set",
            ProblemKind::Error => "error",
            ProblemKind::Orphan => "orphan",
            ProblemKind::Shared => "shared",
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

/// The listing. Verdicts are those of `retention::plan_instance` on the input a run with the
/// same flags would give it: the same listing (`listed`), the same share of a volume attached to
/// two instances (`share_out`: the first decides), and the snapshots that run would make first
/// (`next`), counted as a dry run counts them.
pub fn listing(input: &Input) -> Listing {
    let (_, all_sets) = retention::decide::group_sets(input.snapshots.to_vec());
    let mut problems = Vec::new();
    for set in &all_sets {
        if !input
            .instances
            .iter()
            .any(|i| i.id == plan::set_instance(&set.id))
        {
            continue;
        }
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
    let verdicts = verdicts(input);
    let copy_verdicts = copy_verdicts(input);
    let instances: Vec<InstanceView> = input
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
    problems.extend(failed_copies(input));
    problems.extend(shared(input));
    problems.sort();
    problems.dedup();
    let mut storage = Storage::default();
    for v in instances.iter().flat_map(|i| &i.volumes) {
        storage.add(&v.storage);
    }
    Listing {
        problems,
        instances,
        storage,
    }
}

/// What retention would do, as a run decides it.
#[derive(Default)]
struct Verdicts {
    /// KEEP (with its reasons) or DELETE, by snapshot id.
    by_id: HashMap<String, (Verdict, Vec<String>)>,
    /// By volume, the snapshot the next run makes, when retention counts it.
    planned: HashMap<String, Snapshot>,
}

/// KEEP (with its reasons) or DELETE for each snapshot retention looks at, as a run decides.
fn verdicts(input: &Input) -> Verdicts {
    let mut verdicts: HashMap<String, (Verdict, Vec<String>)> = HashMap::new();
    let mut planned: HashMap<String, Snapshot> = HashMap::new();
    if !input.rule.is_enabled() {
        return Verdicts::default();
    }
    let decide = &retention::decide::instance_input;
    let (by_volume, mut sets) = retention::decide::listed(
        input.snapshots.to_vec(),
        input.instances,
        input.snap_filter,
        input.sets,
    );
    let shares = retention::decide::share_out(input.instances, by_volume);
    for (instance, share) in input.instances.iter().zip(shares) {
        let done = next_run(input, instance);
        let own_sets = sets.remove(&instance.id).unwrap_or_default();
        let decide_input = decide(
            instance,
            share,
            own_sets,
            &done,
            input.snap_filter,
            input.sets,
        );
        let plan = retention::decide::plan_instance(&decide_input, &input.rule, input.now);
        let counted = |s: &&Snapshot| {
            plan.volumes
                .iter()
                .any(|(_, d)| d.keep.iter().any(|(k, _)| k.id == s.id))
                || plan
                    .sets
                    .keep
                    .iter()
                    .any(|(set, _)| set.members.iter().any(|m| m.id == s.id))
        };
        for s in done.created.values().filter(counted) {
            planned
                .entry(s.volume_id.clone())
                .or_insert_with(|| s.clone());
        }
        let mut mark = |id: &str, verdict: Verdict, why: &[Reason]| {
            // The planned row says it is the next run's; `made by this run` would not.
            let why = why
                .iter()
                .filter(|r| **r != Reason::ThisRun)
                .map(Reason::to_string)
                .collect();
            verdicts.insert(id.to_string(), (verdict, why));
        };
        for (_, decision) in &plan.volumes {
            for (s, why) in &decision.keep {
                mark(&s.id, Verdict::Keep, why);
            }
            for s in &decision.delete {
                mark(&s.id, Verdict::Delete, &[]);
            }
        }
        for (set, why) in &plan.sets.keep {
            for m in &set.members {
                mark(&m.id, Verdict::Keep, why);
            }
        }
        for set in &plan.sets.delete {
            for m in &set.members {
                mark(&m.id, Verdict::Delete, &[]);
            }
        }
    }
    Verdicts {
        by_id: verdicts,
        planned,
    }
}

/// What the next run would have made of an instance when it prunes, as a dry run plans it.
fn next_run(input: &Input, instance: &Instance) -> Done {
    let Some(next) = &input.next else {
        return Done::default();
    };
    let plan = plan::for_instance(
        instance,
        next.kind,
        input.sets,
        next.no_root_device,
        next.volume_tags,
        next.add_tags,
        input.now,
    );
    let (made, set) = plan::planned(&plan, next.volume_tags, input.now);
    Done {
        created: made.into_iter().map(|s| (s.volume_id.clone(), s)).collect(),
        set,
        ..Done::default()
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
    verdicts: &Verdicts,
    copy_verdicts: &HashMap<String, Verdict>,
) -> VolumeView {
    let planned = verdicts.planned.get(volume_id).filter(|_| attached);
    let snapshots: Vec<SnapshotView> = planned
        .map(|s| snapshot_view(input, s, true, verdicts, copy_verdicts))
        .into_iter()
        .chain(
            own.iter()
                .map(|s| snapshot_view(input, s, false, verdicts, copy_verdicts)),
        )
        .collect();
    VolumeView {
        id: volume_id.to_string(),
        device: device.to_string(),
        attached,
        size_gib: input.sizes.get(volume_id).copied(),
        storage: storage_of(&snapshots),
        snapshots,
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
    planned: bool,
    verdicts: &Verdicts,
    copy_verdicts: &HashMap<String, Verdict>,
) -> SnapshotView {
    let (verdict, reasons) = verdicts
        .by_id
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
        id: (!planned).then(|| s.id.clone()),
        start_time: s.start_time.to_rfc3339(),
        age_secs: (input.now - s.start_time).num_seconds(),
        state: if planned {
            "planned".into()
        } else {
            state_name(&s.state)
        },
        progress: s
            .progress
            .clone()
            .filter(|_| s.state == SnapshotState::Pending),
        tier: s.tier.clone().unwrap_or_else(|| "standard".into()),
        size_bytes: s.size_bytes.filter(|_| !planned),
        set: s.tags.get(SET_TAG).filter(|_| !planned).cloned(),
        consistency: s.tags.get(CONSISTENCY_TAG).filter(|_| !planned).cloned(),
        locked_until: crate::retention::lock::locked_until(s).map(|t| t.to_rfc3339()),
        in_use_by: s.in_use_by.clone(),
        verdict,
        reasons,
        copies,
    }
}

/// What a run's copy step would keep or delete in each region, per source volume.
fn copy_verdicts(input: &Input) -> HashMap<String, Verdict> {
    let mut out = HashMap::new();
    let Some(rule) = input.copy_rule.as_ref().filter(|r| r.is_enabled()) else {
        return out;
    };
    // The vault's copies are pruned by the vault alone (`vault-prune`): no verdict here.
    for (_, list) in input
        .copies
        .iter()
        .filter(|(r, _)| !r.starts_with("vault "))
    {
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
                copies::decide(group, rule, input.now, &HashSet::new(), newest)
                    .delete
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
    // As the freshness check with the same flags: only snapshots that pass --snap-filter back a
    // volume up.
    let newest = own
        .iter()
        .filter(|s| matches_all(input.snap_filter, &s.tags))
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

/// Copies in state `error` in a `--copy-to` region: no backup there (their source is copied again).
fn failed_copies(input: &Input) -> Vec<Problem> {
    let mut out = Vec::new();
    for (region, list) in input.copies {
        for c in list.iter().filter(|c| c.state == SnapshotState::Error) {
            let source = c
                .tags
                .get(SOURCE_SNAPSHOT_TAG)
                .map(String::as_str)
                .unwrap_or("?");
            out.push(Problem {
                kind: ProblemKind::Error,
                resource: c.id.clone(),
                detail: format!("{} in {region} (copy of {source}) is in state error", c.id),
            });
        }
    }
    out
}

/// The snapshots still shared with a vault account (`ec2snap:vault-shared`).
fn shared(input: &Input) -> Vec<Problem> {
    input
        .snapshots
        .iter()
        .filter_map(|s| {
            let account = s.tags.get(crate::tags::VAULT_SHARED_TAG)?;
            Some(Problem {
                kind: ProblemKind::Shared,
                resource: s.id.clone(),
                detail: format!(
                    "{} of {} is shared with the vault account {account} until its vault copy completes",
                    s.id, s.volume_id
                ),
            })
        })
        .collect()
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
            size_bytes: None,
            lock: Default::default(),
            in_use_by: None,
        }
    }

    #[test]
    fn verdicts_and_problems() {
        let instance = Instance {
            id: "i-1".into(),
            state: InstanceState::Running,
            tags: [("Name".to_string(), "web".to_string())].into(),
            root_device: None,
            machine: Default::default(),
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
            next: None,
            now: now(),
        };
        let l = listing(&input);
        let vol = &l.instances[0].volumes[0];
        let got: Vec<(&str, Verdict)> = vol
            .snapshots
            .iter()
            .map(|s| (s.id.as_deref().unwrap_or("next"), s.verdict))
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
        // With the snapshot a run makes first (listed with no id): it is one of the 2.
        let volume_tags = HashMap::new();
        let next = Input {
            next: Some(NextRun {
                kind: SnapshotKind::Hot,
                no_root_device: false,
                add_tags: &[],
                volume_tags: &volume_tags,
            }),
            copy_rule: input.copy_rule.clone(),
            rule: input.rule.clone(),
            ..input
        };
        let l = listing(&next);
        let vol = &l.instances[0].volumes[0];
        let got: Vec<(Option<&str>, &str, Verdict)> = vol
            .snapshots
            .iter()
            .map(|s| (s.id.as_deref(), s.state.as_str(), s.verdict))
            .collect();
        assert_eq!(
            got,
            [
                (None, "planned", Verdict::Keep),
                (Some("s-err"), "error", Verdict::Delete),
                (Some("s-new"), "completed", Verdict::Keep),
                (Some("s-mid"), "completed", Verdict::Delete),
                (Some("s-old"), "completed", Verdict::Delete)
            ]
        );
        assert_eq!(vol.snapshots[2].reasons, ["last 2"]);
        // Without a rule nothing is marked; with a newer limit the volume is stale.
        let bare = Input {
            next: None,
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
