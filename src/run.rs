//! The pipeline: select instances, then for each one make its snapshots (hot or cold) and apply
//! retention, counting every failure.

use crate::config::{Config, Selection};
use crate::critical;
use crate::ec2::{AwsError, Ec2};
use crate::messages as msg;
use crate::model::{Disk, Instance, Snapshot, Tags};
use crate::plan::{self, SnapshotRequest};
use crate::recovery::{self, Here, Mark, Verdict, STOP_TAG};
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
    let mut outcome = Outcome::default();
    let ec2 = match shutdown.race(Ec2::connect(cfg)).await {
        Ok(ec2) => ec2?,
        Err(sig) => return Ok(interrupted(outcome, sig)),
    };
    if cfg.stop_tag {
        match shutdown.race(ec2.instances_with_tag_key(STOP_TAG)).await {
            Ok(marked) => recover(&ec2, cfg, marked?, &mut outcome).await,
            Err(sig) => return Ok(interrupted(outcome, sig)),
        }
    }
    info!("{}", msg::GETTING_INSTANCES);
    let instances = match shutdown
        .race(select_instances(&ec2, &cfg.selection, &mut outcome))
        .await
    {
        Ok(found) => found?,
        Err(sig) => return Ok(interrupted(outcome, sig)),
    };
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
    let prefetched = shutdown
        .race(async {
            tokio::join!(
                prefetch_snapshots(&ec2, cfg, processed),
                prefetch_volume_tags(&ec2, cfg, processed)
            )
        })
        .await;
    let (mut snapshots, volume_tags) = match prefetched {
        Ok((snapshots, volume_tags)) => (snapshots?, volume_tags?),
        Err(sig) => return Ok(interrupted(outcome, sig)),
    };
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
    Ok(match ctx.shutdown.signal() {
        Some(sig) => interrupted(outcome, sig),
        None => outcome,
    })
}

/// The outcome of a run that a signal cut short.
fn interrupted(mut outcome: Outcome, sig: Signal) -> Outcome {
    error!(
        "Interrupted by {}: the run stopped before its end",
        sig.name()
    );
    outcome.interrupted = Some(sig);
    outcome
}

/// Starts the instances that an earlier cold run left stopped (killed with `kill -9`, or the
/// machine lost power), found by their mark; a dry run only says which it would start. Starting
/// is not interrupted by a signal, like any restart.
async fn recover(ec2: &Ec2, cfg: &Config, marked: Vec<Instance>, outcome: &mut Outcome) {
    let here = Here::this_machine();
    let now = Utc::now();
    for instance in marked {
        let value = instance
            .tags
            .get(STOP_TAG)
            .map(String::as_str)
            .unwrap_or("");
        let mark = Mark::parse(value);
        let id = &instance.id;
        match recovery::verdict(mark.as_ref(), &instance.state, now, &here, recovery::process_alive) {
            Verdict::Leave(why) => debug!("Instance {id} carries {STOP_TAG}={value}: left as it is, {why}"),
            Verdict::DropMark => {
                debug!("Instance {id} is {} again: removing its stale tag {STOP_TAG}", instance.state);
                if !cfg.dry_run {
                    untag(ec2, id).await;
                }
            }
            Verdict::Start if cfg.dry_run => warn!(
                "Instance {id} ({}) was left stopped by an ec2snap run that did not finish ({value}): run mode starts it again",
                instance.name()
            ),
            Verdict::Start => {
                warn!(
                    "Instance {id} ({}) was left stopped by an ec2snap run that did not finish ({value}): starting it again",
                    instance.name()
                );
                if let Err(e) = ec2.start_instance(id).await {
                    critical!("{}", msg::failed_to("start", &e.to_string()));
                    outcome.snapshot_errors += 1;
                    continue;
                }
                match wait_for_state(ec2, id, "running", cfg.timeout, None).await {
                    WaitResult::Reached => {
                        info!("{}", msg::now_state(id, "running"));
                        untag(ec2, id).await;
                    }
                    other => {
                        critical!("{}", wait_failure(id, "start", &other, cfg.timeout));
                        outcome.snapshot_errors += 1;
                    }
                }
            }
        }
    }
}

