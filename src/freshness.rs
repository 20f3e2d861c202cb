//! The freshness check (`--check-max-age N UNIT`): read-only, for Nagios, Icinga, Zabbix, Sensu or
//! a cron `||`. Does every selected volume have a `completed` snapshot younger than N? One status
//! line in the monitoring-plugin convention, exit 0 OK, 2 CRITICAL, 3 UNKNOWN. With
//! `--drill-max-age N UNIT`: has every selected instance passed a restore drill within N?

use crate::aws::Ec2;
use crate::config::Config;
use crate::model::{matches_all, SnapshotState};
use crate::output::exit::ExitCode;
use crate::output::messages as msg;
use crate::output::record::Record;
use crate::select::fetch;
use crate::signals::Shutdown;
use crate::snapshot::plan;
use crate::tags::DRILL_OK_TAG;
use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use tracing::debug;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Critical,
    Unknown,
}

impl Status {
    pub fn exit_code(self) -> ExitCode {
        match self {
            Status::Ok => ExitCode::Success,
            Status::Critical => ExitCode::Errors,
            Status::Unknown => ExitCode::Unknown,
        }
    }

    /// As the status line (and a notification) says it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
}

/// One selected volume and the age of its newest completed snapshot (`None`: it has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeAge {
    pub volume_id: String,
    pub instance_id: String,
    pub name: String,
    pub device: String,
    pub age_secs: Option<i64>,
    /// Its target (`prod/eu-west-1`) in a check over many accounts and regions.
    pub target: Option<String>,
}

/// `45m`, `31h`, `12d`.
pub fn human(secs: i64) -> String {
    match secs {
        s if s < 3_600 => format!("{}m", s / 60),
        s if s < 7 * 86_400 => format!("{}h", s / 3_600),
        s => format!("{}d", s / 86_400),
    }
}

/// `prod/eu-west-1 ` before a stale volume or instance of a check over many targets.
fn in_target(target: &Option<String>) -> String {
    target.as_ref().map(|t| format!("{t} ")).unwrap_or_default()
}

/// ` in prod/eu-west-1, dev/us-east-1`: the targets of the stale items, each once, if any.
fn stale_targets<'a>(targets: impl Iterator<Item = &'a Option<String>>) -> String {
    let mut names: Vec<&str> = targets.flatten().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        String::new()
    } else {
        format!(" in {}", names.join(", "))
    }
}

/// The status line of an unknown result.
pub fn unknown(reason: &str) -> String {
    format!("EC2SNAP UNKNOWN - {reason}")
}

/// The status and its line, e.g. `EC2SNAP CRITICAL - 1 of 3 volumes stale: vol-.. (i-.. web1
/// /dev/sdb) 31h | volumes=3 stale=1 oldest=111600s`.
pub fn evaluate(volumes: &[VolumeAge], max_age_secs: i64) -> (Status, String) {
    if volumes.is_empty() {
        return (Status::Unknown, unknown("no volume selected"));
    }
    let stale: Vec<&VolumeAge> = volumes
        .iter()
        .filter(|v| v.age_secs.is_none_or(|a| a > max_age_secs))
        .collect();
    let oldest = volumes.iter().filter_map(|v| v.age_secs).max();
    let perf = format!(
        "volumes={} stale={} oldest={}s",
        volumes.len(),
        stale.len(),
        oldest.unwrap_or(0)
    );
    if stale.is_empty() {
        let line = format!(
            "EC2SNAP OK - {} volumes, newest snapshots at most {} old | {perf}",
            volumes.len(),
            human(oldest.unwrap_or(0))
        );
        return (Status::Ok, line);
    }
    let list: Vec<String> = stale
        .iter()
        .map(|v| {
            let age = v.age_secs.map(human).unwrap_or_else(|| "none".into());
            format!(
                "{}{} ({} {} {}) {age}",
                in_target(&v.target),
                v.volume_id,
                v.instance_id,
                v.name,
                v.device
            )
        })
        .collect();
    let line = format!(
        "EC2SNAP {} - {} of {} volumes stale{}: {} | {perf}",
        Status::Critical.name(),
        stale.len(),
        volumes.len(),
        stale_targets(stale.iter().map(|v| &v.target)),
        list.join(", ")
    );
    (Status::Critical, line)
}

