//! The vault account's flags: `--vault-role` and its options on a run (the copies, made with the
//! vault role: create, tag, lock, never delete), and `vault-prune`'s (the vault's own retention,
//! with the vault account's credentials).

use crate::aws::settings::Role;
use crate::cli;
use crate::config::fleet::role_account;
use crate::retention::lock::LockPolicy;
use crate::retention::policy::Rule;
use anyhow::{bail, Result};

/// `--vault-role` and its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultPolicy {
    pub role: Role,
    /// The vault account: the role's.
    pub account: String,
    /// `--vault-region`; `None`: the snapshots' own region.
    pub region: Option<String>,
    pub kms_key: Option<String>,
    pub share_kms_key: Option<String>,
    /// How long the vault keeps a copy (`--vault-max-age`, `--vault-keep`, the `--keep-*` rules):
    /// what `--vault-lock` locks by.
    pub rule: Rule,
    pub lock: Option<LockPolicy>,
}

/// `ec2snap vault-prune`'s options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneOptions {
    pub rule: Rule,
    /// `--source-account`: only these accounts' copies (empty: every account's).
    pub source_accounts: Vec<String>,
}

/// The vault role's client settings: the base credentials (the role is assumed from them), the
/// vault's region or else `home`.
pub fn client_settings(
    base: &crate::aws::settings::AwsSettings,
    role: &Role,
    region: Option<&String>,
    home: &str,
) -> crate::aws::settings::AwsSettings {
    let mut settings = base.clone();
    settings.region = Some(region.cloned().unwrap_or_else(|| home.to_string()));
    settings.role = Some(role.clone());
    settings
}

/// A KMS key's account when it is given as an ARN (`arn:aws:kms:REGION:ACCOUNT:key/...`).
pub fn key_account(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let (_, service, _, account) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (service == "kms").then_some(account)
}

/// The vault's rule: `--vault-max-age` (default: `-g`), `--vault-keep` (default: `-d`), the
/// calendar rules and zone of `source`.
pub fn vault_rule(r: &cli::VaultRules, source: &Rule) -> Result<Rule> {
    let max_age = super::age_flag(&r.vault_max_age, "--vault-max-age")?.or(source.max_age_secs);
    let last = match r.vault_keep {
        None => source.keep.last,
        Some(n) if n < 0 => bail!("--vault-keep cannot be negative (here {n})"),
        Some(n) => usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(super::MAX_KEEP),
    };
    let mut rule = source.clone();
    rule.max_age_secs = max_age;
    rule.keep.last = last;
    Ok(rule)
}

/// `--vault-role` and its options, over the source's rule; `lock`: `--vault-lock`'s policy,
/// built by the caller from the lock flags.
pub fn policy(
    v: &cli::Vault,
    source: &Rule,
    session_name: &str,
    lock: impl FnOnce(cli::LockMode, &Rule) -> Result<LockPolicy>,
) -> Result<Option<VaultPolicy>> {
    let Some(arn) = v.vault_role.as_deref() else {
        let given = [
            (v.vault_external_id.is_some(), "--vault-external-id"),
            (v.vault_region.is_some(), "--vault-region"),
            (v.vault_kms_key.is_some(), "--vault-kms-key"),
            (v.share_kms_key.is_some(), "--share-kms-key"),
            (v.vault_lock.is_some(), "--vault-lock"),
            (!v.rules.vault_max_age.is_empty(), "--vault-max-age"),
            (v.rules.vault_keep.is_some(), "--vault-keep"),
        ];
        if let Some((_, flag)) = given.iter().find(|(g, _)| *g) {
            bail!("{flag} goes with --vault-role");
        }
        return Ok(None);
    };
    let Some(account) = role_account(arn) else {
        bail!("--vault-role {arn:?} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)");
    };
    if let Some(region) = &v.vault_region {
        if !super::fleet::is_region_name(region) {
            bail!("--vault-region {region:?} is not a region name (ex: eu-west-1)");
        }
    }
    for (flag, key) in [
        ("--vault-kms-key", &v.vault_kms_key),
        ("--share-kms-key", &v.share_kms_key),
    ] {
        if key.as_deref().is_some_and(|k| k.trim().is_empty()) {
            bail!("{flag} needs a key (id, ARN or alias)");
        }
    }
    if let Some(other) = v.vault_kms_key.as_deref().and_then(key_account) {
        if other != account {
            bail!("--vault-kms-key is a key of account {other}: give a key of the vault account {account}");
        }
    }
    if let Some(same) = v.share_kms_key.as_deref().and_then(key_account) {
        if same == account {
            bail!("--share-kms-key is a key of the vault account {account}: give a key of the source account, granted to the vault");
        }
    }
    let rule = vault_rule(&v.rules, source)?;
    let lock = v.vault_lock.map(|mode| lock(mode, &rule)).transpose()?;
    Ok(Some(VaultPolicy {
        role: Role {
            arn: arn.to_string(),
            external_id: v.vault_external_id.clone(),
            session_name: session_name.to_string(),
        },
        account: account.to_string(),
        region: v.vault_region.clone(),
        kms_key: v.vault_kms_key.clone(),
        share_kms_key: v.share_kms_key.clone(),
        rule,
        lock,
    }))
}

