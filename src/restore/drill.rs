//! `ec2snap drill`: deletes the volumes a killed drill left, then for each selected (or sampled)
//! instance restores its newest completed backup as volumes tagged with this drill's run id,
//! waits until they are available, runs `--drill-check`, and always deletes them — after a
//! failure or a signal too. A pass is tagged on the instance (`ec2snap:drill-ok`).

use crate::aws::Ec2;
use crate::config::Config;
use crate::model::Instance;
use crate::output::log::Level;
use crate::output::messages as msg;
use crate::output::record::{DrillEntry, Failure, Kind, Record};
use crate::restore::pick::{self, DRILL_OK_TAG, DRILL_TAG};
use crate::restore::{self, Found, Made};
use crate::run::ctx::Ctx;
use crate::select::fetch;
use crate::signals::{Shutdown, Signal};
use anyhow::Result;
use chrono::SecondsFormat;
use std::sync::Arc;
use tracing::{info, warn};

/// The drill: the signal that cut it short, if one did.
pub async fn drill(
    cfg: &Config,
    shutdown: Shutdown,
    record: Arc<Record>,
) -> Result<Option<Signal>> {
    let Some(opts) = cfg.restore.as_ref() else {
        return Ok(None);
    };
    let check = opts.drill.as_ref().and_then(|d| d.check.clone());
    let sample = opts.drill.as_ref().and_then(|d| d.sample);
    info!("{}", msg::launching(cfg.mode.is_dry()));
    let home = Ec2::connect(&cfg.aws).await?;
    record.region(home.region());
    let now = crate::clock::now();
    let run_id = format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), std::process::id());
    let target = home.in_region(home.region());
    let ctx = restore::context(cfg, target, shutdown, record);
    clean_up(&ctx).await?;
    let instances = fetch::select_instances(&home, &cfg.selection, &ctx.record).await?;
    let processed: Vec<Instance> = match cfg.limit {
        Some(n) => instances.into_iter().take(n).collect(),
        None => instances,
    };
    let seed = now.timestamp_nanos_opt().unwrap_or_default() as u64 ^ u64::from(std::process::id());
    let chosen = pick::sample(processed, sample, seed);
    let snapshots = ctx.ec2.own_snapshots().await?;
    let found = restore::of_instances(&ctx, &chosen, &snapshots, None, &cfg.snap_filter);
    for instance in chosen.iter().filter(|i| {
        !found
            .iter()
            .any(|f| f.backup.instance_id.as_ref() == Some(&i.id))
    }) {
        ctx.record.drill(
            &instance.id,
            entry("failed", None, None, last_success(instance)),
        );
    }
    restore::say_missing(&ctx.record, &found);
    let sources = restore::sources(&home, &found).await?;
    if let Some(z) = &opts.zone {
        if !restore::zone_exists(&ctx, z).await? {
            return Ok(ctx.shutdown.signal());
        }
    }
    for f in &found {
        if ctx.shutdown.is_set() {
            break;
        }
        one(
            &ctx,
            f,
            &sources,
            opts.zone.as_deref(),
            &run_id,
            check.as_deref(),
        )
        .await;
    }
    Ok(ctx.shutdown.signal())
}

fn entry(
    result: &str,
    exit: Option<i32>,
    seconds: Option<f64>,
    last: Option<String>,
) -> DrillEntry {
    DrillEntry {
        result: result.to_string(),
        check_exit: exit,
        restore_seconds: seconds,
        last_success: last,
    }
}

/// The instance's last passed drill, from its tag.
fn last_success(instance: &Instance) -> Option<String> {
    instance.tags.get(DRILL_OK_TAG).cloned()
}

