//! `ec2snap restore` and `ec2snap drill`, the sequencing: find the backups (`pick` decides), make
//! their volumes (or an AMI), wait until the volumes are available, attach them (`restore`), or
//! check and always delete them (`drill`). Every outcome goes to the record.

pub mod drill;
pub mod pick;

use crate::act::ctx::Ctx;
use crate::act::gate::{self, Sent};
use crate::aws::{Change, Ec2};
use crate::config::restore::{RestoreOptions, Source};
use crate::config::Config;
use crate::model::{Instance, Snapshot, SnapshotState, Volume, VolumeSpec};
use crate::output::log::Level;
use crate::output::messages as msg;
use crate::output::record::{Failure, ImageEntry, Kind, Record, RestoredEntry};
use crate::retention::decide::group_sets;
use crate::select::fetch;
use crate::signals::{Shutdown, Signal};
use crate::tags::{SET_TAG, SOURCE_REGION_TAG, SOURCE_SNAPSHOT_TAG};
use anyhow::Result;
use pick::{Backup, Member};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{info, warn};

/// How often the new volumes' states are asked for.
const POLL: Duration = Duration::from_secs(2);
/// How long a new volume may take to become available.
const VOLUME_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A backup to restore, with its instance when it still exists.
pub struct Found {
    pub instance: Option<Instance>,
    pub backup: Backup,
}

/// A volume this command made.
#[derive(Debug, Clone)]
pub struct Made {
    pub member: Member,
    pub spec: VolumeSpec,
    pub volume_id: String,
    started: Instant,
    /// Seconds until it was available; `None` until then (or never).
    pub seconds: Option<f64>,
}

impl Made {
    pub fn entry(&self, state: &str) -> RestoredEntry {
        RestoredEntry {
            id: Some(self.volume_id.clone()),
            snapshot: self.member.snapshot.id.clone(),
            source_volume: self.member.source_volume.clone(),
            device: self.member.device.clone(),
            zone: self.spec.zone.clone(),
            state: state.to_string(),
            seconds: self.seconds,
            attached_to: None,
        }
    }
}

/// A failure of `action` on `resource` that is no AWS answer.
fn failure(line: String, action: &str, resource: &str, kind: Kind, message: &str) -> Failure {
    Failure::other(
        Level::Error,
        line,
        action,
        resource,
        kind,
        message.to_string(),
    )
}

/// The run's context for restores: the client of the region the snapshots are in (where the
/// volumes are made), the record, the signal.
pub fn context(cfg: &Config, target: Ec2, shutdown: Shutdown, record: Arc<Record>) -> Ctx {
    Ctx::new(cfg.clone(), target, shutdown, HashMap::new(), record)
}

/// The snapshots backups are found among: this account's in the region, or with
/// `--from-region`, the copies there of this region's snapshots, seen as their sources.
/// `vault_of`: with `--from-vault`, this account (the vault copies of its snapshots).
async fn candidates(home: &Ec2, source: &Ec2, vault_of: Option<&str>) -> Result<Vec<Snapshot>> {
    if source.region() == home.region() && vault_of.is_none() {
        return home.own_snapshots().await;
    }
    let copies = source.snapshots_tagged(SOURCE_SNAPSHOT_TAG).await?;
    Ok(copies
        .into_iter()
        .filter(|c| c.tags.get(SOURCE_REGION_TAG).map(String::as_str) == Some(home.region()))
        .filter(|c| {
            vault_of.is_none_or(|account| {
                c.tags
                    .get(crate::tags::SOURCE_ACCOUNT_TAG)
                    .map(String::as_str)
                    == Some(account)
            })
        })
        .map(pick::as_source)
        .collect())
}

