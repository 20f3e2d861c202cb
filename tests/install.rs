//! What an admin installs and schedules, checked here so that it cannot rot unseen: the smoke
//! script of the LocalStack CI job (against moto), the systemd units (`systemd-analyze verify`,
//! and their ExecStart's quoting with the example configuration), the man page and the
//! completions of `--generate`, and the Debian package's list of files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn smoke(lab: &Lab) -> Run {
    run_cmd(
        Command::new("bash")
            .arg(repo().join("scripts/smoke.sh"))
            .arg(lab.endpoint())
            .env("EC2SNAP", env!("CARGO_BIN_EXE_ec2snap"))
            .env("PYTHON", python())
            .env("AWS_REGION", REGION)
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL"),
    )
}

#[test]
fn smoke_script_passes_against_moto() {
    let lab = Lab::start();
    let r = smoke(&lab);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("SMOKE PASSED"), "{r:?}");
    for step in [
        "ok: the dry run made nothing",
        "ok: one snapshot per volume, described and tagged",
        "ok: -d 1: the second run replaced the first",
    ] {
        assert!(r.stdout.contains(step), "{step}\n{r:?}");
    }
}

/// The script checks ec2snap's exit code: a refused CreateSnapshot (exit 2) fails the smoke test.
#[test]
fn smoke_script_fails_when_ec2snap_fails() {
    let lab = Lab::start();
    lab.faults(json!([{"action": "CreateSnapshot", "status": 400,
        "code": "UnauthorizedOperation", "message": "not allowed"}]));
    let r = smoke(&lab);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("SMOKE FAILED: ec2snap"), "{r:?}");
    assert!(r.stderr.contains("exited 2, not 0"), "{r:?}");
    assert!(!r.stdout.contains("SMOKE PASSED"), "{r:?}");
}

/// The shell script of the service's ExecStart, as systemd hands it to /bin/sh (`$$` is `$`).
fn exec_start_script() -> String {
    let unit = std::fs::read_to_string(repo().join("packaging/systemd/ec2snap@.service")).unwrap();
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=/bin/sh -c '"))
        .expect("ExecStart=/bin/sh -c '...'");
    let script = line.strip_suffix('\'').expect("one quoted script");
    script.replace("$$", "$")
}

/// EC2SNAP_ARGS of the example configuration, as systemd's EnvironmentFile reads it: the text
/// between the double quotes (it holds no backslash nor inner double quote to unescape).
fn example_args() -> String {
    let conf = std::fs::read_to_string(repo().join("packaging/example.conf")).unwrap();
    let value = conf
        .lines()
        .find_map(|l| l.strip_prefix("EC2SNAP_ARGS=\""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("EC2SNAP_ARGS=\"...\"");
    assert!(!value.contains(['"', '\\', '$']), "{value}");
    value.to_string()
}

/// Runs the unit's ExecStart script with these flags in EC2SNAP_ARGS, in `cwd`, against the lab.
fn as_the_unit_would(lab: &Lab, cwd: &Path, args: &str) -> Run {
    let script = exec_start_script().replace("/usr/bin/ec2snap", env!("CARGO_BIN_EXE_ec2snap"));
    let endpoint = format!("--endpoint-url {} -r {REGION} ", lab.endpoint());
    run_cmd(
        Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .current_dir(cwd)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", cwd)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("EC2SNAP_ARGS", endpoint + args),
    )
}

/// `front*` reaches ec2snap intact from the configuration file, quoted (as the example shows) or
/// not, even with a file that the pattern would match in the working directory; and the example
/// configuration is a valid command line.
#[test]
fn the_units_flags_reach_ec2snap_intact() {
    let lab = Lab::start();
    lab.seed(json!({"instances": [{"name": "front1"}, {"name": "front2"}, {"name": "back1"}]}));
    let cwd = lab.dir.path().join("state");
    std::fs::create_dir(&cwd).unwrap();
    std::fs::write(cwd.join("front-file"), "").unwrap();
    for args in [
        "-t Name 'front*'",
        "-t Name front*",
        "-t Name \"front*\" -v DEBUG",
    ] {
        let r = as_the_unit_would(&lab, &cwd, args);
        assert_eq!(r.code, 0, "{args}: {r:?}");
        let names: Vec<String> = r.working_on();
        assert_eq!(names.len(), 2, "{args}: {names:?}");
        assert!(
            names.iter().all(|l| l.contains("(front")),
            "{args}: {names:?}"
        );
    }
    // The example, as a dry run, with its state files in this lab.
    let example = example_args()
        .replace(" -u", "")
        .replace("/var/lib/ec2snap/", &format!("{}/", cwd.display()));
    let r = as_the_unit_would(&lab, &cwd, &example);
    assert_eq!(r.code, 0, "{example}: {r:?}");
    assert_eq!(r.working_on().len(), 2, "{r:?}");
    assert!(cwd.join("front.json").is_file() && cwd.join("front.prom").is_file());
}

/// `systemd-analyze verify` on an instance of the template units: no complaint about them.
#[test]
fn systemd_units_verify_clean() {
    let dir = tempfile::tempdir().unwrap();
    for (from, to) in [
        ("ec2snap@.service", "ec2snap@front.service"),
        ("ec2snap@.timer", "ec2snap@front.timer"),
    ] {
        std::fs::copy(
            repo().join("packaging/systemd").join(from),
            dir.path().join(to),
        )
        .unwrap();
    }
    let r = run_cmd(
        Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(dir.path().join("ec2snap@front.service"))
            .arg(dir.path().join("ec2snap@front.timer")),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("ec2snap"), "{r:?}");
    let timer = std::fs::read_to_string(dir.path().join("ec2snap@front.timer")).unwrap();
    assert!(timer.contains("Persistent=true"));
    // A unit that systemd would refuse is seen: the check can fail.
    let bad = dir.path().join("ec2snap@bad.service");
    std::fs::write(&bad, "[Service]\nExecStart=/nonexistent/ec2snap\n").unwrap();
    let r = run_cmd(
        Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&bad),
    );
    assert!(r.code != 0 || r.stderr.contains("ec2snap@bad"), "{r:?}");
}

fn generate(kind: &str) -> String {
    let r = run_cmd(Command::new(env!("CARGO_BIN_EXE_ec2snap")).args(["--generate", kind]));
    assert_eq!(r.code, 0, "{kind}: {r:?}");
    r.stdout
}

/// The man page renders with man(1) without a warning, with the sections that matter.
#[test]
fn man_page_renders_clean() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("ec2snap.1");
    std::fs::write(&page, generate("man")).unwrap();
    let r = run_cmd(
        Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&page)
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat"),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.trim().is_empty(), "man warns: {}", r.stderr);
    for section in [
        "OPTIONS",
        "SUBCOMMANDS",
        "LISTING",
        "RETENTION",
        "COLD SNAPSHOTS",
        "EXIT STATUS",
        "FILES",
        "EXAMPLES",
    ] {
        assert!(
            r.stdout.lines().any(|l| l == section),
            "no {section}:\n{}",
            r.stdout
        );
    }
    assert!(r.stdout.contains("--keep-daily"));
}

