//! The pipeline: connect, start what a killed run left stopped, select instances, fetch their
//! snapshots and volume tags, then fan out one task per instance (its snapshots, hot or cold, then
//! its retention) and add up what they counted.

pub mod fleet;

use crate::act::ctx::Ctx;
use crate::act::wait::Ended;
use crate::aws::Ec2;
use crate::cold::cycle as cold;
use crate::config::Config;
use crate::copies::apply::{self as replicate, Replicas};
use crate::hooks;
use crate::hooks::policy::Consistency;
use crate::model::{Disk, Instance, Snapshot};
use crate::output::log::Level;
use crate::output::messages as msg;
use crate::output::record::{Failure, Kind, Record};
use crate::retention::apply as prune;
use crate::retention::decide::{self as retention, Set};
use crate::select::fetch::{self, Listed};
use crate::signals::{Shutdown, Signal};
use crate::snapshot::make as snapshot;
use crate::snapshot::plan;
use crate::snapshot::Done;
use crate::tags::{CONSISTENCY_TAG, STOP_TAG};
use anyhow::Result;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn, Instrument};

/// The run; the signal that cut it short, if one did. `Err` only for what stops it before any
/// instance's work (no region, instances cannot be listed); every failure after that is in the
/// record.
pub async fn run(cfg: &Config, shutdown: Shutdown, record: Arc<Record>) -> Result<Option<Signal>> {
    info!("{}", msg::launching(cfg.mode));
    info!("{}", msg::CONNECTING);
    debug!("{}", msg::configuration(cfg));
    let ec2 = match shutdown.race(Ec2::connect(&cfg.aws)).await {
        Ok(ec2) => ec2?,
        Err(sig) => return Ok(interrupted(sig)),
    };
    record.region(ec2.region());
    // In a fleet, each region may copy to the others (-r A -r B --copy-to A --copy-to B): a
    // target copies to the destinations that are not its own region.
    let without_own;
    let cfg = match &cfg.copy {
        Some(policy) if cfg.in_fleet && policy.regions.iter().any(|r| r == ec2.region()) => {
            info!("{}", msg::copy_to_own_region(ec2.region()));
            let mut own = cfg.clone();
            own.copy = own.copy.take().and_then(|mut p| {
                p.regions.retain(|r| r != ec2.region());
                (!p.regions.is_empty()).then_some(p)
            });
            without_own = own;
            &without_own
        }
        _ => cfg,
    };
    if let Some(policy) = &cfg.copy {
        policy.check_source_region(ec2.region())?;
    }
    // --vault-role: checked before any change (another account, a region that exists).
    let vault_account = match &cfg.vault {
        Some(v) => match shutdown.race(crate::vault::apply::check(&ec2, v)).await {
            Ok(account) => Some(account?),
            Err(sig) => return Ok(interrupted(sig)),
        },
        None => None,
    };
    if cfg.stop_tag {
        match shutdown.race(ec2.instances_with_tag_key(STOP_TAG)).await {
            Ok(marked) => cold::recover(&ec2, cfg, marked?, &record, &shutdown).await,
            Err(sig) => return Ok(interrupted(sig)),
        }
    }
    if cfg.hooks.as_ref().is_some_and(|h| !h.run_in(cfg.mode)) {
        info!("{}", msg::HOOKS_NOT_IN_DRY_RUN);
    }
    info!("{}", msg::GETTING_INSTANCES);
    let instances = match shutdown
        .race(fetch::select_instances(
            &ec2,
            &cfg.selection,
            &record,
            cfg.in_fleet,
        ))
        .await
    {
        Ok(found) => found?,
        Err(sig) => return Ok(interrupted(sig)),
    };
    if instances.is_empty() {
        if cfg.in_fleet {
            info!("{}", msg::NO_INSTANCES);
        } else {
            error!("{}", msg::NO_INSTANCES);
        }
        return Ok(None);
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
                fetch::prefetch_snapshots(&ec2, cfg, processed),
                fetch::prefetch_volume_tags(&ec2, cfg, processed)
            )
        })
        .await;
    let (listed, volume_tags) = match prefetched {
        Ok((listed, volume_tags)) => (listed?, volume_tags?),
        Err(sig) => return Ok(interrupted(sig)),
    };
    let Listed {
        by_volume,
        mut sets,
        for_copies,
        own,
    } = listed;
    let shares = retention::share_out(processed, by_volume);
    let ctx = Arc::new(Ctx::new(cfg.clone(), ec2, shutdown, volume_tags, record));
    // --wait: one poller for every instance's pending snapshots.
    let poller = cfg.wait.map(|w| {
        let waiter = Arc::clone(&ctx.waiter);
        let poll = waiter.poll(Arc::clone(&ctx.ec2), w.interval, ctx.shutdown.clone());
        tokio::spawn(poll.in_current_span())
    });
    // Before retention can delete a snapshot that is to be copied.
    let replicas = match &cfg.copy {
        Some(policy) => Some(replicate::replicate(&ctx, policy, processed, for_copies).await),
        None => None,
    };
    if let Some(max_age) = cfg.prune_orphans_after {
        let known = processed
            .iter()
            .flat_map(|i| i.disks.iter().map(|d| d.volume_id.as_str()))
            .collect();
        prune::prune_orphans(&ctx, max_age, known, own).await;
    }
    // At most `--parallel` instances in flight; with 1, each one ends before the next starts,
    // which gives the original's log order.
    let mut tasks = JoinSet::new();
    let mut shares = shares.into_iter();
    for (index, instance) in instances.iter().enumerate() {
        drain(&mut tasks, cfg.parallel - 1, &ctx.record).await;
        if ctx.shutdown.is_set() {
            break;
        }
        if let Some(limit) = cfg.limit.filter(|n| index >= *n) {
            drain(&mut tasks, 0, &ctx.record).await;
            info!("{}", msg::working_on(instance));
            info!("{}", msg::limit_reached(limit));
            break;
        }
        let own = shares.next().unwrap_or_default();
        let own_sets = sets.remove(&instance.id).unwrap_or_default();
        // In the current span: a target's log lines keep its prefix.
        let work = work(
            Arc::clone(&ctx),
            instance.clone(),
            own,
            own_sets,
            replicas.clone(),
        );
        tasks.spawn(work.in_current_span());
    }
    drain(&mut tasks, 0, &ctx.record).await;
    if let (Some(v), Some(account)) = (&cfg.vault, &vault_account) {
        if !ctx.shutdown.is_set() {
            crate::vault::apply::vault(&ctx, v, account, processed).await;
        }
    }
    if let Some(p) = poller {
        p.abort();
    }
    Ok(ctx.shutdown.signal().and_then(interrupted))
}

