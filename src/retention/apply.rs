//! Applying retention to one instance's volumes: the decision comes from `retention`, the
//! deletions (or, in a dry run, their announcement) go out within the run's `--parallel` permits.

use crate::act::ctx::Ctx;
use crate::act::gate;
use crate::aws::{Change, Ec2};
use crate::model::{Disk, Instance, Snapshot};
use crate::output::log::Level;
use crate::output::messages as msg;
use crate::output::record::{ArchivedEntry, DeletedEntry, Failure, KeptEntry, Kind, LockedEntry};
use crate::retention::archive;
use crate::retention::decide::{self as retention, Set};
use crate::retention::lock::{self, LockPolicy};
use crate::retention::orphans;
use crate::retention::policy::Reason;
use crate::snapshot::plan;
use crate::snapshot::Done;
use crate::tags::{ARCHIVED_TAG, LOCK_TAG};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tracing::{debug, info, warn};

/// One deletion.
struct Doomed {
    snapshot: Snapshot,
    disk: Disk,
    /// The set line to say before it (the first member of a set).
    header: Option<String>,
}

/// Retention for one instance (`retention::plan_instance`): its volumes' snapshots without the
/// set tag, in device order; then, with `--consistent`, its sets, each deleted whole.
pub async fn prune(
    ctx: &Arc<Ctx>,
    instance: &Instance,
    snapshots: HashMap<String, Vec<Snapshot>>,
    sets: Vec<Set>,
    done: &Done,
) {
    let now = crate::clock::now();
    let cfg = &ctx.cfg;
    let input = retention::instance_input(
        instance,
        snapshots,
        sets,
        done,
        &cfg.snap_filter,
        cfg.sets(),
    );
    for (disk, (_, candidates)) in instance.disks.iter().zip(&input.volumes) {
        if candidates.is_none() {
            warn!("{}", msg::old_snapshots_kept(disk));
        }
    }
    if input.sets.is_none() {
        warn!("{}", msg::old_sets_kept(&instance.id));
    }
    let plan = retention::plan_instance(&input, &ctx.cfg.retention, now);
    for (set, gaps) in &plan.incomplete {
        let errored: Vec<(String, Disk)> = gaps
            .errored
            .iter()
            .map(|m| (m.id.clone(), member_disk(instance, m)))
            .collect();
        warn!("{}", msg::incomplete_set(&set.id, &gaps.missing, &errored));
    }
    let mut doomed: Vec<Doomed> = Vec::new();
    let mut kept: Vec<KeptEntry> = Vec::new();
    for (volume_id, decision) in &plan.volumes {
        let Some(disk) = instance.disks.iter().find(|d| d.volume_id == *volume_id) else {
            continue;
        };
        for (s, why) in &decision.keep {
            let planned = plan::is_planned(&s.id);
            kept.push(kept_entry(s, disk, why, planned));
        }
        doomed.extend(decision.delete.iter().map(|s| Doomed {
            snapshot: (*s).clone(),
            disk: disk.clone(),
            header: None,
        }));
    }
    for (set, why) in &plan.sets.keep {
        let planned = set.members.iter().any(|m| plan::is_planned(&m.id));
        let reasons: Vec<String> = why.iter().map(Reason::to_string).collect();
        let held = held_of(why);
        if held.is_some() {
            info!("{}", msg::keeping_set(&set.id, set.members.len(), &reasons));
        } else {
            debug!("{}", msg::keeping_set(&set.id, set.members.len(), &reasons));
        }
        for m in sorted_members(set) {
            let disk = member_disk(instance, m);
            let (reasons, held) = (reasons.clone(), held.clone());
            kept.push(entry(m, &disk, Some(&set.id), reasons, planned, held));
        }
    }
    for set in &plan.sets.delete {
        for (n, m) in sorted_members(set).into_iter().enumerate() {
            let header = (n == 0).then(|| msg::deleting_set(&set.id, set.members.len()));
            doomed.push(Doomed {
                snapshot: m.clone(),
                disk: member_disk(instance, m),
                header,
            });
        }
    }
    ctx.record.kept(&instance.id, kept);
    if let Some(policy) = ctx.cfg.lock {
        lock_kept(ctx, instance, &plan, &input.protected, policy, now).await;
    }
    if let Some(after) = ctx.cfg.archive_after {
        archive_kept(ctx, instance, &plan, after, now).await;
    }
    let instance_id = instance.id.clone();
    ctx.calls(doomed, move |ctx, doomed: Doomed| {
        let instance_id = instance_id.clone();
        async move {
            if let Some(line) = &doomed.header {
                info!("{line}");
            }
            delete(&ctx, &instance_id, &doomed).await
        }
    })
    .await;
}

