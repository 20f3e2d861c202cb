//! A run over many accounts and regions: its targets (regions checked, `-r all` asked of each
//! account), each one the whole pipeline of `run::run` with its own record and log prefix, at
//! most `--parallel-targets` at once; a target that fails is a counted error, the others go on.

use crate::aws::Ec2;
use crate::config::fleet::{self, Regions};
use crate::config::Config;
use crate::output::log::Level;
use crate::output::messages as msg;
use crate::output::record::{Failure, Kind, Record, TargetId};
use crate::signals::{Shutdown, Signal};
use anyhow::{bail, Context, Result};
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{error, info, Instrument};

/// One target: its name and its configuration (its region, its account's role).
pub struct Target {
    pub id: TargetId,
    pub config: Config,
}

/// An account whose regions (`-r all`) could not be read: one failed target, the others go on.
pub struct Unreachable {
    pub id: TargetId,
    pub error: anyhow::Error,
}

/// The targets of `cfg`, in account order then region order, and the accounts of `-r all` whose
/// regions could not be read (their role refused, DescribeRegions refused). `Err` before any
/// change: a region AWS does not know, no base region.
pub async fn targets(cfg: &Config) -> Result<(Vec<Target>, Vec<Unreachable>)> {
    let owned;
    let fleet = match &cfg.fleet.org {
        Some(org) => {
            owned = fleet::Fleet {
                accounts: org_accounts(cfg, org).await?,
                ..cfg.fleet.clone()
            };
            &owned
        }
        None => &cfg.fleet,
    };
    let named = fleet::named_regions(fleet);
    // Where the base credentials have no region, the regions are asked of a named one, or of
    // us-east-1, which every account of the standard partition has.
    let (base, default) = match Ec2::connect(&cfg.aws).await {
        Ok(base) => {
            let region = base.region().to_string();
            (base, Some(region))
        }
        Err(_) if cfg.aws.region.is_none() => {
            let mut settings = cfg.aws.clone();
            settings.region = Some(named.first().copied().unwrap_or("us-east-1").to_string());
            (Ec2::connect(&settings).await?, None)
        }
        Err(e) => return Err(e),
    };
    if !named.is_empty() {
        let known = base
            .regions(true)
            .await
            .context("Cannot check the regions given (-r, --accounts)")?;
        if let Some(bad) = named.iter().find(|r| !known.iter().any(|k| k == *r)) {
            bail!(
                "Unknown region {bad:?} (-r, --accounts): AWS knows {}",
                known.join(", ")
            );
        }
    }
    let mut enabled = Vec::new();
    let mut unreachable = Vec::new();
    for account in &fleet.accounts {
        enabled.push(match (&fleet.regions, &account.regions) {
            (Regions::All, None) => {
                let label = account_label(&account.name);
                let mut settings = cfg.aws.clone();
                settings.region = Some(base.region().to_string());
                settings.role = account.role.clone();
                let regions = async { Ec2::connect(&settings).await?.regions(false).await }
                    .await
                    .with_context(|| format!("Cannot list the regions of {label} (-r all)"));
                match regions {
                    Ok(regions) => Some(regions),
                    Err(error) => {
                        // That account has no target this run; the others' go on.
                        let id = TargetId {
                            account: account.name.clone(),
                            region: "all".to_string(),
                        };
                        unreachable.push(Unreachable { id, error });
                        Some(Vec::new())
                    }
                }
            }
            _ => None,
        });
    }
    let mut list = fleet::targets(fleet, default.as_deref(), &enabled)?;
    // --shard K/N: this worker's targets only.
    if let Some(shard) = &fleet.shard {
        list.retain(|(n, region)| {
            fleet
                .accounts
                .get(*n)
                .is_some_and(|a| shard.takes(&a.name, region))
        });
        info!("Shard {}: {} targets", shard.label(), list.len());
    }
    let targets = list
        .into_iter()
        .filter_map(|(n, region)| {
            let account = fleet.accounts.get(n)?;
            Some(Target {
                id: TargetId {
                    account: account.name.clone(),
                    region: region.clone(),
                },
                config: cfg.for_target(account, &region),
            })
        })
        .collect();
    Ok((targets, unreachable))
}

