//! The command line, credentials and region sources, and validation that happens before any call.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::json;
use std::path::Path;

fn seeded_lab() -> Lab {
    let lab = Lab::start();
    lab.seed(json!({"instances": [{"name": "front1"}]}));
    lab.reset_stats();
    lab
}

/// The binary with no AWS environment at all, HOME = `home`, talking to the lab.
fn bare(lab: &Lab, home: &Path, args: &[&str]) -> Run {
    run_cmd(
        bare_cmd(home)
            .args(["--endpoint-url", &lab.endpoint()])
            .args(args),
    )
}

#[test]
fn no_argument_prints_help_and_version_flag() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_cmd(&mut bare_cmd(dir.path()));
    assert_eq!(r.code, 0);
    for flag in [
        "--region",
        "--key_id",
        "--access_key",
        "--credentials",
        "--profile",
        "--instance",
        "--tags",
        "--snap-filter",
        "--add_tags",
        "--dry_run",
        "--limit",
        "--cold_snap",
        "--timeout",
        "--no_root_device",
        "--max_age",
        "--keep_last_snapshots",
        "--no_snap",
        "--ignore-in-use-snapshot",
        "--file_output",
        "--stdout",
        "--verbosity",
        "--version",
        "--endpoint-url",
    ] {
        assert!(r.stdout.contains(flag), "help lacks {flag}");
    }
    let r = run_cmd(bare_cmd(dir.path()).arg("-V"));
    assert_eq!(r.code, 0);
    assert!(
        r.stdout
            .starts_with(&format!("ec2snap v{}", env!("CARGO_PKG_VERSION"))),
        "{r:?}"
    );
}