/// The backups to restore: each selected instance's (at or before `--at`), `--snapshot`'s, or
/// `--set`'s. What cannot be found is recorded.
pub async fn find(
    ctx: &Ctx,
    home: &Ec2,
    cfg: &Config,
    opts: &RestoreOptions,
    vault_of: Option<&str>,
) -> Result<Vec<Found>> {
    let source = &ctx.ec2;
    let record = &ctx.record;
    let mut found = Vec::new();
    match &opts.source {
        Source::Instances { at } => {
            let instances = fetch::select_instances(home, &cfg.selection, record, false).await?;
            let processed = match cfg.limit {
                Some(n) => &instances[..n.min(instances.len())],
                None => &instances[..],
            };
            if processed.is_empty() {
                nothing_selected(record, "restore");
            }
            let snapshots = candidates(home, source, vault_of).await?;
            found = of_instances(ctx, processed, &snapshots, *at, &cfg.snap_filter);
        }
        Source::Snapshots(ids) => {
            let mut listed = source.snapshots_by_ids(ids).await?;
            if source.region() != home.region() || vault_of.is_some() {
                listed = listed.into_iter().map(pick::as_source).collect();
            }
            for id in ids {
                let Some(s) = listed.iter().find(|s| &s.id == id) else {
                    let f = failure(
                        msg::snapshot_not_found(id),
                        "Restore",
                        id,
                        Kind::NotFound,
                        "no such snapshot",
                    );
                    record.failed(None, f);
                    continue;
                };
                if s.state != SnapshotState::Completed {
                    let line = msg::restore_failed(id, "it is not completed");
                    record.failed(
                        None,
                        failure(line, "Restore", id, Kind::State, "not completed"),
                    );
                    continue;
                }
                let instance_id = s
                    .description
                    .split_whitespace()
                    .next()
                    .filter(|w| w.starts_with("i-"))
                    .map(String::from);
                found.push(Found {
                    instance: None,
                    backup: Backup {
                        instance_id,
                        set: None,
                        members: vec![Member {
                            snapshot: s.clone(),
                            source_volume: s.volume_id.clone(),
                            device: pick::device_of(s, None).unwrap_or_else(|| "?".into()),
                        }],
                        missing: Vec::new(),
                    },
                });
            }
        }
        Source::Set(id) => {
            let members: Vec<Snapshot> = candidates(home, source, vault_of)
                .await?
                .into_iter()
                .filter(|s| s.tags.get(SET_TAG) == Some(id))
                .collect();
            let (_, sets) = group_sets(members);
            let Some(set) = sets.into_iter().next() else {
                record.failed(
                    None,
                    failure(
                        msg::set_not_found(id),
                        "Restore",
                        id,
                        Kind::NotFound,
                        "no such set",
                    ),
                );
                return Ok(found);
            };
            let owner = crate::snapshot::plan::set_instance(id).to_string();
            let instance = home
                .instances_by_ids(std::slice::from_ref(&owner))
                .await?
                .into_iter()
                .next();
            if let Some(i) = &instance {
                record.instance(i, false);
            }
            let backup = pick::set_backup(&set, instance.as_ref());
            found.push(Found { instance, backup });
        }
    }
    say_missing(&ctx.record, &found);
    Ok(found)
}

/// Each instance's backup (`pick::instance_backup`); an instance with none is a recorded failure.
pub fn of_instances(
    ctx: &Ctx,
    instances: &[Instance],
    snapshots: &[Snapshot],
    at: Option<chrono::DateTime<chrono::Utc>>,
    snap_filter: &[crate::model::TagPattern],
) -> Vec<Found> {
    let at_text = at.map(|t| format!(" at or before {}", t.to_rfc3339()));
    let mut found = Vec::new();
    for instance in instances {
        ctx.record.instance(instance, false);
        match pick::instance_backup(instance, snapshots, at, snap_filter) {
            Some(backup) => found.push(Found {
                instance: Some(instance.clone()),
                backup,
            }),
            None => {
                let line = msg::nothing_to_restore(&instance.id, at_text.as_deref().unwrap_or(""));
                let f = failure(
                    line,
                    "Restore",
                    &instance.id,
                    Kind::NotFound,
                    "no completed backup",
                );
                ctx.record.failed(Some(&instance.id), f);
            }
        }
    }
    found
}

/// `restore -i/-t` or `drill` whose selection matched no instance: an error (exit 2), said.
pub fn nothing_selected(record: &Record, what: &str) {
    let line = msg::nothing_selected(what);
    let f = failure(line, "Restore", "-", Kind::NotFound, "no instance matches");
    record.failed(None, f);
}

/// Says (and records) each backup's missing volumes.
pub fn say_missing(record: &Record, found: &[Found]) {
    for f in found.iter().filter(|f| !f.backup.missing.is_empty()) {
        let what = match &f.backup.set {
            Some(set) => format!("Set {set}"),
            None => format!(
                "The backup of {}",
                f.backup.instance_id.as_deref().unwrap_or("?")
            ),
        };
        let line = msg::restore_missing(&what, &f.backup.missing);
        let resource = f
            .backup
            .set
            .clone()
            .or(f.backup.instance_id.clone())
            .unwrap_or_default();
        let why = "a volume of the backup has no snapshot";
        let entry = failure(line, "Restore", &resource, Kind::NotFound, why);
        record.failed(f.backup.instance_id.as_deref(), entry);
    }
}

