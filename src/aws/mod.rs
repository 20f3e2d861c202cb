//! The only module that talks to AWS: builds the SDK client from the config and converts SDK types
//! into the plain domain structs of `model`.

use crate::config::credentials::{AwsSettings, Credentials};
use crate::model::{
    server_filters, Disk, Instance, InstanceState, Snapshot, SnapshotState, TagPattern, Tags,
};
use anyhow::{Context, Result};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use aws_sdk_ec2::Client;
use std::collections::HashMap;
use std::time::Duration;

/// EC2's own limits. Page sizes (the MaxResults parameter): DescribeInstances 1000,
/// DescribeVolumes 500, DescribeSnapshots 1000.
const INSTANCE_PAGE: i32 = 1000;
const VOLUME_PAGE: i32 = 500;
const SNAPSHOT_PAGE: i32 = 1000;
/// Values sent in one filter: 200, the filter limit EC2 documents. Used for the `instance-id`
/// filter of DescribeInstances and the `volume-id` filter of DescribeSnapshots.
const FILTER_VALUES: usize = 200;
/// Volume ids sent in the one `volume-id` filter of a DescribeVolumes call: 500, its page size,
/// so that one call answers for one batch. This is more than the 200 above; moto accepts it, real
/// EC2 has not been tried here (a filter, not the `VolumeIds` parameter, so that a volume deleted
/// meanwhile is simply missing instead of failing the call).
const VOLUME_IDS_PER_VOLUME_CALL: usize = 500;

/// A held or silent endpoint never hangs a run: each attempt of a request is abandoned after
/// `ATTEMPT_TIMEOUT` (a connection after `CONNECT_TIMEOUT`) and retried like a 5xx answer within
/// `--max-attempts`; a request with all its retries is abandoned after `OPERATION_TIMEOUT`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(180);

/// An AWS error reduced to what a person needs: its code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub code: Option<String>,
    pub message: String,
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{code}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for AwsError {}

impl AwsError {
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// Service errors keep their code and message; transport errors keep their whole cause chain
/// (the SDK's own Display says only "service error" or "dispatch failure").
impl<E, R> From<aws_sdk_ec2::error::SdkError<E, R>> for AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    fn from(err: aws_sdk_ec2::error::SdkError<E, R>) -> AwsError {
        match (err.code(), err.message()) {
            (Some(code), msg) => AwsError {
                code: Some(code.to_string()),
                message: msg.unwrap_or("(no message)").to_string(),
            },
            (None, _) => AwsError {
                code: None,
                message: cause_chain(&err),
            },
        }
    }
}

/// "dispatch failure: io error: ... Connection refused": each cause once, without Debug dumps.
fn cause_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

fn tags_of(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

fn filter(name: &str, values: impl IntoIterator<Item = String>) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().collect()))
        .build()
}

fn instance_of(i: &aws_sdk_ec2::types::Instance) -> Option<Instance> {
    let mut disks: Vec<Disk> = i
        .block_device_mappings()
        .iter()
        .filter_map(|m| {
            Some(Disk {
                volume_id: m.ebs()?.volume_id()?.to_string(),
                device: m.device_name()?.to_string(),
            })
        })
        .collect();
    disks.sort_by(|a, b| {
        a.device
            .cmp(&b.device)
            .then_with(|| a.volume_id.cmp(&b.volume_id))
    });
    Some(Instance {
        id: i.instance_id()?.to_string(),
        state: InstanceState::from_name(
            i.state()
                .and_then(|s| s.name())
                .map(|n| n.as_str())
                .unwrap_or(""),
        ),
        tags: tags_of(i.tags()),
        root_device: i.root_device_name().map(String::from),
        disks,
    })
}

fn snapshot_of(s: &aws_sdk_ec2::types::Snapshot) -> Option<Snapshot> {
    let start = s.start_time()?;
    Some(Snapshot {
        id: s.snapshot_id()?.to_string(),
        volume_id: s.volume_id().unwrap_or("").to_string(),
        start_time: chrono::DateTime::from_timestamp(start.secs(), start.subsec_nanos())?,
        state: SnapshotState::from_name(s.state().map(|st| st.as_str()).unwrap_or("")),
        tags: tags_of(s.tags()),
        description: s.description().unwrap_or("").to_string(),
    })
}

