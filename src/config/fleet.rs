//! Many accounts and regions: `-r` (repeatable, or `all`), `--assume-role`, `--accounts FILE`
//! (c7n-org's accounts.yml) and `--account-tag`, checked into a `Fleet` before any AWS call.

use crate::aws::settings::Role;
use crate::cli::{Accounts, Connection, Sharding};
use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// The regions a target runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Regions {
    /// The one region of the credentials (`-r`, the file, the profile, `AWS_REGION`).
    Default,
    List(Vec<String>),
    /// `-r all`: every region enabled for the account.
    All,
}

/// One account to work in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Its name in log lines, the report and the metrics (the file's `name`, or the role's
    /// account id); empty for the base credentials' own account.
    pub name: String,
    pub role: Option<Role>,
    /// Its own regions (the file's `regions`), unless `-r` is given.
    pub regions: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    pub accounts: Vec<Account>,
    pub regions: Regions,
    /// `--parallel-targets`.
    pub parallel_targets: usize,
    /// `--accounts-from-org`: the accounts are the Organization's, read before the targets.
    pub org: Option<OrgSource>,
    /// `--shard K/N`: only this shard's targets.
    pub shard: Option<Shard>,
}

/// `--accounts-from-org ROLE_NAME` and its filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgSource {
    pub role_name: String,
    /// `--org-unit`: only the accounts under these OUs (recursively).
    pub units: Vec<String>,
    /// `--org-include-management`.
    pub management: bool,
    /// `--account-tag`: the account's Organizations tags.
    pub tags: Vec<(String, String)>,
    pub session_name: String,
    pub external_id: Option<String>,
}

impl OrgSource {
    /// The role of account `id`.
    pub fn role(&self, id: &str) -> Role {
        Role {
            arn: format!("arn:aws:iam::{id}:role/{}", self.role_name),
            session_name: self.session_name.clone(),
            external_id: self.external_id.clone(),
        }
    }
}

/// The accounts of `--accounts-from-org`, in id order: the ACTIVE ones of `all` (those under
/// `--org-unit` when given: the caller lists those), without the management account unless
/// asked, with all of `--account-tag`'s tags (`tags`: each account's), each through its role.
pub fn org_accounts(
    all: &[crate::model::OrgAccount],
    management: &str,
    source: &OrgSource,
    tags: &std::collections::HashMap<String, std::collections::BTreeMap<String, String>>,
) -> Vec<Account> {
    let mut out: Vec<Account> = all
        .iter()
        .filter(|a| a.status == "ACTIVE")
        .filter(|a| source.management || a.id != management)
        .filter(|a| {
            source
                .tags
                .iter()
                .all(|(k, v)| tags.get(&a.id).and_then(|t| t.get(k)) == Some(v))
        })
        .map(|a| Account {
            name: a.id.clone(),
            role: Some(source.role(&a.id)),
            regions: None,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    out
}

pub use crate::model::MAX_SHARDS;

/// `--shard K/N`: this worker's shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether the target (account label, region) is this shard's.
    pub fn takes(&self, account: &str, region: &str) -> bool {
        shard_of(account, region, self.count) == self.index
    }

    pub fn label(&self) -> String {
        format!("{}/{}", self.index, self.count)
    }

    /// `--shard K/N`, or `--shard N` with `--shard-index-from VAR` (`index`: VAR's value).
    pub fn parse(text: &str, index: Option<(&str, Option<String>)>) -> Result<Shard> {
        let number = |s: &str, what: &str| -> Result<u32> {
            s.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| s.parse::<u32>().ok())
                .flatten()
                .ok_or_else(|| anyhow::anyhow!("--shard {text:?}: {what} is not a whole number"))
        };
        let (k, n) = match (text.split_once('/'), index) {
            (Some(_), Some((var, _))) => {
                bail!("--shard {text:?}: with --shard-index-from {var}, give N alone (K comes from {var})")
            }
            (Some((k, n)), None) => (number(k, "K")?, number(n, "N")?),
            (None, Some((var, value))) => {
                let Some(value) = value else {
                    bail!("--shard-index-from {var}: {var} is not set");
                };
                let k = value
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| value.parse::<u32>().ok())
                    .flatten()
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "--shard-index-from {var}: {var}={value:?} is not a whole number"
                        )
                    })?;
                (k, number(text, "N")?)
            }
            (None, None) => {
                bail!("--shard {text:?}: give K/N (e.g. 0/3), or N with --shard-index-from VAR")
            }
        };
        if !(1..=MAX_SHARDS).contains(&n) || k >= n {
            bail!("--shard {k}/{n}: give 0 <= K < N <= {MAX_SHARDS}");
        }
        Ok(Shard { index: k, count: n })
    }
}