/// The source volumes of every member, as they are now (a deleted one is missing).
pub async fn sources(home: &Ec2, found: &[Found]) -> Result<HashMap<String, Volume>> {
    let mut ids: Vec<String> = found
        .iter()
        .flat_map(|f| f.backup.members.iter().map(|m| m.source_volume.clone()))
        .filter(|v| v.starts_with("vol-"))
        .collect();
    ids.sort();
    ids.dedup();
    let volumes = home.volume_details(&ids).await?;
    Ok(volumes.into_iter().map(|v| (v.id.clone(), v)).collect())
}

/// Whether `zone` exists in the target region; a failure is recorded when it does not.
pub async fn zone_exists(ctx: &Ctx, zone: &str) -> Result<bool> {
    let zones = ctx.ec2.zones().await?;
    if zones.iter().any(|z| z == zone) {
        return Ok(true);
    }
    let line = format!(
        "Availability Zone {zone} does not exist in {} (there: {}): nothing restored",
        ctx.ec2.region(),
        zones.join(", ")
    );
    ctx.record.failed(
        None,
        failure(line, "CreateVolume", zone, Kind::NotFound, "no such zone"),
    );
    Ok(false)
}

/// How long an archived snapshot a restore brings back stays in the standard tier.
const TEMPORARY_RESTORE_DAYS: i32 = 7;

/// A member in the archive tier: its restore to the standard tier is asked for (RestoreSnapshotTier,
/// for a week), which takes up to 72 hours; the volume is made by a restore run then. Counted: the
/// volume is not made now. A dry run says it and checks the permission.
async fn from_archive(ctx: &Ctx, owner: Option<&str>, snapshot_id: &str) {
    let change = Change::RestoreTier {
        snapshot_id,
        days: TEMPORARY_RESTORE_DAYS,
    };
    let asked = match gate::send(ctx, &ctx.ec2, &change, snapshot_id).await {
        Sent::Answered(answer) => answer,
        Sent::Dry => {
            let line = msg::archived_restore(snapshot_id, TEMPORARY_RESTORE_DAYS, true);
            return info!("{line}");
        }
        Sent::Interrupted(_) => return,
    };
    let line = match asked {
        Ok(_) => msg::archived_restore(snapshot_id, TEMPORARY_RESTORE_DAYS, false),
        // Asked for already (by an earlier run): it is on its way.
        Err(e) if e.is("IncorrectState") => msg::archived_restore_pending(snapshot_id),
        Err(e) => {
            let line = msg::restore_failed(snapshot_id, &e.to_string());
            let f = Failure::aws(Level::Error, line, "RestoreSnapshotTier", snapshot_id, &e);
            ctx.record.failed(owner, f);
            return;
        }
    };
    let why = "in the archive tier: back in the standard tier within 72 hours".to_string();
    ctx.record.failed(
        owner,
        failure(line, "CreateVolume", snapshot_id, Kind::State, &why),
    );
}

