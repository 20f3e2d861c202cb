//! The JSON run report (`--report`) and the Prometheus metrics (`--metrics-file`): their shape,
//! derived from the record alone (the totals are the lengths of its lists), and written
//! atomically.

use crate::output::record::{
    Counts, DeletedEntry, ErrorEntry, ImageEntry, InstanceEntry, RestoredEntry, Taken,
};
use crate::retention::archive::Storage;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use std::io::Write;
use std::path::Path;

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Totals {
    pub instances: usize,
    pub snapshots_made: usize,
    /// The errors (of the instances and of the run) that are not deletions nor set-up errors.
    pub snapshot_errors: usize,
    /// Deletions, copies' included (`deleted[]` entries with a `region`).
    pub deleted: usize,
    /// The `DeleteSnapshot` errors, copies' included.
    pub deletion_errors: usize,
    /// Copies made in other regions (`copies[]`).
    pub copies_made: usize,
    /// Snapshots kept by a legal hold or a `--keep-tag` (`kept[]` entries with `held`).
    pub held: usize,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub version: &'static str,
    pub dry_run: bool,
    pub started: String,
    pub finished: String,
    pub exit_code: u8,
    pub region: Option<String>,
    /// `--shard K/N`: which shard of the fleet this report is (`report merge` puts them together).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    pub instances: Vec<InstanceEntry>,
    /// Errors that belong to no instance (an `-i` id not found, a set-up failure).
    pub errors: Vec<ErrorEntry>,
    /// Deletions of no instance: orphans (`--prune-orphans-after`).
    pub deleted: Vec<DeletedEntry>,
    /// A run over many accounts and regions: one section per target.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetReport>,
    pub totals: Totals,
    /// What the snapshots retention kept cost a month (an upper bound from their full sizes),
    /// per volume and in total; absent when EC2 gave no size.
    #[serde(skip_serializing_if = "StorageReport::is_empty")]
    pub storage: StorageReport,
}

#[derive(Debug, Default, Serialize)]
pub struct StorageReport {
    pub total: Storage,
    pub volumes: std::collections::BTreeMap<String, Storage>,
}

impl StorageReport {
    fn is_empty(&self) -> bool {
        self.total.is_empty()
    }

