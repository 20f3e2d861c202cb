//! `ec2snap hold` and `ec2snap release`: their flags, checked before anything is sent.

use crate::cli;
use crate::retention::{hold, lock};
use anyhow::{bail, Result};

/// What `hold` or `release` acts on, and how.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HoldOptions {
    /// `release`: the holds end; else they are put.
    pub release: bool,
    /// Named snapshots (`snap-...`).
    pub snapshots: Vec<String>,
    /// `--set`: sets, whole.
    pub sets: Vec<String>,
    /// `-i`/`-t`: the selected instances' newest backup (`release`: their held backups).
    pub by_instance: bool,
    /// `--copy-to`: their copies in these regions too.
    pub copy_to: Vec<String>,
    /// `hold --reason`.
    pub reason: String,
    /// `hold --lock MODE --lock-days N`.
    pub lock: Option<(lock::Mode, u32)>,
}

/// A snapshot id as EC2 writes them: `snap-` and 8 or 17 hexadecimal digits.
fn snapshot_id(id: &str) -> bool {
    id.strip_prefix("snap-").is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17) && hex.chars().all(|c| c.is_ascii_hexdigit())
    })
}

fn targets(t: &cli::HoldTargets, common: &cli::Common, what: &str) -> Result<HoldOptions> {
    if let Some(bad) = t.snapshots.iter().find(|id| !snapshot_id(id)) {
        bail!(
            "{what}: {:?} is not a snapshot id (snap- and 8 or 17 hexadecimal digits)",
            crate::output::messages::one_line(bad)
        );
    }
    if let Some(bad) = t.set.iter().find(|s| s.trim().is_empty() || s.len() > 256) {
        bail!(
            "--set {bad:?} is not a set id (its ec2snap:set tag, e.g. i-0abc@2026-12-08T02:30:00Z)"
        );
    }
    let by_instance = !common.instance.is_empty() || !common.tags.is_empty();
    if t.snapshots.is_empty() && t.set.is_empty() && !by_instance {
        bail!(
            "{what}: give snapshot ids, --set SET_ID, or -i/-t for the selected instances' backups"
        );
    }
    let mut copy_to = Vec::new();
    for r in &t.copy_to {
        copy_to.push(super::region_name(r)?);
    }
    copy_to.sort();
    copy_to.dedup();
    Ok(HoldOptions {
        snapshots: t.snapshots.clone(),
        sets: t.set.clone(),
        by_instance,
        copy_to,
        ..HoldOptions::default()
    })
}

/// `ec2snap hold`.
pub fn hold(a: &cli::HoldArgs) -> Result<HoldOptions> {
    let mut options = targets(&a.targets, &a.common, "hold")?;
    let Some(reason) = &a.reason else {
        bail!("hold: give --reason TEXT (why the snapshots are held: it is on them, with who and when)");
    };
    hold::check_reason(reason)?;
    options.reason = reason.clone();
    options.lock = match (a.lock, a.lock_days) {
        (None, None) => {
            if a.lock_cool_off.is_some() {
                bail!("--lock-cool-off goes with --lock compliance");
            }
            None
        }
        (None, Some(_)) => bail!("--lock-days goes with --lock governance|compliance"),
        (Some(_), None) => {
            bail!("--lock needs --lock-days N: how long the lock lasts (1 to 36500)")
        }
        (Some(mode), Some(days)) => {
            if !(1..=36_500).contains(&days) {
                bail!("--lock-days must be from 1 to 36500 (here {days})");
            }
            let mode = match mode {
                cli::LockMode::Governance => {
                    if a.lock_cool_off.is_some() {
                        bail!("--lock-cool-off goes with --lock compliance");
                    }
                    lock::Mode::Governance
                }
                cli::LockMode::Compliance => {
                    let hours = a.lock_cool_off.unwrap_or(24);
                    if !(1..=72).contains(&hours) {
                        bail!("--lock-cool-off must be from 1 to 72 hours (here {hours})");
                    }
                    lock::Mode::Compliance {
                        cool_off_hours: hours,
                    }
                }
            };
            Some((mode, days))
        }
    };
    Ok(options)
}

/// `ec2snap release`.
pub fn release(a: &cli::ReleaseArgs) -> Result<HoldOptions> {
    Ok(HoldOptions {
        release: true,
        ..targets(&a.targets, &a.common, "release")?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_ids_are_checked() {
        for ok in ["snap-0123abcd", "snap-0123456789abcdef0"] {
            assert!(snapshot_id(ok), "{ok}");
        }
        for bad in [
            "snap-xyz",
            "vol-0123abcd",
            "snap-0123abc",
            "",
            "snap-0123abcd\n",
        ] {
            assert!(!snapshot_id(bad), "{bad:?}");
        }
    }
}