/// `--lock`: locks each kept snapshot (set members too) for as long as the rules are sure to
/// keep it, or extends its lock; the end goes in its `ec2snap:locked-until` tag, which every run's
/// retention reads. A snapshot a dry run plans has no id to lock yet.
async fn lock_kept(
    ctx: &Arc<Ctx>,
    instance: &Instance,
    plan: &retention::InstancePlan<'_>,
    protected: &HashSet<String>,
    policy: LockPolicy,
    now: chrono::DateTime<chrono::Utc>,
) {
    let mut kept: Vec<(&Snapshot, &[Reason])> = Vec::new();
    for (_, decision) in &plan.volumes {
        kept.extend(decision.keep.iter().map(|(s, why)| (*s, why.as_slice())));
    }
    for (set, why) in &plan.sets.keep {
        kept.extend(set.members.iter().map(|m| (m, why.as_slice())));
    }
    let rule = &ctx.cfg.retention;
    // Per volume, a snapshot that exists: where a dry run checks the lock of a planned one.
    let mut existing: HashMap<&str, &str> = HashMap::new();
    for (_, decision) in &plan.volumes {
        let listed = decision
            .keep
            .iter()
            .map(|(s, _)| *s)
            .chain(decision.delete.iter().copied());
        for s in listed.filter(|s| !protected.contains(&s.id)) {
            existing
                .entry(s.volume_id.as_str())
                .or_insert(s.id.as_str());
        }
    }
    let jobs: Vec<(Snapshot, u32, bool, Option<String>)> = lock::to_lock(kept, rule, &policy, now)
        .into_iter()
        .map(|(s, days)| {
            let planned = plan::is_planned(&s.id);
            let stand_in = existing.get(s.volume_id.as_str()).map(|id| id.to_string());
            (s.clone(), days, planned, stand_in.filter(|_| planned))
        })
        .collect();
    let instance_id = instance.id.clone();
    ctx.calls(
        jobs,
        move |ctx, (s, days, planned, stand_in): (Snapshot, u32, bool, Option<String>)| {
            let instance_id = instance_id.clone();
            async move {
                let shown = if planned {
                    format!("(new) of {}", s.volume_id)
                } else {
                    s.id.clone()
                };
                let ec2 = Arc::clone(&ctx.ec2);
                let lock = Lock {
                    days,
                    policy,
                    now,
                    planned,
                    stand_in,
                };
                lock_one(&ctx, &ec2, &instance_id, &s, shown, lock).await
            }
        },
    )
    .await;
}

/// `--archive-after`: moves the kept snapshots that `archive::to_archive` picks to the archive
/// tier, and tags them with the day (`ec2snap:archived`), from which an early deletion's cost is
/// told.
async fn archive_kept(
    ctx: &Arc<Ctx>,
    instance: &Instance,
    plan: &retention::InstancePlan<'_>,
    after_secs: i64,
    now: chrono::DateTime<chrono::Utc>,
) {
    let rule = &ctx.cfg.retention;
    let mut picked: Vec<Snapshot> = Vec::new();
    for (_, decision) in &plan.volumes {
        let kept: Vec<(&Snapshot, &[Reason])> = decision
            .keep
            .iter()
            .map(|(s, why)| (*s, why.as_slice()))
            .collect();
        picked.extend(
            archive::to_archive(&kept, rule, after_secs, now)
                .into_iter()
                .cloned(),
        );
    }
    let instance_id = instance.id.clone();
    ctx.calls(picked, move |ctx, s: Snapshot| {
        let instance_id = instance_id.clone();
        async move { archive_one(&ctx, &instance_id, &s, now).await }
    })
    .await;
}

