//! The one record of what a run did, kept as it happens (snapshots and copies made, deletions,
//! what stayed and why, failures, per instance): a failure is logged and recorded by one call,
//! and the counters, the exit code, the error summary, the report and the metrics are all derived
//! from the record at the end.

use crate::aws::errors::AwsError;
use crate::model::Instance;
use crate::output::log::{critical, Level};
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
    /// A copy (`--copy-to`): the region it was deleted in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// A copy made in another region (`--copy-to`), or planned in a dry run.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CopyEntry {
    /// `None` in a dry run.
    pub id: Option<String>,
    pub source: String,
    pub volume: String,
    pub device: String,
    pub region: String,
    /// `--wait`: the recovery point lag, from this run's snapshot call to its copy call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_point_lag_ms: Option<u64>,
    /// Left for a later run, and why (`ResourceLimitExceeded: ...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deferred: Option<String>,
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
    /// `archive` when it is in the archive tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Its full size, where EC2 gives it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// E.g. `made by this run`, `younger than -g`, `last 1`, `daily 2026-11-25`, `weekly 2026-W48`.
    pub reasons: Vec<String>,
    /// A legal hold (`HELD: reason`) or a `--keep-tag` (`tag KEY=VALUE`) that keeps it whatever
    /// the rules say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
}

/// A volume made from a snapshot (`restore`, `drill`), or planned in a dry run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RestoredEntry {
    /// The new volume; `None` in a dry run or when it could not be made.
    pub id: Option<String>,
    pub snapshot: String,
    pub source_volume: String,
    pub device: String,
    pub zone: String,
    /// `planned`, `available`, `failed`; `deleted` once a drill deleted it.
    pub state: String,
    /// Seconds from CreateVolume to `available`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// `--attach-to`: the instance it was attached to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attached_to: Option<String>,
}

/// An AMI registered from a set (`restore --ami`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ImageEntry {
    /// `None` in a dry run or when it could not be registered.
    pub id: Option<String>,
    pub name: String,
    /// `device=snapshot`, in device order.
    pub devices: Vec<String>,
}

/// What a drill proved of an instance.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DrillEntry {
    /// `passed`, `failed`, or `planned` in a dry run.
    pub result: String,
    /// `--drill-check`'s exit code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_exit: Option<i32>,
    /// The slowest of its volumes to become available, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_seconds: Option<f64>,
    /// When a drill of this instance last passed (this one's end when it passed), RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success: Option<String>,
}

/// What kind of failure an error is.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// An AWS answer (its code and message), or a request that got none.
    Aws,
    /// A wait that ran out: an instance not stopped or not running in time, a snapshot still
    /// pending at `--wait-timeout`, a call abandoned at the cold cycle's deadline.
    Timeout,
    /// A snapshot that ended in state `error`.
    State,
    /// An instance given with `-i` that does not exist.
    NotFound,
    /// A dry run's permission check: the real run would be refused.
    Refused,
    /// A call cut short by a signal (whether it took effect is not known).
    Interrupted,
    /// An instance's work that ended abnormally.
    Abnormal,
    /// The run could not start (a bad flag, no region, instances cannot be listed).
    Setup,
    /// A target (account and region) of a run over many that could not run: its role refused,
    /// its region disabled, its instances not listed. Counted; the other targets go on.
    Target,
    /// A pre-snapshot hook that failed with `--on-hook-failure skip`, or a post-snapshot hook
    /// that failed (the application may still be held).
    Hook,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorEntry {
    /// The EC2 action, e.g. `CreateSnapshot`; `Setup` for a run that could not start.
    pub action: String,
    pub resource: String,
    pub kind: Kind,
    pub code: Option<String>,
    pub message: String,
    /// Another region than the run's (a copy's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// A failure as it is logged and recorded: its line (level and text) and its entry.
#[derive(Debug, Clone)]
pub struct Failure {
    pub level: Level,
    pub line: String,
    pub entry: ErrorEntry,
}

impl Failure {
    /// An AWS error of `action` on `resource`.
    pub fn aws(level: Level, line: String, action: &str, resource: &str, e: &AwsError) -> Failure {
        let mut failure =
            Failure::other(level, line, action, resource, Kind::Aws, e.message.clone());
        failure.entry.code = e.code.clone();
        failure
    }

    /// A failure that is no AWS answer: `message` says what happened.
    pub fn other(
        level: Level,
        line: String,
        action: &str,
        resource: &str,
        kind: Kind,
        message: String,
    ) -> Failure {
        Failure {
            level,
            line,
            entry: ErrorEntry {
                action: action.to_string(),
                resource: resource.to_string(),
                kind,
                code: None,
                message,
                region: None,
            },
        }
    }

    /// In another region than the run's.
    pub fn in_region(mut self, region: &str) -> Failure {
        self.entry.region = Some(region.to_string());
        self
    }
}

/// The failures counted, as the original's summary and the exit code see them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Every failure but deletions and set-up errors: snapshots, stops, starts, copies, waits,
    /// instances not found, refused permissions of those.
    pub snapshot_errors: usize,
    /// Failed (or, in a dry run, refused) DeleteSnapshot calls, copies' included.
    pub deletion_errors: usize,
}

