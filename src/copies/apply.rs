//! Disaster-recovery copies, applied: in each `--copy-to` region, copy each processed volume's
//! newest completed snapshot that has no copy there yet, then prune the copies there by their own
//! rule. Decisions come from `copies`.

use crate::aws::{AwsError, Change, Ec2};
use crate::config::CopyPolicy;
use crate::copies::policy::{
    self as copies, SOURCE_REGION_TAG, SOURCE_SNAPSHOT_TAG, SOURCE_VOLUME_TAG,
};
use crate::model::{Disk, Instance, Snapshot, SnapshotState};
use crate::output::log::Level;
use crate::output::messages as msg;
use crate::output::record::{CopyEntry, DeletedEntry, Failure, Kind};
use crate::retention::apply as prune;
use crate::run::ctx::Ctx;
use crate::run::permissions;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tracing::{info, warn};

/// A limit of concurrent copies (not throttling, which the SDK retries): the copy waits for a
/// later run, which catches up.
fn is_copy_limit(e: &AwsError) -> bool {
    e.code
        .as_deref()
        .is_some_and(|c| c.ends_with("LimitExceeded") && c != "RequestLimitExceeded")
}

/// Copies and prunes in every destination region, one after the other.
pub async fn replicate(
    ctx: &Arc<Ctx>,
    policy: &CopyPolicy,
    processed: &[Instance],
    listed: &HashMap<String, Vec<Snapshot>>,
) {
    // Each volume once, in instance then device order; its copies are recorded under the
    // instance that has it.
    let mut owner: HashMap<String, String> = HashMap::new();
    let mut disks: Vec<&Disk> = Vec::new();
    for instance in processed {
        ctx.record.instance(instance, ctx.cfg.cold());
        for d in &instance.disks {
            if !owner.contains_key(&d.volume_id) {
                owner.insert(d.volume_id.clone(), instance.id.clone());
                disks.push(d);
            }
        }
    }
    let at = Volumes {
        disks: &disks,
        owner: &owner,
        listed,
    };
    for region in &policy.regions {
        if ctx.shutdown.is_set() {
            return;
        }
        let dest = Arc::new(ctx.ec2.in_region(region));
        to_region(ctx, policy, &dest, &at).await;
    }
}

/// The processed volumes, each with the instance it is recorded under, and their listed
/// snapshots.
struct Volumes<'a> {
    disks: &'a [&'a Disk],
    owner: &'a HashMap<String, String>,
    listed: &'a HashMap<String, Vec<Snapshot>>,
}

impl Volumes<'_> {
    fn owner(&self, volume_id: &str) -> Option<&str> {
        self.owner.get(volume_id).map(String::as_str)
    }
}

async fn to_region(ctx: &Arc<Ctx>, policy: &CopyPolicy, dest: &Arc<Ec2>, at: &Volumes<'_>) {
    let source_region = ctx.ec2.region().to_string();
    let existing = match ctx
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
            return;
        }
        Err(_) => return,
    };
    // Copies of this region's snapshots; matched by their tags, never by VolumeId, which AWS
    // sets to vol-ffffffff on a copy.
    let existing: Vec<Snapshot> = existing
        .into_iter()
        .filter(|c| c.tags.get(SOURCE_REGION_TAG) == Some(&source_region))
        .collect();
    let copied: HashSet<String> = existing
        .iter()
        .filter_map(|c| c.tags.get(SOURCE_SNAPSHOT_TAG).cloned())
        .collect();
    let empty = Vec::new();
    let jobs: Vec<(Snapshot, Disk)> = at
        .disks
        .iter()
        .filter_map(|d| {
            let listed = at.listed.get(&d.volume_id).unwrap_or(&empty);
            let source = copies::to_copy(listed, &copied)?;
            Some((source.clone(), (*d).clone()))
        })
        .collect();
    let made = make_copies(ctx, policy, dest, jobs, at).await;
    if policy.rule.is_enabled() && !ctx.shutdown.is_set() {
        prune_copies(ctx, policy, dest, at, existing, made).await;
    }
}

