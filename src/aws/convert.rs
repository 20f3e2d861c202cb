//! SDK types into the plain structs of `model`, and the SDK's filters and tag specifications.

use crate::model::{Disk, Instance, InstanceState, Machine, Snapshot, SnapshotState, Tags, Volume};
use aws_sdk_ec2::types::{Filter, Tag};

pub(super) fn tags_of(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

pub(super) fn filter(name: &str, values: impl IntoIterator<Item = String>) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().collect()))
        .build()
}

pub(super) fn instance_of(i: &aws_sdk_ec2::types::Instance) -> Option<Instance> {
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
        machine: Machine {
            zone: i
                .placement()
                .and_then(|p| p.availability_zone())
                .map(String::from),
            architecture: i.architecture().map(|a| a.as_str().to_string()),
            boot_mode: i.boot_mode().map(|b| b.as_str().to_string()),
            ena: i.ena_support(),
            private_ip: i.private_ip_address().map(String::from),
            platform: i.platform().map(|p| p.as_str().to_string()),
        },
    })
}

pub(super) fn volume_of(v: &aws_sdk_ec2::types::Volume) -> Option<Volume> {
    Some(Volume {
        id: v.volume_id()?.to_string(),
        zone: v.availability_zone().unwrap_or("").to_string(),
        kind: v.volume_type().map(|t| t.as_str().to_string()),
        size_gib: v.size(),
        iops: v.iops(),
        throughput: v.throughput(),
        encrypted: v.encrypted().unwrap_or(false),
        state: v
            .state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        tags: tags_of(v.tags()),
        attachments: v
            .attachments()
            .iter()
            .filter_map(|a| Some((a.instance_id()?.to_string(), a.device()?.to_string())))
            .collect(),
    })
}

pub(super) fn snapshot_of(s: &aws_sdk_ec2::types::Snapshot) -> Option<Snapshot> {
    let start = s.start_time()?;
    Some(Snapshot {
        id: s.snapshot_id()?.to_string(),
        volume_id: s.volume_id().unwrap_or("").to_string(),
        start_time: chrono::DateTime::from_timestamp(start.secs(), start.subsec_nanos())?,
        state: SnapshotState::from_name(s.state().map(|st| st.as_str()).unwrap_or("")),
        tags: tags_of(s.tags()),
        description: s.description().unwrap_or("").to_string(),
        progress: s.progress().map(String::from),
        tier: s.storage_tier().map(|t| t.as_str().to_lowercase()),
        size_bytes: s.full_snapshot_size_in_bytes(),
        lock: Default::default(),
        in_use_by: None,
    })
}
