//! The pipeline: select instances, then for each one make its snapshots (hot or cold) and apply
//! retention, counting every failure.

use crate::config::{Config, Selection};
use crate::critical;
use crate::ec2::{AwsError, Ec2};
use crate::messages as msg;
use crate::model::{Disk, Instance, Snapshot, Tags};
use crate::plan::{self, SnapshotRequest};
use crate::retention::{self, Rule};
use crate::select::{self, matches_all};
use crate::shutdown::{Shutdown, Signal};
use anyhow::Result;
use chrono::Utc;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

/// What the run counted; decides the exit code.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Snapshot, stop and start failures, and instances asked for by id that do not exist.
    pub snapshot_errors: usize,
    pub deletion_errors: usize,
    pub interrupted: Option<Signal>,
}

impl Outcome {
    pub fn has_errors(&self) -> bool {
        self.snapshot_errors > 0 || self.deletion_errors > 0
    }
}

/// How often cold mode asks for the instance state while it waits.
const POLL: Duration = Duration::from_secs(3);

struct Ctx {
    cfg: Config,
    ec2: Ec2,
    shutdown: Shutdown,
    /// Tags of the volumes to snapshot (run mode only), fetched in batches up front.
    volume_tags: HashMap<String, Tags>,
    /// `--parallel` permits shared by every CreateSnapshot and DeleteSnapshot of the run, so that
    /// the last instances of a run can use the calls the finished ones no longer need.
    calls: Semaphore,
}

pub async fn run(cfg: &Config, shutdown: Shutdown) -> Result<Outcome> {
    info!("{}", msg::launching(cfg.dry_run));
    info!("{}", msg::CONNECTING);
    debug!("Configuration: {cfg:?}");
    let ec2 = Ec2::connect(cfg).await?;
    info!("{}", msg::GETTING_INSTANCES);
    let mut outcome = Outcome::default();
    let instances = select_instances(&ec2, &cfg.selection, &mut outcome).await?;
    if instances.is_empty() {
        error!("{}", msg::NO_INSTANCES);
        return Ok(outcome);
    }
    // `-l N`: the instances after the first N are neither snapshotted nor pruned.
    let processed = match cfg.limit {
        Some(n) => &instances[..n.min(instances.len())],
        None => &instances[..],
    };
    // Independent reads: one round trip instead of two.
    let (snapshots, volume_tags) = tokio::join!(
        prefetch_snapshots(&ec2, cfg, processed),
        prefetch_volume_tags(&ec2, cfg, processed)
    );
    let (mut snapshots, volume_tags) = (snapshots?, volume_tags?);
    let ctx = Arc::new(Ctx {
        cfg: cfg.clone(),
        ec2,
        shutdown,
        volume_tags,
        calls: Semaphore::new(cfg.parallel),
    });
    // At most `--parallel` instances in flight; with 1, each one ends before the next starts,
    // which gives the original's log order.
    let mut tasks = JoinSet::new();
    for (index, instance) in instances.iter().enumerate() {
        drain(&mut tasks, cfg.parallel - 1, &mut outcome).await;
        if ctx.shutdown.is_set() {
            break;
        }
        if let Some(limit) = cfg.limit.filter(|n| index >= *n) {
            drain(&mut tasks, 0, &mut outcome).await;
            info!("{}", msg::working_on(instance));
            info!("{}", msg::limit_reached(limit));
            break;
        }
        // Each instance's task owns its volumes' snapshots (a volume attached to two instances
        // goes with the first, so it is pruned once).
        let own: HashMap<String, Vec<Snapshot>> = instance
            .disks
            .iter()
            .filter_map(|d| snapshots.remove_entry(&d.volume_id))
            .collect();
        tasks.spawn(Arc::clone(&ctx).work(instance.clone(), own));
    }
    drain(&mut tasks, 0, &mut outcome).await;
    outcome.interrupted = ctx.shutdown.signal();
    if let Some(sig) = outcome.interrupted {
        error!(
            "Interrupted by {}: the run stopped before its end",
            sig.name()
        );
    }
    Ok(outcome)
}

/// Waits for instance tasks to end until at most `keep` are left, adding up their counts.
async fn drain(tasks: &mut JoinSet<Outcome>, keep: usize, total: &mut Outcome) {
    while tasks.len() > keep {
        match tasks.join_next().await {
            Some(Ok(o)) => {
                total.snapshot_errors += o.snapshot_errors;
                total.deletion_errors += o.deletion_errors;
            }
            Some(Err(e)) => {
                critical!("An instance's work ended abnormally: {e}");
                total.snapshot_errors += 1;
            }
            None => break,
        }
    }
}

