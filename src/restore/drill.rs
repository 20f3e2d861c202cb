//! `ec2snap drill`: deletes the volumes drills that are over left (never a running drill's), then
//! for each selected (or sampled) instance restores its newest completed backup as volumes tagged
//! with this drill's mark (host, boot, pid, start, deadline), waits until they are available, runs
//! `--drill-check` (its own process group, bounded by `--drill-timeout`), and always deletes them
//! — after a failure or a signal too. A pass is tagged on the instance (`ec2snap:drill-ok`).

use crate::act::ctx::Ctx;
use crate::act::gate::{self, Sent};
use crate::aws::Change;
use crate::aws::Ec2;
use crate::cold::mark::{self, Here, Mark};
use crate::config::Config;
use crate::hooks::local;
use crate::hooks::policy::Outcome;
use crate::model::Instance;
use crate::output::log::Level;
use crate::output::messages as msg;
use crate::output::record::{DrillEntry, Failure, Kind, Record};
use crate::restore::pick::{self};
use crate::restore::{self, Found, Made};
use crate::select::fetch;
use crate::signals::{Shutdown, Signal};
use crate::tags::{DRILL_OK_TAG, DRILL_TAG};
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
    // The check's bound: `--drill-timeout`.
    let sample = opts.drill.as_ref().and_then(|d| d.sample);
    let check_timeout = opts.drill.as_ref().map(|d| d.timeout).unwrap_or_default();
    info!("{}", msg::launching(cfg.mode));
    let home = Ec2::connect(&cfg.aws).await?;
    record.region(home.region());
    let now = crate::clock::now();
    let target = home.in_region(home.region());
    let ctx = restore::context(cfg, target, shutdown, record);
    clean_up(&ctx).await?;
    let instances = fetch::select_instances(&home, &cfg.selection, &ctx.record, false).await?;
    let processed: Vec<Instance> = match cfg.limit {
        Some(n) => instances.into_iter().take(n).collect(),
        None => instances,
    };
    if processed.is_empty() {
        restore::nothing_selected(&ctx.record, "drill");
    }
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
        let check = check.as_deref().map(|c| (c, check_timeout));
        one(&ctx, f, &sources, opts.zone.as_deref(), check).await;
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

/// The most an instance's drill holds its volumes besides its check: their wait to be available,
/// their deletion, and room.
const DRILL_HOLD: chrono::Duration = chrono::Duration::minutes(40);

/// The `ec2snap:drill` tag of this drill's volumes: who made them and until when they may still
/// be in use (`host=.. boot=.. pid=.. started=.. until=..`), so that another drill deletes them
/// only once this one is over.
fn drill_mark(check: Option<std::time::Duration>) -> String {
    let here = Here::this_machine();
    let now = crate::clock::now();
    let check = chrono::Duration::from_std(check.unwrap_or_default()).unwrap_or_default();
    let until = now.checked_add_signed(DRILL_HOLD + check).unwrap_or(now);
    let m = Mark {
        host: here.host,
        boot: here.boot,
        pid: std::process::id(),
        stopped: now,
        until,
    };
    m.value().replace(" stopped=", " started=")
}

/// A drill's mark read back; `None` when it is none (an older drill's run id).
fn read_mark(value: &str) -> Option<Mark> {
    Mark::parse(&value.replace(" started=", " stopped="))
}

/// One instance's drill, its volumes always deleted at the end.
async fn one(
    ctx: &Ctx,
    f: &Found,
    sources: &std::collections::HashMap<String, crate::model::Volume>,
    zone: Option<&str>,
    check: Option<(&str, std::time::Duration)>,
) {
    let Some(instance) = &f.instance else {
        return;
    };
    let id = instance.id.as_str();
    let tag = drill_mark(check.map(|(_, t)| t));
    let mut made = restore::make_volumes(ctx, f, sources, zone, Some(&tag)).await;
    if gate::is_dry(ctx) {
        // The mark a passed drill leaves: its permission checked.
        let ids = [id.to_string()];
        let mark = Change::Tag {
            ids: &ids,
            key: DRILL_OK_TAG,
            value: "dry-run",
        };
        gate::send_through(ctx, &ctx.ec2, &mark, id).await;
        // Nothing was made: the drill a real one would be.
        ctx.record
            .drill(id, entry("planned", None, None, last_success(instance)));
        return;
    }
    let complete = made.len() == f.backup.members.len() && f.backup.missing.is_empty();
    let available = !made.is_empty() && restore::wait_available(ctx, Some(id), &mut made).await;
    let slowest = made.iter().filter_map(|m| m.seconds).reduce(f64::max);
    let mut exit = None;
    let mut checked: Option<Outcome> = None;
    let mut passed = complete && available && !ctx.shutdown.is_set();
    if passed {
        if let Some((cmd, timeout)) = check {
            let outcome = run_check(ctx, instance, &made, cmd, timeout).await;
            exit = match outcome {
                Outcome::Ok => Some(0),
                Outcome::Failed(code) => code,
                _ => None,
            };
            passed = outcome.is_ok() && !ctx.shutdown.is_set();
            checked = Some(outcome);
        }
    }
    // Whatever happened, signal or not: nothing the drill made stays.
    delete(ctx, id, &made).await;
    let detail = match (passed, &checked) {
        (true, _) => format!("{} volumes restored and deleted", made.len()),
        (false, Some(Outcome::Failed(Some(code)))) => format!("--drill-check exited {code}"),
        (false, Some(Outcome::Interrupted)) => "interrupted".to_string(),
        (false, Some(o)) => format!(
            "--drill-check {}",
            o.describe(check.map(|(_, t)| t).unwrap_or_default())
                .replace("(--hook-timeout)", "(--drill-timeout)")
        ),
        (false, None) if ctx.shutdown.is_set() => "interrupted".to_string(),
        (false, None) => "its backup did not restore whole".to_string(),
    };
    let mut last = last_success(instance);
    if passed {
        info!("{}", msg::drill_result(id, true, &detail));
        let stamp = crate::clock::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let ids = [id.to_string()];
        let tag = Change::Tag {
            ids: &ids,
            key: DRILL_OK_TAG,
            value: &stamp,
        };
        if let Err(e) = gate::send_through(ctx, &ctx.ec2, &tag, id).await.answer() {
            let line = msg::drill_ok_not_tagged(id, &e.to_string());
            ctx.record.failed(
                Some(id),
                Failure::aws(Level::Warning, line, "CreateTags", id, &e),
            );
        }
        last = Some(stamp);
    } else if !ctx.shutdown.is_set() || checked.as_ref().is_some_and(|o| *o != Outcome::Interrupted)
    {
        let line = msg::drill_result(id, false, &detail);
        let f = Failure::other(Level::Error, line, "Drill", id, Kind::State, detail.clone());
        ctx.record.failed(Some(id), f);
    }
    let result = if passed { "passed" } else { "failed" };
    ctx.record.drill(id, entry(result, exit, slowest, last));
}

