//! The calls that change something (snapshots made, copied and deleted, instances stopped,
//! started and tagged), each built in one place for the real send and its DryRun permission check.

use super::{AwsError, Ec2};
use crate::model::Tags;
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};

/// A call that changes something, described for its permission check (sent with `DryRun=true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<'a> {
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

impl Change<'_> {
    /// The EC2 action's name.
    pub fn action(&self) -> &'static str {
        match self {
            Change::CreateSnapshot { .. } => "CreateSnapshot",
            Change::CreateSnapshots { .. } => "CreateSnapshots",
            Change::DeleteSnapshot(_) => "DeleteSnapshot",
            Change::StopInstances(_) => "StopInstances",
            Change::StartInstances(_) => "StartInstances",
            Change::CopySnapshot { .. } => "CopySnapshot",
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

impl Ec2 {
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

    /// Sends a changing call, for real or with `DryRun=true`: the one place each is built, so that
    /// a permission check asks for exactly what the real run sends.
    async fn send(&self, write: &Change<'_>, dry_run: bool) -> Result<Sent, AwsError> {
        let c = &self.client;
        Ok(match *write {
            Change::CreateSnapshot {
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
            Change::CreateSnapshots {
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
            Change::DeleteSnapshot(id) => {
                let call = c.delete_snapshot().dry_run(dry_run).snapshot_id(id);
                call.send().await?;
                Sent::Done
            }
            Change::StopInstances(id) => {
                c.stop_instances()
                    .dry_run(dry_run)
                    .instance_ids(id)
                    .send()
                    .await?;
                Sent::Done
            }
            Change::StartInstances(id) => {
                c.start_instances()
                    .dry_run(dry_run)
                    .instance_ids(id)
                    .send()
                    .await?;
                Sent::Done
            }
            Change::CopySnapshot {
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
    pub async fn dry_run(&self, write: &Change<'_>) -> Result<(), AwsError> {
        self.send(write, true).await.map(|_| ())
    }

    /// A call that answers with a new snapshot's id.
    async fn new_snapshot(&self, write: &Change<'_>) -> Result<String, AwsError> {
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
        self.new_snapshot(&Change::CreateSnapshot {
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
        let write = Change::CreateSnapshots {
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
        self.new_snapshot(&Change::CopySnapshot {
            source_region,
            source_id,
            description,
            tags,
            kms_key,
        })
        .await
    }

    pub async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), AwsError> {
        self.send(&Change::DeleteSnapshot(snapshot_id), false)
            .await
            .map(|_| ())
    }

    pub async fn stop_instance(&self, id: &str) -> Result<(), AwsError> {
        self.send(&Change::StopInstances(id), false)
            .await
            .map(|_| ())
    }

    pub async fn start_instance(&self, id: &str) -> Result<(), AwsError> {
        self.send(&Change::StartInstances(id), false)
            .await
            .map(|_| ())
    }
}
