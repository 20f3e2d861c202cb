//! The tags this tool sets and reads, by name, in one place: what marks a snapshot, a copy, a
//! set, a lock, a stopped instance or a drill as its own; `is_ours`, a snapshot this tool made.

use crate::model::Snapshot;

/// `--consistent`: the tag naming the set a snapshot belongs to, `<instance-id>@<UTC time>`.
pub const SET_TAG: &str = "ec2snap:set";

/// `--consistent`: `vol-..=/dev/..,vol-..=/dev/..`, which device each member's volume was; past
/// 256 characters it goes on in `ec2snap:devices-2`, `-3`, ...
pub const DEVICES_TAG: &str = "ec2snap:devices";

/// The tag that says how consistent a snapshot (or set) is, when hooks are used.
pub const CONSISTENCY_TAG: &str = "ec2snap:consistency";

/// The tag that says when this tool archived a snapshot (RFC 3339, UTC).
pub const ARCHIVED_TAG: &str = "ec2snap:archived";

/// The tag that says until when a snapshot is locked (RFC 3339, UTC): retention keeps it until then.
pub const LOCK_TAG: &str = "ec2snap:locked-until";

/// Tags of a restored volume.
pub const RESTORED_FROM_TAG: &str = "ec2snap:restored-from";

/// A restored volume: the device its source volume had.
pub const SOURCE_DEVICE_TAG: &str = "ec2snap:source-device";

/// A drill's volumes carry it (its run id) from their creation, so that a drill killed before
/// it deleted them is cleaned up by the next one.
pub const DRILL_TAG: &str = "ec2snap:drill";

/// On an instance: when a drill of its backup last passed (RFC 3339), for `--drill-max-age`.
pub const DRILL_OK_TAG: &str = "ec2snap:drill-ok";

/// The tag set on an instance before a cold stop and removed once it runs again.
pub const STOP_TAG: &str = "ec2snap:stopped-by";

/// A vault copy: the account of its source snapshot.
pub const SOURCE_ACCOUNT_TAG: &str = "ec2snap:source-account";

/// On a snapshot shared with the vault account (its value) until the vault copy is completed.
pub const VAULT_SHARED_TAG: &str = "ec2snap:vault-shared";

/// On a copy re-encrypted with `--share-kms-key` to be shared: the snapshot it stands for
/// (deleted once the vault copy is completed).
pub const VAULT_INTERMEDIATE_TAG: &str = "ec2snap:vault-intermediate";

/// A legal hold (`ec2snap hold`): its reason. Retention never deletes a snapshot that has it (nor
/// the set it belongs to), and it does not count among the snapshots the rules keep.
pub const HOLD_TAG: &str = "ec2snap:hold";

/// A legal hold: who put it (the caller's ARN, as STS says).
pub const HOLD_BY_TAG: &str = "ec2snap:hold-by";

/// A legal hold: when it was put (RFC 3339, UTC).
pub const HOLD_AT_TAG: &str = "ec2snap:hold-at";

/// A copy (`--copy-to`): its source snapshot's id, volume and region.
pub const SOURCE_SNAPSHOT_TAG: &str = "ec2snap:source-snapshot";

pub const SOURCE_VOLUME_TAG: &str = "ec2snap:source-volume";

pub const SOURCE_REGION_TAG: &str = "ec2snap:source-region";

/// Made by this tool (or the original): its description `<instance-id> (<Name>) - <Hot|Cold> ...`,
/// or a set tag.
pub fn is_ours(s: &Snapshot) -> bool {
    s.tags.contains_key(SET_TAG)
        || (s.description.starts_with("i-")
            && (s.description.contains(") - Hot ") || s.description.contains(") - Cold ")))
}
