//! The argument groups, flag for flag as the original's argparse defined them plus the new long
//! flags; each command flattens the groups it uses (`RunArgs`: all of them).

use clap::Args;
use std::path::PathBuf;

/// What `--generate` prints.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generate {
    /// The man page (roff): `ec2snap --generate man | man -l -`
    Man,
    /// Bash completions
    CompleteBash,
    /// Zsh completions
    CompleteZsh,
    /// Fish completions
    CompleteFish,
}

/// `--on-hook-failure`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnHookFailure {
    /// No snapshot of the instance this time (an error, exit 2); its old ones are kept
    Skip,
    /// Snapshot anyway, crash-consistent, with a WARNING (as DLM)
    CrashConsistent,
}

/// `--lock`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// Users with the IAM permission ec2:UnlockSnapshot can still unlock it
    Governance,
    /// Nobody, not even the account's root user, can delete it or shorten its lock after the
    /// cool-off
    Compliance,
}

/// `--freeze`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freeze {
    /// fsfreeze the instance's filesystems through SSM Run Command, with an on-instance watchdog
    Ssm,
}

/// `ec2snap restore`: what to restore, where, and how.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq, Default)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub filter: Filter,
    #[command(flatten)]
    pub mode: ModeArgs,
    #[command(flatten)]
    pub monitoring: Monitoring,
    #[command(flatten)]
    pub connection: Connection,
    #[command(flatten)]
    pub accounts: Accounts,
    /// The newest backup taken at or before TIME (UTC: 2026-11-30, 2026-11-30T14:00, or RFC 3339
    /// with an offset)
    #[arg(help_heading = "Restore", long = "at", value_name = "TIME")]
    pub at: Option<String>,
    /// Restore this snapshot (repeatable) instead of an instance's backup
    #[arg(help_heading = "Restore", long = "snapshot", value_name = "SNAPSHOT_ID", action = clap::ArgAction::Append)]
    pub snapshot: Vec<String>,
    /// Restore every member of this set (`i-..@2026-...`, as `list` shows it)
    #[arg(help_heading = "Restore", long = "set", value_name = "SET_ID")]
    pub set: Option<String>,
    /// The Availability Zone of the new volumes (default: the source volume's, or --attach-to's)
    #[arg(help_heading = "Restore", long = "az", value_name = "ZONE")]
    pub az: Option<String>,
    /// Attach the new volumes to this instance at their original devices (refused when one is
    /// taken; nothing is ever detached)
    #[arg(
        help_heading = "Restore",
        long = "attach-to",
        value_name = "INSTANCE_ID"
    )]
    pub attach_to: Option<String>,
    /// Register an AMI named NAME of the backup (its root and data snapshots) instead of making
    /// volumes
    #[arg(help_heading = "Restore", long = "ami", value_name = "NAME")]
    pub ami: Option<String>,
    /// Restore from the copies in this region (--copy-to) instead of this region's snapshots
    #[arg(help_heading = "Restore", long = "from-region", value_name = "REGION")]
    pub from_region: Option<String>,
    /// With --ami: register an image of a backup that lacks a volume (an incomplete set, a volume
    /// with no snapshot of that run); refused otherwise
    #[arg(help_heading = "Restore", long = "allow-partial")]
    pub allow_partial: bool,

    /// Restore from the vault copies (--vault-role) instead of this account's snapshots
    #[arg(help_heading = "Restore", long = "from-vault")]
    pub from_vault: bool,

    /// With --from-vault: make the volumes (or the AMI) in the vault account itself, with --az
    #[arg(help_heading = "Restore", long = "in-vault")]
    pub in_vault: bool,

    /// With --from-vault: the vault role (as on the run that made the copies)
    #[arg(help_heading = "Restore", long = "vault-role", value_name = "ROLE_ARN")]
    pub vault_role: Option<String>,

    /// With --from-vault: the external id the vault role requires
    #[arg(
        help_heading = "Restore",
        long = "vault-external-id",
        value_name = "ID"
    )]
    pub vault_external_id: Option<String>,

    /// With --from-vault: the vault's region (default: this one)
    #[arg(help_heading = "Restore", long = "vault-region", value_name = "REGION")]
    pub vault_region: Option<String>,
}

