//! The shape of `src/`: folders by layer, checked so that it cannot rot unseen. Every module starts
//! with a `//!` line saying its job; only `aws/` names the AWS SDK; no module imports one of a
//! higher layer; the README's layout map names every file, and every file it names exists.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each module's layer, lowest first: a module may use modules of its own layer or below. A path
/// is looked up by its longest prefix here (`aws::reads` is `aws`).
const LAYERS: &[(&str, u8)] = &[
    // Plain types and pure leaves.
    ("model", 0),
    ("clock", 0),
    ("signals", 0),
    ("cli", 0),
    ("output", 0),
    ("output::messages", 0),
    ("retention", 0),
    ("retention::policy", 0),
    ("snapshot", 0),
    ("snapshot::plan", 0),
    ("select", 0),
    ("select::pick", 0),
    ("cold", 0),
    ("cold::mark", 0),
    ("copies", 0),
    ("hooks", 0),
    ("hooks::policy", 0),
    // The AWS adapter, the log, exit codes, the other pure decisions.
    ("aws", 1),
    ("output::log", 1),
    ("hooks::local", 1),
    ("hooks::ssm", 2),
    ("hooks::script", 0),
    ("output::exit", 2),
    ("output::generate", 1),
    ("retention::decide", 1),
    ("retention::lock", 1),
    ("retention::archive", 1),
    ("copies::policy", 2),
    ("retention::orphans", 2),
    // What a run records, and what reads it.
    ("output::record", 2),
    ("snapshot::wait", 2),
    ("output::report", 3),
    ("config", 3),
    ("config::credentials", 3),
    ("config::restore", 3),
    ("config::fleet", 3),
    ("restore::pick", 3),
    // What the instance tasks share, then the async code that applies the decisions.
    ("run::ctx", 4),
    ("select::fetch", 4),
    ("run::permissions", 5),
    ("snapshot::make", 6),
    ("retention::apply", 6),
    ("copies::apply", 6),
    ("cold::cycle", 7),
    ("hooks::around", 7),
    // `restore` and `drill`: the async sequencing over `restore::pick`.
    ("restore", 6),
    ("restore::drill", 7),
    // `list`: its pure view and output, then the command.
    ("list::view", 3),
    ("list::show", 3),
    // The commands, and main.
    ("freshness", 8),
    ("list", 8),
    ("run", 8),
    // A run over many accounts and regions: each target is a `run`.
    ("run::fleet", 8),
    ("main", 9),
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

fn layer(module: &str) -> Option<u8> {
    let parts: Vec<&str> = module.split("::").collect();
    (1..=parts.len()).rev().find_map(|n| {
        let prefix = parts[..n].join("::");
        LAYERS.iter().find(|(m, _)| *m == prefix).map(|(_, l)| *l)
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
fn every_module_says_its_job_and_has_a_layer() {
    for (rel, text) in sources() {
        assert!(
            text.starts_with("//! "),
            "{rel} does not start with a //! line"
        );
        assert!(
            layer(&module_of(&rel)).is_some(),
            "{rel} has no layer in LAYERS"
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
fn no_module_imports_upward() {
    let mut upward = Vec::new();
    for (rel, text) in sources() {
        let module = module_of(&rel);
        let own = layer(&module).unwrap_or(0);
        for used in uses(&text) {
            match layer(&used) {
                Some(l) if l > own => upward.push(format!("{module} ({own}) uses {used} ({l})")),
                Some(_) => {}
                None => upward.push(format!("{module} uses {used}, which has no layer")),
            }
        }
    }
    assert!(upward.is_empty(), "{upward:#?}");
}

#[test]
fn the_readme_map_matches_the_tree() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find("### Layout")
        .expect("the README has a ### Layout section");
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
