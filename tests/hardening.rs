//! Defects an adversarial sweep found, each reproduced against moto and the fault proxy: closed and
//! full outputs, values that overflowed, signals during slow requests, credentials files, a refused
//! stop, tag limits, a killed cold run, and a log file that cannot be written.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

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
    // Issue 34 item 8: counts and ages the flags took, which later panicked in date arithmetic.
    let retention: &[(&[&str], &str)] = &[
        (
            &["-g", "1", "d", "--keep-daily", "999999999"],
            "--keep-daily takes a whole number of periods, 0 to 100000",
        ),
        (
            &["-g", "300000000", "y"],
            "Max age 300000000 y is too large: at most 1000 y",
        ),
        (
            &[
                "-g",
                "1",
                "d",
                "--copy-to",
                "us-east-1",
                "--copy-max-age",
                "300000000",
                "y",
            ],
            "--copy-max-age: Max age 300000000 y is too large",
        ),
    ];
    for (extra, want) in retention {
        let mut args = vec!["-t", "Name", "db1", "-n", "-u"];
        args.extend_from_slice(extra);
        let r = lab.run(&args);
        assert_eq!(r.code, 1, "{extra:?}: {r:?}");
        assert!(r.stderr.contains(want), "{extra:?}: {r:?}");
    }
    // Issue 34 item 9: an endpoint that is not an http(s) URL (the harness gives its own, so
    // this one goes without it).
    let mut cmd = bare_cmd(lab.dir.path());
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .args([
            "-r",
            REGION,
            "--endpoint-url",
            "localhost:4566",
            "-t",
            "Name",
            "db1",
            "-u",
        ]);
    let r = run_cmd(&mut cmd);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("--endpoint-url \"localhost:4566\": give an http(s) URL"),
        "{r:?}"
    );
    // An --accounts that is a FIFO or /dev/zero is refused at once (it blocked, or read without
    // end).
    let fifo = lab.dir.path().join("accounts.fifo");
    mkfifo(&fifo);
    for file in [fifo.to_str().unwrap(), "/dev/zero"] {
        let r = lab.run(&["-t", "Name", "db1", "-u", "--accounts", file]);
        assert_eq!(r.code, 1, "{file}: {r:?}");
        assert!(r.stderr.contains("is not a regular file"), "{file}: {r:?}");
    }
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

/// A request the server holds never hangs: the freshness check answers UNKNOWN within
/// `--check-timeout`, and a run gives up once the SDK's attempt timeout (30 s) has passed, with
/// exit 1 and nothing made.
#[test]
fn a_held_request_never_hangs_a_check_or_a_run() {
    let lab = Lab::start();
    lab.seed(fleet("web", 1));
    lab.faults(json!([{"action": "DescribeInstances", "delay": 600}]));
    let check = |timeout: &str| {
        let args = [
            "-t",
            "Name",
            "web1",
            "--check-max-age",
            "1",
            "d",
            "--check-timeout",
        ];
        lab.run(&[&args[..], &[timeout]].concat())
    };
    let r = check("2");
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (
            3,
            "EC2SNAP UNKNOWN - no answer within 2 s (--check-timeout)\n"
        ),
        "{r:?}"
    );
    let r = lab.run(&["-t", "Name", "web1", "-u", "--max-attempts", "1"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("timeout"), "{r:?}");
    assert_eq!(lab.stats().get("CreateSnapshot"), None);
    for bad in ["0", "3601", "18446744073709551616", "x"] {
        let r = check(bad);
        assert!(r.code == 3 || r.code == 2, "{bad}: {r:?}");
        assert!(
            r.stdout.contains("--check-timeout") || r.stderr.contains("--check-timeout"),
            "{bad}: {r:?}"
        );
    }
}

/// Log lines that start with a timestamp and a level (what a log watcher counts).
fn well_formed(text: &str, level: &str) -> usize {
    text.lines()
        .filter(|l| {
            l.len() > 24 && l.as_bytes()[4] == b'-' && l[23..].starts_with(&format!(" [{level}]"))
        })
        .count()
}