/// The shard of a target: FNV-1a (64 bits) of the UTF-8 bytes of `ACCOUNT/REGION`, modulo
/// `count`. ACCOUNT is the target's account as the report names it (an account id, the
/// `--accounts` file's name, or empty for the base credentials' own account). The same on every
/// platform and version; a target keeps its shard when others are added.
pub fn shard_of(account: &str, region: &str, count: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in account
        .bytes()
        .chain(std::iter::once(b'/'))
        .chain(region.bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // count >= 1 (checked at parse time); `max(1)` keeps it a total function.
    u32::try_from(hash % u64::from(count.max(1))).unwrap_or(0)
}

impl Fleet {
    /// One account (its own or a role's) in one region: one target, whose run is the original's
    /// (log lines without a prefix, the report without sections).
    pub fn is_single(&self) -> bool {
        if self.org.is_some() || self.shard.is_some() {
            return false;
        }
        match self.accounts.as_slice() {
            [only] => match (&only.regions, &self.regions) {
                (Some(own), _) => own.len() == 1,
                (None, Regions::Default) => true,
                (None, Regions::List(list)) => list.len() == 1,
                (None, Regions::All) => false,
            },
            _ => false,
        }
    }
}

/// The most targets at once.
const MAX_PARALLEL_TARGETS: usize = 100;

/// `eu-west-1`, `us-gov-west-1`, `ap-southeast-4`: the shape of a region name.
pub fn is_region_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].chars().all(|c| c.is_ascii_lowercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// `arn:aws:iam::123456789012:role/path/name`: its account id, or `None` when it is no role ARN.
pub fn role_account(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix("iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let ok = PARTITIONS.contains(&partition)
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && resource.strip_prefix("role/").is_some_and(role_path_ok);
    ok.then_some(account)
}

/// The AWS partitions an IAM role ARN may name.
const PARTITIONS: [&str; 8] = [
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
    "aws-eusc",
];

/// A role's path and name as IAM takes them: the name 1 to 64 of `A-Za-z0-9+=,.@_-`, the path
/// (`dir/sub/`) at most 512 printable ASCII characters without a space.
fn role_path_ok(resource: &str) -> bool {
    let (path, name) = resource.rsplit_once('/').unwrap_or(("", resource));
    let name_ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    let path_ok = path.len() <= 512 && path.chars().all(|c| c.is_ascii_graphic());
    name_ok && path_ok
}

/// The largest accounts file read, and how deep its YAML may nest: a FIFO, `/dev/zero` or a
/// bomb of nested lists is refused before it is parsed.
const MAX_ACCOUNTS_FILE: u64 = 4 * 1024 * 1024;
const MAX_YAML_DEPTH: usize = 32;

/// The text of `--accounts FILE`: a regular file of at most `MAX_ACCOUNTS_FILE` bytes, UTF-8, a
/// byte order mark skipped.
fn read_accounts(path: &std::path::Path) -> Result<String> {
    use std::io::Read;
    let shown = path.display();
    let meta =
        std::fs::metadata(path).with_context(|| format!("Cannot read --accounts {shown}"))?;
    if !meta.is_file() {
        bail!("--accounts {shown} is not a regular file");
    }
    if meta.len() > MAX_ACCOUNTS_FILE {
        bail!("--accounts {shown} is larger than {MAX_ACCOUNTS_FILE} bytes");
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_ACCOUNTS_FILE + 1).read_to_string(&mut text))
        .with_context(|| format!("Cannot read --accounts {shown}"))?;
    if text.len() as u64 > MAX_ACCOUNTS_FILE {
        bail!("--accounts {shown} is larger than {MAX_ACCOUNTS_FILE} bytes");
    }
    Ok(text
        .strip_prefix('\u{feff}')
        .map(String::from)
        .unwrap_or(text))
}

/// How deep a YAML text's flow collections (`[..]`, `{..}`) and block indentation go, roughly:
/// enough to refuse a text made to take a parser's time.
fn yaml_depth(text: &str) -> usize {
    let (mut flow, mut deepest) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        deepest = deepest.max(indent / 2);
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '#') => break,
                (None, '[' | '{') => {
                    flow += 1;
                    deepest = deepest.max(flow + indent / 2);
                }
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
        }
        quote = None;
    }
    deepest
}

