//! Defects an adversarial sweep found, each reproduced against moto and the fault proxy: closed and
//! full outputs, values that overflowed, signals during slow requests, credentials files, a refused
//! stop, tag limits, a killed cold run, and a log file that cannot be written.

mod common;
use common::*;
use serde_json::{json, Value};
use std::fs::File;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A write end whose reader is already gone: writing to it fails with EPIPE.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Stdio::from(writer)
}

fn dev_full() -> Stdio {
    Stdio::from(File::options().write(true).open("/dev/full").unwrap())
}

fn mkfifo(path: &std::path::Path) {
    let made = std::process::Command::new("mkfifo").arg(path).status();
    assert!(made.unwrap().success(), "mkfifo {}", path.display());
}

fn tags_of(instance: &Value) -> serde_json::Map<String, Value> {
    instance["tags"].as_object().cloned().unwrap_or_default()
}

fn instance<'a>(all: &'a [Value], id: &str) -> &'a Value {
    all.iter().find(|i| i["id"] == id).unwrap()
}

#[test]
fn closed_or_full_stdout_never_loses_the_exit_code() {
    let lab = Lab::start();
    let old = json!([{"device": "/dev/sdb", "age": 864000}]);
    let seeded = lab.seed(json!({"instances": [
        {"name": "web1", "volumes": [{"device": "/dev/sdb"}], "snapshots": old}]}));
    let data = vol_of(&seeded, "web1", "/dev/sdb");
    // The root volume's CreateSnapshot is refused; the data volume's goes through and its old
    // snapshot is pruned. Then the error summary meets a closed pipe.
    lab.faults(
        json!([{"action": "CreateSnapshot", "times": 1, "status": 403,
                       "code": "UnauthorizedOperation", "message": "not allowed"}]),
    );
    let r = run_cmd(
        lab.cmd()
            .args(["-t", "Name", "web1", "-u", "-g", "1", "d"])
            .stdout(closed_pipe()),
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(!r.stderr.contains("panicked"), "{r:?}");
    assert_eq!(r.deleting().len(), 1, "{r:?}");
    let left: Vec<Value> = lab.snapshots();
    assert_eq!(left.iter().filter(|s| s["volume"] == data).count(), 1);

    // The same summary into a full device.
    let r = run_cmd(
        lab.cmd()
            .args(["-i", "i-00000000000000000", "-u"])
            .stdout(dev_full()),
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(!r.stderr.contains("panicked"), "{r:?}");

    // -V and the help have nothing else to say: a failed write is exit 1, said on stderr.
    let dir = tempfile::tempdir().unwrap();
    let r = run_cmd(bare_cmd(dir.path()).arg("-V").stdout(dev_full()));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("cannot write to standard output"),
        "{r:?}"
    );
    let r = run_cmd(bare_cmd(dir.path()).stdout(dev_full()));
    assert_eq!(r.code, 1, "{r:?}");
    // A reader that went away is not an error of ours.
    let r = run_cmd(bare_cmd(dir.path()).arg("-V").stdout(closed_pipe()));
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn out_of_range_numbers_are_refused_before_any_call() {
    let lab = Lab::start();
    let seeded = lab.seed(json!({"instances": [{"name": "db1"}]}));
    let id = id_of(&seeded, "db1");
    lab.reset_stats();
    let cases: &[(&[&str], &str)] = &[
        (
            &["-m", "9223372036854775807"],
            "-m/--timeout must be at most 604800 seconds",
        ),
        (&["-m", "18446744073709551615"], "-m/--timeout"),
        (
            &["--parallel", "18446744073709551615"],
            "--parallel must be from 1 to 256",
        ),
        (&["--parallel", "2305843009213693952"], "--parallel"),
        (
            &["--max-attempts", "1000000000"],
            "--max-attempts must be from 1 to 100",
        ),
        (
            &["-e", &format!("{}:v", "k".repeat(129))],
            "longer than 128",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec!["-t", "Name", "db1", "-H", "-u"];
        args.extend_from_slice(extra);
        let r = lab.run(&args);
        assert_eq!(r.code, 1, "{extra:?}: {r:?}");
        assert!(r.stderr.contains(want), "{extra:?}: {r:?}");
        assert!(!r.stderr.contains("panicked"), "{r:?}");
    }
    assert_eq!(lab.stats(), Default::default(), "no request may be sent");
    assert_eq!(lab.instance_state(&id), "running");
    // The largest accepted -m works (the instance is stopped and started again).
    let r = lab.run(&["-t", "Name", "db1", "-H", "-u", "-m", "604800"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(lab.instance_state(&id), "running");
}

/// Sends SIGTERM two seconds after `ready` is logged; the exit code, the log and how long the
/// process took after the signal.
fn term_after(live: Live, ready: &str) -> (Option<i32>, Vec<String>, Duration) {
    live.wait_for(ready, 1);
    std::thread::sleep(Duration::from_secs(2));
    let sent = Instant::now();
    live.signal("TERM");
    let (code, lines) = live.finish();
    (code, lines, sent.elapsed())
}

#[test]
fn a_signal_cuts_a_held_request_and_its_retries() {
    let lab = Lab::start();
    lab.seed(fleet("web", 1));
    // DescribeSnapshots (retention's listing) is held for 100 s.
    lab.faults(json!([{"action": "DescribeSnapshots", "delay": 100}]));
    lab.reset_stats();
    let live = lab.spawn(&[
        "-t",
        "Name",
        "web*",
        "-g",
        "1",
        "d",
        "-u",
        "--max-attempts",
        "2",
    ]);
    let (code, lines, took) = term_after(live, "Getting instances information");
    assert_eq!(code, Some(143), "{lines:#?}");
    // Far below the 100 s hold: the request was abandoned, not waited for.
    assert!(took < Duration::from_secs(30), "{took:?} {lines:#?}");
    assert!(
        lines.contains(&"[ERROR] Interrupted by SIGTERM: the run stopped before its end".into()),
        "{lines:#?}"
    );
    assert_eq!(
        lab.stats().get("DescribeSnapshots"),
        Some(&1),
        "no retry after the signal"
    );
    assert_eq!(lab.stats().get("CreateSnapshot"), None);
}

#[test]
fn a_signal_cuts_retries_against_an_unreachable_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let live = spawn_cmd(
        bare_cmd(dir.path())
            .env("AWS_ACCESS_KEY_ID", "A")
            .env("AWS_SECRET_ACCESS_KEY", "S")
            .args(["--endpoint-url", &format!("http://127.0.0.1:{port}")])
            .args(["-r", REGION, "-i", "all", "--max-attempts", "100"]),
    );
    let (code, lines, took) = term_after(live, "Connecting to AWS");
    assert_eq!(code, Some(143), "{lines:#?}");
    assert!(took < Duration::from_secs(30), "{took:?} {lines:#?}");
}

#[test]
fn flags_that_give_everything_win_over_a_broken_credentials_file() {
    let lab = Lab::start();
    lab.seed(json!({"instances": [{"name": "front1"}]}));
    let home = tempfile::tempdir().unwrap();
    let flags = ["-k", "AKIAFLAG", "-a", "SECRETFLAG", "-r", "ap-south-1"];
    for text in ["[prod]\naws_region = x\n", "[default\nthis is = not ini ]]"] {
        std::fs::write(home.path().join(".aws_cred"), text).unwrap();
        lab.reset_stats();
        let r = run_cmd(
            bare_cmd(home.path())
                .args(["--endpoint-url", &lab.endpoint(), "-i", "all"])
                .args(flags),
        );
        assert_eq!(r.code, 0, "{text:?}: {r:?}");
        assert_eq!(lab.signer_keys(), ["AKIAFLAG/ap-south-1"]);
    }
    // Without -r the file is still needed, and its defect is named.
    let r = run_cmd(
        bare_cmd(home.path())
            .args(["--endpoint-url", &lab.endpoint(), "-i", "all"])
            .args(&flags[..4]),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not a valid INI file"), "{r:?}");
}

#[test]
fn an_explicit_credentials_file_must_be_a_readable_regular_file() {
    let lab = Lab::start();
    lab.seed(json!({"instances": [{"name": "front1"}]}));
    let home = tempfile::tempdir().unwrap();
    let fifo = home.path().join("cred.fifo");
    mkfifo(&fifo);
    let typo = home.path().join("aws_cred.typo");
    let twice = home.path().join("twice.ini");
    std::fs::write(
        &twice,
        "[default]\naws_region = eu-west-1\n[default]\naws_region = us-east-1\n",
    )
    .unwrap();
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let cases: Vec<(String, &str)> = vec![
        (s(home.path()), "is not a regular file (-c)"),
        (s(&fifo), "is not a regular file (-c)"),
        ("/dev/null".into(), "is not a regular file (-c)"),
        (s(&typo), "does not exist"),
        (s(&twice), "Section [default] appears twice"),
    ];
    lab.reset_stats();
    for (path, want) in cases {
        let r = run_cmd(bare_cmd(home.path()).args([
            "--endpoint-url",
            &lab.endpoint(),
            "-i",
            "all",
            "-c",
            &path,
        ]));
        assert_eq!(r.code, 1, "{path}: {r:?}");
        let line = r.lines().join("\n");
        assert!(
            line.contains(want) && line.contains(&path),
            "{path}: {line}"
        );
    }
    assert_eq!(lab.stats(), Default::default());
    // A byte order mark (Windows editors) is not part of the first section's name.
    let bom = home.path().join("bom.ini");
    std::fs::write(
        &bom,
        "\u{feff}[default]\naws_region = eu-west-1\naws_access_key_id = AKIABOM\naws_secret_access_key = S\n",
    )
    .unwrap();
    let r = run_cmd(bare_cmd(home.path()).args([
        "--endpoint-url",
        &lab.endpoint(),
        "-i",
        "all",
        "-c",
        &s(&bom),
    ]));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(lab.signer_keys(), ["AKIABOM/eu-west-1"]);
}

#[test]
fn a_refused_stop_does_not_start_what_was_never_stopped() {
    let lab = Lab::start();
    let seeded = lab.seed(json!({"instances": [{"name": "db1"}]}));
    let id = id_of(&seeded, "db1");
    lab.faults(
        json!([{"action": "StopInstances", "status": 403, "code": "UnauthorizedOperation",
                       "message": "You are not authorized to perform this operation."}]),
    );
    lab.reset_stats();
    let r = lab.run(&["-t", "Name", "db1", "-H", "-u"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.has("[CRITICAL] Instance failed to stop: UnauthorizedOperation: You are not authorized to perform this operation."),
        "{r:?}"
    );
    assert!(
        r.has(&format!(
            "[INFO] Instance {id} is still running: it was not stopped, so it is not started"
        )),
        "{r:?}"
    );
    assert!(!r.stderr.contains("may still be stopped"), "{r:?}");
    assert!(!r.stderr.contains("going to be started"), "{r:?}");
    assert_eq!(lab.stats().get("StartInstances"), None);
    assert_eq!(lab.instance_state(&id), "running");
    assert!(!tags_of(instance(&lab.instances(), &id)).contains_key("ec2snap:stopped-by"));
}

#[test]
fn a_failed_state_poll_is_not_called_a_failed_stop() {
    let lab = Lab::start();
    let seeded = lab.seed(json!({"instances": [{"name": "db1"}]}));
    let id = id_of(&seeded, "db1");
    // The stop-mark scan and the selection go through; the first state poll is refused.
    lab.faults(
        json!([{"action": "DescribeInstances", "skip": 2, "times": 1, "status": 403,
                       "code": "UnauthorizedOperation", "message": "no describe"}]),
    );
    let r = lab.run(&["-t", "Name", "db1", "-H", "-u"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.has(&format!("[CRITICAL] Cannot read the state of instance {id} after asking it to stop: UnauthorizedOperation: no describe")),
        "{r:?}"
    );
    assert!(!r.stderr.contains("Instance failed to stop"), "{r:?}");
    assert!(
        r.has(&format!("[INFO] Instance {id} now running !")),
        "{r:?}"
    );
    assert_eq!(lab.instance_state(&id), "running");
}

#[test]
fn a_volume_with_50_tags_still_gets_its_snapshot() {
    let lab = Lab::start();
    let many: serde_json::Map<String, Value> =
        (0..50).map(|k| (format!("t{k:02}"), json!("v"))).collect();
    let seeded = lab.seed(json!({"instances": [{"name": "web1",
        "volumes": [{"device": "/dev/sdb", "tags": many}]}]}));
    let data = vol_of(&seeded, "web1", "/dev/sdb");
    let r = lab.run(&[
        "-t",
        "Name",
        "web1",
        "-o",
        "-u",
        "-e",
        "backup:yes",
        "owner:ops",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.has(&format!("[WARNING] Volume {data}(/dev/sdb) has more tags than a snapshot can carry (50): not copied: t48, t49")),
        "{r:?}"
    );
    let snaps = lab.snapshots();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let tags = snaps[0]["tags"].as_object().unwrap();
    assert_eq!(tags.len(), 50);
    assert_eq!(
        (tags["backup"].as_str(), tags["owner"].as_str()),
        (Some("yes"), Some("ops"))
    );
    assert!(tags.contains_key("t47") && !tags.contains_key("t48"));
}

#[test]
fn cold_mode_with_nothing_to_snapshot_does_not_stop_the_instance() {
    let lab = Lab::start();
    let seeded = lab.seed(json!({"instances": [{"name": "db1"}]}));
    let id = id_of(&seeded, "db1");
    lab.reset_stats();
    let r = lab.run(&["-t", "Name", "db1", "-H", "-o", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("going to be shutdown"), "{r:?}");
    let stats = lab.stats();
    assert_eq!(
        (stats.get("StopInstances"), stats.get("StartInstances")),
        (None, None)
    );
    assert_eq!(lab.instance_state(&id), "running");
}

#[test]
fn a_cold_run_marks_the_instance_while_it_is_down_and_clears_the_mark() {
    let lab = Lab::start();
    let seeded = lab.seed(json!({"instances": [{"name": "db1"}]}));
    let id = id_of(&seeded, "db1");
    lab.faults(json!([{"action": "CreateSnapshot", "delay": 3}]));
    let live = lab.spawn(&["-t", "Name", "db1", "-H", "-u"]);
    live.wait_for("now stopped !", 1);
    let mark = tags_of(instance(&lab.instances(), &id))["ec2snap:stopped-by"].clone();
    let mark = mark.as_str().unwrap().to_string();
    assert!(mark.contains(" pid=") && mark.contains(" until="), "{mark}");
    let (code, lines) = live.finish();
    assert_eq!(code, Some(0), "{lines:#?}");
    assert!(!tags_of(instance(&lab.instances(), &id)).contains_key("ec2snap:stopped-by"));
    // --no-stop-tag: no tag, and no scan for marked instances.
    lab.clear_faults();
    lab.reset_stats();
    let r = lab.run(&["-t", "Name", "db1", "-H", "-u", "--no-stop-tag"]);
    assert_eq!(r.code, 0, "{r:?}");
    let stats = lab.stats();
    assert_eq!(
        (stats.get("CreateTags"), stats.get("DeleteTags")),
        (None, None),
        "{stats:?}"
    );
    assert_eq!(lab.instance_state(&id), "running");
}

#[test]
fn instances_a_killed_cold_run_left_stopped_are_started_by_the_next_run() {
    let lab = Lab::start();
    let seeded =
        lab.seed(json!({"instances": [{"name": "db1"}, {"name": "db2"}, {"name": "other"}]}));
    let (db1, db2) = (id_of(&seeded, "db1"), id_of(&seeded, "db2"));
    lab.faults(json!([{"action": "CreateSnapshot", "delay": 60}]));
    let live = lab.spawn(&["-t", "Name", "db*", "-H", "-u", "--parallel", "2"]);
    live.wait_for("now stopped !", 2);
    live.signal("KILL");
    let (code, _) = live.finish();
    assert_eq!(code, None, "killed");
    lab.clear_faults();
    assert_eq!(
        (lab.instance_state(&db1), lab.instance_state(&db2)),
        ("stopped".into(), "stopped".into())
    );
    // A dry run with another selection reports them and starts nothing.
    lab.reset_stats();
    let r = lab.run(&["-t", "Name", "other"]);
    assert_eq!(r.code, 0, "{r:?}");
    for id in [&db1, &db2] {
        assert!(
            r.lines()
                .iter()
                .any(|l| l.starts_with(&format!("[WARNING] Instance {id} ("))
                    && l.ends_with("run mode starts it again")),
            "{r:?}"
        );
        assert_eq!(lab.instance_state(id), "stopped");
    }
    assert_eq!(lab.stats().get("StartInstances"), None);
    // Any real run starts them and removes the mark.
    let r = lab.run(&["-t", "Name", "other", "-n", "-u"]);
    assert_eq!(r.code, 0, "{r:?}");
    let all = lab.instances();
    for id in [&db1, &db2] {
        assert!(
            r.lines()
                .iter()
                .any(|l| l.starts_with(&format!("[WARNING] Instance {id} ("))
                    && l.ends_with("starting it again")),
            "{r:?}"
        );
        assert!(
            r.has(&format!("[INFO] Instance {id} now running !")),
            "{r:?}"
        );
        assert_eq!(instance(&all, id)["state"], "running");
        assert!(!tags_of(instance(&all, id)).contains_key("ec2snap:stopped-by"));
    }
}

#[test]
fn a_log_file_that_cannot_be_written_is_not_silent() {
    let lab = Lab::start();
    lab.seed(json!({"instances": [{"name": "web1"}]}));
    let r = lab.run(&["-t", "Name", "web1", "-f", "/dev/full"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.count("[WARNING] Cannot write to log file /dev/full"),
        1,
        "{r:?}"
    );
    assert_eq!(r.working_on().len(), 1, "the run itself went on");
    // A FIFO nobody reads: an error at once, naming it, instead of a hang.
    let fifo = lab.dir.path().join("log.fifo");
    mkfifo(&fifo);
    lab.reset_stats();
    let r = lab.run(&["-t", "Name", "web1", "-f", fifo.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("Cannot open log file {} (-f)", fifo.display()))
            && r.stderr.contains("no process reads"),
        "{r:?}"
    );
    assert_eq!(lab.stats(), Default::default());
}
