//! Disaster-recovery copies, applied: in each `--copy-to` region, copy each processed volume's
//! newest completed snapshot that has no copy there yet (the catch-up), with `--wait` each new
//! snapshot as soon as it is completed, then prune (and `--copy-lock`) the copies there by their
//! own rule. Decisions come from `copies`.

use crate::act::ctx::Ctx;
use crate::act::gate::{self, Sent};
use crate::aws::{AwsError, Change, Ec2};
use crate::config::CopyPolicy;
use crate::copies::policy as copies;
use crate::model::{Disk, Instance, Snapshot, SnapshotState};
use crate::output::log::Level;
use crate::output::messages as msg;
use crate::output::record::{CopyEntry, DeletedEntry, Failure, Kind};
use crate::retention::apply::{self as prune, Lock};
use crate::retention::lock;
use crate::snapshot::plan;
use crate::tags::{SOURCE_REGION_TAG, SOURCE_SNAPSHOT_TAG, SOURCE_VOLUME_TAG};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tracing::{info, warn};

/// A limit of concurrent copies (not throttling, which the SDK retries): the copy waits for a
/// later run, which catches up.
fn is_copy_limit(e: &AwsError) -> bool {
    e.code
        .as_deref()
        .is_some_and(|c| c.ends_with("LimitExceeded") && c != "RequestLimitExceeded")
}

/// What the run knows of its copies: the processed volumes, and in each destination region the
/// copies found there and those made since. With `--wait`, each instance copies its new
/// snapshots and prunes its volumes' copies itself (`after_wait`); else `replicate` prunes them
/// all at once.
pub struct Replicas {
    policy: CopyPolicy,
    at: Volumes,
    regions: Vec<Region>,
}

/// One destination region.
struct Region {
    dest: Arc<Ec2>,
    /// The copies of this region's snapshots found there; `None` when they could not be listed
    /// (nothing is copied there by the catch-up, nothing pruned).
    existing: Option<Vec<Snapshot>>,
    /// The copies this run made (or planned) there, each with its source volume's disk: counted
    /// among the newest and never deleted by this run.
    made: Mutex<Vec<(Snapshot, Disk)>>,
}

/// The processed volumes, each with the instance it is recorded under, and their listed
/// snapshots.
struct Volumes {
    disks: Vec<Disk>,
    owner: HashMap<String, String>,
    listed: HashMap<String, Vec<Snapshot>>,
}

impl Volumes {
    fn owner(&self, volume_id: &str) -> Option<&str> {
        self.owner.get(volume_id).map(String::as_str)
    }
}

/// The catch-up in every destination region, one after the other: each volume's newest
/// completed snapshot without a copy there is copied; then, unless each instance does it after
/// its wait (`--wait`), the copies are pruned.
pub async fn replicate(
    ctx: &Arc<Ctx>,
    policy: &CopyPolicy,
    processed: &[Instance],
    listed: HashMap<String, Vec<Snapshot>>,
) -> Arc<Replicas> {
    // Each volume once, in instance then device order; its copies are recorded under the
    // instance that has it.
    let mut owner: HashMap<String, String> = HashMap::new();
    let mut disks: Vec<Disk> = Vec::new();
    for instance in processed {
        ctx.record.instance(instance, ctx.cfg.cold());
        for d in &instance.disks {
            if !owner.contains_key(&d.volume_id) {
                owner.insert(d.volume_id.clone(), instance.id.clone());
                disks.push(d.clone());
            }
        }
    }
    let mut replicas = Replicas {
        policy: policy.clone(),
        at: Volumes {
            disks,
            owner,
            listed,
        },
        regions: Vec::new(),
    };
    for region in &policy.regions {
        if ctx.shutdown.is_set() {
            break;
        }
        let dest = Arc::new(ctx.ec2.in_region(region));
        let existing = existing_copies(ctx, &dest).await;
        let made = match &existing {
            Some(existing) => catch_up(ctx, &replicas, &dest, existing).await,
            None => Vec::new(),
        };
        let region = Region {
            dest,
            existing,
            made: Mutex::new(made),
        };
        if !per_instance(ctx) {
            let disks: Vec<&Disk> = replicas.at.disks.iter().collect();
            prune_region(ctx, &replicas, &region, &disks, &HashMap::new()).await;
        }
        replicas.regions.push(region);
    }
    Arc::new(replicas)
}

