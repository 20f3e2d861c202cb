//! Plain domain types: what the pipeline knows about instances, volumes, snapshots and tag
//! patterns, free of SDK types.

use chrono::{DateTime, Utc};
use glob::{MatchOptions, Pattern};
use std::collections::BTreeMap;
use std::fmt;

/// Tags as EC2 returns them; a BTreeMap so every output built from them is ordered.
pub type Tags = BTreeMap<String, String>;

/// One attached EBS volume, as the instance's block device mapping names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub volume_id: String,
    pub device: String,
}

/// An instance's state, as EC2 names it; `Other` keeps a name EC2 may add later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceState {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
    Other(String),
}

impl InstanceState {
    pub fn from_name(name: &str) -> InstanceState {
        match name {
            "pending" => InstanceState::Pending,
            "running" => InstanceState::Running,
            "stopping" => InstanceState::Stopping,
            "stopped" => InstanceState::Stopped,
            "shutting-down" => InstanceState::ShuttingDown,
            "terminated" => InstanceState::Terminated,
            other => InstanceState::Other(other.to_string()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
            InstanceState::Other(name) => name,
        }
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A snapshot's state, as EC2 names it; `Other` keeps a name EC2 may add later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotState {
    Pending,
    Completed,
    Error,
    Other(String),
}

impl SnapshotState {
    pub fn from_name(name: &str) -> SnapshotState {
        match name {
            "pending" => SnapshotState::Pending,
            "completed" => SnapshotState::Completed,
            "error" => SnapshotState::Error,
            other => SnapshotState::Other(other.to_string()),
        }
    }
}

/// Hot (the instance keeps running) or cold (stopped first): shown in log lines, descriptions and
/// the default `type` tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKind {
    Hot,
    Cold,
}

impl fmt::Display for SnapshotKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SnapshotKind::Hot => "Hot",
            SnapshotKind::Cold => "Cold",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub state: InstanceState,
    pub tags: Tags,
    pub root_device: Option<String>,
    pub disks: Vec<Disk>,
    /// Where it runs and what it boots as: what a restore needs.
    pub machine: Machine,
}

/// An instance's zone and what an AMI of it must say (`restore --ami`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Machine {
    pub zone: Option<String>,
    /// `x86_64`, `arm64`, ...
    pub architecture: Option<String>,
    /// `legacy-bios`, `uefi`, `uefi-preferred`.
    pub boot_mode: Option<String>,
    pub ena: Option<bool>,
    /// Its private IPv4 address: what a hook connects to.
    pub private_ip: Option<String>,
    /// `windows` for a Windows instance (EC2's `Platform`), else none.
    pub platform: Option<String>,
}

/// A volume as DescribeVolumes gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Volume {
    pub id: String,
    pub zone: String,
    /// `gp3`, `gp2`, `io2`, ...
    pub kind: Option<String>,
    pub size_gib: Option<i32>,
    pub iops: Option<i32>,
    pub throughput: Option<i32>,
    pub encrypted: bool,
    /// `creating`, `available`, `in-use`, `error`, ...
    pub state: String,
    pub tags: Tags,
    /// `(instance id, device)` of each attachment.
    pub attachments: Vec<(String, String)>,
}

/// An AMI made of a set's snapshots (RegisterImage).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageSpec {
    pub name: String,
    pub description: String,
    pub root_device: String,
    pub architecture: Option<String>,
    pub boot_mode: Option<String>,
    pub ena: Option<bool>,
    /// In device order; `zone` of each spec is unused.
    pub disks: Vec<(String, String, VolumeSpec)>,
    pub tags: Tags,
}

/// How a volume is made from a snapshot (CreateVolume): what is `None` is left to EC2.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeSpec {
    pub zone: String,
    pub kind: Option<String>,
    pub size_gib: Option<i32>,
    pub iops: Option<i32>,
    pub throughput: Option<i32>,
}

impl Instance {
    /// The Name tag, or empty when the instance has none (the original crashed there).
    pub fn name(&self) -> &str {
        self.tags.get("Name").map(String::as_str).unwrap_or("")
    }