async fn prefetch_snapshots(
    ec2: &Ec2,
    cfg: &Config,
    processed: &[Instance],
) -> Result<HashMap<String, Vec<Snapshot>>> {
    let mut by_volume: HashMap<String, Vec<Snapshot>> = HashMap::new();
    if !cfg.retention.is_enabled() {
        return Ok(by_volume);
    }
    let volumes = unique_volumes(processed.iter().flat_map(|i| i.disks.iter()));
    let filter = &cfg.retention.snap_filter;
    for snap in ec2.snapshots_of(&volumes, filter).await? {
        if matches_all(filter, &snap.tags) {
            by_volume
                .entry(snap.volume_id.clone())
                .or_default()
                .push(snap);
        }
    }
    Ok(by_volume)
}

/// Volume tags are needed to tag the snapshots of a real run, and in a dry run with `-d` to know
/// whether the planned snapshots pass `--snap-filter` (they then count among the newest).
async fn prefetch_volume_tags(
    ec2: &Ec2,
    cfg: &Config,
    processed: &[Instance],
) -> Result<HashMap<String, Tags>> {
    let needed =
        !cfg.dry_run || (cfg.retention.keep_last > 0 && !cfg.retention.snap_filter.is_empty());
    if cfg.no_snap || !needed {
        return Ok(HashMap::new());
    }
    let volumes = unique_volumes(
        processed
            .iter()
            .flat_map(|i| plan::disks_to_snapshot(i, cfg.no_root_device)),
    );
    ec2.volume_tags(&volumes).await
}

/// The union of `-i` ids and `-t` matches; unknown ids are logged and counted.
async fn select_instances(
    ec2: &Ec2,
    selection: &Selection,
    outcome: &mut Outcome,
) -> Result<Vec<Instance>> {
    let (by_ids, by_tags, patterns) = match selection {
        Selection::All => (ec2.all_instances().await?, vec![], vec![]),
        Selection::Some { ids, tags } => {
            let by_ids = if ids.is_empty() {
                vec![]
            } else {
                ec2.instances_by_ids(ids).await?
            };
            let mut unique: Vec<&String> = ids.iter().collect();
            unique.sort();
            unique.dedup();
            for id in unique {
                if !by_ids.iter().any(|i| &i.id == id) {
                    error!("Instance {id} not found");
                    outcome.snapshot_errors += 1;
                }
            }
            let by_tags = if tags.is_empty() {
                vec![]
            } else {
                ec2.instances_by_tags(tags).await?
            };
            (by_ids, by_tags, tags.clone())
        }
    };
    let selected = select::finalize(by_ids, by_tags, &patterns);
    for (id, state) in &selected.skipped {
        debug!("Skipping instance {id}: it is {state}");
    }
    Ok(selected.instances)
}

/// What one instance's snapshot step left for its retention step.
struct Done {
    /// Snapshots made by this run, per volume: never deleted, and counted among the newest.
    created: HashMap<String, Snapshot>,
    /// Volumes whose snapshot failed: their old snapshots are kept.
    failed: HashSet<String>,
}

impl Ctx {
    fn line(&self, text: &str, instance_id: &str) -> String {
        msg::for_instance(text, instance_id, self.cfg.parallel)
    }

    /// One instance: its snapshots, then its retention.
    async fn work(
        self: Arc<Self>,
        instance: Instance,
        mut snapshots: HashMap<String, Vec<Snapshot>>,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        info!("{}", msg::working_on(&instance));
        if let Some(done) = self.process(&instance, &mut outcome).await {
            if self.cfg.retention.is_enabled() && !self.shutdown.is_set() {
                self.prune(&instance, &mut snapshots, &done, &mut outcome)
                    .await;
            }
        }
        outcome
    }

