//! `ec2snap hold` and `ec2snap release`: a legal hold (`ec2snap:hold`, with who and when) put on
//! or taken off snapshots: named ones, whole sets, the selected instances' newest backup, and
//! with `--copy-to` their copies. Everything it acts on is found first: a snapshot that does not
//! exist or is not this account's stops it before any change (exit 1).

use crate::act::ctx::Ctx;
use crate::act::gate::Sent;
use crate::aws::{Change, Ec2};
use crate::config::hold::HoldOptions;
use crate::config::Config;
use crate::model::{Snapshot, SnapshotState};
use crate::output::log::Level;
use crate::output::messages as msg;
use crate::output::record::{Failure, Record};
use crate::retention::hold::{hold_tags, HOLD_TAGS};
use crate::retention::lock;
use crate::signals::{Shutdown, Signal};
use crate::tags::{is_ours, HOLD_TAG, SET_TAG, SOURCE_SNAPSHOT_TAG};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tracing::{info, warn};

/// Puts (or ends) the holds; the signal that cut it short, if one did.
pub async fn hold(cfg: &Config, shutdown: Shutdown, record: Arc<Record>) -> Result<Option<Signal>> {
    let Some(options) = cfg.hold.clone() else {
        return Ok(None);
    };
    info!("{}", msg::launching(cfg.mode));
    info!("{}", msg::CONNECTING);
    let ec2 = Ec2::connect(&cfg.aws).await?;
    record.region(ec2.region());
    let found = match shutdown.race(find(cfg, &options, &ec2, &record)).await {
        Ok(found) => found?,
        Err(sig) => return Ok(Some(sig)),
    };
    let who = if options.release {
        String::new()
    } else {
        match ec2.caller_arn().await {
            Ok(arn) => arn,
            Err(e) => {
                warn!("Cannot tell who puts the hold (sts:GetCallerIdentity): {e}");
                "(unknown)".into()
            }
        }
    };
    let ctx = Arc::new(Ctx::new(cfg.clone(), ec2, shutdown, HashMap::new(), record));
    let tags = hold_tags(&options.reason, &who, crate::clock::now());
    for (region, snapshots) in &found {
        let other;
        let ec2: &Ec2 = if region == ctx.ec2.region() {
            &ctx.ec2
        } else {
            other = ctx.ec2.in_region(region);
            &other
        };
        for s in snapshots {
            if ctx.shutdown.is_set() {
                break;
            }
            if options.release {
                release_one(&ctx, ec2, s).await;
            } else {
                hold_one(&ctx, ec2, s, &tags, &options).await;
            }
        }
    }
    Ok(ctx.shutdown.signal())
}

/// Everything to act on, by region (the home region first), each snapshot once, oldest first.
async fn find(
    cfg: &Config,
    options: &HoldOptions,
    ec2: &Ec2,
    record: &Record,
) -> Result<BTreeMap<String, Vec<Snapshot>>> {
    let region = ec2.region().to_string();
    let mut found: Vec<Snapshot> = Vec::new();
    if !options.snapshots.is_empty() {
        let got = ec2.snapshots_by_ids(&options.snapshots).await?;
        let missing: Vec<&str> = options
            .snapshots
            .iter()
            .filter(|id| !got.iter().any(|s| &s.id == *id))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            bail!(
                "No snapshot {} of this account in {region}: nothing was changed",
                missing.join(", ")
            );
        }
        found.extend(got);
    }
    for set in &options.sets {
        let members = ec2
            .snapshots_with_tag(SET_TAG, std::slice::from_ref(set))
            .await?;
        if members.is_empty() {
            bail!("--set {set}: no snapshot of this account in {region} belongs to it: nothing was changed");
        }
        found.extend(members);
    }
    if options.by_instance {
        let instances =
            crate::select::fetch::select_instances(ec2, &cfg.selection, record, false).await?;
        if instances.is_empty() {
            bail!("No instance selected by -i/-t in {region}: nothing was changed");
        }
        let volumes: Vec<String> = instances
            .iter()
            .flat_map(|i| i.disks.iter().map(|d| d.volume_id.clone()))
            .collect();
        let all = ec2.snapshots_of(&volumes, &cfg.snap_filter).await?;
        let all: Vec<Snapshot> = all
            .into_iter()
            .filter(|s| crate::model::matches_all(&cfg.snap_filter, &s.tags))
            .collect();
        let picked = if options.release {
            all.into_iter()
                .filter(|s| s.tags.contains_key(HOLD_TAG))
                .collect()
        } else {
            newest_backups(all, &volumes)
        };
        if picked.is_empty() && !options.release {
            bail!("No completed backup of the selected instances in {region}: nothing was changed");
        }
        found.extend(picked);
    }
    // A set is held (and released) whole.
    let sets: Vec<String> = found
        .iter()
        .filter_map(|s| s.tags.get(SET_TAG).cloned())
        .filter(|set| !options.sets.contains(set))
        .collect();
    if !sets.is_empty() {
        found.extend(ec2.snapshots_with_tag(SET_TAG, &sets).await?);
    }
    let mut by_region: BTreeMap<String, Vec<Snapshot>> = BTreeMap::new();
    by_region.insert(region.clone(), dedup(found));
    let sources: Vec<String> = by_region[&region].iter().map(|s| s.id.clone()).collect();
    for r in &options.copy_to {
        let copies = ec2
            .in_region(r)
            .snapshots_with_tag(SOURCE_SNAPSHOT_TAG, &sources)
            .await
            .with_context(|| format!("Cannot list the copies in {r}"))?;
        if copies.is_empty() {
            warn!("No copy in {r} of the snapshots named");
        }
        by_region.insert(r.clone(), dedup(copies));
    }
    // Locks are read so that a compliance lock's first time carries its cool-off.
    for (r, snapshots) in by_region.iter_mut() {
        let client = if *r == region {
            None
        } else {
            Some(ec2.in_region(r))
        };
        crate::retention::apply::read_holds(client.as_ref().unwrap_or(ec2), snapshots).await;
    }
    Ok(by_region)
}

