//! The keep policy, as restic's `forget` defines it: which items (snapshots, or `--consistent`
//! sets) stay and why, by the `-g` window, `-d` (`--keep-last`) and the calendar rules
//! (`--keep-hourly` ... `--keep-yearly`), with `now` and the time zone of the periods passed in.

use chrono::{DateTime, Datelike, Local, TimeZone, Timelike, Utc};
use std::fmt;

/// How many items each rule keeps; 0 turns a rule off. `last` is `-d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Keep {
    pub last: usize,
    pub hourly: usize,
    pub daily: usize,
    pub weekly: usize,
    pub monthly: usize,
    pub yearly: usize,
}

impl Keep {
    /// Whether any rule keeps something (`-d` or a calendar rule).
    pub fn any(&self) -> bool {
        self.last > 0 || self.has_calendar()
    }

    /// The floor: how many of a volume's newest usable snapshots no decision may delete, whatever
    /// the mode (per volume, sets, copies): `-d N`, and at least 1 when a calendar rule is set.
    /// `-g` alone has none (the original's `-g` deletes everything older).
    pub fn floor(&self) -> usize {
        self.last.max(usize::from(self.has_calendar()))
    }

    /// Whether a calendar rule (`--keep-hourly` ... `--keep-yearly`) is set.
    pub fn has_calendar(&self) -> bool {
        self.calendar().iter().any(|(_, n)| *n > 0)
    }

    fn calendar(&self) -> [(Period, usize); 5] {
        [
            (Period::Hourly, self.hourly),
            (Period::Daily, self.daily),
            (Period::Weekly, self.weekly),
            (Period::Monthly, self.monthly),
            (Period::Yearly, self.yearly),
        ]
    }
}

/// The calendar periods of the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Period {
    pub fn name(self) -> &'static str {
        match self {
            Period::Hourly => "hourly",
            Period::Daily => "daily",
            Period::Weekly => "weekly",
            Period::Monthly => "monthly",
            Period::Yearly => "yearly",
        }
    }

    /// The period a time falls in, in the time zone of `t`: `2026-11-25T14`, `2026-11-25`,
    /// `2026-W48` (ISO week), `2026-11`, `2026`.
    pub fn label<Tz: TimeZone>(self, t: &DateTime<Tz>) -> String {
        match self {
            Period::Hourly => format!(
                "{:04}-{:02}-{:02}T{:02}",
                t.year(),
                t.month(),
                t.day(),
                t.hour()
            ),
            Period::Daily => format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day()),
            Period::Weekly => {
                let w = t.iso_week();
                format!("{:04}-W{:02}", w.year(), w.week())
            }
            Period::Monthly => format!("{:04}-{:02}", t.year(), t.month()),
            Period::Yearly => format!("{:04}", t.year()),
        }
    }
}

/// Why an item stays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Made (or planned) by this run.
    ThisRun,
    /// Younger than `-g`: inside the window that is never pruned.
    Young,
    /// The n-th newest usable item (`-d`).
    Last(usize),
    /// The newest item of its period; `oldest` when it is kept as restic does, because the rule
    /// has periods left but no older item: the oldest item then stays too.
    Period {
        period: Period,
        label: String,
        oldest: bool,
    },
    /// One of the newest usable snapshots of this volume that the floor keeps (a set stays whole
    /// for it).
    Floor(String),
    /// Locked against deletion until then (EC2's lock, whoever set it, in this mode when read;
    /// else the `ec2snap:locked-until` tag).
    Locked(DateTime<Utc>, Option<String>),
    /// Used by an AMI of this account (DescribeImages): deleting it would fail.
    InUse(String),
    /// A legal hold (`ec2snap hold`), with its reason: never deleted, not counted by the rules.
    Held(String),
    /// `--keep-tag KEY=VALUE`: kept as a held snapshot is.
    KeepTag(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::ThisRun => write!(f, "made by this run"),
            Reason::Locked(until, mode) => {
                write!(f, "locked until {}", until.format("%Y-%m-%d %H:%M UTC"))?;
                match mode {
                    Some(m) => write!(f, " ({m})"),
                    None => Ok(()),
                }
            }
            Reason::InUse(image) => write!(f, "in use by {image}"),
            Reason::Young => write!(f, "younger than -g"),
            Reason::Last(n) => write!(f, "last {n}"),
            Reason::Period {
                period,
                label,
                oldest: false,
            } => write!(f, "{} {label}", period.name()),
            Reason::Period {
                period,
                label,
                oldest: true,
            } => write!(f, "{} {label} (oldest)", period.name()),
            Reason::Floor(volume) => write!(f, "floor of {volume}"),
            Reason::Held(reason) => write!(f, "HELD: {reason}"),
            Reason::KeepTag(tag) => write!(f, "tag {tag}"),
        }
    }
}

