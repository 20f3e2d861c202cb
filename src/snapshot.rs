//! Making one instance's snapshots (or, in a dry run, announcing them), each call within the run's
//! `--parallel` permits, abandoned at a signal or past a deadline.

use crate::ctx::Ctx;
use crate::ec2::AwsError;
use crate::log::critical;
use crate::messages as msg;
use crate::model::{Snapshot, SnapshotKind, SnapshotState};
use crate::outcome::Outcome;
use crate::plan::SnapshotRequest;
use chrono::Utc;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{info, warn};

/// What one instance's snapshot step left for its retention step.
#[derive(Debug, Default)]
pub struct Done {
    /// Snapshots made by this run (or planned, in a dry run), per volume: never deleted, and
    /// counted among the newest.
    pub created: HashMap<String, Snapshot>,
    /// Volumes whose snapshot failed: their old snapshots are kept.
    pub failed: HashSet<String>,
}

/// Why a CreateSnapshot call did not give a snapshot id.
#[derive(Debug)]
enum Failure {
    Aws(AwsError),
    /// A signal came while the call was in flight.
    Interrupted,
    /// No answer before the deadline (cold mode).
    Abandoned(Duration),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Aws(e) => e.fmt(f),
            Failure::Interrupted => f.write_str(
                "interrupted by a signal (the snapshot may still have been made)",
            ),
            Failure::Abandoned(after) => write!(
                f,
                "no answer within {} s of the stop; abandoned so that the instance is started again (the snapshot may still have been made)",
                after.as_secs()
            ),
        }
    }
}

/// Makes each planned snapshot, or announces it in a dry run. With `limit` (cold mode), a call
/// still unanswered then is abandoned, so that the instance is started again in bounded time.
pub async fn make_all(
    ctx: &Arc<Ctx>,
    kind: SnapshotKind,
    requests: &[SnapshotRequest],
    limit: Option<(Instant, Duration)>,
    done: &mut Done,
    outcome: &mut Outcome,
) {
    for req in requests.iter().filter(|r| !r.dropped_tags.is_empty()) {
        warn!("{}", msg::tags_dropped(&req.disk, &req.dropped_tags));
    }
    if ctx.cfg.dry_run {
        for req in requests {
            info!("{}", msg::snapshot_made(kind, &req.disk, None));
            // Counted among the newest as the real one would be, so that the dry run lists
            // exactly the deletions of the real run.
            let id = format!("(planned for {})", req.disk.volume_id);
            done.created
                .insert(req.disk.volume_id.clone(), just_made(id, req));
        }
        return;
    }
    let results = ctx
        .calls(
            requests.to_vec(),
            move |ctx, req: SnapshotRequest| async move {
                let result = create(&ctx, &req, limit).await;
                match &result {
                    Ok(id) => info!("{}", msg::snapshot_made(kind, &req.disk, Some(id))),
                    Err(e) => {
                        critical!("{}", msg::snapshot_failed(kind, &req.disk, &e.to_string()))
                    }
                }
                (req, result)
            },
        )
        .await;
    for (req, result) in results {
        match result {
            Ok(id) => {
                done.created
                    .insert(req.disk.volume_id.clone(), just_made(id, &req));
            }
            Err(_) => {
                outcome.snapshot_errors += 1;
                done.failed.insert(req.disk.volume_id);
            }
        }
    }
}

/// One CreateSnapshot call, raced with the signal and the deadline.
async fn create(
    ctx: &Ctx,
    req: &SnapshotRequest,
    limit: Option<(Instant, Duration)>,
) -> Result<String, Failure> {
    let call = ctx
        .ec2
        .create_snapshot(&req.disk.volume_id, &req.description, &req.tags);
    let deadline = async {
        match limit {
            Some((at, _)) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = call => r.map_err(Failure::Aws),
        _ = ctx.shutdown.wait() => Err(Failure::Interrupted),
        _ = deadline => Err(Failure::Abandoned(limit.map(|(_, d)| d).unwrap_or_default())),
    }
}

/// A snapshot this run has just made (or would make): the newest of its volume, still pending.
fn just_made(id: String, req: &SnapshotRequest) -> Snapshot {
    Snapshot {
        id,
        volume_id: req.disk.volume_id.clone(),
        start_time: Utc::now(),
        state: SnapshotState::Pending,
        tags: req.tags.clone(),
    }
}
