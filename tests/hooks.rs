//! Application-consistent snapshots: real local hooks (shell scripts that write timestamped
//! marker files) around the real snapshot calls, whose arrival times the proxy records.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A hook script in the lab's directory; the command that runs it. `$D` in `body` is the
/// directory where it writes its markers.
fn hook(lab: &Lab, name: &str, body: &str) -> String {
    let dir = lab.dir.path();
    let path = dir.join(format!("{name}.sh"));
    std::fs::write(&path, format!("D={}\n{body}\n", dir.display())).unwrap();
    format!("sh {}", path.display())
}

fn marker(lab: &Lab, name: &str) -> PathBuf {
    lab.dir.path().join(name)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

/// `date +%s.%N` as written by a hook.
fn time_in(path: &Path) -> f64 {
    read(path).parse().unwrap()
}

fn db1(lab: &Lab) -> Value {
    lab.seed(
        json!({"instances": [{"name": "db1", "volumes": [{"device": "/dev/sdb"}],
        "snapshots": [{"device": "/dev/sdb", "age": 10 * 86_400}]}]}),
    )
}

/// The run of db1 with the hook scripts `pre` and `post` (bodies, as `hook` takes them) and
/// `extra` flags.
fn hooked(lab: &Lab, pre: &str, post: &str, extra: &[&str]) -> Vec<String> {
    let (pre, post) = (hook(lab, "pre", pre), hook(lab, "post", post));
    let mut args: Vec<String> = [
        "-t",
        "Name",
        "db1",
        "--pre-snapshot",
        &pre,
        "--post-snapshot",
        &post,
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

const PRE: &str = "env | grep '^EC2SNAP_' | sort > $D/pre_env\ndate +%s.%N > $D/pre_end";
const POST: &str = "date +%s.%N > $D/post_start\necho $EC2SNAP_SNAPSHOT_RESULT > $D/post_result";

#[test]
fn hooks_surround_the_snapshot_calls_and_tag_their_consistency() {
    let lab = Lab::start();
    let seeded = db1(&lab);
    let id = id_of(&seeded, "db1");
    let old = seeded_snapshot_ids(&seeded, "db1");
    let report = lab.dir.path().join("report.json");
    let r = lab.run(&strs(&hooked(
        &lab,
        PRE,
        POST,
        &["-u", "--report", report.to_str().unwrap()],
    )));
    assert_eq!(r.code, 0, "{r:?}");
    // pre → both CreateSnapshot requests → post.
    let calls = lab.requests("CreateSnapshot");
    assert_eq!(calls.len(), 2, "{calls:?}");
    let (pre_end, post_start) = (
        time_in(&marker(&lab, "pre_end")),
        time_in(&marker(&lab, "post_start")),
    );
    for c in &calls {
        let at = c["_time"].as_f64().unwrap();
        assert!(
            pre_end <= at && at <= post_start,
            "pre {pre_end} call {at} post {post_start}"
        );
    }
    assert_eq!(read(&marker(&lab, "post_result")), "ok");
    // The hook's environment.
    let env = read(&marker(&lab, "pre_env"));
    let root = vol_of(&seeded, "db1", "/dev/sda1");
    let data = vol_of(&seeded, "db1", "/dev/sdb");
    for want in [
        format!("EC2SNAP_INSTANCE_ID={id}"),
        "EC2SNAP_INSTANCE_NAME=db1".to_string(),
        format!("EC2SNAP_VOLUMES={root}=/dev/sda1,{data}=/dev/sdb"),
        "EC2SNAP_DRY_RUN=0".to_string(),
        "EC2SNAP_HOOK=pre".to_string(),
    ] {
        assert!(env.lines().any(|l| l == want), "{want} not in {env}");
    }
    assert!(env.contains("EC2SNAP_PRIVATE_IP="), "{env}");
    // Every new snapshot says it is application-consistent.
    let new = new_snapshots(&lab, &old);
    assert_eq!(new.len(), 2);
    for s in &new {
        assert_eq!(s["tags"]["ec2snap:consistency"], "application", "{s}");
    }
    assert!(
        r.has(&format!("[INFO] Running the pre-snapshot hook of {id}")),
        "{r:?}"
    );
    assert!(
        r.stderr.contains(&format!(
            "[INFO] Hooks of {id} done: snapshots application-consistent, held "
        )),
        "{r:?}"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let hooks = &doc["instances"][0]["hooks"];
    assert_eq!(hooks["consistency"], "application", "{hooks}");
    assert_eq!(
        (&hooks["pre"], &hooks["post"]),
        (&json!("succeeded"), &json!("succeeded"))
    );
    assert!(hooks["held_ms"].as_u64().unwrap() < 60_000, "{hooks}");
    // `list` shows it.
    let l = lab.run(&["list", "-t", "Name", "db1", "--json"]);
    let listed: Vec<Value> = serde_json::from_str::<Value>(&l.stdout).unwrap()["instances"][0]
        ["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| v["snapshots"].as_array().unwrap().clone())
        .filter(|s| s["consistency"] == "application")
        .collect();
    assert_eq!(listed.len(), 2, "{}", l.stdout);
}

#[test]
fn a_consistent_set_between_hooks_is_tagged_too() {
    let lab = Lab::start();
    db1(&lab);
    let r = lab.run(&strs(&hooked(&lab, PRE, POST, &["-u", "--consistent"])));
    assert_eq!(r.code, 0, "{r:?}");
    let calls = lab.requests("CreateSnapshots");
    assert_eq!(calls.len(), 1, "{calls:?}");
    let at = calls[0]["_time"].as_f64().unwrap();
    assert!(time_in(&marker(&lab, "pre_end")) <= at && at <= time_in(&marker(&lab, "post_start")));
    let tags: Vec<(String, String)> = (1..=20)
        .filter_map(|n| {
            let key = calls[0][format!("TagSpecification.1.Tag.{n}.Key")].as_str()?;
            let value = calls[0][format!("TagSpecification.1.Tag.{n}.Value")].as_str()?;
            Some((key.to_string(), value.to_string()))
        })
        .collect();
    assert!(
        tags.contains(&("ec2snap:consistency".into(), "application".into())),
        "{tags:?}"
    );
}

#[test]
fn the_post_hook_runs_after_a_refused_snapshot_call() {
    let lab = Lab::start();
    db1(&lab);
    lab.faults(
        json!([{"action": "CreateSnapshot", "times": -1, "status": 403,
        "code": "UnauthorizedOperation", "message": "not allowed"}]),
    );
    let r = lab.run(&strs(&hooked(&lab, PRE, POST, &["-u"])));
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(read(&marker(&lab, "post_result")), "failed");
    assert!(r.stderr.contains("done: no snapshot, held"), "{r:?}");
}

#[test]
fn a_sigterm_during_the_snapshot_call_still_runs_the_post_hook() {
    let lab = Lab::start();
    let seeded = db1(&lab);
    let id = id_of(&seeded, "db1");
    lab.faults(json!([{"action": "CreateSnapshot", "delay": 5, "times": -1}]));
    let live = lab.spawn(&strs(&hooked(&lab, PRE, POST, &["-u"])));
    live.wait_for(&format!("Running the pre-snapshot hook of {id}"), 1);
    wait_until(|| marker(&lab, "pre_end").exists());
    std::thread::sleep(Duration::from_millis(500));
    live.signal("TERM");
    let (code, lines) = live.finish();
    assert_eq!(code, Some(143), "{lines:#?}");
    assert!(
        lines.contains(&format!("[INFO] Running the post-snapshot hook of {id}")),
        "{lines:#?}"
    );
    assert_eq!(read(&marker(&lab, "post_result")), "failed");
}

#[test]
fn a_sigterm_during_a_hanging_pre_hook_kills_it_and_runs_the_post_hook() {
    let lab = Lab::start();
    db1(&lab);
    let live = lab.spawn(&strs(&hooked(
        &lab,
        "echo $$ > $D/pre_pid\nsleep 120",
        POST,
        &["-u"],
    )));
    wait_until(|| marker(&lab, "pre_pid").exists());
    live.signal("TERM");
    let (code, lines) = live.finish();
    assert_eq!(code, Some(143), "{lines:#?}");
    assert_eq!(read(&marker(&lab, "post_result")), "failed");
    let pid = read(&marker(&lab, "pre_pid"));
    wait_until(|| !Path::new(&format!("/proc/{pid}")).exists());
    assert!(lab.requests("CreateSnapshot").is_empty());
}

#[test]
fn a_hook_that_hangs_is_killed_at_the_timeout_and_the_snapshot_is_crash_consistent() {
    let lab = Lab::start();
    let seeded = db1(&lab);
    let id = id_of(&seeded, "db1");
    // The hook's shell waits for a child of its own: both go at the timeout.
    let started = Instant::now();
    let r = lab.run(&strs(&hooked(
        &lab,
        "sleep 300 &\necho $! > $D/child\nwait",
        POST,
        &["-u", "--hook-timeout", "1"],
    )));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(60));
    let child = read(&marker(&lab, "child"));
    wait_until(|| !Path::new(&format!("/proc/{child}")).exists());
    assert!(
        r.stderr.contains(&format!("[WARNING] The pre-snapshot hook of {id} was still running after 1 s (--hook-timeout): its process group was killed: snapshots made crash-consistent (--on-hook-failure crash-consistent)")),
        "{r:?}"
    );
    let crash: Vec<Value> = lab
        .snapshots()
        .into_iter()
        .filter(|s| s["tags"]["ec2snap:consistency"] == "crash")
        .collect();
    assert_eq!(crash.len(), 2, "{:?}", lab.snapshots());
    assert_eq!(read(&marker(&lab, "post_result")), "ok");
}

#[test]
fn on_hook_failure_skip_makes_no_snapshot_and_keeps_the_old_ones() {
    let lab = Lab::start();
    let seeded = db1(&lab);
    let id = id_of(&seeded, "db1");
    let old = seeded_snapshot_ids(&seeded, "db1");
    let report = lab.dir.path().join("report.json");
    let r = lab.run(&strs(&hooked(
        &lab,
        "echo cannot lock tables >&2\nexit 4",
        POST,
        &[
            "-u",
            "-g",
            "1",
            "d",
            "--on-hook-failure",
            "skip",
            "--report",
            report.to_str().unwrap(),
        ],
    )));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.has(&format!("[ERROR] The pre-snapshot hook of {id} exited with status 4 (its output: cannot lock tables): no snapshot of it this time, its old ones are kept (--on-hook-failure skip)")),
        "{r:?}"
    );
    assert!(lab.requests("CreateSnapshot").is_empty());
    assert_eq!(snapshot_ids(&lab.snapshots()), old.into_iter().collect());
    assert_eq!(read(&marker(&lab, "post_result")), "failed");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let inst = &doc["instances"][0];
    assert_eq!(inst["errors"][0]["kind"], "hook", "{inst}");
    assert_eq!(inst["errors"][0]["action"], "PreSnapshotHook", "{inst}");
    assert_eq!(inst["hooks"]["consistency"], "none", "{inst}");
    assert_eq!(doc["totals"]["snapshot_errors"], 1);
}

#[test]
fn a_dry_run_runs_the_hooks_only_when_asked() {
    let lab = Lab::start();
    db1(&lab);
    let r = lab.run(&strs(&hooked(&lab, PRE, POST, &[])));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.has("[INFO] Dry run: the snapshot hooks are not run (--hook-dry-run runs them, with EC2SNAP_DRY_RUN=1)"), "{r:?}");
    assert!(!marker(&lab, "pre_end").exists() && !marker(&lab, "post_start").exists());
    let r = lab.run(&strs(&hooked(&lab, PRE, POST, &["--hook-dry-run"])));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(read(&marker(&lab, "pre_env"))
        .lines()
        .any(|l| l == "EC2SNAP_DRY_RUN=1"));
    assert!(marker(&lab, "post_start").exists());
    assert!(lab.writes().is_empty(), "{:?}", lab.writes());
}

#[test]
fn hooks_refuse_what_makes_them_pointless() {
    let lab = Lab::start();
    db1(&lab);
    for (args, want) in [
        (
            &["-H", "--pre-snapshot", "true"][..],
            "-H stops the instance",
        ),
        (
            &["-n", "-d", "1", "--post-snapshot", "true"],
            "-n makes no snapshot",
        ),
        (
            &["--hook-timeout", "5"],
            "--hook-timeout goes with --pre-snapshot",
        ),
        (
            &["--pre-snapshot", "true", "--hook-timeout", "0"],
            "--hook-timeout must be from 1 to 3600",
        ),
        (
            &["--freeze", "ssm", "--pre-snapshot", "true"],
            "--freeze is a pre and post hook of its own",
        ),
    ] {
        let mut all = vec!["-t", "Name", "db1", "-u"];
        all.extend_from_slice(args);
        let r = lab.run(&all);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(r.stderr.contains(want), "{args:?}: {r:?}");
        assert!(lab.writes().is_empty());
    }
}

/// Waits (at most 30 s) until `ready`.
fn wait_until(ready: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < end, "timed out");
        std::thread::sleep(Duration::from_millis(50));
    }
}