    /// The device an attached volume is on, as the block device mapping names it.
    pub fn device_of(&self, volume_id: &str) -> Option<&str> {
        let disk = self.disks.iter().find(|d| d.volume_id == volume_id);
        disk.map(|d| d.device.as_str())
    }

    /// Terminated and shutting-down instances have no volumes worth saving.
    pub fn is_gone(&self) -> bool {
        matches!(
            self.state,
            InstanceState::Terminated | InstanceState::ShuttingDown
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub id: String,
    pub volume_id: String,
    pub start_time: DateTime<Utc>,
    pub state: SnapshotState,
    pub tags: Tags,
    pub description: String,
    /// EC2's progress of a `pending` snapshot, e.g. `40%`.
    pub progress: Option<String>,
    /// The storage tier: `standard`, or `archive`.
    pub tier: Option<String>,
    /// Its full size (FullSnapshotSizeInBytes), where EC2 gives it.
    pub size_bytes: Option<i64>,
    /// Its EBS lock, as DescribeLockedSnapshots says (whoever set it: this tool, AWS Backup, DLM,
    /// a person); `Unknown` when the locks were not read.
    pub lock: LockInfo,
    /// An AMI of this account that uses it (DescribeImages), when the images were read.
    pub in_use_by: Option<String>,
}

/// What is known of a snapshot's EBS lock.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LockInfo {
    /// Not read (a listing without locks, or DescribeLockedSnapshots refused): the
    /// `ec2snap:locked-until` tag is all there is.
    #[default]
    Unknown,
    /// Read: not locked (or its lock expired).
    Unlocked,
    Locked(SnapshotLock),
}

/// A snapshot's lock as EC2 has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotLock {
    /// `governance`, `compliance` or `compliance-cooloff` (compliance, within its cool-off).
    pub state: String,
    pub until: DateTime<Utc>,
}

impl SnapshotLock {
    /// Locked in compliance mode (within its cool-off or past it): its first compliance lock,
    /// and its cool-off, are behind it.
    pub fn is_compliance(&self) -> bool {
        self.state.starts_with("compliance")
    }
}

/// `-t NAME VALUE` or `--snap-filter TAG VALUE`: the value may hold `*` and `?`, as EC2 filters do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagPattern {
    pub key: String,
    pub value: String,
    /// `value` compiled once: retention matches it against every snapshot listed.
    compiled: Pattern,
}

const OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

impl TagPattern {
    /// EC2 wildcards are only `*` and `?`; `[` and `]` are literal there, so they are escaped for
    /// glob, and runs of `*` become one (glob refuses `**` inside a component; the meaning is the
    /// same). An error names the value, should glob still refuse it.
    pub fn new(key: &str, value: &str) -> Result<Self, String> {
        let mut escaped = String::with_capacity(value.len());
        let mut previous = None;
        for c in value.chars() {
            match c {
                '[' => escaped.push_str("[[]"),
                ']' => escaped.push_str("[]]"),
                '*' if previous == Some('*') => {}
                c => escaped.push(c),
            }
            previous = Some(c);
        }
        let compiled = Pattern::new(&escaped)
            .map_err(|e| format!("Tag pattern {key}={value:?} cannot be used: {e}"))?;
        Ok(TagPattern {
            key: key.to_string(),
            value: value.to_string(),
            compiled,
        })
    }

    pub fn matches(&self, tags: &Tags) -> bool {
        tags.get(&self.key)
            .is_some_and(|v| self.compiled.matches_with(v, OPTIONS))
    }
}

/// All patterns must match (the same key twice means both patterns must match its value).
pub fn matches_all(patterns: &[TagPattern], tags: &Tags) -> bool {
    patterns.iter().all(|p| p.matches(tags))
}

/// The filters to send to EC2 for narrowing: one value per key (the first pattern seen). The
/// exact rule, all patterns, is applied again on the answer with `matches_all`.
pub fn server_filters(patterns: &[TagPattern]) -> Vec<(String, String)> {
    let mut seen = std::collections::BTreeSet::new();
    patterns
        .iter()
        .filter(|p| seen.insert(p.key.clone()))
        .map(|p| (format!("tag:{}", p.key), p.value.clone()))
        .collect()
}