/// `--wait`: each instance copies its new snapshots once completed and prunes its copies then.
fn per_instance(ctx: &Ctx) -> bool {
    ctx.cfg.wait.is_some()
}

/// The copies of this region's snapshots in `dest`; a failure to list them is recorded.
async fn existing_copies(ctx: &Arc<Ctx>, dest: &Ec2) -> Option<Vec<Snapshot>> {
    let all = match ctx
        .shutdown
        .race(dest.snapshots_tagged(SOURCE_SNAPSHOT_TAG))
        .await
    {
        Ok(Ok(all)) => all,
        Ok(Err(e)) => {
            let region = dest.region();
            let mut failure = Failure::other(
                Level::Error,
                format!("{e:#}"),
                "DescribeSnapshots",
                region,
                Kind::Aws,
                format!("{e:#}"),
            )
            .in_region(region);
            failure.entry.code = e
                .chain()
                .find_map(|c| c.downcast_ref::<AwsError>())
                .and_then(|a| a.code.clone());
            ctx.record.failed(None, failure);
            return None;
        }
        Err(_) => return None,
    };
    // Copies of this region's snapshots; matched by their tags, never by VolumeId, which AWS
    // sets to vol-ffffffff on a copy.
    let source_region = ctx.ec2.region();
    let mut ours: Vec<Snapshot> = all
        .into_iter()
        .filter(|c| c.tags.get(SOURCE_REGION_TAG).map(String::as_str) == Some(source_region))
        .collect();
    crate::retention::apply::read_holds(dest, &mut ours).await;
    Some(ours)
}

/// The catch-up in one region: the copies made (or planned).
async fn catch_up(
    ctx: &Arc<Ctx>,
    replicas: &Replicas,
    dest: &Arc<Ec2>,
    existing: &[Snapshot],
) -> Vec<(Snapshot, Disk)> {
    let copied = copies::copied_sources(existing);
    let empty = Vec::new();
    let at = &replicas.at;
    let jobs: Vec<(Snapshot, Disk)> = at
        .disks
        .iter()
        .filter_map(|d| {
            let listed = at.listed.get(&d.volume_id).unwrap_or(&empty);
            let source = copies::to_copy(listed, &copied)?;
            Some((source.clone(), d.clone()))
        })
        .collect();
    make_copies(ctx, &replicas.policy, dest, jobs, at, false).await
}

/// `--wait`: copies snapshots this run made, now completed (or, in a dry run, planned), to every
/// destination region, each region's copies in parallel.
pub async fn copy_new(ctx: Arc<Ctx>, replicas: Arc<Replicas>, sources: Vec<(Snapshot, Disk)>) {
    for region in &replicas.regions {
        if ctx.shutdown.is_set() {
            return;
        }
        let made = make_copies(
            &ctx,
            &replicas.policy,
            &region.dest,
            sources.clone(),
            &replicas.at,
            true,
        )
        .await;
        if let Ok(mut all) = region.made.lock() {
            all.extend(made);
        }
    }
}

/// `--wait`: the copies' retention for one instance's volumes, once its new snapshots are
/// copied. `newest`: per volume, the new snapshot that was copied (or planned), which is now its
/// newest completed one.
pub async fn after_wait(
    ctx: &Arc<Ctx>,
    replicas: &Replicas,
    instance: &Instance,
    newest: &HashMap<String, String>,
) {
    let disks: Vec<&Disk> = replicas
        .at
        .disks
        .iter()
        .filter(|d| replicas.at.owner(&d.volume_id) == Some(instance.id.as_str()))
        .collect();
    for region in &replicas.regions {
        prune_region(ctx, replicas, region, &disks, newest).await;
    }
}