/// `ec2snap drill`: the drill's own flags.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq, Default)]
pub struct DrillArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub filter: Filter,
    #[command(flatten)]
    pub mode: ModeArgs,
    #[command(flatten)]
    pub monitoring: Monitoring,
    #[command(flatten)]
    pub connection: Connection,
    #[command(flatten)]
    pub accounts: Accounts,
    /// The Availability Zone of the drill's volumes (default: each source volume's)
    #[arg(help_heading = "Drill", long = "az", value_name = "ZONE")]
    pub az: Option<String>,
    /// A command run (by /bin/sh) once an instance's volumes are available, with
    /// EC2SNAP_DRILL_VOLUMES="vol-..=/dev/sdb ..." and EC2SNAP_DRILL_INSTANCE; non-zero fails the drill
    #[arg(help_heading = "Drill", long = "drill-check", value_name = "COMMAND")]
    pub check: Option<String>,
    /// Drill only N of the selected instances, chosen at random
    #[arg(help_heading = "Drill", long = "drill-sample", value_name = "N")]
    pub sample: Option<usize>,
    /// The most seconds --drill-check may run (its process group is killed then, and the drill
    /// fails) [default: 300]
    #[arg(help_heading = "Drill", long = "drill-timeout", value_name = "SECONDS")]
    pub drill_timeout: Option<u64>,
}

/// `ec2snap list`: what a run would do to the selected instances' backups, read-only.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
pub struct ListArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub shape: Shape,
    #[command(flatten)]
    pub rules: Rules,
    #[command(flatten)]
    pub filter: Filter,
    #[command(flatten)]
    pub copy_rules: CopyRules,
    /// A JSON document instead of the table
    #[arg(help_heading = "List", long = "json")]
    pub json: bool,
    /// Show each backup's vault copy too, read with this vault role (and the snapshots still
    /// shared with the vault)
    #[arg(help_heading = "Vault", long = "vault-role", value_name = "ROLE_ARN")]
    pub vault_role: Option<String>,
    /// With --vault-role: the external id the vault role requires
    #[arg(help_heading = "Vault", long = "vault-external-id", value_name = "ID")]
    pub vault_external_id: Option<String>,
    /// With --vault-role: the vault's region (default: this one)
    #[arg(help_heading = "Vault", long = "vault-region", value_name = "REGION")]
    pub vault_region: Option<String>,
    /// A volume whose newest completed snapshot is older than N UNIT is a problem (stale)
    #[arg(help_heading = "List", long = "stale-after", num_args = 2, value_names = ["N", "UNIT"], allow_negative_numbers = true)]
    pub stale_after: Vec<String>,
    #[command(flatten)]
    pub connection: Connection,
    #[command(flatten)]
    pub accounts: Accounts,
    #[command(flatten)]
    pub sharding: Sharding,
}

/// `ec2snap check`: the monitoring check.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckArgs {
    #[command(flatten)]
    pub common: Common,
    /// Do not expect a snapshot of the root device
    #[arg(short = 'o', long = "no_root_device")]
    pub no_root_device: bool,
    #[command(flatten)]
    pub filter: Filter,
    #[command(flatten)]
    pub freshness: Freshness,
    /// Also require a completed vault copy (--vault-role) of a backup younger than
    /// --check-max-age, for every selected volume
    #[arg(help_heading = "Vault", long = "check-vault")]
    pub check_vault: bool,
    /// The job's name in notifications (default: the selection, e.g. Name=front*)
    #[arg(help_heading = "Monitoring", long = "metrics-job", value_name = "NAME")]
    pub metrics_job: Option<String>,
    #[command(flatten)]
    pub notify: Notify,
    /// With --check-vault: the vault role the copies are read with
    #[arg(help_heading = "Vault", long = "vault-role", value_name = "ROLE_ARN")]
    pub vault_role: Option<String>,
    /// With --check-vault: the external id the vault role requires
    #[arg(help_heading = "Vault", long = "vault-external-id", value_name = "ID")]
    pub vault_external_id: Option<String>,
    /// With --check-vault: the vault's region (default: this one)
    #[arg(help_heading = "Vault", long = "vault-region", value_name = "REGION")]
    pub vault_region: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
    #[command(flatten)]
    pub accounts: Accounts,
    #[command(flatten)]
    pub sharding: Sharding,
}

/// A backup run: every group.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub mode: ModeArgs,
    #[command(flatten)]
    pub shape: Shape,
    #[command(flatten)]
    pub making: Making,
    #[command(flatten)]
    pub rules: Rules,
    #[command(flatten)]
    pub filter: Filter,
    #[command(flatten)]
    pub deleting: Deleting,
    #[command(flatten)]
    pub locks: Locks,
    #[command(flatten)]
    pub copy_rules: CopyRules,
    #[command(flatten)]
    pub copy_making: CopyMaking,
    #[command(flatten)]
    pub hooks: HookArgs,
    #[command(flatten)]
    pub vault: Vault,
    #[command(flatten)]
    pub monitoring: Monitoring,
    #[command(flatten)]
    pub freshness: Freshness,
    #[command(flatten)]
    pub connection: Connection,
    #[command(flatten)]
    pub accounts: Accounts,
    #[command(flatten)]
    pub sharding: Sharding,
}

