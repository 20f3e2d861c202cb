//! Many accounts and regions: `-r` (repeatable, or `all`), `--assume-role`, `--accounts FILE`
//! (c7n-org's accounts.yml) and `--account-tag`, checked into a `Fleet` before any AWS call.

use crate::aws::settings::Role;
use crate::cli::{Accounts, Connection};
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
}

impl Fleet {
    /// One account (its own or a role's) in one region: one target, whose run is the original's
    /// (log lines without a prefix, the report without sections).
    pub fn is_single(&self) -> bool {
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
pub fn fleet(conn: &Connection, cli: &Accounts) -> Result<Fleet> {
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
    if !want.is_empty() && cli.accounts.is_none() {
        bail!("--account-tag selects entries of --accounts FILE");
    }
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
    })
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
        let of = |c: &crate::cli::Cli| fleet(&c.run.connection, &c.run.accounts);
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
}
