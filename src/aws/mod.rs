//! The AWS adapter, the only code that names the SDK: the client (credentials, region, endpoint,
//! retries and timeouts) here; `reads` (Describe calls), `changes` (the calls that change
//! something, and their DryRun permission checks), `errors` (an AWS error as code and message),
//! `convert` (SDK types into the plain structs of `model`), `settings` (what the client is built
//! from: plain data).

mod changes;
mod convert;
pub mod errors;
pub mod org;
mod reads;
pub mod settings;
pub mod sns;
mod ssm;

pub use changes::{Answer, Change};
pub use errors::AwsError;
use settings::is_http_url;
pub use settings::{AwsSettings, Credentials, Role};

use anyhow::Result;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::config::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_ec2::Client;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// A held or silent endpoint never hangs a run: each attempt of a request is abandoned after
/// `ATTEMPT_TIMEOUT` (a connection after `CONNECT_TIMEOUT`) and retried like a 5xx answer within
/// `--max-attempts`; a request with all its retries is abandoned after `OPERATION_TIMEOUT`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(180);

pub struct Ec2 {
    client: Client,
    /// SSM Run Command (`--freeze ssm`), with the same credentials, endpoint and retries.
    ssm: aws_sdk_ssm::Client,
    /// STS: the account these credentials act in (`--vault-role`).
    sts: aws_sdk_sts::Client,
    region: String,
}
/// A role's session, shared by every client of this process that works as that role (the
/// targets of one account, one per region): asked of STS once, then renewed by one cache before
/// it expires, instead of one AssumeRole per target. A refusal is kept too, as its text.
type Session = Arc<tokio::sync::OnceCell<Result<SharedCredentialsProvider, String>>>;

/// The sessions by role and endpoint.
type Sessions = Mutex<HashMap<(Role, Option<String>), Session>>;
static SESSIONS: OnceLock<Sessions> = OnceLock::new();

/// The one credentials cache of the role sessions: a session's provider is its partition.
static SESSION_CACHE: OnceLock<aws_sdk_ec2::config::SharedIdentityCache> = OnceLock::new();

/// `sdk` with the credentials of `role`, asked of STS with the base credentials of `sdk` (and its
/// endpoint URL, as the SDKs use `AWS_ENDPOINT_URL` for STS too). They are asked for once per
/// process and role, so that a refused role is one clear error; the shared cache renews them
/// before they expire.
async fn assumed(
    sdk: aws_config::SdkConfig,
    role: &Role,
    endpoint: Option<&str>,
) -> Result<aws_config::SdkConfig> {
    let session = {
        let sessions = SESSIONS.get_or_init(Default::default);
        // A panic elsewhere while holding the lock leaves the map as it was: still usable.
        let mut sessions = sessions.lock().unwrap_or_else(|e| e.into_inner());
        let key = (role.clone(), endpoint.map(String::from));
        Arc::clone(sessions.entry(key).or_default())
    };
    let provider = session
        .get_or_init(|| async {
            let mut builder = aws_config::sts::AssumeRoleProvider::builder(role.arn.clone())
                .session_name(role.session_name.clone())
                .configure(&sdk);
            if let Some(id) = &role.external_id {
                builder = builder.external_id(id.clone());
            }
            let provider = Arc::new(builder.build().await);
            let first = match provider.provide_credentials().await {
                Ok(credentials) => Mutex::new(Some(credentials)),
                Err(e) => return Err(AwsError::describe(&e)),
            };
            // The cache's first ask gets these, not a second session; later ones a new one.
            let renewing = aws_credential_types::credential_fn::provide_credentials_fn(move || {
                let first = first.lock().unwrap_or_else(|e| e.into_inner()).take();
                let provider = Arc::clone(&provider);
                async move {
                    match first {
                        Some(credentials) => Ok(credentials),
                        None => provider.provide_credentials().await,
                    }
                }
            });
            Ok(SharedCredentialsProvider::new(renewing))
        })
        .await
        .clone();
    let provider = match provider {
        Ok(p) => p,
        Err(why) => anyhow::bail!("Cannot assume role {}: {why}", role.arn),
    };
    let cache = SESSION_CACHE.get_or_init(|| aws_config::identity::IdentityCache::lazy().build());
    Ok(sdk
        .into_builder()
        .identity_cache(cache.clone())
        .credentials_provider(provider)
        .build())
}

