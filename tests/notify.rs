//! Notifications against a local HTTP listener (the healthchecks.io protocol) and moto's SNS
//! (an SQS queue subscribed to the topic): `/start` then success or `/fail` with the summary; an
//! unreachable or hanging URL is a WARNING that changes no exit code and delays the end by a
//! bounded time; the URL's token is never in the log; one SNS message per run.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "5c1e7a2d-secret-token";

/// What the listener does with a request.
#[derive(Clone, Copy)]
enum Mode {
    Answer,
    /// Accept, read, never answer.
    Hang,
}

/// A local HTTP server that records `(path, body)` of every request.
struct Listener {
    port: u16,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Listener {
    fn start(mode: Mode) -> Listener {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in server.incoming() {
                let Ok(mut stream) = stream else { continue };
                let record = Arc::clone(&record);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut first = String::new();
                    reader.read_line(&mut first).unwrap_or(0);
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap_or(());
                    let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
                    record
                        .lock()
                        .unwrap()
                        .push((path, String::from_utf8_lossy(&body).into_owned()));
                    match mode {
                        Mode::Answer => {
                            let _ = stream.write_all(
                                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nOK",
                            );
                        }
                        Mode::Hang => std::thread::sleep(Duration::from_secs(60)),
                    }
                });
            }
        });
        Listener { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/ping/{TOKEN}", self.port)
    }

    fn seen(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().clone()
    }

    fn paths(&self) -> Vec<String> {
        self.seen().into_iter().map(|(p, _)| p).collect()
    }
}

fn web(lab: &Lab) {
    lab.seed(json!({"instances": [{"name": "web", "volumes": [{"device": "/dev/sdb"}]}]}));
}

