//! The shape of `src/`: folders by layer, checked so that it cannot rot unseen. Every module starts
//! with a `//!` line saying its job; only `aws/` names the AWS SDK; no module imports one of a
//! higher tier (pure, acting, commands), no two use each other; docs/architecture.md's layout map
//! names every file, and every file it names exists.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The three tiers, lowest first. A module may use modules of its own tier or below, never above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tier {
    /// Plain types and pure decisions (`now` passed in): the command line and its configuration,
    /// the model, the rules, the messages, the record and what is made from it; nothing here
    /// sends a request to AWS or runs a process.
    Pure,
    /// What talks to AWS, the instance, the clock and the signals: the adapter (`aws/`), the
    /// gate and context every step shares (`act/`), and the steps that apply the decisions.
    Acting,
    /// The commands that sequence the steps, and `main`.
    Commands,
}

use Tier::{Acting, Commands, Pure};

/// Each module's tier, looked up by its longest prefix (`aws::reads` is `aws`).
const TIERS: &[(&str, Tier)] = &[
    ("model", Pure),
    ("tags", Pure),
    ("cli", Pure),
    ("config", Pure),
    ("output", Pure),
    ("retention", Pure),
    ("snapshot", Pure),
    ("select", Pure),
    ("cold", Pure),
    ("copies", Pure),
    ("hooks", Pure),
    ("restore::pick", Pure),
    ("list::view", Pure),
    ("list::show", Pure),
    // No AWS call and no process run: the clock, the signal handlers, the log.
    ("clock", Pure),
    ("signals", Pure),
    // The adapter's plain data: an AWS error as code and message, the client's settings.
    ("aws::errors", Pure),
    ("aws::settings", Pure),
    ("aws", Acting),
    ("act", Acting),
    ("hooks::local", Acting),
    ("hooks::ssm", Acting),
    ("hooks::around", Acting),
    ("select::fetch", Acting),
    ("snapshot::make", Acting),
    ("retention::apply", Acting),
    ("copies::apply", Acting),
    ("cold::cycle", Acting),
    ("vault", Pure),
    ("vault::apply", Acting),
    ("vault::prune", Commands),
    // Notifications: their texts and bounds are pure; sending them acts.
    ("notify", Pure),
    ("notify::send", Acting),
    ("hold", Commands),
    ("restore", Commands),
    ("list", Commands),
    ("run", Commands),
    ("freshness", Commands),
    ("job", Commands),
    ("merge", Commands),
    ("main", Commands),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, by its path relative to `src/`.
fn sources() -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(src())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&src(), &mut out);
    out
}

/// `retention/decide.rs` is `retention::decide`, `aws/mod.rs` is `aws`.
fn module_of(rel: &str) -> String {
    let path = rel.trim_end_matches(".rs").trim_end_matches("/mod");
    path.replace('/', "::")
}

fn tier(module: &str) -> Option<Tier> {
    let parts: Vec<&str> = module.split("::").collect();
    (1..=parts.len()).rev().find_map(|n| {
        let prefix = parts[..n].join("::");
        TIERS.iter().find(|(m, _)| *m == prefix).map(|(_, t)| *t)
    })
}

/// The module paths a file names with `crate::`.
fn uses(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == ':')
            .collect();
        out.push(path.trim_end_matches(':').to_string());
    }
    out
}

#[test]
fn every_module_says_its_job_and_has_a_tier() {
    for (rel, text) in sources() {
        assert!(
            text.starts_with("//! "),
            "{rel} does not start with a //! line"
        );
        assert!(
            tier(&module_of(&rel)).is_some(),
            "{rel} has no tier in TIERS"
        );
    }
}

#[test]
fn only_the_aws_adapter_names_the_sdk() {
    for (rel, text) in sources() {
        if rel.starts_with("aws/") {
            continue;
        }
        for sdk in ["aws_sdk_", "aws_config", "aws_smithy", "aws_types"] {
            assert!(!text.contains(sdk), "{rel} names {sdk}: only aws/ may");
        }
    }
}

#[test]
fn no_module_uses_a_higher_tier() {
    let mut upward = Vec::new();
    for (rel, text) in sources() {
        let module = module_of(&rel);
        let own = tier(&module).unwrap_or(Pure);
        for used in uses(&text) {
            match tier(&used) {
                Some(t) if t > own => {
                    upward.push(format!("{module} ({own:?}) uses {used} ({t:?})"))
                }
                Some(_) => {}
                None => upward.push(format!("{module} uses {used}, which has no tier")),
            }
        }
    }
    assert!(upward.is_empty(), "{upward:#?}");
}

/// Which modules each module names, by module (a file's `crate::` paths, to their module).
fn graph() -> BTreeMap<String, std::collections::BTreeSet<String>> {
    let files = sources();
    let modules: std::collections::BTreeSet<String> = files.keys().map(|r| module_of(r)).collect();
    let mut out = BTreeMap::new();
    for (rel, text) in &files {
        let module = module_of(rel);
        let used = uses(text)
            .into_iter()
            .filter_map(|u| {
                // `retention::decide::Rule` is module `retention::decide`.
                let parts: Vec<&str> = u.split("::").collect();
                (1..=parts.len())
                    .rev()
                    .map(|n| parts[..n].join("::"))
                    .find(|p| modules.contains(p))
            })
            .filter(|u| *u != module)
            .collect();
        out.insert(module, used);
    }
    out
}

