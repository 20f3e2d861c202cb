//! The deployment files of `deploy/`, checked as far as this machine allows: the Kubernetes
//! manifests and the AWS Batch definitions parse, have the shape a sharded run needs (an
//! Indexed Job with completions = parallelism = N, concurrencyPolicy Forbid, N = the flags'
//! --shard), and the binary runs with their arguments and the variables the schedulers set
//! (JOB_COMPLETION_INDEX, AWS_BATCH_JOB_ARRAY_INDEX) against moto. No cluster, no Batch queue and
//! no image build are run here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// Every document of the Kubernetes file, as JSON values.
fn manifests() -> Vec<Value> {
    let text = repo_file("deploy/kubernetes/ec2snap.yaml");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| {
            let v: serde_yaml_ng::Value = serde::Deserialize::deserialize(d).unwrap();
            serde_json::to_value(v).unwrap()
        })
        .collect()
}

/// Kubernetes' `$(VAR)` expansion of `arg` with `env`.
fn expand(arg: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = arg.to_string();
    for (k, v) in env {
        out = out.replace(&format!("$({k})"), v);
    }
    assert!(
        !out.contains("$("),
        "{arg}: a variable the pod does not have"
    );
    out
}

/// A lab with an Organization of two accounts, each with an instance "front1".
fn org_lab() -> Lab {
    let lab = Lab::start();
    let org = lab.organization(json!({"accounts": [["a", null], ["b", null]]}));
    for id in org["accounts"].as_object().unwrap().values() {
        let role = format!("arn:aws:iam::{}:role/ec2snap", id.as_str().unwrap());
        lab.seed_as(
            Some(&role),
            "eu-west-1",
            json!({"instances": [{"name": "front1", "volumes": [{"device": "/dev/sdb"}]}]}),
        );
    }
    lab
}