/// One selected instance and how long ago a restore drill of it last passed (`None`: never).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillAge {
    pub instance_id: String,
    pub name: String,
    pub age_secs: Option<i64>,
    /// Its target (`prod/eu-west-1`) in a check over many accounts and regions.
    pub target: Option<String>,
}

/// `--drill-max-age`: the status and its line, e.g. `EC2SNAP CRITICAL - 1 of 2 instances
/// without a passed drill within 8d: i-.. (web1) none | instances=2 undrilled=1`.
pub fn evaluate_drills(instances: &[DrillAge], max_age_secs: i64) -> (Status, String) {
    if instances.is_empty() {
        return (Status::Unknown, unknown("no instance selected"));
    }
    let late: Vec<&DrillAge> = instances
        .iter()
        .filter(|d| d.age_secs.is_none_or(|a| a > max_age_secs))
        .collect();
    let perf = format!("instances={} undrilled={}", instances.len(), late.len());
    if late.is_empty() {
        let oldest = instances.iter().filter_map(|d| d.age_secs).max();
        let line = format!(
            "EC2SNAP OK - {} instances, restore drills passed at most {} ago | {perf}",
            instances.len(),
            human(oldest.unwrap_or(0))
        );
        return (Status::Ok, line);
    }
    let list: Vec<String> = late
        .iter()
        .map(|d| {
            let age = d.age_secs.map(human).unwrap_or_else(|| "none".into());
            format!(
                "{}{} ({}) {age}",
                in_target(&d.target),
                d.instance_id,
                d.name
            )
        })
        .collect();
    let line = format!(
        "EC2SNAP CRITICAL - {} of {} instances without a passed drill within {}{}: {} | {perf}",
        late.len(),
        instances.len(),
        human(max_age_secs),
        stale_targets(late.iter().map(|d| &d.target)),
        list.join(", ")
    );
    (Status::Critical, line)
}

/// Both checks in one line: the worse status, both texts, both performance data.
pub fn combine(a: (Status, String), b: (Status, String)) -> (Status, String) {
    let status = if a.0 == Status::Critical || b.0 == Status::Critical {
        Status::Critical
    } else if a.0 == Status::Unknown || b.0 == Status::Unknown {
        Status::Unknown
    } else {
        Status::Ok
    };
    let split = |line: &str| -> (String, String) {
        let body = line.split_once(" - ").map(|(_, b)| b).unwrap_or(line);
        match body.split_once(" | ") {
            Some((text, perf)) => (text.to_string(), perf.to_string()),
            None => (body.to_string(), String::new()),
        }
    };
    let ((ta, pa), (tb, pb)) = (split(&a.1), split(&b.1));
    let perf = [pa, pb]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let line = format!("EC2SNAP {} - {ta}; {tb} | {perf}", status.name());
    (status, line)
}

/// How long ago each instance's last drill passed, from its `ec2snap:drill-ok` tag.
pub fn drill_ages(instances: &[crate::model::Instance], now: DateTime<Utc>) -> Vec<DrillAge> {
    instances
        .iter()
        .map(|i| DrillAge {
            instance_id: i.id.clone(),
            name: i.name().to_string(),
            age_secs: i
                .tags
                .get(DRILL_OK_TAG)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| (now - t.with_timezone(&Utc)).num_seconds().max(0)),
            target: None,
        })
        .collect()
}