/// `--wait`: until this instance's new snapshots are completed. One that ends in `error`, or is
/// still pending at the timeout, is counted and its volume keeps its old snapshots (for a set,
/// the instance keeps its old sets). With `--copy-to`, each is copied as soon as it is completed
/// (a set once all its members are); a dry run plans the copies of the snapshots it plans. The
/// new snapshots completed (or planned), by volume.
async fn wait_for(
    ctx: &Arc<Ctx>,
    instance: &Instance,
    done: &mut Done,
    timeout: std::time::Duration,
    replicas: Option<&Arc<Replicas>>,
) -> HashMap<String, String> {
    let device = |vol: &str| instance.device_of(vol).unwrap_or("?").to_string();
    let disk = |s: &Snapshot| Disk {
        volume_id: s.volume_id.clone(),
        device: device(&s.volume_id),
    };
    let mut completed: HashMap<String, String> = HashMap::new();
    let mut copying = JoinSet::new();
    let mut copy = |sources: Vec<(Snapshot, Disk)>| {
        if let Some(r) = replicas {
            let task = replicate::copy_new(Arc::clone(ctx), Arc::clone(r), sources);
            copying.spawn(task.in_current_span());
        }
    };
    let by_id: HashMap<String, Snapshot> = done
        .created
        .values()
        .map(|s| (s.id.clone(), s.clone()))
        .collect();
    // Planned snapshots (a dry run's): the real run would wait for them, then copy them.
    let mut planned: Vec<&Snapshot> = by_id.values().filter(|s| plan::is_planned(&s.id)).collect();
    if !planned.is_empty() {
        planned.sort_by(|a, b| a.volume_id.cmp(&b.volume_id));
        copy(planned.iter().map(|s| ((*s).clone(), disk(s))).collect());
        completed.extend(planned.iter().map(|s| (s.volume_id.clone(), s.id.clone())));
    }
    if by_id.values().any(|s| !plan::is_planned(&s.id)) {
        let snapshots: Vec<(String, String)> = by_id
            .values()
            .filter(|s| !plan::is_planned(&s.id))
            .map(|s| {
                let label = format!("{}|{}", s.volume_id, device(&s.volume_id));
                (s.id.clone(), label)
            })
            .collect();
        let mut ended = ctx.waiter.watch(snapshots, timeout);
        while let Some((id, end)) = ended.recv().await {
            let Some(snap) = by_id.get(&id) else {
                continue;
            };
            match end {
                Ended::Completed => {
                    completed.insert(snap.volume_id.clone(), id.clone());
                    if done.set.is_none() {
                        copy(vec![(snap.clone(), disk(snap))]);
                    }
                }
                Ended::Interrupted => {}
                Ended::Error | Ended::TimedOut => failed_wait(
                    ctx,
                    instance,
                    done,
                    snap,
                    end,
                    timeout,
                    &device(&snap.volume_id),
                ),
            }
        }
        if done.set.is_some() && !done.set_failed && completed.len() == by_id.len() {
            let mut members: Vec<&Snapshot> = by_id.values().collect();
            members.sort_by(|a, b| a.volume_id.cmp(&b.volume_id));
            copy(members.into_iter().map(|s| (s.clone(), disk(s))).collect());
        }
    }
    while let Some(joined) = copying.join_next().await {
        if let Err(e) = joined {
            if e.is_panic() {
                // As for any call of the instance's work: it ends abnormally, recorded.
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
    completed
}

/// A new snapshot that ended in `error` or was still pending at the timeout: counted, and its
/// volume (or, for a set, the instance) keeps its old snapshots.
fn failed_wait(
    ctx: &Ctx,
    instance: &Instance,
    done: &mut Done,
    snap: &Snapshot,
    end: Ended,
    timeout: std::time::Duration,
    device: &str,
) {
    let (id, vol) = (&snap.id, &snap.volume_id);
    let what = msg::snapshot_of(id, vol, device);
    let action = if done.set.is_some() {
        "CreateSnapshots"
    } else {
        "CreateSnapshot"
    };
    let failure = if end == Ended::Error {
        Failure::other(
            Level::Error,
            msg::snapshot_ended_in_error(&what),
            action,
            id,
            Kind::State,
            "the snapshot ended in state error".into(),
        )
    } else {
        Failure::other(
            Level::Warning,
            msg::snapshot_still_pending(&what, timeout.as_secs()),
            action,
            id,
            Kind::Timeout,
            format!(
                "still pending after {} s (--wait-timeout)",
                timeout.as_secs()
            ),
        )
    };
    ctx.record.failed(Some(&instance.id), failure);
    done.failed.insert(vol.clone());
    if done.set.is_some() {
        done.set_failed = true;
    }
}

/// Says that a signal cut the run short; the signal.
fn interrupted(sig: Signal) -> Option<Signal> {
    error!("{}", msg::interrupted(sig.name()));
    Some(sig)
}

/// Waits for instance tasks to end until at most `keep` are left; one that ended abnormally is a
/// recorded failure.
async fn drain(tasks: &mut JoinSet<()>, keep: usize, record: &Record) {
    while tasks.len() > keep {
        match tasks.join_next().await {
            Some(Ok(())) => {}
            Some(Err(e)) => record.failed(
                None,
                Failure::other(
                    Level::Critical,
                    msg::work_ended_abnormally(&e.to_string()),
                    "Run",
                    "",
                    Kind::Abnormal,
                    e.to_string(),
                ),
            ),
            None => break,
        }
    }
}

/// One instance: its snapshots (hot, or the cold cycle), then its retention.
async fn work(
    ctx: Arc<Ctx>,
    instance: Instance,
    snapshots: HashMap<String, Vec<Snapshot>>,
    sets: Vec<Set>,
    replicas: Option<Arc<Replicas>>,
) {
    info!("{}", msg::working_on(&instance));
    ctx.record.instance(&instance, ctx.cfg.cold());
    let done = if let Some(kind) = ctx.cfg.snapshot {
        let (cfg, now) = (&ctx.cfg, crate::clock::now());
        let plan = plan::for_instance(
            &instance,
            kind,
            cfg.sets(),
            cfg.no_root_device,
            &ctx.volume_tags,
            &cfg.add_tags,
            now,
        );
        if plan.is_empty() {
            // `-o` on an instance whose only volume is the root, or no EBS volume at all: no call.
            warn!(
                "{}",
                msg::nothing_to_snapshot(&instance.id, cfg.no_root_device)
            );
            Some(Done::default())
        } else if cold::needed(cfg, &instance, &plan) {
            cold::cycle(&ctx, &instance, &plan).await
        } else {
            let mut done = Done::default();
            match &cfg.hooks {
                Some(hooks) if hooks.run_in(cfg.mode) => {
                    // The snapshots say how consistent they are: `ec2snap:consistency`.
                    let plan_for = |c: Consistency| {
                        let mut tags = cfg.add_tags.clone();
                        tags.push((CONSISTENCY_TAG.to_string(), c.tag_value().to_string()));
                        let (sets, volume_tags) = (cfg.sets(), &ctx.volume_tags);
                        plan::for_instance(
                            &instance,
                            kind,
                            sets,
                            cfg.no_root_device,
                            volume_tags,
                            &tags,
                            now,
                        )
                    };
                    hooks::around::snapshot(&ctx, hooks, kind, &instance, &plan_for, &mut done)
                        .await;
                }
                _ => snapshot::make(&ctx, kind, &instance, &plan, None, &mut done).await,
            }
            (!ctx.shutdown.is_set()).then_some(done)
        }
    } else {
        Some(Done::default())
    };
    let done = match (done, ctx.cfg.wait) {
        (Some(mut done), Some(policy)) => {
            let new = wait_for(
                &ctx,
                &instance,
                &mut done,
                policy.timeout,
                replicas.as_ref(),
            )
            .await;
            // The copies' retention, once the new snapshots' copy calls have returned.
            if let (Some(r), false) = (&replicas, ctx.shutdown.is_set()) {
                replicate::after_wait(&ctx, r, &instance, &new).await;
            }
            (!ctx.shutdown.is_set()).then_some(done)
        }
        (done, _) => done,
    };
    if let Some(done) = done {
        if ctx.cfg.retention.is_enabled() && !ctx.shutdown.is_set() {
            prune::prune(&ctx, &instance, snapshots, sets, &done).await;
        }
    }
}