/// Which instances: every command's.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
#[command(next_help_heading = "Selection")]
pub struct Common {
    /// Instance ID (ex: i-00000000 or all)
    #[arg(short = 'i', long = "instance", value_name = "INSTANCE_ID")]
    pub instance: Vec<String>,

    /// Select tags with values (ex: tagname value), wildcards * and ? allowed
    #[arg(short = 't', long = "tags", num_args = 2, value_names = ["NAME", "VALUE"], action = clap::ArgAction::Append)]
    pub tags: Vec<String>,

    /// Limit the number of instances processed (can be useful with auto-scaling groups)
    #[arg(short = 'l', long = "limit", value_name = "N", default_value_t = -1, allow_negative_numbers = true)]
    pub limit: i64,
}

/// Which of the selected instances' snapshots count: every command's.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
#[command(next_help_heading = "Retention")]
pub struct Filter {
    /// Filter snapshot by tags to select on which one you want to apply retention
    #[arg(long = "snap-filter", num_args = 2, value_names = ["TAG", "VALUE"], action = clap::ArgAction::Append)]
    pub snap_filter: Vec<String>,
}

/// What snapshots a run makes (`list` shows the verdicts of that run).
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
#[command(next_help_heading = "Snapshots")]
pub struct Shape {
    /// Tags added to snapshots (ex: tag1:value1 ...)
    #[arg(short = 'e', long = "add_tags", num_args = 1.., value_name = "KEY:VALUE", action = clap::ArgAction::Append)]
    pub add_tags: Vec<String>,

    /// Make cold snapshot for a better consistency (stop, snapshot, start)
    #[arg(short = 'H', long = "cold_snap")]
    pub cold_snap: bool,

    /// Do not snapshot root device
    #[arg(short = 'o', long = "no_root_device")]
    pub no_root_device: bool,

    /// Do not make snapshot (useful when combined with -g or -d)
    #[arg(short = 'n', long = "no_snap")]
    pub no_snap: bool,

    /// Snapshot all volumes of an instance at one point in time (one CreateSnapshots call, a set
    /// tagged ec2snap:set); retention then keeps and deletes whole sets
    #[arg(long = "consistent")]
    pub consistent: bool,
}

/// Whether anything changes: `-u`, else a dry run that checks the permissions.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
#[command(next_help_heading = "Snapshots")]
pub struct ModeArgs {
    /// Run mode: really make and delete snapshots (dry run is the default)
    #[arg(short = 'u', long = "dry_run")]
    pub run: bool,

    /// In a dry run, do not send the calls of a real run with DryRun=true to check permissions
    #[arg(long = "no-permission-check")]
    pub no_permission_check: bool,
}

/// How a run makes its snapshots.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
#[command(next_help_heading = "Snapshots")]
pub struct Making {
    /// Instance timeout (in seconds) for stop and start during a cold snapshot (at most 604800)
    #[arg(
        short = 'm',
        long = "timeout",
        value_name = "COLDSNAP_TIMEOUT",
        default_value_t = 600
    )]
    pub timeout: u64,

    /// Instances worked on at once, 1 to 256 (1 keeps the original's log order; with -H, that many
    /// servers may be down at the same time)
    #[arg(long = "parallel", value_name = "N", default_value_t = 1)]
    pub parallel: usize,

    /// Wait until each new snapshot is completed before applying retention to its volume
    #[arg(long = "wait")]
    pub wait: bool,

    /// With --wait: how long to wait at most, in seconds (default 7200)
    #[arg(long = "wait-timeout", value_name = "SECONDS")]
    pub wait_timeout: Option<u64>,

    /// With --wait: seconds between two polls of the pending snapshots (default 15)
    #[arg(long = "wait-interval", value_name = "SECONDS")]
    pub wait_interval: Option<u64>,

    /// Do not tag an instance (ec2snap:stopped-by) before a cold stop, and do not look for
    /// instances a killed run left stopped (saves ec2:CreateTags/DeleteTags on instances)
    #[arg(long = "no-stop-tag")]
    pub no_stop_tag: bool,
}

/// Which snapshots retention keeps: `-g`, `-d`, the calendar rules.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
#[command(next_help_heading = "Retention")]
pub struct Rules {
    /// Maximum snapshot age to keep (<int> <s/m/h/d/w/M/y>) (ex: 1 h for one hour)
    #[arg(short = 'g', long = "max_age", num_args = 2, value_names = ["N", "UNIT"], allow_negative_numbers = true)]
    pub max_age: Vec<String>,

    /// Keep the x last snapshots of each volume
    #[arg(
        short = 'd',
        long = "keep_last_snapshots",
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub keep_last_snapshots: i64,

    #[command(flatten)]
    pub calendar: Calendar,
}