/// Makes one volume per member (or says it would, checking the permission); the ones made.
/// `drill`: the drill's run id, tagged on each volume at its creation.
pub async fn make_volumes(
    ctx: &Ctx,
    found: &Found,
    sources: &HashMap<String, Volume>,
    zone: Option<&str>,
    drill: Option<&str>,
) -> Vec<Made> {
    let owner = found.backup.instance_id.as_deref();
    let mut made = Vec::new();
    for m in &found.backup.members {
        let spec = match pick::volume_spec(m, sources.get(&m.source_volume), zone) {
            Ok(spec) => spec,
            Err(why) => {
                let line = msg::restore_failed(&m.snapshot.id, &why);
                let f = failure(line, "CreateVolume", &m.snapshot.id, Kind::NotFound, &why);
                ctx.record.failed(owner, f);
                continue;
            }
        };
        // An archived snapshot makes no volume until it is back in the standard tier.
        if m.snapshot.tier.as_deref() == Some("archive") {
            from_archive(ctx, owner, &m.snapshot.id).await;
            continue;
        }
        let tags = pick::volume_tags(m, drill);
        let planned = RestoredEntry {
            id: None,
            snapshot: m.snapshot.id.clone(),
            source_volume: m.source_volume.clone(),
            device: m.device.clone(),
            zone: spec.zone.clone(),
            state: "planned".into(),
            seconds: None,
            attached_to: None,
        };
        let started = Instant::now();
        let write = Change::CreateVolume {
            snapshot_id: &m.snapshot.id,
            spec: &spec,
            tags: &tags,
        };
        let result = match gate::send(ctx, &ctx.ec2, &write, &m.snapshot.id).await {
            Sent::Dry => {
                info!(
                    "{}",
                    msg::restoring(&m.snapshot.id, &m.source_volume, &m.device, &spec, None)
                );
                ctx.record.restored(owner, planned);
                continue;
            }
            Sent::Answered(answer) => Ok(answer.and_then(crate::aws::Answer::id)),
            Sent::Interrupted(sig) => Err(sig),
        };
        match result {
            Ok(Ok(id)) => {
                info!(
                    "{}",
                    msg::restoring(
                        &m.snapshot.id,
                        &m.source_volume,
                        &m.device,
                        &spec,
                        Some(&id)
                    )
                );
                let volume = Made {
                    member: m.clone(),
                    spec,
                    volume_id: id,
                    started,
                    seconds: None,
                };
                ctx.record.restored(owner, volume.entry("creating"));
                made.push(volume);
            }
            Ok(Err(e)) => {
                let line = msg::restore_failed(&m.snapshot.id, &e.to_string());
                let f = Failure::aws(Level::Error, line, "CreateVolume", &m.snapshot.id, &e);
                ctx.record.failed(owner, f);
                ctx.record.restored(
                    owner,
                    RestoredEntry {
                        state: "failed".into(),
                        ..planned
                    },
                );
            }
            // A signal while the call was in flight: the volume may still have been made (a
            // drill's carries its tag: the next drill deletes it). Said, and in the report.
            Err(sig) => {
                let line = msg::restore_interrupted(&m.snapshot.id, sig.name());
                let f = failure(
                    line,
                    "CreateVolume",
                    &m.snapshot.id,
                    Kind::Interrupted,
                    "interrupted by a signal",
                );
                ctx.record.failed(owner, f);
                ctx.record.restored(
                    owner,
                    RestoredEntry {
                        state: "may have been made".into(),
                        ..planned
                    },
                );
                break;
            }
        }
    }
    made
}

/// Waits until every volume is available (or in error, or late); records each outcome. False
/// when a volume did not become available.
pub async fn wait_available(ctx: &Ctx, owner: Option<&str>, made: &mut [Made]) -> bool {
    let bar = Bar::new(made.len() as u64);
    let ok = poll_available(ctx, owner, made, &bar).await;
    bar.end();
    ok
}

/// A progress bar on a terminal (standard error) only; log lines are written above it.
struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    fn new(len: u64) -> Bar {
        if !crate::output::log::progress_bars_allowed() {
            return Bar(None);
        }
        let bar = indicatif::ProgressBar::new(len);
        let style = indicatif::ProgressStyle::with_template(
            "{spinner} [{bar:30}] {pos}/{len} volumes available, {elapsed}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        crate::output::log::set_progress_bar(Some(bar.clone()));
        Bar(Some(bar))
    }

    fn inc(&self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }

    fn end(&self) {
        if let Some(bar) = &self.0 {
            crate::output::log::set_progress_bar(None);
            bar.finish_and_clear();
        }
    }
}

async fn poll_available(ctx: &Ctx, owner: Option<&str>, made: &mut [Made], bar: &Bar) -> bool {
    let deadline = Instant::now() + VOLUME_TIMEOUT;
    let mut left: HashSet<String> = made.iter().map(|m| m.volume_id.clone()).collect();
    let mut all_ok = true;
    while !left.is_empty() {
        let ids: Vec<String> = left.iter().cloned().collect();
        match ctx.shutdown.race(ctx.ec2.volume_details(&ids)).await {
            Err(_) => return false,
            Ok(Err(e)) => warn!("{}", msg::cannot_poll(&format!("{e:#}"))),
            Ok(Ok(volumes)) => {
                for v in volumes {
                    let Some(m) = made.iter_mut().find(|m| m.volume_id == v.id) else {
                        continue;
                    };
                    match v.state.as_str() {
                        "available" | "in-use" => {
                            let secs = m.started.elapsed().as_secs_f64();
                            m.seconds = Some((secs * 10.0).round() / 10.0);
                            info!("{}", msg::volume_available(&v.id, secs));
                            bar.inc();
                            ctx.record.restored(owner, m.entry("available"));
                            left.remove(&v.id);
                        }
                        "error" | "deleting" | "deleted" => {
                            let line = msg::volume_failed(&v.id, &v.state);
                            let f = failure(
                                line,
                                "CreateVolume",
                                &v.id,
                                Kind::State,
                                &format!("the volume ended in state {}", v.state),
                            );
                            ctx.record.failed(owner, f);
                            ctx.record.restored(owner, m.entry("failed"));
                            left.remove(&v.id);
                            all_ok = false;
                        }
                        _ => {}
                    }
                }
            }
        }
        if left.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            for id in &left {
                let secs = VOLUME_TIMEOUT.as_secs();
                let line = msg::volume_not_ready(id, secs);
                let f = failure(
                    line,
                    "CreateVolume",
                    id,
                    Kind::Timeout,
                    "not available in time",
                );
                ctx.record.failed(owner, f);
            }
            return false;
        }
        if ctx.shutdown.race(tokio::time::sleep(POLL)).await.is_err() {
            return false;
        }
    }
    all_ok
}