/// Moves one snapshot to the archive tier (a dry run says it and checks the permission).
async fn archive_one(
    ctx: &Ctx,
    instance_id: &str,
    s: &Snapshot,
    now: chrono::DateTime<chrono::Utc>,
) {
    info!("{}", msg::archiving(&s.id, &s.volume_id));
    let change = Change::ArchiveSnapshot(&s.id);
    let entry = ArchivedEntry {
        id: s.id.clone(),
        volume: s.volume_id.clone(),
        size_bytes: s.size_bytes,
    };
    match change_snapshot(
        ctx,
        &ctx.ec2,
        instance_id,
        &change,
        &s.id,
        msg::archive_error,
    )
    .await
    {
        Sent::Dry => return ctx.record.archived(instance_id, entry),
        Sent::Not => return,
        Sent::Made => ctx.record.archived(instance_id, entry),
    }
    let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let ids = [s.id.clone()];
    let tag = Change::Tag {
        ids: &ids,
        key: ARCHIVED_TAG,
        value: &stamp,
    };
    if let gate::Sent::Answered(Err(e)) = gate::send(ctx, &ctx.ec2, &tag, &s.id).await {
        // Archived; only the warning of an early deletion will not know since when.
        warn!("{}", msg::archive_tag_error(&s.id, &e.to_string()));
    }
}

/// What became of a change to a snapshot.
enum Sent {
    /// A dry run: only its permission was checked (when asked).
    Dry,
    Made,
    /// Refused (recorded), or cut short by a signal.
    Not,
}

/// Sends `change` to snapshot `id` in `ec2`'s region (a dry run checks its permission instead),
/// raced with the signal; a refusal is recorded under the instance with the line `error_line`
/// gives.
async fn change_snapshot(
    ctx: &Ctx,
    ec2: &Ec2,
    instance_id: &str,
    change: &Change<'_>,
    id: &str,
    error_line: fn(&str, &str) -> String,
) -> Sent {
    match gate::send(ctx, ec2, change, id).await {
        gate::Sent::Dry => Sent::Dry,
        gate::Sent::Answered(Ok(_)) => Sent::Made,
        gate::Sent::Answered(Err(e)) => {
            let line = error_line(id, &e.to_string());
            let failure = Failure::aws(Level::Error, line, change.action(), id, &e);
            ctx.record
                .failed(Some(instance_id), located(ctx, ec2, failure));
            Sent::Not
        }
        gate::Sent::Interrupted(_) => Sent::Not,
    }
}

/// A failure in `ec2`'s region, named so when it is not the run's.
fn located(ctx: &Ctx, ec2: &Ec2, failure: Failure) -> Failure {
    if ec2.region() == ctx.ec2.region() {
        failure
    } else {
        failure.in_region(ec2.region())
    }
}

/// One lock to set: for how many days, in which mode, from when; `planned`: on the snapshot (or
/// copy) a dry run would make, which has no id yet: its permission is checked on `stand_in`, an
/// existing snapshot of the same volume, when there is one.
#[derive(Clone)]
pub struct Lock {
    pub days: u32,
    pub policy: LockPolicy,
    pub now: chrono::DateTime<chrono::Utc>,
    pub planned: bool,
    pub stand_in: Option<String>,
}

