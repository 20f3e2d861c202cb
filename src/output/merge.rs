//! `ec2snap report merge`: one fleet report from the reports of shards (`--shard K/N`) or of
//! separate runs. Every target once (a report without targets is its own one target), the totals
//! summed, the exit code the worst; a shard missing, a target in two reports, a file that is no
//! report: named in `problems`, and the merge's exit code at least 2.

use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The totals' keys a merge sums.
const TOTALS: [&str; 7] = [
    "instances",
    "snapshots_made",
    "snapshot_errors",
    "deleted",
    "deletion_errors",
    "copies_made",
    "held",
];

/// A merged report and its exit code.
#[derive(Debug)]
pub struct Merged {
    pub report: Value,
    pub exit_code: u8,
}

/// Merges `reports` (`(file name, its text)`), in the order given.
pub fn merge(reports: &[(String, String)]) -> Merged {
    let mut problems: Vec<String> = Vec::new();
    let mut targets: Vec<Value> = Vec::new();
    let mut seen: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut totals: BTreeMap<&str, u64> = TOTALS.iter().map(|k| (*k, 0)).collect();
    let mut worst: u8 = 0;
    let mut dry_run = false;
    let mut started: Option<String> = None;
    let mut finished: Option<String> = None;
    // count -> indexes seen
    let mut shards: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
    let mut unsharded = 0usize;
    for (name, text) in reports {
        let report: Value = match serde_json::from_str(text) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                problems.push(format!("{name}: not an ec2snap report (JSON object)"));
                worst = worst.max(2);
                continue;
            }
        };
        let Some(code) = report["exit_code"].as_u64().filter(|c| *c <= 255) else {
            problems.push(format!("{name}: not an ec2snap report (no exit_code)"));
            worst = worst.max(2);
            continue;
        };
        let code = code as u8;
        if !report["totals"].is_object()
            || !(report["targets"].is_null() || report["targets"].is_array())
        {
            problems.push(format!("{name}: not an ec2snap report (totals, targets)"));
            worst = worst.max(2);
            continue;
        }
        worst = worst.max(code);
        dry_run |= report["dry_run"].as_bool().unwrap_or(false);
        if let Some(s) = report["started"].as_str() {
            if started.as_deref().is_none_or(|x| s < x) {
                started = Some(s.to_string());
            }
        }
        if let Some(f) = report["finished"].as_str() {
            if finished.as_deref().is_none_or(|x| f > x) {
                finished = Some(f.to_string());
            }
        }
        let shard = &report["shard"];
        match shard.as_str().and_then(parse_shard) {
            None if !shard.is_null() => {
                problems.push(format!(
                    "{name}: shard {shard} is not K/N with 0 <= K < N <= 10000"
                ));
                worst = worst.max(2);
                continue;
            }
            Some((k, n)) => {
                if !shards.entry(n).or_default().insert(k) {
                    problems.push(format!("{name}: shard {k}/{n} is in two reports"));
                    worst = worst.max(2);
                }
            }
            None => unsharded += 1,
        }
        let sharded = report["shard"].is_string();
        let own: Vec<Value> = match report["targets"].as_array() {
            Some(list) if !list.is_empty() => list.clone(),
            // A shard's run is over many targets, perhaps none (all in other shards).
            _ if sharded => Vec::new(),
            // One target: the report itself.
            _ => vec![json!({
                "account": "",
                "region": report["region"].clone(),
                "instances": report["instances"].clone(),
                "errors": report["errors"].clone(),
                "deleted": report["deleted"].clone(),
                "totals": report["totals"].clone(),
            })],
        };
        for t in own {
            let key = (
                t["account"].as_str().unwrap_or("").to_string(),
                t["region"].as_str().unwrap_or("").to_string(),
            );
            if let Some(first) = seen.get(&key) {
                problems.push(format!(
                    "target {}/{} is in two reports: {first} and {name}",
                    key.0, key.1
                ));
                worst = worst.max(2);
                continue;
            }
            seen.insert(key, name.clone());
            targets.push(t);
        }
        for k in TOTALS {
            let n = &report["totals"][k];
            match n.as_u64() {
                Some(n) => {
                    let sum = totals.entry(k).or_default();
                    *sum = sum.saturating_add(n);
                }
                None if n.is_null() => {}
                None => {
                    problems.push(format!("{name}: totals.{k} is not a count: {n}"));
                    worst = worst.max(2);
                }
            }
        }
    }
    if reports.is_empty() {
        problems.push(
            "no report to merge (give the shards' report files, or a directory of them)"
                .to_string(),
        );
        worst = worst.max(2);
    }
    if shards.len() > 1 || (!shards.is_empty() && unsharded > 0) {
        problems.push("the reports are of different shardings (or some of none)".to_string());
        worst = worst.max(2);
    }
    let mut shard_summary = Value::Null;
    if let Some((n, got)) = shards.iter().next() {
        let missing: Vec<String> = (0..*n)
            .filter(|k| !got.contains(k))
            .map(|k| format!("{k}/{n}"))
            .collect();
        for m in &missing {
            problems.push(format!(
                "shard {m} is missing: its targets are not in this report"
            ));
        }
        if !missing.is_empty() {
            worst = worst.max(2);
        }
        shard_summary = json!({"count": n, "merged": got.len(), "missing": missing});
    }
    let mut out = Map::new();
    out.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
    out.insert("merged_from".into(), json!(reports.len()));
    out.insert("dry_run".into(), json!(dry_run));
    out.insert("started".into(), json!(started));
    out.insert("finished".into(), json!(finished));
    out.insert("exit_code".into(), json!(worst));
    if !shard_summary.is_null() {
        out.insert("shards".into(), shard_summary);
    }
    out.insert("problems".into(), json!(problems));
    out.insert("targets".into(), Value::Array(targets));
    out.insert("totals".into(), json!(totals));
    Merged {
        report: Value::Object(out),
        exit_code: worst,
    }
}

