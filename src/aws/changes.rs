//! The calls that change something (snapshots made, copied and deleted, instances stopped,
//! started and tagged, volumes made from snapshots, attached and deleted, AMIs registered), each built in one place for the real send and its DryRun permission check.

use super::{AwsError, Ec2};
use crate::model::{ImageSpec, Tags, VolumeSpec};
use aws_sdk_ec2::types::{
    ArchitectureValues, BlockDeviceMapping, BootModeValues, EbsBlockDevice, ResourceType, Tag,
    TagSpecification, VolumeType,
};

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
        /// Encrypted even without `kms_key` (with the destination account's default EBS key).
        encrypt: bool,
    },
    /// Shares a snapshot with an account (ModifySnapshotAttribute, createVolumePermission add).
    Share {
        snapshot_id: &'a str,
        account: &'a str,
    },
    /// Ends that share (createVolumePermission remove).
    Unshare {
        snapshot_id: &'a str,
        account: &'a str,
    },
    CreateVolume {
        snapshot_id: &'a str,
        spec: &'a VolumeSpec,
        tags: &'a Tags,
    },
    AttachVolume {
        volume_id: &'a str,
        instance_id: &'a str,
        device: &'a str,
    },
    DeleteVolume(&'a str),
    RegisterImage(&'a ImageSpec),
    /// `--archive-after`: to the archive tier.
    ArchiveSnapshot(&'a str),
    /// `restore` of an archived snapshot: back to the standard tier for `days` (hours to come).
    RestoreTier {
        snapshot_id: &'a str,
        days: i32,
    },
    /// One tag on resources (instances, snapshots): CreateTags.
    Tag {
        ids: &'a [String],
        key: &'a str,
        value: &'a str,
    },
    /// One tag (any value) off a resource: DeleteTags.
    Untag {
        id: &'a str,
        key: &'a str,
    },
    /// Several tags on resources in one call (a legal hold's): CreateTags.
    Tags {
        ids: &'a [String],
        tags: &'a Tags,
    },
    /// Several tags (any value) off a resource in one call (a hold's release): DeleteTags.
    Untags {
        id: &'a str,
        keys: &'a [&'a str],
    },
    /// `--lock`: `mode` is `governance` or `compliance`; `cool_off_hours` only for a compliance
    /// snapshot's first lock.
    LockSnapshot {
        snapshot_id: &'a str,
        mode: &'a str,
        days: u32,
        cool_off_hours: Option<u32>,
    },
}

/// What a changing call answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A snapshot's, a volume's or an image's id (`None`: the answer had none).
    Id(Option<String>),
    /// CreateSnapshots: `(snapshot id, volume id)` of each member.
    Set(Vec<(String, String)>),
    Done,
}

impl Answer {
    /// The id of what the call made; an error when the answer lacks it.
    pub fn id(self) -> Result<String, AwsError> {
        match self {
            Answer::Id(Some(id)) => Ok(id),
            _ => Err(AwsError {
                code: None,
                message: "the answer has no id of what was made".into(),
            }),
        }
    }

    /// CreateSnapshots' members.
    pub fn set(self) -> Vec<(String, String)> {
        match self {
            Answer::Set(pairs) => pairs,
            _ => Vec::new(),
        }
    }
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
            Change::Share { .. } | Change::Unshare { .. } => "ModifySnapshotAttribute",
            Change::CreateVolume { .. } => "CreateVolume",
            Change::AttachVolume { .. } => "AttachVolume",
            Change::DeleteVolume(_) => "DeleteVolume",
            Change::RegisterImage(_) => "RegisterImage",
            Change::LockSnapshot { .. } => "LockSnapshot",
            Change::ArchiveSnapshot(_) => "ModifySnapshotTier",
            Change::RestoreTier { .. } => "RestoreSnapshotTier",
            Change::Tag { .. } | Change::Tags { .. } => "CreateTags",
            Change::Untag { .. } | Change::Untags { .. } => "DeleteTags",
        }
    }

    /// Whether a dry run checks this change's permission (with `DryRun=true`): every change has
    /// one.
    pub fn has_dry_run(&self) -> bool {
        true
    }
}