/// `ec2snap restore`: the signal that cut it short, if one did.
pub async fn restore(
    cfg: &Config,
    shutdown: Shutdown,
    record: Arc<Record>,
) -> Result<Option<Signal>> {
    let Some(opts) = cfg.restore.as_ref() else {
        return Ok(None);
    };
    info!("{}", msg::launching(cfg.mode));
    let home = Ec2::connect(&cfg.aws).await?;
    // Where the backups are read and the volumes made: this region, --from-region's, or the
    // vault's (--from-vault --in-vault: the vault role in the vault's region).
    let (target, copies_of) = match (&opts.vault, &opts.from_region) {
        (Some(vault), _) => {
            let settings = crate::config::vault::client_settings(
                &cfg.aws,
                &vault.role,
                vault.region.as_ref(),
                home.region(),
            );
            let account = home.account().await.map_err(|e| {
                anyhow::anyhow!("Cannot tell this account (sts:GetCallerIdentity), which --from-vault needs: {e}")
            })?;
            (Ec2::connect(&settings).await?, Some(account))
        }
        (None, Some(region)) => (home.in_region(region), None),
        (None, None) => (home.in_region(home.region()), None),
    };
    record.region(target.region());
    let ctx = context(cfg, target, shutdown, record);
    let found = find(&ctx, &home, cfg, opts, copies_of.as_deref()).await?;
    let sources = sources(&home, &found).await?;
    if let Some(name) = &opts.ami {
        register(&ctx, &found, &sources, name, opts.allow_partial).await;
        return Ok(ctx.shutdown.signal());
    }
    // --attach-to: its zone is the volumes' zone, and no member may take a device it uses.
    let mut zone = opts.zone.clone();
    let target_instance = match &opts.attach_to {
        Some(id) => match attach_target(&ctx, id, &found, &mut zone).await? {
            Some(instance) => Some(instance),
            None => return Ok(ctx.shutdown.signal()),
        },
        None => None,
    };
    if let Some(z) = &zone {
        if !zone_exists(&ctx, z).await? {
            return Ok(ctx.shutdown.signal());
        }
    }
    for f in &found {
        let owner = f.backup.instance_id.clone();
        let mut made = make_volumes(&ctx, f, &sources, zone.as_deref(), None).await;
        if ctx.shutdown.is_set() {
            break;
        }
        if made.is_empty() {
            continue;
        }
        wait_available(&ctx, owner.as_deref(), &mut made).await;
        if let Some(target) = &target_instance {
            attach(&ctx, owner.as_deref(), target, &made).await;
        }
    }
    Ok(ctx.shutdown.signal())
}

