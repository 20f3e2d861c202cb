//! The pipeline: connect, start what a killed run left stopped, select instances, fetch their
//! snapshots and volume tags, then fan out one task per instance (its snapshots, hot or cold, then
//! its retention) and add up what they counted.

pub mod ctx;
pub mod permissions;

use crate::aws::Ec2;
use crate::cold::cycle as cold;
use crate::cold::mark::STOP_TAG;
use crate::config::Config;
use crate::copies::apply as replicate;
use crate::model::{Instance, Snapshot, SnapshotKind};
use crate::output::exit::Outcome;
use crate::output::log::critical;
use crate::output::messages as msg;
use crate::output::record::Journal;
use crate::retention::apply as prune;
use crate::retention::decide::{self as retention, Set};
use crate::run::ctx::Ctx;
use crate::select::fetch::{self, Listed};
use crate::signals::{Shutdown, Signal};
use crate::snapshot::make::{self as snapshot, Done};
use crate::snapshot::plan::{self, Plan};
use crate::snapshot::wait::Ended;
use anyhow::Result;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

/// The run. `Err` only for what stops it before any instance's work (no region, instances cannot
/// be listed); every failure after that is counted in the outcome.
pub async fn run(cfg: &Config, shutdown: Shutdown, journal: Arc<Journal>) -> Result<Outcome> {
    info!("{}", msg::launching(cfg.dry_run));
    info!("{}", msg::CONNECTING);
    debug!("Configuration: {cfg:?}");
    let mut outcome = Outcome::default();
    let ec2 = match shutdown.race(Ec2::connect(&cfg.aws)).await {
        Ok(ec2) => ec2?,
        Err(sig) => return Ok(interrupted(outcome, sig)),
    };
    journal.region(ec2.region());
    if let Some(policy) = &cfg.copy {
        policy.check_source_region(ec2.region())?;
    }
    if cfg.stop_tag {
        match shutdown.race(ec2.instances_with_tag_key(STOP_TAG)).await {
            Ok(marked) => cold::recover(&ec2, cfg, marked?, &mut outcome).await,
            Err(sig) => return Ok(interrupted(outcome, sig)),
        }
    }
    info!("{}", msg::GETTING_INSTANCES);
    let instances = match shutdown
        .race(fetch::select_instances(
            &ec2,
            &cfg.selection,
            &mut outcome,
            &journal,
        ))
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
                fetch::prefetch_snapshots(&ec2, cfg, processed),
                fetch::prefetch_volume_tags(&ec2, cfg, processed)
            )
        })
        .await;
    let (listed, volume_tags) = match prefetched {
        Ok((listed, volume_tags)) => (listed?, volume_tags?),
        Err(sig) => return Ok(interrupted(outcome, sig)),
    };
    let Listed {
        by_volume,
        mut sets,
        for_copies,
    } = listed;
    let shares = retention::share_out(processed, by_volume);
    let ctx = Arc::new(Ctx::new(cfg.clone(), ec2, shutdown, volume_tags, journal));
    // --wait: one poller for every instance's pending snapshots.
    let poller = cfg.wait.map(|w| {
        let waiter = Arc::clone(&ctx.waiter);
        tokio::spawn(waiter.poll(Arc::clone(&ctx.ec2), w.interval, ctx.shutdown.clone()))
    });
    // Before retention can delete a snapshot that is to be copied.
    if let Some(policy) = &cfg.copy {
        replicate::replicate(&ctx, policy, processed, &for_copies, &mut outcome).await;
    }
    // At most `--parallel` instances in flight; with 1, each one ends before the next starts,
    // which gives the original's log order.
    let mut tasks = JoinSet::new();
    let mut shares = shares.into_iter();
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
        let own = shares.next().unwrap_or_default();
        let own_sets = sets.remove(&instance.id).unwrap_or_default();
        tasks.spawn(work(Arc::clone(&ctx), instance.clone(), own, own_sets));
    }
    drain(&mut tasks, 0, &mut outcome).await;
    if let Some(p) = poller {
        p.abort();
    }
    Ok(match ctx.shutdown.signal() {
        Some(sig) => interrupted(outcome, sig),
        None => outcome,
    })
}

