//! `ec2snap list`: reads the selected instances, every snapshot this account owns in the region
//! (pages of 1,000), the volumes' sizes, and the copies in each `--copy-to` region, then prints
//! the listing (`view`) as a table or JSON (`show`). It changes nothing and sends no DryRun call.

pub mod show;
pub mod view;

use crate::aws::Ec2;
use crate::config::Config;
use crate::model::Tags;
use crate::output::exit::{Abort, ExitCode};
use crate::output::record::Record;
use crate::retention::orphans;
use crate::select::fetch;
use crate::tags::{SOURCE_REGION_TAG, SOURCE_SNAPSHOT_TAG};
use anyhow::{Context, Result};
use std::collections::{HashMap, HashSet};

/// One target's listing in a list over many accounts and regions; `Err`: it could not be read.
pub struct TargetListing {
    pub id: crate::output::record::TargetId,
    pub listing: Result<view::Listing>,
}

/// `list` over many accounts and regions: each target's listing (at most `--parallel-targets`
/// read at once), in account then region order. `Err` before any read: a bad region.
pub async fn fleet(cfg: &Config, record: &std::sync::Arc<Record>) -> Result<Vec<TargetListing>> {
    let (targets, unreachable) = crate::run::fleet::targets(cfg).await?;
    let at_once = cfg.fleet.parallel_targets;
    let listed = crate::run::fleet::each(targets, at_once, |t| {
        let record = record.target(t.id.clone());
        async move {
            let listing = list(&t.config, &record).await;
            if let Err(e) = &listing {
                tracing::error!(
                    "{}",
                    crate::output::messages::target_failed(&t.id.label(), e)
                );
            }
            TargetListing { id: t.id, listing }
        }
    });
    let mut all = listed.await;
    crate::run::fleet::found_nowhere(record);
    for u in unreachable {
        let line = crate::output::messages::target_failed(&u.id.label(), &u.error);
        tracing::error!("{line}");
        all.push(TargetListing {
            id: u.id,
            listing: Err(u.error),
        });
    }
    Ok(all)
}

/// The listing of the selected instances. Instances given with `-i` that do not exist are
/// recorded (and logged) as a run records them.
pub async fn list(cfg: &Config, record: &Record) -> Result<view::Listing> {
    {
        let ec2 = Ec2::connect(&cfg.aws).await?;
        let instances = fetch::select_instances(&ec2, &cfg.selection, record, cfg.in_fleet).await?;
        let processed = match cfg.limit {
            Some(n) => &instances[..n.min(instances.len())],
            None => &instances[..],
        };
        let mut snapshots = ec2.own_snapshots().await?;
        crate::retention::apply::read_holds(&ec2, &mut snapshots).await;
        let mut volume_ids = fetch::unique_volumes(processed.iter().flat_map(|i| i.disks.iter()));
        let known: HashSet<&str> = volume_ids.iter().map(String::as_str).collect();
        let others = orphans::volumes_to_check(&snapshots, &known);
        volume_ids.extend(others);
        let described = ec2.volumes(&volume_ids).await?;
        let sizes: HashMap<String, i32> = described
            .iter()
            .filter_map(|(id, (_, size))| size.map(|s| (id.clone(), s)))
            .collect();
        let volume_tags: HashMap<String, Tags> = described
            .iter()
            .map(|(id, (tags, _))| (id.clone(), tags.clone()))
            .collect();
        let mut existing: HashSet<String> = described.into_keys().collect();
        existing.extend(
            processed
                .iter()
                .flat_map(|i| i.disks.iter().map(|d| d.volume_id.clone())),
        );
        let mut copies = Vec::new();
        for region in cfg.copy.iter().flat_map(|p| p.regions.iter()) {
            let dest = ec2.in_region(region);
            let made = dest
                .snapshots_tagged(SOURCE_SNAPSHOT_TAG)
                .await
                .with_context(|| format!("Cannot list the copies in {region}"))?;
            let mut ours: Vec<_> = made
                .into_iter()
                .filter(|c| c.tags.get(SOURCE_REGION_TAG).map(String::as_str) == Some(ec2.region()))
                .collect();
            crate::retention::apply::read_holds(&dest, &mut ours).await;
            copies.push((region.clone(), ours));
        }
        // --vault-role: the vault copies of this account's snapshots of this region, as a copy
        // region of their own (a run never prunes them).
        if let Some(vault) = &cfg.vault_reader {
            let (region, ours) =
                crate::vault::apply::copies_of_this_account(&ec2, &cfg.aws, vault).await?;
            let place = crate::output::messages::vault_place(&vault.account, &region);
            copies.push((place, ours));
        }
        let input = view::Input {
            instances: processed,
            sizes: &sizes,
            snapshots: &snapshots,
            copies: &copies,
            existing_volumes: &existing,
            rule: cfg.retention.clone(),
            copy_rule: cfg.copy.as_ref().map(|p| p.rule.clone()),
            sets: cfg.sets(),
            snap_filter: &cfg.snap_filter,
            stale_after: cfg.check_max_age,
            next: cfg.snapshot.map(|kind| view::NextRun {
                kind,
                no_root_device: cfg.no_root_device,
                add_tags: &cfg.add_tags,
                volume_tags: &volume_tags,
            }),
            now: crate::clock::now(),
        };
        Ok(view::listing(&input))
    }
}