/// The calendar rules (restic's), of the snapshots or, in `vault-prune`, of the vault copies.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
#[command(next_help_heading = "Retention")]
pub struct Calendar {
    /// Keep the newest snapshot of each of the last N hours that have one (restic's rules; with
    /// them, -d is --keep-last and -g a window that is never pruned)
    #[arg(long = "keep-hourly", value_name = "N", allow_negative_numbers = true)]
    pub keep_hourly: Option<String>,

    /// Keep the newest snapshot of each of the last N days that have one
    #[arg(long = "keep-daily", value_name = "N", allow_negative_numbers = true)]
    pub keep_daily: Option<String>,

    /// Keep the newest snapshot of each of the last N ISO weeks (Monday to Sunday) that have one
    #[arg(long = "keep-weekly", value_name = "N", allow_negative_numbers = true)]
    pub keep_weekly: Option<String>,

    /// Keep the newest snapshot of each of the last N months that have one
    #[arg(long = "keep-monthly", value_name = "N", allow_negative_numbers = true)]
    pub keep_monthly: Option<String>,

    /// Keep the newest snapshot of each of the last N years that have one
    #[arg(long = "keep-yearly", value_name = "N", allow_negative_numbers = true)]
    pub keep_yearly: Option<String>,

    /// Hours, days, weeks, months and years of the --keep-* rules in UTC (default: local time,
    /// like the log)
    #[arg(long = "utc")]
    pub utc: bool,

    /// Never delete a snapshot (or the set it is in) tagged KEY=VALUE, as a legal hold (ec2snap
    /// hold) keeps it: it does not count among the N the rules keep (repeatable)
    #[arg(long = "keep-tag", value_name = "KEY=VALUE", action = clap::ArgAction::Append)]
    pub keep_tag: Vec<String>,
}

/// What a run's retention may delete.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
#[command(next_help_heading = "Retention")]
pub struct Deleting {
    /// Ignore error InvalidSnapshot.InUse when trying to delete snapshots
    #[arg(long = "ignore-in-use-snapshot")]
    pub ignore_in_use_snapshot: bool,

    /// Decide retention (and --lock) but delete nothing: for a role that may not delete
    #[arg(long = "no-delete")]
    pub no_delete: bool,

    /// Also delete this tool's snapshots of volumes that no longer exist (orphans) once older than
    /// N UNIT (<int> <s/m/h/d/w/M/y>); `ec2snap list` shows them
    #[arg(long = "prune-orphans-after", num_args = 2, value_names = ["N", "UNIT"], allow_negative_numbers = true)]
    pub prune_orphans_after: Vec<String>,
}

/// `--lock` and the archive tier.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
#[command(next_help_heading = "Retention")]
pub struct Locks {
    /// Lock snapshots against deletion for as long as the retention rules are sure to keep them
    /// (the -g window; a calendar rule's horizon once their period is over)
    #[arg(long = "lock", value_enum, value_name = "MODE")]
    pub lock: Option<LockMode>,

    /// With --lock or --copy-lock: the longest lock, in days (default 400)
    #[arg(long = "lock-max", value_name = "DAYS")]
    pub lock_max: Option<u32>,

    /// With --lock/--copy-lock compliance: hours during which the lock can still be removed (1 to
    /// 72)
    #[arg(long = "lock-cool-off", value_name = "HOURS")]
    pub lock_cool_off: Option<u32>,

    /// Move kept snapshots older than N UNIT to the archive tier (4x cheaper, 90-day minimum)
    /// when the rules keep them 90 days more at least and they are not their volume's newest
    #[arg(long = "archive-after", num_args = 2, value_names = ["N", "UNIT"], allow_negative_numbers = true)]
    pub archive_after: Vec<String>,
}

/// Where the copies go and how long they stay.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
#[command(next_help_heading = "Copies")]
pub struct CopyRules {
    /// Copy each volume's newest completed snapshot to this region too (repeatable)
    #[arg(long = "copy-to", value_name = "REGION", action = clap::ArgAction::Append)]
    pub copy_to: Vec<String>,

    /// Maximum age of the copies (<int> <s/m/h/d/w/M/y>); default: the -g of the source
    #[arg(long = "copy-max-age", num_args = 2, value_names = ["N", "UNIT"], allow_negative_numbers = true)]
    pub copy_max_age: Vec<String>,

    /// Keep the N newest copies of each volume in each region; default: the -d of the source
    #[arg(long = "copy-keep", value_name = "N", allow_negative_numbers = true)]
    pub copy_keep: Option<i64>,
}

/// How a run makes its copies.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
#[command(next_help_heading = "Copies")]
pub struct CopyMaking {
    /// Encrypt the copies with this KMS key (id, ARN or alias) of the destination region
    #[arg(long = "copy-kms-key", value_name = "KEY")]
    pub copy_kms_key: Option<String>,

