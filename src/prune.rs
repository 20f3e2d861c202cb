//! Applying retention to one instance's volumes: the decision comes from `retention`, the
//! deletions (or, in a dry run, their announcement) go out within the run's `--parallel` permits.

use crate::ctx::Ctx;
use crate::messages as msg;
use crate::model::{Disk, Instance, Snapshot};
use crate::outcome::Outcome;
use crate::retention;
use crate::snapshot::Done;
use chrono::Utc;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tracing::{error, info, warn};

/// Retention for one instance's volumes, in device order.
pub async fn prune(
    ctx: &Arc<Ctx>,
    instance: &Instance,
    mut snapshots: HashMap<String, Vec<Snapshot>>,
    done: &Done,
    outcome: &mut Outcome,
) {
    let now = Utc::now();
    let protected: HashSet<String> = done.created.values().map(|s| s.id.clone()).collect();
    let mut doomed: Vec<(String, Disk)> = Vec::new();
    for disk in &instance.disks {
        let listed = snapshots.remove(&disk.volume_id).unwrap_or_default();
        let candidates = retention::candidates(
            listed,
            done.created.get(&disk.volume_id),
            done.failed.contains(&disk.volume_id),
            &ctx.cfg.snap_filter,
        );
        let Some(candidates) = candidates else {
            warn!(
                "Keeping the old snapshots of {}({}): its new snapshot failed",
                disk.volume_id, disk.device
            );
            continue;
        };
        let gone = retention::to_delete(&candidates, ctx.cfg.retention, now, &protected);
        doomed.extend(gone.into_iter().map(|s| (s.id.clone(), disk.clone())));
    }
    let failures = ctx
        .calls(doomed, |ctx, (id, disk): (String, Disk)| async move {
            delete(&ctx, &id, &disk).await
        })
        .await;
    outcome.deletion_errors += failures.into_iter().filter(|failed| *failed).count();
}

/// Deletes one snapshot (or, in a dry run, announces it); true when that counts as an error.
async fn delete(ctx: &Ctx, snapshot_id: &str, disk: &Disk) -> bool {
    info!("{}", msg::deleting(snapshot_id, disk));
    if ctx.cfg.dry_run {
        return false;
    }
    let answer = match ctx
        .shutdown
        .race(ctx.ec2.delete_snapshot(snapshot_id))
        .await
    {
        Ok(answer) => answer,
        // Abandoned at a signal: whether it was deleted is not known, and it is no error.
        Err(_) => return false,
    };
    match answer {
        Ok(()) => false,
        Err(e) if e.is("InvalidSnapshot.InUse") && ctx.cfg.ignore_in_use => {
            warn!(
                "{}",
                msg::delete_in_use_ignored(snapshot_id, &e.to_string())
            );
            false
        }
        Err(e) if e.is("InvalidSnapshot.NotFound") => {
            warn!("Snapshot {snapshot_id} was already deleted");
            false
        }
        Err(e) => {
            error!("{}", msg::delete_error(snapshot_id, &e.to_string()));
            true
        }
    }
}