/// Per volume, its newest completed snapshot made by this tool (the set it is in comes with it).
fn newest_backups(all: Vec<Snapshot>, volumes: &[String]) -> Vec<Snapshot> {
    let mut newest: HashMap<&str, &Snapshot> = HashMap::new();
    for s in all
        .iter()
        .filter(|s| s.state == SnapshotState::Completed && is_ours(s))
    {
        let slot = newest.entry(s.volume_id.as_str()).or_insert(s);
        if (s.start_time, &s.id) > (slot.start_time, &slot.id) {
            *slot = s;
        }
    }
    volumes
        .iter()
        .filter_map(|v| newest.get(v.as_str()).map(|s| (*s).clone()))
        .collect()
}

/// Each snapshot once, oldest first.
fn dedup(mut snapshots: Vec<Snapshot>) -> Vec<Snapshot> {
    snapshots.sort_by(|a, b| (a.start_time, &a.id).cmp(&(b.start_time, &b.id)));
    snapshots.dedup_by(|a, b| a.id == b.id);
    snapshots
}

async fn hold_one(
    ctx: &Ctx,
    ec2: &Ec2,
    s: &Snapshot,
    tags: &crate::model::Tags,
    options: &HoldOptions,
) {
    let region = ec2.region();
    let ids = [s.id.clone()];
    let change = Change::Tags { ids: &ids, tags };
    match ctx.gate().send(ec2, &change, &s.id).await {
        Sent::Dry => info!(
            "Dry run: would hold {} ({}, {region}): {}",
            s.id, s.volume_id, options.reason
        ),
        Sent::Answered(Ok(_)) => info!(
            "Held {} ({}, {region}): {}",
            s.id, s.volume_id, options.reason
        ),
        Sent::Answered(Err(e)) => {
            let line = format!("Cannot hold {} in {region}: {e}", s.id);
            let failure = Failure::aws(Level::Error, line, "CreateTags", &s.id, &e);
            ctx.record.failed(None, failure.in_region(region));
            return;
        }
        Sent::Interrupted(_) => return,
    }
    let Some((mode, days)) = options.lock else {
        return;
    };
    let cool_off_hours = match mode {
        lock::Mode::Compliance { cool_off_hours } if lock::carries_cool_off(s) => {
            Some(cool_off_hours)
        }
        _ => None,
    };
    let change = Change::LockSnapshot {
        snapshot_id: &s.id,
        mode: mode.name(),
        days,
        cool_off_hours,
    };
    match ctx.gate().send(ec2, &change, &s.id).await {
        Sent::Dry => info!(
            "Dry run: would lock {} ({}) for {days} days",
            s.id,
            mode.name()
        ),
        Sent::Answered(Ok(_)) => info!("Locked {} ({}) for {days} days", s.id, mode.name()),
        Sent::Answered(Err(e)) => {
            let line = format!("Cannot lock {} in {region}: {e}", s.id);
            let failure = Failure::aws(Level::Error, line, "LockSnapshot", &s.id, &e);
            ctx.record.failed(None, failure.in_region(region));
        }
        Sent::Interrupted(_) => {}
    }
}

async fn release_one(ctx: &Ctx, ec2: &Ec2, s: &Snapshot) {
    let region = ec2.region();
    let Some(reason) = s.tags.get(HOLD_TAG) else {
        info!("{} ({region}) is not held: nothing to release", s.id);
        return;
    };
    let change = Change::Untags {
        id: &s.id,
        keys: &HOLD_TAGS,
    };
    match ctx.gate().send(ec2, &change, &s.id).await {
        Sent::Dry => info!(
            "Dry run: would release {} ({region}), held for: {reason}",
            s.id
        ),
        Sent::Answered(Ok(_)) => info!("Released {} ({region}), held for: {reason}", s.id),
        Sent::Answered(Err(e)) => {
            let line = format!("Cannot release {} in {region}: {e}", s.id);
            let failure = Failure::aws(Level::Error, line, "DeleteTags", &s.id, &e);
            ctx.record.failed(None, failure.in_region(region));
        }
        Sent::Interrupted(_) => {}
    }
}