    /// Lock the copies in their regions too, for as long as their own rules are sure to keep them
    /// (--lock-max and --lock-cool-off apply)
    #[arg(long = "copy-lock", value_enum, value_name = "MODE")]
    pub copy_lock: Option<LockMode>,
}

/// The vault account: copies of every backup in another account, which the production
/// credentials can create, tag and lock but never delete.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
#[command(next_help_heading = "Vault")]
pub struct Vault {
    /// Copy each volume's newest completed backup into the account of this IAM role, assumed from
    /// the base credentials (the copy role: no ec2:DeleteSnapshot)
    #[arg(long = "vault-role", value_name = "ROLE_ARN")]
    pub vault_role: Option<String>,

    /// The external id the vault role requires
    #[arg(long = "vault-external-id", value_name = "ID")]
    pub vault_external_id: Option<String>,

    /// The vault's region (default: the snapshots' own)
    #[arg(long = "vault-region", value_name = "REGION")]
    pub vault_region: Option<String>,

    /// Encrypt the vault copies with this KMS key of the vault account (default: the vault
    /// account's default EBS key; the copies are always encrypted)
    #[arg(long = "vault-kms-key", value_name = "KEY")]
    pub vault_kms_key: Option<String>,

    /// A key of this account granted to the vault account: a snapshot encrypted with the default
    /// aws/ebs key (which cannot be shared) is first copied re-encrypted with it
    #[arg(long = "share-kms-key", value_name = "KEY")]
    pub share_kms_key: Option<String>,

    /// Lock each vault copy in the vault for as long as the vault's rules are sure to keep it
    /// (--lock-max and --lock-cool-off apply)
    #[arg(long = "vault-lock", value_enum, value_name = "MODE")]
    pub vault_lock: Option<LockMode>,

    #[command(flatten)]
    pub rules: VaultRules,
}

/// How long the vault keeps its copies: what `vault-prune` applies, and `--vault-lock` locks by.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
#[command(next_help_heading = "Vault")]
pub struct VaultRules {
    /// Maximum age of the vault copies (<int> <s/m/h/d/w/M/y>); default: the -g of the source
    #[arg(long = "vault-max-age", num_args = 2, value_names = ["N", "UNIT"], allow_negative_numbers = true)]
    pub vault_max_age: Vec<String>,

    /// Keep the N newest vault copies of each volume; default: the -d of the source
    #[arg(long = "vault-keep", value_name = "N", allow_negative_numbers = true)]
    pub vault_keep: Option<i64>,
}

/// `ec2snap vault-prune`: the vault's own retention, run with the vault account's credentials.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
pub struct VaultPruneArgs {
    #[command(flatten)]
    pub rules: VaultRules,
    #[command(flatten)]
    pub calendar: Calendar,
    /// Only the copies of this source account (repeatable; default: every account's)
    #[arg(help_heading = "Vault", long = "source-account", value_name = "ACCOUNT_ID", action = clap::ArgAction::Append)]
    pub source_account: Vec<String>,
    /// The job's name in notifications (default: vault-prune)
    #[arg(help_heading = "Monitoring", long = "metrics-job", value_name = "NAME")]
    pub metrics_job: Option<String>,
    #[command(flatten)]
    pub notify: Notify,
    #[command(flatten)]
    pub mode: ModeArgs,
    #[command(flatten)]
    pub connection: Connection,
    /// A role in the vault account to prune as (`--assume-role`), when the credentials are not
    /// the vault's own
    #[command(flatten)]
    pub accounts: Accounts,
}

/// What `hold` and `release` act on: named snapshots, sets, or the selected instances' backups.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
#[command(next_help_heading = "Hold")]
pub struct HoldTargets {
    /// Snapshots of this account in the region (-r); a member of a --consistent set brings its
    /// whole set
    #[arg(value_name = "SNAPSHOT_ID")]
    pub snapshots: Vec<String>,

    /// Every member of this --consistent set (its ec2snap:set tag, e.g. i-0abc@2026-12-08T02:30:00Z);
    /// repeatable
    #[arg(long = "set", value_name = "SET_ID", action = clap::ArgAction::Append)]
    pub set: Vec<String>,

    /// Also the copies of these snapshots in REGION (made by --copy-to); repeatable
    #[arg(long = "copy-to", value_name = "REGION", action = clap::ArgAction::Append)]
    pub copy_to: Vec<String>,
}

