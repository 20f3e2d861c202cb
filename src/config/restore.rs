//! `ec2snap restore` and `ec2snap drill`: their flags checked into `RestoreOptions`, before any
//! AWS call.

use crate::cli::{DrillArgs, RestoreArgs};
use crate::config::refuse;
use anyhow::{bail, Result};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// What a restore starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The selected instances' newest completed backup, taken at or before `at` when given.
    Instances { at: Option<DateTime<Utc>> },
    /// `--snapshot`: these snapshots.
    Snapshots(Vec<String>),
    /// `--set`: every member of this set.
    Set(String),
}

/// `restore` and `drill`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreOptions {
    pub source: Source,
    /// `--az`.
    pub zone: Option<String>,
    /// `--attach-to`.
    pub attach_to: Option<String>,
    /// `--ami NAME`.
    pub ami: Option<String>,
    /// `--from-region`.
    pub from_region: Option<String>,
    /// `--allow-partial`: `--ami` of a backup that lacks a volume.
    pub allow_partial: bool,
    /// `--from-vault --in-vault`: the vault copies, restored in the vault account.
    pub vault: Option<FromVault>,
    /// `drill`: the drill and its `--drill-check` command and `--drill-sample`.
    pub drill: Option<Drill>,
}

/// `--from-vault`: the vault role, its account and region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromVault {
    pub role: crate::aws::settings::Role,
    pub account: String,
    pub region: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Drill {
    pub check: Option<String>,
    pub sample: Option<usize>,
    /// `--drill-timeout`: the check's bound.
    pub timeout: std::time::Duration,
}

/// `--drill-timeout`'s default and largest value, in seconds.
const DRILL_TIMEOUT: u64 = 300;
const MAX_DRILL_TIMEOUT: u64 = 86_400;

/// `--at`: `2026-11-30` (midnight), `2026-11-30T14:00`, `2026-11-30 14:00:05` (UTC), or RFC 3339
/// with its offset.
pub fn parse_at(text: &str) -> Result<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc());
        }
    }
    if let Some(t) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
    {
        return Ok(t.and_utc());
    }
    bail!("--at {text:?}: give a UTC time as 2026-11-30, 2026-11-30T14:00 or 2026-11-30T14:00:00+01:00")
}

fn zone(z: &Option<String>) -> Result<Option<String>> {
    match z.as_deref().map(str::trim) {
        Some("") => bail!("--az cannot be empty"),
        Some(z) => Ok(Some(z.to_string())),
        None => Ok(None),
    }
}

