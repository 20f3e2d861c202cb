//! Snapshot locks (`--lock`), derived from the retention rules: a snapshot is locked until the
//! rules are sure to keep it — its `-g` window, or, once the period it is the newest of is over,
//! the start of the period N periods later for the calendar rule that keeps it — never past
//! `--lock-max`; and the lock a snapshot's `ec2snap:locked-until` tag says it has.

use crate::model::{LockInfo, Snapshot};
use crate::retention::policy::{Period, Reason};
use crate::retention::policy::{Rule, Zone};
use crate::tags::LOCK_TAG;
use chrono::{
    DateTime, Datelike, Days, Duration, Local, Months, NaiveDate, NaiveDateTime, TimeZone,
    Timelike, Utc,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Users with the IAM permission can unlock it.
    Governance,
    /// Nobody can delete it or shorten the lock once the cool-off (hours) is over.
    Compliance { cool_off_hours: u32 },
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Governance => "governance",
            Mode::Compliance { .. } => "compliance",
        }
    }
}

/// `--lock` and `--lock-max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockPolicy {
    pub mode: Mode,
    /// The longest lock, in days.
    pub max_days: u32,
}

/// Until when a snapshot is locked: EC2's lock when it was read (whoever set it; the tag is then
/// only a hint for people, a forged or stale one changes nothing), else what its
/// `ec2snap:locked-until` tag says.
pub fn locked_until(s: &Snapshot) -> Option<DateTime<Utc>> {
    match &s.lock {
        LockInfo::Locked(l) => Some(l.until),
        LockInfo::Unlocked => None,
        LockInfo::Unknown => {
            let text = s.tags.get(LOCK_TAG)?;
            DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        }
    }
}

/// What holds a snapshot beyond the rules at `now`: a lock not over yet (with its mode when EC2
/// said it), else an AMI that uses it.
pub fn holds(s: &Snapshot, now: DateTime<Utc>) -> Option<Reason> {
    if let Some(until) = locked_until(s).filter(|until| *until > now) {
        let mode = match &s.lock {
            LockInfo::Locked(l) => Some(l.state.clone()),
            _ => None,
        };
        return Some(Reason::Locked(until, mode));
    }
    s.in_use_by.clone().map(Reason::InUse)
}

/// What holds a set (kept whole): its longest member lock, else a member an AMI uses.
pub fn set_holds(members: &[Snapshot], now: DateTime<Utc>) -> Option<Reason> {
    let reasons: Vec<Reason> = members.iter().filter_map(|m| holds(m, now)).collect();
    let longest = reasons
        .iter()
        .filter(|r| matches!(r, Reason::Locked(..)))
        .max_by_key(|r| match r {
            Reason::Locked(until, _) => Some(*until),
            _ => None,
        })
        .cloned();
    longest.or_else(|| reasons.into_iter().next())
}

/// Whether a compliance lock of `s` now carries the cool-off: its first compliance lock (of a
/// snapshot unlocked or locked in governance mode), and a change within the cool-off (which
/// would otherwise end it); not the extension of a compliance lock past its cool-off, which EC2
/// refuses with one. Unknown (the locks could not be read) carries it: a cool-off too many is an
/// error that says so, a compliance lock without one can never be undone.
pub fn carries_cool_off(s: &Snapshot) -> bool {
    match &s.lock {
        LockInfo::Locked(l) => l.state != "compliance",
        LockInfo::Unlocked | LockInfo::Unknown => true,
    }
}

/// The start of the period of `t`, plus `n` periods, in `t`'s time zone.
fn periods_after<Tz: TimeZone>(period: Period, t: &DateTime<Tz>, n: u32) -> Option<DateTime<Utc>> {
    let day = t.date_naive();
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0);
    let start: NaiveDateTime = match period {
        Period::Hourly => day.and_hms_opt(t.hour(), 0, 0)?,
        Period::Daily => midnight(day)?,
        Period::Weekly => midnight(day - Days::new(u64::from(t.weekday().num_days_from_monday())))?,
        Period::Monthly => midnight(day.with_day(1)?)?,
        Period::Yearly => midnight(NaiveDate::from_ymd_opt(t.year(), 1, 1)?)?,
    };
    // Checked: a count the flags accept (`--keep-yearly 999999999`) lands past what a date holds.
    let end = match period {
        Period::Hourly => start.checked_add_signed(Duration::try_hours(i64::from(n))?)?,
        Period::Daily => start.checked_add_days(Days::new(u64::from(n)))?,
        Period::Weekly => start.checked_add_days(Days::new(7 * u64::from(n)))?,
        Period::Monthly => start.checked_add_months(Months::new(n))?,
        Period::Yearly => start.checked_add_months(Months::new(n.checked_mul(12)?))?,
    };
    // A local time that a DST change skips: the first instant after it.
    let zone = t.timezone();
    zone.from_local_datetime(&end)
        .earliest()
        .or_else(|| {
            zone.from_local_datetime(&end.checked_add_signed(Duration::hours(1))?)
                .earliest()
        })
        .map(|e| e.with_timezone(&Utc))
}