/// Tags given to a snapshot in the call that creates it.
fn snapshot_tags(tags: &Tags) -> TagSpecification {
    tag_specification(ResourceType::Snapshot, tags)
}

/// Tags given to a resource in the call that creates it.
fn tag_specification(kind: ResourceType, tags: &Tags) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

/// One device of an AMI: its snapshot, with the source volume's type, size and performance;
/// deleted with the instance that boots from it.
fn image_disk(device: &str, snapshot_id: &str, spec: &VolumeSpec) -> BlockDeviceMapping {
    let ebs = EbsBlockDevice::builder()
        .snapshot_id(snapshot_id)
        .set_volume_size(spec.size_gib)
        .set_volume_type(spec.kind.as_deref().map(VolumeType::from))
        .set_iops(spec.iops)
        .set_throughput(spec.throughput)
        .delete_on_termination(true)
        .build();
    BlockDeviceMapping::builder()
        .device_name(device)
        .ebs(ebs)
        .build()
}

impl Ec2 {
    /// Sends `change` for real: only the gate (`act::gate`) calls it.
    pub async fn send_change(&self, change: &Change<'_>) -> Result<Answer, AwsError> {
        self.send(change, false).await
    }

    /// Sends `change` with `DryRun=true`: EC2 checks the permission and changes nothing. Its
    /// answer as is (`DryRunOperation` when allowed, `UnauthorizedOperation` when not). Only the
    /// gate calls it.
    pub async fn check_change(&self, change: &Change<'_>) -> Result<(), AwsError> {
        self.send(change, true).await.map(|_| ())
    }