/// `ec2snap hold`: a legal hold on snapshots.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
pub struct HoldArgs {
    #[command(flatten)]
    pub targets: HoldTargets,
    /// Why they are held (one line, at most 256 characters): the ec2snap:hold tag
    #[arg(help_heading = "Hold", long = "reason", value_name = "TEXT")]
    pub reason: Option<String>,
    /// Also lock them against deletion (EBS snapshot lock) for --lock-days days
    #[arg(help_heading = "Hold", long = "lock", value_enum, value_name = "MODE")]
    pub lock: Option<LockMode>,
    /// With --lock: how many days, 1 to 36500
    #[arg(help_heading = "Hold", long = "lock-days", value_name = "DAYS")]
    pub lock_days: Option<u32>,
    /// With --lock compliance: hours during which the lock can still be removed (1 to 72)
    #[arg(help_heading = "Hold", long = "lock-cool-off", value_name = "HOURS")]
    pub lock_cool_off: Option<u32>,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub filter: Filter,
    #[command(flatten)]
    pub mode: ModeArgs,
    #[command(flatten)]
    pub connection: Connection,
    #[command(flatten)]
    pub accounts: Accounts,
}

/// `ec2snap release`: ends legal holds.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
pub struct ReleaseArgs {
    #[command(flatten)]
    pub targets: HoldTargets,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub filter: Filter,
    #[command(flatten)]
    pub mode: ModeArgs,
    #[command(flatten)]
    pub connection: Connection,
    #[command(flatten)]
    pub accounts: Accounts,
}

/// `ec2snap report`: what is done with reports.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub action: Option<ReportAction>,
    /// Never given: `report` takes no connection flag (kept for the parse's merge).
    #[arg(skip)]
    pub connection: Connection,
}

#[derive(clap::Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum ReportAction {
    /// One fleet report from the reports of shards (--shard K/N) or runs: every target once,
    /// totals summed, a missing shard or a target twice named, the exit code the worst
    Merge(MergeArgs),
}

/// `ec2snap report merge`.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
pub struct MergeArgs {
    /// The reports (--report FILE of each shard); a directory stands for its *.json files
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Write the merged report to FILE (default: standard output)
    #[arg(long = "report", value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write Prometheus metrics of the merged report to FILE
    #[arg(long = "metrics-file", value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// The job label of the metrics (default: fleet)
    #[arg(long = "metrics-job", value_name = "NAME")]
    pub metrics_job: Option<String>,
}

/// Who is told how a job ended: healthchecks-style URLs and SNS topics.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
#[command(next_help_heading = "Monitoring")]
pub struct Notify {
    /// Ping URL/start when the job starts, then URL (exit 0) or URL/fail, with a short summary
    /// (the healthchecks.io protocol); repeatable. Not in a dry run
    #[arg(long = "notify", value_name = "URL", action = clap::ArgAction::Append)]
    pub notify: Vec<String>,

    /// Publish the outcome (summary and JSON report) to this SNS topic at the job's end;
    /// repeatable. A dry run checks the topic instead
    #[arg(long = "sns-topic", value_name = "TOPIC_ARN", action = clap::ArgAction::Append)]
    pub sns_topic: Vec<String>,
}

/// The hooks around each instance's snapshot calls.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
#[command(next_help_heading = "Hooks")]
pub struct HookArgs {
    /// Run CMD (sh -c) right before each instance's snapshot call(s), to quiesce its application;
    /// environment EC2SNAP_INSTANCE_ID, EC2SNAP_INSTANCE_NAME, EC2SNAP_PRIVATE_IP,
    /// EC2SNAP_VOLUMES (vol=dev,...), EC2SNAP_DRY_RUN
    #[arg(long = "pre-snapshot", value_name = "CMD")]
    pub pre_snapshot: Option<String>,

    /// Run CMD (sh -c) right after the snapshot call(s) return; always runs once the pre hook
    /// started (after a failure, a timeout, a signal); EC2SNAP_SNAPSHOT_RESULT is ok or failed
    #[arg(long = "post-snapshot", value_name = "CMD")]
    pub post_snapshot: Option<String>,

    /// Each hook's limit in seconds; its process group is killed then (default 30)
    #[arg(long = "hook-timeout", value_name = "SECONDS")]
    pub hook_timeout: Option<u64>,

    /// Run the hooks in a dry run too, with EC2SNAP_DRY_RUN=1, to test them
    #[arg(long = "hook-dry-run")]
    pub hook_dry_run: bool,

    /// When the pre hook fails or times out (default crash-consistent)
    #[arg(long = "on-hook-failure", value_enum, value_name = "POLICY")]
    pub on_hook_failure: Option<OnHookFailure>,

    /// A built-in pre and post hook: `ssm` freezes the snapshotted filesystems of Linux
    /// instances through SSM Run Command, a watchdog thawing them after --freeze-timeout
    #[arg(long = "freeze", value_enum, value_name = "HOW")]
    pub freeze: Option<Freeze>,

    /// With --freeze: the on-instance watchdog thaws after this many seconds (default 10)
    #[arg(long = "freeze-timeout", value_name = "SECONDS")]
    pub freeze_timeout: Option<u64>,
}