    /// From the `kept[]` lists of these instances.
    fn of<'a>(instances: impl Iterator<Item = &'a InstanceEntry>) -> StorageReport {
        let mut out = StorageReport::default();
        for k in instances.flat_map(|i| &i.kept) {
            if let (Some(bytes), Some(_)) = (k.size_bytes, &k.id) {
                let archived = k.tier.as_deref() == Some("archive");
                out.volumes
                    .entry(k.volume.clone())
                    .or_default()
                    .add_snapshot(bytes, archived);
                out.total.add_snapshot(bytes, archived);
            }
        }
        out
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One target's part of the report of a run over many accounts and regions.
#[derive(Debug, Serialize)]
pub struct TargetReport {
    pub account: String,
    pub region: String,
    pub instances: Vec<InstanceEntry>,
    pub errors: Vec<ErrorEntry>,
    pub deleted: Vec<DeletedEntry>,
    pub totals: Totals,
}

/// The totals of one target's lists.
fn totals_of(
    dry_run: bool,
    instances: &[InstanceEntry],
    errors: &[ErrorEntry],
    orphans: &[DeletedEntry],
) -> Totals {
    let made = instances
        .iter()
        .flat_map(|i| &i.snapshots)
        .filter(|s| s.id.is_some())
        .count();
    let copies_made = instances
        .iter()
        .flat_map(|i| &i.copies)
        .filter(|c| c.id.is_some())
        .count();
    let deleted = if dry_run {
        0
    } else {
        instances.iter().map(|i| i.deleted.len()).sum::<usize>() + orphans.len()
    };
    let counts = Counts::of(instances.iter().flat_map(|i| &i.errors).chain(errors));
    let held = instances
        .iter()
        .flat_map(|i| &i.kept)
        .filter(|k| k.held.is_some())
        .count();
    Totals {
        held,
        instances: instances.len(),
        snapshots_made: made,
        snapshot_errors: counts.snapshot_errors,
        deleted,
        deletion_errors: counts.deletion_errors,
        copies_made,
    }
}

impl Totals {
    fn plus(self, o: &Totals) -> Totals {
        Totals {
            instances: self.instances + o.instances,
            snapshots_made: self.snapshots_made + o.snapshots_made,
            snapshot_errors: self.snapshot_errors + o.snapshot_errors,
            deleted: self.deleted + o.deleted,
            deletion_errors: self.deletion_errors + o.deletion_errors,
            copies_made: self.copies_made + o.copies_made,
            held: self.held + o.held,
        }
    }
}

/// The report of a run. In a dry run the lists say what the run would do, and the totals of
/// made, copied and deleted snapshots are 0. A run over many targets has a section per target in
/// `targets`, and the fleet's totals.
pub fn build(
    dry_run: bool,
    started: DateTime<Utc>,
    finished: DateTime<Utc>,
    exit_code: u8,
    taken: Taken,
) -> Report {
    let Taken {
        region,
        instances,
        errors,
        deleted: orphans,
        targets,
    } = taken;
    let own = totals_of(dry_run, &instances, &errors, &orphans);
    let targets: Vec<TargetReport> = targets
        .into_iter()
        .map(|(id, t)| TargetReport {
            totals: totals_of(dry_run, &t.instances, &t.errors, &t.deleted),
            account: id.account,
            region: id.region,
            instances: t.instances,
            errors: t.errors,
            deleted: t.deleted,
        })
        .collect();
    let totals = targets.iter().fold(own, |sum, t| sum.plus(&t.totals));
    let storage = StorageReport::of(
        instances
            .iter()
            .chain(targets.iter().flat_map(|t| &t.instances)),
    );
    Report {
        storage,
        version: env!("CARGO_PKG_VERSION"),
        dry_run,
        started: time(started),
        finished: time(finished),
        exit_code,
        region,
        shard: None,
        instances,
        errors,
        deleted: orphans,
        targets,
        totals,
    }
}

impl Report {
    /// Every instance entry, the targets' included.
    pub fn all_instances(&self) -> impl Iterator<Item = &InstanceEntry> {
        self.instances
            .iter()
            .chain(self.targets.iter().flat_map(|t| &t.instances))
    }
}

/// What the metrics say about one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub finished: f64,
    /// This run's end when it succeeded (a real run, exit 0); else the previous file's value.
    pub last_success: Option<f64>,
    pub duration: f64,
    pub exit_code: u8,
    pub totals: (usize, usize, usize, usize),
    /// `--copy-to`: per destination region, the copies made and deleted.
    pub copies: Vec<RegionCopies>,
    /// `drill`: per instance drilled by a real drill.
    pub drills: Vec<Drilled>,
    /// A run over many targets: the counted totals of each.
    pub targets: Vec<TargetCounts>,
    /// What the snapshots retention kept add up to, when EC2 gave their sizes: bytes, and the
    /// monthly estimate in dollars (the report's `storage.total`).
    pub storage: Option<(i64, f64)>,
}

impl Sample {
    /// The metrics of `report`, a run that ended at `finished` after `duration` seconds with
    /// `exit_code`; `last_success` as `Sample` says; a series per `--copy-to` region (`regions`).
    pub fn of(
        report: &Report,
        finished: f64,
        duration: f64,
        exit_code: u8,
        last_success: Option<f64>,
        regions: &[String],
    ) -> Sample {
        let t = &report.totals;
        Sample {
            finished,
            last_success,
            duration,
            exit_code,
            totals: (
                t.snapshots_made,
                t.snapshot_errors,
                t.deleted,
                t.deletion_errors,
            ),
            copies: copies_by_region(report, regions),
            drills: drills(report),
            targets: target_totals(report),
            storage: storage(report),
        }
    }
}

/// The kept snapshots' size and monthly estimate, for the metrics.
pub fn storage(report: &Report) -> Option<(i64, f64)> {
    let total = &report.storage.total;
    (!total.is_empty()).then(|| (total.kept_bytes, total.monthly_micros as f64 / 1_000_000.0))
}

/// One target's counted totals, for its labelled metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetCounts {
    pub account: String,
    pub region: String,
    /// Made, snapshot errors, deleted, deletion errors: the order of the metrics.
    pub counts: [usize; 4],
}

/// The four counted totals of each target of a report.
pub fn target_totals(report: &Report) -> Vec<TargetCounts> {
    report
        .targets
        .iter()
        .map(|t| {
            let c = &t.totals;
            TargetCounts {
                account: t.account.clone(),
                region: t.region.clone(),
                counts: [
                    c.snapshots_made,
                    c.snapshot_errors,
                    c.deleted,
                    c.deletion_errors,
                ],
            }
        })
        .collect()
}