/// The check against AWS: the same Describe calls as a run (instances, then the volumes'
/// snapshots), nothing else; over many accounts and regions, in each target, the stale ones
/// named. `Err` is UNKNOWN.
pub async fn check(cfg: &Config, shutdown: &Shutdown) -> Result<(Status, String)> {
    let now = crate::clock::now();
    let work = async {
        if cfg.fleet.is_single() {
            return gather(cfg, now, true)
                .await
                .map(|found| (found, Vec::new()));
        }
        let (targets, unreachable) = crate::run::fleet::targets(cfg).await?;
        let at_once = cfg.fleet.parallel_targets;
        let mut results = crate::run::fleet::each(targets, at_once, |t| async move {
            (t.id.label(), gather(&t.config, now, false).await)
        })
        .await;
        results.extend(
            unreachable
                .into_iter()
                .map(|u| (u.id.label(), Err(u.error))),
        );
        let mut found = (Vec::new(), Vec::new(), Vec::new());
        let mut failed = Vec::new();
        for (label, result) in results {
            match result {
                Ok((volumes, drills, vault)) => {
                    found.2.extend(vault.into_iter().map(|v| VolumeAge {
                        target: Some(label.clone()),
                        ..v
                    }));
                    let target = Some(label);
                    found.0.extend(volumes.into_iter().map(|v| VolumeAge {
                        target: target.clone(),
                        ..v
                    }));
                    found.1.extend(drills.into_iter().map(|d| DrillAge {
                        target: target.clone(),
                        ..d
                    }));
                }
                Err(e) => failed.push(format!("{label}: {e:#}")),
            }
        }
        Ok((found, failed))
    };
    let bounded = tokio::time::timeout(cfg.check_timeout, work);
    let ((volumes, drills, vault), failed) = match shutdown.race(bounded).await {
        Ok(Ok(result)) => result?,
        Ok(Err(_)) => bail!(
            "no answer within {} s (--check-timeout)",
            cfg.check_timeout.as_secs()
        ),
        Err(sig) => bail!("interrupted by {}", sig.name()),
    };
    for v in &volumes {
        let age = v.age_secs.map(human).unwrap_or_else(|| "none".into());
        debug!(
            "{}",
            msg::volume_age(&v.volume_id, &v.instance_id, &v.name, &v.device, &age)
        );
    }
    let mut backups = cfg.check_max_age.map(|max| evaluate(&volumes, max));
    if let (Some(max), Some(_)) = (cfg.check_max_age, &cfg.vault_reader) {
        let copies = evaluate_vault(&vault, max);
        backups = backups.map(|b| combine(b, copies));
    }
    let drilled = cfg.drill_max_age.map(|max| evaluate_drills(&drills, max));
    let result = match (backups, drilled) {
        (Some(a), Some(b)) => combine(a, b),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => (Status::Unknown, unknown("nothing to check")),
    };
    Ok(with_failed_targets(result, &failed))
}

/// A check over many targets some of which could not be checked: CRITICAL stays CRITICAL and
/// says so; anything else is UNKNOWN, naming them.
pub fn with_failed_targets(result: (Status, String), failed: &[String]) -> (Status, String) {
    if failed.is_empty() {
        return result;
    }
    let which = failed.join("; ");
    match result {
        (Status::Critical, line) => {
            let (text, perf) = line.split_once(" | ").unwrap_or((line.as_str(), ""));
            let line = format!("{text}; cannot check {which} | {perf}");
            (Status::Critical, line.trim_end_matches(" | ").to_string())
        }
        _ => (Status::Unknown, unknown(&format!("cannot check {which}"))),
    }
}

