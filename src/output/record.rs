//! What the run did, recorded as it happens (snapshots, deletions, errors, per instance), for the
//! JSON report and the metrics.

use crate::aws::AwsError;
use crate::model::Instance;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SnapshotEntry {
    /// `None` in a dry run.
    pub id: Option<String>,
    pub volume: String,
    pub device: String,
    pub description: String,
    /// `pending` when made, `planned` in a dry run, `failed`.
    pub state: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeletedEntry {
    pub id: String,
    pub volume: String,
    pub start_time: String,
    /// `age` (`-g`), `count` (`-d` alone) or `calendar` (`--keep-*` rules without `-g`).
    pub reason: &'static str,
}

/// A snapshot that retention looked at and kept, with the rules that keep it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct KeptEntry {
    /// `None` for the snapshot a dry run would make.
    pub id: Option<String>,
    pub volume: String,
    pub device: String,
    pub start_time: String,
    /// `--consistent`: the set it belongs to (kept whole).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set: Option<String>,
    /// E.g. `made by this run`, `younger than -g`, `last 1`, `daily 2026-11-25`, `weekly 2026-W48`.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorEntry {
    /// The EC2 action, e.g. `CreateSnapshot`.
    pub action: String,
    pub resource: String,
    pub code: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InstanceEntry {
    pub id: String,
    pub name: String,
    pub state: String,
    pub cold: bool,
    pub snapshots: Vec<SnapshotEntry>,
    pub deleted: Vec<DeletedEntry>,
    /// Newest first per volume (or set), volumes in device order.
    pub kept: Vec<KeptEntry>,
    pub errors: Vec<ErrorEntry>,
}

#[derive(Debug, Default)]
struct Inner {
    region: Option<String>,
    instances: BTreeMap<String, InstanceEntry>,
    /// Errors that belong to no instance (an `-i` id not found, a listing).
    errors: Vec<ErrorEntry>,
}

/// Shared by every task; a poisoned lock only loses entries, never the run.
#[derive(Debug, Default)]
pub struct Journal {
    inner: Mutex<Inner>,
}

impl Journal {
    fn with(&self, f: impl FnOnce(&mut Inner)) {
        if let Ok(mut inner) = self.inner.lock() {
            f(&mut inner);
        }
    }

    pub fn region(&self, region: &str) {
        self.with(|i| i.region = Some(region.to_string()));
    }

    pub fn instance(&self, instance: &Instance, cold: bool) {
        let entry = InstanceEntry {
            id: instance.id.clone(),
            name: instance.name().to_string(),
            state: instance.state.to_string(),
            cold,
            snapshots: Vec::new(),
            deleted: Vec::new(),
            kept: Vec::new(),
            errors: Vec::new(),
        };
        self.with(|i| {
            i.instances.entry(instance.id.clone()).or_insert(entry);
        });
    }

    pub fn snapshot(&self, instance_id: &str, entry: SnapshotEntry) {
        self.with(|i| {
            if let Some(inst) = i.instances.get_mut(instance_id) {
                inst.snapshots.push(entry);
            }
        });
    }

    pub fn deleted(&self, instance_id: &str, entry: DeletedEntry) {
        self.with(|i| {
            if let Some(inst) = i.instances.get_mut(instance_id) {
                inst.deleted.push(entry);
            }
        });
    }

    pub fn kept(&self, instance_id: &str, entries: Vec<KeptEntry>) {
        self.with(|i| {
            if let Some(inst) = i.instances.get_mut(instance_id) {
                inst.kept.extend(entries);
            }
        });
    }

    /// An error, under its instance when it has one.
    pub fn error(&self, instance_id: Option<&str>, action: &str, resource: &str, error: &AwsError) {
        let entry = ErrorEntry {
            action: action.to_string(),
            resource: resource.to_string(),
            code: error.code.clone(),
            message: error.message.clone(),
        };
        self.with(
            |i| match instance_id.and_then(|id| i.instances.get_mut(id)) {
                Some(inst) => inst.errors.push(entry),
                None => i.errors.push(entry),
            },
        );
    }

    /// What was recorded: the region, the instances in id order, the other errors.
    pub fn take(&self) -> (Option<String>, Vec<InstanceEntry>, Vec<ErrorEntry>) {
        match self.inner.lock() {
            Ok(mut inner) => {
                let inner = std::mem::take(&mut *inner);
                (
                    inner.region,
                    inner.instances.into_values().collect(),
                    inner.errors,
                )
            }
            Err(_) => (None, Vec::new(), Vec::new()),
        }
    }
}
