//! A run's vault step (`--vault-role`), after every instance's work: each processed volume's
//! newest completed backup without a vault copy is shared with the vault account, copied there by
//! the vault role (encrypted, tagged, locked with `--vault-lock`), and the share is closed once
//! the vault copy is completed (this run with `--wait`, else the next). Through the vault role this
//! step creates, tags and locks; it never deletes anything in the vault.

use crate::act::ctx::Ctx;
use crate::act::gate::{self, Sent};
use crate::aws::{Change, Ec2};
use crate::config::vault::{client_settings, key_account, VaultPolicy};
use crate::model::{Disk, Instance, Snapshot, SnapshotState, Tags};
use crate::output::log::Level;
use crate::output::messages as msg;
use crate::output::record::{CopyEntry, Failure, Kind};
use crate::retention::apply::{self as prune, Lock};
use crate::tags::{SOURCE_SNAPSHOT_TAG, VAULT_INTERMEDIATE_TAG, VAULT_SHARED_TAG};
use crate::vault::policy;
use anyhow::{anyhow, bail};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// What a run with `--vault-role` checks before any change (an error stops it, exit 1): the vault
/// is another account than these credentials', its region is enabled, `--share-kms-key` is a key
/// of this account. The account these credentials act in.
pub async fn check(ec2: &Ec2, vault: &VaultPolicy) -> anyhow::Result<String> {
    let account = ec2.account().await.map_err(|e| {
        anyhow!("Cannot tell this account (sts:GetCallerIdentity), which --vault-role needs: {e}")
    })?;
    if account == vault.account {
        bail!("{}", msg::vault_same_account(&account));
    }
    if let Some(key_account) = vault.share_kms_key.as_deref().and_then(key_account) {
        if key_account != account {
            bail!("--share-kms-key is a key of account {key_account}: give a key of this account ({account}), granted to the vault account");
        }
    }
    if let Some(region) = &vault.region {
        if !ec2.regions(false).await?.contains(region) {
            bail!("{}", msg::vault_no_region(region));
        }
    }
    Ok(account)
}

/// This account's vault copies of this region's snapshots (`home`'s), read with the vault role
/// (`list --vault-role`, `check --check-vault`), with their locks; and the vault's region.
pub async fn copies_of_this_account(
    home: &Ec2,
    base: &crate::aws::settings::AwsSettings,
    vault: &crate::config::restore::FromVault,
) -> anyhow::Result<(String, Vec<Snapshot>)> {
    use crate::tags::{SOURCE_ACCOUNT_TAG, SOURCE_REGION_TAG};
    use anyhow::Context;
    let account = home
        .account()
        .await
        .map_err(|e| anyhow!("Cannot tell this account (sts:GetCallerIdentity): {e}"))?;
    let settings = client_settings(base, &vault.role, vault.region.as_ref(), home.region());
    let client = Ec2::connect(&settings).await?;
    let made = client
        .snapshots_tagged(SOURCE_SNAPSHOT_TAG)
        .await
        .context("Cannot list the vault's copies")?;
    let mut ours: Vec<Snapshot> = made
        .into_iter()
        .filter(|c| c.tags.get(SOURCE_ACCOUNT_TAG) == Some(&account))
        .filter(|c| c.tags.get(SOURCE_REGION_TAG).map(String::as_str) == Some(home.region()))
        .collect();
    crate::retention::apply::read_holds(&client, &mut ours).await;
    Ok((client.region().to_string(), ours))
}

