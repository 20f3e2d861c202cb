//! The README and the guide in `docs/` stay true: every flag a command's `--help` shows is
//! documented in `docs/`, every flag they name exists, and every `ec2snap` command they show runs
//! as written against the emulator (a dry run unless it says `-u`), with no usage error, no bad
//! input and no panic.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const COMMANDS: [&str; 8] = [
    "",
    "list",
    "restore",
    "drill",
    "check",
    "vault-prune",
    "hold",
    "release",
];

/// Flags of other programs the documents name in inline code: scripts/bench.sh's (`--fleet`,
/// `--old`), restic's (`--keep-last`), and those of the commands they show.
const OTHER_TOOLS: &[&str] = &[
    "--fleet",
    "--old",
    "--keep-last",
    "--all-targets",
    "--break-system-packages",
    "--change",
    "--examples",
    "--force",
    "--help",
    "--locked",
    "--no-shrink",
    "--now",
    "--release",
    "--root",
    "--runs",
    "--seed",
    "--steps",
    "--user",
];

fn documents() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = vec![(
        root.join("README.md"),
        std::fs::read_to_string(root.join("README.md")).unwrap(),
    )];
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    for p in pages {
        let text = std::fs::read_to_string(&p).unwrap();
        out.push((p, text));
    }
    out
}

/// The flags a command's `--help` lists: each long one with its short one, if any.
fn flags_of(command: &str) -> BTreeSet<(String, Option<String>)> {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = bare_cmd(dir.path());
    if !command.is_empty() {
        cmd.arg(command);
    }
    let help = run_cmd(cmd.arg("--help"));
    assert_eq!(help.code, 0, "{help:?}");
    // A flag's own line: `  -d, --keep_last_snapshots <N>` or `      --wait`.
    help.stdout
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line
                .split([' ', ','])
                .filter(|w| !w.is_empty())
                .take(2)
                .collect();
            match words.as_slice() {
                [short, long, ..] if line.starts_with("  -") && long.starts_with("--") => {
                    Some((long.to_string(), Some(short.to_string())))
                }
                [long, ..] if line.starts_with("      --") => Some((long.to_string(), None)),
                _ => None,
            }
        })
        .collect()
}

/// The `--flag`s a document names as this tool's: an inline code span that starts with one
/// (`` `--wait` ``, `` `--keep-daily N` ``), and the flags of its `ec2snap` commands. Other
/// programs' flags (the AWS CLI's, cargo's) are in their own commands' lines.
fn named_flags(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut add = |word: &str| {
        let flag: String = word
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '-' || *c == '_')
            .collect();
        // `--keep-*` names a family, not a flag.
        let family = word[flag.len()..].starts_with('*');
        if flag.len() > 2 && flag.starts_with("--") && !family {
            out.insert(flag);
        }
    };
    let mut in_block = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            continue;
        }
        for (i, span) in line.split('`').enumerate() {
            if i % 2 == 1 && span.starts_with("--") {
                add(span);
            }
        }
    }
    for command in commands(text) {
        for word in words(&command) {
            if word.starts_with("--") {
                add(&word);
            }
        }
    }
    out
}

#[test]
fn every_flag_is_documented_and_every_documented_flag_exists() {
    let docs = documents();
    let guide: String = docs
        .iter()
        .filter(|(p, _)| p.parent().is_some_and(|d| d.ends_with("docs")))
        .map(|(_, t)| t.as_str())
        .collect();
    let mut all = BTreeSet::new();
    let mut undocumented = Vec::new();
    for command in COMMANDS {
        for (flag, short) in flags_of(command) {
            let named =
                |f: &str| guide.contains(&format!("`{f}`")) || guide.contains(&format!("`{f} "));
            if !named(&flag) && !short.as_deref().is_some_and(named) && flag != "--help" {
                undocumented.push(format!("{command} {flag}"));
            }
            all.insert(flag);
        }
    }
    assert!(
        undocumented.is_empty(),
        "flags no page of docs/ names: {undocumented:?}"
    );
    let mut unknown = Vec::new();
    for (path, text) in &docs {
        for flag in named_flags(text) {
            if !all.contains(&flag) && !OTHER_TOOLS.contains(&flag.as_str()) {
                unknown.push(format!("{}: {flag}", path.display()));
            }
        }
    }
    assert!(unknown.is_empty(), "flags no command takes: {unknown:?}");
}