/// `check --check-vault` and its vault role.
pub fn check_vault(a: &cli::CheckArgs, max_age: bool) -> Result<Option<super::restore::FromVault>> {
    if !a.check_vault {
        if a.vault_role.is_some() || a.vault_external_id.is_some() || a.vault_region.is_some() {
            bail!("--vault-role, --vault-external-id and --vault-region go with --check-vault");
        }
        return Ok(None);
    }
    if !max_age {
        bail!(
            "--check-vault goes with --check-max-age: the age the vault copies' backups may have"
        );
    }
    if a.vault_role.is_none() {
        bail!("--check-vault needs --vault-role: the role the vault copies are read with");
    }
    reader(
        a.vault_role.as_deref(),
        a.vault_external_id.as_ref(),
        a.vault_region.as_ref(),
    )
}

/// `list --vault-role` (and `--vault-external-id`, `--vault-region`).
pub fn list_vault(a: &cli::ListArgs) -> Result<Option<super::restore::FromVault>> {
    if a.vault_role.is_none() && (a.vault_external_id.is_some() || a.vault_region.is_some()) {
        bail!("--vault-external-id and --vault-region go with --vault-role");
    }
    reader(
        a.vault_role.as_deref(),
        a.vault_external_id.as_ref(),
        a.vault_region.as_ref(),
    )
}

/// The role the vault copies are read with; `None` without one.
fn reader(
    arn: Option<&str>,
    external_id: Option<&String>,
    region: Option<&String>,
) -> Result<Option<super::restore::FromVault>> {
    let Some(arn) = arn else {
        return Ok(None);
    };
    let Some(account) = role_account(arn) else {
        bail!("--vault-role {arn:?} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)");
    };
    if let Some(region) = region {
        if !super::fleet::is_region_name(region) {
            bail!("--vault-region {region:?} is not a region name (ex: eu-west-1)");
        }
    }
    Ok(Some(super::restore::FromVault {
        role: Role {
            arn: arn.to_string(),
            external_id: external_id.cloned(),
            session_name: "ec2snap".into(),
        },
        account: account.to_string(),
        region: region.cloned(),
    }))
}

/// `vault-prune`'s rule and accounts: a rule is required (pruning by nothing would be a mistake).
pub fn prune(a: &cli::VaultPruneArgs) -> Result<PruneOptions> {
    let max_age = super::age_flag(&a.rules.vault_max_age, "--vault-max-age")?;
    let last = match a.rules.vault_keep {
        None => 0,
        Some(n) if n < 0 => bail!("--vault-keep cannot be negative (here {n})"),
        Some(n) => usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(super::MAX_KEEP),
    };
    let rule = super::calendar(&a.calendar, max_age, last)?;
    if !rule.is_enabled() {
        bail!("vault-prune: give the vault's rules: --vault-max-age N UNIT, --vault-keep N or a --keep-* rule");
    }
    if let Some(bad) = a
        .source_account
        .iter()
        .find(|id| id.len() != 12 || !id.chars().all(|c| c.is_ascii_digit()))
    {
        bail!("--source-account {bad:?} is not an account id (12 digits)");
    }
    Ok(PruneOptions {
        rule,
        source_accounts: a.source_account.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_accounts() {
        assert_eq!(
            key_account("arn:aws:kms:eu-west-1:111122223333:key/abcd"),
            Some("111122223333")
        );
        assert_eq!(key_account("alias/vault"), None);
        assert_eq!(key_account("1234abcd-12ab"), None);
    }
}