/// How many periods the rule keeps.
fn count(rule: &Rule, period: Period) -> usize {
    let k = &rule.keep;
    match period {
        Period::Hourly => k.hourly,
        Period::Daily => k.daily,
        Period::Weekly => k.weekly,
        Period::Monthly => k.monthly,
        Period::Yearly => k.yearly,
    }
}

/// Until when the rules are sure to keep a snapshot made at `t` that they keep now for `reasons`:
/// the `-g` window (by age, whatever comes later); a calendar rule's horizon only once the period
/// it is the newest of is over (until then a later snapshot may take its place). `None`: no rule
/// is sure (`-d` counts snapshots, not time). A calendar rule's "(oldest)" fill-in (kept while
/// fewer periods than N have a snapshot) is sure of nothing: the next period's snapshot may end
/// it, so it is locked only as long as another reason is sure of.
pub fn sure_until(
    rule: &Rule,
    t: DateTime<Utc>,
    reasons: &[Reason],
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut until = rule
        .max_age_secs
        .and_then(Duration::try_seconds)
        .and_then(|g| t.checked_add_signed(g));
    for r in reasons {
        let Reason::Period {
            period,
            oldest: false,
            ..
        } = r
        else {
            continue;
        };
        let n = u32::try_from(count(rule, *period)).unwrap_or(u32::MAX);
        let (closed, horizon) = match rule.zone {
            Zone::Utc => (periods_after(*period, &t, 1), periods_after(*period, &t, n)),
            Zone::Local => {
                let local = t.with_timezone(&Local);
                (
                    periods_after(*period, &local, 1),
                    periods_after(*period, &local, n),
                )
            }
        };
        if closed.is_some_and(|c| c <= now) {
            until = until.max(horizon);
        }
    }
    until
}