/// An entry of c7n-org's accounts.yml; other keys (`vars`, `email`, ...) are allowed and unused.
#[derive(Debug, Deserialize)]
struct Entry {
    account_id: serde_yaml_ng::Value,
    name: String,
    role: Option<String>,
    regions: Option<Vec<String>>,
    external_id: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct File {
    accounts: Vec<Entry>,
}

/// Where each entry of the `accounts` list starts (1-based lines): the lines that open a list
/// item (`- `) at the indentation of the first one.
fn entry_lines(text: &str) -> Vec<usize> {
    let items: Vec<(usize, usize)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("- "))
        .map(|(n, l)| (n + 1, l.len() - l.trim_start().len()))
        .collect();
    let indent = items.first().map(|(_, i)| *i).unwrap_or(0);
    items
        .into_iter()
        .filter(|(_, i)| *i == indent)
        .map(|(n, _)| n)
        .collect()
}

/// The line of `field` in the entry that starts at line `start` (its first line when not found).
fn field_line(text: &str, start: usize, end: Option<usize>, field: &str) -> usize {
    let key = format!("{field}:");
    text.lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l))
        .skip(start - 1)
        .take_while(|(n, _)| end.is_none_or(|e| *n < e))
        .find(|(_, l)| l.trim_start().trim_start_matches("- ").starts_with(&key))
        .map(|(n, _)| n)
        .unwrap_or(start)
}

