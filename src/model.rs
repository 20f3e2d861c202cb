//! Plain domain types: what the pipeline knows about instances, volumes and snapshots, free of SDK types.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Tags as EC2 returns them; a BTreeMap so every output built from them is ordered.
pub type Tags = BTreeMap<String, String>;

/// One attached EBS volume, as the instance's block device mapping names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub volume_id: String,
    pub device: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub state: String,
    pub tags: Tags,
    pub root_device: Option<String>,
    pub disks: Vec<Disk>,
}

impl Instance {
    /// The Name tag, or empty when the instance has none (the original crashed there).
    pub fn name(&self) -> &str {
        self.tags.get("Name").map(String::as_str).unwrap_or("")
    }

    /// Terminated and shutting-down instances have no volumes worth saving.
    pub fn is_gone(&self) -> bool {
        matches!(self.state.as_str(), "terminated" | "shutting-down")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub id: String,
    pub volume_id: String,
    pub start_time: DateTime<Utc>,
    /// `pending`, `completed`, `error`, ...
    pub state: String,
    pub tags: Tags,
}