/// The instance of `--attach-to`, in the volumes' zone, with every member's device free; `None`
/// (and a recorded failure) when it cannot take them.
async fn attach_target(
    ctx: &Ctx,
    id: &str,
    found: &[Found],
    zone: &mut Option<String>,
) -> Result<Option<Instance>> {
    let target = ctx
        .ec2
        .instances_by_ids(&[id.to_string()])
        .await?
        .into_iter()
        .next();
    let Some(target) = target else {
        let line = msg::instance_not_found(id);
        ctx.record.failed(
            None,
            failure(line, "AttachVolume", id, Kind::NotFound, "no such instance"),
        );
        return Ok(None);
    };
    let their_zone = target.machine.zone.clone();
    match (zone.as_deref(), their_zone.as_deref()) {
        (Some(z), Some(t)) if z != t => {
            let line = format!("--az {z}: --attach-to {id} is in {t}; a volume attaches only in its zone: nothing restored");
            ctx.record.failed(
                None,
                failure(line, "AttachVolume", id, Kind::NotFound, "another zone"),
            );
            return Ok(None);
        }
        (None, Some(t)) => *zone = Some(t.to_string()),
        _ => {}
    }
    let members: Vec<&Member> = found.iter().flat_map(|f| &f.backup.members).collect();
    let mut taken = pick::taken_devices(&target, members.iter().copied());
    let mut seen = HashSet::new();
    taken.extend(
        members
            .iter()
            .filter(|m| m.device == "?" || !seen.insert(m.device.as_str()))
            .map(|m| m.device.clone()),
    );
    taken.sort();
    taken.dedup();
    if !taken.is_empty() {
        let line = msg::devices_taken(id, &taken);
        ctx.record.failed(
            None,
            failure(line, "AttachVolume", id, Kind::Refused, "device in use"),
        );
        return Ok(None);
    }
    Ok(Some(target))
}

/// Attaches each available volume to `target` at its member's device.
async fn attach(ctx: &Ctx, owner: Option<&str>, target: &Instance, made: &[Made]) {
    for m in made.iter().filter(|m| m.seconds.is_some()) {
        let write = Change::AttachVolume {
            volume_id: &m.volume_id,
            instance_id: &target.id,
            device: &m.member.device,
        };
        match gate::send_through(ctx, &ctx.ec2, &write, &m.volume_id)
            .await
            .answer()
        {
            Ok(_) => {
                info!(
                    "{}",
                    msg::attaching(&m.volume_id, &target.id, &m.member.device, true)
                );
                let mut entry = m.entry("available");
                entry.attached_to = Some(target.id.clone());
                ctx.record.restored(owner, entry);
            }
            Err(e) => {
                let line = msg::attach_failed(&m.volume_id, &target.id, &e.to_string());
                let f = Failure::aws(Level::Error, line, "AttachVolume", &m.volume_id, &e);
                ctx.record.failed(owner, f);
            }
        }
    }
}

/// `--ami NAME`: one AMI of the one backup found.
async fn register(
    ctx: &Ctx,
    found: &[Found],
    sources: &HashMap<String, Volume>,
    name: &str,
    allow_partial: bool,
) {
    let [one] = found else {
        if found.len() > 1 {
            let line = format!(
                "--ami registers one instance's backup: {} selected; select one",
                found.len()
            );
            ctx.record.failed(
                None,
                failure(line, "RegisterImage", name, Kind::Setup, "several backups"),
            );
        }
        return;
    };
    let owner = one.backup.instance_id.as_deref();
    let Some(instance) = &one.instance else {
        let line = msg::register_failed(
            name,
            "its instance is gone: its architecture and boot mode are not known",
        );
        ctx.record.failed(
            owner,
            failure(line, "RegisterImage", name, Kind::NotFound, "no instance"),
        );
        return;
    };
    if !one.backup.missing.is_empty() && !allow_partial {
        let why = "the backup lacks a volume (see above): no AMI without --allow-partial";
        let line = msg::register_failed(name, why);
        ctx.record.failed(
            owner,
            failure(line, "RegisterImage", name, Kind::Setup, why),
        );
        return;
    }
    let image = match pick::image(&one.backup, instance, sources, name) {
        Ok(image) => image,
        Err(why) => {
            let line = msg::register_failed(name, &why);
            ctx.record.failed(
                owner,
                failure(line, "RegisterImage", name, Kind::NotFound, &why),
            );
            return;
        }
    };
    let devices: Vec<String> = image
        .disks
        .iter()
        .map(|(d, s, _)| format!("{d}={s}"))
        .collect();
    let mut entry = ImageEntry {
        id: None,
        name: name.to_string(),
        devices: devices.clone(),
    };
    let sent = gate::send_through(ctx, &ctx.ec2, &Change::RegisterImage(&image), name).await;
    let Some(answer) = sent.id() else {
        // A dry run.
        info!("{}", msg::registering(name, &devices, None));
        return ctx.record.image(&instance.id, entry);
    };
    match answer {
        Ok(id) => {
            info!("{}", msg::registering(name, &devices, Some(&id)));
            entry.id = Some(id);
            ctx.record.image(&instance.id, entry);
        }
        Err(e) => {
            let line = msg::register_failed(name, &e.to_string());
            ctx.record.failed(
                owner,
                Failure::aws(Level::Error, line, "RegisterImage", name, &e),
            );
        }
    }
}