/// One instance's drill, its volumes always deleted at the end.
async fn one(
    ctx: &Ctx,
    f: &Found,
    sources: &std::collections::HashMap<String, crate::model::Volume>,
    zone: Option<&str>,
    run_id: &str,
    check: Option<&str>,
) {
    let Some(instance) = &f.instance else {
        return;
    };
    let id = instance.id.as_str();
    let mut made = restore::make_volumes(ctx, f, sources, zone, Some(run_id)).await;
    if ctx.cfg.mode.is_dry() {
        ctx.record
            .drill(id, entry("planned", None, None, last_success(instance)));
        return;
    }
    let complete = made.len() == f.backup.members.len() && f.backup.missing.is_empty();
    let available = !made.is_empty() && restore::wait_available(ctx, Some(id), &mut made).await;
    let slowest = made.iter().filter_map(|m| m.seconds).reduce(f64::max);
    let mut exit = None;
    let mut passed = complete && available && !ctx.shutdown.is_set();
    if passed {
        if let Some(cmd) = check {
            exit = run_check(ctx, instance, &made, cmd).await;
            passed = exit == Some(0) && !ctx.shutdown.is_set();
        }
    }
    // Whatever happened, signal or not: nothing the drill made stays.
    delete(ctx, id, &made).await;
    let detail = match (passed, exit) {
        (true, _) => format!("{} volumes restored and deleted", made.len()),
        (false, Some(code)) => format!("--drill-check exited {code}"),
        (false, None) if ctx.shutdown.is_set() => "interrupted".to_string(),
        (false, None) => "its backup did not restore whole".to_string(),
    };
    let mut last = last_success(instance);
    if passed {
        info!("{}", msg::drill_result(id, true, &detail));
        let stamp = crate::clock::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        if let Err(e) = ctx.ec2.tag_instance(id, DRILL_OK_TAG, &stamp).await {
            let line = msg::cannot_mark(id, DRILL_OK_TAG, &e.to_string());
            ctx.record.failed(
                Some(id),
                Failure::aws(Level::Warning, line, "CreateTags", id, &e),
            );
        }
        last = Some(stamp);
    } else if !ctx.shutdown.is_set() || exit.is_some() {
        let line = msg::drill_result(id, false, &detail);
        let f = Failure::other(Level::Error, line, "Drill", id, Kind::State, detail.clone());
        ctx.record.failed(Some(id), f);
    }
    let result = if passed { "passed" } else { "failed" };
    ctx.record.drill(id, entry(result, exit, slowest, last));
}

/// `--drill-check`: `/bin/sh -c CMD` with the volumes in its environment; its exit code (`None`
/// when it could not run, was killed, or a signal came: then it is killed).
async fn run_check(ctx: &Ctx, instance: &Instance, made: &[Made], cmd: &str) -> Option<i32> {
    let volumes: Vec<String> = made
        .iter()
        .map(|m| format!("{}={}", m.volume_id, m.member.device))
        .collect();
    let snapshots: Vec<&str> = made.iter().map(|m| m.member.snapshot.id.as_str()).collect();
    let zone = made
        .first()
        .map(|m| m.spec.zone.clone())
        .unwrap_or_default();
    let child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .env("EC2SNAP_DRILL_INSTANCE", &instance.id)
        .env("EC2SNAP_DRILL_VOLUMES", volumes.join(" "))
        .env("EC2SNAP_DRILL_SNAPSHOTS", snapshots.join(" "))
        .env("EC2SNAP_DRILL_ZONE", zone)
        .stdin(std::process::Stdio::null())
        // Standard output may be the report's (`--report -`): the command writes beside the log.
        .stdout(std::io::stderr())
        .kill_on_drop(true)
        .status();
    match ctx.shutdown.race(child).await {
        Ok(Ok(status)) => {
            if !status.success() {
                warn!(
                    "{}",
                    msg::drill_check_failed(&instance.id, &status.to_string())
                );
            }
            status.code()
        }
        Ok(Err(e)) => {
            warn!(
                "{}",
                msg::drill_check_failed(&instance.id, &format!("could not run: {e}"))
            );
            None
        }
        Err(_) => None,
    }
}

/// Deletes the drill's volumes; one that cannot be deleted is recorded (the next drill deletes
/// it, by its tag).
async fn delete(ctx: &Ctx, owner: &str, made: &[Made]) {
    for m in made {
        info!("{}", msg::drill_deleting(&m.volume_id));
        match ctx.ec2.delete_volume(&m.volume_id).await {
            Ok(()) => ctx.record.restored(Some(owner), m.entry("deleted")),
            Err(e) => {
                let line = msg::volume_delete_failed(&m.volume_id, &e.to_string());
                let f = Failure::aws(Level::Error, line, "DeleteVolume", &m.volume_id, &e);
                ctx.record.failed(Some(owner), f);
            }
        }
    }
}

/// Deletes the drill volumes a killed drill left (by their tag); a dry run says it would.
async fn clean_up(ctx: &Ctx) -> Result<()> {
    let left = ctx.ec2.volumes_tagged(DRILL_TAG).await?;
    for v in left {
        let run = v.tags.get(DRILL_TAG).cloned().unwrap_or_default();
        if ctx.cfg.mode.is_dry() {
            info!("{}", msg::drill_leftover(&v.id, &run, false));
            continue;
        }
        info!("{}", msg::drill_leftover(&v.id, &run, true));
        if let Err(e) = ctx.ec2.delete_volume(&v.id).await {
            let line = msg::volume_delete_failed(&v.id, &e.to_string());
            let f = Failure::aws(Level::Error, line, "DeleteVolume", &v.id, &e);
            ctx.record.failed(None, f);
        }
    }
    Ok(())
}