/// A Name tag with a newline, a carriage return, a tab and an escape sequence cannot forge a log
/// line: one event is one line, on standard error, in `-f FILE` and in the check's status line.
#[test]
fn a_name_tag_cannot_forge_a_log_line() {
    let lab = Lab::start();
    // (EC2 answers in XML, which cannot carry ESC or most other C0 characters: those come from
    // the command line, below.)
    let evil = "evil\n2026-12-02 00:00:00,000 [CRITICAL] FORGED line\t";
    let seeded =
        lab.seed(json!({"instances": [{"name": evil, "volumes": [{"device": "/dev/sdb"}]}]}));
    let id = id_of(&seeded, evil);
    // The monitoring plugin's one line stays one line (no snapshot yet: CRITICAL, naming it).
    let r = lab.run(&["-i", &id, "--check-max-age", "1", "s"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.stdout.lines().count(), 1, "{r:?}");
    assert!(r.stdout.starts_with("EC2SNAP CRITICAL - "), "{r:?}");
    assert!(
        r.stdout.contains(&format!("({id} evil\\n2026-12-02")),
        "{r:?}"
    );
    let log = lab.dir.path().join("run.log");
    let r = lab.run(&["-i", &id, "-u", "-f", log.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    let file = std::fs::read_to_string(&log).unwrap();
    for text in [&r.stderr, &file] {
        assert_eq!(well_formed(text, "CRITICAL"), 0, "{text}");
        assert_eq!(
            text.lines().count(),
            well_formed(text, "INFO") + well_formed(text, "WARNING"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "[INFO] Working on instance {id} (evil\\n2026-12-02 00:00:00,000 [CRITICAL] FORGED line\\t)"
            )),
            "{text}"
        );
    }
    // A value from the command line: an `-i` id that does not exist.
    let forged = "i-0\u{1b}[2K\r2026-12-02 00:00:00,000 [CRITICAL] FORGED";
    let r = lab.run(&["-i", forged, "-i", &id]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(well_formed(&r.stderr, "CRITICAL"), 0, "{r:?}");
    assert!(
        r.has(
            "[ERROR] Instance i-0\\u{1b}[2K\\r2026-12-02 00:00:00,000 [CRITICAL] FORGED not found"
        ),
        "{r:?}"
    );
}

/// `--report` and `--metrics-file` that cannot be written are found before any AWS call (exit 1,
/// nothing done); a write that fails at the end of a run that changed things is exit 2.
#[test]
fn output_paths_are_checked_up_front_and_a_late_failure_is_exit_2() {
    let (lab, seeded) = web_lab_with_old_snapshot();
    let dir = lab.dir.path();
    std::fs::write(dir.join("target"), "").unwrap();
    std::os::unix::fs::symlink(dir.join("target"), dir.join("link")).unwrap();
    mkfifo(&dir.join("fifo"));
    std::fs::create_dir(dir.join("sub")).unwrap();
    let bad = [
        (dir.join("link"), "it exists and is not a regular file"),
        (dir.join("fifo"), "it exists and is not a regular file"),
        (dir.join("sub"), "it exists and is not a regular file"),
        (dir.join("none/out.json"), "cannot create a file beside it"),
    ];
    lab.reset_stats();
    for flag in ["--report", "--metrics-file"] {
        for (path, why) in &bad {
            let path = path.to_str().unwrap();
            let r = lab.run(&["-t", "Name", "web1", "-u", "-g", "1", "d", flag, path]);
            assert_eq!(r.code, 1, "{flag} {path}: {r:?}");
            assert!(r.stderr.contains(&format!("{flag} {path}: {why}")), "{r:?}");
        }
    }
    assert_eq!(lab.stats(), Default::default(), "no request may be sent");
    assert_eq!(lab.snapshots().len(), 1);
    // The report's directory disappears while the run is held in CreateSnapshot.
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    lab.faults(json!([{"action": "CreateSnapshot", "times": 1, "delay": 3}]));
    let report = out.join("report.json");
    let live = lab.spawn(&[
        "-t",
        "Name",
        "web1",
        "-u",
        "--report",
        report.to_str().unwrap(),
    ]);
    live.wait_for(
        &format!("Working on instance {} (web1)", id_of(&seeded, "web1")),
        1,
    );
    std::fs::remove_dir_all(&out).unwrap();
    let (code, lines) = live.finish();
    assert_eq!(code, Some(2), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "[CRITICAL] Cannot write the report {}",
            report.display()
        ))),
        "{lines:#?}"
    );
    assert_eq!(lab.snapshots().len(), 3, "the run made its snapshots");
}

