//! Many accounts and regions in one run: moto keeps separate resources per account behind STS
//! AssumeRole, so each role of these tests is an account of its own, reached through the same
//! endpoint (and fault proxy) as EC2.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::{json, Value};

const OTHER: &str = "us-east-1";

fn role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/ec2snap")
}

const ACCOUNTS: [&str; 3] = ["111111111111", "222222222222", "333333333333"];

/// `web` in the account of `role` and `region`: a data volume whose only snapshot is 10 days old.
fn seed_web(lab: &Lab, role: &str, region: &str) -> Value {
    lab.seed_as(
        Some(role),
        region,
        json!({"instances": [{"name": "web", "volumes": [{"device": "/dev/sdb"}],
        "snapshots": [{"device": "/dev/sdb", "age": 10 * 86_400}]}]}),
    )
}

/// The ids of the snapshots of the account of `role` in `region`.
fn ids_in(lab: &Lab, role: &str, region: &str) -> std::collections::BTreeSet<String> {
    snapshot_ids(&lab.snapshots_as(Some(role), region))
}

/// `--assume-role` for each account.
fn role_args(accounts: &[&str]) -> Vec<String> {
    accounts
        .iter()
        .flat_map(|a| ["--assume-role".to_string(), role(a)])
        .collect()
}

/// The binary against the lab without the harness's `-r` (which would override an accounts
/// file's regions, and cannot go with `-r all`): the base region comes from `AWS_REGION`.
fn without_r(lab: &Lab, args: &[&str]) -> Run {
    let mut cmd = bare_cmd(lab.dir.path());
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", REGION)
        .args(["--endpoint-url", &lab.endpoint()])
        .args(args);
    run_cmd(&mut cmd)
}

#[test]
fn one_run_snapshots_and_prunes_three_accounts_in_two_regions() {
    let lab = Lab::start();
    let mut old = Vec::new();
    for account in ACCOUNTS {
        for region in [REGION, OTHER] {
            let seeded = seed_web(&lab, &role(account), region);
            old.push((account, region, seeded_snapshot_ids(&seeded, "web")));
        }
    }
    // The base account has its own `web`, which no target includes (the roles are the targets).
    let base = lab.seed(json!({"instances": [{"name": "web"}]}));
    let report = lab.dir.path().join("report.json");
    let metrics = lab.dir.path().join("m.prom");
    let mut args = vec!["-r", OTHER, "-t", "Name", "web", "-g", "5", "d", "-u"];
    let roles = role_args(&ACCOUNTS);
    args.extend(roles.iter().map(String::as_str));
    args.extend(["--report", report.to_str().unwrap()]);
    args.extend(["--metrics-file", metrics.to_str().unwrap()]);
    lab.reset_stats();
    let r = lab.run(&args);
    assert_eq!(r.code, 0, "{r:?}");
    // One role session per account, shared by its two regions' targets.
    assert_eq!(lab.stats().get("AssumeRole"), Some(&3), "{:?}", lab.stats());
    let lines = r.lines();
    assert_eq!(
        lines[0], "[INFO] Working on 6 targets (3 accounts), at most 4 at once",
        "{lines:#?}"
    );
    for (account, region, old_ids) in &old {
        let now = ids_in(&lab, &role(account), region);
        let target = format!("[{account}/{region}]");
        for id in old_ids {
            assert!(!now.contains(id), "{target}: {id} kept: {lines:#?}");
            let deleting = format!("[INFO] {target} Deleting snapshot {id} (");
            assert!(
                lines.iter().any(|l| l.starts_with(&deleting)),
                "{target}: no deletion line for {id}: {lines:#?}"
            );
        }
        // Root and data volume: two new snapshots in each target.
        assert_eq!(now.len(), 2, "{target}: {now:?}");
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with(&format!("[INFO] {target} Hot snapshot made for")))
                .count(),
            2,
            "{lines:#?}"
        );
    }
    // Every line of a target's work names it; the base account was not a target.
    assert!(lines[1..].iter().all(|l| l.contains("] [")), "{lines:#?}");
    assert!(lab.snapshots_as(None, REGION).is_empty());
    assert_eq!(lab.instance_state(&id_of(&base, "web")), "running");
    // One report: a section per target and the fleet's totals.
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let targets = doc["targets"].as_array().unwrap();
    let names: Vec<String> = targets
        .iter()
        .map(|t| {
            format!(
                "{}/{}",
                t["account"].as_str().unwrap(),
                t["region"].as_str().unwrap()
            )
        })
        .collect();
    let want: Vec<String> = ACCOUNTS
        .iter()
        .flat_map(|a| [format!("{a}/{REGION}"), format!("{a}/{OTHER}")])
        .collect();
    assert_eq!(names, want);
    for t in targets {
        assert_eq!(t["totals"]["snapshots_made"], 2, "{t}");
        assert_eq!(t["totals"]["deleted"], 1, "{t}");
        assert_eq!(t["instances"][0]["name"], "web", "{t}");
    }
    assert_eq!(doc["totals"]["snapshots_made"], 12);
    assert_eq!(doc["totals"]["deleted"], 6);
    assert_eq!(doc["totals"]["instances"], 6);
    // The metrics: each count per target, labelled with its account and region.
    let samples = parse_metrics(&metrics);
    for (account, region, _) in &old {
        for (name, want) in [
            ("ec2snap_snapshots_created", 2.0),
            ("ec2snap_snapshots_deleted", 1.0),
            ("ec2snap_snapshot_errors", 0.0),
        ] {
            let found = samples.iter().find(|s| {
                s["name"] == name
                    && s["labels"]["account"] == *account
                    && s["labels"]["region"] == *region
            });
            assert_eq!(
                found.map(|s| s["value"].as_f64().unwrap()),
                Some(want),
                "{name} {account}/{region}: {samples:?}"
            );
        }
    }
    assert_eq!(metric(&samples, "ec2snap_exit_code"), 0.0);
}