impl Counts {
    /// What one error counts as.
    fn add(&mut self, e: &ErrorEntry) {
        match (e.kind, e.action.as_str()) {
            (Kind::Setup, _) => {}
            (_, "DeleteSnapshot") => self.deletion_errors += 1,
            _ => self.snapshot_errors += 1,
        }
    }

    pub fn of<'a>(errors: impl IntoIterator<Item = &'a ErrorEntry>) -> Counts {
        let mut counts = Counts::default();
        for e in errors {
            counts.add(e);
        }
        counts
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InstanceEntry {
    pub id: String,
    pub name: String,
    pub state: String,
    pub cold: bool,
    pub snapshots: Vec<SnapshotEntry>,
    pub deleted: Vec<DeletedEntry>,
    /// `--copy-to`: the copies made (or planned) of this instance's volumes.
    pub copies: Vec<CopyEntry>,
    /// Newest first per volume (or set), volumes in device order.
    pub kept: Vec<KeptEntry>,
    /// `restore`, `drill`: the volumes made from its backup.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restored: Vec<RestoredEntry>,
    /// `restore --ami`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageEntry>,
    /// `drill`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillEntry>,
    /// `--archive-after`: its snapshots moved (or, in a dry run, to move) to the archive tier.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub archived: Vec<ArchivedEntry>,
    /// `--lock`: the locks set (or, in a dry run, that would be set) on its snapshots.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locked: Vec<LockedEntry>,
    /// `--pre-snapshot`/`--post-snapshot`: how its hooks went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hooks: Option<HookEntry>,
    pub errors: Vec<ErrorEntry>,
}

/// A snapshot moved to the archive tier (`--archive-after`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ArchivedEntry {
    pub id: String,
    pub volume: String,
    /// Its full size, where EC2 gives it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
}

/// A lock set on a snapshot (`--lock`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LockedEntry {
    pub id: String,
    pub volume: String,
    /// `governance` or `compliance`.
    pub mode: String,
    pub days: u32,
    /// RFC 3339, UTC: when the lock ends (the snapshot's `ec2snap:locked-until` tag).
    pub until: String,
    /// `--copy-lock`: the region of the copy locked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// An instance's hooks: the consistency of its snapshots and how each hook ended.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HookEntry {
    /// `application` or `crash` (the tag `ec2snap:consistency` of its snapshots), `mixed` when
    /// some are application-consistent and some not (`--freeze ssm`: the root volume is never
    /// frozen); `none` when no snapshot was made.
    pub consistency: String,
    /// The volumes whose new snapshot is application-consistent.
    pub application: Vec<String>,
    /// `succeeded`, `exited with status 1`, ...; absent without that hook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post: Option<String>,
    /// From the end of the pre hook to the start of the post hook, in milliseconds: how long
    /// the application was held.
    pub held_ms: u64,
    /// `--freeze ssm`: how long the filesystems were frozen, from the last freeze to the thaw, on
    /// the instance's own clock (as its thaw said).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frozen_ms: Option<u64>,
}

impl InstanceEntry {
    /// An entry with nothing recorded yet, of an instance not described (`-`: restored
    /// snapshots of no known instance).
    fn unknown(id: &str) -> InstanceEntry {
        InstanceEntry {
            id: id.to_string(),
            name: String::new(),
            state: String::new(),
            cold: false,
            snapshots: Vec::new(),
            deleted: Vec::new(),
            copies: Vec::new(),
            kept: Vec::new(),
            restored: Vec::new(),
            image: None,
            drill: None,
            locked: Vec::new(),
            archived: Vec::new(),
            hooks: None,
            errors: Vec::new(),
        }
    }
}

/// One target of a run over many accounts and regions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct TargetId {
    /// The account's name (`--accounts`), or its id (`--assume-role`); empty for the base
    /// credentials' own account.
    pub account: String,
    pub region: String,
}