/// Tags from pairs, for the unit tests of every module.
#[cfg(test)]
pub fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(k: &str, v: &str) -> TagPattern {
        TagPattern::new(k, v).unwrap()
    }

    #[test]
    fn wildcard_matching() {
        // (key, pattern, instance tags, expected)
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], bool);
        let cases: &[Case] = &[
            ("Name", "front*", &[("Name", "front1")], true),
            ("Name", "front*", &[("Name", "front")], true),
            ("Name", "front*", &[("Name", "back1")], false),
            ("Name", "front*", &[("name", "front1")], false),
            ("Name", "front*", &[("Name", "Front1")], false),
            ("Name", "fr?nt", &[("Name", "front")], true),
            ("Name", "fr?nt", &[("Name", "froont")], false),
            ("Name", "*", &[("Name", "")], true),
            ("Name", "*", &[], false),
            ("Name", "a[1]", &[("Name", "a[1]")], true),
            ("Name", "a[1]", &[("Name", "a1")], false),
            ("env", "prod", &[("env", "prod")], true),
            ("env", "prod", &[("env", "production")], false),
            ("path", "/a/*", &[("path", "/a/b/c")], true),
            ("Name", "a**b", &[("Name", "axyb")], true),
            ("Name", "**", &[("Name", "x")], true),
            ("Name", "a**?", &[("Name", "a")], false),
            ("Name", "\\[*]", &[("Name", "\\[x]")], true),
            ("Name", "é*ü", &[("Name", "éaü")], true),
        ];
        for (k, v, t, want) in cases {
            assert_eq!(pattern(k, v).matches(&tags(t)), *want, "{k}={v} on {t:?}");
        }
    }

    #[test]
    fn every_value_compiles() {
        for v in [
            "[",
            "]",
            "[]",
            "[!",
            "\\",
            "**/**",
            "?*?*",
            "]]][[[",
            &"*".repeat(10_000),
        ] {
            assert!(TagPattern::new("K", v).is_ok(), "{v:?}");
        }
    }

    #[test]
    fn all_patterns_must_match_even_on_the_same_key() {
        let p = vec![pattern("K", "a*"), pattern("K", "*b")];
        assert!(matches_all(&p, &tags(&[("K", "ab")])));
        assert!(!matches_all(&p, &tags(&[("K", "ac")])));
        assert!(!matches_all(&p, &tags(&[("K", "cb")])));
        assert!(matches_all(&[], &tags(&[])));
        assert_eq!(
            server_filters(&p),
            vec![("tag:K".to_string(), "a*".to_string())]
        );
    }

    #[test]
    fn state_names_round_trip() {
        for name in [
            "pending",
            "running",
            "stopping",
            "stopped",
            "shutting-down",
            "terminated",
            "hibernating",
        ] {
            assert_eq!(InstanceState::from_name(name).name(), name);
        }
        assert_eq!(
            InstanceState::from_name("hibernating"),
            InstanceState::Other("hibernating".into())
        );
        assert_eq!(SnapshotState::from_name("error"), SnapshotState::Error);
        assert_eq!(
            SnapshotState::from_name("recoverable"),
            SnapshotState::Other("recoverable".into())
        );
        assert_eq!(
            (
                SnapshotKind::Hot.to_string(),
                SnapshotKind::Cold.to_string()
            ),
            ("Hot".to_string(), "Cold".to_string())
        );
    }
}

/// Whether a run changes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `-u`: snapshots are made and deleted, instances stopped and started.
    Real,
    /// The default: nothing changes; each change a real run would make is sent with
    /// `DryRun=true` to check its permission, unless `--no-permission-check`.
    DryRun { check_permissions: bool },
}

impl Mode {
    pub fn is_dry(self) -> bool {
        matches!(self, Mode::DryRun { .. })
    }

    pub fn checks_permissions(self) -> bool {
        matches!(
            self,
            Mode::DryRun {
                check_permissions: true
            }
        )
    }
}

/// An account of the Organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccount {
    pub id: String,
    pub name: String,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`.
    pub status: String,
}

/// The largest N of `--shard K/N` (and of a report `report merge` takes).
pub const MAX_SHARDS: u32 = 10_000;
