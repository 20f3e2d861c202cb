//! Turns the parsed command line into a validated `Config`: every check that can fail happens here,
//! before any AWS call.

use crate::cli::Cli;
use crate::log::Level;
use crate::select::TagPattern;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Which instances to work on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// `-i all`
    All,
    /// `-i` ids and `-t` patterns (union of both).
    Some {
        ids: Vec<String>,
        tags: Vec<TagPattern>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// `-g`: snapshots older than this many seconds go.
    pub max_age_secs: Option<i64>,
    /// `-d`: the N newest of each volume always stay.
    pub keep_last: usize,
    pub snap_filter: Vec<TagPattern>,
    pub ignore_in_use: bool,
}

impl Retention {
    pub fn is_enabled(&self) -> bool {
        self.max_age_secs.is_some() || self.keep_last > 0
    }
}

/// Where credentials come from, after the legacy file and the flags were looked at.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Given by `-k/-a` or the legacy credentials file.
    Static { key_id: String, secret: String },
    /// The standard AWS chain, with an optional profile name.
    Chain { profile: Option<String> },
}

// Hand-written so that no Debug print can ever show a secret.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Static { key_id, .. } => {
                write!(f, "Static {{ key_id: {key_id}, secret: *** }}")
            }
            Credentials::Chain { profile } => write!(f, "Chain {{ profile: {profile:?} }}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub dry_run: bool,
    pub selection: Selection,
    pub add_tags: Vec<(String, String)>,
    pub limit: Option<usize>,
    pub cold: bool,
    pub timeout: Duration,
    pub no_root_device: bool,
    pub no_snap: bool,
    pub retention: Retention,
    pub region: Option<String>,
    pub credentials: Credentials,
    pub endpoint_url: Option<String>,
    pub max_attempts: u32,
    pub parallel: usize,
    /// Tag an instance before a cold stop, and start instances a killed run left stopped.
    pub stop_tag: bool,
}

/// Bounds of the numeric flags, so that no accepted value can overflow a deadline or a semaphore.
pub const MAX_TIMEOUT_SECS: u64 = 7 * 86_400;
pub const MAX_PARALLEL: usize = 256;
pub const MAX_ATTEMPTS: u32 = 100;
/// EC2's limits on tags: per resource, key length, value length (in characters).
pub const MAX_TAGS: usize = 50;
const MAX_TAG_KEY: usize = 128;
const MAX_TAG_VALUE: usize = 256;

/// Level from `-v`; `None` when the name is unknown (the caller warns and uses INFO, like the original).
pub fn parse_level(name: &str) -> Option<Level> {
    match name.to_ascii_uppercase().as_str() {
        "DEBUG" => Some(Level::Debug),
        "INFO" => Some(Level::Info),
        "WARNING" | "WARN" => Some(Level::Warning),
        "ERROR" => Some(Level::Error),
        "CRITICAL" => Some(Level::Critical),
        _ => None,
    }
}

/// `-g <int> <unit>` in seconds. Messages are the original's.
pub fn parse_max_age(value: &str, unit: &str) -> Result<i64> {
    let n: i64 = value
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("Max age value must be a whole number (here {value})"))?;
    if n == 0 {
        bail!("Max age value cannot be 0");
    }
    if n < 0 {
        bail!("Max age value cannot be negative (here {n})");
    }
    let unit_secs: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "M" => 30 * 86_400,
        // The original used 30*365 days here; a year is 365 days.
        "y" => 365 * 86_400,
        _ => {
            bail!("Can't find the correct value (here {unit}), please choose between s/m/h/d/w/M/y")
        }
    };
    n.checked_mul(unit_secs)
        .with_context(|| format!("Max age {n} {unit} is too large"))
}

/// `-e KEY:VALUE`: split at the first colon, so values may hold colons. EC2's rules are checked
/// here, so that a bad tag is an error before any call instead of a refused snapshot every night.
pub fn parse_add_tag(arg: &str) -> Result<(String, String)> {
    let (k, v) = match arg.split_once(':') {
        Some((k, v)) if !k.is_empty() => (k, v),
        _ => bail!("Tag to add must be KEY:VALUE with a non-empty KEY (here {arg:?})"),
    };
    if k.chars().count() > MAX_TAG_KEY {
        bail!("Tag key of -e is longer than {MAX_TAG_KEY} characters (here {k:?})");
    }
    if v.chars().count() > MAX_TAG_VALUE {
        bail!("Tag value of -e is longer than {MAX_TAG_VALUE} characters (for key {k:?})");
    }
    // A key never holds a colon (the split is at the first one), so it cannot start with the
    // reserved `aws:`: `-e aws:x` is key `aws`, which EC2 accepts.
    Ok((k.to_string(), v.to_string()))
}

