//! Legal holds and `--keep-tag`: what keeps a snapshot whatever the rules say. A held snapshot
//! (`ec2snap:hold`) or one with a keep tag is never deleted by retention, in any mode, nor is the
//! set it belongs to; it does not count among the N that `-d N` (or a calendar rule) keeps, so
//! the rules keep as many others as without it.

use crate::model::{Snapshot, Tags};
pub use crate::retention::policy::KeepTag;
use crate::retention::policy::Reason;
use crate::tags::{HOLD_AT_TAG, HOLD_BY_TAG, HOLD_TAG};
use anyhow::{bail, Result};
use chrono::{DateTime, SecondsFormat, Utc};

/// The longest hold reason, so that it fits a tag value (256 characters).
pub const MAX_REASON: usize = 256;

/// What keeps `s` whatever the rules say: its legal hold (with its reason), else the first keep
/// tag it has.
pub fn held(s: &Snapshot, keep_tags: &[KeepTag]) -> Option<Reason> {
    if let Some(reason) = s.tags.get(HOLD_TAG) {
        return Some(Reason::Held(reason.clone()));
    }
    keep_tags
        .iter()
        .find(|k| s.tags.get(&k.key) == Some(&k.value))
        .map(|k| Reason::KeepTag(format!("{}={}", k.key, k.value)))
}

/// What keeps a set (kept whole): the first of its members that is held.
pub fn set_held(members: &[Snapshot], keep_tags: &[KeepTag]) -> Option<Reason> {
    members.iter().find_map(|m| held(m, keep_tags))
}

/// `hold --reason`: one line of text of at most `MAX_REASON` characters, not blank.
pub fn check_reason(reason: &str) -> Result<()> {
    if reason.trim().is_empty() {
        bail!("--reason cannot be empty: say why the snapshots are held");
    }
    if reason.chars().count() > MAX_REASON {
        bail!(
            "--reason is {} characters: at most {MAX_REASON} (it is a tag value)",
            reason.chars().count()
        );
    }
    if reason.chars().any(crate::output::messages::is_special) {
        bail!("--reason must be one line of text, without control or invisible format characters (line breaks, bidi controls, zero-width)");
    }
    Ok(())
}

/// The tags of a hold: its reason, who put it (cut to a tag value's 256 characters), and when.
pub fn hold_tags(reason: &str, who: &str, at: DateTime<Utc>) -> Tags {
    [
        (HOLD_TAG, reason.to_string()),
        (HOLD_BY_TAG, who.chars().take(256).collect()),
        (HOLD_AT_TAG, at.to_rfc3339_opts(SecondsFormat::Secs, true)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The tags `release` removes.
pub const HOLD_TAGS: [&str; 3] = [HOLD_TAG, HOLD_BY_TAG, HOLD_AT_TAG];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SnapshotState;
    use chrono::TimeZone;

    fn snap(tags: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            id: "snap-1".into(),
            volume_id: "vol-1".into(),
            start_time: Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
            state: SnapshotState::Completed,
            tags: crate::model::tags(tags),
            description: String::new(),
            progress: None,
            tier: None,
            size_bytes: None,
            lock: crate::model::LockInfo::Unknown,
            in_use_by: None,
        }
    }

    #[test]
    fn keep_tags_parse_at_the_first_equals_sign() {
        let cases = [
            ("legal=yes", Some(("legal", "yes"))),
            ("a=b=c", Some(("a", "b=c"))),
            ("empty=", Some(("empty", ""))),
            ("=x", None),
            ("novalue", None),
        ];
        for (text, want) in cases {
            let got = KeepTag::parse(text).ok();
            let want = want.map(|(k, v)| KeepTag {
                key: k.into(),
                value: v.into(),
            });
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn a_hold_or_a_keep_tag_keeps() {
        let keep = [KeepTag::parse("legal=yes").unwrap()];
        assert_eq!(
            held(&snap(&[(HOLD_TAG, "incident 42")]), &keep),
            Some(Reason::Held("incident 42".into()))
        );
        assert_eq!(
            held(&snap(&[("legal", "yes")]), &keep),
            Some(Reason::KeepTag("legal=yes".into()))
        );
        assert_eq!(held(&snap(&[("legal", "no")]), &keep), None);
        assert_eq!(held(&snap(&[("legal", "yes")]), &[]), None);
    }

    #[test]
    fn reasons_are_one_bounded_line() {
        assert!(check_reason("incident 42").is_ok());
        for bad in [
            "",
            "  ",
            "two\nlines",
            &"x".repeat(257),
            "evil\u{202e}abc",
            "a\u{200b}b",
            "a\u{2028}b",
        ] {
            assert!(check_reason(bad).is_err(), "{bad:?}");
        }
        let tags = hold_tags("r", &"a".repeat(300), Utc.timestamp_opt(0, 0).unwrap());
        assert_eq!(tags[HOLD_BY_TAG].chars().count(), 256);
        assert_eq!(tags[HOLD_AT_TAG], "1970-01-01T00:00:00Z");
    }
}
