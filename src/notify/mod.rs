//! Notifications: who is told how a job ended. `--notify URL` speaks the healthchecks.io protocol
//! (`URL/start` at the start, `URL` on success, `URL/fail` otherwise, a short plain-text body);
//! `--sns-topic ARN` publishes one message at the end. Here the pure part: the parsed targets, the
//! texts, the bounds; `send` sends them.

pub mod send;

use crate::cli;
use anyhow::{bail, Result};

/// Each request's own limit; two attempts at most; the whole of a phase (the start, the end)
/// never takes longer than `PHASE_LIMIT`.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(4);
pub const PHASE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);
pub const ATTEMPTS: u32 = 2;

/// SNS: a message is at most 256 KiB (262,144 bytes), its attributes included; a subject at most
/// 100 printable ASCII characters.
pub const SNS_MAX_MESSAGE: usize = 262_144 - 1_024;
const SNS_MAX_SUBJECT: usize = 100;
/// The body of a ping: healthchecks keeps the first 100 kB; a summary is far shorter.
const PING_MAX_BODY: usize = 10_000;

/// A ping URL (`--notify`): http(s), whole; shown only as `masked`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingUrl(String);

impl PingUrl {
    pub fn parse(text: &str) -> Result<PingUrl> {
        let text = text.trim();
        // A scheme is case-insensitive (RFC 3986): `HTTPS://` is `https://`.
        let lowered;
        let text = match text.split_once("://") {
            Some((scheme, rest))
                if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
            {
                lowered = format!("{}://{rest}", scheme.to_ascii_lowercase());
                lowered.as_str()
            }
            _ => text,
        };
        if !crate::aws::settings::is_http_url(text) || text.contains(['?', '#']) {
            bail!(
                "--notify {} is not an http(s) URL without a query (e.g. https://hc-ping.com/UUID)",
                masked(text)
            );
        }
        Ok(PingUrl(text.trim_end_matches('/').to_string()))
    }

    /// The URL of one signal: `/start`, `` (success), `/fail`.
    pub fn with(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.0)
    }

    pub fn masked(&self) -> String {
        masked(&self.0)
    }
}

/// What a log line shows of a URL: its scheme and host, never its path (healthchecks' UUID,
/// a ping key) nor a password.
pub fn masked(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let host: String = host
        .chars()
        .filter(|c| !c.is_control() && !c.is_whitespace())
        .take(100)
        .collect();
    if scheme.is_empty() {
        "(not a URL)".to_string()
    } else {
        format!("{scheme}://{host}/***")
    }
}

/// An SNS topic (`--sns-topic`): `arn:PARTITION:sns:REGION:ACCOUNT:NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub arn: String,
    pub region: String,
}

impl Topic {
    pub fn parse(text: &str) -> Result<Topic> {
        let parts: Vec<&str> = text.trim().split(':').collect();
        let name_ok = |n: &str| {
            (1..=256).contains(&n.len())
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        };
        match parts.as_slice() {
            ["arn", partition, "sns", region, account, name]
                if partition.starts_with("aws")
                    && !region.is_empty()
                    && region
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && account.len() == 12
                    && account.chars().all(|c| c.is_ascii_digit())
                    && name_ok(name) =>
            {
                Ok(Topic {
                    arn: text.trim().to_string(),
                    region: region.to_string(),
                })
            }
            _ => bail!(
                "--sns-topic {:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)",
                crate::output::messages::one_line(text)
            ),
        }
    }
}

/// `--notify` and `--sns-topic`, checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Targets {
    pub urls: Vec<PingUrl>,
    pub topics: Vec<Topic>,
}

impl Targets {
    pub fn parse(cli: &cli::Notify) -> Result<Targets> {
        Ok(Targets {
            urls: cli
                .notify
                .iter()
                .map(|u| PingUrl::parse(u))
                .collect::<Result<_>>()?,
            topics: cli
                .sns_topic
                .iter()
                .map(|t| Topic::parse(t))
                .collect::<Result<_>>()?,
        })
    }

    /// The valid ones of a command line that may be wrong elsewhere (a failed job still says so).
    pub fn lenient(cli: &cli::Notify) -> Targets {
        Targets {
            urls: cli
                .notify
                .iter()
                .filter_map(|u| PingUrl::parse(u).ok())
                .collect(),
            topics: cli
                .sns_topic
                .iter()
                .filter_map(|t| Topic::parse(t).ok())
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.urls.is_empty() && self.topics.is_empty()
    }
}

/// How a job ended, as a notification says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// The job's name (`--metrics-job`, else the selection).
    pub job: String,
    /// `OK`, `ERRORS`, `FAILED` (a run); `OK`, `WARNING`, `CRITICAL`, `UNKNOWN` (a check).
    pub status: &'static str,
    pub exit_code: u8,
    /// A few lines: what was made and deleted, the errors, the exit code.
    pub summary: String,
    /// The run's JSON report, when there is one.
    pub report: Option<String>,
}

impl Ending {
    /// Success: the ping to `URL`; anything else `URL/fail`.
    pub fn succeeded(&self) -> bool {
        self.exit_code == 0
    }

