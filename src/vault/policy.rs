//! The vault's decisions, from plain data: which backup of each volume goes to the vault, the
//! vault copy's tags, which shares are done with, and which vault copies the vault's rules keep.

use crate::model::{Snapshot, SnapshotState, Tags};
use crate::tags::{
    is_ours, SOURCE_ACCOUNT_TAG, SOURCE_SNAPSHOT_TAG, VAULT_INTERMEDIATE_TAG, VAULT_SHARED_TAG,
};
use std::collections::{HashMap, HashSet};

/// The vault copies of `account`'s snapshots, by the source snapshot they are a copy of.
pub fn copied<'a>(vault: &'a [Snapshot], account: &str) -> HashMap<&'a str, &'a Snapshot> {
    vault
        .iter()
        .filter(|c| c.tags.get(SOURCE_ACCOUNT_TAG).map(String::as_str) == Some(account))
        .filter_map(|c| Some((c.tags.get(SOURCE_SNAPSHOT_TAG)?.as_str(), c)))
        .collect()
}

/// Per volume (of `volumes`), its newest completed backup made by this tool, when the vault has
/// no copy of it (in error copies do not count): what goes to the vault, oldest volume first.
pub fn to_copy<'a>(
    listed: &'a [Snapshot],
    volumes: &[String],
    copied: &HashMap<&str, &Snapshot>,
) -> Vec<&'a Snapshot> {
    let mut out = Vec::new();
    for vol in volumes {
        let newest = listed
            .iter()
            .filter(|s| s.volume_id == *vol && s.state == SnapshotState::Completed && is_ours(s))
            .filter(|s| !s.tags.contains_key(VAULT_INTERMEDIATE_TAG))
            .max_by(|a, b| {
                a.start_time
                    .cmp(&b.start_time)
                    .then_with(|| a.id.cmp(&b.id))
            });
        if let Some(s) = newest {
            let usable = copied
                .get(s.id.as_str())
                .is_some_and(|c| c.state != SnapshotState::Error);
            if !usable {
                out.push(s);
            }
        }
    }
    out
}

/// A vault copy's tags: the source's copy tags (source snapshot, volume, region, and its own tags:
/// device, instance name) and the source account.
pub fn copy_tags(source: &Snapshot, source_region: &str, account: &str) -> Tags {
    let mut tags = crate::copies::policy::copy_tags(source, source_region);
    tags.retain(|k, _| k != VAULT_SHARED_TAG);
    tags.insert(SOURCE_ACCOUNT_TAG.to_string(), account.to_string());
    tags
}

/// A share to close: the shared snapshot (the source, or its intermediate copy) whose vault copy
/// is completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    pub shared: String,
    /// An intermediate copy made to be shared (`--share-kms-key`): deleted once closed.
    pub intermediate: bool,
}

/// The shares with `vault_account` that are done with: the vault copy of what they stand for is
/// completed; or, for a snapshot itself (not an intermediate copy), no vault copy is on its way
/// and this run did not just share it (`now`): a share left by a run whose copy failed, of a
/// snapshot that is no longer its volume's newest, would else stay open for ever. A share whose
/// vault copy is pending stays open; so does an intermediate copy's until its vault copy is done.
pub fn shares_to_close(
    own: &[Snapshot],
    vault_account: &str,
    copied: &HashMap<&str, &Snapshot>,
    now: &HashSet<String>,
) -> Vec<Close> {
    own.iter()
        .filter(|s| s.tags.get(VAULT_SHARED_TAG).map(String::as_str) == Some(vault_account))
        .filter_map(|s| {
            let stands_for = s.tags.get(VAULT_INTERMEDIATE_TAG);
            let source = stands_for.map_or(s.id.as_str(), String::as_str);
            let copy = copied.get(source);
            let done = copy.is_some_and(|c| c.state == SnapshotState::Completed);
            let on_its_way = copy.is_some_and(|c| c.state == SnapshotState::Pending);
            let stale = stands_for.is_none() && !on_its_way && !now.contains(&s.id);
            (done || stale).then(|| Close {
                shared: s.id.clone(),
                intermediate: stands_for.is_some(),
            })
        })
        .collect()
}

/// The intermediate copy (`--share-kms-key`) standing for `source`, if one was made.
pub fn intermediate_of<'a>(own: &'a [Snapshot], source: &str) -> Option<&'a Snapshot> {
    own.iter()
        .find(|s| s.tags.get(VAULT_INTERMEDIATE_TAG).map(String::as_str) == Some(source))
}