/// `ec2snap restore`'s options.
pub fn restore(args: &RestoreArgs) -> Result<RestoreOptions> {
    let selected = !args.common.instance.is_empty() || !args.common.tags.is_empty();
    let sources = [
        (selected, "-i/-t"),
        (!args.snapshot.is_empty(), "--snapshot"),
        (args.set.is_some(), "--set"),
    ];
    let given: Vec<&str> = sources
        .iter()
        .filter_map(|(on, f)| on.then_some(*f))
        .collect();
    let source = match given.as_slice() {
        ["-i/-t"] => Source::Instances {
            at: args.at.as_deref().map(parse_at).transpose()?,
        },
        ["--snapshot"] => {
            if let Some(bad) = args.snapshot.iter().find(|s| !s.starts_with("snap-")) {
                bail!("--snapshot {bad:?}: a snapshot id starts with snap-");
            }
            Source::Snapshots(args.snapshot.clone())
        }
        ["--set"] => {
            let set = args.set.clone().unwrap_or_default();
            if !set.starts_with("i-") || !set.contains('@') {
                bail!("--set {set:?}: a set id is <instance-id>@<time>, as `ec2snap list --consistent` shows it");
            }
            Source::Set(set)
        }
        [] => bail!("restore: say what to restore: -i/-t (the newest backup of each instance), --snapshot or --set"),
        _ => bail!("restore: give one of {}, not several", given.join(", ")),
    };
    if args.at.is_some() && !matches!(source, Source::Instances { .. }) {
        bail!("--at goes with -i/-t: --snapshot and --set name their backup already");
    }
    if args.ami.is_some() {
        let clashes = [
            (args.az.is_some(), "--az"),
            (args.attach_to.is_some(), "--attach-to"),
            (!args.snapshot.is_empty(), "--snapshot"),
        ];
        refuse(&clashes, "--ami registers an image, it makes no volume")?;
        if let Some(name) = args.ami.as_deref() {
            let allowed = |c: char| c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c);
            let length = name.trim().chars().count();
            if !(3..=128).contains(&length) || !name.chars().all(allowed) {
                bail!("--ami: an AMI name has 3 to 128 characters, letters, digits and ()[] ./-'@_ (here {name:?})");
            }
        }
    }
    if args.allow_partial && args.ami.is_none() {
        bail!("--allow-partial goes with --ami (volumes of a partial backup are restored as far as it goes)");
    }
    if args.from_region.is_some() && args.ami.is_none() && args.az.is_none() {
        bail!("--from-region needs --az: the source volumes' zones are in another region");
    }
    if let Some(id) = args.attach_to.as_deref().filter(|i| !i.starts_with("i-")) {
        bail!("--attach-to {id:?}: an instance id starts with i-");
    }
    let vault = from_vault(args)?;
    Ok(RestoreOptions {
        source,
        zone: zone(&args.az)?,
        attach_to: args.attach_to.clone(),
        ami: args.ami.clone(),
        from_region: args.from_region.clone(),
        allow_partial: args.allow_partial,
        vault,
        drill: None,
    })
}

/// `--from-vault`, `--in-vault` and the vault role.
fn from_vault(args: &RestoreArgs) -> Result<Option<FromVault>> {
    if !args.from_vault {
        let given = [
            (args.in_vault, "--in-vault"),
            (args.vault_role.is_some(), "--vault-role"),
            (args.vault_external_id.is_some(), "--vault-external-id"),
            (args.vault_region.is_some(), "--vault-region"),
        ];
        if let Some((_, flag)) = given.iter().find(|(g, _)| *g) {
            bail!("{flag} goes with --from-vault");
        }
        return Ok(None);
    }
    let Some(arn) = args.vault_role.as_deref() else {
        bail!("--from-vault needs --vault-role: the role the copies were made with");
    };
    let Some(account) = crate::config::fleet::role_account(arn) else {
        bail!("--vault-role {arn:?} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)");
    };
    if !args.in_vault {
        bail!("--from-vault restores in the vault account: give --in-vault (restoring back into this account is not built yet)");
    }
    if args.from_region.is_some() {
        bail!("--from-vault reads the vault's copies: give --vault-region, not --from-region");
    }
    if args.ami.is_none() && args.az.is_none() {
        bail!("--in-vault needs --az: a zone of the vault account");
    }
    if args.attach_to.is_some() {
        bail!("--in-vault makes the volumes in the vault account: --attach-to names an instance of this one");
    }
    if let Some(region) = args.vault_region.as_deref() {
        if !crate::config::fleet::is_region_name(region) {
            bail!("--vault-region {region:?} is not a region name (ex: eu-west-1)");
        }
    }
    Ok(Some(FromVault {
        role: crate::aws::settings::Role {
            arn: arn.to_string(),
            external_id: args.vault_external_id.clone(),
            session_name: "ec2snap".into(),
        },
        account: account.to_string(),
        region: args.vault_region.clone(),
    }))
}