/// `--wait`: until this instance's new snapshots are completed. One that ends in `error`, or is
/// still pending at the timeout, is counted and its volume keeps its old snapshots (for a set,
/// the instance keeps its old sets).
async fn wait_for(
    ctx: &Ctx,
    instance: &Instance,
    done: &mut Done,
    timeout: std::time::Duration,
    outcome: &mut Outcome,
) {
    let device = |vol: &str| instance.device_of(vol).unwrap_or("?").to_string();
    let snapshots: Vec<(String, String)> = done
        .created
        .values()
        .map(|s| {
            (
                s.id.clone(),
                format!("{}|{}", s.volume_id, device(&s.volume_id)),
            )
        })
        .collect();
    if snapshots.is_empty() {
        return;
    }
    let ended = ctx.waiter.wait(snapshots, timeout).await;
    let by_id: HashMap<String, String> = done
        .created
        .values()
        .map(|s| (s.id.clone(), s.volume_id.clone()))
        .collect();
    for (id, end) in ended {
        let vol = by_id.get(&id).cloned().unwrap_or_default();
        let what = format!("{id} of {vol}({})", device(&vol));
        match end {
            Ended::Completed | Ended::Interrupted => continue,
            Ended::Error => {
                error!("Snapshot {what} ended in state error: the volume's old snapshots are kept")
            }
            Ended::TimedOut => warn!(
                "Snapshot {what} is still pending after {} s: the volume's old snapshots are kept",
                timeout.as_secs()
            ),
        }
        outcome.snapshot_errors += 1;
        done.failed.insert(vol);
        if done.set.is_some() {
            done.set_failed = true;
        }
    }
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

/// Waits for instance tasks to end until at most `keep` are left, adding up their counts.
async fn drain(tasks: &mut JoinSet<Outcome>, keep: usize, total: &mut Outcome) {
    while tasks.len() > keep {
        match tasks.join_next().await {
            Some(Ok(o)) => total.add(&o),
            Some(Err(e)) => {
                critical!("An instance's work ended abnormally: {e}");
                total.snapshot_errors += 1;
            }
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
) -> Outcome {
    let mut outcome = Outcome::default();
    info!("{}", msg::working_on(&instance));
    ctx.journal.instance(&instance, ctx.cfg.cold);
    let done = if ctx.cfg.no_snap {
        Some(Done::default())
    } else {
        let kind = if ctx.cfg.cold {
            SnapshotKind::Cold
        } else {
            SnapshotKind::Hot
        };
        let (cfg, now) = (&ctx.cfg, crate::clock::now());
        let plan = if cfg.consistent {
            Plan::Set(plan::set_request(
                &instance,
                kind,
                cfg.no_root_device,
                &cfg.add_tags,
                now,
            ))
        } else {
            Plan::Volumes(plan::requests(
                &instance,
                kind,
                cfg.no_root_device,
                &ctx.volume_tags,
                &cfg.add_tags,
            ))
        };
        if plan.is_empty() {
            // `-o` on an instance whose only volume is the root, or no EBS volume at all: no call.
            warn!(
                "{}",
                msg::nothing_to_snapshot(&instance.id, cfg.no_root_device)
            );
            Some(Done::default())
        } else if cold::needed(cfg, &instance, &plan) {
            cold::cycle(&ctx, &instance, &plan, &mut outcome).await
        } else {
            let mut done = Done::default();
            snapshot::make(&ctx, kind, &instance, &plan, None, &mut done, &mut outcome).await;
            (!ctx.shutdown.is_set()).then_some(done)
        }
    };
    let done = match (done, ctx.cfg.wait) {
        (Some(mut done), Some(policy)) if !ctx.cfg.dry_run => {
            wait_for(&ctx, &instance, &mut done, policy.timeout, &mut outcome).await;
            (!ctx.shutdown.is_set()).then_some(done)
        }
        (done, _) => done,
    };
    if let Some(done) = done {
        if ctx.cfg.retention.is_enabled() && !ctx.shutdown.is_set() {
            prune::prune(&ctx, &instance, snapshots, sets, &done, &mut outcome).await;
        }
    }
    outcome
}
