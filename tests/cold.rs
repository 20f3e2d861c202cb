//! Cold snapshots: stop, snapshot, start, and the guarantee that an instance this run stopped is
//! running again at exit, whatever happened (failures, timeouts, signals).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::json;

#[test]
fn cold_cycle_logs_like_the_original_and_restarts() {
    let lab = Lab::start();
    let seeded =
        lab.seed(json!({"instances": [{"name": "db1", "volumes": [{"device": "/dev/sdb"}]}]}));
    let id = id_of(&seeded, "db1");
    let root = vol_of(&seeded, "db1", "/dev/sda1");
    let data = vol_of(&seeded, "db1", "/dev/sdb");
    lab.reset_stats();
    let r = lab.run(&["-t", "Name", "db1", "-H", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    let snaps = lab.snapshots();
    let sid = |vol: &str| {
        snaps.iter().find(|s| s["volume"] == vol).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let lines: Vec<String> = r.lines().into_iter().skip(3).collect();
    assert_eq!(
        lines,
        vec![
            format!("[INFO] Working on instance {id} (db1)"),
            "[INFO] Instance is going to be shutdown".to_string(),
            format!("[INFO] Instance {id} now stopped !"),
            format!(
                "[INFO] Cold snapshot made for {root}(/dev/sda1) - {}",
                sid(&root)
            ),
            format!(
                "[INFO] Cold snapshot made for {data}(/dev/sdb) - {}",
                sid(&data)
            ),
            "[INFO] Instance is going to be started".to_string(),
            format!("[INFO] Instance {id} now running !"),
        ]
    );
    assert!(snaps
        .iter()
        .all(|s| s["description"].as_str().unwrap().contains(" - Cold /dev/")));
    assert!(snaps.iter().all(|s| s["tags"]["type"] == "Cold"));
    assert_eq!(lab.instance_state(&id), "running");
    let stats = lab.stats();
    assert_eq!(
        (stats.get("StopInstances"), stats.get("StartInstances")),
        (Some(&1), Some(&1))
    );
}

#[test]
fn cold_dry_run_announces_and_calls_nothing() {
    let lab = Lab::start();
    let seeded = lab.seed(json!({"instances": [{"name": "db1"}]}));
    lab.reset_stats();
    let r = lab.run(&["-t", "Name", "db1", "-H"]);
    assert_eq!(r.code, 0, "{r:?}");
    let root = vol_of(&seeded, "db1", "/dev/sda1");
    assert_eq!(
        r.lines()[4..].to_vec(),
        vec![
            "[INFO] Instance is going to be shutdown".to_string(),
            format!("[INFO] Cold snapshot made for {root}(/dev/sda1)"),
            "[INFO] Instance is going to be started".to_string(),
        ]
    );
    assert!(lab.writes().is_empty(), "{:?}", lab.stats());
}

#[test]
fn stopped_instance_is_snapshotted_and_stays_stopped() {
    let lab = Lab::start();
    let seeded = lab.seed(json!({"instances": [{"name": "db1", "state": "stopped"}]}));
    let id = id_of(&seeded, "db1");
    lab.reset_stats();
    let r = lab.run(&["-t", "Name", "db1", "-H", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.count("[INFO] Cold snapshot made for"), 1);
    assert_eq!(r.count("[INFO] Instance is going"), 0, "{r:?}");
    assert_eq!(lab.instance_state(&id), "stopped");
    let stats = lab.stats();
    assert_eq!(
        (stats.get("StopInstances"), stats.get("StartInstances")),
        (None, None)
    );
}

#[test]
fn snapshot_failure_still_restarts() {
    let lab = Lab::start();
    let seeded =
        lab.seed(json!({"instances": [{"name": "db1", "volumes": [{"device": "/dev/sdb"}]}]}));
    let id = id_of(&seeded, "db1");
    lab.faults(json!([{"action": "CreateSnapshot", "status": 400, "code": "IncorrectState", "message": "nope"}]));
    let r = lab.run(&["-t", "Name", "db1", "-H", "-u"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.count("[CRITICAL] Cold snapshot failed for"), 2, "{r:?}");
    assert!(
        r.has(&format!("[INFO] Instance {id} now running !")),
        "{r:?}"
    );
    assert_eq!(r.stdout, error_summary(2, 0));
    assert_eq!(lab.instance_state(&id), "running");
}

#[test]
fn stop_timeout_starts_it_again_and_makes_no_snapshot() {
    let lab = Lab::start();
    let seeded = lab.seed(json!({"instances": [{"name": "db1"}]}));
    let id = id_of(&seeded, "db1");
    // The instance never looks stopped: the wait runs out.
    lab.faults(
        json!([{"action": "DescribeInstances", "skip": 1, "times": -1,
                       "rewrite": [["<name>stopped</name>", "<name>stopping</name>"]]}]),
    );
    let r = lab.run(&["-t", "Name", "db1", "-H", "-u", "-m", "2"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.has("[ERROR] Timeout exceded"), "{r:?}");
    assert!(r.stderr.contains("did not stop within 2 s"), "{r:?}");
    assert!(
        r.has(&format!("[INFO] Instance {id} now running !")),
        "{r:?}"
    );
    assert!(lab.snapshots().is_empty());
    assert_eq!(lab.instance_state(&id), "running");
    assert_eq!(lab.stats().get("StartInstances"), Some(&1));
}

#[test]
fn start_failure_is_retried() {
    let lab = Lab::start();
    let seeded = lab.seed(json!({"instances": [{"name": "db1"}]}));
    let id = id_of(&seeded, "db1");
    lab.faults(json!([{"action": "StartInstances", "times": 2, "status": 400, "code": "IncorrectInstanceState",
                       "message": "The instance is not in a state from which it can be started."}]));
    let r = lab.run(&["-t", "Name", "db1", "-H", "-u", "-m", "30"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.has(&format!("[INFO] Instance {id} now running !")),
        "{r:?}"
    );
    assert_eq!(lab.instance_state(&id), "running");
    assert_eq!(lab.stats().get("StartInstances"), Some(&3));
}

#[test]
fn start_that_never_works_is_critical_with_the_recovery_command() {
    let lab = Lab::start();
    let seeded = lab.seed(json!({"instances": [{"name": "db1"}]}));
    let id = id_of(&seeded, "db1");
    lab.faults(json!([{"action": "StartInstances", "status": 400, "code": "InsufficientInstanceCapacity", "message": "none left"}]));
    let r = lab.run(&["-t", "Name", "db1", "-H", "-u", "-m", "1"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.has("[CRITICAL] Instance failed to start: InsufficientInstanceCapacity: none left"),
        "{r:?}"
    );
    assert!(
        r.stderr
            .contains(&format!("aws ec2 start-instances --instance-ids {id}")),
        "{r:?}"
    );
}

/// Sends `signal` while the instance is stopped (CreateSnapshot is slowed down by the proxy to
/// widen that window) and checks the instance is running when the process has exited.
fn signal_in_stopped_window(signal: &str, want_code: i32) {
    let lab = Lab::start();
    let seeded = lab.seed(json!({"instances": [{"name": "db1", "volumes": [{"device": "/dev/sdb"}]}, {"name": "db2"}]}));
    let id = id_of(&seeded, "db1");
    let other = id_of(&seeded, "db2");
    lab.faults(json!([{"action": "CreateSnapshot", "delay": 5}]));
    let live = lab.spawn(&["-i", &id, "-i", &other, "-H", "-u"]);
    let first = id.clone().min(other.clone());
    live.wait_for(&format!("Instance {first} now stopped !"), 1);
    assert_eq!(lab.instance_state(&first), "stopped");
    live.signal(signal);
    let (code, lines) = live.finish();
    assert_eq!(code, Some(want_code), "{lines:#?}");
    assert_eq!(lab.instance_state(&first), "running", "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("[WARNING] Received SIG{signal}"))),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&format!("[INFO] Instance {first} now running !")),
        "{lines:#?}"
    );
    // No new work after the signal: the second instance was never touched.
    let second = if first == id { &other } else { &id };
    assert!(
        !lines
            .iter()
            .any(|l| l.contains(&format!("Working on instance {second}"))),
        "{lines:#?}"
    );
    assert_eq!(lab.instance_state(second), "running");
}

#[test]
fn sigterm_in_the_stopped_window_restarts_the_instance() {
    signal_in_stopped_window("TERM", 143);
}

#[test]
fn sigint_in_the_stopped_window_restarts_the_instance() {
    signal_in_stopped_window("INT", 130);
}

#[test]
fn sighup_in_the_stopped_window_restarts_the_instance() {
    signal_in_stopped_window("HUP", 129);
}
