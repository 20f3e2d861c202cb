//! The accounts of an AWS Organization (`--accounts-from-org`, `--org-unit`) and shards
//! (`--shard K/N`, `--shard-index-from`) against moto's Organizations and its per-account
//! resources behind STS; `report merge` of the shards' reports.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/ec2snap")
}

/// 12 accounts in 3 OUs (one nested), one of them closed (SUSPENDED), each ACTIVE one with an
/// instance "web" of one volume; the management account has one too (it must be left alone).
fn org_lab() -> (Lab, Value) {
    let lab = Lab::start();
    let names: Vec<String> = (0..12).map(|k| format!("acct{k:02}")).collect();
    let units = ["prod", "dev", "prod/eu"];
    let accounts: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(k, n)| json!([n, units[k % 3]]))
        .collect();
    let org = lab.organization(json!({
        "units": ["prod", "dev", "prod/eu"],
        "accounts": accounts,
        "suspend": ["acct05"],
        "tags": {"acct00": {"backup": "yes"}, "acct01": {"backup": "yes"}},
    }));
    for (name, id) in org["accounts"].as_object().unwrap() {
        if name != "acct05" {
            lab.seed_as(
                Some(&role(id.as_str().unwrap())),
                "eu-west-1",
                json!({"instances": [{"name": "web", "volumes": [{"device": "/dev/sdb"}]}]}),
            );
        }
    }
    lab.seed(json!({"instances": [{"name": "web", "volumes": [{"device": "/dev/sdb"}]}]}));
    (lab, org)
}

/// Snapshots per account id (every account of the Organization, and the base one).
fn counts(lab: &Lab, org: &Value) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for id in org["accounts"].as_object().unwrap().values() {
        let id = id.as_str().unwrap();
        out.insert(
            id.to_string(),
            lab.snapshots_as(Some(&role(id)), "eu-west-1").len(),
        );
    }
    out.insert("management".into(), lab.snapshots().len());
    out
}

#[test]
fn the_active_accounts_of_the_organization_and_of_its_units() {
    let (lab, org) = org_lab();
    let ids = org["accounts"].as_object().unwrap();
    let r = lab.run(&[
        "--accounts-from-org",
        "ec2snap",
        "-t",
        "Name",
        "web",
        "-o",
        "-u",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let after = counts(&lab, &org);
    for (name, id) in ids {
        let want = if name == "acct05" { 0 } else { 1 };
        assert_eq!(after[id.as_str().unwrap()], want, "{name}: {after:?}");
    }
    assert_eq!(
        after["management"], 0,
        "the management account is left out: {after:?}"
    );
    // Only under "prod" (recursively: prod/eu too): acct00, 02, 03, 05 (closed), 06, 08, 09, 11.
    let prod = org["units"]["prod"].as_str().unwrap();
    let r = lab.run(&[
        "--accounts-from-org",
        "ec2snap",
        "--org-unit",
        prod,
        "-t",
        "Name",
        "web",
        "-o",
        "-u",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let again = counts(&lab, &org);
    for (name, id) in ids {
        let k: usize = name[4..].parse().unwrap();
        let under_prod = k % 3 != 1 && name != "acct05";
        let want = after[id.as_str().unwrap()] + usize::from(under_prod);
        assert_eq!(again[id.as_str().unwrap()], want, "{name}: {again:?}");
    }
    // --account-tag: the accounts' Organizations tags.
    let r = lab.run(&[
        "--accounts-from-org",
        "ec2snap",
        "--account-tag",
        "backup=yes",
        "-t",
        "Name",
        "web",
        "-o",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("Organization: 2 of 13 accounts selected"),
        "{r:?}"
    );
    // Bad input: exit 1 naming the flag, nothing changed.
    for (args, names) in [
        (
            vec!["--accounts-from-org", "bad role!"],
            "--accounts-from-org",
        ),
        (
            vec!["--accounts-from-org", "ec2snap", "--org-unit", "nope"],
            "--org-unit",
        ),
        (vec!["--org-unit", prod], "--accounts-from-org"),
        (vec!["--shard", "3/3"], "--shard"),
        (
            vec!["--shard", "3", "--shard-index-from", "NO_SUCH_VAR_HERE"],
            "NO_SUCH_VAR_HERE",
        ),
    ] {
        let mut full = args.clone();
        full.extend(["-t", "Name", "web", "-u"]);
        let r = lab.run(&full);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(r.stderr.contains(names), "{args:?}: {r:?}");
    }
    assert_eq!(counts(&lab, &org), again);
}

#[test]
fn three_shards_back_up_every_target_once_and_merge_into_the_whole() {
    let (lab, org) = org_lab();
    let dir = lab.dir.path().to_path_buf();
    // One unsharded run, its report.
    let whole = dir.join("whole.json");
    let r = lab.run(&[
        "--accounts-from-org",
        "ec2snap",
        "-r",
        "eu-west-1",
        "-r",
        "us-east-1",
        "-t",
        "Name",
        "web",
        "-o",
        "-u",
        "--report",
        whole.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let once = counts(&lab, &org);
    // Three workers as a Kubernetes Indexed Job runs them: JOB_COMPLETION_INDEX set.
    let mut reports = Vec::new();
    for k in 0..3 {
        let report = dir.join(format!("shard-{k}.json"));
        let mut cmd = lab.cmd();
        cmd.env("JOB_COMPLETION_INDEX", k.to_string()).args([
            "--accounts-from-org",
            "ec2snap",
            "-r",
            "eu-west-1",
            "-r",
            "us-east-1",
            "--shard",
            "3",
            "--shard-index-from",
            "JOB_COMPLETION_INDEX",
            "-t",
            "Name",
            "web",
            "-o",
            "-u",
            "--report",
            report.to_str().unwrap(),
        ]);
        let r = run_cmd(&mut cmd);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(r.stderr.contains(&format!("Shard {k}/3:")), "{r:?}");
        reports.push(report);
    }
    let twice = counts(&lab, &org);
    for (id, n) in &once {
        assert_eq!(
            twice[id],
            2 * n,
            "{id}: every target once more, as the unsharded run: {once:?} {twice:?}"
        );
    }
    // The merge equals the unsharded run's totals and targets.
    let paths: Vec<&str> = reports.iter().map(|p| p.to_str().unwrap()).collect();
    let mut args = vec!["report", "merge"];
    args.extend(&paths);
    let m = run_cmd(bare_cmd(&dir).args(&args));
    assert_eq!(m.code, 0, "{m:?}");
    let merged: Value = serde_json::from_str(&m.stdout).unwrap();
    let whole: Value = serde_json::from_str(&std::fs::read_to_string(&whole).unwrap()).unwrap();
    assert_eq!(
        merged["totals"]["snapshots_made"],
        whole["totals"]["snapshots_made"]
    );
    assert_eq!(merged["totals"]["snapshots_made"], 11);
    assert_eq!(
        merged["targets"].as_array().unwrap().len(),
        whole["targets"].as_array().unwrap().len()
    );
    assert_eq!(merged["shards"]["missing"], json!([]));
    // One shard's report missing: named, exit 2.
    let m = run_cmd(bare_cmd(&dir).args(["report", "merge", paths[0], paths[1]]));
    assert_eq!(m.code, 2, "{m:?}");
    assert!(m.stderr.contains("shard 2/3 is missing"), "{m:?}");
}