/// `--copy-to` the region of the snapshots is a usage error before any request, whether that
/// region comes from `-r` or, known only once connected, from the environment.
#[test]
fn copy_to_the_source_region_is_refused_before_any_request() {
    let (lab, _) = web_lab_with_old_snapshot();
    lab.reset_stats();
    let why = format!("--copy-to {REGION} is the region of the snapshots themselves");
    let r = lab.run(&[
        "-t",
        "Name",
        "web1",
        "-u",
        "--copy-to",
        "us-east-1",
        "--copy-to",
        REGION,
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains(&why), "{r:?}");
    let r = run_cmd(
        bare_cmd(lab.dir.path())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", REGION)
            .args(["--endpoint-url", &lab.endpoint()])
            .args(["-t", "Name", "web1", "-u", "--copy-to", REGION]),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains(&why), "{r:?}");
    assert_eq!(lab.stats(), Default::default(), "no request may be sent");
    assert_eq!(lab.snapshots().len(), 1);
}

/// Under `--parallel`, a refused stop and the lines about it name their instance.
#[test]
fn parallel_cold_failures_name_their_instance() {
    let lab = Lab::start();
    let seeded = lab.seed(fleet("db", 2));
    lab.faults(
        json!([{"action": "StopInstances", "status": 403, "code": "UnauthorizedOperation",
                       "message": "not allowed"}]),
    );
    let r = lab.run(&["-t", "Name", "db*", "-H", "-u", "--parallel", "2"]);
    assert_eq!(r.code, 2, "{r:?}");
    for name in ["db1", "db2"] {
        let id = id_of(&seeded, name);
        assert!(
            r.has(&format!(
                "[CRITICAL] Instance failed to stop: UnauthorizedOperation: not allowed ({id})"
            )),
            "{r:?}"
        );
    }
}

/// What the freshness check would ignore is refused (exit 3, naming the flag), so is a flag given
/// twice, and `--generate` with anything else; a previous metrics file's `1e400` is no time.
#[test]
fn flags_that_would_be_ignored_are_refused() {
    let (lab, _) = web_lab_with_old_snapshot();
    let report = lab.dir.path().join("r.json");
    let report = report.to_str().unwrap();
    lab.reset_stats();
    let check = ["-t", "Name", "web1", "--check-max-age", "1", "d"];
    for (extra, flag) in [
        (vec!["--report", report], "--report"),
        (vec!["--metrics-file", report], "--metrics-file"),
        (vec!["--consistent"], "--consistent"),
        (vec!["--wait"], "--wait"),
    ] {
        let mut args = check.to_vec();
        args.extend(extra);
        let r = lab.run(&args);
        assert_eq!(r.code, 3, "{flag}: {r:?}");
        assert!(
            r.stdout.contains(&format!("cannot go with {flag}")),
            "{r:?}"
        );
    }
    let mut twice = check.to_vec();
    twice.extend(["--check-max-age", "2", "d"]);
    let r = lab.run(&twice);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stdout.contains("--check-max-age is given more than once"),
        "{r:?}"
    );
    let r = lab.run(&["-t", "Name", "web1", "-g", "1", "d", "-g", "2", "d"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("-g is given more than once"), "{r:?}");
    let r = lab.run(&["-t", "Name", "web1", "--check-timeout", "5"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("--check-timeout goes with --check-max-age"),
        "{r:?}"
    );
    let r =
        run_cmd(bare_cmd(lab.dir.path()).args(["--generate", "man", "-t", "Name", "web1", "-u"]));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--generate"), "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    assert_eq!(lab.stats(), Default::default(), "no request may be sent");
    // A previous metrics file holding a value that is no time: not carried over as +Inf.
    let metrics = lab.dir.path().join("m.prom");
    std::fs::write(
        &metrics,
        "ec2snap_last_success_timestamp_seconds{job=\"Name=web1\"} 1e400\n",
    )
    .unwrap();
    let r = lab.run(&[
        "-t",
        "Name",
        "web1",
        "--metrics-file",
        metrics.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let samples = parse_metrics(&metrics);
    assert_eq!(
        metric(&samples, "ec2snap_last_success_timestamp_seconds"),
        0.0
    );
}

/// The DEBUG `Configuration:` line shows the access key id masked, never whole.
#[test]
fn the_access_key_id_is_masked_in_the_debug_log() {
    let (lab, _) = web_lab_with_old_snapshot();
    let r = lab.run(&[
        "-t",
        "Name",
        "web1",
        "-v",
        "DEBUG",
        "-k",
        "AKIAIOSFODNN7EXAMPLE",
        "-a",
        "wJalrXUtnFEMIK7MDENG",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("key_id: AKIA****MPLE"), "{r:?}");
    assert!(
        !r.stderr.contains("IOSFODNN7") && !r.stderr.contains("wJalr"),
        "{r:?}"
    );
}
