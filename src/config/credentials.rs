//! Where credentials and region come from: `-k/-a/-r`, the original's legacy INI file
//! (`-c`, default `~/.aws_cred`), or the standard AWS chain, made into the AWS client's settings.

use crate::aws::settings::Credentials;
use crate::cli::Connection;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

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

/// The first `-r` that names a region (`all` names none): where the run connects first.
pub fn base_region(conn: &Connection) -> Option<String> {
    conn.region.iter().find(|r| r.as_str() != "all").cloned()
}

/// `-k/-a/-r` win (the file is then not read at all); then the legacy file; then the standard chain.
pub fn resolve(cli: &Connection) -> Result<(Credentials, Option<String>)> {
    let flags_suffice =
        cli.key_id.is_some() && cli.access_key.is_some() && base_region(cli).is_some();
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
    let region = base_region(cli).or(legacy.region);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_profiles() {
        assert_eq!(
            crate::aws::settings::masked("AKIAIOSFODNN7EXAMPLE"),
            "AKIA****MPLE"
        );
        assert_eq!(crate::aws::settings::masked("AK1"), "****");
        let shown = format!(
            "{:?}",
            Credentials::Static {
                key_id: "AKIAIOSFODNN7EXAMPLE".into(),
                secret: "wJalrXUtnFEMI/K7MDENG".into()
            }
        );
        assert!(
            !shown.contains("IOSFODNN7EXA") && !shown.contains("wJalr"),
            "{shown}"
        );
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
            crate::config::tests::config_of(crate::cli::parse_from(v).unwrap())
                .map_err(|e| format!("{e:#}"))
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
}
