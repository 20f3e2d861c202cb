//! The pipeline: connect, start what a killed run left stopped, select instances, fetch their
//! snapshots and volume tags, then fan out one task per instance (its snapshots, hot or cold, then
//! its retention) and add up what they counted.

use crate::cold;
use crate::config::{Config, Selection};
use crate::ctx::Ctx;
use crate::ec2::Ec2;
use crate::log::critical;
use crate::messages as msg;
use crate::model::{matches_all, Disk, Instance, Snapshot, SnapshotKind, Tags};
use crate::outcome::Outcome;
use crate::plan::{self, Plan};
use crate::prune;
use crate::recovery::STOP_TAG;
use crate::replicate;
use crate::retention::{self, Set};
use crate::select;
use crate::shutdown::{Shutdown, Signal};
use crate::snapshot::{self, Done};
use anyhow::Result;
use chrono::Utc;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::task::JoinSet;
use tracing::{debug, error, info};

/// The run. `Err` only for what stops it before any instance's work (no region, instances cannot
/// be listed); every failure after that is counted in the outcome.
pub async fn run(cfg: &Config, shutdown: Shutdown) -> Result<Outcome> {
    info!("{}", msg::launching(cfg.dry_run));
    info!("{}", msg::CONNECTING);
    debug!("Configuration: {cfg:?}");
    let mut outcome = Outcome::default();
    let ec2 = match shutdown.race(Ec2::connect(&cfg.aws)).await {
        Ok(ec2) => ec2?,
        Err(sig) => return Ok(interrupted(outcome, sig)),
    };
    if cfg.stop_tag {
        match shutdown.race(ec2.instances_with_tag_key(STOP_TAG)).await {
            Ok(marked) => cold::recover(&ec2, cfg, marked?, &mut outcome).await,
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
    let ctx = Arc::new(Ctx::new(cfg.clone(), ec2, shutdown, volume_tags));
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
    let done = if ctx.cfg.no_snap {
        Some(Done::default())
    } else {
        let kind = if ctx.cfg.cold {
            SnapshotKind::Cold
        } else {
            SnapshotKind::Hot
        };
        let (cfg, now) = (&ctx.cfg, Utc::now());
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
        if cold::needed(cfg, &instance, &plan) {
            cold::cycle(&ctx, &instance, &plan, &mut outcome).await
        } else {
            let mut done = Done::default();
            snapshot::make(&ctx, kind, &instance, &plan, None, &mut done, &mut outcome).await;
            (!ctx.shutdown.is_set()).then_some(done)
        }
    };
    if let Some(done) = done {
        if ctx.cfg.retention.is_enabled() && !ctx.shutdown.is_set() {
            prune::prune(&ctx, &instance, snapshots, sets, &done, &mut outcome).await;
        }
    }
    outcome
}

/// What retention looks at: per volume, the snapshots without the set tag that pass
/// `--snap-filter`; per instance, its sets (`--consistent`) whose members all pass it.
#[derive(Default)]
struct Listed {
    by_volume: HashMap<String, Vec<Snapshot>>,
    sets: HashMap<String, Vec<Set>>,
    /// `--copy-to`: every listed snapshot of each processed volume that passes `--snap-filter`,
    /// set members included.
    for_copies: HashMap<String, Vec<Snapshot>>,
}

/// Without `--consistent`: this account's snapshots of the processed volumes, in batches by
/// volume id. With it: every snapshot this account owns, in pages, so that a set is found whole,
/// members of volumes detached since included. Set members are pruned only by set rules, so only
/// by `--consistent` runs.
async fn prefetch_snapshots(ec2: &Ec2, cfg: &Config, processed: &[Instance]) -> Result<Listed> {
    let mut listed = Listed::default();
    if !cfg.retention.is_enabled() && cfg.copy.is_none() {
        return Ok(listed);
    }
    let volumes = unique_volumes(processed.iter().flat_map(|i| i.disks.iter()));
    let all = if cfg.consistent {
        ec2.own_snapshots().await?
    } else {
        ec2.snapshots_of(&volumes, &cfg.snap_filter).await?
    };
    let volumes: HashSet<String> = volumes.into_iter().collect();
    if cfg.copy.is_some() {
        for snap in &all {
            if volumes.contains(&snap.volume_id) && matches_all(&cfg.snap_filter, &snap.tags) {
                listed
                    .for_copies
                    .entry(snap.volume_id.clone())
                    .or_default()
                    .push(snap.clone());
            }
        }
    }
    let (loose, sets) = retention::group_sets(all);
    for snap in loose {
        if volumes.contains(&snap.volume_id) && matches_all(&cfg.snap_filter, &snap.tags) {
            listed
                .by_volume
                .entry(snap.volume_id.clone())
                .or_default()
                .push(snap);
        }
    }
    if cfg.consistent {
        let ids: HashSet<&str> = processed.iter().map(|i| i.id.as_str()).collect();
        for set in retention::sets_matching(sets, &cfg.snap_filter) {
            let instance = plan::set_instance(&set.id);
            if ids.contains(instance) {
                listed
                    .sets
                    .entry(instance.to_string())
                    .or_default()
                    .push(set);
            }
        }
    }
    Ok(listed)
}

/// Volume tags are needed to tag the snapshots of a real run, and in a dry run with `-d` to know
/// whether the planned snapshots pass `--snap-filter` (they then count among the newest).
async fn prefetch_volume_tags(
    ec2: &Ec2,
    cfg: &Config,
    processed: &[Instance],
) -> Result<HashMap<String, Tags>> {
    // With --consistent, EC2 copies the volumes' tags itself (CopyTagsFromSource).
    let filter_check = cfg.retention.keep_last > 0 && !cfg.snap_filter.is_empty();
    let needed = if cfg.consistent {
        cfg.dry_run && filter_check
    } else {
        !cfg.dry_run || filter_check
    };
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
            for id in select::missing_ids(ids, &by_ids) {
                error!("Instance {id} not found");
                outcome.snapshot_errors += 1;
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

fn unique_volumes<'a>(disks: impl Iterator<Item = &'a Disk>) -> Vec<String> {
    let mut v: Vec<String> = disks.map(|d| d.volume_id.clone()).collect();
    v.sort();
    v.dedup();
    v
}