/// `--drill-check`: `sh -c CMD` with the volumes in its environment, in a process group of its
/// own killed at `timeout` or at a signal; its output logged line by line (escaped).
async fn run_check(
    ctx: &Ctx,
    instance: &Instance,
    made: &[Made],
    cmd: &str,
    timeout: std::time::Duration,
) -> Outcome {
    let volumes: Vec<String> = made
        .iter()
        .map(|m| format!("{}={}", m.volume_id, m.member.device))
        .collect();
    let snapshots: Vec<&str> = made.iter().map(|m| m.member.snapshot.id.as_str()).collect();
    let zone = made
        .first()
        .map(|m| m.spec.zone.clone())
        .unwrap_or_default();
    let env = [
        ("EC2SNAP_DRILL_INSTANCE", instance.id.clone()),
        ("EC2SNAP_DRILL_VOLUMES", volumes.join(" ")),
        ("EC2SNAP_DRILL_SNAPSHOTS", snapshots.join(" ")),
        ("EC2SNAP_DRILL_ZONE", zone),
    ]
    .map(|(k, v)| (k.to_string(), v));
    info!("{}", msg::drill_check_running(&instance.id));
    let ran = local::run(cmd, &env, timeout, Some(&ctx.shutdown)).await;
    for line in ran.output.lines() {
        info!("{}", msg::drill_check_said(&instance.id, line));
    }
    if !ran.outcome.is_ok() && ran.outcome != Outcome::Interrupted {
        let what = ran
            .outcome
            .describe(timeout)
            .replace("(--hook-timeout)", "(--drill-timeout)");
        warn!("{}", msg::drill_check_failed(&instance.id, &what));
    }
    ran.outcome
}

/// Deletes the drill's volumes; one that cannot be deleted is recorded (the next drill deletes
/// it, by its tag).
async fn delete(ctx: &Ctx, owner: &str, made: &[Made]) {
    for m in made {
        info!("{}", msg::drill_deleting(&m.volume_id));
        let write = Change::DeleteVolume(&m.volume_id);
        match gate::send_through(ctx, &ctx.ec2, &write, &m.volume_id)
            .await
            .answer()
        {
            Ok(_) => ctx.record.restored(Some(owner), m.entry("deleted")),
            Err(e) => {
                let line = msg::volume_delete_failed(&m.volume_id, &e.to_string());
                let f = Failure::aws(Level::Error, line, "DeleteVolume", &m.volume_id, &e);
                ctx.record.failed(Some(owner), f);
            }
        }
    }
}

/// Deletes the drill volumes that drills that are over left (by their tag: a killed drill's, a
/// past deadline's); a running drill's are left to it. A dry run says what it would delete.
async fn clean_up(ctx: &Ctx) -> Result<()> {
    let left = ctx.ec2.volumes_tagged(DRILL_TAG).await?;
    let (here, now) = (Here::this_machine(), crate::clock::now());
    for v in left {
        let run = v.tags.get(DRILL_TAG).cloned().unwrap_or_default();
        let owner = read_mark(&run);
        if !mark::owner_gone(owner.as_ref(), now, &here, mark::process_alive) {
            info!("{}", msg::drill_still_running(&v.id, &run));
            continue;
        }
        let sent = gate::send_through(ctx, &ctx.ec2, &Change::DeleteVolume(&v.id), &v.id).await;
        if let Sent::Dry = sent {
            info!("{}", msg::drill_leftover(&v.id, &run, false));
            continue;
        }
        info!("{}", msg::drill_leftover(&v.id, &run, true));
        if let Err(e) = sent.answer() {
            let line = msg::volume_delete_failed(&v.id, &e.to_string());
            let f = Failure::aws(Level::Error, line, "DeleteVolume", &v.id, &e);
            ctx.record.failed(None, f);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drills_mark_names_this_process_until_its_deadline() {
        let value = drill_mark(Some(std::time::Duration::from_secs(60)));
        assert!(
            value.contains(" started=") && !value.contains("stopped="),
            "{value}"
        );
        let m = read_mark(&value).unwrap_or_else(|| panic!("{value}"));
        assert_eq!(m.pid, std::process::id());
        assert_eq!((m.until - m.stopped).num_minutes(), 41);
        // This process runs: not over; an older drill's plain run id is.
        let here = Here::this_machine();
        let now = crate::clock::now();
        assert!(!mark::owner_gone(Some(&m), now, &here, |_| true) || !here.knows_itself());
        assert!(read_mark("20261207T020000Z-4242").is_none());
    }
}