/// The vault copies grouped for the vault's retention: by source account and source volume.
pub fn groups<'a>(
    vault: &'a [Snapshot],
    accounts: &[String],
) -> Vec<((String, String), Vec<&'a Snapshot>)> {
    let wanted: HashSet<&str> = accounts.iter().map(String::as_str).collect();
    let mut by: std::collections::BTreeMap<(String, String), Vec<&Snapshot>> = Default::default();
    for c in vault {
        let (Some(account), Some(volume)) = (
            c.tags.get(SOURCE_ACCOUNT_TAG),
            c.tags.get(crate::tags::SOURCE_VOLUME_TAG),
        ) else {
            continue;
        };
        if !wanted.is_empty() && !wanted.contains(account.as_str()) {
            continue;
        }
        by.entry((account.clone(), volume.clone()))
            .or_default()
            .push(c);
    }
    by.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SnapshotState::{Completed, Error, Pending};
    use chrono::{TimeZone, Utc};

    fn snap(
        id: &str,
        vol: &str,
        hour: u32,
        state: SnapshotState,
        tags: &[(&str, &str)],
    ) -> Snapshot {
        let mut s = crate::snapshot::plan::pending(
            id.to_string(),
            vol,
            tags.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            Utc.with_ymd_and_hms(2026, 12, 1, hour, 0, 0).unwrap(),
        );
        s.state = state;
        s.description = "i-1 (web) - Hot /dev/sdb (vol-1)".into();
        s
    }

    fn copy(id: &str, source: &str, state: SnapshotState) -> Snapshot {
        snap(
            id,
            "vol-ffffffff",
            5,
            state,
            &[
                (SOURCE_ACCOUNT_TAG, "111111111111"),
                (SOURCE_SNAPSHOT_TAG, source),
                (crate::tags::SOURCE_VOLUME_TAG, "vol-1"),
            ],
        )
    }

    #[test]
    fn the_newest_completed_backup_without_a_usable_vault_copy_goes() {
        let listed = vec![
            snap("snap-old", "vol-1", 1, Completed, &[]),
            snap("snap-new", "vol-1", 3, Completed, &[]),
            snap("snap-pending", "vol-1", 4, Pending, &[]),
            snap("snap-2", "vol-2", 2, Completed, &[]),
            snap("snap-3", "vol-3", 2, Completed, &[]),
        ];
        let vols = ["vol-1", "vol-2", "vol-3"].map(String::from);
        let vault = vec![copy("c-2", "snap-2", Pending), copy("c-3", "snap-3", Error)];
        let copied = copied(&vault, "111111111111");
        let ids: Vec<&str> = to_copy(&listed, &vols, &copied)
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        // vol-1's newest completed; vol-2 has a copy on its way; vol-3's copy is in error.
        assert_eq!(ids, ["snap-new", "snap-3"]);
        // Another account's copies are not this one's.
        assert!(super::copied(&vault, "222222222222").is_empty());
    }

    #[test]
    fn a_share_closes_once_its_vault_copy_is_completed() {
        let shared = |id: &str, extra: &[(&str, &str)]| {
            let mut tags = vec![(VAULT_SHARED_TAG, "999999999999")];
            tags.extend_from_slice(extra);
            snap(id, "vol-1", 1, Completed, &tags)
        };
        let own = vec![
            shared("snap-a", &[]),
            shared("snap-b", &[]),
            shared("snap-i", &[(VAULT_INTERMEDIATE_TAG, "snap-c")]),
            shared("snap-d", &[]),
        ];
        let vault = vec![
            copy("c-a", "snap-a", Completed),
            copy("c-b", "snap-b", Pending),
            copy("c-c", "snap-c", Completed),
        ];
        let copied = copied(&vault, "111111111111");
        let now: HashSet<String> = ["snap-d".to_string()].into();
        // snap-d, shared by an earlier run whose copy failed and not shared again now: closed.
        let closed = shares_to_close(&own, "999999999999", &copied, &HashSet::new());
        assert!(closed.iter().any(|c| c.shared == "snap-d"), "{closed:?}");
        assert_eq!(
            shares_to_close(&own, "999999999999", &copied, &now),
            [
                Close {
                    shared: "snap-a".into(),
                    intermediate: false
                },
                Close {
                    shared: "snap-i".into(),
                    intermediate: true
                },
            ]
        );
        // Shared with another account: not this vault's to close.
        assert!(shares_to_close(&own, "888888888888", &copied, &now).is_empty());
    }

    #[test]
    fn vault_copy_tags_name_the_source_account_and_drop_the_share_mark() {
        let s = snap(
            "snap-1",
            "vol-1",
            1,
            Completed,
            &[(VAULT_SHARED_TAG, "9"), ("Name", "web")],
        );
        let tags = copy_tags(&s, "eu-west-1", "111111111111");
        assert_eq!(
            tags.get(SOURCE_ACCOUNT_TAG).map(String::as_str),
            Some("111111111111")
        );
        assert_eq!(
            tags.get(SOURCE_SNAPSHOT_TAG).map(String::as_str),
            Some("snap-1")
        );
        assert_eq!(tags.get("Name").map(String::as_str), Some("web"));
        assert!(!tags.contains_key(VAULT_SHARED_TAG));
    }
}