/// The accounts of `--accounts-from-org`: the Organization's (those under `--org-unit`), read
/// with the base credentials. `Err` before any change: Organizations refused, no account left.
async fn org_accounts(cfg: &Config, source: &fleet::OrgSource) -> Result<Vec<fleet::Account>> {
    use crate::aws::org::Org;
    let org = Org::connect(&cfg.aws).await?;
    let context = "Cannot read the Organization's accounts (--accounts-from-org)";
    let management = org.management_account().await.context(context)?;
    let all =
        if source.units.is_empty() {
            org.accounts().await.context(context)?
        } else {
            let mut all = Vec::new();
            for unit in &source.units {
                all.extend(org.accounts_under(unit).await.with_context(|| {
                    format!("Cannot list the accounts under {unit} (--org-unit)")
                })?);
            }
            all
        };
    let mut tags = std::collections::HashMap::new();
    if !source.tags.is_empty() {
        for a in all.iter().filter(|a| a.status == "ACTIVE") {
            let t = org.tags(&a.id).await.with_context(|| {
                format!("Cannot read the tags of account {} (--account-tag)", a.id)
            })?;
            tags.insert(a.id.clone(), t);
        }
    }
    let accounts = fleet::org_accounts(&all, &management, source, &tags);
    if accounts.is_empty() {
        bail!("--accounts-from-org: no ACTIVE account of the Organization is selected");
    }
    info!(
        "Organization: {} of {} accounts selected (--accounts-from-org)",
        accounts.len(),
        all.len()
    );
    Ok(accounts)
}

/// `work` for each target, at most `at_once` at once, each in a span that prefixes its log lines
/// with `[account/region]`; the results in the targets' order.
pub async fn each<T, F, Fut>(targets: Vec<Target>, at_once: usize, work: F) -> Vec<T>
where
    F: Fn(Target) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let permits = Arc::new(Semaphore::new(at_once));
    let mut tasks = JoinSet::new();
    for (n, target) in targets.into_iter().enumerate() {
        let permits = Arc::clone(&permits);
        let span = tracing::info_span!(target: "ec2snap", "target", prefix = %target.id.label());
        let job = work(target);
        let task = async move {
            // The semaphore is never closed, so acquiring cannot fail.
            let _permit = permits.acquire_owned().await.ok();
            (n, job.await)
        };
        tasks.spawn(task.instrument(span));
    }
    let mut out = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(one) => out.push(one),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
    }
    out.sort_by_key(|(n, _)| *n);
    out.into_iter().map(|(_, t)| t).collect()
}

/// The `-i` ids no target of the run found: one counted ERROR each, for the fleet.
pub fn found_nowhere(record: &Record) {
    for id in record.found_nowhere() {
        let line = msg::instance_not_found_anywhere(&id);
        crate::select::fetch::not_found(record, &id, line);
    }
}

/// A target that failed as a whole: one counted ERROR naming it, in its own record.
fn failed_target(record: &Record, id: &TargetId, e: &anyhow::Error) {
    let label = id.label();
    let line = msg::target_failed(&label, e);
    let message = format!("{e:#}");
    let failure = Failure::other(Level::Error, line, "Target", &label, Kind::Target, message);
    record.failed(None, failure);
}

fn account_label(name: &str) -> String {
    if name.is_empty() {
        "the base account".to_string()
    } else {
        format!("account {name}")
    }
}

/// The run: `run::run` itself for one target (the original's run, log lines unchanged); else
/// every target, each in a span that prefixes its log lines with `[account/region]`.
pub async fn run(cfg: &Config, shutdown: Shutdown, record: Arc<Record>) -> Result<Option<Signal>> {
    if cfg.fleet.is_single() {
        return super::run(cfg, shutdown, record).await;
    }
    let (targets, unreachable) = match shutdown.race(targets(cfg)).await {
        Ok(found) => found?,
        Err(sig) => {
            error!("{}", msg::interrupted(sig.name()));
            return Ok(Some(sig));
        }
    };
    for Unreachable { id, error } in unreachable {
        // Its line has the target's prefix, as a target's own lines do.
        let span = tracing::info_span!(target: "ec2snap", "target", prefix = %id.label());
        span.in_scope(|| failed_target(&record.target(id.clone()), &id, &error));
    }
    // Several targets' bars would draw over each other: their log lines say the progress.
    crate::output::log::without_progress_bars();
    info!(
        "{}",
        msg::fleet_starting(
            targets.len(),
            cfg.fleet.accounts.len(),
            cfg.fleet.parallel_targets
        )
    );
    each(
        targets,
        cfg.fleet.parallel_targets,
        |Target { id, config }| {
            let record = record.target(id.clone());
            let shutdown = shutdown.clone();
            async move {
                if shutdown.is_set() {
                    return;
                }
                if let Err(e) = super::run(&config, shutdown, Arc::clone(&record)).await {
                    failed_target(&record, &id, &e);
                }
            }
        },
    )
    .await;
    found_nowhere(&record);
    // The original's line, once for the fleet, when no target had an instance to work on.
    if record.instance_count() == 0 && !shutdown.is_set() && record.counts().snapshot_errors == 0 {
        error!("{}", msg::NO_INSTANCES);
    }
    Ok(shutdown.signal())
}