/// Locks one snapshot (`shown` so in the log) in `ec2`'s region, then tags it with the lock's
/// end. A dry run says it and checks the permission.
pub async fn lock_one(
    ctx: &Ctx,
    ec2: &Ec2,
    instance_id: &str,
    s: &Snapshot,
    shown: String,
    lock: Lock,
) {
    let Lock {
        days,
        policy,
        now,
        planned,
        stand_in,
    } = lock;
    let until = chrono::Duration::try_days(i64::from(days))
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mode = policy.mode.name();
    info!("{}", msg::locking(&shown, days, &until, mode));
    let cool_off_hours = match policy.mode {
        // The cool-off is the first compliance lock's (of a snapshot unlocked, or locked in
        // governance mode) and goes on within it; past it, an extension omits it (EC2's rule).
        lock::Mode::Compliance { cool_off_hours } if lock::carries_cool_off(s) => {
            Some(cool_off_hours)
        }
        _ => None,
    };
    let change = Change::LockSnapshot {
        snapshot_id: &s.id,
        mode,
        days,
        cool_off_hours,
    };
    let entry = LockedEntry {
        id: shown,
        volume: s.volume_id.clone(),
        mode: mode.to_string(),
        days,
        until: until.clone(),
        region: (ec2.region() != ctx.ec2.region()).then(|| ec2.region().to_string()),
    };
    if planned {
        // The snapshot a dry run would make has no id yet: ec2:LockSnapshot is checked on an
        // existing snapshot of its volume (DryRun changes nothing), so that the dry run says a
        // refusal that the real run would meet.
        if let Some(id) = &stand_in {
            let check = Change::LockSnapshot {
                snapshot_id: id,
                mode,
                days,
                cool_off_hours,
            };
            let _ = change_snapshot(ctx, ec2, instance_id, &check, id, msg::lock_error).await;
        }
        return ctx.record.locked(instance_id, entry);
    }
    match change_snapshot(ctx, ec2, instance_id, &change, &s.id, msg::lock_error).await {
        Sent::Dry => return ctx.record.locked(instance_id, entry),
        Sent::Not => return,
        Sent::Made => {}
    }
    let ids = [s.id.clone()];
    let tag = Change::Tag {
        ids: &ids,
        key: LOCK_TAG,
        value: &until,
    };
    match gate::send(ctx, ec2, &tag, &s.id).await {
        gate::Sent::Answered(Ok(_)) | gate::Sent::Dry => ctx.record.locked(instance_id, entry),
        gate::Sent::Answered(Err(e)) => {
            // Locked, but the next runs do not know it: their deletions of it fail, counted.
            let line = msg::lock_tag_error(&s.id, &e.to_string());
            let failure = Failure::aws(Level::Error, line, "CreateTags", &s.id, &e);
            ctx.record
                .failed(Some(instance_id), located(ctx, ec2, failure));
        }
        gate::Sent::Interrupted(_) => {}
    }
}

/// A set's members in volume order.
fn sorted_members(set: &Set) -> Vec<&Snapshot> {
    let mut members: Vec<&Snapshot> = set.members.iter().collect();
    members.sort_by(|a, b| a.volume_id.cmp(&b.volume_id).then_with(|| a.id.cmp(&b.id)));
    members
}

/// A set member's disk, its device from the set's own tags: the volume may be detached by now.
fn member_disk(instance: &Instance, m: &Snapshot) -> Disk {
    let device = plan::devices_of(&m.tags)
        .remove(&m.volume_id)
        .or_else(|| instance.device_of(&m.volume_id).map(String::from))
        .unwrap_or_else(|| "?".into());
    Disk {
        volume_id: m.volume_id.clone(),
        device,
    }
}

/// A kept snapshot: said at DEBUG, and its entry for the report.
fn kept_entry(s: &Snapshot, disk: &Disk, why: &[Reason], planned: bool) -> KeptEntry {
    let reasons: Vec<String> = why.iter().map(Reason::to_string).collect();
    let id = (!planned).then_some(s.id.as_str());
    let held = held_of(why);
    // A hold is what an admin looks for in the log: said at INFO, the other reasons at DEBUG.
    if held.is_some() {
        info!("{}", msg::keeping(id, disk, &reasons));
    } else {
        debug!("{}", msg::keeping(id, disk, &reasons));
    }
    entry(s, disk, None, reasons, planned, held)
}