/// Removes the stop mark of an instance; a failure is a warning (a later run removes it).
async fn untag(ec2: &Ec2, id: &str) {
    if let Err(e) = ec2.untag_instance(id, STOP_TAG).await {
        warn!("Cannot remove tag {STOP_TAG} from instance {id} ({e}): a later run removes it");
    }
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
        // Nothing to snapshot (`-o` on a root-only instance, no volume): no reason to stop it.
        let cold_cycle = self.cfg.cold && instance.state == "running" && !requests.is_empty();
        if !cold_cycle {
            self.snapshot_all(&requests, None, &mut done, outcome).await;
            return (!self.shutdown.is_set()).then_some(done);
        }
        info!("{}", self.line(msg::GOING_DOWN, &instance.id));
        if self.cfg.dry_run {
            self.snapshot_all(&requests, None, &mut done, outcome).await;
            info!("{}", self.line(msg::GOING_UP, &instance.id));
            return Some(done);
        }
        let marked = self.cfg.stop_tag && self.mark(&instance.id).await;
        // Not raced with a signal: the run must know whether the stop went through.
        if let Err(e) = self.ec2.stop_instance(&instance.id).await {
            critical!("{}", msg::failed_to("stop", &e.to_string()));
            outcome.snapshot_errors += 1;
            self.after_failed_stop(instance, &e, marked, outcome).await;
            return None;
        }
        let stopped = wait_for_state(
            &self.ec2,
            &instance.id,
            "stopped",
            self.cfg.timeout,
            Some(&self.shutdown),
        )
        .await;
        match &stopped {
            WaitResult::Reached => {
                info!("{}", msg::now_state(&instance.id, "stopped"));
                let limit = tokio::time::Instant::now() + COLD_SNAPSHOT_LIMIT;
                self.snapshot_all(&requests, Some(limit), &mut done, outcome)
                    .await;
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
            WaitResult::Failed(_) => {
                critical!(
                    "{}",
                    wait_failure(&instance.id, "stop", &stopped, self.cfg.timeout)
                );
                outcome.snapshot_errors += 1;
            }
        }
        self.start_again(instance, marked, outcome).await;
        (matches!(stopped, WaitResult::Reached) && !self.shutdown.is_set()).then_some(done)
    }

    /// Tags the instance before its stop, so that a run killed while it is down can be found by
    /// the next one. True when the tag is set; a failure is a warning and the cold cycle goes on,
    /// as it did before the tag existed.
    async fn mark(&self, id: &str) -> bool {
        let (here, now) = (Here::this_machine(), Utc::now());
        let mark = Mark {
            host: here.host,
            boot: here.boot,
            pid: std::process::id(),
            stopped: now,
            until: now + stop_window(self.cfg.timeout),
        };
        match self.ec2.tag_instance(id, STOP_TAG, &mark.value()).await {
            Ok(()) => true,
            Err(e) => {
                warn!(
                    "Cannot tag instance {id} with {STOP_TAG} before stopping it ({e}): if this run is killed, the next one cannot find it; allow ec2:CreateTags on instances, or use --no-stop-tag"
                );
                false
            }
        }
    }

    /// StopInstances failed. A definite refusal from EC2 left the instance as it was: when it is
    /// still running there is nothing to start. Any other failure (a lost answer) may hide a stop
    /// that went through: then it is started again.
    async fn after_failed_stop(
        &self,
        instance: &Instance,
        error: &AwsError,
        marked: bool,
        outcome: &mut Outcome,
    ) {
        if error.code.is_some() {
            if let Ok(state) = self.ec2.instance_state(&instance.id).await {
                if state == "running" {
                    info!(
                        "Instance {} is still running: it was not stopped, so it is not started",
                        instance.id
                    );
                    if marked {
                        untag(&self.ec2, &instance.id).await;
                    }
                    return;
                }
            }
        }
        self.start_again(instance, marked, outcome).await;
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
    /// With `limit` (cold mode), a call still unanswered then is abandoned, so that the instance
    /// is started again in a bounded time whatever the API does.
    async fn snapshot_all(
        self: &Arc<Self>,
        requests: &[SnapshotRequest],
        limit: Option<tokio::time::Instant>,
        done: &mut Done,
        outcome: &mut Outcome,
    ) {
        let cold = self.cfg.cold;
        for req in requests.iter().filter(|r| !r.dropped_tags.is_empty()) {
            warn!(
                "Volume {}({}) has more tags than a snapshot can carry ({}): not copied: {}",
                req.disk.volume_id,
                req.disk.device,
                crate::config::MAX_TAGS,
                req.dropped_tags.join(", ")
            );
        }
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
                let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
                let result = tokio::select! {
                    r = call => r,
                    _ = ctx.shutdown.wait() => Err(AwsError {
                        code: None,
                        message: "interrupted by a signal (the snapshot may still have been made)".into(),
                    }),
                    _ = tokio::time::sleep_until(limit.unwrap_or(far)) => Err(AwsError {
                        code: None,
                        message: format!(
                            "no answer within {} s of the stop; abandoned so that the instance is started again (the snapshot may still have been made)",
                            COLD_SNAPSHOT_LIMIT.as_secs()
                        ),
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

    /// Starts again an instance this run stopped (or may have stopped), whatever happened before.
    /// Not interruptible: this is what a signal waits for. Retries while the instance is still
    /// stopping, bounded by `-m` seconds. Removes the stop mark once it runs.
    async fn start_again(&self, instance: &Instance, marked: bool, outcome: &mut Outcome) {
        info!("{}", self.line(msg::GOING_UP, &instance.id));
        let deadline = deadline_after(self.cfg.timeout);
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
        let running =
            wait_for_state(&self.ec2, &instance.id, "running", self.cfg.timeout, None).await;
        match running {
            WaitResult::Reached => {
                info!("{}", msg::now_state(&instance.id, "running"));
                if marked {
                    untag(&self.ec2, &instance.id).await;
                }
            }
            WaitResult::TimedOut => {
                error!("{}", self.line(msg::TIMEOUT, &instance.id));
                critical!(
                    "{}",
                    wait_failure(&instance.id, "start", &running, self.cfg.timeout)
                );
                outcome.snapshot_errors += 1;
            }
            WaitResult::Failed(_) | WaitResult::Interrupted => {
                critical!(
                    "{}",
                    wait_failure(&instance.id, "start", &running, self.cfg.timeout)
                );
                outcome.snapshot_errors += 1;
            }
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
        let answer = match self
            .shutdown
            .race(self.ec2.delete_snapshot(snapshot_id))
            .await
        {
            Ok(answer) => answer,
            // Abandoned at a signal: whether it was deleted is not known, and it is no error.
            Err(_) => return false,
        };
        match answer {
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

/// How long the snapshot calls of a cold cycle may take before they are abandoned.
const COLD_SNAPSHOT_LIMIT: Duration = Duration::from_secs(30 * 60);

/// The longest a cold cycle keeps an instance from running: the stop wait, the snapshot calls,
/// the start retries and the start wait, with a margin. A run that finds a mark older than this
/// knows that the run that wrote it is over.
fn stop_window(timeout: Duration) -> chrono::Duration {
    let secs = 3 * timeout.as_secs() + COLD_SNAPSHOT_LIMIT.as_secs() + 300;
    chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
}

/// `now + timeout`, or far ahead when that cannot be represented (the flags are bounded, so this
/// is only a second line of defence against an overflow panic).
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(86_400 * 365)))
        .unwrap_or(now)
}

/// Polls until the instance reaches `want`, for at most `timeout`. With `shutdown`, a signal ends
/// the wait at once, during a poll as during a pause.
async fn wait_for_state(
    ec2: &Ec2,
    id: &str,
    want: &str,
    timeout: Duration,
    shutdown: Option<&Shutdown>,
) -> WaitResult {
    let deadline = deadline_after(timeout);
    loop {
        let poll = ec2.instance_state(id);
        let answer = match shutdown {
            Some(s) => match s.race(poll).await {
                Ok(a) => a,
                Err(_) => return WaitResult::Interrupted,
            },
            None => poll.await,
        };
        match answer {
            Ok(state) if state == want => return WaitResult::Reached,
            Ok(state) => debug!("Waiting for {want} state of {id}: now {state}"),
            Err(e) => return WaitResult::Failed(e),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return WaitResult::TimedOut;
        }
        let pause = tokio::time::sleep(POLL.min(left));
        match shutdown {
            Some(s) => {
                if s.race(pause).await.is_err() {
                    return WaitResult::Interrupted;
                }
            }
            None => pause.await,
        }
    }
}

/// The CRITICAL line for a wait that did not reach its state. A failed state poll says that the
/// state could not be read, never that the stop or start itself failed.
fn wait_failure(id: &str, action: &str, result: &WaitResult, timeout: Duration) -> String {
    match result {
        WaitResult::Failed(e) => {
            format!("Cannot read the state of instance {id} after asking it to {action}: {e}")
        }
        WaitResult::TimedOut => msg::failed_to(
            action,
            &format!(
                "not {} after {} s",
                if action == "stop" {
                    "stopped"
                } else {
                    "running"
                },
                timeout.as_secs()
            ),
        ),
        WaitResult::Interrupted => format!("Instance {id}: the wait to {action} was interrupted"),
        WaitResult::Reached => String::new(),
    }
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
