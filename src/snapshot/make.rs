//! Making one instance's snapshots (or, in a dry run, announcing them): one call per volume within
//! the run's `--parallel` permits, or one set (`--consistent`); a call is abandoned at a signal or
//! past a deadline.

use crate::act::ctx::Ctx;
use crate::act::gate::{self, Sent};
use crate::aws::{Answer, AwsError, Change};
use crate::model::{Disk, Instance, Snapshot, SnapshotKind, Tags};
use crate::output::log::Level;
use crate::output::messages as msg;
use crate::output::record::{Failure, Kind, SnapshotEntry};
use crate::snapshot::plan::{self, Plan, SetRequest, SnapshotRequest};
use crate::snapshot::Done;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{info, warn};

/// Why a CreateSnapshot(s) call did not give a snapshot id.
#[derive(Debug)]
enum CallError {
    Aws(AwsError),
    /// A signal came while the call was in flight.
    Interrupted,
    /// No answer before the deadline (cold mode).
    Abandoned(Duration),
}

impl CallError {
    /// The failure as the record keeps it, with its CRITICAL line: the AWS error, or a timeout or
    /// a signal saying what happened.
    fn recorded(&self, line: String, action: &str, resource: &str) -> Failure {
        match self {
            CallError::Aws(e) => Failure::aws(Level::Critical, line, action, resource, e),
            CallError::Interrupted => Failure::other(
                Level::Critical,
                line,
                action,
                resource,
                Kind::Interrupted,
                self.to_string(),
            ),
            CallError::Abandoned(_) => Failure::other(
                Level::Critical,
                line,
                action,
                resource,
                Kind::Timeout,
                self.to_string(),
            ),
        }
    }
}

/// The report's line for one snapshot.
fn entry(id: Option<&str>, disk: &Disk, description: &str, state: &str) -> SnapshotEntry {
    SnapshotEntry {
        id: id.map(String::from),
        volume: disk.volume_id.clone(),
        device: disk.device.clone(),
        description: description.to_string(),
        state: state.to_string(),
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Aws(e) => e.fmt(f),
            CallError::Interrupted => f.write_str(
                "interrupted by a signal (the snapshot may still have been made)",
            ),
            CallError::Abandoned(after) => write!(
                f,
                "no answer within {} s of the stop; abandoned so that the instance is started again (the snapshot may still have been made)",
                after.as_secs()
            ),
        }
    }
}

/// Makes what the plan says.
pub async fn make(
    ctx: &Arc<Ctx>,
    kind: SnapshotKind,
    instance: &Instance,
    plan: &Plan,
    limit: Option<(Instant, Duration)>,
    done: &mut Done,
) {
    match plan {
        Plan::Volumes(requests) => make_all(ctx, kind, instance, requests, limit, done).await,
        Plan::Set(set) => make_set(ctx, kind, instance, set, limit, done).await,
    }
}

/// Makes each planned snapshot, or announces it in a dry run. With `limit` (cold mode), a call
/// still unanswered then is abandoned, so that the instance is started again in bounded time.
async fn make_all(
    ctx: &Arc<Ctx>,
    kind: SnapshotKind,
    instance: &Instance,
    requests: &[SnapshotRequest],
    limit: Option<(Instant, Duration)>,
    done: &mut Done,
) {
    for req in requests.iter().filter(|r| !r.dropped_tags.is_empty()) {
        warn!("{}", msg::tags_dropped(&req.disk, &req.dropped_tags));
    }
    let instance_id = instance.id.clone();
    let results = ctx
        .calls(requests.to_vec(), move |ctx, req: SnapshotRequest| {
            let instance_id = instance_id.clone();
            async move {
                let result = create(&ctx, &req, limit).await;
                match &result {
                    Ok(Some(id)) => info!("{}", msg::snapshot_made(kind, &req.disk, Some(id))),
                    // A dry run: said below, in the order of the requests.
                    Ok(None) => {}
                    Err(e) => {
                        let line = msg::snapshot_failed(kind, &req.disk, &e.to_string());
                        let failure = e.recorded(line, "CreateSnapshot", &req.disk.volume_id);
                        ctx.record.failed(Some(&instance_id), failure);
                    }
                }
                (req, result)
            }
        })
        .await;
    for (req, result) in results {
        match result {
            Ok(None) => {
                info!("{}", msg::snapshot_made(kind, &req.disk, None));
                let planned = entry(None, &req.disk, &req.description, "planned");
                ctx.record.snapshot(&instance.id, planned);
                // Counted among the newest as the real one would be, so that the dry run lists
                // exactly the deletions of the real run.
                let id = plan::planned_id(&req.disk.volume_id);
                done.created
                    .insert(req.disk.volume_id.clone(), just_made(id, &req));
            }
            Ok(Some(id)) => {
                let made = entry(Some(&id), &req.disk, &req.description, "pending");
                ctx.record.snapshot(&instance.id, made);
                done.created
                    .insert(req.disk.volume_id.clone(), just_made(id, &req));
            }
            Err(_) => {
                let failed = entry(None, &req.disk, &req.description, "failed");
                ctx.record.snapshot(&instance.id, failed);
                done.failed.insert(req.disk.volume_id);
            }
        }
    }
}