/// The legal hold (or keep tag) among the reasons something stays.
fn held_of(why: &[Reason]) -> Option<String> {
    why.iter()
        .find(|r| matches!(r, Reason::Held(_) | Reason::KeepTag(_)))
        .map(Reason::to_string)
}

fn entry(
    s: &Snapshot,
    disk: &Disk,
    set: Option<&str>,
    reasons: Vec<String>,
    planned: bool,
    held: Option<String>,
) -> KeptEntry {
    KeptEntry {
        id: (!planned).then(|| s.id.clone()),
        volume: s.volume_id.clone(),
        device: disk.device.clone(),
        start_time: s.start_time.to_rfc3339(),
        set: set.map(String::from),
        tier: s.tier.clone().filter(|t| t != "standard"),
        size_bytes: s.size_bytes,
        reasons,
        held,
    }
}

/// `--prune-orphans-after`: this tool's snapshots of volumes that no longer exist (not those of
/// `known`, the selected instances' volumes), older than `max_age_secs`, are deleted (in a dry
/// run, announced and their permission checked) within the run's `--parallel` permits. Reads
/// every snapshot the account owns in the region (unless the run `listed` them already), and
/// describes the volumes they name.
pub async fn prune_orphans(
    ctx: &Arc<Ctx>,
    max_age_secs: i64,
    known: HashSet<&str>,
    listed: Option<Vec<Snapshot>>,
) {
    let read = async {
        let snapshots = match listed {
            Some(all) => all,
            None => {
                let mut all = ctx.ec2.own_snapshots().await?;
                read_holds(&ctx.ec2, &mut all).await;
                all
            }
        };
        let mut existing: HashSet<String> = known.iter().map(|v| v.to_string()).collect();
        let to_check = orphans::volumes_to_check(&snapshots, &known);
        existing.extend(ctx.ec2.volumes(&to_check).await?.into_keys());
        anyhow::Ok((snapshots, existing))
    };
    let (snapshots, existing) = match ctx.shutdown.race(read).await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            let failure = Failure::other(
                Level::Error,
                format!("Cannot look for orphans: {e:#}"),
                "DescribeSnapshots",
                ctx.ec2.region(),
                Kind::Aws,
                format!("{e:#}"),
            );
            ctx.record.failed(None, failure);
            return;
        }
        Err(_) => return,
    };
    let now = crate::clock::now();
    let found = orphans::orphans(&snapshots, &existing);
    let keep_tags = &ctx.cfg.retention.keep_tags;
    let doomed: Vec<Snapshot> = orphans::to_prune(&found, max_age_secs, &ctx.cfg.snap_filter, now)
        .into_iter()
        .filter(|s| !orphans::held(s, &snapshots, keep_tags))
        .cloned()
        .collect();
    ctx.calls(doomed, move |ctx, orphan: Snapshot| async move {
        let age = msg::age((now - orphan.start_time).num_seconds());
        let line = msg::deleting_orphan(&orphan.id, &orphan.volume_id, &age);
        let gone = DeletedEntry {
            id: orphan.id.clone(),
            volume: orphan.volume_id.clone(),
            start_time: orphan.start_time.to_rfc3339(),
            reason: "orphan",
            region: None,
        };
        delete_snapshot(&ctx, &ctx.ec2, None, line, gone).await;
    })
    .await;
}