/// The vault step of a run over `processed`, as `account`.
pub async fn vault(ctx: &Arc<Ctx>, vault: &VaultPolicy, account: &str, processed: &[Instance]) {
    let settings = client_settings(
        &ctx.cfg.aws,
        &vault.role,
        vault.region.as_ref(),
        ctx.ec2.region(),
    );
    let place = msg::vault_place(
        &vault.account,
        settings.region.as_deref().unwrap_or_default(),
    );
    let reached = async {
        let client = Ec2::connect(&settings).await?;
        let copies = client.snapshots_tagged(SOURCE_SNAPSHOT_TAG).await?;
        anyhow::Ok((client, copies))
    };
    // What stops the vault step: one ERROR; the local backups are made already.
    let unreachable = |action: &str, resource: &str, e: anyhow::Error| {
        let line = msg::vault_unreachable(&vault.role.arn, &format!("{e:#}"));
        let failure = Failure::other(
            Level::Error,
            line,
            action,
            resource,
            Kind::Aws,
            format!("{e:#}"),
        );
        ctx.record.failed(None, failure);
    };
    let (client, copies) = match ctx.shutdown.race(reached).await {
        Ok(Ok(reached)) => reached,
        Ok(Err(e)) => return unreachable("AssumeRole", &vault.role.arn, e),
        Err(_) => return,
    };
    let volumes: Vec<String> = processed
        .iter()
        .flat_map(|i| i.disks.iter().map(|d| d.volume_id.clone()))
        .collect();
    let reads = async {
        let listed = ctx.ec2.snapshots_of(&volumes, &[]).await?;
        let intermediates = ctx.ec2.snapshots_tagged(VAULT_INTERMEDIATE_TAG).await?;
        anyhow::Ok((listed, intermediates))
    };
    let (listed, intermediates) = match ctx.shutdown.race(reads).await {
        Ok(Ok(read)) => read,
        Ok(Err(e)) => return unreachable("DescribeSnapshots", ctx.ec2.region(), e),
        Err(_) => return,
    };
    let copied = policy::copied(&copies, account);
    let step = Step {
        ctx,
        vault,
        client: &client,
        account,
        place: &place,
        processed,
    };
    // A dry run with --wait: the real run copies tonight's snapshots, which exist only as
    // planned ones here. Said as such, so that the dry run shows what the run does.
    let planned: Vec<Snapshot> = if gate::is_dry(ctx)
        && ctx.cfg.wait.is_some()
        && ctx.cfg.snapshot.is_some()
    {
        processed
            .iter()
            .flat_map(|i| crate::snapshot::plan::disks_to_snapshot(i, ctx.cfg.no_root_device))
            .map(|d| {
                let id = crate::snapshot::plan::planned_id(&d.volume_id);
                crate::snapshot::plan::pending(id, &d.volume_id, Tags::new(), crate::clock::now())
            })
            .collect()
    } else {
        Vec::new()
    };
    let sources: Vec<&Snapshot> = if planned.is_empty() {
        policy::to_copy(&listed, &volumes, &copied)
    } else {
        planned.iter().collect()
    };
    let mut shared_now = std::collections::HashSet::new();
    for source in sources {
        if ctx.shutdown.is_set() {
            return;
        }
        if crate::snapshot::plan::is_planned(&source.id) {
            step.copy(source, &source.id).await;
        } else if let Some(shared) = step.share(source, &intermediates).await {
            step.copy(source, &shared).await;
            shared_now.insert(shared);
        }
    }
    step.close(&shared_now).await;
}

/// What the vault step works with.
struct Step<'a> {
    ctx: &'a Arc<Ctx>,
    vault: &'a VaultPolicy,
    /// The vault role's client, in the vault's region.
    client: &'a Ec2,
    /// The account of the snapshots (these credentials').
    account: &'a str,
    place: &'a str,
    processed: &'a [Instance],
}