/// The copies made (or, in a dry run, planned): (copy, the source volume's disk). `fresh`: the
/// sources are this run's own snapshots, whose recovery point lag (snapshot call to copy call)
/// is recorded.
async fn make_copies(
    ctx: &Arc<Ctx>,
    policy: &CopyPolicy,
    dest: &Arc<Ec2>,
    jobs: Vec<(Snapshot, Disk)>,
    at: &Volumes,
    fresh: bool,
) -> Vec<(Snapshot, Disk)> {
    let region = dest.region().to_string();
    let source_region = ctx.ec2.region().to_string();
    let copy_of = |source: &Snapshot, id: String| Snapshot {
        id,
        volume_id: source.volume_id.clone(),
        start_time: crate::clock::now(),
        state: SnapshotState::Pending,
        tags: copies::copy_tags(source, &source_region),
        description: source.description.clone(),
        progress: None,
        tier: None,
        size_bytes: None,
        lock: Default::default(),
        in_use_by: None,
    };
    let recorded = |copy: Option<&str>,
                    source: &Snapshot,
                    disk: &Disk,
                    called: Option<chrono::DateTime<chrono::Utc>>,
                    deferred: Option<String>| {
        if let Some(instance_id) = at.owner(&disk.volume_id) {
            let lag = |at: chrono::DateTime<chrono::Utc>| {
                u64::try_from((at - source.start_time).num_milliseconds()).unwrap_or(0)
            };
            let entry = CopyEntry {
                id: copy.map(String::from),
                source: source.id.clone(),
                volume: disk.volume_id.clone(),
                device: disk.device.clone(),
                region: region.clone(),
                recovery_point_lag_ms: called.filter(|_| fresh).map(lag),
                deferred,
            };
            ctx.record.copy(instance_id, entry);
        }
    };
    let (dest_call, kms) = (Arc::clone(dest), policy.kms_key.clone());
    let results = ctx
        .calls(jobs, move |ctx, (source, disk): (Snapshot, Disk)| {
            let (dest, kms) = (Arc::clone(&dest_call), kms.clone());
            async move {
                let tags = copies::copy_tags(&source, ctx.ec2.region());
                let called = crate::clock::now();
                let write = Change::CopySnapshot {
                    source_region: ctx.ec2.region(),
                    source_id: &source.id,
                    description: &source.description,
                    tags: &tags,
                    kms_key: kms.as_deref(),
                    encrypt: false,
                };
                // A dry run's planned snapshot does not exist: nothing to copy, nor to check a
                // permission on.
                let sent = if plan::is_planned(&source.id) {
                    Sent::Dry
                } else {
                    gate::send(&ctx, &dest, &write, &source.id).await
                };
                (source, disk, called, sent)
            }
        })
        .await;
    let mut made = Vec::new();
    for (source, disk, called, sent) in results {
        let result = match sent {
            Sent::Dry => {
                info!("{}", msg::copying(&source.id, &disk, &region, None));
                recorded(None, &source, &disk, None, None);
                let planned = plan::planned_copy_id(&source.id);
                made.push((copy_of(&source, planned), disk));
                continue;
            }
            Sent::Answered(answer) => Ok(answer.and_then(crate::aws::Answer::id)),
            Sent::Interrupted(sig) => Err(sig),
        };
        match result {
            Ok(Ok(id)) => {
                info!("{}", msg::copying(&source.id, &disk, &region, Some(&id)));
                recorded(Some(&id), &source, &disk, Some(called), None);
                made.push((copy_of(&source, id), disk));
            }
            Ok(Err(e)) if is_copy_limit(&e) => {
                warn!(
                    "{}",
                    msg::copy_deferred(&source.id, &region, &e.to_string())
                );
                recorded(None, &source, &disk, None, Some(e.to_string()));
            }
            Ok(Err(e)) => {
                let line = msg::copy_failed(&source.id, &region, &e.to_string());
                let failure = Failure::aws(Level::Error, line, "CopySnapshot", &source.id, &e)
                    .in_region(&region);
                ctx.record.failed(at.owner(&disk.volume_id), failure);
            }
            // A signal while the call was in flight: the copy may still have been made. Said, and
            // in the report (the next run's catch-up finds it by its tags).
            Err(sig) => {
                let line = msg::copy_interrupted(&source.id, &region, sig.name());
                let failure = Failure::other(
                    Level::Critical,
                    line,
                    "CopySnapshot",
                    &source.id,
                    Kind::Interrupted,
                    "interrupted by a signal (the copy may still have been made)".to_string(),
                )
                .in_region(&region);
                ctx.record.failed(at.owner(&disk.volume_id), failure);
            }
        }
    }
    made
}

