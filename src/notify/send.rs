//! Sends the notifications: the pings (`--notify`) and the SNS messages (`--sns-topic`), all at
//! once, each bounded (4 s a request, 2 attempts), the whole of a phase within 10 s. A failed
//! notification is a WARNING and changes no exit code; a URL is only ever shown masked.

use crate::aws::{sns, AwsSettings};
use crate::notify::{Ending, PingUrl, Targets, ATTEMPTS, PHASE_LIMIT, REQUEST_TIMEOUT};
use crate::output::log::Level;
use crate::output::messages::one_line;
use crate::output::record::{Failure, Kind, Record};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinSet;
use tracing::{info, warn};

/// Who a job tells, and with which credentials (SNS); `real`: a real run (a dry run pings
/// nothing and publishes nothing).
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    pub targets: Targets,
    pub aws: Option<AwsSettings>,
    pub job: String,
    pub real: bool,
}

impl Notifier {
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// At the start of a real job: `URL/start` for each `--notify` (a dry run says it pings none).
    pub async fn start(&self) {
        if !self.real {
            for u in &self.targets.urls {
                info!("Dry run: not pinging {} (a real run does)", u.masked());
            }
            return;
        }
        let mut tasks = JoinSet::new();
        for u in &self.targets.urls {
            tasks.spawn(ping(u.clone(), "/start", String::new()));
        }
        bounded(tasks).await;
    }

    /// A dry run that checks permissions: each topic is there and visible to these credentials
    /// (GetTopicAttributes: SNS has no DryRun); a refusal is recorded as the real run's failure
    /// would be, so that the dry run exits 2.
    pub async fn check(&self, record: &Record) {
        let Some(aws) = &self.aws else { return };
        for topic in &self.targets.topics {
            let checked = async {
                let client = sns::client(aws, &topic.region).await?;
                sns::check_topic(&client, &topic.arn)
                    .await
                    .map_err(anyhow::Error::from)
            };
            match tokio::time::timeout(PHASE_LIMIT, checked).await {
                Ok(Ok(())) => info!(
                    "Dry run: the job's outcome would be published to {}",
                    topic.arn
                ),
                Ok(Err(e)) => record.failed(
                    None,
                    Failure::other(
                        Level::Error,
                        format!("Dry run: cannot publish to {}: {e:#}", topic.arn),
                        "Publish",
                        &topic.arn,
                        Kind::Refused,
                        format!("{e:#}"),
                    ),
                ),
                Err(_) => warn!(
                    "Dry run: no answer from SNS about {} within {} s",
                    topic.arn,
                    PHASE_LIMIT.as_secs()
                ),
            }
        }
    }

    /// At the end: `URL` or `URL/fail` with the summary, and one SNS message per topic. Runs on a
    /// runtime of its own (the job's is gone), within `PHASE_LIMIT`.
    pub fn finish(&self, ending: &Ending) {
        if self.is_empty() || !self.real {
            return;
        }
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            warn!("Cannot notify: no async runtime");
            return;
        };
        runtime.block_on(self.end(ending));
        runtime.shutdown_background();
    }

    async fn end(&self, ending: &Ending) {
        let suffix = if ending.succeeded() { "" } else { "/fail" };
        let body = ending.ping_body();
        let mut tasks = JoinSet::new();
        for u in &self.targets.urls {
            tasks.spawn(ping(u.clone(), suffix, body.clone()));
        }
        if let Some(aws) = &self.aws {
            for topic in &self.targets.topics {
                let (aws, topic, ending) = (aws.clone(), topic.clone(), ending.clone());
                tasks.spawn(async move {
                    let sent = async {
                        let client = sns::client(&aws, &topic.region).await?;
                        sns::publish(
                            &client,
                            &topic.arn,
                            &ending.subject(),
                            &ending.sns_message(),
                            ending.exit_code,
                            &ending.job,
                        )
                        .await
                        .map_err(anyhow::Error::from)
                    };
                    match sent.await {
                        Ok(()) => info!("Published the outcome to {}", topic.arn),
                        Err(e) => warn!(
                            "Cannot publish the outcome to {} (the exit code is unchanged): {e:#}",
                            topic.arn
                        ),
                    }
                });
            }
        } else if !self.targets.topics.is_empty() {
            warn!("Cannot publish the outcome to SNS: the command line is wrong, so there are no credentials to publish with");
        }
        bounded(tasks).await;
    }
}

/// Waits for `tasks` (running together), within `PHASE_LIMIT` in all; those still running then
/// are dropped.
async fn bounded(mut tasks: JoinSet<()>) {
    let all = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(PHASE_LIMIT, all).await.is_err() {
        tasks.abort_all();
        warn!(
            "Notifications still unanswered after {} s: given up (the exit code is unchanged)",
            PHASE_LIMIT.as_secs()
        );
    }
}

/// One ping: a POST of `body` to `url` + `suffix`, 2 attempts of 4 s; a failure is a WARNING.
async fn ping(url: PingUrl, suffix: &'static str, body: String) {
    let target = url.with(suffix);
    let what = if suffix.is_empty() {
        "success"
    } else {
        suffix.trim_start_matches('/')
    };
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        match tokio::time::timeout(REQUEST_TIMEOUT, post(&target, body.clone())).await {
            Ok(Ok(status)) if status.is_success() => {
                info!("Notified {} ({what})", url.masked());
                return;
            }
            Ok(Ok(status)) => last = format!("HTTP {status}"),
            Ok(Err(e)) => last = e,
            Err(_) => last = format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()),
        }
        // A server's refusal (4xx) will not change on a second try.
        if last.starts_with("HTTP 4") || attempt == ATTEMPTS {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    warn!(
        "Cannot notify {} ({what}): {} (the exit code is unchanged)",
        url.masked(),
        one_line(&last)
    );
}

/// POSTs `body` (text/plain) to `url`; the answer's status, or what went wrong (never the URL).
async fn post(url: &str, body: String) -> Result<http::StatusCode, String> {
    let provider = rustls::crypto::ring::default_provider();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)
        .map_err(|e| format!("no TLS roots: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let request = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(
            http::header::USER_AGENT,
            concat!("ec2snap/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|_| "not a valid URL".to_string())?;
    let answer = client.request(request).await.map_err(|e| describe(&e))?;
    let status = answer.status();
    // Read (and drop) the answer so that the connection ends cleanly; bounded by the caller.
    let _ = answer.into_body().collect().await;
    Ok(status)
}

/// An error's causes, without the URL (hyper's errors do not carry it; kept so).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.dedup();
    parts.join(": ")
}