impl Step<'_> {
    /// The instance a volume belongs to, and its disk.
    fn disk(&self, volume_id: &str) -> (Option<&str>, Disk) {
        for i in self.processed {
            if let Some(d) = i.disks.iter().find(|d| d.volume_id == volume_id) {
                return (Some(i.id.as_str()), d.clone());
            }
        }
        let disk = Disk {
            volume_id: volume_id.to_string(),
            device: "?".into(),
        };
        (None, disk)
    }

    /// Shares `source` with the vault account (marked first, so that a run killed in between
    /// still closes the share); one encrypted with the default key goes through an intermediate
    /// copy with `--share-kms-key`. What the vault copies from, `None` when it cannot now.
    async fn share(&self, source: &Snapshot, intermediates: &[Snapshot]) -> Option<String> {
        let ctx = self.ctx;
        let (owner, _) = self.disk(&source.volume_id);
        // An intermediate copy made by an earlier run: shared once completed.
        if let Some(made) = policy::intermediate_of(intermediates, &source.id) {
            if made.state != SnapshotState::Completed {
                return None;
            }
            return self.share_copy(&made.id, owner).await;
        }
        let ids = [source.id.clone()];
        let mark = Change::Tag {
            ids: &ids,
            key: VAULT_SHARED_TAG,
            value: &self.vault.account,
        };
        if let Sent::Answered(Err(e)) = gate::send(ctx, &ctx.ec2, &mark, &source.id).await {
            warn!("{}", msg::vault_share_failed(&source.id, &e.to_string()));
        }
        let share = Change::Share {
            snapshot_id: &source.id,
            account: &self.vault.account,
        };
        let answer = match gate::send(ctx, &ctx.ec2, &share, &source.id).await {
            Sent::Dry | Sent::Answered(Ok(_)) => return Some(source.id.clone()),
            Sent::Interrupted(_) => return None,
            Sent::Answered(Err(e)) => e,
        };
        // Not shared: the mark goes (an intermediate copy carries its own).
        let unmark = Change::Untag {
            id: &source.id,
            key: VAULT_SHARED_TAG,
        };
        gate::send(ctx, &ctx.ec2, &unmark, &source.id).await;
        match answer {
            e if e.is("UnauthorizedOperation") => {
                let line = msg::vault_share_failed(&source.id, &e.to_string());
                let failure = Failure::aws(Level::Error, line, share.action(), &source.id, &e);
                ctx.record.failed(owner, failure);
                None
            }
            e => match self.vault.share_kms_key.as_deref() {
                Some(key) => self.intermediate(source, key, owner).await,
                None => {
                    let line = msg::vault_needs_share_key(&source.id, &e.to_string());
                    let failure = Failure::aws(Level::Error, line, share.action(), &source.id, &e);
                    ctx.record.failed(owner, failure);
                    None
                }
            },
        }
    }

    /// A copy of `source` re-encrypted with `key` (a key of this account granted to the vault),
    /// tagged with what it stands for and as shared; shared at once when it is completed, else by
    /// a later run.
    async fn intermediate(
        &self,
        source: &Snapshot,
        key: &str,
        owner: Option<&str>,
    ) -> Option<String> {
        let ctx = self.ctx;
        let tags: Tags = [
            (VAULT_INTERMEDIATE_TAG.to_string(), source.id.clone()),
            (VAULT_SHARED_TAG.to_string(), self.vault.account.clone()),
        ]
        .into();
        let write = Change::CopySnapshot {
            source_region: ctx.ec2.region(),
            source_id: &source.id,
            description: &source.description,
            tags: &tags,
            kms_key: Some(key),
            encrypt: true,
        };
        let id = match gate::send(ctx, &ctx.ec2, &write, &source.id).await.id() {
            None => {
                info!("{}", msg::vault_intermediate(&source.id, None));
                return Some(source.id.clone());
            }
            Some(Ok(id)) => id,
            Some(Err(e)) => {
                let line = msg::copy_failed(&source.id, ctx.ec2.region(), &e.to_string());
                let failure = Failure::aws(Level::Error, line, write.action(), &source.id, &e);
                ctx.record.failed(owner, failure);
                return None;
            }
        };
        info!("{}", msg::vault_intermediate(&source.id, Some(&id)));
        // Shareable once completed: now (a small snapshot), else by the next run.
        let completed = state(&ctx.ec2, &id).await == Some(SnapshotState::Completed);
        if !completed {
            return None;
        }
        self.share_copy(&id, owner).await
    }

    /// Shares an intermediate copy (tagged shared at its creation) with the vault account.
    async fn share_copy(&self, id: &str, owner: Option<&str>) -> Option<String> {
        let ctx = self.ctx;
        let share = Change::Share {
            snapshot_id: id,
            account: &self.vault.account,
        };
        match gate::send(ctx, &ctx.ec2, &share, id).await {
            Sent::Dry | Sent::Answered(Ok(_)) => Some(id.to_string()),
            Sent::Interrupted(_) => None,
            Sent::Answered(Err(e)) => {
                let line = msg::vault_share_failed(id, &e.to_string());
                let failure = Failure::aws(Level::Error, line, share.action(), id, &e);
                ctx.record.failed(owner, failure);
                None
            }
        }
    }

    /// The vault copy of `source` (from `shared`: itself or its intermediate copy), made by the
    /// vault role in the vault's region: encrypted, tagged, locked with `--vault-lock`; with
    /// `--wait`, waited for until completed.
    async fn copy(&self, source: &Snapshot, shared: &str) {
        let ctx = self.ctx;
        let (owner, disk) = self.disk(&source.volume_id);
        let tags = policy::copy_tags(source, ctx.ec2.region(), self.account);
        let write = Change::CopySnapshot {
            source_region: ctx.ec2.region(),
            source_id: shared,
            description: &source.description,
            tags: &tags,
            kms_key: self.vault.kms_key.as_deref(),
            encrypt: true,
        };
        let entry = |id: Option<&str>| CopyEntry {
            id: id.map(String::from),
            source: source.id.clone(),
            volume: disk.volume_id.clone(),
            device: disk.device.clone(),
            region: self.place.to_string(),
            recovery_point_lag_ms: None,
            deferred: None,
        };
        // A dry run's planned snapshot does not exist: nothing to copy, nor to check a
        // permission on.
        let sent = if crate::snapshot::plan::is_planned(shared) {
            Sent::Dry
        } else {
            gate::send(ctx, self.client, &write, &source.id).await
        };
        let id = match sent {
            Sent::Dry => {
                info!("{}", msg::copying(&source.id, &disk, self.place, None));
                return ctx.record.copy(owner.unwrap_or_default(), entry(None));
            }
            Sent::Interrupted(_) => return,
            Sent::Answered(answer) => match answer.and_then(crate::aws::Answer::id) {
                Ok(id) => id,
                Err(e) => {
                    let line = msg::copy_failed(&source.id, self.place, &e.to_string());
                    let failure = Failure::aws(Level::Error, line, write.action(), &source.id, &e)
                        .in_region(self.client.region());
                    return ctx.record.failed(owner, failure);
                }
            },
        };
        info!("{}", msg::copying(&source.id, &disk, self.place, Some(&id)));
        ctx.record.copy(owner.unwrap_or_default(), entry(Some(&id)));
        let now = crate::clock::now();
        if let Some(lock_policy) = self.vault.lock {
            let copy =
                crate::snapshot::plan::pending(id.clone(), &disk.volume_id, tags.clone(), now);
            let group = [copy];
            let protected = [id.clone()].into();
            let decision =
                crate::copies::policy::decide(&group, &self.vault.rule, now, &protected, None);
            let kept = decision.keep.iter().map(|(c, why)| (*c, why.as_slice()));
            for (c, days) in
                crate::retention::lock::to_lock(kept, &self.vault.rule, &lock_policy, now)
            {
                let lock = Lock {
                    days,
                    policy: lock_policy,
                    now,
                    planned: false,
                    stand_in: None,
                };
                let shown = format!("{} in {}", c.id, self.place);
                prune::lock_one(ctx, self.client, owner.unwrap_or_default(), c, shown, lock).await;
            }
        }
        if let Some(wait) = ctx.cfg.wait {
            let deadline = tokio::time::Instant::now() + wait.timeout;
            while state(self.client, &id).await == Some(SnapshotState::Pending)
                && tokio::time::Instant::now() < deadline
                && !ctx.shutdown.is_set()
            {
                let _ = ctx
                    .shutdown
                    .race(tokio::time::sleep(
                        wait.interval.min(Duration::from_secs(60)),
                    ))
                    .await;
            }
        }
    }

    /// Closes the shares whose vault copy is completed (this run's and the earlier runs'): the
    /// share removed, then the mark; an intermediate copy is deleted (it is this account's own).
    async fn close(&self, shared_now: &std::collections::HashSet<String>) {
        let ctx = self.ctx;
        let reads = async {
            let copies = self.client.snapshots_tagged(SOURCE_SNAPSHOT_TAG).await?;
            let shared = ctx.ec2.snapshots_tagged(VAULT_SHARED_TAG).await?;
            anyhow::Ok((copies, shared))
        };
        let (copies, shared) = match ctx.shutdown.race(reads).await {
            Ok(Ok(read)) => read,
            Ok(Err(e)) => {
                return warn!(
                    "{}",
                    msg::vault_share_failed("(listing)", &format!("{e:#}"))
                )
            }
            Err(_) => return,
        };
        let copied = policy::copied(&copies, self.account);
        for close in policy::shares_to_close(&shared, &self.vault.account, &copied, shared_now) {
            let id = close.shared.as_str();
            let unshare = Change::Unshare {
                snapshot_id: id,
                account: &self.vault.account,
            };
            match gate::send(ctx, &ctx.ec2, &unshare, id).await {
                Sent::Answered(Ok(_)) => {}
                Sent::Dry | Sent::Interrupted(_) => continue,
                Sent::Answered(Err(e)) => {
                    warn!("{}", msg::vault_share_failed(id, &e.to_string()));
                    continue;
                }
            }
            let done = if close.intermediate {
                gate::send(ctx, &ctx.ec2, &Change::DeleteSnapshot(id), id).await
            } else {
                let untag = Change::Untag {
                    id,
                    key: VAULT_SHARED_TAG,
                };
                gate::send(ctx, &ctx.ec2, &untag, id).await
            };
            match done {
                Sent::Answered(Ok(_)) => {
                    info!("{}", msg::vault_share_closed(id, close.intermediate))
                }
                Sent::Answered(Err(e)) => warn!("{}", msg::vault_share_failed(id, &e.to_string())),
                Sent::Dry | Sent::Interrupted(_) => {}
            }
        }
    }
}

/// A snapshot's state, `None` when it cannot be read.
async fn state(ec2: &Ec2, id: &str) -> Option<SnapshotState> {
    let found: Result<Vec<Snapshot>, anyhow::Error> = ec2.snapshots_by_ids(&[id.to_string()]).await;
    found.ok()?.into_iter().next().map(|s| s.state)
}