/// No two modules use each other, directly or through others (a circle makes neither the lower).
/// A parent module re-exporting or declaring its children is not a use.
#[test]
fn no_circle_between_modules() {
    let g = graph();
    let mut circles = Vec::new();
    for start in g.keys() {
        // Every module reachable from `start`; a circle when `start` is among them.
        let mut seen = std::collections::BTreeSet::new();
        let mut todo: Vec<&String> = g[start].iter().collect();
        while let Some(m) = todo.pop() {
            if !seen.insert(m.clone()) {
                continue;
            }
            if let Some(next) = g.get(m) {
                todo.extend(next.iter());
            }
        }
        if seen.contains(start) {
            circles.push(start.clone());
        }
    }
    assert!(circles.is_empty(), "modules on a circle: {circles:?}");
}

/// Folders (top-level modules) that use each other: at most two such pairs.
#[test]
fn few_folders_use_each_other() {
    let g = graph();
    let top = |m: &str| m.split("::").next().unwrap_or(m).to_string();
    let mut edges = std::collections::BTreeSet::new();
    for (m, used) in &g {
        for u in used {
            if top(m) != top(u) {
                edges.insert((top(m), top(u)));
            }
        }
    }
    let pairs: Vec<_> = edges
        .iter()
        .filter(|(a, b)| a < b && edges.contains(&(b.clone(), a.clone())))
        .collect();
    assert!(pairs.len() <= 2, "folders that use each other: {pairs:?}");
}

#[test]
fn the_layout_map_matches_the_tree() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md"))
            .unwrap();
    let start = readme
        .find("### Layout")
        .expect("docs/architecture.md has a ### Layout section");
    let map = &readme[start..];
    let map = &map[..map[4..].find("\n## ").map_or(map.len(), |n| n + 4)];
    let files = sources();
    for rel in files.keys() {
        assert!(
            map.contains(&format!("`{rel}`")),
            "the README's layout map does not name `{rel}`"
        );
    }
    for named in map.split('`').skip(1).step_by(2) {
        if named.ends_with(".rs") && !named.starts_with("tests/") {
            assert!(
                files.contains_key(named),
                "the README's layout map names `{named}`, which is not in src/"
            );
        }
    }
}

/// The EC2 calls that change something, as the SDK names their builders.
const CHANGING_CALLS: &[&str] = &[
    ".create_snapshot()",
    ".create_snapshots()",
    ".delete_snapshot()",
    ".copy_snapshot()",
    ".stop_instances()",
    ".start_instances()",
    ".create_tags()",
    ".delete_tags()",
    ".create_volume()",
    ".attach_volume()",
    ".delete_volume()",
    ".register_image()",
    ".modify_snapshot_tier()",
    ".restore_snapshot_tier()",
    ".lock_snapshot()",
    ".modify_snapshot_attribute()",
];

/// Every change goes through the gate: the SDK's changing calls are built only in
/// `aws/changes.rs`'s one `send` (its real and DryRun forms), which only `send_change` and
/// `check_change` reach, which only `act/gate.rs` calls. (SSM's SendCommand, `--freeze ssm`, is
/// an instance's command, not an EC2 change: `hooks/` sends it, a dry run only with
/// `--hook-dry-run`, whose script changes nothing.)
#[test]
fn only_the_gate_sends_a_change() {
    for (rel, text) in sources() {
        let code = text.split("#[cfg(test)]").next().unwrap_or(&text);
        if rel == "aws/changes.rs" {
            let send = code
                .find("async fn send(")
                .expect("aws/changes.rs has its one send");
            let end = code[send..]
                .find("\n    }\n")
                .map_or(code.len(), |e| send + e);
            for call in CHANGING_CALLS {
                let outside = code[..send].contains(call) || code[end..].contains(call);
                assert!(!outside, "{call} is built outside aws/changes.rs's send");
            }
            continue;
        }
        for call in CHANGING_CALLS {
            assert!(
                !code.contains(call),
                "{rel} builds {call}: only aws/changes.rs may"
            );
        }
        if rel != "act/gate.rs" {
            for gated in [".send_change(", ".check_change("] {
                assert!(
                    !code.contains(gated),
                    "{rel} calls {gated}: only act/gate.rs may"
                );
            }
        }
    }
}

/// Only the gate asks the mode whether to send: no acting step or command tests for a dry run
/// itself (a pure function may take the mode: what a message says, whether hooks run).
#[test]
fn no_step_decides_the_mode() {
    for (rel, text) in sources() {
        let code = text.split("#[cfg(test)]").next().unwrap_or(&text);
        if rel == "act/gate.rs" || tier(&module_of(&rel)) == Some(Pure) {
            continue;
        }
        for asked in [
            "mode.is_dry()",
            "checks_permissions()",
            "Mode::DryRun",
            "Mode::Real",
        ] {
            assert!(
                !code.contains(asked),
                "{rel} tests {asked}: only the gate may"
            );
        }
    }
}

/// A run never deletes in the vault: the vault step's one deletion is of this account's own
/// intermediate copy, through its own client (`ctx.ec2`), never the vault role's.
#[test]
fn the_vault_step_deletes_nothing_in_the_vault() {
    let text = std::fs::read_to_string(src().join("vault/apply.rs")).unwrap();
    assert!(!text.contains("DeleteVolume"));
    let deletions: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Change::DeleteSnapshot"))
        .collect();
    assert!(!deletions.is_empty());
    for line in deletions {
        assert!(
            line.contains("&ctx.ec2"),
            "a deletion not through ctx.ec2: {line}"
        );
    }
}