#[test]
fn invalid_arguments_exit_1_before_any_call() {
    let lab = seeded_lab();
    let cases: &[(&[&str], &str)] = &[
        (
            &["-t", "Name", "front*", "-g", "0", "d", "-u"],
            "[ERROR] Max age value cannot be 0 (in -g 0 d)",
        ),
        (
            &["-t", "Name", "front*", "-g", "5", "x", "-u"],
            "[ERROR] Can't find the correct value (here x), please choose between s/m/h/d/w/M/y (in -g 5 x)",
        ),
        (
            &["-t", "Name", "front*", "-g", "five", "d", "-u"],
            "[ERROR] Max age value must be a whole number (here five) (in -g five d)",
        ),
        (
            &["-t", "Name", "front*", "-e", "nocolon", "-u"],
            "[ERROR] Tag to add must be KEY:VALUE with a non-empty KEY (here \"nocolon\")",
        ),
        (
            &["-u", "-g", "5", "d"],
            "[ERROR] Please set at least instance ID (-i) or tag with value (-t)",
        ),
    ];
    for (args, want) in cases {
        let r = lab.run(args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert_eq!(r.lines(), vec![want.to_string()], "{args:?}");
    }
    // argparse-style usage errors keep argparse's exit code 2.
    let r = lab.run(&["-t", "Name", "front*", "-l", "many"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = lab.run(&["-t", "Name"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(lab.stats(), Default::default(), "no request may be sent");
    assert!(lab.snapshots().is_empty());
}

#[test]
fn legacy_credentials_file_and_its_profiles() {
    let lab = seeded_lab();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join(".aws_cred"),
        "[default]\naws_region = us-west-2\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = SECRETDEFAULT\n\n\
         [profile profile1]\naws_region = eu-central-1\naws_access_key_id = AKIAPROFILE1\naws_secret_access_key = SECRETP1\n",
    )
    .unwrap();
    // The region comes from the file too: the signature names it.
    let cases: &[(&[&str], &str)] = &[
        (&[], "AKIADEFAULT/us-west-2"),
        (&["-p", "profile1"], "AKIAPROFILE1/eu-central-1"),
        (&["-p", "profile profile1"], "AKIAPROFILE1/eu-central-1"),
        (
            &["-p", "profile1", "-r", "ap-south-1"],
            "AKIAPROFILE1/ap-south-1",
        ),
        (
            &["-k", "AKIAFLAG", "-a", "SECRETFLAG"],
            "AKIAFLAG/us-west-2",
        ),
    ];
    for (extra, signer) in cases {
        lab.reset_stats();
        let mut args = vec!["-i", "all", "-v", "DEBUG"];
        args.extend_from_slice(extra);
        let r = bare(&lab, home.path(), &args);
        assert_eq!(r.code, 0, "{extra:?}: {r:?}");
        let signers = lab.signer_keys();
        assert_eq!(signers, vec![signer.to_string()], "{extra:?}");
        for secret in ["SECRETDEFAULT", "SECRETP1", "SECRETFLAG"] {
            assert!(
                !r.stderr.contains(secret) && !r.stdout.contains(secret),
                "secret printed: {r:?}"
            );
        }
    }
    // -c names another file.
    let other = home.path().join("other.ini");
    std::fs::write(
        &other,
        "[ops]\naws_region = sa-east-1\naws_access_key_id = AKIAOTHER\naws_secret_access_key = S\n",
    )
    .unwrap();
    lab.reset_stats();
    let r = bare(
        &lab,
        home.path(),
        &["-i", "all", "-c", other.to_str().unwrap(), "-p", "ops"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(lab.signer_keys(), ["AKIAOTHER/sa-east-1"]);
}

#[test]
fn unknown_profile_is_a_clear_error() {
    let lab = seeded_lab();
    let home = tempfile::tempdir().unwrap();
    let cred = home.path().join(".aws_cred");
    std::fs::write(
        &cred,
        "[default]\naws_region = us-west-2\naws_access_key_id = A\naws_secret_access_key = S\n",
    )
    .unwrap();
    let r = bare(&lab, home.path(), &["-i", "all", "-p", "nosuch"]);
    assert_eq!(r.code, 1, "{r:?}");
    let line = r.lines().join("\n");
    assert!(
        line.starts_with("[ERROR] Profile 'nosuch' not found in credentials file"),
        "{line}"
    );
    assert!(line.contains(cred.to_str().unwrap()), "{line}");
    assert_eq!(lab.stats(), Default::default());
}

#[test]
fn standard_chain_when_there_is_no_legacy_file() {
    let lab = seeded_lab();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        "[default]\naws_access_key_id = AKIACHAINDEFAULT\naws_secret_access_key = S1\n[ops]\naws_access_key_id = AKIACHAINOPS\naws_secret_access_key = S2\n",
    )
    .unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        "[default]\nregion = us-east-2\n[profile ops]\nregion = ca-central-1\n",
    )
    .unwrap();
    let r = bare(&lab, home.path(), &["-i", "all"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(lab.signer_keys(), ["AKIACHAINDEFAULT/us-east-2"]);
    lab.reset_stats();
    let r = bare(&lab, home.path(), &["-i", "all", "-p", "ops"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(lab.signer_keys(), ["AKIACHAINOPS/ca-central-1"]);
    // Environment variables come first in the chain.
    lab.reset_stats();
    let r = run_cmd(
        bare_cmd(home.path())
            .env("AWS_ACCESS_KEY_ID", "AKIAENV")
            .env("AWS_SECRET_ACCESS_KEY", "S3")
            .env("AWS_REGION", "eu-north-1")
            .args(["--endpoint-url", &lab.endpoint(), "-i", "all"]),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(lab.signer_keys(), ["AKIAENV/eu-north-1"]);
}

#[test]
fn endpoint_from_the_environment() {
    let lab = seeded_lab();
    let home = tempfile::tempdir().unwrap();
    let r = run_cmd(
        bare_cmd(home.path())
            .env("AWS_ACCESS_KEY_ID", "AKIAENV")
            .env("AWS_SECRET_ACCESS_KEY", "S")
            .env("AWS_ENDPOINT_URL", lab.endpoint())
            .args(["-r", REGION, "-t", "Name", "front*"]),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.working_on().len(), 1);
    assert!(lab.stats().contains_key("DescribeInstances"));
}

#[test]
fn missing_region_is_a_clear_error() {
    let lab = seeded_lab();
    let home = tempfile::tempdir().unwrap();
    let r = run_cmd(
        bare_cmd(home.path())
            .env("AWS_ACCESS_KEY_ID", "A")
            .env("AWS_SECRET_ACCESS_KEY", "S")
            .args(["--endpoint-url", &lab.endpoint(), "-i", "all"]),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.lines()
            .last()
            .unwrap()
            .starts_with("[CRITICAL] No AWS region"),
        "{r:?}"
    );
    assert_eq!(lab.stats(), Default::default());
}

/// `--help` in sections, as ripgrep and fd do, each flag in its own; the man page follows them.
#[test]
fn help_and_man_page_come_in_sections() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_cmd(bare_cmd(dir.path()).arg("--help"));
    assert_eq!(r.code, 0, "{r:?}");
    let sections = [
        ("Selection:", "--instance"),
        ("Snapshots:", "--cold_snap"),
        ("Retention:", "--keep-daily"),
        ("Copies:", "--copy-to"),
        ("Monitoring:", "--check-max-age"),
        ("Connection:", "--region"),
        ("Output:", "--verbosity"),
    ];
    // The line of a heading, or of a flag's name (`  -H, --cold_snap`, `      --wait`).
    let at = |text: &str| {
        r.stdout
            .lines()
            .position(|l| {
                let words: Vec<&str> = l.split([' ', ',']).filter(|w| !w.is_empty()).collect();
                l == text || (l.starts_with("  ") && words.iter().take(2).any(|w| *w == text))
            })
            .unwrap_or_else(|| panic!("no {text} in {}", r.stdout))
    };
    let mut last = 0;
    for (heading, flag) in sections {
        let (h, f) = (at(heading), at(flag));
        assert!(
            last < h && h < f,
            "{heading} before {flag}, after the previous section"
        );
        last = h;
    }
    let man = run_cmd(bare_cmd(dir.path()).args(["--generate", "man"]));
    let headings: Vec<&str> = man
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix(".SH "))
        .collect();
    let want = [
        "SELECTION",
        "SNAPSHOTS",
        "RETENTION",
        "COPIES",
        "MONITORING",
        "CONNECTION",
        "OUTPUT",
    ];
    let pos: Vec<usize> = want
        .iter()
        .map(|w| {
            headings
                .iter()
                .position(|h| h == w)
                .unwrap_or_else(|| panic!("{w}: {headings:?}"))
        })
        .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{headings:?}");
}

/// The original's long flags (its README): every other flag any `--help` shows is new, and the
/// README's differences table names each new one, so that the table cannot fall behind.
const ORIGINAL_FLAGS: [&str; 23] = [
    "--access_key",
    "--add_tags",
    "--cold_snap",
    "--credentials",
    "--dry_run",
    "--file_output",
    "--help",
    "--ignore-in-use-snapshot",
    "--instance",
    "--keep_last_snapshots",
    "--key_id",
    "--limit",
    "--max_age",
    "--no_root_device",
    "--no_snap",
    "--profile",
    "--region",
    "--snap-filter",
    "--stdout",
    "--tags",
    "--timeout",
    "--verbosity",
    "--version",
];

#[test]
fn the_differences_table_names_every_new_flag() {
    let dir = tempfile::tempdir().unwrap();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/differences.md"))
            .unwrap();
    let row = readme
        .lines()
        .find(|l| l.starts_with("| new flags |"))
        .expect("the differences table's row of new flags");
    let mut missing = Vec::new();
    for command in [
        "",
        "list",
        "restore",
        "drill",
        "check",
        "vault-prune",
        "hold",
        "release",
    ] {
        let mut cmd = bare_cmd(dir.path());
        if !command.is_empty() {
            cmd.arg(command);
            assert!(row.contains(&format!("`{command}`")), "{command}: {row}");
        }
        let help = run_cmd(cmd.arg("--help"));
        assert_eq!(help.code, 0, "{help:?}");
        // A flag's own line: `  -d, --keep_last_snapshots <N>` or `      --wait`; its description
        // is indented further.
        for line in help.stdout.lines() {
            let own = if line.starts_with("  -") && !line.starts_with("  --") {
                line.split([' ', ',']).filter(|w| !w.is_empty()).nth(1)
            } else if line.starts_with("      --") {
                line.split_whitespace().next()
            } else {
                None
            };
            let Some(name) = own.filter(|w| w.starts_with("--")) else {
                continue;
            };
            if !ORIGINAL_FLAGS.contains(&name) && !row.contains(&format!("`{name}`")) {
                missing.push(format!("{command} {name}"));
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(missing.is_empty(), "not in the table: {missing:?}");
}

/// Each command owns its flags: `list --help` is short and offers nothing `list` refuses; a flag a
/// command does not take is clap's usage error (exit 2), before any request; for `check`, a
/// monitoring plugin, it is UNKNOWN (exit 3) with its status line.
#[test]
fn each_command_takes_only_its_own_flags() {
    let dir = tempfile::tempdir().unwrap();
    let help = run_cmd(bare_cmd(dir.path()).args(["list", "--help"]));
    assert_eq!(help.code, 0, "{help:?}");
    assert!(help.stdout.lines().count() <= 120, "{}", help.stdout);
    for run_only in [
        "--wait",
        "--lock",
        "--pre-snapshot",
        "--report",
        "--archive-after",
        "--check-max-age",
        "--dry_run",
    ] {
        assert!(
            !help.stdout.contains(run_only),
            "list --help offers {run_only}"
        );
    }
    for (args, flag) in [
        (&["list", "-t", "Name", "web", "-u"][..], "-u"),
        (&["restore", "-i", "i-1", "-g", "1", "d"], "-g"),
        (&["drill", "-i", "i-1", "--wait"], "--wait"),
    ] {
        let r = run_cmd(bare_cmd(dir.path()).args(args));
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(
            r.stderr.contains(&format!("unexpected argument '{flag}'")),
            "{r:?}"
        );
    }
    // A run's flag before a subcommand: named, with where it goes when the subcommand takes it.
    let r = run_cmd(bare_cmd(dir.path()).args(["-t", "Name", "web", "list"]));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("'--tags' goes after 'list'"), "{r:?}");
    let r = run_cmd(bare_cmd(dir.path()).args(["check", "-i", "i-1", "-u"]));
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stdout
            .starts_with("EC2SNAP UNKNOWN - error: unexpected argument '-u'"),
        "{r:?}"
    );
}

/// The monitoring check answers 0, 2 or 3 only: any bad command line of it, and a log it cannot
/// open, is UNKNOWN (3); bad values of other flags are exit 1 naming the flag, before any call.
#[test]
fn a_checks_bad_command_line_is_unknown_and_bad_values_name_their_flag() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &[
            "-x",
            "check",
            "--check-max-age",
            "1",
            "d",
            "-t",
            "Name",
            "w",
        ][..],
        &["--check-max-age", "1", "d", "-t", "Name", "w", "--bogus"],
        &[
            "check",
            "--check-max-age",
            "1",
            "d",
            "-t",
            "Name",
            "w",
            "-f",
            "/nonexistent/x.log",
        ],
    ] {
        let r = run_cmd(bare_cmd(dir.path()).args(args));
        assert_eq!(r.code, 3, "{args:?}: {r:?}");
        assert!(r.stdout.starts_with("EC2SNAP UNKNOWN - "), "{r:?}");
    }
    for (args, want) in [
        (
            &["-t", "Name", "w", "-r", "bad region"][..],
            "-r \"bad region\" is not a region name",
        ),
        (
            &["-t", "Name", "w", "--endpoint-url", "http://[::1"],
            "--endpoint-url \"http://[::1\"",
        ),
        (
            &["restore", "-t", "Name", "w", "--ami", "bad name!*"],
            "--ami: an AMI name has",
        ),
    ] {
        let r = run_cmd(
            bare_cmd(dir.path())
                .args(["-k", "AKIA", "-a", "s", "-r", "eu-west-1"])
                .args(args),
        );
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(r.stderr.contains(want), "{want}: {r:?}");
    }
    let long = "a".repeat(129);
    let r = run_cmd(bare_cmd(dir.path()).args([
        "-r",
        "eu-west-1",
        "restore",
        "-t",
        "Name",
        "w",
        "--ami",
        &long,
    ]));
    assert_eq!(r.code, 1, "{r:?}");
}