/// Every `-e` tag, checked one by one and together: at most 50 distinct keys (EC2's limit).
fn add_tags(args: &[String]) -> Result<Vec<(String, String)>> {
    let tags = args
        .iter()
        .map(|t| parse_add_tag(t))
        .collect::<Result<Vec<_>>>()?;
    let keys: std::collections::BTreeSet<&str> = tags.iter().map(|(k, _)| k.as_str()).collect();
    if keys.len() > MAX_TAGS {
        bail!(
            "-e gives {} tag keys: a snapshot can carry at most {MAX_TAGS}",
            keys.len()
        );
    }
    Ok(tags)
}

/// Pairs from a flag taking two values per occurrence (`-t`, `--snap-filter`).
fn pairs(values: &[String]) -> Vec<TagPattern> {
    values
        .chunks(2)
        .map(|c| TagPattern::new(&c[0], c.get(1).map(String::as_str).unwrap_or("")))
        .collect()
}

fn selection(cli: &Cli) -> Result<Selection> {
    if cli.instance.is_empty() && cli.tags.is_empty() {
        bail!("Please set at least instance ID (-i) or tag with value (-t)");
    }
    if cli.instance.iter().any(|i| i == "all") {
        return Ok(Selection::All);
    }
    if let Some(bad) = cli.instance.iter().find(|i| i.trim().is_empty()) {
        bail!("Instance ID cannot be empty (here {bad:?})");
    }
    Ok(Selection::Some {
        ids: cli.instance.clone(),
        tags: pairs(&cli.tags),
    })
}

fn default_credentials_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".aws_cred"))
}

/// What the legacy INI file gave for one profile.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LegacyProfile {
    pub region: Option<String>,
    pub key_id: Option<String>,
    pub secret: Option<String>,
}

/// Finds `profile` in the legacy INI text: the exact section name first, then `[profile NAME]`
/// (the original's README shows both forms). A UTF-8 byte order mark is ignored; a section that
/// appears twice is an error naming it (which one was meant cannot be told).
pub fn legacy_profile(text: &str, profile: &str, path: &Path) -> Result<LegacyProfile> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let ini = ini::Ini::load_from_str(text).with_context(|| {
        format!(
            "Credentials file {} is not a valid INI file",
            path.display()
        )
    })?;
    // rust-ini merges a repeated section into one, so the headers are counted in the text.
    let mut seen = std::collections::BTreeSet::new();
    let headers = text.lines().filter_map(|l| {
        let l = l.trim();
        l.strip_prefix('[')?
            .split_once(']')
            .map(|(name, _)| name.trim())
    });
    for name in headers {
        if !seen.insert(name) {
            bail!(
                "Section [{name}] appears twice in credentials file {}",
                path.display()
            );
        }
    }
    let prefixed = format!("profile {profile}");
    let section = ini
        .section(Some(profile))
        .or_else(|| ini.section(Some(prefixed.as_str())))
        .with_context(|| {
            format!(
                "Profile '{profile}' not found in credentials file {} (looked for [{profile}] and [{prefixed}])",
                path.display()
            )
        })?;
    let get = |k: &str| {
        section
            .get(k)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from)
    };
    Ok(LegacyProfile {
        region: get("aws_region"),
        key_id: get("aws_access_key_id"),
        secret: get("aws_secret_access_key"),
    })
}

/// Reads the legacy file. The default `~/.aws_cred` may be absent (`None`: the standard chain is
/// used); a file named with `-c` must be a readable regular file.
fn read_legacy(path: &Path, explicit: bool, profile: &str) -> Result<Option<LegacyProfile>> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("Credentials file {} (-c) does not exist", path.display())
        }
        Err(e) => bail!("Cannot read credentials file {}: {e}", path.display()),
    };
    if !meta.is_file() {
        bail!(
            "Credentials file {} is not a regular file{}",
            path.display(),
            if explicit { " (-c)" } else { "" }
        );
    }
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => anyhow::anyhow!(
            "Don't have permission to read credentials file {}",
            path.display()
        ),
        _ => anyhow::anyhow!("Cannot read credentials file {}: {e}", path.display()),
    })?;
    legacy_profile(&text, profile, path).map(Some)
}

