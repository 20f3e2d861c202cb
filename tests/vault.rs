//! The vault account (`--vault-role`): each backup copied into another account, re-encrypted with
//! its key, tagged and locked there, the share closed afterwards; the production side never
//! deletes in the vault; the vault's own retention (`vault-prune`) with the vault's credentials.
//! moto is taught (tests/emulator/moto_server.py) what AWS does: a shared snapshot is copyable by
//! the account it is shared with, an unshared one is not, and one encrypted with the default
//! aws/ebs key cannot be shared.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::{json, Value};

const VAULT: &str = "999999999999";
/// moto's account for the lab's static keys.
const PROD: &str = "123456789012";
const VAULT_KEY: &str = "arn:aws:kms:eu-west-1:999999999999:key/vault";

fn vault_role() -> String {
    format!("arn:aws:iam::{VAULT}:role/ec2snap-copy")
}

fn vault_copies(lab: &Lab) -> Vec<Value> {
    lab.snapshots_as(Some(&vault_role()), REGION)
}

/// web1 with a data volume (encrypted with the default key when `encrypted`).
fn web(lab: &Lab, encrypted: bool) {
    lab.seed(json!({"instances": [{"name": "web1",
        "volumes": [{"device": "/dev/sdb", "encrypted": encrypted}]}]}));
}

fn run_vault(lab: &Lab, extra: &[&str]) -> Run {
    let role = vault_role();
    let mut args = vec![
        "-t",
        "Name",
        "web1",
        "-o",
        "-u",
        "-g",
        "30",
        "d",
        "--wait",
        "--wait-interval",
        "1",
        "--vault-role",
        &role,
    ];
    args.extend_from_slice(extra);
    lab.run(&args)
}

