//! The AWS adapter, the only code that names the SDK: the client (credentials, region, endpoint,
//! retries and timeouts) here; `reads` (Describe calls), `changes` (the calls that change
//! something, and their DryRun permission checks), `errors` (an AWS error as code and message),
//! `convert` (SDK types into the plain structs of `model`).

mod changes;
mod convert;
mod errors;
mod reads;

pub use changes::Change;
pub use errors::AwsError;

use anyhow::Result;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::Client;
use std::time::Duration;

/// What the AWS client is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    pub credentials: Credentials,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub max_attempts: u32,
}

/// Where credentials come from, after the legacy file and the flags were looked at.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Given by `-k/-a` or the legacy credentials file.
    Static { key_id: String, secret: String },
    /// The standard AWS chain, with an optional profile name.
    Chain { profile: Option<String> },
}

/// An access key id as the log shows it: its first and last four characters (`AKIA****WXYZ`),
/// enough to tell keys apart, not enough to use one; a short one is all stars.
pub fn masked(key_id: &str) -> String {
    let chars: Vec<char> = key_id.chars().collect();
    if chars.len() < 12 {
        return "*".repeat(chars.len().max(4));
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

// Hand-written so that no Debug print can ever show a secret, nor the whole key id.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Static { key_id, .. } => {
                write!(f, "Static {{ key_id: {}, secret: *** }}", masked(key_id))
            }
            Credentials::Chain { profile } => write!(f, "Chain {{ profile: {profile:?} }}"),
        }
    }
}

/// A held or silent endpoint never hangs a run: each attempt of a request is abandoned after
/// `ATTEMPT_TIMEOUT` (a connection after `CONNECT_TIMEOUT`) and retried like a 5xx answer within
/// `--max-attempts`; a request with all its retries is abandoned after `OPERATION_TIMEOUT`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(180);

pub struct Ec2 {
    client: Client,
    region: String,
}
impl Ec2 {
    /// Builds the client. Nothing goes over the network here: credentials from the chain are
    /// resolved on the first request, and a region given by flag or file is used as is.
    pub async fn connect(cfg: &AwsSettings) -> Result<Ec2> {
        // rustls with ring: the SDK's default client would pull aws-lc-rs, a long C build.
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            // Standard mode: throttled and 5xx answers retried with exponential backoff and jitter
            // (1 s base, 20 s at most). Not adaptive: its client-side rate limiter, after a
            // throttled answer to a client that has sent only a few requests, waits about 19 s
            // before each retry (measured: two RequestLimitExceeded answers to CopySnapshot, 38 s
            // instead of 0.7 s). `--parallel` already bounds the calls in flight.
            .retry_config(RetryConfig::standard().with_max_attempts(cfg.max_attempts))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            );
        if let Some(region) = &cfg.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &cfg.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        loader = match &cfg.credentials {
            Credentials::Static { key_id, secret } => loader.credentials_provider(
                aws_sdk_ec2::config::Credentials::new(key_id, secret, None, None, "ec2snap"),
            ),
            Credentials::Chain { profile: Some(p) } => loader.profile_name(p),
            Credentials::Chain { profile: None } => loader,
        };
        let sdk = loader.load().await;
        let Some(region) = sdk.region().map(|r| r.to_string()) else {
            anyhow::bail!(
                "No AWS region: give -r REGION, aws_region in the credentials file, AWS_REGION, or a region in the AWS profile"
            );
        };
        Ok(Ec2 {
            client: Client::new(&sdk),
            region,
        })
    }

    /// The same client (credentials, endpoint override, retries) for another region.
    pub fn in_region(&self, region: &str) -> Ec2 {
        let conf = self
            .client
            .config()
            .to_builder()
            .region(Region::new(region.to_string()))
            .build();
        Ec2 {
            client: Client::from_conf(conf),
            region: region.to_string(),
        }
    }

    pub fn region(&self) -> &str {
        &self.region
    }
}
