//! `ec2snap vault-prune`: the vault's own retention, run with the vault account's credentials
//! (never the production account's, whose vault role may not delete). Per source account and
//! volume, the vault copies its rules no longer keep are deleted; never a locked copy, one an AMI
//! uses, nor the max(N, 1) newest completed copies of a volume (the floor).

use crate::act::ctx::Ctx;
use crate::aws::Ec2;
use crate::config::Config;
use crate::model::{Disk, Snapshot};
use crate::output::messages as msg;
use crate::output::record::{DeletedEntry, Record};
use crate::retention::apply as prune;
use crate::signals::{Shutdown, Signal};
use crate::tags::SOURCE_SNAPSHOT_TAG;
use crate::vault::policy;
use anyhow::{Context, Result};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tracing::info;

/// The vault's retention; the signal that cut it short, if one did.
pub async fn prune(
    cfg: &Config,
    shutdown: Shutdown,
    record: Arc<Record>,
) -> Result<Option<Signal>> {
    let Some(options) = cfg.vault_prune.clone() else {
        return Ok(None);
    };
    info!("{}", msg::launching(cfg.mode));
    info!("{}", msg::CONNECTING);
    let read = async {
        let ec2 = Ec2::connect(&cfg.aws).await?;
        let mut copies = ec2
            .snapshots_tagged(SOURCE_SNAPSHOT_TAG)
            .await
            .context("Cannot list the vault's copies")?;
        prune::read_holds(&ec2, &mut copies).await;
        anyhow::Ok((ec2, copies))
    };
    let (ec2, copies) = match shutdown.race(read).await {
        Ok(read) => read?,
        Err(sig) => return Ok(Some(sig)),
    };
    record.region(ec2.region());
    let region = ec2.region().to_string();
    let ctx = Arc::new(Ctx::new(cfg.clone(), ec2, shutdown, HashMap::new(), record));
    let now = crate::clock::now();
    let reason = options.rule.deletion_reason();
    for ((account, volume), group) in policy::groups(&copies, &options.source_accounts) {
        let group: Vec<Snapshot> = group.into_iter().cloned().collect();
        let decision =
            crate::copies::policy::decide(&group, &options.rule, now, &HashSet::new(), None);
        info!(
            "{}",
            msg::vault_pruning(
                &account,
                &volume,
                decision.keep.len(),
                decision.delete.len()
            )
        );
        for copy in decision.delete {
            if ctx.shutdown.is_set() {
                break;
            }
            let device = copy
                .tags
                .get("device")
                .cloned()
                .unwrap_or_else(|| "?".into());
            let disk = Disk {
                volume_id: volume.clone(),
                device,
            };
            let line = msg::deleting_copy(&copy.id, &disk, &region);
            let gone = DeletedEntry {
                id: copy.id.clone(),
                volume: volume.clone(),
                start_time: copy.start_time.to_rfc3339(),
                reason,
                region: Some(region.clone()),
            };
            prune::delete_snapshot(&ctx, &ctx.ec2, None, line, gone).await;
        }
    }
    Ok(ctx.shutdown.signal())
}