impl TargetId {
    /// `prod/eu-west-1`, or `eu-west-1` for the base account: the log lines' prefix.
    pub fn label(&self) -> String {
        if self.account.is_empty() {
            self.region.clone()
        } else {
            format!("{}/{}", self.account, self.region)
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// A run over many targets: each one's own record.
    targets: Vec<(TargetId, std::sync::Arc<Record>)>,
    region: Option<String>,
    instances: BTreeMap<String, InstanceEntry>,
    /// Errors that belong to no instance (an `-i` id not found, a listing).
    errors: Vec<ErrorEntry>,
    /// Deletions of no instance (orphans, `--prune-orphans-after`).
    deleted: Vec<DeletedEntry>,
    /// A target of a run over many: the `-i` ids it looked for and did not find (`None`: it did
    /// not look). An id is an error only when no target found it.
    unfound: Option<Vec<String>>,
}

/// What was recorded, taken out at the end of a run.
#[derive(Debug, Default)]
pub struct Taken {
    pub region: Option<String>,
    /// In id order.
    pub instances: Vec<InstanceEntry>,
    pub errors: Vec<ErrorEntry>,
    pub deleted: Vec<DeletedEntry>,
    /// A run over many targets: what each one recorded, in the order they were added.
    pub targets: Vec<(TargetId, Taken)>,
}

/// Shared by every task.
#[derive(Debug, Default)]
pub struct Record {
    inner: Mutex<Inner>,
}

impl Record {
    /// The record, also after a task panicked while holding it: no entry is ever lost.
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn with(&self, f: impl FnOnce(&mut Inner)) {
        f(&mut self.lock());
    }

    /// `f` on the entry of `instance_id`, when it is recorded.
    fn on_instance(&self, instance_id: &str, f: impl FnOnce(&mut InstanceEntry)) {
        self.with(|i| {
            if let Some(inst) = i.instances.get_mut(instance_id) {
                f(inst);
            }
        });
    }

    /// What `own` reads of this record, and the records of its targets (read after the lock is
    /// let go: a target's own lock is taken then).
    fn with_targets<T>(&self, own: impl FnOnce(&Inner) -> T) -> (T, Vec<std::sync::Arc<Record>>) {
        let inner = self.lock();
        let targets = inner
            .targets
            .iter()
            .map(|(_, r)| std::sync::Arc::clone(r))
            .collect();
        (own(&inner), targets)
    }

    /// A target of a run over many looked for these `-i` ids and did not find them.
    pub fn unfound(&self, ids: Vec<String>) {
        self.lock().unfound = Some(ids);
    }

    /// Of a run over many: the `-i` ids that every target that looked did not find (none when no
    /// target looked), in order.
    pub fn found_nowhere(&self) -> Vec<String> {
        let (_, targets) = self.with_targets(|_| ());
        let looked: Vec<Vec<String>> = targets
            .iter()
            .filter_map(|t| t.lock().unfound.clone())
            .collect();
        let Some((first, rest)) = looked.split_first() else {
            return Vec::new();
        };
        let mut out: Vec<String> = first
            .iter()
            .filter(|id| rest.iter().all(|r| r.contains(id)))
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The record of one target of a run over many: its own instances, errors and deletions;
    /// the counts of this record include it.
    pub fn target(&self, id: TargetId) -> std::sync::Arc<Record> {
        let record = std::sync::Arc::new(Record::default());
        self.with(|i| i.targets.push((id, std::sync::Arc::clone(&record))));
        record
    }

    pub fn region(&self, region: &str) {
        self.with(|i| i.region = Some(region.to_string()));
    }

    pub fn instance(&self, instance: &Instance, cold: bool) {
        let entry = InstanceEntry {
            name: instance.name().to_string(),
            state: instance.state.to_string(),
            cold,
            ..InstanceEntry::unknown(&instance.id)
        };
        self.with(|i| {
            i.instances.entry(instance.id.clone()).or_insert(entry);
        });
    }

    /// A volume made (or planned) from a snapshot of this instance; `None`: of no known instance
    /// (`restore --snapshot` of a deleted volume's snapshot), kept under the id `-`.
    pub fn restored(&self, instance_id: Option<&str>, entry: RestoredEntry) {
        self.with(|i| {
            let id = instance_id.unwrap_or("-");
            let inst = i
                .instances
                .entry(id.to_string())
                .or_insert_with(|| InstanceEntry::unknown(id));
            match inst
                .restored
                .iter_mut()
                .find(|r| r.snapshot == entry.snapshot && r.id == entry.id)
            {
                Some(old) => *old = entry,
                None => inst.restored.push(entry),
            }
        });
    }

    pub fn image(&self, instance_id: &str, entry: ImageEntry) {
        self.on_instance(instance_id, |inst| inst.image = Some(entry));
    }

    pub fn archived(&self, instance_id: &str, entry: ArchivedEntry) {
        self.on_instance(instance_id, |inst| inst.archived.push(entry));
    }

    pub fn locked(&self, instance_id: &str, entry: LockedEntry) {
        self.on_instance(instance_id, |inst| inst.locked.push(entry));
    }

    pub fn hooks(&self, instance_id: &str, entry: HookEntry) {
        self.on_instance(instance_id, |inst| inst.hooks = Some(entry));
    }

    pub fn drill(&self, instance_id: &str, entry: DrillEntry) {
        self.on_instance(instance_id, |inst| inst.drill = Some(entry));
    }

    pub fn snapshot(&self, instance_id: &str, entry: SnapshotEntry) {
        self.on_instance(instance_id, |inst| inst.snapshots.push(entry));
    }

    /// A deletion, under its instance when it has one (an orphan has none).
    pub fn deleted(&self, instance_id: Option<&str>, entry: DeletedEntry) {
        self.with(
            |i| match instance_id.and_then(|id| i.instances.get_mut(id)) {
                Some(inst) => inst.deleted.push(entry),
                None => i.deleted.push(entry),
            },
        );
    }

    pub fn kept(&self, instance_id: &str, entries: Vec<KeptEntry>) {
        self.on_instance(instance_id, |inst| inst.kept.extend(entries));
    }

    /// A copy made (or planned), under the instance of its source volume.
    pub fn copy(&self, instance_id: &str, entry: CopyEntry) {
        self.on_instance(instance_id, |inst| inst.copies.push(entry));
    }

    /// The one way to say and count a failure: its line is logged at its level, and its entry
    /// recorded under its instance when it has one (else with the run's own errors).
    pub fn failed(&self, instance_id: Option<&str>, failure: Failure) {
        match failure.level {
            Level::Critical => critical!("{}", failure.line),
            Level::Error => tracing::error!("{}", failure.line),
            Level::Warning => tracing::warn!("{}", failure.line),
            Level::Info => tracing::info!("{}", failure.line),
            Level::Debug => tracing::debug!("{}", failure.line),
        }
        let entry = failure.entry;
        self.with(
            |i| match instance_id.and_then(|id| i.instances.get_mut(id)) {
                Some(inst) => inst.errors.push(entry),
                None => i.errors.push(entry),
            },
        );
    }

    /// A run that could not start (a bad flag, no region, instances cannot be listed): recorded
    /// for the report only, since `main` prints it once.
    pub fn setup_failed(&self, message: String) {
        let entry = ErrorEntry {
            action: "Setup".into(),
            resource: String::new(),
            kind: Kind::Setup,
            code: None,
            message,
            region: None,
        };
        self.with(|i| i.errors.push(entry));
    }

    /// The volumes and images restored so far, per instance id (`-`: of no known instance).
    pub fn restored_so_far(&self) -> Vec<(String, Vec<RestoredEntry>, Option<ImageEntry>)> {
        self.lock()
            .instances
            .values()
            .filter(|i| !i.restored.is_empty() || i.image.is_some())
            .map(|i| (i.id.clone(), i.restored.clone(), i.image.clone()))
            .collect()
    }

    /// The instances recorded, the targets' included.
    pub fn instance_count(&self) -> usize {
        let (own, targets) = self.with_targets(|inner| inner.instances.len());
        own + targets.iter().map(|r| r.instance_count()).sum::<usize>()
    }

    /// The failures counted so far, derived from the record.
    pub fn counts(&self) -> Counts {
        let (own, targets) = self.with_targets(|inner| {
            Counts::of(
                inner
                    .instances
                    .values()
                    .flat_map(|i| &i.errors)
                    .chain(&inner.errors),
            )
        });
        targets.iter().map(|r| r.counts()).fold(own, |a, b| Counts {
            snapshot_errors: a.snapshot_errors + b.snapshot_errors,
            deletion_errors: a.deletion_errors + b.deletion_errors,
        })
    }

    /// What was recorded: the region, the instances in id order, the other errors.
    pub fn take(&self) -> Taken {
        let inner = std::mem::take(&mut *self.lock());
        Taken {
            region: inner.region,
            instances: inner.instances.into_values().collect(),
            errors: inner.errors,
            deleted: inner.deleted,
            targets: inner
                .targets
                .into_iter()
                .map(|(id, r)| (id, r.take()))
                .collect(),
        }
    }
}