/// A call that changes something, described for its permission check (sent with `DryRun=true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write<'a> {
    CreateSnapshot {
        volume_id: &'a str,
        description: &'a str,
        tags: &'a Tags,
    },
    CreateSnapshots {
        instance_id: &'a str,
        exclude_boot: bool,
        description: &'a str,
        tags: &'a Tags,
    },
    DeleteSnapshot(&'a str),
    StopInstances(&'a str),
    StartInstances(&'a str),
    CopySnapshot {
        source_region: &'a str,
        source_id: &'a str,
        description: &'a str,
        tags: &'a Tags,
        kms_key: Option<&'a str>,
    },
}

/// What a changing call answered.
enum Sent {
    Snapshot(Option<String>),
    Set(Vec<(String, String)>),
    Done,
}

impl Write<'_> {
    /// The EC2 action's name.
    pub fn action(&self) -> &'static str {
        match self {
            Write::CreateSnapshot { .. } => "CreateSnapshot",
            Write::CreateSnapshots { .. } => "CreateSnapshots",
            Write::DeleteSnapshot(_) => "DeleteSnapshot",
            Write::StopInstances(_) => "StopInstances",
            Write::StartInstances(_) => "StartInstances",
            Write::CopySnapshot { .. } => "CopySnapshot",
        }
    }
}