    /// The snapshot step of one instance. `None` when retention must not run for it (the cold stop
    /// failed, or a signal came).
    async fn process(self: &Arc<Self>, instance: &Instance, outcome: &mut Outcome) -> Option<Done> {
        let mut done = Done {
            created: HashMap::new(),
            failed: HashSet::new(),
        };
        if self.cfg.no_snap {
            return Some(done);
        }
        let requests = plan::requests(
            instance,
            self.cfg.cold,
            self.cfg.no_root_device,
            &self.volume_tags,
            &self.cfg.add_tags,
        );
        let cold_cycle = self.cfg.cold && instance.state == "running";
        if !cold_cycle {
            self.snapshot_all(&requests, &mut done, outcome).await;
            return (!self.shutdown.is_set()).then_some(done);
        }
        info!("{}", self.line(msg::GOING_DOWN, &instance.id));
        if self.cfg.dry_run {
            self.snapshot_all(&requests, &mut done, outcome).await;
            info!("{}", self.line(msg::GOING_UP, &instance.id));
            return Some(done);
        }
        if let Err(e) = self.ec2.stop_instance(&instance.id).await {
            critical!("{}", msg::failed_to("stop", &e.to_string()));
            outcome.snapshot_errors += 1;
            // The stop may have gone through even though its answer was lost: make sure it runs.
            self.start_again(instance, outcome).await;
            return None;
        }
        let stopped = self.wait_for_state(&instance.id, "stopped", true).await;
        match &stopped {
            WaitResult::Reached => {
                info!("{}", msg::now_state(&instance.id, "stopped"));
                self.snapshot_all(&requests, &mut done, outcome).await;
            }
            WaitResult::TimedOut => {
                error!("{}", self.line(msg::TIMEOUT, &instance.id));
                warn!(
                    "Instance {} did not stop within {} s: no snapshot is made and it is started again, so that a stop completing later cannot leave it down",
                    instance.id,
                    self.cfg.timeout.as_secs()
                );
                outcome.snapshot_errors += 1;
            }
            WaitResult::Interrupted => {}
            WaitResult::Failed(e) => {
                critical!("{}", msg::failed_to("stop", &e.to_string()));
                outcome.snapshot_errors += 1;
            }
        }
        self.start_again(instance, outcome).await;
        (matches!(stopped, WaitResult::Reached) && !self.shutdown.is_set()).then_some(done)
    }