/// Deletes one snapshot of retention (or, in a dry run, announces it).
async fn delete(ctx: &Ctx, instance_id: &str, doomed: &Doomed) {
    let (snapshot_id, disk) = (doomed.snapshot.id.as_str(), &doomed.disk);
    let gone = DeletedEntry {
        id: snapshot_id.to_string(),
        volume: doomed.snapshot.volume_id.clone(),
        start_time: doomed.snapshot.start_time.to_rfc3339(),
        reason: ctx.cfg.retention.deletion_reason(),
        region: None,
    };
    let line = msg::deleting(snapshot_id, disk);
    if let Some((days, cost)) = archive::early_deletion(&doomed.snapshot, crate::clock::now()) {
        if !ctx.cfg.no_delete {
            warn!("{}", msg::early_archive_deletion(snapshot_id, days, cost));
        }
    }
    delete_snapshot(ctx, &ctx.ec2, Some(instance_id), line, gone).await;
}

/// Deletes one snapshot in `ec2`'s region (the run's, or a copy's), said first with `line`: when
/// it is gone (or, in a dry run, would go) it is recorded under its instance; in a dry run its
/// permission is checked (a refusal counts as the real failure would); a snapshot already gone,
/// or in use with `--ignore-in-use-snapshot`, is a warning; any other failure is recorded.
pub async fn delete_snapshot(
    ctx: &Ctx,
    ec2: &Ec2,
    instance_id: Option<&str>,
    line: String,
    gone: DeletedEntry,
) {
    // `--no-delete`: decided, said at DEBUG, left to a run that may delete.
    if ctx.cfg.no_delete {
        debug!("{}", msg::left_to_delete(&gone.id));
        return;
    }
    info!("{line}");
    let snapshot_id = gone.id.clone();
    let recorded = |gone| ctx.record.deleted(instance_id, gone);
    let change = Change::DeleteSnapshot(&snapshot_id);
    let answer = match gate::send(ctx, ec2, &change, &snapshot_id).await {
        gate::Sent::Answered(answer) => answer,
        // A dry run: recorded as the real run's deletion would be.
        gate::Sent::Dry => return recorded(gone),
        // Abandoned at a signal: whether it was deleted is not known, and it is no error.
        gate::Sent::Interrupted(_) => return,
    };
    match answer {
        Ok(_) => recorded(gone),
        Err(e) if e.is("InvalidSnapshot.InUse") && ctx.cfg.ignore_in_use => warn!(
            "{}",
            msg::delete_in_use_ignored(&snapshot_id, &e.to_string())
        ),
        Err(e) if e.is("InvalidSnapshot.NotFound") => {
            warn!("{}", msg::already_deleted(&snapshot_id))
        }
        Err(e) => {
            let line = msg::delete_error(&snapshot_id, &e.to_string());
            let mut failure = Failure::aws(Level::Error, line, "DeleteSnapshot", &snapshot_id, &e);
            if ec2.region() != ctx.ec2.region() {
                failure = failure.in_region(ec2.region());
            }
            ctx.record.failed(instance_id, failure);
        }
    }
}

/// Reads what holds the region's snapshots beyond the rules into `snapshots`: their EBS locks
/// (DescribeLockedSnapshots) and the AMIs that use them (DescribeImages): what retention, lock
/// renewal, `list` and the report go by. Refused or failing (an older emulator, a role without
/// the permission): a WARNING; a lock is then known by its `ec2snap:locked-until` tag only, and
/// an AMI's snapshot by the refusal of its deletion.
pub async fn read_holds(ec2: &Ec2, snapshots: &mut [Snapshot]) {
    if snapshots.is_empty() {
        return;
    }
    let (locks, images) = tokio::join!(ec2.locks(), ec2.image_snapshots());
    match images {
        Ok(images) => {
            for s in snapshots.iter_mut() {
                s.in_use_by = images.get(&s.id).cloned();
            }
        }
        Err(e) => warn!("{}", msg::images_unread(ec2.region(), &e.to_string())),
    }
    match locks {
        Ok(locks) => {
            for s in snapshots.iter_mut() {
                s.lock = match locks.get(&s.id) {
                    Some(l) => crate::model::LockInfo::Locked(l.clone()),
                    None => crate::model::LockInfo::Unlocked,
                };
            }
        }
        Err(e) => warn!("{}", msg::locks_unread(ec2.region(), &e.to_string())),
    }
}