/// Retention (and `--copy-lock`) of the copies of `disks` in one region, when its copies could
/// be listed. `newest`: per volume, a snapshot made this run that is now its newest completed one.
async fn prune_region(
    ctx: &Arc<Ctx>,
    replicas: &Replicas,
    region: &Region,
    disks: &[&Disk],
    newest: &HashMap<String, String>,
) {
    if !replicas.policy.rule.is_enabled() || ctx.shutdown.is_set() {
        return;
    }
    let Some(existing) = &region.existing else {
        return;
    };
    let made = region.made.lock().map(|m| m.clone()).unwrap_or_default();
    prune_copies(ctx, replicas, region, disks, existing, made, newest).await;
}

/// Retention of the copies in one region, per source volume; the copies it keeps are locked
/// first (`--copy-lock`).
async fn prune_copies(
    ctx: &Arc<Ctx>,
    replicas: &Replicas,
    region: &Region,
    disks: &[&Disk],
    existing: &[Snapshot],
    made: Vec<(Snapshot, Disk)>,
    newest: &HashMap<String, String>,
) {
    let (policy, at, dest) = (&replicas.policy, &replicas.at, &region.dest);
    let now = crate::clock::now();
    let protected: HashSet<String> = made.iter().map(|(c, _)| c.id.clone()).collect();
    let mut by_volume: HashMap<String, Vec<Snapshot>> = HashMap::new();
    for c in existing
        .iter()
        .cloned()
        .chain(made.into_iter().map(|(c, _)| c))
    {
        if let Some(vol) = c.tags.get(SOURCE_VOLUME_TAG) {
            by_volume.entry(vol.clone()).or_default().push(c);
        }
    }
    let mut doomed: Vec<(Snapshot, Disk, Option<String>)> = Vec::new();
    let mut to_lock: Vec<(Snapshot, Lock, Option<String>)> = Vec::new();
    for disk in disks {
        let Some(group) = by_volume.get(&disk.volume_id) else {
            continue;
        };
        let newest_source = newest.get(&disk.volume_id).map(String::as_str).or_else(|| {
            at.listed
                .get(&disk.volume_id)
                .and_then(|l| copies::newest_completed(l))
                .map(|s| s.id.as_str())
        });
        let decision = copies::decide(group, &policy.rule, now, &protected, newest_source);
        let owner = at.owner(&disk.volume_id).map(String::from);
        if let Some(lock_policy) = policy.lock {
            let kept = decision.keep.iter().map(|(c, why)| (*c, why.as_slice()));
            to_lock.extend(
                lock::to_lock(kept, &policy.rule, &lock_policy, now)
                    .into_iter()
                    .map(|(c, days)| {
                        let lock = Lock {
                            days,
                            policy: lock_policy,
                            now,
                            planned: plan::is_planned(&c.id),
                            stand_in: None,
                        };
                        (c.clone(), lock, owner.clone())
                    }),
            );
        }
        doomed.extend(
            decision
                .delete
                .into_iter()
                .map(|c| (c.clone(), (*disk).clone(), owner.clone())),
        );
    }
    let locking = Arc::clone(dest);
    ctx.calls(
        to_lock,
        move |ctx, (copy, lock, owner): (Snapshot, Lock, Option<String>)| {
            let dest = Arc::clone(&locking);
            async move {
                let shown = format!("{} in {}", copy.id, dest.region());
                let owner = owner.unwrap_or_default();
                prune::lock_one(&ctx, &dest, &owner, &copy, shown, lock).await;
            }
        },
    )
    .await;
    let (dest, reason) = (Arc::clone(dest), policy.rule.deletion_reason());
    ctx.calls(
        doomed,
        move |ctx, (copy, disk, owner): (Snapshot, Disk, Option<String>)| {
            let dest = Arc::clone(&dest);
            async move {
                let line = msg::deleting_copy(&copy.id, &disk, dest.region());
                let gone = DeletedEntry {
                    id: copy.id.clone(),
                    volume: disk.volume_id.clone(),
                    start_time: copy.start_time.to_rfc3339(),
                    reason,
                    region: Some(dest.region().to_string()),
                };
                prune::delete_snapshot(&ctx, &dest, owner.as_deref(), line, gone).await;
            }
        },
    )
    .await;
}