/// What the metrics say of one instance's drill.
#[derive(Debug, Clone, PartialEq)]
pub struct Drilled {
    pub instance: String,
    pub passed: bool,
    /// When a drill of it last passed (Unix time).
    pub last_success: Option<f64>,
    /// The slowest of its volumes to become available.
    pub restore_seconds: Option<f64>,
}

/// The drills of a real drill run, per instance (in id order).
pub fn drills(report: &Report) -> Vec<Drilled> {
    if report.dry_run {
        return Vec::new();
    }
    report
        .all_instances()
        .filter_map(|i| {
            let d = i.drill.as_ref()?;
            let last = d
                .last_success
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp() as f64);
            Some(Drilled {
                instance: i.id.clone(),
                passed: d.result == "passed",
                last_success: last,
                restore_seconds: d.restore_seconds,
            })
        })
        .collect()
}

/// What a real run did in one destination region (`--copy-to`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegionCopies {
    pub region: String,
    pub made: usize,
    pub deleted: usize,
    /// Copies left for a later run (`...LimitExceeded`).
    pub deferred: usize,
    /// `--wait`: the largest recovery point lag (snapshot call to copy call) of this run's own
    /// snapshots copied there, in seconds.
    pub max_lag_seconds: Option<f64>,
}

/// The copies made, deferred and deleted by a real run, per destination region (in name order):
/// every region of `regions` (`--copy-to`) has its entry, 0 included, so that an alert on "no
/// copy tonight" can fire.
pub fn copies_by_region(report: &Report, regions: &[String]) -> Vec<RegionCopies> {
    let mut by: std::collections::BTreeMap<String, RegionCopies> = Default::default();
    if report.dry_run {
        return Vec::new();
    }
    fn at<'a>(
        by: &'a mut std::collections::BTreeMap<String, RegionCopies>,
        region: &str,
    ) -> &'a mut RegionCopies {
        by.entry(region.to_string())
            .or_insert_with(|| RegionCopies {
                region: region.to_string(),
                ..RegionCopies::default()
            })
    }
    for region in regions {
        at(&mut by, region);
    }
    for i in report.all_instances() {
        for c in i.copies.iter().filter(|c| c.deferred.is_some()) {
            at(&mut by, &c.region).deferred += 1;
        }
        for c in i.copies.iter().filter(|c| c.id.is_some()) {
            let entry = at(&mut by, &c.region);
            entry.made += 1;
            if let Some(ms) = c.recovery_point_lag_ms {
                let secs = ms as f64 / 1000.0;
                entry.max_lag_seconds = Some(entry.max_lag_seconds.map_or(secs, |m| m.max(secs)));
            }
        }
        for d in &i.deleted {
            if let Some(region) = &d.region {
                at(&mut by, region).deleted += 1;
            }
        }
    }
    by.into_values().collect()
}