/// Tags given to a snapshot in the call that creates it.
fn snapshot_tags(tags: &Tags) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(ResourceType::Snapshot)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

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

    /// The copies this tool made in this region (they carry `tag_key`).
    pub async fn snapshots_tagged(&self, tag_key: &str) -> Result<Vec<Snapshot>> {
        self.describe_snapshots(Some(vec![filter("tag-key", [tag_key.to_string()])]))
            .await
            .with_context(|| format!("Cannot list the copies in {}", self.region))
    }

    async fn describe_instances(&self, filters: Vec<Filter>) -> Result<Vec<Instance>, AwsError> {
        let mut pages = self
            .client
            .describe_instances()
            .set_filters(if filters.is_empty() {
                None
            } else {
                Some(filters)
            })
            .max_results(INSTANCE_PAGE)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page?;
            for r in page.reservations() {
                out.extend(r.instances().iter().filter_map(instance_of));
            }
        }
        Ok(out)
    }

    /// Every instance of the account in this region (`-i all`).
    pub async fn all_instances(&self) -> Result<Vec<Instance>> {
        self.describe_instances(vec![])
            .await
            .context("Cannot list instances")
    }

    /// Instances by id. A filter, not InstanceIds: an unknown id is then simply missing from
    /// the answer instead of failing the whole call.
    pub async fn instances_by_ids(&self, ids: &[String]) -> Result<Vec<Instance>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(FILTER_VALUES) {
            let found = self
                .describe_instances(vec![filter("instance-id", chunk.iter().cloned())])
                .await
                .with_context(|| format!("Cannot describe instances {}", chunk.join(", ")))?;
            out.extend(found);
        }
        Ok(out)
    }

    /// Instances narrowed by EC2 tag filters (the caller checks every pattern on the answer).
    pub async fn instances_by_tags(&self, patterns: &[TagPattern]) -> Result<Vec<Instance>> {
        let filters = server_filters(patterns)
            .into_iter()
            .map(|(name, value)| filter(&name, [value]))
            .collect();
        self.describe_instances(filters)
            .await
            .context("Cannot list instances by tags")
    }

    /// Instances that carry a tag with this key, whatever its value.
    pub async fn instances_with_tag_key(&self, key: &str) -> Result<Vec<Instance>> {
        self.describe_instances(vec![filter("tag-key", [key.to_string()])])
            .await
            .with_context(|| format!("Cannot list instances tagged {key}"))
    }

    /// Sets one tag on an instance.
    pub async fn tag_instance(&self, id: &str, key: &str, value: &str) -> Result<(), AwsError> {
        self.client
            .create_tags()
            .resources(id)
            .tags(Tag::builder().key(key).value(value).build())
            .send()
            .await?;
        Ok(())
    }

    /// Removes one tag (any value) from an instance.
    pub async fn untag_instance(&self, id: &str, key: &str) -> Result<(), AwsError> {
        self.client
            .delete_tags()
            .resources(id)
            .tags(Tag::builder().key(key).build())
            .send()
            .await?;
        Ok(())
    }

    /// The current state of one instance.
    pub async fn instance_state(&self, id: &str) -> Result<InstanceState, AwsError> {
        let out = self
            .client
            .describe_instances()
            .instance_ids(id)
            .send()
            .await?;
        let name = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find_map(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str()));
        Ok(InstanceState::from_name(name.unwrap_or("")))
    }

    /// Tags of each volume, in few calls.
    pub async fn volume_tags(&self, volume_ids: &[String]) -> Result<HashMap<String, Tags>> {
        let mut out = HashMap::new();
        for chunk in volume_ids.chunks(VOLUME_IDS_PER_VOLUME_CALL) {
            let mut pages = self
                .client
                .describe_volumes()
                .filters(filter("volume-id", chunk.iter().cloned()))
                .max_results(VOLUME_PAGE)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page
                    .map_err(AwsError::from)
                    .context("Cannot describe volumes")?;
                for v in page.volumes() {
                    if let Some(id) = v.volume_id() {
                        out.insert(id.to_string(), tags_of(v.tags()));
                    }
                }
            }
        }
        Ok(out)
    }

    /// This account's snapshots of these volumes, narrowed on the server by the first pattern of
    /// each `--snap-filter` tag (the caller checks them all).
    pub async fn snapshots_of(
        &self,
        volume_ids: &[String],
        snap_filter: &[TagPattern],
    ) -> Result<Vec<Snapshot>> {
        let tag_filters: Vec<Filter> = server_filters(snap_filter)
            .into_iter()
            .map(|(name, value)| filter(&name, [value]))
            .collect();
        let mut out = Vec::new();
        for chunk in volume_ids.chunks(FILTER_VALUES) {
            let mut filters = vec![filter("volume-id", chunk.iter().cloned())];
            filters.extend(tag_filters.iter().cloned());
            out.extend(self.describe_snapshots(Some(filters)).await?);
        }
        Ok(out)
    }

    /// Every snapshot this account owns in the region, in pages.
    /// The state and EC2's `Progress` (e.g. `40%`) of these snapshots, in batches (a filter: a
    /// snapshot gone meanwhile is just missing).
    pub async fn snapshot_progress(
        &self,
        ids: &[String],
    ) -> Result<Vec<(String, SnapshotState, String)>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(FILTER_VALUES) {
            let mut pages = self
                .client
                .describe_snapshots()
                .owner_ids("self")
                .filters(filter("snapshot-id", chunk.iter().cloned()))
                .max_results(SNAPSHOT_PAGE)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page
                    .map_err(AwsError::from)
                    .context("Cannot look at the pending snapshots")?;
                out.extend(page.snapshots().iter().filter_map(|s| {
                    let state = SnapshotState::from_name(s.state()?.as_str());
                    let progress = s.progress().unwrap_or("").to_string();
                    Some((s.snapshot_id()?.to_string(), state, progress))
                }));
            }
        }
        Ok(out)
    }

    pub async fn own_snapshots(&self) -> Result<Vec<Snapshot>> {
        self.describe_snapshots(None).await
    }

    /// This account's snapshots that pass `filters`, every page.
    async fn describe_snapshots(&self, filters: Option<Vec<Filter>>) -> Result<Vec<Snapshot>> {
        let mut pages = self
            .client
            .describe_snapshots()
            .owner_ids("self")
            .set_filters(filters)
            .max_results(SNAPSHOT_PAGE)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(AwsError::from)
                .context("Cannot list snapshots")?;
            out.extend(page.snapshots().iter().filter_map(snapshot_of));
        }
        Ok(out)
    }

    /// Sends a changing call, for real or with `DryRun=true`: the one place each is built, so that
    /// a permission check asks for exactly what the real run sends.
    async fn send(&self, write: &Write<'_>, dry_run: bool) -> Result<Sent, AwsError> {
        let c = &self.client;
        Ok(match *write {
            Write::CreateSnapshot {
                volume_id,
                description,
                tags,
            } => {
                let call = c.create_snapshot().dry_run(dry_run).volume_id(volume_id);
                let out = call
                    .description(description)
                    .tag_specifications(snapshot_tags(tags))
                    .send()
                    .await?;
                Sent::Snapshot(out.snapshot_id().map(String::from))
            }
            Write::CreateSnapshots {
                instance_id,
                exclude_boot,
                description,
                tags,
            } => {
                let spec = aws_sdk_ec2::types::InstanceSpecification::builder()
                    .instance_id(instance_id)
                    .exclude_boot_volume(exclude_boot)
                    .build();
                let out = c
                    .create_snapshots()
                    .dry_run(dry_run)
                    .instance_specification(spec)
                    .description(description)
                    .copy_tags_from_source(aws_sdk_ec2::types::CopyTagsFromSource::Volume)
                    .tag_specifications(snapshot_tags(tags))
                    .send()
                    .await?;
                let pairs = out.snapshots().iter().filter_map(|s| {
                    Some((s.snapshot_id()?.to_string(), s.volume_id()?.to_string()))
                });
                Sent::Set(pairs.collect())
            }
            Write::DeleteSnapshot(id) => {
                let call = c.delete_snapshot().dry_run(dry_run).snapshot_id(id);
                call.send().await?;
                Sent::Done
            }
            Write::StopInstances(id) => {
                c.stop_instances()
                    .dry_run(dry_run)
                    .instance_ids(id)
                    .send()
                    .await?;
                Sent::Done
            }
            Write::StartInstances(id) => {
                c.start_instances()
                    .dry_run(dry_run)
                    .instance_ids(id)
                    .send()
                    .await?;
                Sent::Done
            }
            Write::CopySnapshot {
                source_region,
                source_id,
                description,
                tags,
                kms_key,
            } => {
                let mut call = c
                    .copy_snapshot()
                    .dry_run(dry_run)
                    .source_region(source_region)
                    .source_snapshot_id(source_id)
                    .description(description)
                    .tag_specifications(snapshot_tags(tags));
                if let Some(key) = kms_key {
                    call = call.encrypted(true).kms_key_id(key);
                }
                Sent::Snapshot(call.send().await?.snapshot_id().map(String::from))
            }
        })
    }

    /// Sends `write` with `DryRun=true`: EC2 checks the permission and changes nothing. Its
    /// answer as is (`DryRunOperation` when allowed, `UnauthorizedOperation` when not).
    pub async fn dry_run(&self, write: &Write<'_>) -> Result<(), AwsError> {
        self.send(write, true).await.map(|_| ())
    }

    /// A call that answers with a new snapshot's id.
    async fn new_snapshot(&self, write: &Write<'_>) -> Result<String, AwsError> {
        match self.send(write, false).await? {
            Sent::Snapshot(Some(id)) => Ok(id),
            _ => Err(AwsError {
                code: None,
                message: format!("{} answered without a snapshot id", write.action()),
            }),
        }
    }

    /// One snapshot, tagged in the same call so a crash can never leave it untagged.
    pub async fn create_snapshot(
        &self,
        volume_id: &str,
        description: &str,
        tags: &Tags,
    ) -> Result<String, AwsError> {
        self.new_snapshot(&Write::CreateSnapshot {
            volume_id,
            description,
            tags,
        })
        .await
    }

    /// Every volume of an instance (its root left out with `exclude_boot`) at one point in time:
    /// one CreateSnapshots call, each snapshot tagged in the same call with `tags` and, on AWS,
    /// its volume's own tags (`CopyTagsFromSource=volume`). The `(snapshot id, volume id)` pairs.
    pub async fn create_snapshot_set(
        &self,
        instance_id: &str,
        exclude_boot: bool,
        description: &str,
        tags: &Tags,
    ) -> Result<Vec<(String, String)>, AwsError> {
        let write = Write::CreateSnapshots {
            instance_id,
            exclude_boot,
            description,
            tags,
        };
        match self.send(&write, false).await? {
            Sent::Set(pairs) => Ok(pairs),
            _ => Ok(Vec::new()),
        }
    }

    /// Copies a snapshot of `source_region` into this client's region, tagged in the same call.
    /// With `kms_key`, the copy is encrypted with it; else an encrypted source stays encrypted
    /// with this region's default EBS key.
    pub async fn copy_snapshot(
        &self,
        source_region: &str,
        source_id: &str,
        description: &str,
        tags: &Tags,
        kms_key: Option<&str>,
    ) -> Result<String, AwsError> {
        self.new_snapshot(&Write::CopySnapshot {
            source_region,
            source_id,
            description,
            tags,
            kms_key,
        })
        .await
    }

    pub async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), AwsError> {
        self.send(&Write::DeleteSnapshot(snapshot_id), false)
            .await
            .map(|_| ())
    }

    pub async fn stop_instance(&self, id: &str) -> Result<(), AwsError> {
        self.send(&Write::StopInstances(id), false)
            .await
            .map(|_| ())
    }

    pub async fn start_instance(&self, id: &str) -> Result<(), AwsError> {
        self.send(&Write::StartInstances(id), false)
            .await
            .map(|_| ())
    }
}