/// The lock to set on a snapshot made at `t`, kept for `reasons`, whose tag says `current`: whole
/// days from now, at least 1, never past `--lock-max` and never past what the rules are sure of
/// (to within an hour);
/// `None` when it has a lock as long already (or the rules are sure of less than a day).
pub fn wanted(
    rule: &Rule,
    policy: &LockPolicy,
    t: DateTime<Utc>,
    reasons: &[Reason],
    current: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<u32> {
    let sure = sure_until(rule, t, reasons, now)?;
    // Within an hour: a snapshot made a few seconds before its lock, under `-g 10 d`, gets 10 days.
    let days = (sure - now + Duration::hours(1))
        .num_days()
        .min(i64::from(policy.max_days));
    let days = u32::try_from(days).ok().filter(|d| *d >= 1)?;
    let until = now.checked_add_signed(Duration::try_days(i64::from(days))?)?;
    // A lock is only extended, by a day at least.
    match current {
        Some(c) if until < c.checked_add_signed(Duration::days(1)).unwrap_or(c) => None,
        _ => Some(days),
    }
}

/// The kept snapshots to lock, or to lock longer, each with its days (see `wanted`).
pub fn to_lock<'a>(
    kept: impl IntoIterator<Item = (&'a Snapshot, &'a [Reason])>,
    rule: &Rule,
    policy: &LockPolicy,
    now: DateTime<Utc>,
) -> Vec<(&'a Snapshot, u32)> {
    kept.into_iter()
        .filter_map(|(s, why)| {
            // A governance lock under `--lock compliance` is locked again, in compliance mode (its
            // first, with the cool-off), even when not longer.
            let upgrade = matches!(policy.mode, Mode::Compliance { .. })
                && matches!(&s.lock, LockInfo::Locked(l) if !l.is_compliance());
            let current = if upgrade { None } else { locked_until(s) };
            let days = wanted(rule, policy, s.start_time, why, current, now)?;
            Some((s, days))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retention::policy::Keep;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn period(p: Period) -> Reason {
        Reason::Period {
            period: p,
            label: String::new(),
            oldest: false,
        }
    }

    #[test]
    fn locks_follow_what_the_rules_are_sure_to_keep() {
        let now = at("2026-11-26T12:00:00Z");
        let policy = LockPolicy {
            mode: Mode::Governance,
            max_days: 400,
        };
        let rules = Rule {
            max_age_secs: None,
            keep: Keep {
                daily: 7,
                monthly: 12,
                ..Keep::default()
            },
            zone: Zone::Utc,
            keep_tags: Vec::new(),
        };
        let g10 = Rule {
            max_age_secs: Some(10 * 86_400),
            zone: Zone::Utc,
            ..Rule::default()
        };
        let last3 = Rule::last(3);
        let daily = [period(Period::Daily)];
        let monthly = [period(Period::Daily), period(Period::Monthly)];
        // (rule, made at, reasons, current lock, wanted days)
        type Case<'a> = (
            &'a Rule,
            &'a str,
            &'a [Reason],
            Option<&'a str>,
            Option<u32>,
        );
        let cases: Vec<Case> = vec![
            // -g 10 d: a snapshot made now is kept 10 days by age.
            (
                &g10,
                "2026-11-26T12:00:00Z",
                &[Reason::ThisRun],
                None,
                Some(10),
            ),
            (
                &g10,
                "2026-11-20T12:00:00Z",
                &[Reason::Young],
                None,
                Some(4),
            ),
            // Today's newest: today is not over, a later snapshot may replace it.
            (&rules, "2026-11-26T02:00:00Z", &daily, None, None),
            // Yesterday's newest: kept while among the last 7 days, until 2026-12-02T00:00.
            (&rules, "2026-11-25T02:00:00Z", &daily, None, Some(5)),
            // October's newest: until 12 months after October began, 2027-10-01; 308 days.
            (&rules, "2026-10-31T23:00:00Z", &monthly, None, Some(308)),
            // November's newest, November not over: only its day, which is over.
            (&rules, "2026-11-24T23:00:00Z", &monthly, None, Some(4)),
            // Already locked as long: nothing to do; shorter: extended.
            (
                &rules,
                "2026-11-25T02:00:00Z",
                &daily,
                Some("2026-12-01T12:00:00Z"),
                None,
            ),
            (
                &rules,
                "2026-11-25T02:00:00Z",
                &daily,
                Some("2026-11-28T12:00:00Z"),
                Some(5),
            ),
            // -d alone is sure of nothing.
            (
                &last3,
                "2026-11-20T12:00:00Z",
                &[Reason::Last(1)],
                None,
                None,
            ),
            // Less than a day left: no lock.
            (&g10, "2026-11-16T13:00:00Z", &[Reason::Young], None, None),
        ];
        for (rule, made, reasons, current, want) in cases {
            let got = wanted(rule, &policy, at(made), reasons, current.map(at), now);
            assert_eq!(got, want, "{made} {reasons:?} {current:?}");
        }
        // --lock-max caps it.
        let short = LockPolicy {
            max_days: 30,
            ..policy
        };
        let got = wanted(
            &rules,
            &short,
            at("2026-10-31T23:00:00Z"),
            &monthly,
            None,
            now,
        );
        assert_eq!(got, Some(30));
    }

    #[test]
    fn periods_in_a_zone_with_daylight_saving() {
        let berlin = chrono_tz::Europe::Berlin;
        // 2026-03-29 02:00 does not exist in Berlin: the day after the 28th starts at 23:00 UTC.
        let t = berlin.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap();
        assert_eq!(
            periods_after(Period::Daily, &t, 1),
            Some(at("2026-03-28T23:00:00Z"))
        );
        assert_eq!(
            periods_after(Period::Weekly, &t, 1),
            Some(at("2026-03-29T22:00:00Z"))
        );
        assert_eq!(
            periods_after(Period::Yearly, &t, 2),
            Some(at("2027-12-31T23:00:00Z"))
        );
    }

    #[test]
    fn an_oldest_fill_in_is_sure_of_nothing_and_huge_counts_do_not_panic() {
        let now = at("2026-11-26T12:00:00Z");
        let made = at("2026-01-05T10:00:00Z");
        let yearly = |n: usize| Rule {
            max_age_secs: None,
            keep: Keep {
                yearly: n,
                ..Keep::default()
            },
            zone: Zone::Utc,
            keep_tags: Vec::new(),
        };
        let oldest = Reason::Period {
            period: Period::Yearly,
            label: "2026".into(),
            oldest: true,
        };
        // Kept as the oldest fill-in of --keep-yearly 3: the next year's snapshot may end it.
        assert_eq!(sure_until(&yearly(3), made, &[oldest], now), None);
        // Its period's newest, once the period is over, is sure for N periods.
        let before = at("2025-06-01T00:00:00Z");
        assert_eq!(
            sure_until(&yearly(3), before, &[period(Period::Yearly)], now),
            Some(at("2028-01-01T00:00:00Z"))
        );
        // Counts and ages the flags accept, past what a date holds: no panic, no lock past it.
        for p in [
            Period::Hourly,
            Period::Daily,
            Period::Weekly,
            Period::Monthly,
            Period::Yearly,
        ] {
            let mut rule = yearly(0);
            rule.max_age_secs = Some(i64::MAX / 2);
            rule.keep.hourly = 999_999_999;
            rule.keep.daily = 999_999_999;
            rule.keep.weekly = 999_999_999;
            rule.keep.monthly = 999_999_999;
            rule.keep.yearly = 999_999_999;
            let _ = sure_until(&rule, before, &[period(p)], now);
            let policy = LockPolicy {
                mode: Mode::Governance,
                max_days: u32::MAX,
            };
            let _ = wanted(&rule, &policy, before, &[period(p)], None, now);
        }
    }
}