/// A label value with `\`, `"` and newlines escaped, as the exposition format wants.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The text exposition format for node_exporter's textfile collector.
pub fn metrics(job: &str, s: &Sample) -> String {
    let job = label(job);
    let rows: [(&str, &str, f64); 8] = [
        (
            "ec2snap_last_run_timestamp_seconds",
            "When the last run ended (Unix time).",
            s.finished,
        ),
        (
            "ec2snap_last_success_timestamp_seconds",
            "When the last real run that exited 0 ended (Unix time; 0: never).",
            s.last_success.unwrap_or(0.0),
        ),
        (
            "ec2snap_run_duration_seconds",
            "How long the last run took.",
            s.duration,
        ),
        (
            "ec2snap_exit_code",
            "Exit code of the last run.",
            f64::from(s.exit_code),
        ),
        (
            "ec2snap_snapshots_created",
            "Snapshots made by the last run.",
            s.totals.0 as f64,
        ),
        (
            "ec2snap_snapshot_errors",
            "Snapshot, stop, start, copy and wait errors of the last run.",
            s.totals.1 as f64,
        ),
        (
            "ec2snap_snapshots_deleted",
            "Snapshots deleted by the last run, copies included.",
            s.totals.2 as f64,
        ),
        (
            "ec2snap_deletion_errors",
            "Deletion errors of the last run.",
            s.totals.3 as f64,
        ),
    ];
    let mut out = String::new();
    for (n, (name, help, value)) in rows.into_iter().enumerate() {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        // A run over many targets: the counts per target, labelled with its account and region.
        if n >= 4 && !s.targets.is_empty() {
            for t in &s.targets {
                let v = t.counts[n - 4];
                let (account, region) = (label(&t.account), label(&t.region));
                out.push_str(&format!(
                    "{name}{{job=\"{job}\",account=\"{account}\",region=\"{region}\"}} {v}\n"
                ));
            }
        } else {
            out.push_str(&format!("{name}{{job=\"{job}\"}} {value}\n"));
        }
    }
    if !s.copies.is_empty() {
        type Series = (&'static str, &'static str, fn(&RegionCopies) -> Option<f64>);
        let series: [Series; 4] = [
            (
                "ec2snap_copies_created",
                "Copies made in another region by the last run.",
                |c| Some(c.made as f64),
            ),
            (
                "ec2snap_copies_deferred",
                "Copies the last run left for a later one (copy limit of the region).",
                |c| Some(c.deferred as f64),
            ),
            (
                "ec2snap_copies_deleted",
                "Copies deleted in another region by the last run (also counted in ec2snap_snapshots_deleted).",
                |c| Some(c.deleted as f64),
            ),
            (
                "ec2snap_copy_recovery_point_lag_seconds",
                "With --wait: the longest time from a snapshot call of the last run to its copy call.",
                |c| c.max_lag_seconds,
            ),
        ];
        for (name, help, value) in series {
            if s.copies.iter().all(|c| value(c).is_none()) {
                continue;
            }
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
            for c in &s.copies {
                let Some(v) = value(c) else { continue };
                let region = label(&c.region);
                out.push_str(&format!(
                    "{name}{{job=\"{job}\",region=\"{region}\"}} {v}\n"
                ));
            }
        }
    }
    if let Some((bytes, usd)) = s.storage {
        for (name, help, v) in [
            (
                "ec2snap_kept_snapshot_bytes",
                "Full size of the snapshots retention kept in the last run (an upper bound of what is billed).",
                bytes as f64,
            ),
            (
                "ec2snap_kept_storage_monthly_usd",
                "Monthly storage estimate of the snapshots retention kept, at us-east-1 prices.",
                usd,
            ),
        ] {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
            out.push_str(&format!("{name}{{job=\"{job}\"}} {v}\n"));
        }
    }
    if !s.drills.is_empty() {
        type Series = (&'static str, &'static str, fn(&Drilled) -> Option<f64>);
        let series: [Series; 3] = [
            (
                "ec2snap_drill_last_success_timestamp_seconds",
                "When a restore drill of the instance last passed (Unix time; 0: never).",
                |d| Some(d.last_success.unwrap_or(0.0)),
            ),
            (
                "ec2snap_drill_success",
                "1 when the instance's last drill passed, else 0.",
                |d| Some(if d.passed { 1.0 } else { 0.0 }),
            ),
            (
                "ec2snap_drill_restore_seconds",
                "How long the slowest of the instance's volumes took to become available.",
                |d| d.restore_seconds,
            ),
        ];
        for (name, help, value) in series {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
            for d in &s.drills {
                if let Some(v) = value(d) {
                    let instance = label(&d.instance);
                    out.push_str(&format!(
                        "{name}{{job=\"{job}\",instance=\"{instance}\"}} {v}\n"
                    ));
                }
            }
        }
    }
    out
}

/// `restore`'s summary on standard output: one line per volume or image, as a table's row.
pub fn restored_lines(restored: &[(String, Vec<RestoredEntry>, Option<ImageEntry>)]) -> String {
    let mut out = String::new();
    for (instance, volumes, image) in restored {
        for v in volumes {
            let id = v.id.as_deref().unwrap_or("-");
            let attached = v
                .attached_to
                .as_deref()
                .map(|i| format!(" attached to {i}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "{instance} {} {} -> {id} {} {}{attached}\n",
                v.device, v.snapshot, v.zone, v.state
            ));
        }
        if let Some(image) = image {
            let id = image.id.as_deref().unwrap_or("-");
            out.push_str(&format!(
                "{instance} AMI {} -> {id} {}\n",
                image.name,
                image.devices.join(" ")
            ));
        }
    }
    one_line_each(&out)
}

/// Each line of `text` with its control characters escaped.
fn one_line_each(text: &str) -> String {
    text.lines()
        .map(|l| format!("{}\n", crate::output::messages::one_line(l)))
        .collect()
}