    /// Runs `call` on each item: one after the other with `--parallel 1` (the original's order),
    /// else concurrently within the run's `--parallel` call permits. A signal stops it from starting
    /// more. Results come in the order the calls end.
    async fn calls<T, R, F, Fut>(self: &Arc<Self>, items: Vec<T>, call: F) -> Vec<R>
    where
        T: Send + 'static,
        R: Send + 'static,
        F: Fn(Arc<Ctx>, T) -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = R> + Send + 'static,
    {
        let mut out = Vec::with_capacity(items.len());
        if self.cfg.parallel == 1 {
            for item in items {
                if self.shutdown.is_set() {
                    break;
                }
                out.push(call(Arc::clone(self), item).await);
            }
            return out;
        }
        let mut set = JoinSet::new();
        for item in items {
            let (ctx, call) = (Arc::clone(self), call.clone());
            set.spawn(async move {
                // The semaphore is never closed, so acquiring cannot fail.
                let _permit = ctx.calls.acquire().await.ok();
                if ctx.shutdown.is_set() {
                    return None;
                }
                Some(call(Arc::clone(&ctx), item).await)
            });
        }
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(r) => out.extend(r),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => {}
            }
        }
        out
    }

    /// Makes (or, in a dry run, announces) each planned snapshot. A signal abandons a call in
    /// flight.
    async fn snapshot_all(
        self: &Arc<Self>,
        requests: &[SnapshotRequest],
        done: &mut Done,
        outcome: &mut Outcome,
    ) {
        let cold = self.cfg.cold;
        if self.cfg.dry_run {
            for req in requests {
                info!("{}", msg::snapshot_made(cold, &req.disk, None));
                // Counted among the newest as the real one would be, so that the dry run lists
                // exactly the deletions of the real run.
                let id = format!("(planned for {})", req.disk.volume_id);
                done.created
                    .insert(req.disk.volume_id.clone(), just_made(id, req));
            }
            return;
        }
        let results = self
            .calls(requests.to_vec(), move |ctx, req: SnapshotRequest| async move {
                let call = ctx
                    .ec2
                    .create_snapshot(&req.disk.volume_id, &req.description, &req.tags);
                let result = tokio::select! {
                    r = call => r,
                    _ = ctx.shutdown.wait() => Err(AwsError {
                        code: None,
                        message: "interrupted by a signal (the snapshot may still have been made)".into(),
                    }),
                };
                match &result {
                    Ok(id) => info!("{}", msg::snapshot_made(cold, &req.disk, Some(id))),
                    Err(e) => {
                        critical!("{}", msg::snapshot_failed(cold, &req.disk, &e.to_string()))
                    }
                }
                (req, result)
            })
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

    /// Polls until the instance reaches `want`, for at most `-m` seconds.
    async fn wait_for_state(&self, id: &str, want: &str, interruptible: bool) -> WaitResult {
        let deadline = Instant::now() + self.cfg.timeout;
        loop {
            match self.ec2.instance_state(id).await {
                Ok(state) if state == want => return WaitResult::Reached,
                Ok(state) => debug!("Waiting for {want} state of {id}: now {state}"),
                Err(e) => return WaitResult::Failed(e),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return WaitResult::TimedOut;
            }
            let pause = tokio::time::sleep(POLL.min(left));
            if interruptible {
                tokio::select! {
                    _ = pause => {},
                    _ = self.shutdown.wait() => return WaitResult::Interrupted,
                }
            } else {
                pause.await;
            }
        }
    }

    /// Starts again an instance this run stopped (or may have stopped), whatever happened before.
    /// Not interruptible: this is what a signal waits for. Retries while the instance is still
    /// stopping, bounded by `-m` seconds.
    async fn start_again(&self, instance: &Instance, outcome: &mut Outcome) {
        info!("{}", self.line(msg::GOING_UP, &instance.id));
        let deadline = Instant::now() + self.cfg.timeout;
        let mut last_error;
        loop {
            match self.ec2.start_instance(&instance.id).await {
                Ok(()) => break,
                Err(e) => {
                    debug!("StartInstances {} failed, will retry: {e}", instance.id);
                    last_error = e;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                critical!("{}", msg::failed_to("start", &last_error.to_string()));
                critical!(
                    "Instance {} may still be stopped: start it with `aws ec2 start-instances --instance-ids {}`",
                    instance.id,
                    instance.id
                );
                outcome.snapshot_errors += 1;
                return;
            }
            tokio::time::sleep(POLL.min(left)).await;
        }
        match self.wait_for_state(&instance.id, "running", false).await {
            WaitResult::Reached => info!("{}", msg::now_state(&instance.id, "running")),
            WaitResult::TimedOut => {
                error!("{}", self.line(msg::TIMEOUT, &instance.id));
                critical!(
                    "{}",
                    msg::failed_to(
                        "start",
                        &format!("not running after {} s", self.cfg.timeout.as_secs())
                    )
                );
                outcome.snapshot_errors += 1;
            }
            WaitResult::Failed(e) => {
                critical!("{}", msg::failed_to("start", &e.to_string()));
                outcome.snapshot_errors += 1;
            }
            WaitResult::Interrupted => unreachable!("the start wait is not interruptible"),
        }
    }

    /// Retention for one instance's volumes, in device order.
    async fn prune(
        self: &Arc<Self>,
        instance: &Instance,
        snapshots: &mut HashMap<String, Vec<Snapshot>>,
        done: &Done,
        outcome: &mut Outcome,
    ) {
        let r = &self.cfg.retention;
        let rule = Rule {
            max_age_secs: r.max_age_secs,
            keep_last: r.keep_last,
        };
        let now = Utc::now();
        let protected: HashSet<String> = done.created.values().map(|s| s.id.clone()).collect();
        let mut doomed: Vec<(String, Disk)> = Vec::new();
        for disk in &instance.disks {
            if done.failed.contains(&disk.volume_id) {
                warn!(
                    "Keeping the old snapshots of {}({}): its new snapshot failed",
                    disk.volume_id, disk.device
                );
                continue;
            }
            // Taken out: nothing else needs this volume's list after its pruning.
            let mut snaps = snapshots.remove(&disk.volume_id).unwrap_or_default();
            if let Some(mine) = done.created.get(&disk.volume_id) {
                if !snaps.iter().any(|s| s.id == mine.id) && matches_all(&r.snap_filter, &mine.tags)
                {
                    snaps.push(mine.clone());
                }
            }
            let gone = retention::to_delete(&snaps, rule, now, &protected);
            doomed.extend(gone.into_iter().map(|s| (s.id.clone(), disk.clone())));
        }
        let failures = self
            .calls(doomed, |ctx, (id, disk): (String, Disk)| async move {
                ctx.delete(&id, &disk).await
            })
            .await;
        outcome.deletion_errors += failures.into_iter().filter(|failed| *failed).count();
    }

    /// Deletes one snapshot (or, in a dry run, announces it); true when that counts as an error.
    async fn delete(&self, snapshot_id: &str, disk: &Disk) -> bool {
        info!("{}", msg::deleting(snapshot_id, disk));
        if self.cfg.dry_run {
            return false;
        }
        match self.ec2.delete_snapshot(snapshot_id).await {
            Ok(()) => false,
            Err(e) if e.is("InvalidSnapshot.InUse") && self.cfg.retention.ignore_in_use => {
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
}

enum WaitResult {
    Reached,
    TimedOut,
    Interrupted,
    Failed(AwsError),
}

/// A snapshot this run has just made (or would make): the newest of its volume, still pending.
fn just_made(id: String, req: &SnapshotRequest) -> Snapshot {
    Snapshot {
        id,
        volume_id: req.disk.volume_id.clone(),
        start_time: Utc::now(),
        state: "pending".into(),
        tags: req.tags.clone(),
    }
}

fn unique_volumes<'a>(disks: impl Iterator<Item = &'a Disk>) -> Vec<String> {
    let mut v: Vec<String> = disks.map(|d| d.volume_id.clone()).collect();
    v.sort();
    v.dedup();
    v
}
