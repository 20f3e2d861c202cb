//! `--parallel N`: several instances in flight at once, with the same results as one at a time.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::{json, Value};

const DAY: i64 = 86_400;

fn job() -> Value {
    let old = json!([{"device": "/dev/sdb", "age": 30 * DAY}, {"device": "/dev/sdb", "age": 20 * DAY}, {"device": "/dev/sdb", "age": DAY}]);
    let list: Vec<Value> = (1..=6)
        .map(|i| json!({"name": format!("app{i}"), "volumes": [{"device": "/dev/sdb"}], "snapshots": old}))
        .collect();
    json!({ "instances": list })
}

/// Runs the job on a fresh lab; returns the run, the snapshots left and the most requests in flight
/// (all, and writes).
fn run_job(parallel: &str, extra: &[&str]) -> (Run, Vec<Value>, (u64, u64)) {
    let lab = Lab::start();
    lab.seed(job());
    // Slow writes widen the window in which several instances can overlap.
    lab.faults(json!([{"action": "CreateSnapshot", "delay": 0.3}, {"action": "DeleteSnapshot", "delay": 0.2}]));
    lab.reset_stats();
    let mut args = vec![
        "-t",
        "Name",
        "app*",
        "-g",
        "7",
        "d",
        "-u",
        "--parallel",
        parallel,
    ];
    args.extend_from_slice(extra);
    let r = lab.run(&args);
    let snaps = lab.snapshots();
    let most = lab.max_in_flight();
    (r, snaps, most)
}

/// The log without ids and names (they differ from lab to lab), sorted: what happened, whatever
/// the order.
fn shape(r: &Run) -> Vec<String> {
    let mut v: Vec<String> = r
        .lines()
        .iter()
        .map(|l| {
            l.split(' ')
                .map(|w| {
                    if w.contains("i-") || w.contains("vol-") || w.contains("snap-") {
                        "ID"
                    } else if w.starts_with("(app") {
                        "(NAME)"
                    } else {
                        w
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn parallel_gives_the_same_results_as_one_at_a_time() {
    let (one, snaps_one, most_one) = run_job("1", &[]);
    let (four, snaps_four, most_four) = run_job("4", &[]);
    assert_eq!((one.code, four.code), (0, 0), "{one:?}\n{four:?}");
    // One at a time: one write at a time (only the two start-up reads may overlap).
    assert_eq!(most_one, (2, 1), "--parallel 1 in flight (all, writes)");
    let (all, writes) = most_four;
    assert!(
        writes >= 3,
        "--parallel 4 overlapped too little: {writes} writes at most"
    );
    assert!(all <= 4, "--parallel 4 had {all} requests in flight");
    assert_eq!(shape(&one), shape(&four));
    assert_eq!(snaps_one.len(), snaps_four.len());
    assert_eq!(
        snaps_four.len(),
        6 * 3,
        "each instance: 2 new, 1 young old one"
    );
    // Every line is whole: timestamp, level, text.
    for line in four.stderr.lines() {
        assert_ne!(strip_time(line), line, "{line}");
        assert!(strip_time(line).starts_with('['), "{line}");
    }
    // With one at a time, each instance's lines come together, in instance order.
    let working: Vec<usize> = one
        .lines()
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with(WORKING_ON))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(working.len(), 6);
    for pair in working.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            5,
            "working line, 2 snapshots, 2 deletions: {one:?}"
        );
    }
}

#[test]
fn parallel_cold_names_the_instance_and_restarts_all() {
    let lab = Lab::start();
    let seeded = lab.seed(fleet("db", 3));
    let r = lab.run(&["-t", "Name", "db*", "-H", "-u", "--parallel", "3"]);
    assert_eq!(r.code, 0, "{r:?}");
    for i in 1..=3 {
        let id = id_of(&seeded, &format!("db{i}"));
        assert!(
            r.has(&format!("[INFO] Instance is going to be shutdown ({id})")),
            "{r:?}"
        );
        assert!(
            r.has(&format!("[INFO] Instance {id} now running !")),
            "{r:?}"
        );
        assert_eq!(lab.instance_state(&id), "running");
    }
    assert_eq!(lab.snapshots().len(), 6);
}

#[test]
fn parallel_with_limit_and_errors_counts_like_sequential() {
    let (one, _, _) = run_job("1", &["-l", "4"]);
    let (three, _, _) = run_job("3", &["-l", "4"]);
    assert_eq!(shape(&one), shape(&three));
    assert_eq!(
        three.lines().last().unwrap(),
        "[INFO] The requested limit of snapshots has been reached: 4"
    );
    let lab = Lab::start();
    lab.seed(fleet("w", 5));
    lab.faults(json!([{"action": "CreateSnapshot", "times": 3, "status": 400, "code": "IncorrectState", "message": "x"}]));
    let r = lab.run(&["-t", "Name", "w*", "-u", "--parallel", "5"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.stdout, error_summary(3, 0));
    assert_eq!(lab.snapshots().len(), 10 - 3);
}

#[test]
fn signal_with_several_instances_stopped_restarts_them_all() {
    let lab = Lab::start();
    let seeded = lab.seed(fleet("db", 3));
    lab.faults(json!([{"action": "CreateSnapshot", "delay": 5}]));
    let live = lab.spawn(&["-t", "Name", "db*", "-H", "-u", "--parallel", "3"]);
    live.wait_for("now stopped !", 3);
    let ids: Vec<String> = (1..=3).map(|i| id_of(&seeded, &format!("db{i}"))).collect();
    for id in &ids {
        assert_eq!(lab.instance_state(id), "stopped");
    }
    live.signal("TERM");
    let (code, lines) = live.finish();
    assert_eq!(code, Some(143), "{lines:#?}");
    for id in &ids {
        assert_eq!(lab.instance_state(id), "running", "{lines:#?}");
        assert!(
            lines.contains(&format!("[INFO] Instance {id} now running !")),
            "{lines:#?}"
        );
    }
}