/// The report and the metrics of a run, a restore or a drill.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
#[command(next_help_heading = "Monitoring")]
pub struct Monitoring {
    /// Write a JSON report of the run to FILE at its end (- for standard output)
    #[arg(long = "report", value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Write Prometheus metrics of the run to FILE (node_exporter's textfile collector)
    #[arg(long = "metrics-file", value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,

    /// The job label of the metrics (default: the selection, e.g. Name=front*)
    #[arg(long = "metrics-job", value_name = "NAME")]
    pub metrics_job: Option<String>,

    #[command(flatten)]
    pub notify: Notify,
}

/// The freshness check (`ec2snap check`, or these flags without a subcommand).
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
#[command(next_help_heading = "Monitoring")]
pub struct Freshness {
    /// Monitoring check, read-only: is there a completed snapshot younger than N UNIT of every
    /// selected volume? Exit 0 OK, 2 CRITICAL, 3 UNKNOWN
    #[arg(long = "check-max-age", num_args = 2, value_names = ["N", "UNIT"], allow_negative_numbers = true)]
    pub check_max_age: Vec<String>,

    /// Monitoring check, read-only: has every selected instance passed a restore drill (ec2snap
    /// drill -u) within N UNIT? With or without --check-max-age
    #[arg(long = "drill-max-age", num_args = 2, value_names = ["N", "UNIT"], allow_negative_numbers = true)]
    pub drill_max_age: Vec<String>,

    /// The most seconds the whole check may take, 1 to 3600; past it the answer is UNKNOWN
    /// (default 30)
    #[arg(long = "check-timeout", value_name = "SECONDS")]
    pub check_timeout: Option<u64>,
}

/// Where to connect, and as whom: every command's; may also come before a subcommand.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
#[command(next_help_heading = "Connection")]
pub struct Connection {
    /// Set AWS region (ex: eu-west-1); repeatable, or `all` for every region enabled for the
    /// account
    #[arg(short = 'r', long = "region", value_name = "REGION", action = clap::ArgAction::Append)]
    pub region: Vec<String>,

    /// Set AWS Key ID
    #[arg(short = 'k', long = "key_id", value_name = "KEY_ID")]
    pub key_id: Option<String>,

    /// Set AWS Access Key
    #[arg(short = 'a', long = "access_key", value_name = "ACCESS_KEY")]
    pub access_key: Option<String>,

    /// Credentials file path [default: ~/.aws_cred]
    #[arg(short = 'c', long = "credentials", value_name = "CREDENTIALS")]
    pub credentials: Option<PathBuf>,

    /// Credentials profile defined in credentials file (or AWS profile) [default: default]
    #[arg(short = 'p', long = "profile", value_name = "CRED_PROFILE")]
    pub profile: Option<String>,

    /// EC2 endpoint URL (e.g. http://127.0.0.1:5000 for moto or LocalStack)
    #[arg(long = "endpoint-url", value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// Maximum attempts per AWS request, 1 to 100 (throttling and 5xx answers are retried with
    /// backoff) [default: 8]
    #[arg(long = "max-attempts", value_name = "N")]
    pub max_attempts: Option<u32>,
}

impl Freshness {
    /// `--check-max-age` or `--drill-max-age`: without a subcommand, the check instead of a run.
    pub fn given(&self) -> bool {
        !self.check_max_age.is_empty() || !self.drill_max_age.is_empty()
    }
}

impl Connection {
    /// Adds the flags given before the subcommand (`before`); the name of one given both times.
    pub fn merge(&mut self, before: Connection) -> Result<(), &'static str> {
        fn one<T>(
            here: &mut Option<T>,
            before: Option<T>,
            flag: &'static str,
        ) -> Result<(), &'static str> {
            match (here.is_some(), before) {
                (true, Some(_)) => Err(flag),
                (false, b) => {
                    *here = b;
                    Ok(())
                }
                (true, None) => Ok(()),
            }
        }
        let mut regions = before.region;
        regions.append(&mut self.region);
        self.region = regions;
        one(&mut self.key_id, before.key_id, "-k/--key_id")?;
        one(&mut self.access_key, before.access_key, "-a/--access_key")?;
        one(
            &mut self.credentials,
            before.credentials,
            "-c/--credentials",
        )?;
        one(&mut self.profile, before.profile, "-p/--profile")?;
        one(
            &mut self.endpoint_url,
            before.endpoint_url,
            "--endpoint-url",
        )?;
        one(
            &mut self.max_attempts,
            before.max_attempts,
            "--max-attempts",
        )
    }
}

/// Many accounts: every command's (`restore` and `drill` take one target at most).
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
#[command(next_help_heading = "Many accounts")]
pub struct Accounts {
    /// Work in the account of this IAM role too, through STS (repeatable): each role and region
    /// is a target of its own
    #[arg(long = "assume-role", value_name = "ROLE_ARN", action = clap::ArgAction::Append)]
    pub assume_role: Vec<String>,