/// `ec2snap drill`'s options.
pub fn drill(args: &DrillArgs) -> Result<RestoreOptions> {
    if args.common.instance.is_empty() && args.common.tags.is_empty() {
        bail!("drill: select the instances to drill with -i or -t");
    }
    if args.sample == Some(0) {
        bail!("--drill-sample must be at least 1");
    }
    if args.check.as_deref().is_some_and(|c| c.trim().is_empty()) {
        bail!("--drill-check cannot be empty");
    }
    let timeout = args.drill_timeout.unwrap_or(DRILL_TIMEOUT);
    if !(1..=MAX_DRILL_TIMEOUT).contains(&timeout) {
        bail!("--drill-timeout takes 1 to {MAX_DRILL_TIMEOUT} seconds (here {timeout})");
    }
    if args.drill_timeout.is_some() && args.check.is_none() {
        bail!("--drill-timeout goes with --drill-check");
    }
    Ok(RestoreOptions {
        source: Source::Instances { at: None },
        zone: zone(&args.az)?,
        attach_to: None,
        ami: None,
        from_region: None,
        allow_partial: false,
        vault: None,
        drill: Some(Drill {
            check: args.check.clone(),
            sample: args.sample,
            timeout: std::time::Duration::from_secs(timeout),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::cli;
    use chrono::TimeZone;

    #[test]
    fn times_for_at() {
        let t = |y, mo, d, h, mi| Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap();
        for (text, want) in [
            ("2026-11-30", t(2026, 11, 30, 0, 0)),
            ("2026-11-30T14:00", t(2026, 11, 30, 14, 0)),
            ("2026-11-30 14:00", t(2026, 11, 30, 14, 0)),
            ("2026-11-30T14:00:00+01:00", t(2026, 11, 30, 13, 0)),
            ("2026-11-30T14:00:00Z", t(2026, 11, 30, 14, 0)),
        ] {
            assert_eq!(parse_at(text).unwrap(), want, "{text}");
        }
        for bad in ["yesterday", "2026-13-01", "30/11/2026"] {
            let e = parse_at(bad).unwrap_err().to_string();
            assert!(e.starts_with("--at "), "{e}");
        }
    }

    #[test]
    fn restore_flags() {
        let options = |args: &[&str]| match cli(args).command {
            Some(crate::cli::Sub::Restore(a)) => restore(&a),
            Some(crate::cli::Sub::Drill(a)) => drill(&a),
            other => panic!("{other:?}"),
        };
        let ok = |args: &[&str]| options(args).unwrap();
        let err = |args: &[&str]| options(args).unwrap_err().to_string();
        let o = ok(&["restore", "-i", "i-1", "--at", "2026-11-30"]);
        assert!(matches!(o.source, Source::Instances { at: Some(_) }));
        let o = ok(&["restore", "--snapshot", "snap-1", "--snapshot", "snap-2"]);
        assert_eq!(
            o.source,
            Source::Snapshots(vec!["snap-1".into(), "snap-2".into()])
        );
        let o = ok(&[
            "restore",
            "--set",
            "i-1@2026-11-30T02:00:00.000Z",
            "--ami",
            "web",
        ]);
        assert_eq!(o.ami.as_deref(), Some("web"));
        for (args, want) in [
            (&["restore"][..], "say what to restore"),
            (
                &["restore", "-i", "i-1", "--snapshot", "snap-1"],
                "not several",
            ),
            (&["restore", "--snapshot", "vol-1"], "starts with snap-"),
            (&["restore", "--set", "web"], "a set id is"),
            (
                &["restore", "--snapshot", "snap-1", "--at", "2026-11-30"],
                "--at goes with -i/-t",
            ),
            (
                &["restore", "-i", "i-1", "--ami", "web", "--az", "a"],
                "--ami registers an image",
            ),
            (
                &["restore", "-i", "i-1", "--from-region", "us-east-1"],
                "needs --az",
            ),
            (
                &["restore", "-i", "i-1", "--attach-to", "web"],
                "starts with i-",
            ),
            (
                &["restore", "-i", "i-1", "--az", " "],
                "--az cannot be empty",
            ),
            (&["drill"], "select the instances"),
            (&["drill", "-i", "i-1", "--drill-sample", "0"], "at least 1"),
        ] {
            let e = err(args);
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }
}