/// One target's volumes with the age of their newest completed snapshot, and its instances with
/// the age of their last passed drill. `alone`: the only target, for which no instance is an
/// error (a fleet's target may have none).
async fn gather(
    cfg: &Config,
    now: DateTime<Utc>,
    alone: bool,
) -> Result<(Vec<VolumeAge>, Vec<DrillAge>, Vec<VolumeAge>)> {
    let ec2 = Ec2::connect(&cfg.aws).await?;
    let record = Record::default();
    // In a fleet, an id another target has is no error here.
    let instances = fetch::select_instances(&ec2, &cfg.selection, &record, !alone).await?;
    let missing = record.counts().snapshot_errors;
    if missing > 0 {
        bail!("{missing} instance(s) given with -i not found");
    }
    if instances.is_empty() && alone {
        bail!("no instance selected");
    }
    let processed = match cfg.limit {
        Some(n) => &instances[..n.min(instances.len())],
        None => &instances[..],
    };
    let disks: Vec<(&crate::model::Instance, &crate::model::Disk)> = processed
        .iter()
        .flat_map(|i| {
            plan::disks_to_snapshot(i, cfg.no_root_device)
                .into_iter()
                .map(move |d| (i, d))
        })
        .collect();
    let drills = drill_ages(processed, now);
    if cfg.check_max_age.is_none() || disks.is_empty() {
        return Ok((Vec::new(), drills, Vec::new()));
    }
    let volumes = fetch::unique_volumes(disks.iter().map(|(_, d)| *d));
    let snapshots = ec2.snapshots_of(&volumes, &cfg.snap_filter).await?;
    let vault = match &cfg.vault_reader {
        Some(v) => vault_ages(&ec2, cfg, v, &disks, &snapshots, now).await?,
        None => Vec::new(),
    };
    Ok((ages(&disks, &snapshots, cfg, now), drills, vault))
}

/// `--check-vault`: each volume's newest completed vault copy, aged by the backup it is a copy of
/// (the copy's own time when that backup is gone). The vault is read as the vault role.
async fn vault_ages(
    ec2: &Ec2,
    cfg: &Config,
    vault: &crate::config::restore::FromVault,
    disks: &[(&crate::model::Instance, &crate::model::Disk)],
    snapshots: &[crate::model::Snapshot],
    now: DateTime<Utc>,
) -> Result<Vec<VolumeAge>> {
    use crate::tags::{SOURCE_SNAPSHOT_TAG, SOURCE_VOLUME_TAG};
    let (_, copies) = crate::vault::apply::copies_of_this_account(ec2, &cfg.aws, vault).await?;
    let start_of: HashMap<&str, DateTime<Utc>> = snapshots
        .iter()
        .map(|s| (s.id.as_str(), s.start_time))
        .collect();
    let mut newest: HashMap<&str, DateTime<Utc>> = HashMap::new();
    for c in copies
        .iter()
        .filter(|c| c.state == SnapshotState::Completed)
    {
        let Some(vol) = c.tags.get(SOURCE_VOLUME_TAG) else {
            continue;
        };
        let source = c
            .tags
            .get(SOURCE_SNAPSHOT_TAG)
            .map(String::as_str)
            .unwrap_or("");
        let when = start_of.get(source).copied().unwrap_or(c.start_time);
        let t = newest.entry(vol.as_str()).or_insert(when);
        *t = (*t).max(when);
    }
    Ok(volume_ages(disks, &newest, now))
}

/// The vault copies' status: `evaluate`'s, said of the vault copies (`vault_` perfdata).
pub fn evaluate_vault(volumes: &[VolumeAge], max_age_secs: i64) -> (Status, String) {
    let (status, line) = evaluate(volumes, max_age_secs);
    let (text, perf) = line.split_once(" | ").unwrap_or((line.as_str(), ""));
    let text = text
        .replace("newest snapshots", "newest vault copies")
        .replace(" volumes stale", " volumes without a recent vault copy");
    let perf: Vec<String> = perf
        .split(' ')
        .filter(|p| !p.is_empty())
        .map(|p| format!("vault_{p}"))
        .collect();
    (status, format!("{text} | {}", perf.join(" ")))
}

/// The newest completed snapshot's age of each volume, each volume once.
fn ages(
    disks: &[(&crate::model::Instance, &crate::model::Disk)],
    snapshots: &[crate::model::Snapshot],
    cfg: &Config,
    now: DateTime<Utc>,
) -> Vec<VolumeAge> {
    let mut newest: HashMap<&str, DateTime<Utc>> = HashMap::new();
    for s in snapshots {
        if s.state == SnapshotState::Completed && matches_all(&cfg.snap_filter, &s.tags) {
            let t = newest.entry(s.volume_id.as_str()).or_insert(s.start_time);
            *t = (*t).max(s.start_time);
        }
    }
    volume_ages(disks, &newest, now)
}

