//! Reading what a run (or a check) works on: the selected instances, the snapshots of their
//! volumes, and the volumes' tags, in as few Describe calls as EC2 allows.

use crate::aws::Ec2;
use crate::config::{Config, Selection};
use crate::model::{matches_all, Disk, Instance, Snapshot, Tags};
use crate::output::log::Level;
use crate::output::messages as msg;
use crate::output::record::{Failure, Kind, Record};
use crate::retention::decide::{self as retention, Set};
use crate::select::pick as select;
use crate::snapshot::plan;
use anyhow::Result;
use std::collections::{HashMap, HashSet};
use tracing::debug;

/// What retention looks at: per volume, the snapshots without the set tag that pass
/// `--snap-filter`; per instance, its sets (`--consistent`) whose members all pass it.
#[derive(Default)]
pub struct Listed {
    pub by_volume: HashMap<String, Vec<Snapshot>>,
    pub sets: HashMap<String, Vec<Set>>,
    /// `--copy-to`: every listed snapshot of each processed volume that passes `--snap-filter`,
    /// set members included.
    pub for_copies: HashMap<String, Vec<Snapshot>>,
    /// `--consistent` with `--prune-orphans-after`: every snapshot this account owns, as listed
    /// (the orphans are looked for in it instead of a second listing).
    pub own: Option<Vec<Snapshot>>,
}

/// Without `--consistent`: this account's snapshots of the processed volumes, in batches by
/// volume id. With it: every snapshot this account owns, in pages, so that a set is found whole,
/// members of volumes detached since included. Set members are pruned only by set rules, so only
/// by `--consistent` runs.
pub async fn prefetch_snapshots(ec2: &Ec2, cfg: &Config, processed: &[Instance]) -> Result<Listed> {
    let mut listed = Listed::default();
    if !cfg.retention.is_enabled() && cfg.copy.is_none() {
        return Ok(listed);
    }
    let volumes = unique_volumes(processed.iter().flat_map(|i| i.disks.iter()));
    let mut all = if cfg.sets() {
        ec2.own_snapshots().await?
    } else {
        ec2.snapshots_of(&volumes, &cfg.snap_filter).await?
    };
    if cfg.retention.is_enabled() {
        crate::retention::apply::read_holds(ec2, &mut all).await;
    }
    if cfg.sets() && cfg.prune_orphans_after.is_some() {
        listed.own = Some(all.clone());
    }
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
    let (by_volume, sets) = retention::listed(all, processed, &cfg.snap_filter, cfg.sets());
    listed.by_volume = by_volume;
    listed.sets = sets;
    Ok(listed)
}

/// The tags of the volumes to snapshot: a real run tags its snapshots with them; a dry run with
/// `-d` or keep rules needs them to know whether its planned snapshots pass `--snap-filter`
/// (they then count for the rules).
pub async fn prefetch_volume_tags(
    ec2: &Ec2,
    cfg: &Config,
    processed: &[Instance],
) -> Result<HashMap<String, Tags>> {
    // With --consistent, EC2 copies the volumes' tags itself (CopyTagsFromSource).
    let filter_check = cfg.retention.keep.any() && !cfg.snap_filter.is_empty();
    let needed = crate::snapshot::plan::volume_tags_needed(cfg.mode, cfg.sets(), filter_check);
    if cfg.snapshot.is_none() || !needed {
        return Ok(HashMap::new());
    }
    let volumes = unique_volumes(
        processed
            .iter()
            .flat_map(|i| plan::disks_to_snapshot(i, cfg.no_root_device)),
    );
    ec2.volume_tags(&volumes).await
}

/// An `-i` id not found: a counted ERROR with EC2's code.
pub fn not_found(record: &Record, id: &str, line: String) {
    let mut failure = Failure::other(
        Level::Error,
        line.clone(),
        "DescribeInstances",
        id,
        Kind::NotFound,
        line,
    );
    failure.entry.code = Some("InvalidInstanceID.NotFound".into());
    record.failed(None, failure);
}

/// The union of `-i` ids and `-t` matches; unknown ids are logged and recorded, or, in a target of
/// a run over many (`in_fleet`), noted for the fleet, which says those no target found.
pub async fn select_instances(
    ec2: &Ec2,
    selection: &Selection,
    record: &Record,
    in_fleet: bool,
) -> Result<Vec<Instance>> {
    let (by_ids, by_tags, patterns) = match selection {
        Selection::All => (ec2.all_instances().await?, vec![], vec![]),
        Selection::Some { ids, tags } => {
            let by_ids = if ids.is_empty() {
                vec![]
            } else {
                ec2.instances_by_ids(ids).await?
            };
            let missing = select::missing_ids(ids, &by_ids);
            if in_fleet {
                record.unfound(missing.clone());
            }
            for id in missing.into_iter().filter(|_| !in_fleet) {
                not_found(record, &id, msg::instance_not_found(&id));
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
        debug!("{}", msg::skipping_instance(id, &state.to_string()));
    }
    Ok(selected.instances)
}

pub fn unique_volumes<'a>(disks: impl Iterator<Item = &'a Disk>) -> Vec<String> {
    let mut v: Vec<String> = disks.map(|d| d.volume_id.clone()).collect();
    v.sort();
    v.dedup();
    v
}