#[test]
fn the_kubernetes_cronjob_runs_n_indexed_shards_and_a_merge() {
    let docs = manifests();
    let kind = |k: &'static str| docs.iter().filter(move |d| d["kind"] == k);
    let config: BTreeMap<String, String> =
        serde_json::from_value(kind("ConfigMap").next().unwrap()["data"].clone()).unwrap();
    let n: usize = config["SHARDS"].parse().unwrap();
    let cron: Vec<&Value> = kind("CronJob").collect();
    assert_eq!(cron.len(), 2, "the workers and the merge");
    let workers = cron
        .iter()
        .find(|c| c["metadata"]["name"] == "ec2snap")
        .unwrap();
    assert_eq!(workers["spec"]["concurrencyPolicy"], "Forbid");
    let job = &workers["spec"]["jobTemplate"]["spec"];
    assert_eq!(job["completionMode"], "Indexed");
    assert_eq!(job["completions"], n);
    assert_eq!(job["parallelism"], n);
    let pod = &job["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "ec2snap");
    assert!(
        kind("ServiceAccount").next().unwrap()["metadata"]["annotations"]
            ["eks.amazonaws.com/role-arn"]
            .is_string()
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let args: Vec<String> = serde_json::from_value(pod["containers"][0]["args"].clone()).unwrap();

    // Each worker, as the Job controller starts it: JOB_COMPLETION_INDEX set, $(VAR) expanded.
    let lab = org_lab();
    let reports = lab.dir.path().join("reports");
    std::fs::create_dir_all(reports.join("shards")).unwrap();
    let mut made = 0;
    for k in 0..n {
        let mut env = config.clone();
        env.insert("JOB_COMPLETION_INDEX".into(), k.to_string());
        let argv: Vec<String> = args
            .iter()
            .map(|a| expand(a, &env).replace("/reports", reports.to_str().unwrap()))
            // The emulator's region: the lab's.
            .filter(|a| a != "-r" && a != &env["REGION"])
            .collect();
        let mut cmd = lab.cmd();
        cmd.env("JOB_COMPLETION_INDEX", k.to_string()).args(&argv);
        let r = run_cmd(&mut cmd);
        assert_eq!(r.code, 0, "worker {k}: {argv:?} {r:?}");
        assert!(r.stderr.contains(&format!("Shard {k}/{n}:")), "{r:?}");
        let report: Value = serde_json::from_str(
            &std::fs::read_to_string(reports.join(format!("shards/shard-{k}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(report["shard"], format!("{k}/{n}"));
        made += report["totals"]["snapshots_made"].as_u64().unwrap();
    }
    assert_eq!(made, 4, "each account's two volumes (root and data) once");

    // The merge, as its CronJob runs it.
    let merge = cron
        .iter()
        .find(|c| c["metadata"]["name"] == "ec2snap-merge")
        .unwrap();
    let margs: Vec<String> = serde_json::from_value(
        merge["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"].clone(),
    )
    .unwrap();
    let margs: Vec<String> = margs
        .iter()
        .map(|a| a.replace("/reports", reports.to_str().unwrap()))
        .collect();
    let r = run_cmd(bare_cmd(lab.dir.path()).args(&margs));
    assert_eq!(r.code, 0, "{margs:?} {r:?}");
    let fleet: Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("fleet.json")).unwrap())
            .unwrap();
    assert_eq!(fleet["totals"]["snapshots_made"], 4);
    assert_eq!(fleet["shards"]["missing"], json!([]));
}

#[test]
fn the_batch_array_job_runs_its_shards() {
    let def: Value = serde_json::from_str(&repo_file("deploy/batch/job-definition.json")).unwrap();
    assert_eq!(def["platformCapabilities"], json!(["FARGATE"]));
    let command: Vec<String> =
        serde_json::from_value(def["containerProperties"]["command"].clone()).unwrap();
    let at = command.iter().position(|a| a == "--shard").unwrap();
    let n: usize = command[at + 1].parse().unwrap();
    assert!(command
        .windows(2)
        .any(|w| w == ["--shard-index-from", "AWS_BATCH_JOB_ARRAY_INDEX"]));
    assert_ne!(def["containerProperties"]["user"], "0");
    let schedule: Value = serde_json::from_str(&repo_file("deploy/batch/schedule.json")).unwrap();
    assert_eq!(
        schedule["Target"]["Arn"],
        "arn:aws:scheduler:::aws-sdk:batch:submitJob"
    );
    let input: Value = serde_json::from_str(schedule["Target"]["Input"].as_str().unwrap()).unwrap();
    assert_eq!(
        input["ArrayProperties"]["Size"], n,
        "the array's size is the number of shards"
    );
    assert_eq!(input["JobDefinition"], def["jobDefinitionName"]);

    let lab = org_lab();
    let reports = lab.dir.path().join("reports");
    std::fs::create_dir_all(reports.join("shards")).unwrap();
    for k in 0..n {
        let argv: Vec<String> = command
            .iter()
            .map(|a| a.replace("/reports", reports.to_str().unwrap()))
            .filter(|a| a != "-r" && a != "eu-west-1")
            .collect();
        let mut cmd = lab.cmd();
        cmd.env("AWS_BATCH_JOB_ARRAY_INDEX", k.to_string())
            .args(&argv);
        let r = run_cmd(&mut cmd);
        assert_eq!(r.code, 0, "child {k}: {r:?}");
        assert!(
            reports.join(format!("shards/shard-{k}.json")).exists(),
            "{{shard}} in --report"
        );
    }
    let r = run_cmd(bare_cmd(lab.dir.path()).args([
        "report",
        "merge",
        reports.join("shards").to_str().unwrap(),
    ]));
    assert_eq!(r.code, 0, "{r:?}");
    let fleet: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        fleet["totals"]["snapshots_made"], 4,
        "each account's two volumes once"
    );
}

#[test]
fn the_image_is_static_empty_and_not_root() {
    let file = repo_file("deploy/Containerfile");
    let last_from = file.lines().rfind(|l| l.starts_with("FROM ")).unwrap();
    assert_eq!(last_from, "FROM scratch");
    assert!(file.contains("x86_64-unknown-linux-musl"));
    assert!(file.contains("/etc/ssl/certs/ca-certificates.crt"));
    let user = file.lines().find(|l| l.starts_with("USER ")).unwrap();
    assert!(!user.contains(" 0") && !user.contains("root"), "{user}");
}