/// `ec2snap_last_success_timestamp_seconds` for this job in a previous metrics file.
pub fn previous_success(text: &str, job: &str) -> Option<f64> {
    let prefix = format!(
        "ec2snap_last_success_timestamp_seconds{{job=\"{}\"}} ",
        label(job)
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse::<f64>().ok())
        // `1e400` parses as infinity, `NaN` as NaN: neither is a time.
        .filter(|v| v.is_finite() && *v > 0.0)
}

/// The most of a previous metrics file read back (it is a few hundred bytes).
const PREVIOUS_MAX: u64 = 1 << 20;

/// A previous metrics file's text, when `path` is a regular file (never a device or a FIFO,
/// which could be endless), at most 1 MiB of it.
pub fn read_previous(path: &Path) -> Option<String> {
    use std::io::Read;
    if !std::fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    let file = std::fs::File::open(path).ok()?;
    file.take(PREVIOUS_MAX).read_to_string(&mut text).ok()?;
    Some(text)
}

/// An output file must be a regular file or not exist yet (the atomic rename would replace a
/// device, a FIFO, a link or a directory entry of another kind), in a directory that exists and
/// takes a new file: checked before any AWS call, by making and removing the temporary file the
/// write will use.
pub fn check_output_path(path: &Path) -> std::io::Result<()> {
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if !m.is_file() {
            return Err(std::io::Error::other("it exists and is not a regular file"));
        }
    }
    // The same file the write will make (a leftover of a killed run with this pid is reused).
    let tmp = temporary(path);
    std::fs::File::create(&tmp).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot create a file beside it: {e}"))
    })?;
    std::fs::remove_file(&tmp)
}

