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
enum Sent {
    Snapshot(Option<String>),
    /// A volume's or an image's id.
    Resource(Option<String>),
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
            Change::CreateVolume { .. } => "CreateVolume",
            Change::AttachVolume { .. } => "AttachVolume",
            Change::DeleteVolume(_) => "DeleteVolume",
            Change::RegisterImage(_) => "RegisterImage",
            Change::LockSnapshot { .. } => "LockSnapshot",
            Change::ArchiveSnapshot(_) => "ModifySnapshotTier",
            Change::RestoreTier { .. } => "RestoreSnapshotTier",
        }
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
    /// Sets one tag on an instance.
    pub async fn tag_instance(&self, id: &str, key: &str, value: &str) -> Result<(), AwsError> {
        self.tag_resource(id, key, value).await
    }

    /// Sets one tag on a resource (an instance, a snapshot).
    async fn tag_resource(&self, id: &str, key: &str, value: &str) -> Result<(), AwsError> {
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
            Change::RestoreTier { snapshot_id, days } => {
                c.restore_snapshot_tier()
                    .dry_run(dry_run)
                    .snapshot_id(snapshot_id)
                    .temporary_restore_days(days)
                    .send()
                    .await?;
                Sent::Done
            }
            Change::ArchiveSnapshot(id) => {
                c.modify_snapshot_tier()
                    .dry_run(dry_run)
                    .snapshot_id(id)
                    .storage_tier(aws_sdk_ec2::types::TargetStorageTier::Archive)
                    .send()
                    .await?;
                Sent::Done
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
                Sent::Resource(out.volume_id().map(String::from))
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
                Sent::Done
            }
            Change::DeleteVolume(id) => {
                c.delete_volume()
                    .dry_run(dry_run)
                    .volume_id(id)
                    .send()
                    .await?;
                Sent::Done
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
                Sent::Resource(out.image_id().map(String::from))
            }
        })
    }

    /// A call that answers with the id of what it made (a volume, an image).
    async fn new_resource(&self, write: &Change<'_>) -> Result<String, AwsError> {
        match self.send(write, false).await? {
            Sent::Resource(Some(id)) => Ok(id),
            _ => Err(AwsError {
                code: None,
                message: format!("{} answered without an id", write.action()),
            }),
        }
    }

    /// A volume made from a snapshot, tagged in the same call so that a crash can never leave
    /// it untagged.
    pub async fn create_volume(
        &self,
        snapshot_id: &str,
        spec: &VolumeSpec,
        tags: &Tags,
    ) -> Result<String, AwsError> {
        self.new_resource(&Change::CreateVolume {
            snapshot_id,
            spec,
            tags,
        })
        .await
    }

    pub async fn attach_volume(
        &self,
        volume_id: &str,
        instance_id: &str,
        device: &str,
    ) -> Result<(), AwsError> {
        let write = Change::AttachVolume {
            volume_id,
            instance_id,
            device,
        };
        self.send(&write, false).await.map(|_| ())
    }

    pub async fn delete_volume(&self, volume_id: &str) -> Result<(), AwsError> {
        self.send(&Change::DeleteVolume(volume_id), false)
            .await
            .map(|_| ())
    }

    /// An AMI from snapshots; its id.
    pub async fn register_image(&self, image: &ImageSpec) -> Result<String, AwsError> {
        self.new_resource(&Change::RegisterImage(image)).await
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

    /// Locks a snapshot against deletion for `days` (`--lock`), or moves it to the archive tier
    /// (`--archive-after`): a change that answers nothing to keep.
    pub async fn apply(&self, change: &Change<'_>) -> Result<(), AwsError> {
        self.send(change, false).await.map(|_| ())
    }

    /// Sets one tag on snapshots (at most 1,000 at once: one instance's).
    pub async fn tag_snapshots(
        &self,
        ids: &[String],
        key: &str,
        value: &str,
    ) -> Result<(), AwsError> {
        self.client
            .create_tags()
            .set_resources(Some(ids.to_vec()))
            .tags(Tag::builder().key(key).value(value).build())
            .send()
            .await?;
        Ok(())
    }

    /// Sets one tag on a snapshot (the end of its lock).
    pub async fn tag_snapshot(&self, id: &str, key: &str, value: &str) -> Result<(), AwsError> {
        self.tag_resource(id, key, value).await
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
