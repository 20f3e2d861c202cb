//! The Describe calls: instances, volumes' tags, snapshots, in pages and batches of EC2's sizes.

use super::convert::{filter, instance_of, snapshot_of, volume_of};
use super::{AwsError, Ec2};
use crate::model::{
    server_filters, Instance, InstanceState, Snapshot, SnapshotLock, SnapshotState, TagPattern,
    Tags, Volume,
};
use anyhow::{Context, Result};
use aws_sdk_ec2::types::Filter;
use std::collections::HashMap;

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

impl Ec2 {
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
        let volumes = self.volumes(volume_ids).await?;
        Ok(volumes
            .into_iter()
            .map(|(id, (tags, _))| (id, tags))
            .collect())
    }

    /// These volumes' tags and sizes (GiB), by id; a volume that does not exist is missing.
    pub async fn volumes(
        &self,
        volume_ids: &[String],
    ) -> Result<HashMap<String, (Tags, Option<i32>)>> {
        let found = self.volume_details(volume_ids).await?;
        Ok(found
            .into_iter()
            .map(|v| (v.id, (v.tags, v.size_gib)))
            .collect())
    }

    /// These volumes as DescribeVolumes gives them; a volume that does not exist is missing.
    pub async fn volume_details(&self, volume_ids: &[String]) -> Result<Vec<Volume>> {
        let mut out = Vec::new();
        for chunk in volume_ids.chunks(VOLUME_IDS_PER_VOLUME_CALL) {
            let filters = vec![filter("volume-id", chunk.iter().cloned())];
            out.extend(self.describe_volumes(filters).await?);
        }
        Ok(out)
    }

    /// The volumes that carry a tag with this key, whatever its value.
    pub async fn volumes_tagged(&self, key: &str) -> Result<Vec<Volume>> {
        self.describe_volumes(vec![filter("tag-key", [key.to_string()])])
            .await
            .with_context(|| format!("Cannot list the volumes tagged {key}"))
    }

    async fn describe_volumes(&self, filters: Vec<Filter>) -> Result<Vec<Volume>> {
        let mut pages = self
            .client
            .describe_volumes()
            .set_filters(Some(filters))
            .max_results(VOLUME_PAGE)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(AwsError::from)
                .context("Cannot describe volumes")?;
            out.extend(page.volumes().iter().filter_map(volume_of));
        }
        Ok(out)
    }

    /// The names of this region's Availability Zones.
    pub async fn zones(&self) -> Result<Vec<String>> {
        let out = self
            .client
            .describe_availability_zones()
            .send()
            .await
            .map_err(AwsError::from)
            .with_context(|| format!("Cannot list the Availability Zones of {}", self.region))?;
        Ok(out
            .availability_zones()
            .iter()
            .filter_map(|z| z.zone_name().map(String::from))
            .collect())
    }

    /// This account's snapshots whose tag `key` has one of `values` (a set's members, the copies
    /// of some snapshots).
    pub async fn snapshots_with_tag(&self, key: &str, values: &[String]) -> Result<Vec<Snapshot>> {
        let mut out = Vec::new();
        for chunk in values.chunks(FILTER_VALUES) {
            let filters = vec![filter(&format!("tag:{key}"), chunk.iter().cloned())];
            out.extend(self.describe_snapshots(Some(filters)).await?);
        }
        Ok(out)
    }

    /// These snapshots of this account (a filter: one that does not exist is missing).
    pub async fn snapshots_by_ids(&self, ids: &[String]) -> Result<Vec<Snapshot>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(FILTER_VALUES) {
            let filters = vec![filter("snapshot-id", chunk.iter().cloned())];
            out.extend(self.describe_snapshots(Some(filters)).await?);
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

    /// The EBS locks of this account's snapshots in the region that are locked now
    /// (DescribeLockedSnapshots, every page): snapshot id -> lock. An expired lock is none.
    pub async fn locks(&self) -> Result<HashMap<String, SnapshotLock>, AwsError> {
        let mut out = HashMap::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .describe_locked_snapshots()
                .max_results(SNAPSHOT_PAGE)
                .set_next_token(token.take())
                .send()
                .await?;
            for s in page.snapshots() {
                let (Some(id), Some(state), Some(until)) =
                    (s.snapshot_id(), s.lock_state(), s.lock_expires_on())
                else {
                    continue;
                };
                let Some(until) = chrono::DateTime::from_timestamp(until.secs(), 0) else {
                    continue;
                };
                if state.as_str() == "expired" {
                    continue;
                }
                let lock = SnapshotLock {
                    state: state.as_str().to_string(),
                    until,
                };
                out.insert(id.to_string(), lock);
            }
            token = page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(String::from);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// The snapshots the AMIs this account owns in the region use (DescribeImages Owners=self,
    /// every page): snapshot id -> an image id.
    pub async fn image_snapshots(&self) -> Result<HashMap<String, String>, AwsError> {
        let mut out = HashMap::new();
        let mut pages = self
            .client
            .describe_images()
            .owners("self")
            .max_results(INSTANCE_PAGE)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page?;
            for image in page.images() {
                let Some(image_id) = image.image_id() else {
                    continue;
                };
                for mapping in image.block_device_mappings() {
                    if let Some(sid) = mapping.ebs().and_then(|e| e.snapshot_id()) {
                        out.entry(sid.to_string())
                            .or_insert_with(|| image_id.to_string());
                    }
                }
            }
        }
        Ok(out)
    }

    /// Every snapshot this account owns in the region, in pages.
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
}
