//! The archive tier (`--archive-after N UNIT`): which kept snapshots move to EBS's archive tier —
//! completed, older than N, not the newest of their volume, and kept by the rules for 90 days
//! more at least (the archive bills 90 days whatever happens) — and what deleting an archived
//! snapshot before its 90 days are over still costs.

use crate::model::{Snapshot, SnapshotState};
use crate::retention::lock;
use crate::retention::policy::Reason;
use crate::retention::policy::Rule;
use crate::tags::ARCHIVED_TAG;
use chrono::{DateTime, Duration, Utc};

/// The archive tier bills at least this many days.
pub const MINIMUM_DAYS: i64 = 90;

/// us-east-1's price of the archive tier, per GB-month.
pub const ARCHIVE_PRICE: f64 = 0.0125;

/// What kept snapshots cost a month, from their full sizes (FullSnapshotSizeInBytes, where EC2
/// gives it) at us-east-1's prices: an upper bound, since EBS bills a snapshot by the blocks it
/// adds to the ones before it, not by its full size. `list` and `--report` show it.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, PartialEq, Eq)]
pub struct Storage {
    /// How many kept snapshots have a known size, and those sizes added up.
    pub sized: usize,
    pub kept_bytes: i64,
    /// Per month, in millionths of a dollar (written in dollars).
    #[serde(rename = "monthly_usd", serialize_with = "dollars")]
    pub monthly_micros: i64,
    /// What the archive tier saves of it, per month.
    #[serde(rename = "archive_saving_usd", serialize_with = "dollars")]
    pub saving_micros: i64,
}

/// Dollars per GB-month, in millionths: the standard and the archive tier.
const STANDARD_MICROS: i64 = 50_000;
const ARCHIVE_MICROS: i64 = 12_500;

fn dollars<S: serde::Serializer>(micros: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((*micros as f64 / 10_000.0).round() / 100.0)
}

impl Storage {
    pub fn is_empty(&self) -> bool {
        self.sized == 0
    }

    pub fn add(&mut self, other: &Storage) {
        self.sized += other.sized;
        self.kept_bytes += other.kept_bytes;
        self.monthly_micros += other.monthly_micros;
        self.saving_micros += other.saving_micros;
    }

    /// One kept snapshot of `bytes`, in the archive tier or not.
    pub fn add_snapshot(&mut self, bytes: i64, archived: bool) {
        let micros = |price: i64| (i128::from(bytes) * i128::from(price) / 1_000_000_000) as i64;
        self.sized += 1;
        self.kept_bytes += bytes;
        if archived {
            self.monthly_micros += micros(ARCHIVE_MICROS);
            self.saving_micros += micros(STANDARD_MICROS - ARCHIVE_MICROS);
        } else {
            self.monthly_micros += micros(STANDARD_MICROS);
        }
    }
}

/// The kept snapshots of one volume (newest first, with their reasons) to archive.
pub fn to_archive<'a>(
    kept: &[(&'a Snapshot, &[Reason])],
    rule: &Rule,
    after_secs: i64,
    now: DateTime<Utc>,
) -> Vec<&'a Snapshot> {
    let newest = kept
        .iter()
        .find(|(s, _)| s.state == SnapshotState::Completed)
        .map(|(s, _)| s.id.as_str());
    kept.iter()
        .filter(|(s, _)| Some(s.id.as_str()) != newest)
        .filter(|(s, _)| s.state == SnapshotState::Completed)
        .filter(|(s, _)| s.tier.as_deref() != Some("archive"))
        .filter(|(s, _)| (now - s.start_time).num_seconds() > after_secs)
        .filter(|(s, why)| {
            lock::sure_until(rule, s.start_time, why, now)
                .is_some_and(|until| until >= now + Duration::days(MINIMUM_DAYS))
        })
        .map(|(s, _)| *s)
        .collect()
}

/// Deleting an archived snapshot before its 90 days are over: the days still billed, and what
/// they cost when its size is known.
pub fn early_deletion(s: &Snapshot, now: DateTime<Utc>) -> Option<(i64, Option<f64>)> {
    if s.tier.as_deref() != Some("archive") {
        return None;
    }
    let archived = DateTime::parse_from_rfc3339(s.tags.get(ARCHIVED_TAG)?).ok()?;
    let left = MINIMUM_DAYS - (now - archived.with_timezone(&Utc)).num_days();
    if left <= 0 {
        return None;
    }
    let cost = s
        .size_bytes
        .map(|b| b as f64 / 1e9 * ARCHIVE_PRICE * left as f64 / 30.0);
    Some((left, cost))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retention::policy::Zone;
    use crate::retention::policy::{Keep, Period};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn snap(id: &str, time: &str) -> Snapshot {
        Snapshot {
            id: id.into(),
            volume_id: "vol-1".into(),
            start_time: at(time),
            state: SnapshotState::Completed,
            tags: Default::default(),
            description: String::new(),
            progress: None,
            tier: None,
            size_bytes: Some(8_000_000_000),
            lock: Default::default(),
            in_use_by: None,
        }
    }

    #[test]
    fn monthly_and_yearly_keepers_go_to_the_archive() {
        let now = at("2026-11-26T12:00:00Z");
        let rule = Rule {
            keep: Keep {
                daily: 7,
                monthly: 12,
                ..Keep::default()
            },
            zone: Zone::Utc,
            ..Rule::default()
        };
        let monthly = |label: &str| Reason::Period {
            period: Period::Monthly,
            label: label.into(),
            oldest: false,
        };
        let daily = Reason::Period {
            period: Period::Daily,
            label: String::new(),
            oldest: false,
        };
        let today = snap("snap-today", "2026-11-26T02:00:00Z");
        let oct = snap("snap-oct", "2026-10-31T23:00:00Z");
        let mut old_pending = snap("snap-pending", "2026-09-30T23:00:00Z");
        old_pending.state = SnapshotState::Pending;
        let mut archived = snap("snap-aug", "2026-08-31T23:00:00Z");
        archived.tier = Some("archive".into());
        // Kept by the monthly rule until 2026-12-01 only: not 90 days more.
        let dec_2025 = snap("snap-2025-12", "2025-12-31T23:00:00Z");
        let yesterday = snap("snap-yesterday", "2026-11-25T02:00:00Z");
        let m = [monthly("x")];
        let d = [daily];
        let kept: Vec<(&Snapshot, &[Reason])> = vec![
            (&today, &m),
            (&yesterday, &d),
            (&oct, &m),
            (&old_pending, &m),
            (&archived, &m),
            (&dec_2025, &m),
        ];
        let ids: Vec<&str> = to_archive(&kept, &rule, 30 * 86_400, now)
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        // Yesterday's is too young (and daily), October's is not older than 30 days.
        assert_eq!(ids, Vec::<&str>::new());
        let ids: Vec<&str> = to_archive(&kept, &rule, 20 * 86_400, now)
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(ids, ["snap-oct"]);
        // Deleting an archived snapshot early: the days left, and their cost.
        let mut early = archived.clone();
        early
            .tags
            .insert(ARCHIVED_TAG.into(), "2026-10-27T12:00:00Z".into());
        let (left, cost) = early_deletion(&early, now).unwrap();
        assert_eq!(left, 60);
        assert!((cost.unwrap() - 0.2).abs() < 1e-9, "{cost:?}");
        early
            .tags
            .insert(ARCHIVED_TAG.into(), "2026-07-01T00:00:00Z".into());
        assert_eq!(early_deletion(&early, now), None);
        assert_eq!(early_deletion(&oct, now), None);
    }
}