    /// Sends a changing call, for real or with `DryRun=true`: the one place each is built, so that
    /// a permission check asks for exactly what the real run sends.
    async fn send(&self, write: &Change<'_>, dry_run: bool) -> Result<Answer, AwsError> {
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
                Answer::Id(out.snapshot_id().map(String::from))
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
                Answer::Set(pairs.collect())
            }
            Change::DeleteSnapshot(id) => {
                let call = c.delete_snapshot().dry_run(dry_run).snapshot_id(id);
                call.send().await?;
                Answer::Done
            }
            Change::RestoreTier { snapshot_id, days } => {
                c.restore_snapshot_tier()
                    .dry_run(dry_run)
                    .snapshot_id(snapshot_id)
                    .temporary_restore_days(days)
                    .send()
                    .await?;
                Answer::Done
            }
            Change::ArchiveSnapshot(id) => {
                c.modify_snapshot_tier()
                    .dry_run(dry_run)
                    .snapshot_id(id)
                    .storage_tier(aws_sdk_ec2::types::TargetStorageTier::Archive)
                    .send()
                    .await?;
                Answer::Done
            }
            Change::LockSnapshot {
                snapshot_id,
                mode,
                days,
                cool_off_hours,
            } => {
                let days = i32::try_from(days).unwrap_or(i32::MAX);
                let cool_off = cool_off_hours.map(|h| i32::try_from(h).unwrap_or(72));
                c.lock_snapshot()
                    .dry_run(dry_run)
                    .snapshot_id(snapshot_id)
                    .lock_mode(aws_sdk_ec2::types::LockMode::from(mode))
                    .lock_duration(days)
                    .set_cool_off_period(cool_off)
                    .send()
                    .await?;
                Answer::Done
            }
            Change::StopInstances(id) => {
                c.stop_instances()
                    .dry_run(dry_run)
                    .instance_ids(id)
                    .send()
                    .await?;
                Answer::Done
            }
            Change::StartInstances(id) => {
                c.start_instances()
                    .dry_run(dry_run)
                    .instance_ids(id)
                    .send()
                    .await?;
                Answer::Done
            }
            Change::CopySnapshot {
                source_region,
                source_id,
                description,
                tags,
                kms_key,
                encrypt,
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
                } else if encrypt {
                    call = call.encrypted(true);
                }
                Answer::Id(call.send().await?.snapshot_id().map(String::from))
            }
            Change::CreateVolume {
                snapshot_id,
                spec,
                tags,
            } => {
                let out = c
                    .create_volume()
                    .dry_run(dry_run)
                    .snapshot_id(snapshot_id)
                    .availability_zone(&spec.zone)
                    .set_volume_type(spec.kind.as_deref().map(VolumeType::from))
                    .set_size(spec.size_gib)
                    .set_iops(spec.iops)
                    .set_throughput(spec.throughput)
                    .tag_specifications(tag_specification(ResourceType::Volume, tags))
                    .send()
                    .await?;
                Answer::Id(out.volume_id().map(String::from))
            }
            Change::AttachVolume {
                volume_id,
                instance_id,
                device,
            } => {
                c.attach_volume()
                    .dry_run(dry_run)
                    .volume_id(volume_id)
                    .instance_id(instance_id)
                    .device(device)
                    .send()
                    .await?;
                Answer::Done
            }
            Change::DeleteVolume(id) => {
                c.delete_volume()
                    .dry_run(dry_run)
                    .volume_id(id)
                    .send()
                    .await?;
                Answer::Done
            }
            Change::RegisterImage(image) => {
                let disks = image
                    .disks
                    .iter()
                    .map(|(device, snapshot, spec)| image_disk(device, snapshot, spec));
                let out = c
                    .register_image()
                    .dry_run(dry_run)
                    .name(&image.name)
                    .description(&image.description)
                    .root_device_name(&image.root_device)
                    .virtualization_type("hvm")
                    .set_architecture(image.architecture.as_deref().map(ArchitectureValues::from))
                    .set_boot_mode(image.boot_mode.as_deref().map(BootModeValues::from))
                    .set_ena_support(image.ena)
                    .set_block_device_mappings(Some(disks.collect()))
                    .tag_specifications(tag_specification(ResourceType::Image, &image.tags))
                    .send()
                    .await?;
                Answer::Id(out.image_id().map(String::from))
            }
            Change::Share {
                snapshot_id,
                account,
            }
            | Change::Unshare {
                snapshot_id,
                account,
            } => {
                let operation = if matches!(write, Change::Share { .. }) {
                    aws_sdk_ec2::types::OperationType::Add
                } else {
                    aws_sdk_ec2::types::OperationType::Remove
                };
                c.modify_snapshot_attribute()
                    .dry_run(dry_run)
                    .snapshot_id(snapshot_id)
                    .attribute(aws_sdk_ec2::types::SnapshotAttributeName::CreateVolumePermission)
                    .operation_type(operation)
                    .user_ids(account)
                    .send()
                    .await?;
                Answer::Done
            }
            Change::Tag { ids, key, value } => {
                c.create_tags()
                    .dry_run(dry_run)
                    .set_resources(Some(ids.to_vec()))
                    .tags(Tag::builder().key(key).value(value).build())
                    .send()
                    .await?;
                Answer::Done
            }
            Change::Untag { id, key } => {
                c.delete_tags()
                    .dry_run(dry_run)
                    .resources(id)
                    .tags(Tag::builder().key(key).build())
                    .send()
                    .await?;
                Answer::Done
            }
            Change::Tags { ids, tags } => {
                c.create_tags()
                    .dry_run(dry_run)
                    .set_resources(Some(ids.to_vec()))
                    .set_tags(Some(
                        tags.iter()
                            .map(|(k, v)| Tag::builder().key(k).value(v).build())
                            .collect(),
                    ))
                    .send()
                    .await?;
                Answer::Done
            }
            Change::Untags { id, keys } => {
                c.delete_tags()
                    .dry_run(dry_run)
                    .resources(id.to_string())
                    .set_tags(Some(
                        keys.iter()
                            .map(|k| Tag::builder().key(*k).build())
                            .collect(),
                    ))
                    .send()
                    .await?;
                Answer::Done
            }
        })
    }
}