/// The bash completion, loaded as bash-completion loads it, completes a long flag, the values of
/// --generate, and the subcommand `list` with its flag.
#[test]
fn bash_completion_completes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ec2snap.bash");
    std::fs::write(&file, generate("complete-bash")).unwrap();
    let complete = |line: &str| -> Vec<String> {
        let script = format!(
            r#"source '{}'
            COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}
            read -ra COMP_WORDS <<<"$COMP_LINE"
            [[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')
            COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
            _ec2snap ec2snap "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
            printf '%s\n' "${{COMPREPLY[@]}}""#,
            file.display()
        );
        let r = run_cmd(Command::new("bash").arg("-c").arg(script));
        assert_eq!(r.code, 0, "{r:?}");
        r.stdout.lines().map(String::from).collect()
    };
    assert_eq!(complete("ec2snap --keep-d"), ["--keep-daily"]);
    let kinds = complete("ec2snap --generate ");
    assert!(
        kinds.contains(&"man".to_string()) && kinds.contains(&"complete-fish".to_string()),
        "{kinds:?}"
    );
    assert!(
        complete("ec2snap li").contains(&"list".to_string()),
        "the subcommand"
    );
    assert_eq!(complete("ec2snap list --js"), ["--json"]);
    assert!(generate("complete-zsh").starts_with("#compdef ec2snap"));
    assert!(generate("complete-fish").contains("complete -c ec2snap"));
}

/// Every file the Debian package takes is in the repository, or made by scripts/package.sh.
#[test]
fn debian_package_assets_exist_or_are_made() {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let package = std::fs::read_to_string(repo().join("scripts/package.sh")).unwrap();
    let deb = manifest
        .split("[package.metadata.deb]")
        .nth(1)
        .expect("[package.metadata.deb]");
    let sources: Vec<&str> = deb
        .lines()
        .filter_map(|l| l.trim().strip_prefix("[\""))
        .filter_map(|l| l.split('"').next())
        .collect();
    assert!(sources.len() >= 10, "{sources:?}");
    for src in sources {
        if let Some(made) = src.strip_prefix("target/release/assets/") {
            assert!(
                package.contains(&format!("\"$OUT/{made}\"")),
                "scripts/package.sh does not make {made}"
            );
        } else if let Some(dir) = src.strip_suffix("/*.md") {
            // A glob (cargo-deb's): at least one page there.
            let pages = std::fs::read_dir(repo().join(dir))
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "md")
                })
                .count();
            assert!(pages > 0, "{src} matches nothing");
        } else if src != "target/release/ec2snap" {
            assert!(repo().join(src).is_file(), "{src} is missing");
        }
    }
    let scripts = deb
        .lines()
        .find_map(|l| l.strip_prefix("maintainer-scripts = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("maintainer-scripts");
    for script in ["postinst", "postrm"] {
        assert!(repo().join(scripts).join(script).is_file(), "{script}");
    }
}

/// The GitHub workflows, which cannot run here, call these same scripts.
#[test]
fn workflows_call_the_checked_scripts() {
    let read = |f: &str| std::fs::read_to_string(repo().join(".github/workflows").join(f)).unwrap();
    let ci = read("ci.yml");
    let release = read("release.yml");
    assert!(ci.contains("scripts/smoke.sh \"$ENDPOINT\""));
    assert!(ci.contains("MOTO_EC2_LOAD_DEFAULT_AMIS: \"false\""));
    assert!(ci.contains("scripts/test.sh"));
    for text in [&ci, &release] {
        assert!(text.contains("scripts/package.sh"));
        assert!(text.contains("sudo scripts/check-package.sh target/debian/ec2snap_*.deb"));
    }
    for want in [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "SHA256SUMS",
        "tags: [\"v*\"]",
    ] {
        assert!(release.contains(want), "{want}");
    }
    for script in ["smoke.sh", "package.sh", "check-package.sh"] {
        let r = run_cmd(
            Command::new("bash")
                .arg("-n")
                .arg(repo().join("scripts").join(script)),
        );
        assert_eq!(r.code, 0, "{script}: {r:?}");
    }
}