/// `-k/-a/-r` win (the file is then not read at all); then the legacy file; then the standard chain.
fn credentials(cli: &Cli) -> Result<(Credentials, Option<String>)> {
    let flags_suffice = cli.key_id.is_some() && cli.access_key.is_some() && cli.region.is_some();
    let path = match (&cli.credentials, flags_suffice) {
        (_, true) => None,
        (Some(p), false) => Some((p.clone(), true)),
        (None, false) => default_credentials_path().map(|p| (p, false)),
    };
    let profile_name = cli.profile.clone().unwrap_or_else(|| "default".to_string());
    let legacy = match &path {
        Some((p, explicit)) => read_legacy(p, *explicit, &profile_name)?,
        None => None,
    };
    let legacy = legacy.unwrap_or_default();
    let region = cli.region.clone().or(legacy.region);
    let key_id = cli.key_id.clone().or(legacy.key_id);
    let secret = cli.access_key.clone().or(legacy.secret);
    let creds = match (key_id, secret) {
        (Some(key_id), Some(secret)) => Credentials::Static { key_id, secret },
        (Some(_), None) => bail!("An access key id was given (-k or aws_access_key_id) without its secret access key (-a or aws_secret_access_key)"),
        (None, Some(_)) => bail!("A secret access key was given (-a or aws_secret_access_key) without its access key id (-k or aws_access_key_id)"),
        (None, None) => Credentials::Chain {
            profile: cli.profile.clone(),
        },
    };
    Ok((creds, region))
}