/// Each volume once, aged by `newest` (`None`: nothing there).
fn volume_ages(
    disks: &[(&crate::model::Instance, &crate::model::Disk)],
    newest: &HashMap<&str, DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Vec<VolumeAge> {
    let mut seen = std::collections::HashSet::new();
    disks
        .iter()
        .filter(|(_, d)| seen.insert(d.volume_id.clone()))
        .map(|(i, d)| VolumeAge {
            volume_id: d.volume_id.clone(),
            instance_id: i.id.clone(),
            name: i.name().to_string(),
            device: d.device.clone(),
            age_secs: newest
                .get(d.volume_id.as_str())
                .map(|t| (now - *t).num_seconds().max(0)),
            target: None,
        })
        .collect()
}

/// `ec2snap check` (or `--check-max-age` without a subcommand): one status line on standard
/// output; every failure, a bad flag included, is UNKNOWN (exit 3).
pub fn main(job: crate::config::Job<Config>) -> Result<ExitCode, crate::output::exit::Abort> {
    // A log that cannot be opened (-f) is an UNKNOWN too: a plugin answers 0, 2 or 3.
    let outputs = job.outputs.clone();
    let config = match crate::job::start(job) {
        Ok((config, _)) => config,
        Err(crate::output::exit::Abort::Log(e)) => Err(e),
        Err(other) => return Err(other),
    };
    // A check changes nothing: it always tells (no start ping: its time says nothing).
    let notifier = crate::notify::send::Notifier {
        targets: outputs.notify.clone(),
        aws: config.as_ref().ok().map(|c| c.aws.clone()),
        job: outputs.job.clone(),
        real: true,
    };
    let result = config.and_then(|cfg| {
        crate::job::with_runtime(crate::signals::After::Read, |shutdown| async move {
            check(&cfg, &shutdown).await
        })
    });
    let (status, line) = match result {
        Ok(found) => found,
        Err(e) => (Status::Unknown, unknown(&format!("{e:#}"))),
    };
    let line = crate::output::messages::one_line(&line).into_owned();
    let _ = crate::output::stdout::print(&format!("{line}\n"));
    let exit_code = status.exit_code().code();
    notifier.finish(&crate::notify::Ending {
        job: outputs.job.clone(),
        status: status.name(),
        exit_code,
        summary: format!("{line}\nexit code {exit_code}\n"),
        report: None,
    });
    Ok(status.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(id: &str, age: Option<i64>) -> VolumeAge {
        VolumeAge {
            volume_id: id.into(),
            instance_id: "i-1".into(),
            name: "web1".into(),
            device: "/dev/sdb".into(),
            age_secs: age,
            target: None,
        }
    }

    #[test]
    fn status_lines() {
        let h = 3_600;
        // (volumes, expected status, expected line)
        let cases = vec![
            (
                vec![vol("vol-a", Some(3 * h)), vol("vol-b", Some(h / 2))],
                Status::Ok,
                "EC2SNAP OK - 2 volumes, newest snapshots at most 3h old | volumes=2 stale=0 oldest=10800s",
            ),
            (
                vec![vol("vol-a", Some(31 * h)), vol("vol-b", None), vol("vol-c", Some(h))],
                Status::Critical,
                "EC2SNAP CRITICAL - 2 of 3 volumes stale: vol-a (i-1 web1 /dev/sdb) 31h, vol-b (i-1 web1 /dev/sdb) none | volumes=3 stale=2 oldest=111600s",
            ),
            (vec![], Status::Unknown, "EC2SNAP UNKNOWN - no volume selected"),
            (
                vec![vol("vol-a", Some(24 * h))],
                Status::Ok,
                "EC2SNAP OK - 1 volumes, newest snapshots at most 24h old | volumes=1 stale=0 oldest=86400s",
            ),
        ];
        for (volumes, status, line) in cases {
            assert_eq!(evaluate(&volumes, 24 * h), (status, line.to_string()));
        }
    }

    #[test]
    fn drill_status_lines() {
        let d = |id: &str, age: Option<i64>| DrillAge {
            instance_id: id.into(),
            name: "web1".into(),
            age_secs: age,
            target: None,
        };
        let day = 86_400;
        let ok = evaluate_drills(&[d("i-1", Some(2 * day)), d("i-2", Some(day))], 8 * day);
        assert_eq!(
            ok,
            (
                Status::Ok,
                "EC2SNAP OK - 2 instances, restore drills passed at most 48h ago | instances=2 undrilled=0".into()
            )
        );
        let late = evaluate_drills(&[d("i-1", Some(9 * day)), d("i-2", None)], 8 * day);
        assert_eq!(
            late,
            (
                Status::Critical,
                "EC2SNAP CRITICAL - 2 of 2 instances without a passed drill within 8d: i-1 (web1) 9d, i-2 (web1) none | instances=2 undrilled=2".into()
            )
        );
        let both = combine(evaluate(&[vol("vol-a", Some(3_600))], day), late);
        assert_eq!(both.0, Status::Critical);
        assert!(
            both.1.starts_with("EC2SNAP CRITICAL - 1 volumes, newest snapshots at most 1h old; 2 of 2 instances without")
                && both.1.ends_with("| volumes=1 stale=0 oldest=3600s instances=2 undrilled=2"),
            "{}",
            both.1
        );
    }

    #[test]
    fn a_fleet_check_names_the_stale_targets() {
        let h = 3_600;
        let at = |id: &str, age, target: &str| VolumeAge {
            target: Some(target.into()),
            ..vol(id, age)
        };
        let volumes = [
            at("vol-a", Some(30 * h), "prod/eu-west-1"),
            at("vol-b", Some(h), "prod/us-east-1"),
            at("vol-c", None, "dev/eu-west-1"),
            at("vol-d", Some(40 * h), "prod/eu-west-1"),
        ];
        let (status, line) = evaluate(&volumes, 24 * h);
        assert_eq!(status, Status::Critical);
        assert_eq!(
            line,
            "EC2SNAP CRITICAL - 3 of 4 volumes stale in dev/eu-west-1, prod/eu-west-1: \
             prod/eu-west-1 vol-a (i-1 web1 /dev/sdb) 30h, dev/eu-west-1 vol-c (i-1 web1 /dev/sdb) none, \
             prod/eu-west-1 vol-d (i-1 web1 /dev/sdb) 40h | volumes=4 stale=3 oldest=144000s"
        );
        let failed = ["qa/eu-west-1: Cannot assume role x: AccessDenied".to_string()];
        let (status, line) = with_failed_targets((status, line), &failed);
        assert_eq!(status, Status::Critical);
        assert!(
            line.contains(
                "40h; cannot check qa/eu-west-1: Cannot assume role x: AccessDenied | volumes=4"
            ),
            "{line}"
        );
        let fine = evaluate(&volumes[1..2], 24 * h);
        assert_eq!(fine.0, Status::Ok);
        assert_eq!(
            with_failed_targets(fine.clone(), &failed),
            (
                Status::Unknown,
                "EC2SNAP UNKNOWN - cannot check qa/eu-west-1: Cannot assume role x: AccessDenied"
                    .into()
            )
        );
        assert_eq!(with_failed_targets(fine.clone(), &[]), fine);
    }

    #[test]
    fn ages_read_like_a_person_would() {
        for (secs, want) in [
            (59, "0m"),
            (2_700, "45m"),
            (111_600, "31h"),
            (700_000, "8d"),
        ] {
            assert_eq!(human(secs), want);
        }
    }
}