/// The accounts of an accounts.yml text with all the tags in `want` (`KEY=VALUE` matches an
/// entry's `KEY:VALUE`); an error names the file, the line and the field.
pub fn parse_accounts(
    text: &str,
    path: &str,
    want: &[(String, String)],
    session_name: &str,
) -> Result<Vec<Account>> {
    if yaml_depth(text) > MAX_YAML_DEPTH {
        bail!("--accounts {path}: nested deeper than {MAX_YAML_DEPTH} levels");
    }
    let located = |e: serde_yaml_ng::Error| {
        let at = e
            .location()
            .map(|l| format!(" line {}", l.line()))
            .unwrap_or_default();
        anyhow::anyhow!("--accounts {path}:{at}: {e}")
    };
    // Merge keys (`<<: *defaults`), which c7n-org's files use, are applied first (errors then
    // name no line; a file without them is read directly, its errors with their line).
    let file: File = if text.contains("<<") {
        let mut value: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(located)?;
        value.apply_merge().map_err(located)?;
        serde_yaml_ng::from_value(value).map_err(located)?
    } else {
        serde_yaml_ng::from_str(text).map_err(located)?
    };
    if file.accounts.is_empty() {
        bail!("--accounts {path}: `accounts` lists no account");
    }
    let mut out = Vec::new();
    let starts = entry_lines(text);
    for (n, e) in file.accounts.into_iter().enumerate() {
        let id = match &e.account_id {
            serde_yaml_ng::Value::String(s) => s.clone(),
            serde_yaml_ng::Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        let start = starts.get(n).copied().unwrap_or(1);
        let end = starts.get(n + 1).copied();
        let place = |field: &str| {
            let line = field_line(text, start, end, field);
            format!("--accounts {path} line {line}: accounts[{n}].{field}")
        };
        if id.len() != 12 || !id.chars().all(|c| c.is_ascii_digit()) {
            bail!(
                "{}: {id:?} is not a 12-digit account id",
                place("account_id")
            );
        }
        let Some(role) = e.role else {
            bail!(
                "{}: missing (the IAM role to assume in {id})",
                place("role")
            );
        };
        match role_account(&role) {
            None => bail!(
                "{}: {role:?} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
                place("role")
            ),
            Some(acct) if acct != id => bail!(
                "{}: {role:?} is a role of account {acct}, not of {id}",
                place("role")
            ),
            Some(_) => {}
        }
        if let Some(bad) = e.regions.iter().flatten().find(|r| !is_region_name(r)) {
            bail!("{}: {bad:?} is not a region name", place("regions"));
        }
        if e.regions.as_ref().is_some_and(Vec::is_empty) {
            bail!(
                "{}: empty: name the account's regions, or leave the key out (then -r decides)",
                place("regions")
            );
        }
        let has = |(k, v): &(String, String)| e.tags.iter().any(|t| t == &format!("{k}:{v}"));
        if !want.iter().all(has) {
            continue;
        }
        out.push(Account {
            name: e.name,
            role: Some(Role {
                arn: role,
                external_id: e.external_id,
                session_name: session_name.to_string(),
            }),
            regions: e.regions,
        });
    }
    if out.is_empty() {
        bail!("--accounts {path}: no account has the tags of --account-tag");
    }
    Ok(out)
}

/// The regions a run over `fleet` names (`-r`, the accounts' own), for a check against the
/// regions AWS knows before any change.
pub fn named_regions(fleet: &Fleet) -> Vec<&str> {
    let mut out: Vec<&str> = match &fleet.regions {
        Regions::List(list) => list.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    for a in &fleet.accounts {
        out.extend(a.regions.iter().flatten().map(String::as_str));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Every (account index, region) target of `fleet`, accounts in their order, regions sorted: an
/// account's own regions (the file's), else `-r`'s list, else with `-r all` the regions enabled
/// for it (`enabled[index]`), else `default`, the base credentials' region (`None`: they have
/// none, an error for an account that needs it).
pub fn targets(
    fleet: &Fleet,
    default: Option<&str>,
    enabled: &[Option<Vec<String>>],
) -> Result<Vec<(usize, String)>> {
    let mut out = Vec::new();
    for (n, account) in fleet.accounts.iter().enumerate() {
        let regions: Vec<String> = match (&account.regions, &fleet.regions) {
            (Some(own), _) => own.clone(),
            (None, Regions::List(list)) => list.clone(),
            (None, Regions::All) => match enabled.get(n) {
                Some(Some(list)) => list.clone(),
                _ => bail!("the regions of account {:?} are not known", account.name),
            },
            (None, Regions::Default) => match default {
                Some(region) => vec![region.to_string()],
                None => bail!(
                    "No AWS region for account {:?}: give -r REGION, regions in --accounts, AWS_REGION, or a region in the AWS profile",
                    account.name
                ),
            },
        };
        let mut regions = regions;
        regions.sort();
        regions.dedup();
        out.extend(regions.into_iter().map(|r| (n, r)));
    }
    Ok(out)
}

/// The fleet of a command line.
pub fn fleet(conn: &Connection, cli: &Accounts, sharding: Option<&Sharding>) -> Result<Fleet> {
    let none = Sharding::default();
    let sh = sharding.unwrap_or(&none);
    // A region is a host label (the SDK builds the endpoint from it): checked here, by name.
    if let Some(bad) = conn.region.iter().find(|r| {
        r.as_str() != "all"
            && (r.is_empty()
                || !r
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    }) {
        bail!("-r {bad:?} is not a region name (ex: eu-west-1)");
    }
    let regions = match conn.region.as_slice() {
        [] => Regions::Default,
        list if list.iter().any(|r| r == "all") => {
            if list.len() > 1 {
                bail!("-r all takes every enabled region: give it alone");
            }
            Regions::All
        }
        [_] => Regions::Default,
        list => {
            if let Some(bad) = list.iter().find(|r| !is_region_name(r)) {
                bail!("-r {bad:?} is not a region name (ex: eu-west-1)");
            }
            let mut unique = list.to_vec();
            unique.sort();
            unique.dedup();
            Regions::List(unique)
        }
    };
    let session_name = cli
        .role_session_name
        .clone()
        .unwrap_or_else(|| "ec2snap".into());
    if !(2..=64).contains(&session_name.len())
        || !session_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "=,.@-_".contains(c))
    {
        bail!("--role-session-name {session_name:?}: 2 to 64 of A-Z a-z 0-9 =,.@-_");
    }
    let want: Vec<(String, String)> = cli
        .account_tag
        .iter()
        .map(|t| match t.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("--account-tag {t:?}: give KEY=VALUE"),
        })
        .collect::<Result<_>>()?;
    if !want.is_empty() && cli.accounts.is_none() && sh.accounts_from_org.is_none() {
        bail!(
            "--account-tag selects entries of --accounts FILE or accounts of --accounts-from-org"
        );
    }
    let org = org_source(cli, sh, &want, &session_name)?;
    let shard = match &sh.shard {
        Some(text) => {
            let index = sh
                .shard_index_from
                .as_deref()
                .map(|var| (var, std::env::var(var).ok()));
            Some(Shard::parse(text, index)?)
        }
        None if sh.shard_index_from.is_some() => {
            bail!("--shard-index-from goes with --shard N (the number of shards)")
        }
        None => None,
    };
    let mut accounts = Vec::new();
    if let Some(path) = &cli.accounts {
        let shown = path.display().to_string();
        let text = read_accounts(path)?;
        accounts = parse_accounts(&text, &shown, &want, &session_name)?;
        // --external-id is that of the file's entries that give none of their own.
        for a in &mut accounts {
            if let Some(role) = a.role.as_mut().filter(|r| r.external_id.is_none()) {
                role.external_id = cli.external_id.clone();
            }
        }
    }
    for arn in &cli.assume_role {
        let Some(id) = role_account(arn) else {
            bail!("--assume-role {arn:?} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)");
        };
        accounts.push(Account {
            name: id.to_string(),
            role: Some(Role {
                arn: arn.clone(),
                external_id: cli.external_id.clone(),
                session_name: session_name.clone(),
            }),
            regions: None,
        });
    }
    if accounts.is_empty() {
        if cli.external_id.is_some() || cli.role_session_name.is_some() {
            bail!("--external-id and --role-session-name go with --assume-role or --accounts");
        }
        accounts.push(Account {
            name: String::new(),
            role: None,
            regions: None,
        });
    }
    // -r overrides the regions of the accounts file.
    if !conn.region.is_empty() {
        for a in &mut accounts {
            a.regions = None;
        }
    }
    let mut names = std::collections::HashSet::new();
    if let Some(twice) = accounts.iter().find(|a| !names.insert(a.name.as_str())) {
        bail!("account {:?} is given twice", twice.name);
    }
    // One account under two names (two entries with one account_id, or an entry and
    // --assume-role) would be two targets working on the same servers at once.
    let mut ids: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for a in &accounts {
        let Some(id) = a.role.as_ref().and_then(|r| role_account(&r.arn)) else {
            continue;
        };
        if let Some(first) = ids.insert(id, a.name.as_str()) {
            bail!(
                "account {id} is given twice ({first:?} and {:?}): one entry per account",
                a.name
            );
        }
    }
    let parallel_targets = cli.parallel_targets.unwrap_or(4);
    if !(1..=MAX_PARALLEL_TARGETS).contains(&parallel_targets) {
        bail!(
            "--parallel-targets must be from 1 to {MAX_PARALLEL_TARGETS} (here {parallel_targets})"
        );
    }
    Ok(Fleet {
        accounts,
        regions,
        parallel_targets,
        org,
        shard,
    })
}

/// `--accounts-from-org ROLE_NAME`, `--org-unit`, `--org-include-management`: checked by shape;
/// the accounts themselves are read at the run's start.
fn org_source(
    cli: &Accounts,
    sh: &Sharding,
    tags: &[(String, String)],
    session_name: &str,
) -> Result<Option<OrgSource>> {
    let Some(role_name) = &sh.accounts_from_org else {
        if !sh.org_unit.is_empty() || sh.org_include_management {
            bail!("--org-unit and --org-include-management go with --accounts-from-org ROLE_NAME");
        }
        return Ok(None);
    };
    if cli.accounts.is_some() || !cli.assume_role.is_empty() {
        bail!("--accounts-from-org takes the Organization's accounts: give it without --accounts and --assume-role");
    }
    let name_ok = (1..=64).contains(&role_name.len())
        && role_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if !name_ok {
        bail!("--accounts-from-org {role_name:?} is not an IAM role name (1 to 64 of A-Z a-z 0-9 +=,.@_-)");
    }
    for unit in &sh.org_unit {
        let ou = unit.strip_prefix("ou-").is_some_and(|rest| {
            rest.split_once('-').is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && (a.chars().chain(b.chars())).all(|c| c.is_ascii_alphanumeric())
            })
        });
        let root = unit.strip_prefix("r-").is_some_and(|rest| {
            !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric())
        });
        if !ou && !root {
            bail!("--org-unit {unit:?} is not an OU id (ou-xxxx-xxxxxxxx) nor a root id (r-xxxx)");
        }
    }
    Ok(Some(OrgSource {
        role_name: role_name.clone(),
        units: sh.org_unit.clone(),
        management: sh.org_include_management,
        tags: tags.to_vec(),
        session_name: session_name.to_string(),
        external_id: cli.external_id.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::cli;

    const FILE: &str = "\
accounts:
- account_id: '111111111111'
  name: prod
  role: arn:aws:iam::111111111111:role/ec2snap
  regions: [eu-west-1, us-east-1]
  tags: [type:prod, team:web]
  vars: {charge_code: xyz}
- account_id: 222222222222
  name: dev
  role: arn:aws:iam::222222222222:role/ec2snap
  external_id: secret
  tags: [type:dev]
";

    #[test]
    fn an_accounts_file_in_c7n_orgs_shape() {
        let all = parse_accounts(FILE, "a.yml", &[], "ec2snap").unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[0].regions.as_deref(),
            Some(&["eu-west-1".to_string(), "us-east-1".to_string()][..])
        );
        assert_eq!(
            all[1].role.as_ref().unwrap().external_id.as_deref(),
            Some("secret")
        );
        let prod = parse_accounts(FILE, "a.yml", &[("type".into(), "prod".into())], "x").unwrap();
        assert_eq!(
            prod.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
            ["prod"]
        );
        let bad = [
            (FILE.replace("'111111111111'", "'1111'"), "a.yml line 2: accounts[0].account_id: \"1111\" is not a 12-digit account id"),
            (FILE.replace("role/ec2snap\n  external", "user/x\n  external"), "a.yml line 10: accounts[1].role: \"arn:aws:iam::222222222222:user/x\" is not an IAM role ARN"),
            (FILE.replace("arn:aws:iam::111111111111:role", "arn:aws:iam::333333333333:role"), "line 4: accounts[0].role: \"arn:aws:iam::333333333333:role/ec2snap\" is a role of account 333333333333"),
            (FILE.replace("us-east-1]", "mars-1]"), "line 5: accounts[0].regions: \"mars-1\" is not a region name"),
            (FILE.replace("  name: dev\n", ""), "a.yml: line"),
            ("accounts: [".to_string(), "a.yml: line"),
        ];
        for (text, want) in bad {
            let e = parse_accounts(&text, "a.yml", &[], "x")
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}\n  wanted: {want}");
        }
        let e = parse_accounts(FILE, "a.yml", &[("type".into(), "qa".into())], "x").unwrap_err();
        assert!(e.to_string().contains("no account has the tags"), "{e}");
        // Merge keys, as c7n-org files use them.
        let merged = "defaults: &d\n  regions: [eu-west-1]\naccounts:\n- <<: *d\n  account_id: '111111111111'\n  name: prod\n  role: arn:aws:iam::111111111111:role/ec2snap\n";
        let all = parse_accounts(merged, "m.yml", &[], "x").unwrap();
        assert_eq!(
            all[0].regions.as_deref(),
            Some(&["eu-west-1".to_string()][..])
        );
        // A bomb of nested lists is refused before it is parsed.
        let deep = format!("accounts: {}{}", "[".repeat(5000), "]".repeat(5000));
        let e = parse_accounts(&deep, "d.yml", &[], "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("nested deeper than 32 levels"), "{e}");
    }

    #[test]
    fn role_arns_are_checked_as_iam_does() {
        for ok in [
            "arn:aws:iam::111111111111:role/ec2snap",
            "arn:aws-cn:iam::111111111111:role/path/to/ec2snap",
            "arn:aws-us-gov:iam::111111111111:role/a+b=c,d.e@f_g-h",
        ] {
            assert_eq!(role_account(ok), Some("111111111111"), "{ok}");
        }
        let long = format!("arn:aws:iam::111111111111:role/{}", "x".repeat(65));
        for bad in [
            "arn:aws:iam::111111111111:role/with space",
            "arn:aws:iam::111111111111:role/new\nline",
            "arn:awsx:iam::111111111111:role/x",
            "arn:aws:iam::111111111111:role/",
            long.as_str(),
        ] {
            assert_eq!(role_account(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn targets_of_a_fleet() {
        let account = |name: &str, regions: Option<&[&str]>| Account {
            name: name.into(),
            role: None,
            regions: regions.map(|r| r.iter().map(|s| s.to_string()).collect()),
        };
        let fleet = |accounts, regions| Fleet {
            accounts,
            regions,
            parallel_targets: 4,
            org: None,
            shard: None,
        };
        let list = |r: &[&str]| Regions::List(r.iter().map(|s| s.to_string()).collect());
        let show = |t: Vec<(usize, String)>| {
            t.into_iter()
                .map(|(n, r)| format!("{n}/{r}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        type Case = (Fleet, Vec<Option<Vec<String>>>, &'static str);
        let cases: Vec<Case> = vec![
            (
                fleet(vec![account("", None)], Regions::Default),
                vec![],
                "0/eu-west-1",
            ),
            (
                fleet(
                    vec![account("a", None), account("b", None)],
                    list(&["us-east-1", "eu-west-3"]),
                ),
                vec![],
                "0/eu-west-3 0/us-east-1 1/eu-west-3 1/us-east-1",
            ),
            (
                fleet(
                    vec![
                        account("a", Some(&["us-west-2", "us-west-2"])),
                        account("b", None),
                    ],
                    Regions::Default,
                ),
                vec![],
                "0/us-west-2 1/eu-west-1",
            ),
            (
                fleet(vec![account("a", None), account("b", None)], Regions::All),
                vec![
                    Some(vec!["sa-east-1".into()]),
                    Some(vec!["ap-south-1".into(), "af-south-1".into()]),
                ],
                "0/sa-east-1 1/af-south-1 1/ap-south-1",
            ),
        ];
        for (f, enabled, want) in cases {
            assert_eq!(
                show(targets(&f, Some("eu-west-1"), &enabled).unwrap()),
                want
            );
        }
        let f = fleet(vec![account("a", None)], Regions::All);
        assert!(targets(&f, Some("eu-west-1"), &[None]).is_err());
        let f = fleet(
            vec![account("a", Some(&["us-west-2"])), account("b", None)],
            Regions::Default,
        );
        let e = targets(&f, None, &[]).unwrap_err().to_string();
        assert!(e.contains("No AWS region for account \"b\""), "{e}");
        let f = fleet(
            vec![account("a", Some(&["us-west-2"]))],
            list(&["eu-west-3"]),
        );
        assert_eq!(named_regions(&f), ["eu-west-3", "us-west-2"]);
    }

    #[test]
    fn fleets_of_a_command_line() {
        let of =
            |c: &crate::cli::Cli| fleet(&c.run.connection, &c.run.accounts, Some(&c.run.sharding));
        let f = of(&cli(&["-i", "i-1"])).unwrap();
        assert!(f.is_single());
        let f = of(&cli(&["-i", "i-1", "-r", "eu-west-1"])).unwrap();
        assert!(f.is_single());
        let f = of(&cli(&["-i", "i-1", "-r", "eu-west-1", "-r", "us-east-1"])).unwrap();
        assert_eq!(
            f.regions,
            Regions::List(vec!["eu-west-1".into(), "us-east-1".into()])
        );
        assert!(!f.is_single());
        let f = of(&cli(&["-i", "i-1", "-r", "all"])).unwrap();
        assert_eq!(f.regions, Regions::All);
        let arn = "arn:aws:iam::123456789012:role/backup";
        let f = of(&cli(&[
            "-i",
            "i-1",
            "--assume-role",
            arn,
            "--external-id",
            "x",
        ]))
        .unwrap();
        assert_eq!(f.accounts[0].name, "123456789012");
        assert_eq!(f.accounts[0].role.as_ref().unwrap().session_name, "ec2snap");
        assert!(f.is_single(), "one role in one region is one target");
        let other = "arn:aws:iam::210987654321:role/backup";
        let f = of(&cli(&[
            "-i",
            "i-1",
            "--assume-role",
            arn,
            "--assume-role",
            other,
        ]))
        .unwrap();
        assert!(!f.is_single());
        for (args, want) in [
            (&["-r", "all", "-r", "eu-west-1"][..], "give it alone"),
            (
                &["-r", "eu-west-1", "-r", "moon"],
                "\"moon\" is not a region name",
            ),
            (
                &["--assume-role", "arn:aws:iam::1:role/x"],
                "is not an IAM role ARN",
            ),
            (&["--account-tag", "a=b"], "selects entries of --accounts"),
            (&["--external-id", "x"], "go with --assume-role"),
            (
                &["--assume-role", arn, "--role-session-name", "a b"],
                "--role-session-name",
            ),
            (&["--parallel-targets", "0"], "--parallel-targets must be"),
            (&["--assume-role", arn, "--assume-role", arn], "given twice"),
        ] {
            let mut all = vec!["-i", "i-1"];
            all.extend_from_slice(args);
            let e = of(&cli(&all)).unwrap_err().to_string();
            assert!(e.contains(want), "{args:?}: {e}");
        }
        assert!(is_region_name("us-gov-west-1") && is_region_name("ap-southeast-4"));
        assert!(!is_region_name("eu-west") && !is_region_name("EU-west-1"));
    }

    #[test]
    fn shards_parse_and_name_their_bounds() {
        assert_eq!(
            Shard::parse("0/3", None).unwrap(),
            Shard { index: 0, count: 3 }
        );
        assert_eq!(
            Shard::parse("3", Some(("JOB_COMPLETION_INDEX", Some("2".into())))).unwrap(),
            Shard { index: 2, count: 3 }
        );
        for (text, index) in [
            ("3/3", None),
            ("0/0", None),
            ("0/10001", None),
            ("-1/3", None),
            ("1", None),
            ("3", Some(("I", None))),
            ("3", Some(("I", Some("x".to_string())))),
            ("3", Some(("I", Some("3".to_string())))),
            ("1/3", Some(("I", Some("1".to_string())))),
            (" 1/3", None),
            ("+1/3", None),
            ("-1/3", None),
            ("3", Some(("I", Some(" 1".to_string())))),
        ] {
            assert!(
                Shard::parse(text, index.clone()).is_err(),
                "{text} {index:?}"
            );
        }
    }

    #[test]
    fn the_shard_hash_is_fnv1a_of_account_slash_region() {
        // FNV-1a 64 of "123456789012/eu-west-1": fixed here so that it never changes.
        let mut h: u64 = 0xcbf29ce484222325;
        for b in b"123456789012/eu-west-1" {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100000001b3);
        }
        assert_eq!(
            u64::from(shard_of("123456789012", "eu-west-1", 10_000)),
            h % 10_000
        );
        assert_eq!(shard_of("123456789012", "eu-west-1", 1), 0);
    }

    proptest::proptest! {
        /// For any N and any targets, the N shards partition them (each in exactly one), and a
        /// target keeps its shard when others are added.
        #[test]
        fn shards_partition_the_targets(
            n in 1..=MAX_SHARDS,
            targets in proptest::collection::vec(("[0-9]{12}", "[a-z]{2}-[a-z]{4,9}-[1-4]"), 0..40),
            more in proptest::collection::vec(("[0-9]{12}", "[a-z]{2}-[a-z]{4,9}-[1-4]"), 0..10),
        ) {
            let shard_of_each: Vec<u32> = targets.iter().map(|(a, r)| shard_of(a, r, n)).collect();
            for ((a, r), k) in targets.iter().zip(&shard_of_each) {
                proptest::prop_assert!(*k < n);
                let owners = (0..n.min(50))
                    .chain(std::iter::once(*k))
                    .filter(|i| Shard { index: *i, count: n }.takes(a, r))
                    .collect::<std::collections::BTreeSet<_>>();
                proptest::prop_assert_eq!(owners.into_iter().collect::<Vec<_>>(), vec![*k]);
            }
            let grown: Vec<(String, String)> = targets.iter().cloned().chain(more).collect();
            for ((a, r), k) in grown.iter().zip(&shard_of_each) {
                proptest::prop_assert_eq!(shard_of(a, r, n), *k);
            }
        }
    }
}