#[test]
fn a_run_pings_start_then_success_with_its_summary() {
    let lab = Lab::start();
    web(&lab);
    let hc = Listener::start(Mode::Answer);
    let r = lab.run(&["-t", "Name", "web", "-o", "-u", "--notify", &hc.url()]);
    assert_eq!(r.code, 0, "{r:?}");
    let start = format!("/ping/{TOKEN}/start");
    let done = format!("/ping/{TOKEN}");
    assert_eq!(hc.paths(), [start.clone(), done.clone()], "{r:?}");
    let body = &hc.seen()[1].1;
    assert!(body.contains("Name=web: OK"), "{body}");
    assert!(
        body.contains("exit code 0") && body.contains("snapshots made 1"),
        "{body}"
    );
    assert!(
        !r.stderr.contains(TOKEN) && !r.stdout.contains(TOKEN),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("http://127.0.0.1:"),
        "the log names the host: {r:?}"
    );

    // A failed snapshot: /start, then /fail with the error.
    let hc = Listener::start(Mode::Answer);
    lab.faults(json!([{"action": "CreateSnapshot", "status": 400, "code": "IncorrectState", "message": "nope"}]));
    let r = lab.run(&["-t", "Name", "web", "-o", "-u", "--notify", &hc.url()]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(hc.paths(), [start, format!("/ping/{TOKEN}/fail")], "{r:?}");
    let body = &hc.seen()[1].1;
    assert!(
        body.contains("ERRORS") && body.contains("IncorrectState"),
        "{body}"
    );
    assert!(!r.stderr.contains(TOKEN), "{r:?}");
}

#[test]
fn a_dry_run_pings_nothing_and_a_wrong_command_line_pings_fail() {
    let lab = Lab::start();
    web(&lab);
    let hc = Listener::start(Mode::Answer);
    let r = lab.run(&["-t", "Name", "web", "-o", "--notify", &hc.url()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(hc.paths().is_empty(), "{:?}", hc.paths());
    assert!(r.stderr.contains("Dry run: not pinging"), "{r:?}");
    // A flag that is wrong: exit 1, and the monitor hears it failed.
    let r = lab.run(&["-t", "Name", "web", "-d", "-1", "-u", "--notify", &hc.url()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(hc.paths(), [format!("/ping/{TOKEN}/fail")]);
    // A URL that is not one: exit 1 naming the flag, no token in the message.
    let r = lab.run(&[
        "-t",
        "Name",
        "web",
        "-u",
        "--notify",
        &format!("ftp://x/{TOKEN}"),
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("--notify") && !r.stderr.contains(TOKEN),
        "{r:?}"
    );
    let r = lab.run(&[
        "-t",
        "Name",
        "web",
        "-u",
        "--sns-topic",
        "arn:aws:sqs:eu-west-1:123456789012:q",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("--sns-topic"), "{r:?}");
    assert!(lab.snapshots().is_empty(), "nothing made");
}

#[test]
fn an_unreachable_or_hanging_url_is_a_warning_within_the_bound() {
    let lab = Lab::start();
    web(&lab);
    // Nothing listens on this port.
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!(
        "http://127.0.0.1:{}/ping/{TOKEN}",
        free.local_addr().unwrap().port()
    );
    drop(free);
    let r = lab.run(&["-t", "Name", "web", "-o", "-u", "--notify", &dead]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.lines()
            .iter()
            .any(|l| l.starts_with("[WARNING] Cannot notify")),
        "{r:?}"
    );
    assert!(!r.stderr.contains(TOKEN), "{r:?}");

    let hc = Listener::start(Mode::Hang);
    let started = Instant::now();
    let r = lab.run(&["-t", "Name", "web", "-o", "-u", "--notify", &hc.url()]);
    let took = started.elapsed();
    assert_eq!(r.code, 0, "the exit code is the run's: {r:?}");
    assert!(
        r.lines()
            .iter()
            .any(|l| l.starts_with("[WARNING] Cannot notify")),
        "{r:?}"
    );
    // Start and end each give up within 10 s (2 attempts of 4 s): never the listener's 60 s.
    assert!(took < Duration::from_secs(45), "{took:?}");
    assert_eq!(lab.snapshots().len(), 2, "both runs made their snapshot");
}

#[test]
fn sns_gets_one_message_per_run_with_the_exit_code() {
    let lab = Lab::start();
    web(&lab);
    let sns = lab.sns_topic("backups");
    let (topic, queue) = (
        sns["topic"].as_str().unwrap(),
        sns["queue"].as_str().unwrap(),
    );
    let report = lab.dir.path().join("r.json");
    let r = lab.run(&[
        "-t",
        "Name",
        "web",
        "-o",
        "-u",
        "--sns-topic",
        topic,
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    lab.faults(json!([{"action": "CreateSnapshot", "status": 400, "code": "IncorrectState", "message": "nope"}]));
    let r = lab.run(&["-t", "Name", "web", "-o", "-u", "--sns-topic", topic]);
    assert_eq!(r.code, 2, "{r:?}");
    let messages = lab.sqs_messages(queue);
    assert_eq!(messages.len(), 2, "{messages:?}");
    let codes: Vec<&str> = messages
        .iter()
        .map(|m| {
            m["MessageAttributes"]["exit_code"]["Value"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(codes, ["0", "2"], "{messages:?}");
    assert_eq!(messages[0]["Subject"], "ec2snap Name=web: OK");
    assert_eq!(messages[1]["Subject"], "ec2snap Name=web: ERRORS");
    assert_eq!(messages[0]["MessageAttributes"]["job"]["Value"], "Name=web");
    let text = messages[0]["Message"].as_str().unwrap();
    assert!(
        text.contains("\"snapshots_made\": 1"),
        "the report rides along: {text}"
    );
    // A dry run publishes nothing: it checks the topic is there.
    let r = lab.run(&["-t", "Name", "web", "-o", "--sns-topic", topic]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(lab.sqs_messages(queue).is_empty());
    let missing = topic.replace("backups", "nosuchtopic");
    let r = lab.run(&["-t", "Name", "web", "-o", "--sns-topic", &missing]);
    assert_eq!(
        r.code, 2,
        "the dry run says the real run could not publish: {r:?}"
    );
}

#[test]
fn a_check_tells_its_status() {
    let lab = Lab::start();
    web(&lab);
    let hc = Listener::start(Mode::Answer);
    let r = lab.run(&[
        "check",
        "-t",
        "Name",
        "web",
        "--check-max-age",
        "1",
        "d",
        "--notify",
        &hc.url(),
    ]);
    assert_eq!(r.code, 2, "no snapshot yet: CRITICAL: {r:?}");
    assert_eq!(hc.paths(), [format!("/ping/{TOKEN}/fail")]);
    assert!(
        hc.seen()[0].1.contains("EC2SNAP CRITICAL"),
        "{:?}",
        hc.seen()
    );
}