impl Config {
    pub fn from_cli(cli: &Cli) -> Result<Config> {
        let max_age_secs = match cli.max_age.as_slice() {
            [] => None,
            [v, u] => Some(parse_max_age(v, u)?),
            _ => bail!("-g takes two values: <int> <s/m/h/d/w/M/y>"),
        };
        if cli.keep_last_snapshots < 0 {
            bail!(
                "Number of snapshots to keep cannot be negative (here {})",
                cli.keep_last_snapshots
            );
        }
        let limit = match cli.limit {
            -1 => None,
            n if n < -1 => bail!("Limit must be -1 (no limit) or a positive number (here {n})"),
            n => Some(n as usize),
        };
        let add_tags = add_tags(&cli.add_tags)?;
        if !(1..=MAX_PARALLEL).contains(&cli.parallel) {
            bail!(
                "--parallel must be from 1 to {MAX_PARALLEL} (here {})",
                cli.parallel
            );
        }
        if !(1..=MAX_ATTEMPTS).contains(&cli.max_attempts) {
            bail!(
                "--max-attempts must be from 1 to {MAX_ATTEMPTS} (here {})",
                cli.max_attempts
            );
        }
        if cli.timeout > MAX_TIMEOUT_SECS {
            bail!(
                "-m/--timeout must be at most {MAX_TIMEOUT_SECS} seconds, 7 days (here {})",
                cli.timeout
            );
        }
        let selection = selection(cli)?;
        let (credentials, region) = credentials(cli)?;
        Ok(Config {
            dry_run: !cli.run,
            selection,
            add_tags,
            limit,
            cold: cli.cold_snap,
            timeout: Duration::from_secs(cli.timeout),
            no_root_device: cli.no_root_device,
            no_snap: cli.no_snap,
            retention: Retention {
                max_age_secs,
                keep_last: cli.keep_last_snapshots as usize,
                snap_filter: pairs(&cli.snap_filter),
                ignore_in_use: cli.ignore_in_use_snapshot,
            },
            region,
            credentials,
            endpoint_url: cli.endpoint_url.clone(),
            max_attempts: cli.max_attempts,
            parallel: cli.parallel,
            stop_tag: !cli.no_stop_tag,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cli(args: &[&str]) -> Cli {
        let mut v = vec!["ec2snap"];
        v.extend_from_slice(args);
        // An empty credentials file of our own (written once), so the tests never read the
        // developer's file.
        static FILE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let path = FILE.get_or_init(|| {
            let file =
                std::env::temp_dir().join(format!("ec2snap-test-cred-{}", std::process::id()));
            std::fs::write(&file, "[default]\n").expect("temp credentials file");
            file.to_string_lossy().into_owned()
        });
        v.extend_from_slice(&["-c", path]);
        Cli::try_parse_from(v).expect("parses")
    }

    #[test]
    fn max_age_units() {
        let cases: &[(&str, &str, Result<i64, &str>)] = &[
            ("1", "s", Ok(1)),
            ("10", "m", Ok(600)),
            ("2", "h", Ok(7200)),
            ("5", "d", Ok(432_000)),
            ("3", "w", Ok(1_814_400)),
            ("1", "M", Ok(2_592_000)),
            ("1", "y", Ok(31_536_000)),
            ("0", "d", Err("Max age value cannot be 0")),
            ("-3", "d", Err("Max age value cannot be negative (here -3)")),
            (
                "abc",
                "d",
                Err("Max age value must be a whole number (here abc)"),
            ),
            (
                "5",
                "x",
                Err("Can't find the correct value (here x), please choose between s/m/h/d/w/M/y"),
            ),
            (
                "5",
                "D",
                Err("Can't find the correct value (here D), please choose between s/m/h/d/w/M/y"),
            ),
        ];
        for (v, u, want) in cases {
            let got = parse_max_age(v, u).map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(String::from), "-g {v} {u}");
        }
    }

    #[test]
    fn add_tag_rules() {
        assert_eq!(
            parse_add_tag("type:backup").unwrap(),
            ("type".into(), "backup".into())
        );
        assert_eq!(
            parse_add_tag("url:http://x").unwrap(),
            ("url".into(), "http://x".into())
        );
        assert_eq!(
            parse_add_tag("empty:").unwrap(),
            ("empty".into(), "".into())
        );
        assert!(parse_add_tag("novalue").is_err());
        assert!(parse_add_tag(":v").is_err());
        let key128 = "k".repeat(128);
        assert!(parse_add_tag(&format!("{key128}:v")).is_ok());
        let err = parse_add_tag(&format!("{key128}k:v")).unwrap_err();
        assert!(err.to_string().contains("longer than 128"), "{err}");
        assert!(parse_add_tag(&format!("k:{}", "é".repeat(256))).is_ok());
        let err = parse_add_tag(&format!("k:{}", "v".repeat(257))).unwrap_err();
        assert!(err.to_string().contains("longer than 256"), "{err}");
        let fifty: Vec<String> = (0..50).map(|i| format!("k{i}:v")).collect();
        assert_eq!(add_tags(&fifty).unwrap().len(), 50);
        let mut more = fifty.clone();
        more.push("k0:again".into());
        assert!(add_tags(&more).is_ok(), "the same key twice is one tag");
        more.push("k50:v".into());
        let err = add_tags(&more).unwrap_err();
        assert!(err.to_string().contains("51 tag keys"), "{err}");
    }

    #[test]
    fn levels() {
        for (name, want) in [
            ("DEBUG", Some(Level::Debug)),
            ("info", Some(Level::Info)),
            ("WARNING", Some(Level::Warning)),
            ("Error", Some(Level::Error)),
            ("CRITICAL", Some(Level::Critical)),
            ("LOUD", None),
        ] {
            assert_eq!(parse_level(name), want, "{name}");
        }
    }

    #[test]
    fn legacy_profiles() {
        let text = "[default]\naws_region = eu-west-1\naws_access_key_id = AK1\naws_secret_access_key = S1\n\n\
                    [profile p1]\naws_region = us-east-1\naws_access_key_id = AK2\naws_secret_access_key = S2\n\n\
                    [plain]\naws_access_key_id = AK3\naws_secret_access_key = S3\n";
        let p = Path::new("/x/cred");
        let get = |name: &str| legacy_profile(text, name, p);
        assert_eq!(get("default").unwrap().key_id.as_deref(), Some("AK1"));
        assert_eq!(get("p1").unwrap().key_id.as_deref(), Some("AK2"));
        assert_eq!(
            get("profile p1").unwrap().region.as_deref(),
            Some("us-east-1")
        );
        let plain = get("plain").unwrap();
        assert_eq!((plain.key_id.as_deref(), plain.region), (Some("AK3"), None));
        let err = get("nope").unwrap_err().to_string();
        assert!(err.contains("'nope'") && err.contains("/x/cred"), "{err}");
        let bom = legacy_profile("\u{feff}[default]\naws_region = r1\n", "default", p).unwrap();
        assert_eq!(bom.region.as_deref(), Some("r1"));
        let twice = "[default]\naws_region = r1\n[ops]\n[default]\naws_region = r2\n";
        let err = legacy_profile(twice, "ops", p).unwrap_err().to_string();
        assert!(
            err.contains("Section [default] appears twice") && err.contains("/x/cred"),
            "{err}"
        );
    }

    #[test]
    fn validation_errors() {
        let cases: &[(&[&str], &str)] = &[
            (&["-g", "0", "d", "-i", "i-1"], "cannot be 0"),
            (&["-g", "1", "q", "-i", "i-1"], "choose between"),
            (&["-g", "x", "d", "-i", "i-1"], "whole number"),
            (&["-e", "novalue", "-i", "i-1"], "KEY:VALUE"),
            (&["-u"], "at least instance ID"),
            (&["-d", "-2", "-i", "i-1"], "cannot be negative"),
            (&["-l", "-5", "-i", "i-1"], "Limit"),
            (&["-k", "AKIA", "-i", "i-1"], "without its secret"),
            (&["--parallel", "0", "-i", "i-1"], "--parallel"),
            (
                &["--parallel", "18446744073709551615", "-i", "i-1"],
                "--parallel must be from 1 to 256",
            ),
            (&["--parallel", "257", "-i", "i-1"], "--parallel"),
            (&["--max-attempts", "0", "-i", "i-1"], "--max-attempts"),
            (
                &["--max-attempts", "1000000000", "-i", "i-1"],
                "--max-attempts must be from 1 to 100",
            ),
            (
                &["-m", "9223372036854775807", "-i", "i-1"],
                "-m/--timeout must be at most 604800",
            ),
            (&["-m", "18446744073709551615", "-i", "i-1"], "-m/--timeout"),
        ];
        for (args, want) in cases {
            let err = Config::from_cli(&cli(args)).unwrap_err().to_string();
            assert!(err.contains(want), "{args:?}: {err}");
        }
    }

    #[test]
    fn credentials_file_rules() {
        let dir = tempfile::tempdir().unwrap();
        let only_prod = dir.path().join("prod.ini");
        std::fs::write(&only_prod, "[prod]\naws_region = r\n").unwrap();
        let broken = dir.path().join("broken.ini");
        std::fs::write(&broken, "[default\nnot ini at all").unwrap();
        let arg = |p: &Path| p.to_string_lossy().into_owned();
        let parse = |args: &[&str]| {
            let mut v = vec!["ec2snap", "-i", "i-1"];
            v.extend_from_slice(args);
            Config::from_cli(&Cli::try_parse_from(v).unwrap()).map_err(|e| format!("{e:#}"))
        };
        let flags = ["-k", "AK", "-a", "S", "-r", "eu-west-1"];
        // -k, -a and -r give everything: the file is not read, however broken.
        for file in [&only_prod, &broken] {
            let mut args = vec!["-c"];
            let f = arg(file);
            args.push(&f);
            args.extend_from_slice(&flags);
            assert!(parse(&args).is_ok(), "{file:?}: {:?}", parse(&args));
        }
        // Without all three, it is read, and a bad one is an error naming it.
        let f = arg(&broken);
        let err = parse(&["-c", &f, "-k", "AK", "-a", "S"]).unwrap_err();
        assert!(
            err.contains("not a valid INI file") && err.contains(&f),
            "{err}"
        );
        // An explicit -c must be a readable regular file.
        let missing = arg(&dir.path().join("typo.ini"));
        let dirname = arg(dir.path());
        let cases: &[(&str, &str)] = &[
            (&missing, "does not exist"),
            (&dirname, "is not a regular file (-c)"),
            ("/dev/null", "is not a regular file (-c)"),
        ];
        for (path, want) in cases {
            let err = parse(&["-c", path]).unwrap_err();
            assert!(err.contains(want) && err.contains(path), "{path}: {err}");
        }
    }

    #[test]
    fn selection_and_defaults() {
        let c = Config::from_cli(&cli(&[
            "-t", "Name", "front*", "-t", "env", "prod", "-i", "i-1",
        ]))
        .unwrap();
        assert!(c.dry_run);
        assert_eq!(
            c.selection,
            Selection::Some {
                ids: vec!["i-1".into()],
                tags: vec![
                    TagPattern::new("Name", "front*"),
                    TagPattern::new("env", "prod")
                ],
            }
        );
        assert_eq!(c.limit, None);
        assert_eq!(c.timeout, Duration::from_secs(600));
        assert_eq!(c.credentials, Credentials::Chain { profile: None });
        let all = Config::from_cli(&cli(&["-i", "i-1", "-i", "all", "-u", "-l", "2"])).unwrap();
        assert_eq!(all.selection, Selection::All);
        assert!(!all.dry_run);
        assert_eq!(all.limit, Some(2));
    }

    #[test]
    fn flags_win_over_nothing_and_secret_never_debug_printed() {
        let c = Config::from_cli(&cli(&[
            "-i",
            "i-1",
            "-k",
            "AKID",
            "-a",
            "SECRETVALUE",
            "-r",
            "eu-west-1",
        ]))
        .unwrap();
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        let dbg = format!("{c:?}");
        assert!(
            dbg.contains("AKID") && !dbg.contains("SECRETVALUE"),
            "{dbg}"
        );
    }

    #[test]
    fn e_takes_several_values_and_repeats() {
        let c = Config::from_cli(&cli(&["-i", "i-1", "-e", "a:1", "b:2", "-e", "c:3"])).unwrap();
        let keys: Vec<_> = c.add_tags.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
    }
}