/// `ec2snap list`: the table (or `--json`) on standard output; exit 2 when an `-i` id does not
/// exist or a target of many could not be read, 128+N on a signal.
pub fn main(job: crate::config::Job<crate::config::ListConfig>) -> Result<ExitCode, Abort> {
    let (config, _) = crate::job::start(job)?;
    let crate::config::ListConfig { config, json } = config.map_err(Abort::Config)?;
    let record = std::sync::Arc::new(Record::default());
    let single = config.fleet.is_single();
    let listed = crate::job::with_runtime(crate::signals::After::Read, |shutdown| {
        let (config, record) = (&config, &record);
        async move {
            Ok(shutdown
                .race(async move {
                    if single {
                        let one = list(config, record).await?;
                        Ok(vec![TargetListing {
                            id: crate::output::record::TargetId {
                                account: String::new(),
                                region: String::new(),
                            },
                            listing: Ok(one),
                        }])
                    } else {
                        fleet(config, record).await
                    }
                })
                .await)
        }
    })
    .map_err(Abort::Setup)?;
    let listings = match listed {
        Ok(listings) => listings.map_err(Abort::Setup)?,
        Err(sig) => {
            tracing::error!("{}", crate::output::messages::interrupted(sig.name()));
            return Ok(ExitCode::Signal(sig));
        }
    };
    let colour = if crate::output::stdout::colour() {
        show::Colour::On
    } else {
        show::Colour::Off
    };
    let failed = listings.iter().any(|t| t.listing.is_err());
    let text = match listings.as_slice() {
        [TargetListing {
            listing: Ok(one), ..
        }] if single => {
            if json {
                show::json(one)
            } else {
                show::table(one, colour)
            }
        }
        many => {
            fn shown(t: &TargetListing) -> Result<&view::Listing, String> {
                t.listing.as_ref().map_err(|e| format!("{e:#}"))
            }
            if json {
                let rows: Vec<_> = many
                    .iter()
                    .map(|t| (t.id.account.clone(), t.id.region.clone(), shown(t)))
                    .collect();
                show::fleet_json(&rows)
            } else {
                let rows: Vec<_> = many.iter().map(|t| (t.id.label(), shown(t))).collect();
                show::fleet_table(&rows, colour)
            }
        }
    };
    crate::output::stdout::print(&text)?;
    Ok(if record.counts().snapshot_errors > 0 || failed {
        ExitCode::Errors
    } else {
        ExitCode::Success
    })
}