/// The ModifySnapshotAttribute requests: (snapshot, operation).
fn shares(lab: &Lab) -> Vec<(String, String)> {
    lab.requests("ModifySnapshotAttribute")
        .iter()
        .map(|r| {
            (
                r["SnapshotId"].as_str().unwrap_or("").to_string(),
                r["OperationType"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn a_run_copies_its_backup_into_the_vault_locks_it_and_closes_the_share() {
    let lab = Lab::start();
    web(&lab, false);
    // The dry run changes nothing, here or in the vault (it checks the permissions instead),
    // and shows the copy of tonight's planned snapshot that the real run (--wait) makes.
    let role = vault_role();
    let dry = lab.run(&[
        "-t",
        "Name",
        "web1",
        "-o",
        "--wait",
        "--vault-role",
        &role,
        "--vault-kms-key",
        VAULT_KEY,
    ]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(lab.writes().is_empty(), "{:?}", lab.writes());
    assert!(vault_copies(&lab).is_empty());
    let planned: Vec<String> = dry
        .lines()
        .into_iter()
        .filter(|l| l.contains("[INFO] Copying snapshot (planned for vol-"))
        .collect();
    assert_eq!(planned.len(), 1, "{dry:?}");
    assert!(
        planned[0].ends_with(&format!("to vault {VAULT}/{REGION}")),
        "{planned:?}"
    );
    let r = run_vault(
        &lab,
        &["--vault-kms-key", VAULT_KEY, "--vault-lock", "governance"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let local = lab.snapshots();
    assert_eq!(local.len(), 1, "{local:?}");
    let source = local[0]["id"].as_str().unwrap().to_string();
    let copies = vault_copies(&lab);
    assert_eq!(copies.len(), 1, "{copies:?}");
    let copy = &copies[0];
    assert_eq!(copy["tags"]["ec2snap:source-snapshot"], source.as_str());
    assert_eq!(copy["tags"]["ec2snap:source-account"], PROD);
    assert_eq!(copy["tags"]["ec2snap:source-region"], REGION);
    assert_eq!(copy["encrypted"], true, "{copy}");
    assert_eq!(copy["kms_key"], VAULT_KEY, "{copy}");
    assert!(
        r.stderr.contains(&format!(
            "to vault {VAULT}/{REGION} - {}",
            copy["id"].as_str().unwrap()
        )),
        "{r:?}"
    );
    // Locked in the vault, by the vault role.
    let locks = lab.locks();
    assert!(locks.iter().any(|l| l["id"] == copy["id"]), "{locks:?}");
    // Shared, then the share closed once the vault copy was completed; the mark is gone.
    assert_eq!(
        shares(&lab),
        [
            (source.clone(), "add".to_string()),
            (source.clone(), "remove".to_string())
        ]
    );
    assert!(lab.snapshots()[0]["tags"]
        .get("ec2snap:vault-shared")
        .is_none());
    // The report counts the vault copy among the copies.
    // A second run copies its own new backup, and deletes nothing in the vault.
    lab.set_clock(86_400);
    let r = run_vault(&lab, &["--vault-kms-key", VAULT_KEY]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(vault_copies(&lab).len(), 2);
    assert!(lab.requests("DeleteSnapshot").is_empty());
}

#[test]
fn without_a_vault_copy_an_unshared_snapshot_cannot_be_copied_by_another_account() {
    // The emulator refuses what AWS refuses: the vault role copying a snapshot not shared with it.
    let lab = Lab::start();
    web(&lab, false);
    let r = lab.run(&["-t", "Name", "web1", "-o", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    let source = lab.snapshots()[0]["id"].as_str().unwrap().to_string();
    let out = lab.copy_as(&vault_role(), &source);
    assert_eq!(out["error"], "InvalidSnapshot.NotFound", "{out}");
}

#[test]
fn a_default_key_snapshot_needs_share_kms_key_and_goes_through_an_intermediate_copy() {
    let lab = Lab::start();
    web(&lab, true);
    let r = run_vault(&lab, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--share-kms-key"), "{r:?}");
    assert!(vault_copies(&lab).is_empty());
    // Tonight's local backup is there all the same.
    assert_eq!(lab.snapshots().len(), 1);

    let share_key = format!("arn:aws:kms:{REGION}:{PROD}:key/share");
    let r = run_vault(&lab, &["--share-kms-key", &share_key]);
    assert_eq!(r.code, 0, "{r:?}");
    let copies = vault_copies(&lab);
    assert_eq!(copies.len(), 1, "{copies:?}");
    // The intermediate copy was made, shared, and deleted once the vault copy was completed.
    let intermediate = lab
        .requests("CopySnapshot")
        .iter()
        .find(|c| c["KmsKeyId"] == share_key.as_str())
        .cloned()
        .expect("an intermediate copy");
    assert_eq!(intermediate["SourceRegion"], REGION);
    let local = lab.snapshots();
    assert!(
        local
            .iter()
            .all(|s| s["tags"].get("ec2snap:vault-intermediate").is_none()),
        "{local:?}"
    );
    assert_eq!(lab.requests("DeleteSnapshot").len(), 1);
}

#[test]
fn a_refused_vault_role_is_one_error_and_the_local_backup_stays() {
    let lab = Lab::start();
    web(&lab, false);
    lab.faults(
        json!([{"action": "AssumeRole", "status": 403, "code": "AccessDenied",
        "message": "not allowed", "times": 100}]),
    );
    let r = run_vault(&lab, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    let errors: Vec<_> = r
        .lines()
        .into_iter()
        .filter(|l| l.contains("[ERROR]"))
        .collect();
    assert_eq!(errors.len(), 1, "{r:?}");
    assert!(errors[0].contains("Cannot reach the vault"), "{errors:?}");
    assert_eq!(lab.snapshots().len(), 1);
}

#[test]
fn bad_vault_input_is_exit_1_before_any_change() {
    let lab = Lab::start();
    web(&lab, false);
    for (args, want) in [
        (
            vec!["--vault-role", "arn:aws:iam::123456789012:role/self"],
            "must be another account",
        ),
        (
            vec![
                "--vault-role",
                "arn:aws:iam::999999999999:role/v",
                "--vault-region",
                "eu-moon-1",
            ],
            "not a region enabled",
        ),
        (
            vec![
                "--vault-role",
                "arn:aws:iam::999999999999:role/v",
                "--vault-kms-key",
                "arn:aws:kms:eu-west-1:111111111111:key/k",
            ],
            "a key of account 111111111111",
        ),
        (
            vec!["--vault-lock", "governance", "-g", "1", "d"],
            "goes with --vault-role",
        ),
    ] {
        lab.reset_stats();
        let mut all = vec!["-t", "Name", "web1", "-u"];
        all.extend(args);
        let r = lab.run(&all);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stderr.contains(want), "{want}: {r:?}");
        assert!(lab.writes().is_empty(), "{:?}", lab.writes());
    }
}

#[test]
fn the_vaults_own_pruning_deletes_only_old_unlocked_vault_copies_and_keeps_the_newest() {
    let lab = Lab::start();
    web(&lab, false);
    // Three nights: 20, 10 and 0 days ago, each copied into the vault.
    for days in [20, 10, 0] {
        lab.set_clock(-days * 86_400);
        let r = run_vault(&lab, &[]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    lab.set_clock(0);
    let copies = vault_copies(&lab);
    assert_eq!(copies.len(), 3, "{copies:?}");
    let oldest = |c: &Vec<Value>| {
        let mut c = c.clone();
        c.sort_by(|a, b| a["start_time"].as_str().cmp(&b["start_time"].as_str()));
        c
    };
    let by_age = oldest(&copies);
    let (old, middle) = (
        by_age[0]["id"].as_str().unwrap(),
        by_age[1]["id"].as_str().unwrap(),
    );
    // Someone locked the middle one.
    lab.lock_outside(middle, 30);
    let prune = |extra: &[&str]| {
        let role = format!("arn:aws:iam::{VAULT}:role/ec2snap-prune");
        let mut args = vec![
            "vault-prune",
            "--assume-role",
            &role,
            "--vault-max-age",
            "5",
            "d",
        ];
        args.extend_from_slice(extra);
        lab.run(&args)
    };
    // A dry run deletes nothing.
    let r = prune(&[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(vault_copies(&lab).len(), 3);
    let r = prune(&["-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    let left: Vec<String> = vault_copies(&lab)
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!left.contains(&old.to_string()), "{left:?}");
    assert!(
        left.contains(&middle.to_string()),
        "the locked copy stays: {left:?}"
    );
    assert_eq!(left.len(), 2, "the newest stays: {left:?}");
    // Only vault copies were deleted: the production snapshots are all there.
    assert_eq!(lab.snapshots().len(), 3);
}

#[test]
fn restore_from_the_vault_makes_volumes_in_the_vault_account() {
    let lab = Lab::start();
    web(&lab, false);
    // Root and data volume: a whole backup, copied whole.
    let role = vault_role();
    let r = lab.run(&["-t", "Name", "web1", "-u", "--vault-role", &role]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(vault_copies(&lab).len(), 2);
    let zone = format!("{REGION}b");
    let args = [
        "restore",
        "-t",
        "Name",
        "web1",
        "--from-vault",
        "--in-vault",
        "--vault-role",
        &role,
        "--az",
        &zone,
    ];
    let vault_volumes = |lab: &Lab| {
        lab.ec2lab_volumes_as(&role)
            .into_iter()
            .filter(|v| v["tags"].get("ec2snap:restored-from").is_some())
            .collect::<Vec<_>>()
    };
    // A dry run makes nothing.
    let dry = lab.run(&args);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(vault_volumes(&lab).is_empty());
    let mut real = args.to_vec();
    real.push("-u");
    let r = lab.run(&real);
    assert_eq!(r.code, 0, "{r:?}");
    let made = vault_volumes(&lab);
    assert_eq!(made.len(), 2, "{made:?}");
    let copies: Vec<String> = vault_copies(&lab)
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    for v in &made {
        let from = v["tags"]["ec2snap:restored-from"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(copies.contains(&from), "{from} is no vault copy {copies:?}");
        assert_eq!(v["zone"], zone.as_str(), "{made:?}");
    }
    // Nothing was made in this account.
    assert!(lab
        .volumes()
        .iter()
        .all(|v| v["tags"].get("ec2snap:restored-from").is_none()));
    // Without --in-vault: said, not done.
    let r = lab.run(&[
        "restore",
        "-t",
        "Name",
        "web1",
        "--from-vault",
        "--vault-role",
        &role,
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("give --in-vault"), "{r:?}");
}

#[test]
fn the_check_can_require_a_recent_vault_copy() {
    let lab = Lab::start();
    web(&lab, false);
    let role = vault_role();
    let check = |lab: &Lab| {
        lab.run(&[
            "check",
            "-t",
            "Name",
            "web1",
            "-o",
            "--check-max-age",
            "1",
            "d",
            "--check-vault",
            "--vault-role",
            &role,
        ])
    };
    // A local backup, no vault copy yet: CRITICAL, saying so.
    let r = lab.run(&["-t", "Name", "web1", "-o", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = check(&lab);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("without a recent vault copy"), "{r:?}");
    assert!(r.stdout.contains("vault_stale=1"), "{r:?}");
    // Copied into the vault: OK.
    let r = run_vault(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = check(&lab);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("newest vault copies at most"), "{r:?}");
}

#[test]
fn list_shows_the_vault_copies_without_verdict_and_the_open_shares() {
    let lab = Lab::start();
    web(&lab, false);
    let role = vault_role();
    let r = run_vault(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let l = lab.run(&[
        "list",
        "-t",
        "Name",
        "web1",
        "-g",
        "1",
        "s",
        "--vault-role",
        &role,
        "--json",
    ]);
    assert_eq!(l.code, 0, "{l:?}");
    let doc: Value = serde_json::from_str(&l.stdout).unwrap_or_else(|e| panic!("{e}: {l:?}"));
    let text = doc.to_string();
    let copy = vault_copies(&lab)[0]["id"].as_str().unwrap().to_string();
    assert!(text.contains(&copy), "{text}");
    assert!(text.contains(&format!("vault {VAULT}/{REGION}")), "{text}");
    // A share left open (a run killed before closing it) is a problem list names.
    let source = lab.snapshots()[0]["id"].as_str().unwrap().to_string();
    lab.tag_snapshot(&source, "ec2snap:vault-shared", VAULT);
    let l = lab.run(&["list", "-t", "Name", "web1", "--json"]);
    assert!(l.stdout.contains("\"shared\""), "{l:?}");
}
