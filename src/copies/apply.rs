//! Disaster-recovery copies, applied: in each `--copy-to` region, copy each processed volume's
//! newest completed snapshot that has no copy there yet, then prune the copies there by their own
//! rule. Decisions come from `copies`.

use crate::aws::{AwsError, Ec2, Write};
use crate::config::CopyPolicy;
use crate::copies::policy::{
    self as copies, SOURCE_REGION_TAG, SOURCE_SNAPSHOT_TAG, SOURCE_VOLUME_TAG,
};
use crate::model::{Disk, Instance, Snapshot, SnapshotState};
use crate::output::exit::Outcome;
use crate::output::messages as msg;
use crate::run::ctx::Ctx;
use crate::run::permissions;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tracing::{error, info, warn};

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
    outcome: &mut Outcome,
) {
    // Each volume once, in instance then device order.
    let mut seen = HashSet::new();
    let disks: Vec<&Disk> = processed
        .iter()
        .flat_map(|i| i.disks.iter())
        .filter(|d| seen.insert(d.volume_id.clone()))
        .collect();
    for region in &policy.regions {
        if ctx.shutdown.is_set() {
            return;
        }
        let dest = Arc::new(ctx.ec2.in_region(region));
        to_region(ctx, policy, &dest, &disks, listed, outcome).await;
    }
}

async fn to_region(
    ctx: &Arc<Ctx>,
    policy: &CopyPolicy,
    dest: &Arc<Ec2>,
    disks: &[&Disk],
    listed: &HashMap<String, Vec<Snapshot>>,
    outcome: &mut Outcome,
) {
    let source_region = ctx.ec2.region().to_string();
    let existing = match ctx
        .shutdown
        .race(dest.snapshots_tagged(SOURCE_SNAPSHOT_TAG))
        .await
    {
        Ok(Ok(all)) => all,
        Ok(Err(e)) => {
            error!("{e:#}");
            outcome.snapshot_errors += 1;
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
    let jobs: Vec<(Snapshot, Disk)> = disks
        .iter()
        .filter_map(|d| {
            let source = copies::to_copy(listed.get(&d.volume_id).unwrap_or(&empty), &copied)?;
            Some((source.clone(), (*d).clone()))
        })
        .collect();
    let made = make_copies(ctx, policy, dest, jobs, outcome).await;
    if policy.rule.is_enabled() && !ctx.shutdown.is_set() {
        prune_copies(ctx, policy, dest, disks, listed, existing, made, outcome).await;
    }
}

/// The copies made (or, in a dry run, planned): (copy, the source volume's disk).
async fn make_copies(
    ctx: &Arc<Ctx>,
    policy: &CopyPolicy,
    dest: &Arc<Ec2>,
    jobs: Vec<(Snapshot, Disk)>,
    outcome: &mut Outcome,
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
    };
    if ctx.cfg.dry_run {
        let mut planned_copies = Vec::new();
        for (source, disk) in jobs {
            info!("{}", msg::copying(&source.id, &disk, &region, None));
            if ctx.cfg.permission_check {
                let tags = copies::copy_tags(&source, &source_region);
                let write = Write::CopySnapshot {
                    source_region: &source_region,
                    source_id: &source.id,
                    description: &source.description,
                    tags: &tags,
                    kms_key: policy.kms_key.as_deref(),
                };
                let refused = permissions::check(ctx, dest, &write, &source.id).await;
                permissions::count(refused, outcome, false);
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
                made.push((copy_of(&source, id), disk));
            }
            Ok(Err(e)) if is_copy_limit(&e) => {
                warn!(
                    "{}",
                    msg::copy_deferred(&source.id, &region, &e.to_string())
                );
            }
            Ok(Err(e)) => {
                error!("{}", msg::copy_failed(&source.id, &region, &e.to_string()));
                ctx.journal.error(None, "CopySnapshot", &source.id, &e);
                outcome.snapshot_errors += 1;
            }
            Err(_) => {}
        }
    }
    made
}

/// Retention of the copies in one region, per source volume.
#[allow(clippy::too_many_arguments)]
async fn prune_copies(
    ctx: &Arc<Ctx>,
    policy: &CopyPolicy,
    dest: &Arc<Ec2>,
    disks: &[&Disk],
    listed: &HashMap<String, Vec<Snapshot>>,
    existing: Vec<Snapshot>,
    made: Vec<(Snapshot, Disk)>,
    outcome: &mut Outcome,
) {
    let now = crate::clock::now();
    let protected: HashSet<String> = made.iter().map(|(c, _)| c.id.clone()).collect();
    let mut by_volume: HashMap<String, Vec<Snapshot>> = HashMap::new();
    for c in existing.into_iter().chain(made.into_iter().map(|(c, _)| c)) {
        if let Some(vol) = c.tags.get(SOURCE_VOLUME_TAG) {
            by_volume.entry(vol.clone()).or_default().push(c);
        }
    }
    let mut doomed: Vec<(String, Disk)> = Vec::new();
    for disk in disks {
        let Some(group) = by_volume.get(&disk.volume_id) else {
            continue;
        };
        let newest = listed
            .get(&disk.volume_id)
            .and_then(|l| copies::newest_completed(l))
            .map(|s| s.id.as_str());
        let gone = copies::copies_to_delete(group, policy.rule, now, &protected, newest);
        doomed.extend(gone.into_iter().map(|c| (c.id.clone(), (*disk).clone())));
    }
    let dest = Arc::clone(dest);
    let failures = ctx
        .calls(doomed, move |ctx, (id, disk): (String, Disk)| {
            let dest = Arc::clone(&dest);
            async move {
                info!("{}", msg::deleting_copy(&id, &disk, dest.region()));
                if ctx.cfg.dry_run {
                    let write = Write::DeleteSnapshot(&id);
                    return ctx.cfg.permission_check
                        && permissions::check(&ctx, &dest, &write, &id).await;
                }
                match ctx.shutdown.race(dest.delete_snapshot(&id)).await {
                    Ok(Ok(())) | Err(_) => false,
                    Ok(Err(e)) if e.is("InvalidSnapshot.NotFound") => false,
                    Ok(Err(e)) => {
                        error!("{}", msg::delete_error(&id, &e.to_string()));
                        ctx.journal.error(None, "DeleteSnapshot", &id, &e);
                        true
                    }
                }
            }
        })
        .await;
    outcome.deletion_errors += failures.into_iter().filter(|f| *f).count();
}