/// The SDK's configuration of `cfg` before any role: its HTTP client, retries, timeouts,
/// region, endpoint and base credentials; and the region it resolved to.
async fn base_config(cfg: &AwsSettings) -> Result<(aws_config::SdkConfig, String)> {
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
    let mut sdk = loader.load().await;
    // An endpoint from AWS_ENDPOINT_URL or the profile's endpoint_url: empty means unset, as in
    // the AWS SDKs (the Rust SDK would panic on it); one that is not an http(s) URL is refused.
    if cfg.endpoint_url.is_none() {
        match sdk.endpoint_url().map(str::trim) {
                Some("") => {
                    let mut builder = sdk.into_builder();
                    builder.set_endpoint_url(None);
                    sdk = builder.build();
                }
                Some(url) if !is_http_url(url) => anyhow::bail!(
                    "The endpoint URL {url:?} (AWS_ENDPOINT_URL or the profile's endpoint_url) is not an http(s) URL"
                ),
                _ => {}
            }
    }
    let Some(region) = sdk.region().map(|r| r.to_string()) else {
        anyhow::bail!(
                "No AWS region: give -r REGION, aws_region in the credentials file, AWS_REGION, or a region in the AWS profile"
            );
    };
    Ok((sdk, region))
}

impl Ec2 {
    /// Builds the client. Nothing goes over the network here: credentials from the chain are
    /// resolved on the first request, and a region given by flag or file is used as is.
    pub async fn connect(cfg: &AwsSettings) -> Result<Ec2> {
        let (mut sdk, region) = base_config(cfg).await?;
        if let Some(role) = &cfg.role {
            sdk = assumed(sdk, role, cfg.endpoint_url.as_deref()).await?;
        }
        Ok(Ec2 {
            client: Client::new(&sdk),
            ssm: aws_sdk_ssm::Client::new(&sdk),
            sts: aws_sdk_sts::Client::new(&sdk),
            region,
        })
    }

    /// The regions enabled for the account (DescribeRegions); with `all`, the disabled ones too.
    pub async fn regions(&self, all: bool) -> Result<Vec<String>> {
        use anyhow::Context;
        let out = self
            .client
            .describe_regions()
            .all_regions(all)
            .send()
            .await
            .map_err(AwsError::from)
            .context("Cannot list the regions")?;
        let mut names: Vec<String> = out
            .regions()
            .iter()
            .filter_map(|r| r.region_name().map(String::from))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The same client (credentials, endpoint override, retries) for another region.
    pub fn in_region(&self, region: &str) -> Ec2 {
        let conf = self
            .client
            .config()
            .to_builder()
            .region(Region::new(region.to_string()))
            .build();
        let ssm = self
            .ssm
            .config()
            .to_builder()
            .region(aws_sdk_ssm::config::Region::new(region.to_string()))
            .build();
        Ec2 {
            client: Client::from_conf(conf),
            ssm: aws_sdk_ssm::Client::from_conf(ssm),
            sts: self.sts.clone(),
            region: region.to_string(),
        }
    }

    /// Who these credentials are (GetCallerIdentity's ARN): a hold says who put it.
    pub async fn caller_arn(&self) -> Result<String, AwsError> {
        let out = self.caller_identity().await?;
        Ok(out.arn().unwrap_or("(unknown)").to_string())
    }

    /// The account these credentials act in (STS GetCallerIdentity).
    pub async fn account(&self) -> Result<String, AwsError> {
        let out = self.caller_identity().await?;
        out.account().map(String::from).ok_or_else(|| AwsError {
            code: None,
            message: "GetCallerIdentity answered without an account".into(),
        })
    }

    async fn caller_identity(
        &self,
    ) -> Result<aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput, AwsError>
    {
        self.sts
            .get_caller_identity()
            .send()
            .await
            .map_err(AwsError::from)
    }

    pub fn region(&self) -> &str {
        &self.region
    }
}