#[test]
fn a_refused_role_is_that_targets_error_and_the_others_go_on() {
    let lab = Lab::start();
    for account in ACCOUNTS {
        seed_web(&lab, &role(account), REGION);
    }
    // STS refuses the second account's role, as AWS does when its trust policy leaves us out.
    lab.faults(
        json!([{"action": "AssumeRole", "match": ACCOUNTS[1], "times": -1, "status": 403,
        "code": "AccessDenied", "message": "not authorized to perform sts:AssumeRole"}]),
    );
    let report = lab.dir.path().join("report.json");
    let mut args = vec![
        "-t",
        "Name",
        "web",
        "-u",
        "--report",
        report.to_str().unwrap(),
    ];
    let roles = role_args(&ACCOUNTS);
    args.extend(roles.iter().map(String::as_str));
    let r = lab.run(&args);
    assert_eq!(r.code, 2, "{r:?}");
    let refused = format!("{}/{REGION}", ACCOUNTS[1]);
    let error = r
        .lines()
        .into_iter()
        .find(|l| {
            l.starts_with(&format!(
                "[ERROR] [{refused}] Target {refused} failed: Cannot assume role {}",
                role(ACCOUNTS[1])
            ))
        })
        .unwrap_or_else(|| panic!("no target error: {r:?}"));
    // STS's code and message, once, never the SDK's Debug dump (issue 34 item 12).
    assert!(
        error.contains("AccessDenied: not authorized to perform sts:AssumeRole")
            && !error.contains("Error {"),
        "{error}"
    );
    // The others were done.
    for account in [ACCOUNTS[0], ACCOUNTS[2]] {
        assert_eq!(
            ids_in(&lab, &role(account), REGION).len(),
            3,
            "{account}: {r:?}"
        );
    }
    assert_eq!(ids_in(&lab, &role(ACCOUNTS[1]), REGION).len(), 1);
    // The original's summary counts it; the report holds it under its target.
    assert!(r.stdout.contains(&error_summary(1, 0)), "{r:?}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let section = doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["account"] == ACCOUNTS[1])
        .unwrap();
    assert_eq!(section["errors"][0]["kind"], "target", "{section}");
    assert_eq!(section["errors"][0]["action"], "Target", "{section}");
    assert_eq!(section["totals"]["snapshot_errors"], 1);
    assert_eq!(doc["totals"]["snapshot_errors"], 1);
    assert_eq!(doc["totals"]["snapshots_made"], 4);
}

#[test]
fn an_accounts_file_in_c7n_orgs_shape_with_tag_selection() {
    let lab = Lab::start();
    for account in ACCOUNTS {
        for region in [REGION, OTHER] {
            seed_web(&lab, &role(account), region);
        }
    }
    let file = lab.dir.path().join("accounts.yml");
    std::fs::write(
        &file,
        format!(
            "accounts:
- account_id: '{a}'
  name: prod
  role: {ra}
  regions: [{OTHER}]
  tags: [type:prod, team:web]
- account_id: '{b}'
  name: dev
  role: {rb}
  tags: [type:dev, team:web]
  vars: {{charge_code: xyz}}
- account_id: '{c}'
  name: data
  role: {rc}
  tags: [type:prod, team:data]
",
            a = ACCOUNTS[0],
            b = ACCOUNTS[1],
            c = ACCOUNTS[2],
            ra = role(ACCOUNTS[0]),
            rb = role(ACCOUNTS[1]),
            rc = role(ACCOUNTS[2]),
        ),
    )
    .unwrap();
    let r = without_r(
        &lab,
        &[
            "-t",
            "Name",
            "web",
            "-u",
            "--accounts",
            file.to_str().unwrap(),
            "--account-tag",
            "team=web",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    // prod in its own region only, dev in the base region, data not at all.
    let made = |account: &str, region: &str| ids_in(&lab, &role(account), region).len() - 1;
    assert_eq!(made(ACCOUNTS[0], OTHER), 2, "{r:?}");
    assert_eq!(made(ACCOUNTS[0], REGION), 0, "{r:?}");
    assert_eq!(made(ACCOUNTS[1], REGION), 2, "{r:?}");
    assert_eq!(made(ACCOUNTS[1], OTHER), 0, "{r:?}");
    assert_eq!(
        made(ACCOUNTS[2], REGION) + made(ACCOUNTS[2], OTHER),
        0,
        "{r:?}"
    );
    // The file's names are the log lines' prefixes.
    assert!(
        r.has(&format!(
            "[INFO] [prod/{OTHER}] Getting instances information"
        )),
        "{r:?}"
    );
    assert!(
        r.has(&format!(
            "[INFO] [dev/{REGION}] Getting instances information"
        )),
        "{r:?}"
    );
    assert!(!r.stderr.contains("[data/"), "{r:?}");
    // `list` over the same fleet: a section per target.
    let l = without_r(
        &lab,
        &[
            "list",
            "-t",
            "Name",
            "web",
            "--accounts",
            file.to_str().unwrap(),
            "--account-tag",
            "type=prod",
            "--json",
        ],
    );
    assert_eq!(l.code, 0, "{l:?}");
    let doc: Value = serde_json::from_str(&l.stdout).unwrap();
    let shown: Vec<(String, String, usize)> = doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let snaps = t["instances"][0]["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| {
                    v["snapshots"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|s| !s["id"].is_null())
                        .count()
                })
                .sum();
            (
                t["account"].as_str().unwrap().to_string(),
                t["region"].as_str().unwrap().to_string(),
                snaps,
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("prod".to_string(), OTHER.to_string(), 3),
            ("data".to_string(), REGION.to_string(), 1)
        ],
        "{doc}"
    );
}

#[test]
fn with_r_all_an_account_whose_regions_cannot_be_read_is_one_failed_target() {
    // Issue 33 item 10 (found by the fault campaign): one refused role stopped every account's
    // backup with exit 1.
    let lab = Lab::start();
    let (ok, refused) = (role(ACCOUNTS[0]), role(ACCOUNTS[1]));
    seed_web(&lab, &ok, "sa-east-1");
    seed_web(&lab, &refused, "sa-east-1");
    lab.faults(
        json!([{"action": "AssumeRole", "match": ACCOUNTS[1], "times": -1, "status": 403,
        "code": "AccessDenied", "message": "not authorized to perform sts:AssumeRole"}]),
    );
    let report = lab.dir.path().join("report.json");
    let mut cmd = bare_cmd(lab.dir.path());
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", REGION)
        .args(["--endpoint-url", &lab.endpoint(), "-r", "all"])
        .args(["--assume-role", &ok, "--assume-role", &refused])
        .args(["-t", "Name", "web", "-u", "--parallel-targets", "16"])
        .args(["--report", report.to_str().unwrap()]);
    let r = run_cmd(&mut cmd);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(ids_in(&lab, &ok, "sa-east-1").len(), 3, "{r:?}");
    let line = format!(
        "[ERROR] [{0}/all] Target {0}/all failed: Cannot list the regions of account {0} (-r all)",
        ACCOUNTS[1]
    );
    assert!(
        r.lines().iter().any(|l| l.starts_with(&line)),
        "no {line:?}: {r:?}"
    );
    assert!(r.stdout.contains(&error_summary(1, 0)), "{r:?}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let failed = doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["account"] == ACCOUNTS[1])
        .unwrap_or_else(|| panic!("no section of the refused account: {doc}"));
    assert_eq!(failed["errors"][0]["kind"], "target", "{failed}");
    assert_eq!(doc["totals"]["snapshots_made"], 2, "{doc}");
}

#[test]
fn two_regions_copy_to_each_other() {
    // Issue 33 item 11 (found by the fault campaign): --copy-to us-east-1 with -r us-east-1 among
    // the regions failed that target on every run, its instances never backed up.
    let lab = Lab::start();
    for region in [REGION, OTHER] {
        lab.seed_as(
            None,
            region,
            json!({"instances": [{"name": "web", "volumes": [{"device": "/dev/sdb"}],
            "snapshots": [{"device": "/dev/sdb", "age": 86_400}]}]}),
        );
    }
    let r = without_r(
        &lab,
        &["-r", REGION, "-r", OTHER, "-t", "Name", "web", "-o", "-u"],
    );
    let r2 = without_r(
        &lab,
        &[
            "-r",
            REGION,
            "-r",
            OTHER,
            "-t",
            "Name",
            "web",
            "-o",
            "-u",
            "--copy-to",
            OTHER,
            "--copy-to",
            REGION,
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r2.code, 0, "{r2:?}");
    for (region, there) in [(REGION, OTHER), (OTHER, REGION)] {
        assert!(
            r2.has(&format!(
                "[INFO] [{region}] No copy to {region}: this target's snapshots are in {region} already (--copy-to {region})"
            )),
            "{r2:?}"
        );
        // Each region's instance was backed up, twice (one snapshot per run, -o).
        let own: Vec<Value> = lab
            .snapshots_as(None, region)
            .into_iter()
            .filter(|s| s["tags"]["ec2snap:source-snapshot"].is_null())
            .collect();
        assert_eq!(own.len(), 3, "{region}: {own:?}");
        // Its newest completed backup went to the other region.
        let copies: Vec<Value> = lab
            .snapshots_as(None, there)
            .into_iter()
            .filter(|s| s["tags"]["ec2snap:source-region"] == region)
            .collect();
        assert_eq!(copies.len(), 1, "{region} -> {there}: {copies:?} {r2:?}");
    }
}

#[test]
fn every_enabled_region_with_r_all() {
    let lab = Lab::start();
    let arn = role(ACCOUNTS[0]);
    seed_web(&lab, &arn, "sa-east-1");
    // No -r from the harness: `all` must be given alone.
    let mut cmd = bare_cmd(lab.dir.path());
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", REGION)
        .args([
            "--endpoint-url",
            &lab.endpoint(),
            "-r",
            "all",
            "--assume-role",
            &arn,
        ])
        .args(["-t", "Name", "web", "-u", "--parallel-targets", "16"]);
    let r = run_cmd(&mut cmd);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ids_in(&lab, &arn, "sa-east-1").len(), 3, "{r:?}");
    // Regions without an instance are no error; the original's line stays for a fleet with none.
    assert!(!r.stderr.contains("[ERROR]"), "{r:?}");
    assert!(
        r.has(&format!(
            "[INFO] [{}/eu-west-1] No instances found with those parameters !",
            ACCOUNTS[0]
        )),
        "{r:?}"
    );
    assert!(r.lines()[0].starts_with("[INFO] Working on "), "{r:?}");
}

#[test]
fn a_sigterm_during_a_multi_target_cold_run_restarts_every_stopped_instance() {
    let lab = Lab::start();
    let mut web = Vec::new();
    for account in &ACCOUNTS[..2] {
        for region in [REGION, OTHER] {
            let seeded = seed_web(&lab, &role(account), region);
            web.push((role(account), region, id_of(&seeded, "web")));
        }
    }
    // Slow snapshots widen the window in which the instances are stopped.
    lab.faults(json!([{"action": "CreateSnapshot", "delay": 5, "times": -1}]));
    let mut args = vec!["-r", OTHER, "-t", "Name", "web", "-H", "-u"];
    let roles = role_args(&ACCOUNTS[..2]);
    args.extend(roles.iter().map(String::as_str));
    let live = lab.spawn(&args);
    live.wait_for("now stopped !", 4);
    for (arn, region, id) in &web {
        let state = lab.instances_as(Some(arn), region);
        let found = state.iter().find(|i| i["id"] == id.as_str()).unwrap();
        assert_eq!(found["state"], "stopped", "{arn} {region}");
    }
    live.signal("TERM");
    let (code, lines) = live.finish();
    assert_eq!(code, Some(143), "{lines:#?}");
    for (arn, region, id) in &web {
        let state = lab.instances_as(Some(arn), region);
        let found = state.iter().find(|i| i["id"] == id.as_str()).unwrap();
        assert_eq!(found["state"], "running", "{arn} {region}: {lines:#?}");
        let account = &arn[13..25];
        assert!(
            lines.contains(&format!(
                "[INFO] [{account}/{region}] Instance {id} now running !"
            )),
            "{lines:#?}"
        );
    }
}

#[test]
fn bad_fleet_input_is_exit_1_before_any_change() {
    let lab = Lab::start();
    seed_web(&lab, &role(ACCOUNTS[0]), REGION);
    let file = lab.dir.path().join("accounts.yml");
    std::fs::write(
        &file,
        format!(
            "accounts:\n- account_id: '{}'\n  name: prod\n  role: {}\n- account_id: '{}'\n  name: dev\n  role: arn:aws:iam::{}:user/ec2snap\n",
            ACCOUNTS[0],
            role(ACCOUNTS[0]),
            ACCOUNTS[1],
            ACCOUNTS[1]
        ),
    )
    .unwrap();
    // Issue 33 item 12 (found by the fault campaign): one account under two names ran two targets
    // on the same servers at once.
    let twice = lab.dir.path().join("twice.yml");
    std::fs::write(
        &twice,
        format!(
            "accounts:\n- account_id: '{0}'\n  name: prod\n  role: {1}\n- account_id: '{0}'\n  name: prod-again\n  role: {1}\n",
            ACCOUNTS[0],
            role(ACCOUNTS[0]),
        ),
    )
    .unwrap();
    // Issue 33 item 12: `regions: []` dropped the account without a word.
    let no_regions = lab.dir.path().join("no-regions.yml");
    std::fs::write(
        &no_regions,
        format!(
            "accounts:\n- account_id: '{}'\n  name: prod\n  role: {}\n  regions: []\n",
            ACCOUNTS[0],
            role(ACCOUNTS[0]),
        ),
    )
    .unwrap();
    let arn = role(ACCOUNTS[0]);
    for (args, want) in [
        (
            vec!["--accounts", no_regions.to_str().unwrap()],
            "line 5: accounts[0].regions: empty: name the account's regions",
        ),
        (
            vec!["--accounts", file.to_str().unwrap()],
            "line 7: accounts[1].role: \"arn:aws:iam::222222222222:user/ec2snap\" is not an IAM role ARN",
        ),
        (
            vec!["--accounts", twice.to_str().unwrap()],
            "account 111111111111 is given twice (\"prod\" and \"prod-again\")",
        ),
        (vec!["-r", "eu-moon-1", "--assume-role", &arn, "--assume-role", "arn:aws:iam::222222222222:role/x"], "Unknown region \"eu-moon-1\""),
        (vec!["--assume-role", "arn:aws:iam::12:role/x"], "--assume-role \"arn:aws:iam::12:role/x\" is not an IAM role ARN"),
    ] {
        lab.reset_stats();
        let mut all = vec!["-t", "Name", "web", "-u"];
        all.extend(args.iter().copied());
        let r = lab.run(&all);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(r.stderr.contains(want), "{args:?}: {r:?}");
        assert!(lab.writes().is_empty(), "{args:?}: {:?}", lab.writes());
    }
}

#[test]
fn an_instance_id_in_a_fleet_is_not_found_only_when_no_target_has_it() {
    let lab = Lab::start();
    let prod = seed_web(&lab, &role(ACCOUNTS[0]), REGION);
    seed_web(&lab, &role(ACCOUNTS[1]), REGION);
    let web = id_of(&prod, "web");
    let roles = role_args(&ACCOUNTS[..2]);
    let mut args: Vec<&str> = vec!["-i", &web, "-u"];
    args.extend(roles.iter().map(String::as_str));
    let r = lab.run(&args);
    // Account 111111111111 has it: snapshotted; 222222222222 has not: no error for that.
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("not found"), "{r:?}");
    assert_eq!(ids_in(&lab, &role(ACCOUNTS[0]), REGION).len(), 3, "{r:?}");
    // An id no target has: one ERROR for the run, exit 2.
    let mut args: Vec<&str> = vec!["-i", "i-0123456789abcdef0", "-u"];
    args.extend(roles.iter().map(String::as_str));
    let r = lab.run(&args);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(
        r.count(
            "[ERROR] Instance i-0123456789abcdef0 not found in any account and region of this run"
        ),
        1,
        "{r:?}"
    );
}