/// What the policy knows of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item<'a> {
    pub id: &'a str,
    /// When it was taken; `None` (an empty set) never counts and never stays by age.
    pub time: Option<DateTime<Utc>>,
    /// False for a snapshot (or a set with a member) in state `error`: it fills no rule.
    pub usable: bool,
    /// Made by this run: always stays, and counts for its period.
    pub protected: bool,
}

/// The reasons each item stays, index for index; an item without a reason goes. Items with no
/// reason at all when no rule is set (`window` is `None` and `keep` keeps nothing) stay: callers
/// do not prune then.
///
/// - `window` (`-g`): items younger than it (or exactly as old) stay. Alone, everything older
///   goes (the original's `-g`); with keep rules, older items go unless a rule keeps them.
/// - `keep.last`: the N newest usable items.
/// - each calendar rule: going from the newest usable item to the oldest, the newest item of each
///   period, for the N most recent periods that have one; when fewer periods than N have an item,
///   the oldest usable item stays too (restic ≥ 0.17).
pub fn reasons<Tz: TimeZone>(
    items: &[Item],
    window: Option<i64>,
    keep: &Keep,
    now: DateTime<Utc>,
    tz: &Tz,
) -> Vec<Vec<Reason>> {
    let mut out: Vec<Vec<Reason>> = vec![Vec::new(); items.len()];
    for (n, item) in items.iter().enumerate() {
        if item.protected {
            out[n].push(Reason::ThisRun);
        }
        if let (Some(max), Some(t)) = (window, item.time) {
            if (now - t).num_seconds() <= max {
                out[n].push(Reason::Young);
            }
        }
    }
    // Usable items newest first; ties in time broken by id so that the answer never depends on
    // the order of the input.
    let mut usable: Vec<(usize, DateTime<Utc>)> = items
        .iter()
        .enumerate()
        .filter(|(_, i)| i.usable)
        .filter_map(|(n, i)| i.time.map(|t| (n, t)))
        .collect();
    usable.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| items[b.0].id.cmp(items[a.0].id)));
    for (rank, (n, _)) in usable.iter().take(keep.last).enumerate() {
        out[*n].push(Reason::Last(rank + 1));
    }
    for (period, count) in keep.calendar() {
        if count == 0 {
            continue;
        }
        let mut left = count;
        let mut previous: Option<String> = None;
        for (pos, (n, t)) in usable.iter().enumerate() {
            if left == 0 {
                break;
            }
            let label = period.label(&t.with_timezone(tz));
            let newest_of_period = previous.as_deref() != Some(label.as_str());
            if newest_of_period || pos + 1 == usable.len() {
                previous = Some(label.clone());
                left -= 1;
                out[*n].push(Reason::Period {
                    period,
                    label,
                    oldest: !newest_of_period,
                });
            }
        }
    }
    out
}

/// The time zone of the calendar periods: the machine's (like the log), or UTC with `--utc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Zone {
    #[default]
    Local,
    Utc,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    /// `-g`: delete snapshots strictly older than this (whole seconds, like the original); with
    /// keep rules, the window that is never pruned.
    pub max_age_secs: Option<i64>,
    /// `-d` and the calendar rules.
    pub keep: Keep,
    pub zone: Zone,
    /// `--keep-tag`: snapshots with one of these tags are kept as held ones are (see `hold`).
    pub keep_tags: Vec<KeepTag>,
}

impl Rule {
    pub fn is_enabled(&self) -> bool {
        self.max_age_secs.is_some() || self.keep.any()
    }

    /// `-d N` alone.
    #[cfg(test)]
    pub fn last(n: usize) -> Rule {
        Rule {
            keep: Keep {
                last: n,
                ..Keep::default()
            },
            ..Rule::default()
        }
    }

    /// `-g` alone.
    #[cfg(test)]
    pub fn age(secs: i64) -> Rule {
        Rule {
            max_age_secs: Some(secs),
            ..Rule::default()
        }
    }