/// One CreateSnapshots call for every member, then a line per member and one for the set. In a
/// dry run, the same lines without ids.
async fn make_set(
    ctx: &Ctx,
    kind: SnapshotKind,
    instance: &Instance,
    set: &SetRequest,
    limit: Option<(Instant, Duration)>,
    done: &mut Done,
) {
    let member_tags = |volume_id: &str| plan::member_tags(ctx.volume_tags.get(volume_id), set);
    let change = Change::CreateSnapshots {
        instance_id: &instance.id,
        exclude_boot: ctx.cfg.no_root_device,
        description: &set.description,
        tags: &set.tags,
    };
    let sent = bounded(
        ctx,
        gate::send_through(ctx, &ctx.ec2, &change, &instance.id),
        limit,
    )
    .await;
    let result = match sent {
        Ok(Sent::Dry) => {
            for disk in &set.members {
                info!("{}", msg::snapshot_made(kind, disk, None));
                let planned = entry(None, disk, &set.description, "planned");
                ctx.record.snapshot(&instance.id, planned);
                let id = plan::planned_id(&disk.volume_id);
                let planned = member(id, &disk.volume_id, member_tags(&disk.volume_id));
                done.created.insert(disk.volume_id.clone(), planned);
            }
            info!(
                "{}",
                msg::set_made(kind, None, &instance.id, set.members.len())
            );
            done.set = Some(set.set_id.clone());
            return;
        }
        Ok(Sent::Answered(answer)) => answer.map(Answer::set).map_err(CallError::Aws),
        Ok(Sent::Interrupted(_)) => Err(CallError::Interrupted),
        Err(e) => Err(e),
    };
    match result {
        Ok(made) => {
            for (snapshot_id, volume_id) in &made {
                let device = instance.device_of(volume_id).unwrap_or("?").to_string();
                let disk = Disk {
                    volume_id: volume_id.clone(),
                    device,
                };
                info!("{}", msg::snapshot_made(kind, &disk, Some(snapshot_id)));
                let made = entry(Some(snapshot_id), &disk, &set.description, "pending");
                ctx.record.snapshot(&instance.id, made);
                let snap = member(snapshot_id.clone(), volume_id, member_tags(volume_id));
                done.created.insert(volume_id.clone(), snap);
            }
            info!(
                "{}",
                msg::set_made(kind, Some(&set.set_id), &instance.id, made.len())
            );
            done.set = Some(set.set_id.clone());
        }
        Err(e) => {
            let id = &instance.id;
            let line = msg::set_failed(kind, id, &e.to_string());
            ctx.record
                .failed(Some(id), e.recorded(line, "CreateSnapshots", id));
            for disk in &set.members {
                let failed = entry(None, disk, &set.description, "failed");
                ctx.record.snapshot(id, failed);
            }
            done.set_failed = true;
            done.failed
                .extend(set.members.iter().map(|d| d.volume_id.clone()));
        }
    }
}

/// One CreateSnapshot call, raced with the signal and the deadline: the new snapshot's id,
/// `None` in a dry run.
async fn create(
    ctx: &Ctx,
    req: &SnapshotRequest,
    limit: Option<(Instant, Duration)>,
) -> Result<Option<String>, CallError> {
    let change = Change::CreateSnapshot {
        volume_id: &req.disk.volume_id,
        description: &req.description,
        tags: &req.tags,
    };
    let sent = gate::send_through(ctx, &ctx.ec2, &change, &req.disk.volume_id);
    match bounded(ctx, sent, limit).await? {
        Sent::Answered(answer) => answer
            .and_then(Answer::id)
            .map(Some)
            .map_err(CallError::Aws),
        Sent::Dry => Ok(None),
        Sent::Interrupted(_) => Err(CallError::Interrupted),
    }
}

/// A call raced with the signal and, when given, the deadline.
async fn bounded<T>(
    ctx: &Ctx,
    call: impl std::future::Future<Output = T>,
    limit: Option<(Instant, Duration)>,
) -> Result<T, CallError> {
    let deadline = async {
        match limit {
            Some((at, _)) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = call => Ok(r),
        _ = ctx.shutdown.wait() => Err(CallError::Interrupted),
        _ = deadline => Err(CallError::Abandoned(limit.map(|(_, d)| d).unwrap_or_default())),
    }
}

/// A member of a set this run has just made (or would make), still pending.
fn member(id: String, volume_id: &str, tags: Tags) -> Snapshot {
    plan::pending(id, volume_id, tags, crate::clock::now())
}

/// A snapshot this run has just made (or would make): the newest of its volume, still pending.
fn just_made(id: String, req: &SnapshotRequest) -> Snapshot {
    member(id, &req.disk.volume_id, req.tags.clone())
}