/// The temporary file beside `path` that `write_atomic` renames into place.
fn temporary(path: &Path) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "ec2snap".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes `contents` to `path` atomically: a temporary file beside it, then a rename, so that a
/// reader (node_exporter, a monitoring check) never sees half a file.
pub fn write_atomic(path: &Path, contents: &str) -> std::io::Result<()> {
    check_output_path(path)?;
    let tmp = temporary(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::record::{Kind, SnapshotEntry};
    use chrono::TimeZone;

    fn error(action: &str, kind: Kind) -> ErrorEntry {
        ErrorEntry {
            action: action.into(),
            resource: "r".into(),
            kind,
            code: None,
            message: "m".into(),
            region: None,
        }
    }

    #[test]
    fn metrics_text_and_carry_over() {
        let s = Sample {
            finished: 1_764_120_000.5,
            last_success: None,
            duration: 12.25,
            exit_code: 2,
            totals: (3, 1, 4, 0),
            copies: vec![
                RegionCopies {
                    region: "us-east-1".into(),
                    made: 2,
                    deleted: 1,
                    deferred: 0,
                    max_lag_seconds: Some(181.5),
                },
                RegionCopies {
                    region: "eu-west-1".into(),
                    made: 1,
                    deleted: 0,
                    deferred: 0,
                    max_lag_seconds: None,
                },
            ],
            drills: vec![],
            targets: vec![],
            storage: Some((3 * 1024 * 1024 * 1024, 0.15)),
        };
        let text = metrics("Name=front*", &s);
        assert!(
            text.contains(
                "# TYPE ec2snap_exit_code gauge\nec2snap_exit_code{job=\"Name=front*\"} 2\n"
            ),
            "{text}"
        );
        assert!(text.contains("ec2snap_last_success_timestamp_seconds{job=\"Name=front*\"} 0\n"));
        assert_eq!(text.matches("# HELP ").count(), 14);
        assert!(
            text.contains("ec2snap_copies_deferred{job=\"Name=front*\",region=\"eu-west-1\"} 0\n")
        );
        assert!(text.contains("ec2snap_kept_snapshot_bytes{job=\"Name=front*\"} 3221225472\n"));
        assert!(text.contains("ec2snap_kept_storage_monthly_usd{job=\"Name=front*\"} 0.15\n"));
        let lag = "ec2snap_copy_recovery_point_lag_seconds{job=\"Name=front*\",region=";
        assert!(
            text.contains(&format!("{lag}\"us-east-1\"}} 181.5\n")),
            "{text}"
        );
        assert!(!text.contains(&format!("{lag}\"eu-west-1\"")), "{text}");
        assert!(
            text.contains("ec2snap_copies_created{job=\"Name=front*\",region=\"us-east-1\"} 2\n")
        );
        assert!(
            text.contains("ec2snap_copies_deleted{job=\"Name=front*\",region=\"us-east-1\"} 1\n")
        );
        assert_eq!(
            previous_success(&text, "Name=front*"),
            None,
            "0 means never"
        );
        let ok = metrics(
            "a\"b",
            &Sample {
                last_success: Some(1_764_000_000.0),
                ..s.clone()
            },
        );
        assert!(ok.contains("{job=\"a\\\"b\"}"), "{ok}");
        assert_eq!(previous_success(&ok, "a\"b"), Some(1_764_000_000.0));
        assert_eq!(previous_success(&ok, "other"), None);
        for bad in ["1e400", "-1e400", "NaN", "inf", "0", "-5"] {
            let text = format!("ec2snap_last_success_timestamp_seconds{{job=\"j\"}} {bad}\n");
            assert_eq!(previous_success(&text, "j"), None, "{bad}");
        }
    }

    #[test]
    fn previous_files_and_output_paths() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.prom");
        assert_eq!(read_previous(&file), None);
        assert!(check_output_path(&file).is_ok(), "absent is fine");
        std::fs::write(&file, "x").unwrap();
        assert_eq!(read_previous(&file).as_deref(), Some("x"));
        assert!(check_output_path(&file).is_ok());
        for odd in [Path::new("/dev/full"), Path::new("/dev/zero"), dir.path()] {
            assert_eq!(read_previous(odd), None, "{odd:?}");
            assert!(check_output_path(odd).is_err(), "{odd:?}");
        }
    }

    #[test]
    fn totals_of_a_report() {
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 2, 30, 0).unwrap();
        let snap = |id: Option<&str>| SnapshotEntry {
            id: id.map(String::from),
            volume: "vol-1".into(),
            device: "/dev/sdb".into(),
            description: "d".into(),
            state: "pending".into(),
        };
        let inst = InstanceEntry {
            id: "i-1".into(),
            name: "web".into(),
            state: "running".into(),
            cold: false,
            snapshots: vec![snap(Some("snap-1")), snap(None)],
            deleted: vec![crate::output::record::DeletedEntry {
                id: "snap-0".into(),
                volume: "vol-1".into(),
                start_time: "x".into(),
                reason: "age",
                region: None,
            }],
            copies: vec![crate::output::record::CopyEntry {
                id: Some("snap-c".into()),
                source: "snap-1".into(),
                volume: "vol-1".into(),
                device: "/dev/sdb".into(),
                region: "us-east-1".into(),
                recovery_point_lag_ms: Some(2_500),
                deferred: None,
            }],
            kept: vec![],
            restored: vec![],
            image: None,
            drill: None,
            locked: vec![],
            archived: vec![],
            hooks: None,
            errors: vec![error("CreateSnapshot", Kind::Aws)],
        };
        // A copy's failed deletion, and a set-up error, which counts for neither total.
        let run_errors = vec![
            error("DeleteSnapshot", Kind::Aws),
            error("Setup", Kind::Setup),
        ];
        let taken = |instances: Vec<InstanceEntry>, errors: Vec<ErrorEntry>| Taken {
            region: Some("eu-west-1".into()),
            instances,
            errors,
            deleted: Vec::new(),
            targets: vec![],
        };
        let r = build(false, t, t, 2, taken(vec![inst.clone()], run_errors));
        assert_eq!(
            r.totals,
            Totals {
                instances: 1,
                snapshots_made: 1,
                snapshot_errors: 1,
                deleted: 1,
                deletion_errors: 1,
                copies_made: 1,
                held: 0,
            }
        );
        assert_eq!(
            copies_by_region(&r, &[]),
            vec![RegionCopies {
                region: "us-east-1".into(),
                made: 1,
                deleted: 0,
                deferred: 0,
                max_lag_seconds: Some(2.5),
            }]
        );
        assert_eq!(r.started, "2026-11-26T02:30:00.000Z");
        let dry = build(true, t, t, 0, taken(vec![inst], vec![]));
        assert_eq!(dry.totals.deleted, 0);
        let json = serde_json::to_value(&dry).unwrap();
        assert_eq!(
            json["instances"][0]["snapshots"][1]["id"],
            serde_json::Value::Null
        );
        assert_eq!(json["instances"][0]["deleted"][0]["reason"], "age");
    }
}