/// The copies made (or, in a dry run, planned): (copy, the source volume's disk).
async fn make_copies(
    ctx: &Arc<Ctx>,
    policy: &CopyPolicy,
    dest: &Arc<Ec2>,
    jobs: Vec<(Snapshot, Disk)>,
    at: &Volumes<'_>,
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
    };
    let recorded = |copy: Option<&str>, source: &Snapshot, disk: &Disk| {
        if let Some(instance_id) = at.owner(&disk.volume_id) {
            let entry = CopyEntry {
                id: copy.map(String::from),
                source: source.id.clone(),
                volume: disk.volume_id.clone(),
                device: disk.device.clone(),
                region: region.clone(),
            };
            ctx.record.copy(instance_id, entry);
        }
    };
    if ctx.cfg.mode.is_dry() {
        let mut planned_copies = Vec::new();
        for (source, disk) in jobs {
            info!("{}", msg::copying(&source.id, &disk, &region, None));
            recorded(None, &source, &disk);
            if ctx.cfg.mode.checks_permissions() {
                let tags = copies::copy_tags(&source, &source_region);
                let write = Change::CopySnapshot {
                    source_region: &source_region,
                    source_id: &source.id,
                    description: &source.description,
                    tags: &tags,
                    kms_key: policy.kms_key.as_deref(),
                };
                permissions::check(ctx, dest, &write, &source.id).await;
            }
            let planned = format!("(planned copy of {})", source.id);
            planned_copies.push((copy_of(&source, planned), disk));
        }
        return planned_copies;
    }
    let (dest_call, kms) = (Arc::clone(dest), policy.kms_key.clone());
    let results = ctx
        .calls(jobs, move |ctx, (source, disk): (Snapshot, Disk)| {
            let (dest, kms) = (Arc::clone(&dest_call), kms.clone());
            async move {
                let tags = copies::copy_tags(&source, ctx.ec2.region());
                let call = dest.copy_snapshot(
                    ctx.ec2.region(),
                    &source.id,
                    &source.description,
                    &tags,
                    kms.as_deref(),
                );
                let result = ctx.shutdown.race(call).await;
                (source, disk, result)
            }
        })
        .await;
    let mut made = Vec::new();
    for (source, disk, result) in results {
        match result {
            Ok(Ok(id)) => {
                info!("{}", msg::copying(&source.id, &disk, &region, Some(&id)));
                recorded(Some(&id), &source, &disk);
                made.push((copy_of(&source, id), disk));
            }
            Ok(Err(e)) if is_copy_limit(&e) => {
                warn!(
                    "{}",
                    msg::copy_deferred(&source.id, &region, &e.to_string())
                );
            }
            Ok(Err(e)) => {
                let line = msg::copy_failed(&source.id, &region, &e.to_string());
                let failure = Failure::aws(Level::Error, line, "CopySnapshot", &source.id, &e)
                    .in_region(&region);
                ctx.record.failed(at.owner(&disk.volume_id), failure);
            }
            Err(_) => {}
        }
    }
    made
}

/// Retention of the copies in one region, per source volume.
async fn prune_copies(
    ctx: &Arc<Ctx>,
    policy: &CopyPolicy,
    dest: &Arc<Ec2>,
    at: &Volumes<'_>,
    existing: Vec<Snapshot>,
    made: Vec<(Snapshot, Disk)>,
) {
    let now = crate::clock::now();
    let protected: HashSet<String> = made.iter().map(|(c, _)| c.id.clone()).collect();
    let mut by_volume: HashMap<String, Vec<Snapshot>> = HashMap::new();
    for c in existing.into_iter().chain(made.into_iter().map(|(c, _)| c)) {
        if let Some(vol) = c.tags.get(SOURCE_VOLUME_TAG) {
            by_volume.entry(vol.clone()).or_default().push(c);
        }
    }
    let mut doomed: Vec<(Snapshot, Disk, Option<String>)> = Vec::new();
    for disk in at.disks {
        let Some(group) = by_volume.get(&disk.volume_id) else {
            continue;
        };
        let newest = at
            .listed
            .get(&disk.volume_id)
            .and_then(|l| copies::newest_completed(l))
            .map(|s| s.id.as_str());
        let gone = copies::copies_to_delete(group, policy.rule, now, &protected, newest);
        let owner = at.owner(&disk.volume_id).map(String::from);
        doomed.extend(
            gone.into_iter()
                .map(|c| (c.clone(), (*disk).clone(), owner.clone())),
        );
    }
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