    /// Why each item stays, in the rule's time zone.
    pub fn reasons(&self, items: &[Item], now: DateTime<Utc>) -> Vec<Vec<Reason>> {
        match self.zone {
            Zone::Utc => reasons(items, self.max_age_secs, &self.keep, now, &Utc),
            Zone::Local => reasons(items, self.max_age_secs, &self.keep, now, &Local),
        }
    }

    /// What the report says of a deletion: `age` with `-g`, `count` with `-d` alone, else
    /// `calendar`.
    pub fn deletion_reason(&self) -> &'static str {
        if self.max_age_secs.is_some() {
            "age"
        } else if self.keep.has_calendar() {
            "calendar"
        } else {
            "count"
        }
    }
}

/// `--keep-tag KEY=VALUE`: a snapshot with this tag is kept like a held one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeepTag {
    pub key: String,
    pub value: String,
}

impl KeepTag {
    /// `KEY=VALUE`, split at the first `=` (a value may hold one); the key is not empty.
    pub fn parse(text: &str) -> anyhow::Result<KeepTag> {
        let Some((key, value)) = text.split_once('=') else {
            anyhow::bail!("--keep-tag takes KEY=VALUE (here {text:?})");
        };
        if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
            anyhow::bail!("--keep-tag takes KEY=VALUE, a key of 1 to 128 characters and a value of at most 256 (here {text:?})");
        }
        Ok(KeepTag {
            key: key.to_string(),
            value: value.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Berlin;
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn items(times: &[&str]) -> Vec<(String, DateTime<Utc>)> {
        times
            .iter()
            .enumerate()
            .map(|(n, t)| (format!("s{n:02}"), utc(t)))
            .collect()
    }

    /// The reasons, as text, of the items that stay, by id.
    fn kept<Tz: TimeZone>(
        times: &[&str],
        window: Option<i64>,
        keep: Keep,
        now: &str,
        tz: &Tz,
    ) -> Vec<(String, String)> {
        let owned = items(times);
        let list: Vec<Item> = owned
            .iter()
            .map(|(id, t)| Item {
                id,
                time: Some(*t),
                usable: true,
                protected: false,
            })
            .collect();
        let mut out: Vec<(String, String)> = reasons(&list, window, &keep, utc(now), tz)
            .into_iter()
            .zip(&owned)
            .filter(|(r, _)| !r.is_empty())
            .map(|(r, (id, _))| {
                let text: Vec<String> = r.iter().map(|r| r.to_string()).collect();
                (id.clone(), text.join(", "))
            })
            .collect();
        out.sort();
        out
    }

    fn pairs(want: &[(&str, &str)]) -> Vec<(String, String)> {
        want.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    const NOW: &str = "2026-11-26T12:00:00Z";

    #[test]
    fn calendar_table() {
        let daily = |n| Keep {
            daily: n,
            ..Keep::default()
        };
        let weekly = |n| Keep {
            weekly: n,
            ..Keep::default()
        };
        let monthly = |n| Keep {
            monthly: n,
            ..Keep::default()
        };
        let yearly = |n| Keep {
            yearly: n,
            ..Keep::default()
        };
        let hourly = |n| Keep {
            hourly: n,
            ..Keep::default()
        };
        // (name, snapshot times, window, rules, kept ids with their reasons)
        type Case<'a> = (
            &'a str,
            Vec<&'a str>,
            Option<i64>,
            Keep,
            Vec<(&'a str, &'a str)>,
        );
        let cases: Vec<Case> = vec![
            (
                "several in one day: the newest of the day stays",
                vec![
                    "2026-11-25T01:00:00Z",
                    "2026-11-25T13:00:00Z",
                    "2026-11-25T23:00:00Z",
                    "2026-11-24T23:59:59Z",
                ],
                None,
                daily(2),
                vec![("s02", "daily 2026-11-25"), ("s03", "daily 2026-11-24")],
            ),
            (
                "days without a snapshot do not count",
                vec![
                    "2026-11-25T01:00:00Z",
                    "2026-11-20T01:00:00Z",
                    "2026-11-10T01:00:00Z",
                    "2026-11-01T01:00:00Z",
                ],
                None,
                daily(3),
                vec![
                    ("s00", "daily 2026-11-25"),
                    ("s01", "daily 2026-11-20"),
                    ("s02", "daily 2026-11-10"),
                ],
            ),
            (
                "fewer periods than N: the oldest stays too, as in restic",
                vec![
                    "2026-11-25T10:00:00Z",
                    "2026-11-25T09:00:00Z",
                    "2026-11-24T10:00:00Z",
                    "2026-11-24T09:00:00Z",
                ],
                None,
                daily(7),
                vec![
                    ("s00", "daily 2026-11-25"),
                    ("s02", "daily 2026-11-24"),
                    ("s03", "daily 2026-11-24 (oldest)"),
                ],
            ),
            (
                "month ends: 31 Jan, 28 Feb, 31 Mar are three months",
                vec![
                    "2026-01-31T23:00:00Z",
                    "2026-02-01T00:00:00Z",
                    "2026-02-28T23:59:59Z",
                    "2026-03-01T00:00:00Z",
                    "2026-03-31T23:59:59Z",
                ],
                None,
                monthly(2),
                vec![("s02", "monthly 2026-02"), ("s04", "monthly 2026-03")],
            ),
            (
                "leap year: 29 Feb 2028 is its own day, in February",
                vec![
                    "2028-02-28T12:00:00Z",
                    "2028-02-29T12:00:00Z",
                    "2028-03-01T12:00:00Z",
                ],
                None,
                Keep {
                    daily: 2,
                    monthly: 1,
                    ..Keep::default()
                },
                vec![
                    ("s01", "daily 2028-02-29"),
                    ("s02", "daily 2028-03-01, monthly 2028-03"),
                ],
            ),
            (
                "ISO week 53: 2026-12-31 and 2027-01-03 are both 2026-W53",
                vec![
                    "2026-12-27T12:00:00Z",
                    "2026-12-31T12:00:00Z",
                    "2027-01-03T12:00:00Z",
                    "2027-01-04T12:00:00Z",
                ],
                None,
                weekly(3),
                vec![
                    ("s00", "weekly 2026-W52"),
                    ("s02", "weekly 2026-W53"),
                    ("s03", "weekly 2027-W01"),
                ],
            ),
            (
                "ISO week-year differs from the calendar year: 2024-12-30 is 2025-W01",
                vec!["2024-12-29T12:00:00Z", "2024-12-30T12:00:00Z"],
                None,
                weekly(2),
                vec![("s00", "weekly 2024-W52"), ("s01", "weekly 2025-W01")],
            ),
            (
                "yearly",
                vec![
                    "2024-06-01T00:00:00Z",
                    "2025-01-01T00:00:00Z",
                    "2025-12-31T23:59:59Z",
                    "2026-03-01T00:00:00Z",
                ],
                None,
                yearly(2),
                vec![("s02", "yearly 2025"), ("s03", "yearly 2026")],
            ),
            (
                "hourly",
                vec![
                    "2026-11-26T10:05:00Z",
                    "2026-11-26T10:55:00Z",
                    "2026-11-26T11:00:00Z",
                ],
                None,
                hourly(2),
                vec![
                    ("s01", "hourly 2026-11-26T10"),
                    ("s02", "hourly 2026-11-26T11"),
                ],
            ),
            (
                "one item, several rules: every reason is named",
                vec!["2026-11-25T10:00:00Z"],
                None,
                Keep {
                    last: 1,
                    daily: 7,
                    weekly: 4,
                    ..Keep::default()
                },
                vec![("s00", "last 1, daily 2026-11-25, weekly 2026-W48")],
            ),
            (
                "-g with rules is a window that is never pruned",
                vec![
                    "2026-11-26T11:00:00Z",
                    "2026-11-26T10:00:00Z",
                    "2026-11-20T10:00:00Z",
                    "2026-11-19T10:00:00Z",
                ],
                Some(3 * 3600),
                Keep {
                    last: 1,
                    ..Keep::default()
                },
                vec![
                    ("s00", "younger than -g, last 1"),
                    ("s01", "younger than -g"),
                ],
            ),
            (
                "-g alone: everything older goes",
                vec!["2026-11-26T11:00:00Z", "2026-11-20T10:00:00Z"],
                Some(86_400),
                Keep::default(),
                vec![("s00", "younger than -g")],
            ),
            (
                "-g is inclusive: exactly as old stays",
                vec!["2026-11-25T12:00:00Z"],
                Some(86_400),
                Keep::default(),
                vec![("s00", "younger than -g")],
            ),
        ];
        for (name, times, window, keep, want) in cases {
            assert_eq!(
                kept(&times, window, keep, NOW, &Utc),
                pairs(&want),
                "{name}"
            );
        }
    }

    #[test]
    fn periods_are_local_and_dst_safe() {
        // Berlin: CEST (+2) until 2026-10-25 01:00 UTC, then CET (+1); CEST again from
        // 2026-03-29 01:00 UTC.
        // (name, times, rules, kept in Berlin, kept in UTC)
        type Case<'a> = (
            &'a str,
            Vec<&'a str>,
            Keep,
            Vec<(&'a str, &'a str)>,
            Vec<(&'a str, &'a str)>,
        );
        let cases: Vec<Case> = vec![
            (
                "late evening UTC is the next day in Berlin",
                vec!["2026-11-24T23:30:00Z", "2026-11-24T22:30:00Z"],
                Keep {
                    daily: 2,
                    ..Keep::default()
                },
                vec![("s00", "daily 2026-11-25"), ("s01", "daily 2026-11-24")],
                vec![
                    ("s00", "daily 2026-11-24"),
                    ("s01", "daily 2026-11-24 (oldest)"),
                ],
            ),
            (
                "fall back: 02:30 CEST and 02:30 CET are one local hour",
                vec!["2026-10-25T01:30:00Z", "2026-10-25T00:30:00Z"],
                Keep {
                    hourly: 1,
                    ..Keep::default()
                },
                vec![("s00", "hourly 2026-10-25T02")],
                vec![("s00", "hourly 2026-10-25T01")],
            ),
            (
                "fall back: the 25-hour day is one day",
                vec![
                    "2026-10-25T22:59:59Z",
                    "2026-10-24T22:00:00Z",
                    "2026-10-24T21:59:59Z",
                ],
                Keep {
                    daily: 2,
                    ..Keep::default()
                },
                vec![("s00", "daily 2026-10-25"), ("s02", "daily 2026-10-24")],
                vec![("s00", "daily 2026-10-25"), ("s01", "daily 2026-10-24")],
            ),
            (
                "spring forward: the 23-hour day is one day",
                vec!["2026-03-29T21:59:59Z", "2026-03-28T23:00:00Z"],
                Keep {
                    daily: 1,
                    ..Keep::default()
                },
                vec![("s00", "daily 2026-03-29")],
                vec![("s00", "daily 2026-03-29")],
            ),
            (
                "a month starts at local midnight",
                vec!["2026-10-31T23:30:00Z", "2026-10-31T22:30:00Z"],
                Keep {
                    monthly: 2,
                    ..Keep::default()
                },
                vec![("s00", "monthly 2026-11"), ("s01", "monthly 2026-10")],
                vec![
                    ("s00", "monthly 2026-10"),
                    ("s01", "monthly 2026-10 (oldest)"),
                ],
            ),
        ];
        for (name, times, keep, berlin, in_utc) in cases {
            assert_eq!(
                kept(&times, None, keep, NOW, &Berlin),
                pairs(&berlin),
                "{name} (Berlin)"
            );
            assert_eq!(
                kept(&times, None, keep, NOW, &Utc),
                pairs(&in_utc),
                "{name} (UTC)"
            );
        }
    }

    #[test]
    fn unusable_items_fill_no_rule_and_this_runs_counts() {
        let t = |s: &str| Some(utc(s));
        let list = [
            Item {
                id: "err",
                time: t("2026-11-26T11:00:00Z"),
                usable: false,
                protected: false,
            },
            Item {
                id: "mine",
                time: t("2026-11-26T10:00:00Z"),
                usable: true,
                protected: true,
            },
            Item {
                id: "today-older",
                time: t("2026-11-26T09:00:00Z"),
                usable: true,
                protected: false,
            },
            Item {
                id: "yesterday",
                time: t("2026-11-25T09:00:00Z"),
                usable: true,
                protected: false,
            },
            Item {
                id: "empty set",
                time: None,
                usable: true,
                protected: false,
            },
        ];
        let keep = Keep {
            daily: 2,
            ..Keep::default()
        };
        let got: Vec<String> = reasons(&list, Some(0), &keep, utc(NOW), &Utc)
            .iter()
            .map(|r| {
                r.iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect();
        assert_eq!(
            got,
            [
                "",
                "made by this run, daily 2026-11-26",
                "",
                "daily 2026-11-25",
                ""
            ]
        );
    }

    /// Item ids and times from generated hour offsets before `NOW`; a few unusable.
    fn generated(offsets: &[(u32, bool)]) -> Vec<(String, DateTime<Utc>, bool)> {
        offsets
            .iter()
            .enumerate()
            .map(|(n, (hours, ok))| {
                (
                    format!("s{n:03}"),
                    utc(NOW) - chrono::Duration::hours(i64::from(*hours)),
                    *ok,
                )
            })
            .collect()
    }

    fn decide(
        list: &[(String, DateTime<Utc>, bool)],
        window: Option<i64>,
        keep: &Keep,
    ) -> Vec<bool> {
        let items: Vec<Item> = list
            .iter()
            .map(|(id, t, ok)| Item {
                id,
                time: Some(*t),
                usable: *ok,
                protected: false,
            })
            .collect();
        reasons(&items, window, keep, utc(NOW), &Berlin)
            .iter()
            .map(|r| !r.is_empty())
            .collect()
    }

    fn keep_strategy() -> impl Strategy<Value = Keep> {
        (
            0..4usize,
            0..5usize,
            0..8usize,
            0..5usize,
            0..13usize,
            0..3usize,
        )
            .prop_map(|(last, hourly, daily, weekly, monthly, yearly)| Keep {
                last,
                hourly,
                daily,
                weekly,
                monthly,
                yearly,
            })
    }

    fn list_strategy() -> impl Strategy<Value = Vec<(u32, bool)>> {
        // Up to ~2.3 years back, in hours; one in eight unusable.
        prop::collection::vec((0..20_000u32, prop::bool::weighted(0.875)), 0..40)
    }

    proptest! {
        #[test]
        fn the_newest_usable_stays_when_a_rule_keeps(
            offsets in list_strategy(), keep in keep_strategy(), window in prop::option::of(0..2_000_000i64)
        ) {
            prop_assume!(keep.any());
            let list = generated(&offsets);
            let kept = decide(&list, window, &keep);
            let newest = list
                .iter()
                .enumerate()
                .filter(|(_, (_, _, ok))| *ok)
                .max_by(|a, b| a.1 .1.cmp(&b.1 .1).then_with(|| a.1 .0.cmp(&b.1 .0)));
            if let Some((n, _)) = newest {
                prop_assert!(kept[n]);
            }
        }

        #[test]
        fn a_second_pass_deletes_nothing(
            offsets in list_strategy(), keep in keep_strategy(), window in prop::option::of(0..2_000_000i64)
        ) {
            let list = generated(&offsets);
            let kept = decide(&list, window, &keep);
            let left: Vec<_> = list.into_iter().zip(&kept).filter(|(_, k)| **k).map(|(i, _)| i).collect();
            let again = decide(&left, window, &keep);
            prop_assert!(again.iter().all(|k| *k), "{left:?}");
        }

        #[test]
        fn raising_a_count_never_deletes_more(
            offsets in list_strategy(), keep in keep_strategy(), which in 0..6usize, window in prop::option::of(0..2_000_000i64)
        ) {
            let list = generated(&offsets);
            let mut more = keep;
            match which {
                0 => more.last += 1,
                1 => more.hourly += 1,
                2 => more.daily += 1,
                3 => more.weekly += 1,
                4 => more.monthly += 1,
                _ => more.yearly += 1,
            }
            let before = decide(&list, window, &keep);
            let after = decide(&list, window, &more);
            for (b, a) in before.iter().zip(&after) {
                prop_assert!(!b || *a);
            }
        }

        #[test]
        fn every_kept_item_has_a_reason_and_unusable_ones_only_by_age(
            offsets in list_strategy(), keep in keep_strategy(), window in prop::option::of(0..2_000_000i64)
        ) {
            let list = generated(&offsets);
            let items: Vec<Item> = list
                .iter()
                .map(|(id, t, ok)| Item { id, time: Some(*t), usable: *ok, protected: false })
                .collect();
            let all = reasons(&items, window, &keep, utc(NOW), &Berlin);
            let periods_kept = all.iter().flatten().filter(|r| matches!(r, Reason::Period { .. })).count();
            let calendar: usize = keep.calendar().iter().map(|(_, n)| n).sum();
            // Each rule keeps at most N items, its oldest included.
            prop_assert!(periods_kept <= calendar);
            for (item, why) in items.iter().zip(&all) {
                if !item.usable {
                    prop_assert!(why.iter().all(|r| *r == Reason::Young));
                }
            }
        }
    }
}