    /// The external id the roles of --assume-role require
    #[arg(long = "external-id", value_name = "ID")]
    pub external_id: Option<String>,

    /// The session name of the assumed roles (default ec2snap)
    #[arg(long = "role-session-name", value_name = "NAME")]
    pub role_session_name: Option<String>,

    /// The accounts to work in: a YAML file in c7n-org's accounts.yml shape (accounts: account_id,
    /// name, role, regions, external_id, tags)
    #[arg(long = "accounts", value_name = "FILE")]
    pub accounts: Option<PathBuf>,

    /// With --accounts: only the accounts with this tag (KEY=VALUE, an entry's `KEY:VALUE`);
    /// repeatable, all must match
    #[arg(long = "account-tag", value_name = "KEY=VALUE", action = clap::ArgAction::Append)]
    pub account_tag: Vec<String>,

    /// At most N targets (account and region) at once, each with its own --parallel (default 4)
    #[arg(long = "parallel-targets", value_name = "N")]
    pub parallel_targets: Option<usize>,
}

/// The accounts of an AWS Organization and shards: a backup run's, `list`'s and `check`'s.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
#[command(next_help_heading = "Organization and shards")]
pub struct Sharding {
    /// The targets are the ACTIVE accounts of the AWS Organization (organizations:ListAccounts,
    /// from the management account or a delegated administrator), each through the role
    /// arn:aws:iam::ID:role/ROLE_NAME
    #[arg(long = "accounts-from-org", value_name = "ROLE_NAME")]
    pub accounts_from_org: Option<String>,

    /// With --accounts-from-org: only the accounts under this OU (or root), recursively;
    /// repeatable
    #[arg(long = "org-unit", value_name = "OU_ID", action = clap::ArgAction::Append)]
    pub org_unit: Vec<String>,

    /// With --accounts-from-org: the management account too (left out by default)
    #[arg(long = "org-include-management")]
    pub org_include_management: bool,

    /// Work on shard K of N (0 <= K < N <= 10000): only the targets (account, region) whose stable
    /// hash falls in it, so that N workers cover each target once. With --shard-index-from: N alone
    #[arg(long = "shard", value_name = "K/N", allow_hyphen_values = true)]
    pub shard: Option<String>,

    /// Take K of --shard from this environment variable (JOB_COMPLETION_INDEX in a Kubernetes
    /// Indexed Job, AWS_BATCH_JOB_ARRAY_INDEX in an AWS Batch array job)
    #[arg(long = "shard-index-from", value_name = "VAR")]
    pub shard_index_from: Option<String>,
}

/// The log: the only global flags (they mean the same to every command, wherever given).
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
#[command(next_help_heading = "Output")]
pub struct LogArgs {
    /// Also append the log to this file
    #[arg(global = true, short = 'f', long = "file_output", value_name = "FILE")]
    pub file_output: Option<PathBuf>,

    /// Log output to console (always on; accepted for compatibility)
    #[arg(global = true, short = 's', long = "stdout")]
    pub stdout: bool,

    /// Verbosity level: DEBUG/INFO/WARNING/ERROR/CRITICAL [default: INFO]
    #[arg(global = true, short = 'v', long = "verbosity", value_name = "LEVEL")]
    pub verbosity: Option<String>,
}

/// What every command's flags hold: the selection, the snapshot filter, the connection and the
/// accounts (each command flattens these groups among its own).
pub trait Shared {
    fn common(&self) -> &Common;
    fn filter(&self) -> &Filter;
    fn connection(&self) -> &Connection;
    fn accounts(&self) -> &Accounts;
    /// `--accounts-from-org`, `--shard`: only a backup run's, `list`'s and `check`'s.
    fn sharding(&self) -> Option<&Sharding> {
        None
    }
}

macro_rules! shared {
    ($($t:ty),*) => {$(
        impl Shared for $t {
            fn common(&self) -> &Common {
                &self.common
            }
            fn filter(&self) -> &Filter {
                &self.filter
            }
            fn connection(&self) -> &Connection {
                &self.connection
            }
            fn accounts(&self) -> &Accounts {
                &self.accounts
            }
        }
    )*};
    (sharded: $($t:ty),*) => {$(
        impl Shared for $t {
            fn common(&self) -> &Common {
                &self.common
            }
            fn filter(&self) -> &Filter {
                &self.filter
            }
            fn connection(&self) -> &Connection {
                &self.connection
            }
            fn accounts(&self) -> &Accounts {
                &self.accounts
            }
            fn sharding(&self) -> Option<&Sharding> {
                Some(&self.sharding)
            }
        }
    )*};
}

shared!(RestoreArgs, DrillArgs, HoldArgs, ReleaseArgs);
shared!(sharded: RunArgs, ListArgs, CheckArgs);