    /// `OK`, `ERRORS` (exit 2: some of the work failed) or `FAILED` (it could not start, or a
    /// signal stopped it) of a run's exit code.
    pub fn status_of_run(exit_code: u8) -> &'static str {
        match exit_code {
            0 => "OK",
            2 => "ERRORS",
            _ => "FAILED",
        }
    }

    /// The SNS subject: `ec2snap JOB: STATUS`, printable ASCII, at most 100 characters.
    pub fn subject(&self) -> String {
        let job: String = self
            .job
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        let tail = format!(": {}", self.status);
        let room = SNS_MAX_SUBJECT - "ec2snap ".len() - tail.len();
        let job = if job.len() > room {
            format!("{}...", &job[..room - 3])
        } else {
            job
        };
        format!("ec2snap {job}{tail}")
    }

    /// The body of the end ping: the summary, bounded.
    pub fn ping_body(&self) -> String {
        cut(&self.summary, PING_MAX_BODY, "\n(cut)\n")
    }

    /// The SNS message: the summary, then the JSON report, within SNS's limit (cut, saying so).
    pub fn sns_message(&self) -> String {
        let mut text = self.summary.clone();
        if let Some(report) = &self.report {
            text.push_str("\n\nReport:\n");
            text.push_str(report);
        }
        cut(
            &text,
            SNS_MAX_MESSAGE,
            "\n(the report is cut here: SNS takes 256 KiB at most; --report FILE keeps it whole)\n",
        )
    }
}

/// `text` cut at a character boundary so that, with `note` after it, it is at most `max` bytes.
fn cut(text: &str, max: usize, note: &str) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub(note.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{note}", &text[..end])
}

/// A run's summary from its report's totals and errors (the first five error lines).
pub fn run_summary(report: &crate::output::report::Report, job: &str) -> String {
    let t = &report.totals;
    let mut lines = vec![
        format!(
            "ec2snap {job}: {}{}",
            Ending::status_of_run(report.exit_code),
            if report.dry_run { " (dry run)" } else { "" }
        ),
        format!(
            "exit code {}; instances {}, snapshots made {}, deleted {}, copies made {}, errors {}",
            report.exit_code,
            t.instances,
            t.snapshots_made,
            t.deleted,
            t.copies_made,
            t.snapshot_errors + t.deletion_errors
        ),
    ];
    let errors: Vec<String> = report
        .errors
        .iter()
        .chain(report.instances.iter().flat_map(|i| i.errors.iter()))
        .chain(report.targets.iter().flat_map(|t| {
            t.errors
                .iter()
                .chain(t.instances.iter().flat_map(|i| i.errors.iter()))
        }))
        .map(|e| {
            let code = e.code.as_deref().unwrap_or("");
            crate::output::messages::one_line(&format!(
                "{} {}: {code} {}",
                e.action, e.resource, e.message
            ))
            .chars()
            .take(300)
            .collect()
        })
        .collect();
    for e in errors.iter().take(5) {
        lines.push(format!("ERROR {e}"));
    }
    if errors.len() > 5 {
        lines.push(format!("... and {} more errors", errors.len() - 5));
    }
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_and_shown_without_their_path() {
        let u = PingUrl::parse("https://hc-ping.com/0f1e-secret/").unwrap();
        assert_eq!(u.with("/start"), "https://hc-ping.com/0f1e-secret/start");
        assert_eq!(u.masked(), "https://hc-ping.com/***");
        assert_eq!(
            PingUrl::parse("HTTPS://hc-ping.com/k").unwrap().with(""),
            "https://hc-ping.com/k"
        );
        assert_eq!(
            masked("http://user:pw@host:8000/ping/key"),
            "http://host:8000/***"
        );
        for bad in [
            "ftp://x/y",
            "hc-ping.com/x",
            "https://x/y?z=1",
            "https:///x",
            "",
        ] {
            let e = PingUrl::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--notify"), "{e}");
            assert!(!e.contains("z=1"), "{e}");
        }
    }

    #[test]
    fn topics_are_sns_arns() {
        let t = Topic::parse("arn:aws:sns:eu-west-1:123456789012:backups").unwrap();
        assert_eq!(t.region, "eu-west-1");
        for bad in [
            "arn:aws:sqs:eu-west-1:123456789012:q",
            "arn:aws:sns:eu-west-1:1234:backups",
            "backups",
            "arn:aws:sns::123456789012:backups",
            "arn:aws:sns:eu-west-1:123456789012:a b",
        ] {
            assert!(Topic::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subjects_and_messages_keep_sns_limits() {
        let mut e = Ending {
            job: "Name=front*\u{7}".repeat(20),
            status: "ERRORS",
            exit_code: 2,
            summary: "s".into(),
            report: Some("é".repeat(200_000)),
        };
        let subject = e.subject();
        assert!(
            subject.len() <= 100 && subject.ends_with(": ERRORS"),
            "{subject}"
        );
        assert!(subject.chars().all(|c| c.is_ascii_graphic() || c == ' '));
        let m = e.sns_message();
        assert!(m.len() <= SNS_MAX_MESSAGE && m.contains("cut here"));
        e.report = None;
        assert_eq!(e.sns_message(), "s");
        assert_eq!(Ending::status_of_run(130), "FAILED");
        assert_eq!(Ending::status_of_run(1), "FAILED");
    }
}
