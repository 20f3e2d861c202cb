//! Every log line and stdout line the original prints, built in one place so tests can pin the text.

use crate::model::{Disk, Instance, SnapshotKind};
use std::borrow::Cow;

/// Whether `c` may not be shown as is: a control character (C0, DEL, C1), the Unicode line and
/// paragraph separators, or an invisible format character that reorders or hides text (the bidi
/// controls U+202A-202E and U+2066-2069, the marks U+200E/U+200F/U+061C, zero-width characters,
/// the soft hyphen, the BOM).
pub fn is_special(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// Text for one log or status line: the characters `is_special` names written as `\n`, `\r`,
/// `\t` or `\u{1b}`, so that a value from AWS or the command line (a Name tag, an error message, a
/// hold's reason) can never start a line of its own nor reorder what the terminal shows.
pub fn one_line(text: &str) -> Cow<'_, str> {
    let special = is_special;
    if !text.chars().any(special) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if special(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

pub fn launching(mode: crate::model::Mode) -> String {
    format!(
        "== Launching {} mode ==",
        if mode.is_dry() { "dry run" } else { "run" }
    )
}
pub const CONNECTING: &str = "Connecting to AWS";
pub const GETTING_INSTANCES: &str = "Getting instances information";
pub const NO_INSTANCES: &str = "No instances found with those parameters !";
pub const GOING_DOWN: &str = "Instance is going to be shutdown";
pub const GOING_UP: &str = "Instance is going to be started";
pub const TIMEOUT: &str = "Timeout exceded";

/// `--wait`'s bar, its last frame: what did not complete (in error, still pending at the
/// timeout, cut short by a signal), if anything.
pub fn wait_outcome(error: usize, timed_out: usize, interrupted: usize) -> String {
    let mut parts = Vec::new();
    if error > 0 {
        parts.push(format!("{error} in error"));
    }
    if timed_out > 0 {
        parts.push(format!("{timed_out} still pending at the timeout"));
    }
    if interrupted > 0 {
        parts.push(format!("{interrupted} not waited for (signal)"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("({})", parts.join(", "))
    }
}

/// The line `--wait`'s bar leaves on the terminal: `2 snapshots completed in 13 s`.
pub fn wait_ended(completed: usize, outcome: &str, secs: u64) -> String {
    let noun = if completed == 1 {
        "snapshot"
    } else {
        "snapshots"
    };
    let rest = outcome;
    let rest = if rest.is_empty() {
        String::new()
    } else {
        format!(" {rest}")
    };
    format!("{completed} {noun} completed{rest} in {secs} s")
}

/// `--lock`: a snapshot locked against deletion (or, in a dry run, that would be).
pub fn locking(snapshot_id: &str, days: u32, until: &str, mode: &str) -> String {
    format!("Locking snapshot {snapshot_id} for {days} days, until {until} ({mode} mode)")
}

/// `--no-delete`: a snapshot retention lets go, left to a run that may delete.
pub fn left_to_delete(snapshot_id: &str) -> String {
    format!("Not deleting snapshot {snapshot_id} (--no-delete): retention lets it go")
}

/// `--archive-after`: a snapshot moved to the archive tier (or, in a dry run, that would be).
pub fn archiving(snapshot_id: &str, volume_id: &str) -> String {
    format!(
        "Archiving snapshot {snapshot_id} of {volume_id}: the rules keep it 90 days more at least"
    )
}

pub fn archive_error(snapshot_id: &str, error: &str) -> String {
    format!("Cannot archive snapshot {snapshot_id}: {error}")
}

pub fn archive_tag_error(snapshot_id: &str, error: &str) -> String {
    format!("Snapshot {snapshot_id} is archived, but its tag ec2snap:archived could not be set: {error}")
}

/// Deleting an archived snapshot before the archive tier's 90 days are over.
pub fn early_archive_deletion(snapshot_id: &str, days_left: i64, cost: Option<f64>) -> String {
    let cost = cost
        .map(|c| format!(" (about ${c:.2})"))
        .unwrap_or_default();
    format!(
        "Deleting snapshot {snapshot_id}, archived less than 90 days ago: the archive tier still bills its {days_left} remaining days{cost}"
    )
}

/// A LockSnapshot that failed.
pub fn lock_error(snapshot_id: &str, error: &str) -> String {
    format!("Cannot lock snapshot {snapshot_id}: {error}")
}

/// A lock set whose tag could not be: later runs will not know it.
pub fn lock_tag_error(snapshot_id: &str, error: &str) -> String {
    format!("Snapshot {snapshot_id} is locked, but its tag ec2snap:locked-until could not be set: {error}")
}

/// A hook about to run for an instance (`pre-snapshot` or `post-snapshot`).
pub fn hook_running(stage: &str, instance_id: &str) -> String {
    format!("Running the {stage} hook of {instance_id}")
}

/// How a hook ended, at DEBUG: what happened, in how long, and its output.
pub fn hook_ended(
    stage: &str,
    instance_id: &str,
    what: &str,
    took_ms: u128,
    output: &str,
) -> String {
    format!(
        "The {stage} hook of {instance_id} {what} in {}.{:03} s{}",
        took_ms / 1000,
        took_ms % 1000,
        hook_said(output)
    )
}

/// ` (its output: ...)` after a failed hook's line, when it printed something.
fn hook_said(output: &str) -> String {
    if output.is_empty() {
        String::new()
    } else {
        format!(" (its output: {output})")
    }
}

/// `--on-hook-failure crash-consistent`: the snapshot is made anyway.
pub fn hook_crash_consistent(stage: &str, instance_id: &str, why: &str, output: &str) -> String {
    format!(
        "The {stage} hook of {instance_id} {why}{}: snapshots made crash-consistent (--on-hook-failure crash-consistent)",
        hook_said(output)
    )
}

/// `--on-hook-failure skip`: no snapshot of this instance.
pub fn hook_skipped(stage: &str, instance_id: &str, why: &str, output: &str) -> String {
    format!(
        "The {stage} hook of {instance_id} {why}{}: no snapshot of it this time, its old ones are kept (--on-hook-failure skip)",
        hook_said(output)
    )
}

/// A post hook that did not succeed: the application may still be held.
pub fn post_hook_failed(stage: &str, instance_id: &str, why: &str, output: &str) -> String {
    format!(
        "The {stage} hook of {instance_id} {why}{}: check that its application is not still held",
        hook_said(output)
    )
}

/// An instance's hooks are done: its snapshots' consistency and how long it was held.
pub fn hooks_done(
    instance_id: &str,
    consistency: &str,
    application: &[String],
    held_ms: u128,
    frozen_ms: Option<u64>,
) -> String {
    let what = match consistency {
        "none" => "no snapshot".to_string(),
        "mixed" => format!(
            "snapshots of {} application-consistent, the others crash-consistent",
            application.join(", ")
        ),
        c => format!("snapshots {c}-consistent"),
    };
    let frozen = frozen_ms
        .map(|ms| format!(" (frozen {}.{:03} s on the instance)", ms / 1000, ms % 1000))
        .unwrap_or_default();
    format!(
        "Hooks of {instance_id} done: {what}, held {}.{:03} s{frozen}",
        held_ms / 1000,
        held_ms % 1000
    )
}

/// `--freeze ssm` cannot run on an instance (no SSM agent, Windows): nothing was frozen.
pub fn hook_unreachable(stage: &str, instance_id: &str, why: &str) -> String {
    format!("The {stage} hook of {instance_id} {why}: snapshots made crash-consistent")
}

/// `--freeze ssm`: the snapshot calls were answered too late to be sure the watchdog had not
/// thawed yet.
pub fn freeze_too_short(instance_id: &str) -> String {
    format!("The snapshot calls of {instance_id} were answered after its watchdog may have thawed (--freeze-timeout): snapshots left crash-consistent")
}

/// `--freeze ssm`: the tag saying a snapshot is application-consistent was refused.
pub fn consistency_not_tagged(instance_id: &str, snapshot_ids: &[String], why: &str) -> String {
    format!(
        "Cannot tag {} of {instance_id} ec2snap:consistency=application ({why}): left crash-consistent",
        snapshot_ids.join(", ")
    )
}

/// A dry run does not run the hooks unless asked.
pub const HOOKS_NOT_IN_DRY_RUN: &str =
    "Dry run: the snapshot hooks are not run (--hook-dry-run runs them, with EC2SNAP_DRY_RUN=1)";

/// A run over many accounts and regions: its targets, before the first one starts.
pub fn fleet_starting(targets: usize, accounts: usize, at_once: usize) -> String {
    format!("Working on {targets} targets ({accounts} accounts), at most {at_once} at once")
}

/// A target that could not run (its role, its region, its instances): the others go on.
pub fn target_failed(label: &str, error: &anyhow::Error) -> String {
    format!("Target {label} failed: {error:#}")
}

/// In a fleet, a target in one of the `--copy-to` regions: its own snapshots are there already.
pub fn copy_to_own_region(region: &str) -> String {
    format!(
        "No copy to {region}: this target's snapshots are in {region} already (--copy-to {region})"
    )
}

/// With `--parallel` above 1, lines whose original text names no instance get its id appended, so
/// that interleaved lines can still be told apart.
pub fn for_instance(line: &str, instance_id: &str, parallel: usize) -> String {
    if parallel > 1 {
        format!("{line} ({instance_id})")
    } else {
        line.to_string()
    }
}

/// `-v` names no level: the original's warning, then INFO.
pub fn bad_level(verbosity: &str) -> String {
    format!(
        "Option of log level {} incorrect, using INFO.",
        verbosity.to_uppercase()
    )
}

pub fn working_on(instance: &Instance) -> String {
    format!("Working on instance {} ({})", instance.id, instance.name())
}

pub fn limit_reached(limit: usize) -> String {
    format!("The requested limit of snapshots has been reached: {limit}")
}

/// Dry run: `Hot snapshot made for vol(dev)`; run: `... - snap-id`.
pub fn snapshot_made(kind: SnapshotKind, disk: &Disk, snapshot_id: Option<&str>) -> String {
    let base = format!(
        "{kind} snapshot made for {}({})",
        disk.volume_id, disk.device
    );
    match snapshot_id {
        Some(id) => format!("{base} - {id}"),
        None => base,
    }
}

/// `-o` on an instance whose only volume is the root (or one without EBS volumes).
pub fn nothing_to_snapshot(instance_id: &str, no_root_device: bool) -> String {
    let why = if no_root_device {
        " (-o leaves out its root device)"
    } else {
        ""
    };
    format!("Instance {instance_id} has no volume to snapshot{why}: no snapshot made")
}

pub fn snapshot_failed(kind: SnapshotKind, disk: &Disk, error: &str) -> String {
    format!(
        "{kind} snapshot failed for {}({}) [{error}]",
        disk.volume_id, disk.device
    )
}

/// A volume whose own tags do not all fit on its snapshot with the `-e` tags.
pub fn tags_dropped(disk: &Disk, keys: &[String]) -> String {
    format!(
        "Volume {}({}) has more tags than a snapshot can carry (50): not copied: {}",
        disk.volume_id,
        disk.device,
        keys.join(", ")
    )
}

/// After the member lines of a set: `Hot snapshot set <set-id> made for instance <id> (3 volumes)`;
/// a dry run names no set id.
pub fn set_made(
    kind: SnapshotKind,
    set_id: Option<&str>,
    instance_id: &str,
    volumes: usize,
) -> String {
    let set = set_id.map(|s| format!(" {s}")).unwrap_or_default();
    format!("{kind} snapshot set{set} made for instance {instance_id} ({volumes} volumes)")
}

pub fn set_failed(kind: SnapshotKind, instance_id: &str, error: &str) -> String {
    format!("{kind} snapshot set failed for instance {instance_id} [{error}]")
}

pub fn deleting_set(set_id: &str, snapshots: usize) -> String {
    format!("Deleting set {set_id} ({snapshots} snapshots)")
}

/// `Copying snapshot snap-.. (vol-..|/dev/..) to eu-west-1 - snap-..`; a dry run names no copy.
pub fn copying(source_id: &str, disk: &Disk, region: &str, copy_id: Option<&str>) -> String {
    let base = format!(
        "Copying snapshot {source_id} ({}|{}) to {region}",
        disk.volume_id, disk.device
    );
    match copy_id {
        Some(id) => format!("{base} - {id}"),
        None => base,
    }
}

pub fn copy_deferred(source_id: &str, region: &str, error: &str) -> String {
    format!("Copy of snapshot {source_id} to {region} left for a later run: {error}")
}

/// The vault, as the log names it: `vault 999999999999/eu-west-1`.
pub fn vault_place(account: &str, region: &str) -> String {
    format!("vault {account}/{region}")
}

pub fn vault_pruning(account: &str, volume: &str, kept: usize, deleted: usize) -> String {
    format!("Vault copies of {account} {volume}: {kept} kept, {deleted} to delete")
}

pub fn vault_unreachable(role: &str, error: &str) -> String {
    format!("Cannot reach the vault through {role}: {error}; the local backups are made as usual")
}

pub fn vault_same_account(account: &str) -> String {
    format!("--vault-role is a role of this account ({account}): the vault must be another account, out of reach of these credentials")
}

pub fn vault_no_region(region: &str) -> String {
    format!("--vault-region {region} is not a region enabled for this account")
}

pub fn vault_share_failed(snapshot_id: &str, error: &str) -> String {
    format!("Cannot share snapshot {snapshot_id} with the vault: {error}")
}

pub fn vault_needs_share_key(snapshot_id: &str, error: &str) -> String {
    format!("Snapshot {snapshot_id} cannot be shared with the vault ({error}): it is encrypted with this account's default key (aws/ebs); give --share-kms-key KEY, a key of this account granted to the vault account")
}

pub fn vault_intermediate(source_id: &str, copy_id: Option<&str>) -> String {
    match copy_id {
        Some(id) => format!(
            "Copying snapshot {source_id} with --share-kms-key, to share it with the vault - {id}"
        ),
        None => {
            format!("Copying snapshot {source_id} with --share-kms-key, to share it with the vault")
        }
    }
}

pub fn vault_share_closed(snapshot_id: &str, deleted: bool) -> String {
    if deleted {
        format!("Vault copy completed: intermediate copy {snapshot_id} unshared and deleted")
    } else {
        format!("Vault copy completed: snapshot {snapshot_id} no longer shared with the vault")
    }
}

pub fn copy_failed(source_id: &str, region: &str, error: &str) -> String {
    format!("Copying snapshot {source_id} to {region} failed: {error}")
}

pub fn deleting_copy(copy_id: &str, disk: &Disk, region: &str) -> String {
    format!(
        "Deleting copy {copy_id} ({}|{}) in {region}",
        disk.volume_id, disk.device
    )
}

/// A dry run's permission check that the real run would fail.
pub fn permission_refused(action: &str, resource: &str, error: &str) -> String {
    format!("The real run would be refused: {action} on {resource}: {error}")
}

pub fn deleting(snapshot_id: &str, disk: &Disk) -> String {
    format!(
        "Deleting snapshot {snapshot_id} ({}|{})",
        disk.volume_id, disk.device
    )
}

/// `Keeping snap-.. (vol-..|/dev/sdb): daily 2026-11-25, weekly 2026-W48` (DEBUG); a dry run's
/// planned snapshot is `the new snapshot`.
pub fn keeping(snapshot_id: Option<&str>, disk: &Disk, reasons: &[String]) -> String {
    format!(
        "Keeping {} ({}|{}): {}",
        snapshot_id.unwrap_or("the new snapshot"),
        disk.volume_id,
        disk.device,
        reasons.join(", ")
    )
}

/// `Keeping set ec2snap-.. (2 snapshots): monthly 2026-10` (DEBUG).
pub fn keeping_set(set_id: &str, snapshots: usize, reasons: &[String]) -> String {
    format!(
        "Keeping set {set_id} ({snapshots} snapshots): {}",
        reasons.join(", ")
    )
}

/// `Set <set-id> is incomplete: no snapshot of vol-..(/dev/sdb); snap-.. of vol-..(/dev/sdc) is in
/// state error` (WARNING): it never counts among the kept sets.
pub fn incomplete_set(set_id: &str, missing: &[Disk], errored: &[(String, Disk)]) -> String {
    let parts: Vec<String> = missing
        .iter()
        .map(|d| format!("no snapshot of {}({})", d.volume_id, d.device))
        .chain(
            errored
                .iter()
                .map(|(id, d)| format!("{id} of {}({}) is in state error", d.volume_id, d.device)),
        )
        .collect();
    format!(
        "Set {set_id} is incomplete: {}; it does not count among the kept sets",
        parts.join("; ")
    )
}

/// `--prune-orphans-after`: `Deleting orphan snap-.. (vol-.. deleted, 40d 0h old)`.
pub fn deleting_orphan(snapshot_id: &str, volume_id: &str, age: &str) -> String {
    format!("Deleting orphan {snapshot_id} ({volume_id} deleted, {age} old)")
}

pub fn delete_error(snapshot_id: &str, error: &str) -> String {
    format!("Error deleting snapshot {snapshot_id} with error {error}")
}

pub fn delete_in_use_ignored(snapshot_id: &str, error: &str) -> String {
    format!("Ignoring : error deleting snapshot {snapshot_id} with error {error}")
}

pub fn now_state(instance_id: &str, state: &str) -> String {
    format!("Instance {instance_id} now {state} !")
}

pub fn failed_to(action: &str, error: &str) -> String {
    format!("Instance failed to {action}: {error}")
}

/// A state poll failed after a stop or a start: the state is unknown, not the action failed.
pub fn state_unreadable(instance_id: &str, action: &str, error: &str) -> String {
    format!("Cannot read the state of instance {instance_id} after asking it to {action}: {error}")
}

/// EC2 refused the stop and the instance still runs.
pub fn still_running(instance_id: &str) -> String {
    format!("Instance {instance_id} is still running: it was not stopped, so it is not started")
}

pub fn may_still_be_stopped(instance_id: &str) -> String {
    format!("Instance {instance_id} may still be stopped: start it with `aws ec2 start-instances --instance-ids {instance_id}`")
}

/// An instance that a killed run left stopped, found by its mark.
pub fn left_stopped(instance_id: &str, name: &str, mark: &str, what_now: &str) -> String {
    format!("Instance {instance_id} ({name}) was left stopped by an ec2snap run that did not finish ({mark}): {what_now}")
}

/// A signal: the run starts no new work and starts again what it stopped.
pub fn signal_received(signal: &str, then: &str) -> String {
    format!("Received {signal}: no new work will be started; {then}")
}

pub fn signal_again(signal: &str, then: &str) -> String {
    format!("Received {signal} again: still finishing: {then}")
}

pub fn interrupted(signal: &str) -> String {
    format!("Interrupted by {signal}: the run stopped before its end")
}

pub fn configuration(config: &dyn std::fmt::Debug) -> String {
    format!("Configuration: {config:?}")
}

pub fn skipping_instance(instance_id: &str, state: &str) -> String {
    format!("Skipping instance {instance_id}: it is {state}")
}

pub fn instance_not_found(instance_id: &str) -> String {
    format!("Instance {instance_id} not found")
}

/// An instance task that panicked or was cancelled.
pub fn work_ended_abnormally(error: &str) -> String {
    format!("An instance's work ended abnormally: {error}")
}

pub fn old_snapshots_kept(disk: &Disk) -> String {
    format!(
        "Keeping the old snapshots of {}({}): its new snapshot failed",
        disk.volume_id, disk.device
    )
}

pub fn old_sets_kept(instance_id: &str) -> String {
    format!("Keeping the old snapshot sets of instance {instance_id}: its new set failed")
}

pub fn already_deleted(snapshot_id: &str) -> String {
    format!("Snapshot {snapshot_id} was already deleted")
}

pub fn permission_allowed(action: &str, resource: &str) -> String {
    format!("Permission check: {action} on {resource} is allowed")
}

pub fn permission_unclear(action: &str, resource: &str, answer: &str) -> String {
    format!("Permission check of {action} on {resource} answered {answer}")
}

/// `--wait`: `snap-.. of vol-..(/dev/sdb)`.
pub fn snapshot_of(snapshot_id: &str, volume_id: &str, device: &str) -> String {
    format!("{snapshot_id} of {volume_id}({device})")
}

pub fn snapshot_ended_in_error(what: &str) -> String {
    format!("Snapshot {what} ended in state error: the volume's old snapshots are kept")
}

pub fn snapshot_still_pending(what: &str, secs: u64) -> String {
    format!("Snapshot {what} is still pending after {secs} s: the volume's old snapshots are kept")
}

pub fn snapshot_completed(snapshot_id: &str, label: &str) -> String {
    format!("Snapshot {snapshot_id} ({label}) completed")
}

pub fn cannot_poll(error: &str) -> String {
    format!("Cannot look at the pending snapshots (will try again): {error}")
}

pub fn waiting_for(left: usize) -> String {
    format!("Waiting for {left} snapshots to complete")
}

pub fn did_not_stop(instance_id: &str, secs: u64) -> String {
    format!("Instance {instance_id} did not stop within {secs} s: no snapshot is made and it is started again, so that a stop completing later cannot leave it down")
}

pub fn cannot_mark(instance_id: &str, tag: &str, error: &str) -> String {
    format!("Cannot tag instance {instance_id} with {tag} before stopping it ({error}): if this run is killed, the next one cannot find it; allow ec2:CreateTags on instances, or use --no-stop-tag")
}

pub fn cannot_unmark(instance_id: &str, tag: &str, error: &str) -> String {
    format!("Cannot remove tag {tag} from instance {instance_id} ({error}): a later run removes it")
}

pub fn start_retry(instance_id: &str, error: &str) -> String {
    format!("StartInstances {instance_id} failed, will retry: {error}")
}

pub fn mark_left(instance_id: &str, tag: &str, value: &str, why: &str) -> String {
    format!("Instance {instance_id} carries {tag}={value}: left as it is, {why}")
}

pub fn mark_dropped(instance_id: &str, state: &str, tag: &str) -> String {
    format!("Instance {instance_id} is {state} again: removing its stale tag {tag}")
}

pub fn waiting_for_state(instance_id: &str, want: &str, now: &str) -> String {
    format!("Waiting for {want} state of {instance_id}: now {now}")
}

pub fn cannot_write(what: &str, path: &std::path::Path, error: &str) -> String {
    format!("Cannot write the {what} {}: {error}", path.display())
}

/// `--check-max-age -v DEBUG`: one volume.
pub fn volume_age(
    volume_id: &str,
    instance_id: &str,
    name: &str,
    device: &str,
    age: &str,
) -> String {
    format!("{volume_id} ({instance_id} {name} {device}): newest completed snapshot {age}")
}

/// An age as a person reads it: `45s`, `12m`, `3h 5m`, `3d 4h`.
pub fn age(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3_600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h {}m", s / 3_600, s % 3_600 / 60),
        s => format!("{}d {}h", s / 86_400, s % 86_400 / 3_600),
    }
}

/// The two stdout lines printed at the end of a run with errors.
/// `restore`/`drill`: a volume made (or, without an id, to be made) from a snapshot.
pub fn restoring(
    snapshot_id: &str,
    source_volume: &str,
    device: &str,
    spec: &crate::model::VolumeSpec,
    volume_id: Option<&str>,
) -> String {
    let kind = spec.kind.as_deref().unwrap_or("default type");
    let size = spec
        .size_gib
        .map(|s| format!(" {s} GiB"))
        .unwrap_or_default();
    let what = format!(
        "{snapshot_id} ({source_volume} {device}) as a {kind}{size} volume in {}",
        spec.zone
    );
    match volume_id {
        Some(id) => format!("Restoring {what}: {id}"),
        None => format!("Would restore {what}"),
    }
}

/// `restore` of an archived snapshot: its tier restore asked for (or, in a dry run, to be).
pub fn archived_restore(snapshot_id: &str, days: i32, dry_run: bool) -> String {
    let asked = if dry_run {
        "would be asked for"
    } else {
        "is asked for"
    };
    format!(
        "Snapshot {snapshot_id} is in the archive tier: its restore to the standard tier (for {days} days) {asked}, which takes up to 72 hours; run this restore again then"
    )
}

/// `restore` of an archived snapshot whose tier restore an earlier run asked for.
pub fn archived_restore_pending(snapshot_id: &str) -> String {
    format!(
        "Snapshot {snapshot_id} is in the archive tier and its restore to the standard tier is under way (up to 72 hours); run this restore again then"
    )
}

pub fn restore_failed(snapshot_id: &str, error: &str) -> String {
    format!("Cannot restore {snapshot_id}: {error}")
}

pub fn nothing_to_restore(instance_id: &str, at: &str) -> String {
    format!("Instance {instance_id} has no completed backup{at}: nothing to restore")
}

pub fn restore_missing(what: &str, missing: &[Disk]) -> String {
    let list: Vec<String> = missing
        .iter()
        .map(|d| format!("{}({})", d.volume_id, d.device))
        .collect();
    format!("{what} lacks {}: restoring what it has", list.join(", "))
}

/// `-i` in a run over many accounts and regions: no target has the instance.
pub fn instance_not_found_anywhere(instance_id: &str) -> String {
    format!("Instance {instance_id} not found in any account and region of this run")
}

/// A CopySnapshot in flight when a signal came.
pub fn copy_interrupted(snapshot_id: &str, region: &str, signal: &str) -> String {
    format!("Copy of snapshot {snapshot_id} to {region} interrupted by {signal}: it may still have been made")
}

/// A CreateVolume in flight when a signal came.
pub fn restore_interrupted(snapshot_id: &str, signal: &str) -> String {
    format!("The volume of {snapshot_id} may have been made: its CreateVolume was in flight when {signal} came (look for the tag ec2snap:restored-from={snapshot_id})")
}

/// A drill passed, but its mark on the instance was refused.
pub fn drill_ok_not_tagged(instance_id: &str, error: &str) -> String {
    format!("Cannot tag instance {instance_id} with ec2snap:drill-ok ({error}): --drill-max-age will not see this pass; allow ec2:CreateTags on instances for that key")
}

pub fn snapshot_not_found(snapshot_id: &str) -> String {
    format!("Snapshot {snapshot_id} not found")
}

pub fn set_not_found(set_id: &str) -> String {
    format!("Set {set_id} not found")
}

pub fn volume_available(volume_id: &str, secs: f64) -> String {
    format!("Volume {volume_id} is available ({secs:.1} s)")
}

pub fn volume_failed(volume_id: &str, state: &str) -> String {
    format!("Volume {volume_id} ended in state {state}")
}

pub fn volume_not_ready(volume_id: &str, secs: u64) -> String {
    format!("Volume {volume_id} is still not available after {secs} s")
}

pub fn attaching(volume_id: &str, instance_id: &str, device: &str, done: bool) -> String {
    let verb = if done { "Attached" } else { "Would attach" };
    format!("{verb} {volume_id} to {instance_id} at {device}")
}

pub fn attach_failed(volume_id: &str, instance_id: &str, error: &str) -> String {
    format!("Cannot attach {volume_id} to {instance_id}: {error}")
}

pub fn devices_taken(instance_id: &str, devices: &[String]) -> String {
    format!(
        "--attach-to {instance_id}: {} already in use there; nothing restored, nothing detached",
        devices.join(", ")
    )
}

pub fn registering(name: &str, devices: &[String], image_id: Option<&str>) -> String {
    let list = devices.join(", ");
    match image_id {
        Some(id) => format!("Registered AMI {id} ({name}): {list}"),
        None => format!("Would register AMI {name}: {list}"),
    }
}

pub fn register_failed(name: &str, error: &str) -> String {
    format!("Cannot register AMI {name}: {error}")
}

pub fn drill_leftover(volume_id: &str, run: &str, done: bool) -> String {
    let verb = if done { "Deleting" } else { "Would delete" };
    format!("{verb} volume {volume_id} left by drill {run}")
}

/// DescribeImages failed: a snapshot an AMI uses is known by its refused deletion only.
pub fn images_unread(region: &str, why: &str) -> String {
    format!("Cannot read the AMIs in {region} ({why}): a snapshot an AMI uses may fail to delete")
}

/// DescribeLockedSnapshots failed: the lock tags are the only hint.
pub fn locks_unread(region: &str, why: &str) -> String {
    format!("Cannot read the snapshot locks in {region} ({why}): going by the ec2snap:locked-until tags; a snapshot locked otherwise may fail to delete")
}

/// A volume of a drill still running (another process, before its deadline): not ours to delete.
pub fn drill_still_running(volume_id: &str, run: &str) -> String {
    format!("Leaving volume {volume_id} to drill {run}: it still runs")
}

pub fn drill_check_running(instance_id: &str) -> String {
    format!("Running --drill-check for {instance_id}")
}

/// One line of `--drill-check`'s output.
pub fn drill_check_said(instance_id: &str, line: &str) -> String {
    format!("--drill-check for {instance_id}: {line}")
}

/// `restore` or `drill` selected no instance.
pub fn nothing_selected(what: &str) -> String {
    format!("No instance matches the selection: nothing to {what}")
}

pub fn drill_deleting(volume_id: &str) -> String {
    format!("Deleting drill volume {volume_id}")
}

pub fn volume_delete_failed(volume_id: &str, error: &str) -> String {
    format!("Cannot delete volume {volume_id}: {error} (the next drill deletes it)")
}

pub fn drill_result(instance_id: &str, passed: bool, detail: &str) -> String {
    let result = if passed { "passed" } else { "FAILED" };
    format!("Drill of {instance_id} {result}: {detail}")
}

pub fn drill_check_failed(instance_id: &str, status: &str) -> String {
    format!("--drill-check for {instance_id} {status}")
}

pub fn error_summary(snapshot_errors: usize, deletion_errors: usize) -> String {
    format!("Number of snapshots errors: {snapshot_errors}\nNumber of snapshots deletion errors: {deletion_errors}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{InstanceState, Tags};

    #[test]
    fn ages_read_as_people_read_them() {
        let cases = [
            (0, "0s"),
            (59, "59s"),
            (60, "1m"),
            (3_599, "59m"),
            (3_660, "1h 1m"),
        ];
        for (secs, want) in cases {
            assert_eq!(age(secs), want);
        }
        assert_eq!(age(3 * 86_400 + 4 * 3_600 + 59), "3d 4h");
        assert_eq!(age(-5), "0s");
    }

    #[test]
    fn the_line_a_wait_leaves() {
        assert_eq!(
            wait_ended(6, &wait_outcome(0, 0, 0), 13),
            "6 snapshots completed in 13 s"
        );
        assert_eq!(
            wait_ended(1, &wait_outcome(0, 0, 0), 2),
            "1 snapshot completed in 2 s"
        );
        assert_eq!(
            wait_ended(4, &wait_outcome(1, 1, 0), 7200),
            "4 snapshots completed (1 in error, 1 still pending at the timeout) in 7200 s"
        );
        assert_eq!(wait_outcome(0, 0, 2), "(2 not waited for (signal))");
    }

    #[test]
    fn one_line_escapes_every_control_character() {
        let cases = [
            ("plain web-1 (prod) é ü 日本", "plain web-1 (prod) é ü 日本"),
            (
                "evil\n2026-12-02 00:00:00,000 [CRITICAL] FORGED",
                "evil\\n2026-12-02 00:00:00,000 [CRITICAL] FORGED",
            ),
            ("a\rb\tc", "a\\rb\\tc"),
            ("\u{1b}[31mred", "\\u{1b}[31mred"),
            ("nul\0 del\u{7f} c1\u{85}", "nul\\u{0} del\\u{7f} c1\\u{85}"),
            ("ls\u{2028}ps\u{2029}", "ls\\u{2028}ps\\u{2029}"),
            ("a backslash \\n stays", "a backslash \\n stays"),
        ];
        for (raw, want) in cases {
            assert_eq!(one_line(raw), want, "{raw:?}");
            assert!(!one_line(raw).contains('\n'));
        }
    }

    fn inst(name: Option<&str>) -> Instance {
        let mut tags = Tags::new();
        if let Some(n) = name {
            tags.insert("Name".into(), n.into());
        }
        Instance {
            id: "i-e16cc205".into(),
            state: InstanceState::Running,
            tags,
            root_device: None,
            machine: Default::default(),
            disks: vec![],
        }
    }

    #[test]
    fn lines_match_the_original() {
        let d = Disk {
            volume_id: "vol-fa415bfd".into(),
            device: "/dev/sdb".into(),
        };
        let cases: Vec<(String, &str)> = vec![
            (launching(crate::model::Mode::DryRun { check_permissions: true }), "== Launching dry run mode =="),
            (launching(crate::model::Mode::Real), "== Launching run mode =="),
            (
                working_on(&inst(Some("instance-name2"))),
                "Working on instance i-e16cc205 (instance-name2)",
            ),
            (working_on(&inst(None)), "Working on instance i-e16cc205 ()"),
            (
                limit_reached(1),
                "The requested limit of snapshots has been reached: 1",
            ),
            (
                snapshot_made(SnapshotKind::Hot, &d, None),
                "Hot snapshot made for vol-fa415bfd(/dev/sdb)",
            ),
            (
                snapshot_made(SnapshotKind::Cold, &d, Some("snap-a8afba59")),
                "Cold snapshot made for vol-fa415bfd(/dev/sdb) - snap-a8afba59",
            ),
            (
                snapshot_failed(SnapshotKind::Hot, &d, "Boom: x"),
                "Hot snapshot failed for vol-fa415bfd(/dev/sdb) [Boom: x]",
            ),
            (
                deleting("snap-b427c144", &d),
                "Deleting snapshot snap-b427c144 (vol-fa415bfd|/dev/sdb)",
            ),
            (
                delete_error("snap-1", "E: m"),
                "Error deleting snapshot snap-1 with error E: m",
            ),
            (
                delete_in_use_ignored("snap-1", "E: m"),
                "Ignoring : error deleting snapshot snap-1 with error E: m",
            ),
            (now_state("i-1", "stopped"), "Instance i-1 now stopped !"),
            (
                permission_refused("DeleteSnapshot", "snap-1", "UnauthorizedOperation: no"),
                "The real run would be refused: DeleteSnapshot on snap-1: UnauthorizedOperation: no",
            ),
            (
                copying("snap-1", &d, "us-east-1", Some("snap-2")),
                "Copying snapshot snap-1 (vol-fa415bfd|/dev/sdb) to us-east-1 - snap-2",
            ),
            (
                copying("snap-1", &d, "us-east-1", None),
                "Copying snapshot snap-1 (vol-fa415bfd|/dev/sdb) to us-east-1",
            ),
            (
                copy_deferred("snap-1", "us-east-1", "E: m"),
                "Copy of snapshot snap-1 to us-east-1 left for a later run: E: m",
            ),
            (
                copy_failed("snap-1", "us-east-1", "E: m"),
                "Copying snapshot snap-1 to us-east-1 failed: E: m",
            ),
            (
                deleting_copy("snap-2", &d, "us-east-1"),
                "Deleting copy snap-2 (vol-fa415bfd|/dev/sdb) in us-east-1",
            ),
            (
                set_made(SnapshotKind::Hot, Some("i-1@t"), "i-1", 3),
                "Hot snapshot set i-1@t made for instance i-1 (3 volumes)",
            ),
            (
                set_made(SnapshotKind::Cold, None, "i-1", 2),
                "Cold snapshot set made for instance i-1 (2 volumes)",
            ),
            (
                set_failed(SnapshotKind::Hot, "i-1", "E: m"),
                "Hot snapshot set failed for instance i-1 [E: m]",
            ),
            (
                deleting_set("i-1@t", 2),
                "Deleting set i-1@t (2 snapshots)",
            ),
            (
                state_unreadable("i-1", "stop", "E: m"),
                "Cannot read the state of instance i-1 after asking it to stop: E: m",
            ),
            (
                still_running("i-1"),
                "Instance i-1 is still running: it was not stopped, so it is not started",
            ),
            (
                may_still_be_stopped("i-1"),
                "Instance i-1 may still be stopped: start it with `aws ec2 start-instances --instance-ids i-1`",
            ),
            (
                left_stopped("i-1", "db1", "host=h", "starting it again"),
                "Instance i-1 (db1) was left stopped by an ec2snap run that did not finish (host=h): starting it again",
            ),
            (
                tags_dropped(&d, &["t48".into(), "t49".into()]),
                "Volume vol-fa415bfd(/dev/sdb) has more tags than a snapshot can carry (50): not copied: t48, t49",
            ),
            (failed_to("stop", "E: m"), "Instance failed to stop: E: m"),
            (
                error_summary(2, 1),
                "Number of snapshots errors: 2\nNumber of snapshots deletion errors: 1",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }
}