/// `K/N`, 0 <= K < N <= 10,000.
fn parse_shard(text: &str) -> Option<(u32, u32)> {
    let (k, n) = text.split_once('/')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(k) || !digits(n) {
        return None;
    }
    let (k, n): (u32, u32) = (k.parse().ok()?, n.parse().ok()?);
    (k < n && n <= crate::model::MAX_SHARDS).then_some((k, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(shard: Option<&str>, code: u8, targets: &[(&str, &str, u64)]) -> String {
        let targets: Vec<Value> = targets
            .iter()
            .map(|(a, r, made)| json!({"account": a, "region": r, "instances": [], "errors": [], "deleted": [], "totals": {"snapshots_made": made}}))
            .collect();
        let made: u64 = targets
            .iter()
            .map(|t| t["totals"]["snapshots_made"].as_u64().unwrap())
            .sum();
        json!({"exit_code": code, "dry_run": false, "shard": shard, "targets": targets,
               "totals": {"snapshots_made": made, "instances": targets.len()}})
        .to_string()
    }

    #[test]
    fn shards_merge_into_one_fleet_report() {
        let all = [
            (
                "a.json".to_string(),
                report(Some("0/3"), 0, &[("111", "eu-west-1", 2)]),
            ),
            (
                "b.json".to_string(),
                report(
                    Some("1/3"),
                    2,
                    &[("222", "eu-west-1", 1), ("111", "us-east-1", 1)],
                ),
            ),
            ("c.json".to_string(), report(Some("2/3"), 0, &[])),
        ];
        let m = merge(&all);
        assert_eq!(m.exit_code, 2);
        assert_eq!(m.report["totals"]["snapshots_made"], 4);
        assert_eq!(
            m.report["targets"].as_array().unwrap().len(),
            3,
            "c.json: a shard without a target"
        );
        assert_eq!(m.report["problems"], json!([]));
        // One shard missing, one target twice.
        let m = merge(&[
            all[0].clone(),
            (
                "d.json".into(),
                report(Some("2/3"), 0, &[("111", "eu-west-1", 0)]),
            ),
        ]);
        let problems = m.report["problems"].to_string();
        assert!(problems.contains("shard 1/3 is missing"), "{problems}");
        assert!(
            problems.contains("target 111/eu-west-1 is in two reports: a.json and d.json"),
            "{problems}"
        );
        assert_eq!(m.exit_code, 2);
        // Two shards without targets: nothing twice.
        let m = merge(&[
            ("a".into(), report(Some("0/2"), 0, &[])),
            ("b".into(), report(Some("1/2"), 0, &[])),
        ]);
        assert_eq!(
            (m.exit_code, m.report["targets"].as_array().unwrap().len()),
            (0, 0)
        );
        // Numbers past u64, negative, a shard out of range, no report at all: named, exit 2.
        let huge = json!({"exit_code": 0, "targets": [], "shard": "0/2",
                          "totals": {"instances": u64::MAX}})
        .to_string();
        let m = merge(&[
            ("h1".into(), huge.clone()),
            ("h2".into(), huge.replace("0/2", "1/2")),
        ]);
        assert_eq!(m.report["totals"]["instances"], u64::MAX);
        for bad in [
            json!({"exit_code": 0, "totals": {"instances": -1}}),
            json!({"exit_code": 0, "totals": {}, "targets": "str"}),
            json!({"exit_code": 0, "totals": {}, "shard": "5/3"}),
            json!({"exit_code": 0, "totals": {}, "shard": "0/0"}),
            json!({}),
        ] {
            let m = merge(&[("bad".into(), bad.to_string())]);
            assert_eq!(m.exit_code, 2, "{bad}");
            assert!(
                !m.report["problems"].as_array().unwrap().is_empty(),
                "{bad}"
            );
        }
        assert_eq!(merge(&[]).exit_code, 2);
        // Not a report at all.
        let m = merge(&[("x".into(), "nope".into())]);
        assert_eq!(m.exit_code, 2);
        assert!(m.report["problems"][0]
            .as_str()
            .unwrap()
            .starts_with("x: not"));
    }
}