/// The `ec2snap` commands of a document's ```sh and ```crontab blocks, one per line (a trailing
/// backslash joins lines), up to a pipe, a redirection or a comment.
fn commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fence: Option<String> = None;
    let mut pending = String::new();
    for line in text.lines() {
        if let Some(rest) = line.trim_start().strip_prefix("```") {
            fence = match fence {
                None => Some(rest.trim().to_string()),
                Some(_) => None,
            };
            continue;
        }
        let Some(kind) = fence.as_deref() else {
            continue;
        };
        if kind != "sh" && kind != "crontab" {
            continue;
        }
        let line = line.trim();
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        let whole = std::mem::take(&mut pending) + line;
        if whole.starts_with('#') {
            continue;
        }
        // The command: from `ec2snap ` (or a path ending in /ec2snap) to a pipe, `>`, `;`, `&&`.
        let words: Vec<&str> = whole.split(' ').collect();
        let Some(at) = words
            .iter()
            .position(|w| *w == "ec2snap" || w.ends_with("/bin/ec2snap"))
        else {
            continue;
        };
        let mut cmd = Vec::new();
        for w in &words[at + 1..] {
            if ["|", ">", ">>", ";", "&&", "||", "2>&1"].contains(w) || w.starts_with('#') {
                break;
            }
            cmd.push(*w);
        }
        out.push(cmd.join(" "));
    }
    out
}

/// Splits a command line as sh does for these documents: words, '…' and "…" quotes.
fn words(line: &str) -> Vec<String> {
    let (mut out, mut word, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, ' ' | '\t') => {
                if any || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            (None, c) => word.push(c),
        }
    }
    if any || !word.is_empty() {
        out.push(word);
    }
    out
}

#[test]
fn every_documented_command_runs_as_written() {
    let lab = Lab::start();
    lab.seed(json!({"instances": [
        {"name": "front1", "volumes": [{"device": "/dev/sdb"}]},
        {"name": "web1", "volumes": [{"device": "/dev/sdb"}]},
        {"name": "db1", "volumes": [{"device": "/dev/sdb"}, {"device": "/dev/sdc"}]}]}));
    let work = tempfile::tempdir().unwrap();
    std::fs::write(
        work.path().join("accounts.yml"),
        "accounts:\n  - account_id: \"123456789012\"\n    name: prod\n    role: arn:aws:iam::123456789012:role/ec2snap\n    regions: [eu-west-1]\n    tags: [\"type:prod\"]\n",
    )
    .unwrap();
    let mut failed = Vec::new();
    let mut ran = 0;
    for (path, text) in documents() {
        for line in commands(&text) {
            let args = words(&line);
            let mut cmd = bare_cmd(work.path());
            cmd.current_dir(work.path())
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing");
            // `--generate` takes no other flag, nor `ec2snap` alone (the help); a command with its
            // own -r keeps it.
            if !args.is_empty() && !args.iter().any(|a| a == "--generate") {
                cmd.args(["--endpoint-url", &lab.endpoint()]);
                if !args.iter().any(|a| a == "-r" || a == "--region") {
                    cmd.args(["-r", REGION]);
                }
            }
            let r = run_cmd(cmd.args(&args));
            ran += 1;
            let usage = r.stderr.contains("Usage:") || r.stderr.contains("error: unexpected");
            let panicked = r.code == 101 || r.stderr.contains("panicked");
            // Exit 1 is bad input, unless what is missing is this machine's (a file, a path).
            let environment = [
                "No such file",
                "does not exist",
                "Permission denied",
                "cannot write",
                "Cannot read",
            ]
            .iter()
            .any(|w| r.stderr.contains(w) || r.stdout.contains(w));
            if usage || panicked || (r.code == 1 && !environment) {
                failed.push(format!("{}: ec2snap {line}\n{r:?}", path.display()));
            }
        }
    }
    assert!(ran > 30, "only {ran} commands found in the documents");
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
