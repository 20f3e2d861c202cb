//! Turns the parsed command line into a validated `Config`: every check that can fail happens here,
//! before any AWS call.

pub mod credentials;
pub mod fleet;
pub mod hold;
pub mod restore;
pub mod vault;

use crate::aws::settings::AwsSettings;
use crate::cli::{self, Cli, Generate, Sub};
use crate::model::{SnapshotKind, TagPattern};
use crate::output::log::Level;
use crate::retention::policy::Keep;
use crate::retention::policy::{Rule, Zone};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::Duration;

/// What to do, decided once from the command line; nothing reads the command line after it.
pub enum Command {
    /// A backup run (no subcommand).
    Run(Box<Job<Config>>),
    /// `ec2snap list` (`--json`: a JSON document instead of the table).
    List(Box<Job<ListConfig>>),
    Restore(Box<Job<Config>>),
    Drill(Box<Job<Config>>),
    /// `ec2snap check`, or `--check-max-age`/`--drill-max-age` without a subcommand.
    Check(Box<Job<Config>>),
    /// `ec2snap vault-prune`.
    VaultPrune(Box<Job<Config>>),
    /// `ec2snap report merge`.
    Merge(cli::MergeArgs),
    /// `ec2snap report` without what to do: its help.
    ReportHelp,
    /// `ec2snap hold`, `ec2snap release`.
    Hold(Box<Job<Config>>),
    Release(Box<Job<Config>>),
    /// `--generate KIND`: print the man page or a completion script.
    Generate(Generate),
    /// `-V`: print the version.
    Version,
}

/// A command that works: how to log, where its report and metrics go, and its validated
/// configuration, or why the command line is wrong (then logged, and the report written).
pub struct Job<C> {
    pub log: LogSettings,
    pub outputs: Outputs,
    pub config: Result<C>,
}

/// `ec2snap list`'s configuration.
pub struct ListConfig {
    pub config: Config,
    pub json: bool,
}

/// `-v` and `-f`.
pub struct LogSettings {
    /// `None` when `-v` names no level (the run logs at INFO and says so, as the original).
    pub level: Option<Level>,
    /// `-v` as given.
    pub verbosity: String,
    pub file: Option<PathBuf>,
}

/// Where the report and the metrics of a run go (known even when a flag is wrong, so that a
/// failed run still leaves them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outputs {
    /// `--report FILE`, `-` for standard output.
    pub report: Option<PathBuf>,
    pub metrics: Option<PathBuf>,
    /// The metrics' `job` label.
    pub job: String,
    /// `-u`: a real run (its success is the metrics' last success).
    pub real_run: bool,
    /// `--copy-to`: every destination has its copies' series, 0 included.
    pub copy_regions: Vec<String>,
    /// `--notify`, `--sns-topic`: the valid ones (a wrong one is the configuration's error).
    pub notify: crate::notify::Targets,
    /// `--shard K/N`: the report names it.
    pub shard: Option<String>,
}

impl Outputs {
    pub fn report_to_stdout(&self) -> bool {
        self.report.as_deref() == Some(std::path::Path::new("-"))
    }

    /// `--report`, `--metrics-file`, `--metrics-job` of a command whose job label starts with
    /// `prefix` (a drill's success is not the backup's).
    fn of(m: &cli::Monitoring, common: &cli::Common, prefix: &str, real_run: bool) -> Outputs {
        Outputs {
            report: m.report.clone(),
            metrics: m.metrics_file.clone(),
            job: metrics_job(m, common, prefix),
            real_run,
            copy_regions: Vec::new(),
            notify: crate::notify::Targets::lenient(&m.notify),
            shard: None,
        }
    }
}

impl Outputs {
    /// `vault-prune` writes no report: its deletions are in its log (and its notifications).
    fn of_prune(a: &cli::VaultPruneArgs) -> Outputs {
        Outputs {
            real_run: a.mode.run,
            job: a
                .metrics_job
                .clone()
                .unwrap_or_else(|| "vault-prune".into()),
            notify: crate::notify::Targets::lenient(&a.notify),
            ..Outputs::default()
        }
    }

    /// `ec2snap check`: only its notifications (a check changes nothing: it always tells).
    fn of_check(a: &cli::CheckArgs) -> Outputs {
        let m = cli::Monitoring {
            metrics_job: a.metrics_job.clone(),
            ..cli::Monitoring::default()
        };
        Outputs {
            real_run: true,
            job: metrics_job(&m, &a.common, "check:"),
            notify: crate::notify::Targets::lenient(&a.notify),
            ..Outputs::default()
        }
    }
}

impl Command {
    pub fn from_cli(cli: Cli) -> Command {
        if let Some(kind) = cli.generate {
            return Command::Generate(kind);
        }
        if cli.version {
            return Command::Version;
        }
        let verbosity = cli.log.verbosity.clone().unwrap_or_else(|| "INFO".into());
        let log = LogSettings {
            level: verbosity.parse::<Level>().ok(),
            verbosity,
            file: cli.log.file_output.clone(),
        };
        fn job<C>(log: LogSettings, outputs: Outputs, config: Result<C>) -> Box<Job<C>> {
            Box::new(Job {
                log,
                outputs,
                config,
            })
        }
        match cli.command {
            None if cli.run.freshness.given() => {
                let a = &cli.run;
                let outputs = Outputs {
                    real_run: true,
                    job: metrics_job(&a.monitoring, &a.common, "check:"),
                    notify: crate::notify::Targets::lenient(&a.monitoring.notify),
                    ..Outputs::default()
                };
                let config = Config::check_without_subcommand(a, &cli.not_for_check)
                    .and_then(|c| c.notifying(&a.monitoring.notify));
                Command::Check(job(log, outputs, config))
            }
            None => {
                let a = &cli.run;
                let mut outputs = Outputs::of(&a.monitoring, &a.common, "", a.mode.run);
                // A shard's report and metrics name it.
                if let Ok(fleet) = fleet::fleet(&a.connection, &a.accounts, Some(&a.sharding)) {
                    if let Some(shard) = fleet.shard {
                        outputs.shard = Some(shard.label());
                        // `{shard}` in a path is the shard's index (AWS Batch expands no variable).
                        let index = shard.index.to_string();
                        for path in [&mut outputs.report, &mut outputs.metrics]
                            .into_iter()
                            .flatten()
                        {
                            if let Some(text) = path.to_str().filter(|t| t.contains("{shard}")) {
                                *path = std::path::PathBuf::from(text.replace("{shard}", &index));
                            }
                        }
                        if a.monitoring.metrics_job.is_none() {
                            outputs.job = format!("{} shard {}", outputs.job, shard.label());
                        }
                    }
                }
                outputs.copy_regions = a
                    .copy_rules
                    .copy_to
                    .iter()
                    .map(|r| r.trim().to_string())
                    .collect();
                let config = Config::run(a).and_then(|c| c.notifying(&a.monitoring.notify));
                Command::Run(job(log, outputs, config))
            }
            Some(Sub::List(a)) => {
                let config = Config::list(&a).map(|config| ListConfig {
                    config,
                    json: a.json,
                });
                Command::List(job(log, Outputs::default(), config))
            }
            Some(Sub::Restore(a)) => Command::Restore(job(
                log,
                Outputs::of(&a.monitoring, &a.common, "restore:", a.mode.run),
                Config::restore(&a).and_then(|c| c.notifying(&a.monitoring.notify)),
            )),
            Some(Sub::Drill(a)) => Command::Drill(job(
                log,
                Outputs::of(&a.monitoring, &a.common, "drill:", a.mode.run),
                Config::drill(&a).and_then(|c| c.notifying(&a.monitoring.notify)),
            )),
            Some(Sub::VaultPrune(a)) => Command::VaultPrune(job(
                log,
                Outputs::of_prune(&a),
                Config::vault_prune(&a).and_then(|c| c.notifying(&a.notify)),
            )),
            Some(Sub::Check(a)) => Command::Check(job(
                log,
                Outputs::of_check(&a),
                Config::check(&a).and_then(|c| c.notifying(&a.notify)),
            )),
            Some(Sub::Report(a)) => match a.action {
                Some(cli::ReportAction::Merge(m)) => Command::Merge(m),
                None => Command::ReportHelp,
            },
            Some(Sub::Hold(a)) => Command::Hold(job(log, Outputs::default(), Config::hold(&a))),
            Some(Sub::Release(a)) => {
                Command::Release(job(log, Outputs::default(), Config::release(&a)))
            }
        }
    }
}

/// Which instances to work on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// `-i all`
    All,
    /// `-i` ids and `-t` patterns (union of both).
    Some {
        ids: Vec<String>,
        tags: Vec<TagPattern>,
    },
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `-u` or a dry run (with or without its permission check).
    pub mode: Mode,
    pub selection: Selection,
    pub add_tags: Vec<(String, String)>,
    pub limit: Option<usize>,
    /// What kind of snapshot the run makes: `None` with `-n`, cold with `-H`, else hot.
    pub snapshot: Option<SnapshotKind>,
    pub timeout: Duration,
    pub no_root_device: bool,
    /// `-g`, `-d`, the `--keep-*` rules and `--utc`.
    pub retention: Rule,
    /// `--snap-filter`: only snapshots with these tags are looked at by retention.
    pub snap_filter: Vec<TagPattern>,
    pub ignore_in_use: bool,
    pub aws: AwsSettings,
    pub parallel: usize,
    /// Tag an instance before a cold stop, and start instances a killed run left stopped.
    pub stop_tag: bool,
    /// `--consistent`: one CreateSnapshots call per instance, retention by set.
    pub grouping: Grouping,
    /// `--copy-to`: copies in other regions, with their own retention.
    pub copy: Option<CopyPolicy>,
    /// `--check-max-age`, in seconds: the read-only freshness check instead of a run.
    pub check_max_age: Option<i64>,
    /// `--prune-orphans-after`, in seconds: this tool's snapshots of deleted volumes older than
    /// this go.
    pub prune_orphans_after: Option<i64>,
    /// `--drill-max-age`, in seconds: the check also wants a drill this recent of each instance.
    pub drill_max_age: Option<i64>,
    /// The accounts and regions to work in: one (the original's) unless `-r` is repeated or
    /// `all`, or `--assume-role`/`--accounts` are given.
    pub fleet: fleet::Fleet,
    /// One target of a run over many: finding no instance there is no error (with `-r all`,
    /// most regions have none); the run says so once if no target has any.
    pub in_fleet: bool,
    /// `--archive-after`, in seconds: kept snapshots older than this go to the archive tier.
    pub archive_after: Option<i64>,
    /// `--no-delete`: retention decides (and locks) but deletes nothing.
    pub no_delete: bool,
    /// `--lock`: lock what the rules are sure to keep.
    pub lock: Option<crate::retention::lock::LockPolicy>,
    /// `--pre-snapshot`, `--post-snapshot`, `--freeze`: the hooks around each instance's
    /// snapshot calls.
    pub hooks: Option<crate::hooks::policy::Hooks>,
    /// `restore` and `drill`: what to restore, where, and how.
    pub restore: Option<restore::RestoreOptions>,
    /// `--check-timeout`: the whole check's bound.
    pub check_timeout: Duration,
    /// `--wait`: retention for a volume only once its new snapshot is completed.
    pub wait: Option<WaitPolicy>,
    /// `--vault-role`: copies in the vault account.
    pub vault: Option<vault::VaultPolicy>,
    /// `ec2snap vault-prune`: the vault's own retention.
    pub vault_prune: Option<vault::PruneOptions>,
    /// `check --check-vault`, `list --vault-role`: the vault copies, read with this role.
    pub vault_reader: Option<restore::FromVault>,
    /// `ec2snap hold`, `ec2snap release`.
    pub hold: Option<hold::HoldOptions>,
    /// A dry run that checks permissions, with `--sns-topic`: the topics are checked.
    pub check_topics: bool,
}

pub use crate::model::Mode;

/// How snapshots are made and pruned: per volume, or as one set per instance (`--consistent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    Volumes,
    Sets,
}

impl Config {
    /// `--consistent`.
    pub fn sets(&self) -> bool {
        self.grouping == Grouping::Sets
    }

    /// `-H` with a snapshot to make.
    pub fn cold(&self) -> bool {
        self.snapshot == Some(SnapshotKind::Cold)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPolicy {
    pub timeout: Duration,
    pub interval: Duration,
}

/// `--archive-after N UNIT`: only with calendar rules or `-g`, which say how long a snapshot stays.
fn archive_after(cli: &cli::Locks, rule: &Rule) -> Result<Option<i64>> {
    let Some(secs) = age_flag(&cli.archive_after, "--archive-after")? else {
        return Ok(None);
    };
    if rule.max_age_secs.is_none() && !rule.keep.has_calendar() {
        bail!("--archive-after archives what the rules keep 90 days more at least: give -g or a --keep-* rule");
    }
    Ok(Some(secs))
}

/// `--lock`, `--lock-max`, `--lock-cool-off`.
/// `others`: `--copy-lock` and `--vault-lock`, which the lock options apply to as well.
fn lock_policy(
    cli: &cli::Locks,
    others: [Option<cli::LockMode>; 2],
    rule: &Rule,
) -> Result<Option<crate::retention::lock::LockPolicy>> {
    if cli.lock.is_none() && others.iter().all(Option::is_none) {
        if cli.lock_max.is_some() || cli.lock_cool_off.is_some() {
            bail!("--lock-max and --lock-cool-off go with --lock, --copy-lock or --vault-lock");
        }
        return Ok(None);
    }
    let compliance = |m: Option<crate::cli::LockMode>| m == Some(crate::cli::LockMode::Compliance);
    if cli.lock_cool_off.is_some()
        && !compliance(cli.lock)
        && !others.iter().any(|m| compliance(*m))
    {
        bail!("--lock-cool-off goes with --lock compliance, --copy-lock compliance or --vault-lock compliance");
    }
    cli.lock
        .map(|mode| lock_mode(cli, mode, rule, "--lock"))
        .transpose()
}

/// One lock flag's policy (`flag`: `--lock` or `--copy-lock`) over the rule its snapshots are
/// kept by.
fn lock_mode(
    cli: &cli::Locks,
    mode: crate::cli::LockMode,
    rule: &Rule,
    flag: &str,
) -> Result<crate::retention::lock::LockPolicy> {
    use crate::retention::lock::{LockPolicy, Mode};
    if rule.max_age_secs.is_none() && !rule.keep.has_calendar() {
        bail!("{flag} locks for as long as the rules are sure to keep a snapshot: give -g or a --keep-hourly/daily/weekly/monthly/yearly rule (-d counts snapshots, not time)");
    }
    let max_days = cli.lock_max.unwrap_or(400);
    if !(1..=36_500).contains(&max_days) {
        bail!("--lock-max must be from 1 to 36500 days (here {max_days})");
    }
    let mode = match mode {
        crate::cli::LockMode::Governance => Mode::Governance,
        crate::cli::LockMode::Compliance => {
            let hours = cli.lock_cool_off.unwrap_or(24);
            if !(1..=72).contains(&hours) {
                bail!("--lock-cool-off must be from 1 to 72 hours (here {hours})");
            }
            Mode::Compliance {
                cool_off_hours: hours,
            }
        }
    };
    Ok(LockPolicy { mode, max_days })
}

/// The most seconds a hook may run, and the freeze last.
const MAX_HOOK_SECS: u64 = 3_600;

/// `--pre-snapshot`, `--post-snapshot`, `--freeze` and their options.
fn hooks(cli: &cli::HookArgs, shape: &cli::Shape) -> Result<Option<crate::hooks::policy::Hooks>> {
    use crate::hooks::policy::{Freeze, Hooks, OnFailure};
    let any = cli.pre_snapshot.is_some() || cli.post_snapshot.is_some() || cli.freeze.is_some();
    if !any {
        let options = [
            (cli.hook_timeout.is_some(), "--hook-timeout"),
            (cli.hook_dry_run, "--hook-dry-run"),
            (cli.on_hook_failure.is_some(), "--on-hook-failure"),
            (cli.freeze_timeout.is_some(), "--freeze-timeout"),
        ];
        if let Some((_, flag)) = options.iter().find(|(given, _)| *given) {
            bail!("{flag} goes with --pre-snapshot, --post-snapshot or --freeze");
        }
        return Ok(None);
    }
    if shape.cold_snap {
        bail!("-H stops the instance, which makes snapshot hooks pointless: give -H or --pre-snapshot/--post-snapshot/--freeze, not both");
    }
    if shape.no_snap {
        bail!("-n makes no snapshot: --pre-snapshot, --post-snapshot and --freeze have nothing to surround");
    }
    if cli.freeze.is_some() && (cli.pre_snapshot.is_some() || cli.post_snapshot.is_some()) {
        bail!(
            "--freeze is a pre and post hook of its own: give it or --pre-snapshot/--post-snapshot"
        );
    }
    if cli.freeze.is_none() && cli.freeze_timeout.is_some() {
        bail!("--freeze-timeout goes with --freeze");
    }
    for (flag, cmd) in [
        ("--pre-snapshot", &cli.pre_snapshot),
        ("--post-snapshot", &cli.post_snapshot),
    ] {
        if cmd.as_deref().is_some_and(|c| c.trim().is_empty()) {
            bail!("{flag} needs a command");
        }
    }
    let secs = |flag: &str, value: Option<u64>, default: u64| -> Result<Duration> {
        let v = value.unwrap_or(default);
        if !(1..=MAX_HOOK_SECS).contains(&v) {
            bail!("{flag} must be from 1 to {MAX_HOOK_SECS} seconds (here {v})");
        }
        Ok(Duration::from_secs(v))
    };
    let timeout = secs("--hook-timeout", cli.hook_timeout, 30)?;
    let freeze = match cli.freeze {
        Some(crate::cli::Freeze::Ssm) => Some(Freeze::Ssm {
            thaw_after: secs("--freeze-timeout", cli.freeze_timeout, 10)?,
        }),
        None => None,
    };
    Ok(Some(Hooks {
        pre: cli.pre_snapshot.clone(),
        post: cli.post_snapshot.clone(),
        timeout,
        in_dry_run: cli.hook_dry_run,
        on_failure: match cli.on_hook_failure {
            Some(crate::cli::OnHookFailure::Skip) => OnFailure::Skip,
            Some(crate::cli::OnHookFailure::CrashConsistent) | None => OnFailure::CrashConsistent,
        },
        freeze,
    }))
}

fn wait_policy(cli: &cli::Making) -> Result<Option<WaitPolicy>> {
    if !cli.wait {
        if cli.wait_timeout.is_some() || cli.wait_interval.is_some() {
            bail!("--wait-timeout and --wait-interval go with --wait");
        }
        return Ok(None);
    }
    let timeout = cli.wait_timeout.unwrap_or(7_200);
    if !(1..=MAX_TIMEOUT_SECS).contains(&timeout) {
        bail!("--wait-timeout must be from 1 to {MAX_TIMEOUT_SECS} seconds (here {timeout})");
    }
    let interval = cli.wait_interval.unwrap_or(15);
    if !(1..=3_600).contains(&interval) {
        bail!("--wait-interval must be from 1 to 3600 seconds (here {interval})");
    }
    Ok(Some(WaitPolicy {
        timeout: Duration::from_secs(timeout),
        interval: Duration::from_secs(interval),
    }))
}

/// The metrics' job label: `--metrics-job`, else `prefix` and the selection as given, e.g.
/// `Name=front*`, `all`, or the ids (read from the command line, so that it exists even when it
/// is invalid). A drill's or a restore's prefix keeps their success apart from the backup's, so
/// that the nightly run's "backup missing" alert is never fed by the weekly drill.
fn metrics_job(m: &cli::Monitoring, common: &cli::Common, prefix: &str) -> String {
    if let Some(job) = &m.metrics_job {
        return job.clone();
    }
    let selection = common
        .instance
        .iter()
        .cloned()
        .chain(common.tags.chunks(2).map(|c| c.join("=")))
        .collect::<Vec<_>>()
        .join(",");
    format!("{prefix}{selection}")
}

/// `--check-max-age N UNIT` and `--drill-max-age N UNIT`, at least one; `--check-timeout`.
fn freshness(f: &cli::Freshness) -> Result<(Option<i64>, Option<i64>, Duration)> {
    let backups = age_flag(&f.check_max_age, "--check-max-age")?;
    let drills = age_flag(&f.drill_max_age, "--drill-max-age")?;
    if backups.is_none() && drills.is_none() {
        bail!("check: give --check-max-age N UNIT, --drill-max-age N UNIT or both");
    }
    Ok((backups, drills, check_timeout(f)?))
}

/// A usage error naming every flag given among `clashes` (`(given, flag)`), after `what`.
fn refuse(clashes: &[(bool, &str)], what: &str) -> Result<()> {
    let given: Vec<&str> = clashes
        .iter()
        .filter_map(|(set, flag)| set.then_some(*flag))
        .collect();
    if !given.is_empty() {
        bail!("{what}: it cannot go with {}", given.join(", "));
    }
    Ok(())
}

/// The most seconds `--check-timeout` may give.
const MAX_CHECK_TIMEOUT_SECS: u64 = 3_600;

fn check_timeout(cli: &cli::Freshness) -> Result<Duration> {
    let secs = cli.check_timeout.unwrap_or(30);
    if !(1..=MAX_CHECK_TIMEOUT_SECS).contains(&secs) {
        bail!("--check-timeout must be from 1 to {MAX_CHECK_TIMEOUT_SECS} seconds (here {secs})");
    }
    Ok(Duration::from_secs(secs))
}

/// `--copy-to` and its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyPolicy {
    pub regions: Vec<String>,
    pub kms_key: Option<String>,
    /// `--copy-max-age`/`--copy-keep`, each defaulting to `-g`/`-d`.
    pub rule: Rule,
    /// `--copy-lock`: lock the copies for as long as `rule` is sure to keep them.
    pub lock: Option<crate::retention::lock::LockPolicy>,
}

/// A region name as AWS writes them: lower-case letters, digits and dashes, e.g. `eu-west-1`.
fn region_name(name: &str) -> Result<String> {
    let ok = !name.is_empty()
        && name.contains('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        bail!("--copy-to takes a region name such as eu-west-1 (here {name:?})");
    }
    Ok(name.to_string())
}

/// `--copy-to` and its rules; `making`: how a run makes them (`list` only shows them), with the
/// lock flags their `--copy-lock` takes.
fn copy_policy(
    cli: &cli::CopyRules,
    making: Option<(&cli::CopyMaking, &cli::Locks)>,
    source: &Rule,
) -> Result<Option<CopyPolicy>> {
    let (kms_key, copy_lock) =
        making.map_or((None, None), |(m, _)| (m.copy_kms_key.clone(), m.copy_lock));
    if cli.copy_to.is_empty() {
        if kms_key.is_some()
            || !cli.copy_max_age.is_empty()
            || cli.copy_keep.is_some()
            || copy_lock.is_some()
        {
            bail!("--copy-kms-key, --copy-max-age, --copy-keep and --copy-lock go with --copy-to");
        }
        return Ok(None);
    }
    let mut regions = cli
        .copy_to
        .iter()
        .map(|r| region_name(r))
        .collect::<Result<Vec<_>>>()?;
    regions.sort();
    regions.dedup();
    let max_age_secs = age_flag(&cli.copy_max_age, "--copy-max-age")?.or(source.max_age_secs);
    let keep_last = match cli.copy_keep {
        None => source.keep.last,
        Some(n) if n < 0 => bail!("--copy-keep cannot be negative (here {n})"),
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    };
    // The calendar rules and their time zone are the source's.
    let rule = Rule {
        max_age_secs,
        keep: Keep {
            last: keep_last,
            ..source.keep
        },
        zone: source.zone,
        keep_tags: source.keep_tags.clone(),
    };
    let lock = match making {
        Some((m, locks)) => m
            .copy_lock
            .map(|mode| lock_mode(locks, mode, &rule, "--copy-lock"))
            .transpose()?,
        None => None,
    };
    Ok(Some(CopyPolicy {
        regions,
        kms_key,
        rule,
        lock,
    }))
}

impl CopyPolicy {
    /// A copy into the region of the snapshots themselves is a usage error: checked as soon as
    /// that region is known (from the flags or the credentials file here, else right after
    /// connecting), before any request.
    pub fn check_source_region(&self, source: &str) -> Result<()> {
        if self.regions.iter().any(|r| r == source) {
            bail!(
                "--copy-to {source} is the region of the snapshots themselves: give another region"
            );
        }
        Ok(())
    }
}

/// The calendar rules' flags and values, as given.
fn keep_flags(cli: &cli::Calendar) -> [(&'static str, Option<&str>); 5] {
    [
        ("--keep-hourly", cli.keep_hourly.as_deref()),
        ("--keep-daily", cli.keep_daily.as_deref()),
        ("--keep-weekly", cli.keep_weekly.as_deref()),
        ("--keep-monthly", cli.keep_monthly.as_deref()),
        ("--keep-yearly", cli.keep_yearly.as_deref()),
    ]
}

/// `-g`, `-d`, the `--keep-*` rules and `--utc`.
fn retention(cli: &cli::Rules) -> Result<Rule> {
    let max_age_secs = age_flag(&cli.max_age, "-g")?;
    if cli.keep_last_snapshots < 0 {
        bail!(
            "Number of snapshots to keep cannot be negative (here {})",
            cli.keep_last_snapshots
        );
    }
    let last = usize::try_from(cli.keep_last_snapshots).unwrap_or(0);
    calendar(&cli.calendar, max_age_secs, last)
}

/// The `--keep-*` rules and `--utc`, over a max age and a count kept by `-g` and `-d` (or
/// `--vault-max-age` and `--vault-keep`).
fn calendar(cli: &cli::Calendar, max_age_secs: Option<i64>, last: usize) -> Result<Rule> {
    let mut counts = [0usize; 5];
    for (slot, (flag, value)) in counts.iter_mut().zip(keep_flags(cli)) {
        if let Some(v) = value {
            *slot = v
                .trim()
                .parse()
                .ok()
                .filter(|n| *n <= MAX_KEEP)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{flag} takes a whole number of periods, 0 to {MAX_KEEP} (here {v:?})"
                    )
                })?;
        }
    }
    let [hourly, daily, weekly, monthly, yearly] = counts;
    let keep = Keep {
        last,
        hourly,
        daily,
        weekly,
        monthly,
        yearly,
    };
    if cli.utc && !keep.has_calendar() {
        bail!("--utc goes with --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly or --keep-yearly");
    }
    let keep_tags = cli
        .keep_tag
        .iter()
        .map(|t| crate::retention::hold::KeepTag::parse(t))
        .collect::<Result<Vec<_>>>()?;
    Ok(Rule {
        max_age_secs,
        keep,
        zone: if cli.utc { Zone::Utc } else { Zone::Local },
        keep_tags,
    })
}

/// Bounds of the numeric flags, so that no accepted value can overflow a deadline or a semaphore.
pub const MAX_TIMEOUT_SECS: u64 = 7 * 86_400;
pub const MAX_PARALLEL: usize = 256;
pub const MAX_ATTEMPTS: u32 = 100;
/// EC2's limits on tags: per resource, key length, value length (in characters).
pub const MAX_TAGS: usize = 50;
const MAX_TAG_KEY: usize = 128;
const MAX_TAG_VALUE: usize = 256;

/// `-g <int> <unit>` in seconds. Messages are the original's.
pub fn parse_max_age(value: &str, unit: &str) -> Result<i64> {
    let n: i64 = value
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("Max age value must be a whole number (here {value})"))?;
    if n == 0 {
        bail!("Max age value cannot be 0");
    }
    if n < 0 {
        bail!("Max age value cannot be negative (here {n})");
    }
    let unit_secs: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "M" => 30 * 86_400,
        // The original used 30*365 days here; a year is 365 days.
        "y" => 365 * 86_400,
        _ => {
            bail!("Can't find the correct value (here {unit}), please choose between s/m/h/d/w/M/y")
        }
    };
    n.checked_mul(unit_secs)
        .filter(|secs| *secs <= MAX_AGE_SECS)
        .with_context(|| format!("Max age {n} {unit} is too large: at most 1000 y"))
}

/// The longest age or duration a flag takes (`-g`, `--copy-max-age`, `--archive-after`, ...):
/// 1000 years, so that no date a rule derives from it leaves what a date holds.
const MAX_AGE_SECS: i64 = 1000 * 365 * 86_400;
/// The most periods a `--keep-*` rule keeps: 100,000 (273 years of days).
const MAX_KEEP: usize = 100_000;

/// A flag taking `<int> <unit>` (`-g`, `--copy-max-age`, `--check-max-age`) in seconds; `None`
/// when it is not given. `-g` keeps the original's messages and names itself after them; the new
/// flags name themselves first.
fn age_flag(values: &[String], flag: &str) -> Result<Option<i64>> {
    match values {
        [] => Ok(None),
        [v, u] => match parse_max_age(v, u) {
            Ok(secs) => Ok(Some(secs)),
            // The original's text first (a log watcher may look for it), then what was given.
            Err(e) if flag == "-g" => bail!("{e} (in -g {v} {u})"),
            Err(e) => bail!("{flag}: {e}"),
        },
        _ if values.len().is_multiple_of(2) => {
            bail!("{flag} is given more than once: give it once")
        }
        _ => bail!("{flag} takes two values: <int> <s/m/h/d/w/M/y>"),
    }
}

/// `-e KEY:VALUE`: split at the first colon, so values may hold colons. EC2's rules are checked
/// here, so that a bad tag is an error before any call instead of a refused snapshot every night.
pub fn parse_add_tag(arg: &str) -> Result<(String, String)> {
    let (k, v) = match arg.split_once(':') {
        Some((k, v)) if !k.is_empty() => (k, v),
        _ => bail!("Tag to add must be KEY:VALUE with a non-empty KEY (here {arg:?})"),
    };
    if k.chars().count() > MAX_TAG_KEY {
        bail!("Tag key of -e is longer than {MAX_TAG_KEY} characters (here {k:?})");
    }
    if v.chars().count() > MAX_TAG_VALUE {
        bail!("Tag value of -e is longer than {MAX_TAG_VALUE} characters (for key {k:?})");
    }
    // A key never holds a colon (the split is at the first one), so it cannot start with the
    // reserved `aws:`: `-e aws:x` is key `aws`, which EC2 accepts.
    Ok((k.to_string(), v.to_string()))
}

/// Every `-e` tag, checked one by one and together: at most 50 distinct keys (EC2's limit).
fn add_tags(args: &[String]) -> Result<Vec<(String, String)>> {
    let tags = args
        .iter()
        .map(|t| parse_add_tag(t))
        .collect::<Result<Vec<_>>>()?;
    let keys: std::collections::BTreeSet<&str> = tags.iter().map(|(k, _)| k.as_str()).collect();
    if keys.len() > MAX_TAGS {
        bail!(
            "-e gives {} tag keys: a snapshot can carry at most {MAX_TAGS}",
            keys.len()
        );
    }
    Ok(tags)
}

/// Pairs from a flag taking two values per occurrence (`-t`, `--snap-filter`); a pattern that
/// cannot be used is an error naming the flag.
fn pairs(values: &[String], flag: &str) -> Result<Vec<TagPattern>> {
    values
        .chunks(2)
        .map(|c| match c {
            [key, value] => TagPattern::new(key, value).map_err(|e| anyhow::anyhow!("{flag}: {e}")),
            _ => bail!("{flag} takes two values: NAME VALUE"),
        })
        .collect()
}

fn selection(cli: &cli::Common) -> Result<Selection> {
    if cli.instance.is_empty() && cli.tags.is_empty() {
        bail!("Please set at least instance ID (-i) or tag with value (-t)");
    }
    if cli.instance.iter().any(|i| i == "all") {
        return Ok(Selection::All);
    }
    if let Some(bad) = cli.instance.iter().find(|i| i.trim().is_empty()) {
        bail!("Instance ID cannot be empty (here {bad:?})");
    }
    Ok(Selection::Some {
        ids: cli.instance.clone(),
        tags: pairs(&cli.tags, "-t")?,
    })
}

impl Config {
    /// What a command that takes none of a run's snapshot flags works with: its selection (none
    /// for a restore of named snapshots), limit, snapshot filter, mode, connection and accounts.
    fn base(args: &impl cli::Shared, selected: Option<Selection>, mode: Mode) -> Result<Config> {
        let (common, filter) = (args.common(), args.filter());
        let (conn, accounts) = (args.connection(), args.accounts());
        let limit = limit(common.limit)?;
        let max_attempts = max_attempts(conn)?;
        let selection = match selected {
            Some(s) => s,
            None => selection(common)?,
        };
        let fleet = fleet::fleet(conn, accounts, args.sharding())?;
        let (credentials, mut region) = credentials::resolve(conn)?;
        // One target: the command itself works there (its role, the file's one region).
        let mut role = None;
        if let (true, [only]) = (fleet.is_single(), fleet.accounts.as_slice()) {
            role = only.role.clone();
            if let Some([own]) = only.regions.as_deref() {
                region = Some(own.clone());
            }
        }
        Ok(Config {
            mode,
            selection,
            add_tags: Vec::new(),
            limit,
            snapshot: None,
            timeout: Duration::from_secs(600),
            no_root_device: false,
            retention: Rule::default(),
            snap_filter: pairs(&filter.snap_filter, "--snap-filter")?,
            ignore_in_use: false,
            aws: AwsSettings {
                credentials,
                region,
                endpoint_url: endpoint_flag(conn.endpoint_url.as_deref())?,
                max_attempts,
                role,
            },
            fleet,
            in_fleet: false,
            hooks: None,
            lock: None,
            no_delete: false,
            parallel: 1,
            stop_tag: true,
            grouping: Grouping::Volumes,
            copy: None,
            check_max_age: None,
            drill_max_age: None,
            restore: None,
            check_timeout: Duration::from_secs(30),
            prune_orphans_after: None,
            archive_after: None,
            wait: None,
            vault: None,
            vault_prune: None,
            vault_reader: None,
            hold: None,
            check_topics: false,
        })
    }

    /// A backup run: every group of flags.
    pub fn run(a: &cli::RunArgs) -> Result<Config> {
        let retention = retention(&a.rules)?;
        limit(a.common.limit)?;
        let add_tags = add_tags(&a.shape.add_tags)?;
        let m = &a.making;
        if !(1..=MAX_PARALLEL).contains(&m.parallel) {
            bail!(
                "--parallel must be from 1 to {MAX_PARALLEL} (here {})",
                m.parallel
            );
        }
        max_attempts(&a.connection)?;
        if m.timeout > MAX_TIMEOUT_SECS {
            bail!(
                "-m/--timeout must be at most {MAX_TIMEOUT_SECS} seconds, 7 days (here {})",
                m.timeout
            );
        }
        selection(&a.common)?;
        let copy = copy_policy(&a.copy_rules, Some((&a.copy_making, &a.locks)), &retention)?;
        if a.freshness.check_timeout.is_some() {
            bail!("--check-timeout goes with --check-max-age or --drill-max-age");
        }
        for (flag, path) in [
            ("--report", &a.monitoring.report),
            ("--metrics-file", &a.monitoring.metrics_file),
        ] {
            if let Some(p) = path
                .as_deref()
                .filter(|p| p.as_os_str() != "-" || flag != "--report")
            {
                crate::output::report::check_output_path(p)
                    .map_err(|e| anyhow::anyhow!("{flag} {}: {e}", p.display()))?;
            }
        }
        let hooks = hooks(&a.hooks, &a.shape)?;
        let lock = lock_policy(
            &a.locks,
            [a.copy_making.copy_lock, a.vault.vault_lock],
            &retention,
        )?;
        let session = a.accounts.role_session_name.as_deref().unwrap_or("ec2snap");
        let vault = vault::policy(&a.vault, &retention, session, |mode, rule| {
            lock_mode(&a.locks, mode, rule, "--vault-lock")
        })?;
        let archive_after = archive_after(&a.locks, &retention)?;
        let mut cfg = Config::base(a, None, mode(&a.mode))?;
        // One target: a copy to its own region is a usage error. In a fleet, a target in a
        // --copy-to region copies to the others (run::run says so).
        if let (Some(policy), Some(region), true) = (&copy, &cfg.aws.region, cfg.fleet.is_single())
        {
            policy.check_source_region(region)?;
        }
        cfg.shape(&a.shape, add_tags);
        cfg.timeout = Duration::from_secs(m.timeout);
        cfg.retention = retention;
        cfg.ignore_in_use = a.deleting.ignore_in_use_snapshot;
        cfg.hooks = hooks;
        cfg.lock = lock;
        cfg.no_delete = a.deleting.no_delete;
        cfg.parallel = m.parallel;
        cfg.stop_tag = !m.no_stop_tag;
        cfg.copy = copy;
        cfg.prune_orphans_after =
            age_flag(&a.deleting.prune_orphans_after, "--prune-orphans-after")?;
        cfg.archive_after = archive_after;
        cfg.wait = wait_policy(m)?;
        cfg.vault = vault;
        Ok(cfg)
    }

    /// `-e`, `-H`, `-n`, `-o`, `--consistent`: what the run makes.
    fn shape(&mut self, shape: &cli::Shape, add_tags: Vec<(String, String)>) {
        self.add_tags = add_tags;
        self.snapshot = match (shape.no_snap, shape.cold_snap) {
            (true, _) => None,
            (false, true) => Some(SnapshotKind::Cold),
            (false, false) => Some(SnapshotKind::Hot),
        };
        self.no_root_device = shape.no_root_device;
        self.grouping = if shape.consistent {
            Grouping::Sets
        } else {
            Grouping::Volumes
        };
    }

    /// `ec2snap list`: what the run of the same flags would make and keep.
    pub fn list(a: &cli::ListArgs) -> Result<Config> {
        let retention = retention(&a.rules)?;
        let add_tags = add_tags(&a.shape.add_tags)?;
        let copy = copy_policy(&a.copy_rules, None, &retention)?;
        let stale = age_flag(&a.stale_after, "--stale-after")?;
        let mode = Mode::DryRun {
            check_permissions: false,
        };
        let mut cfg = Config::base(a, None, mode)?;
        cfg.shape(&a.shape, add_tags);
        cfg.retention = retention;
        cfg.copy = copy;
        cfg.check_max_age = stale;
        cfg.vault_reader = vault::list_vault(a)?;
        Ok(cfg)
    }

    /// `ec2snap restore`.
    pub fn restore(a: &cli::RestoreArgs) -> Result<Config> {
        let options = restore::restore(a)?;
        // Named snapshots or a set: no instance to select.
        let selected = match &options.source {
            restore::Source::Snapshots(_) | restore::Source::Set(_) => Some(Selection::Some {
                ids: Vec::new(),
                tags: Vec::new(),
            }),
            restore::Source::Instances { .. } => None,
        };
        Config::one_target(Config::base(a, selected, mode(&a.mode))?, options)
    }

    /// `ec2snap drill`.
    pub fn drill(a: &cli::DrillArgs) -> Result<Config> {
        let options = restore::drill(a)?;
        Config::one_target(Config::base(a, None, mode(&a.mode))?, options)
    }

    /// `ec2snap hold`: in one account and region.
    pub fn hold(a: &cli::HoldArgs) -> Result<Config> {
        let options = hold::hold(a)?;
        Config::holding(
            Config::base(a, Self::hold_selection(&options), mode(&a.mode))?,
            options,
        )
    }

    /// `ec2snap release`.
    pub fn release(a: &cli::ReleaseArgs) -> Result<Config> {
        let options = hold::release(a)?;
        Config::holding(
            Config::base(a, Self::hold_selection(&options), mode(&a.mode))?,
            options,
        )
    }

    /// Named snapshots or sets without -i/-t: no instance to select.
    fn hold_selection(options: &hold::HoldOptions) -> Option<Selection> {
        (!options.by_instance).then(|| Selection::Some {
            ids: Vec::new(),
            tags: Vec::new(),
        })
    }

    fn holding(mut cfg: Config, options: hold::HoldOptions) -> Result<Config> {
        if !cfg.fleet.is_single() {
            bail!("hold and release work in one account and one region: give at most one --assume-role (or --accounts entry) and one -r");
        }
        cfg.hold = Some(options);
        Ok(cfg)
    }

    /// `--notify` and `--sns-topic` checked: a wrong one stops the job before anything is sent.
    pub fn notifying(mut self, n: &cli::Notify) -> Result<Config> {
        let targets = crate::notify::Targets::parse(n)?;
        self.check_topics = self.mode.checks_permissions() && !targets.topics.is_empty();
        Ok(self)
    }

    /// `ec2snap vault-prune`: in the account of its own credentials (the vault's), over the vault
    /// copies.
    pub fn vault_prune(a: &cli::VaultPruneArgs) -> Result<Config> {
        let options = vault::prune(a)?;
        let shared = cli::CheckArgs {
            common: cli::Common {
                instance: vec!["all".into()],
                limit: -1,
                ..cli::Common::default()
            },
            connection: a.connection.clone(),
            accounts: a.accounts.clone(),
            ..cli::CheckArgs::default()
        };
        let mut cfg = Config::base(&shared, None, mode(&a.mode))?;
        if !cfg.fleet.is_single() {
            bail!("vault-prune works in one account and one region: the vault's");
        }
        cfg.vault_prune = Some(options);
        Ok(cfg)
    }

    /// A restore or a drill works in one account and one region.
    fn one_target(mut cfg: Config, options: restore::RestoreOptions) -> Result<Config> {
        if !cfg.fleet.is_single() {
            bail!("restore and drill work in one account and one region: give at most one --assume-role (or --accounts entry) and one -r");
        }
        cfg.restore = Some(options);
        Ok(cfg)
    }

    /// `ec2snap check`.
    pub fn check(a: &cli::CheckArgs) -> Result<Config> {
        let (backups, drills, timeout) = freshness(&a.freshness)?;
        let mode = Mode::DryRun {
            check_permissions: false,
        };
        let mut cfg = Config::base(a, None, mode)?;
        cfg.no_root_device = a.no_root_device;
        cfg.vault_reader = vault::check_vault(a, backups.is_some())?;
        cfg.check_max_age = backups;
        cfg.drill_max_age = drills;
        cfg.check_timeout = timeout;
        Ok(cfg)
    }

    /// `--check-max-age`/`--drill-max-age` without a subcommand, as before `ec2snap check`:
    /// `refused` are the flags given that `check` does not take (a check changes nothing).
    pub fn check_without_subcommand(a: &cli::RunArgs, refused: &[String]) -> Result<Config> {
        let (backups, _, _) = freshness(&a.freshness)?;
        if !refused.is_empty() {
            let what = if backups.is_some() {
                "--check-max-age is a read-only check"
            } else {
                "--drill-max-age is a read-only check"
            };
            bail!("{what}: it cannot go with {}", refused.join(", "));
        }
        Config::check(&cli::CheckArgs {
            common: a.common.clone(),
            filter: a.filter.clone(),
            no_root_device: a.shape.no_root_device,
            freshness: a.freshness.clone(),
            connection: a.connection.clone(),
            accounts: a.accounts.clone(),
            sharding: a.sharding.clone(),
            metrics_job: a.monitoring.metrics_job.clone(),
            notify: a.monitoring.notify.clone(),
            ..cli::CheckArgs::default()
        })
    }
}

/// `-u`, else a dry run that checks permissions unless `--no-permission-check`.
fn mode(m: &cli::ModeArgs) -> Mode {
    if m.run {
        Mode::Real
    } else {
        Mode::DryRun {
            check_permissions: !m.no_permission_check,
        }
    }
}

/// `-l`: -1 is no limit.
fn limit(n: i64) -> Result<Option<usize>> {
    match n {
        -1 => Ok(None),
        n if n < -1 => bail!("Limit must be -1 (no limit) or a positive number (here {n})"),
        n => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
    }
}

/// `--max-attempts`, 8 when not given.
fn max_attempts(conn: &cli::Connection) -> Result<u32> {
    let n = conn.max_attempts.unwrap_or(8);
    if !(1..=MAX_ATTEMPTS).contains(&n) {
        bail!("--max-attempts must be from 1 to {MAX_ATTEMPTS} (here {n})");
    }
    Ok(n)
}

impl Config {
    /// This configuration for one target of a fleet: its region, and its account's role.
    pub fn for_target(&self, account: &fleet::Account, region: &str) -> Config {
        let mut cfg = self.clone();
        cfg.aws.region = Some(region.to_string());
        cfg.aws.role = account.role.clone();
        cfg.in_fleet = true;
        cfg.fleet = fleet::Fleet {
            accounts: vec![fleet::Account {
                regions: None,
                ..account.clone()
            }],
            regions: fleet::Regions::Default,
            parallel_targets: 1,
            org: None,
            shard: None,
        };
        cfg
    }
}

/// `--endpoint-url`: empty means unset (as in the AWS SDKs); else an http(s) URL.
fn endpoint_flag(url: Option<&str>) -> Result<Option<String>> {
    match url.map(str::trim) {
        None | Some("") => Ok(None),
        Some(u) if crate::aws::settings::is_http_url(u) => Ok(Some(u.to_string())),
        Some(u) => bail!("--endpoint-url {u:?}: give an http(s) URL such as http://localhost:4566"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::settings::Credentials;

    pub(crate) fn cli(args: &[&str]) -> Cli {
        let mut v = vec!["ec2snap"];
        v.extend_from_slice(args);
        // An empty credentials file of our own (written once), so the tests never read the
        // developer's file.
        static FILE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let path = FILE.get_or_init(|| {
            let file =
                std::env::temp_dir().join(format!("ec2snap-test-cred-{}", std::process::id()));
            std::fs::write(&file, "[default]\n").expect("temp credentials file");
            file.to_string_lossy().into_owned()
        });
        v.extend_from_slice(&["-c", path]);
        crate::cli::parse_from(v).expect("parses")
    }

    /// The configuration of a command line (`args` after the program's name, as given).
    pub(crate) fn config_of(cli: Cli) -> Result<Config> {
        match Command::from_cli(cli) {
            Command::Run(j)
            | Command::Restore(j)
            | Command::Drill(j)
            | Command::Check(j)
            | Command::VaultPrune(j)
            | Command::Hold(j)
            | Command::Release(j) => j.config,
            Command::List(j) => j.config.map(|l| l.config),
            Command::Generate(_) | Command::Version | Command::Merge(_) | Command::ReportHelp => {
                panic!("no configuration")
            }
        }
    }

    /// The configuration of `args`, with an empty credentials file of the tests' own.
    pub(crate) fn config(args: &[&str]) -> Result<Config> {
        config_of(cli(args))
    }

    #[test]
    fn max_age_units() {
        let cases: &[(&str, &str, Result<i64, &str>)] = &[
            ("1", "s", Ok(1)),
            ("10", "m", Ok(600)),
            ("2", "h", Ok(7200)),
            ("5", "d", Ok(432_000)),
            ("3", "w", Ok(1_814_400)),
            ("1", "M", Ok(2_592_000)),
            ("1", "y", Ok(31_536_000)),
            ("0", "d", Err("Max age value cannot be 0")),
            ("-3", "d", Err("Max age value cannot be negative (here -3)")),
            (
                "abc",
                "d",
                Err("Max age value must be a whole number (here abc)"),
            ),
            (
                "5",
                "x",
                Err("Can't find the correct value (here x), please choose between s/m/h/d/w/M/y"),
            ),
            (
                "5",
                "D",
                Err("Can't find the correct value (here D), please choose between s/m/h/d/w/M/y"),
            ),
        ];
        for (v, u, want) in cases {
            let got = parse_max_age(v, u).map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(String::from), "-g {v} {u}");
        }
    }

    #[test]
    fn add_tag_rules() {
        assert_eq!(
            parse_add_tag("type:backup").unwrap(),
            ("type".into(), "backup".into())
        );
        assert_eq!(
            parse_add_tag("url:http://x").unwrap(),
            ("url".into(), "http://x".into())
        );
        assert_eq!(
            parse_add_tag("empty:").unwrap(),
            ("empty".into(), "".into())
        );
        assert!(parse_add_tag("novalue").is_err());
        assert!(parse_add_tag(":v").is_err());
        let key128 = "k".repeat(128);
        assert!(parse_add_tag(&format!("{key128}:v")).is_ok());
        let err = parse_add_tag(&format!("{key128}k:v")).unwrap_err();
        assert!(err.to_string().contains("longer than 128"), "{err}");
        assert!(parse_add_tag(&format!("k:{}", "é".repeat(256))).is_ok());
        let err = parse_add_tag(&format!("k:{}", "v".repeat(257))).unwrap_err();
        assert!(err.to_string().contains("longer than 256"), "{err}");
        let fifty: Vec<String> = (0..50).map(|i| format!("k{i}:v")).collect();
        assert_eq!(add_tags(&fifty).unwrap().len(), 50);
        let mut more = fifty.clone();
        more.push("k0:again".into());
        assert!(add_tags(&more).is_ok(), "the same key twice is one tag");
        more.push("k50:v".into());
        let err = add_tags(&more).unwrap_err();
        assert!(err.to_string().contains("51 tag keys"), "{err}");
    }

    #[test]
    fn validation_errors() {
        let cases: &[(&[&str], &str)] = &[
            (&["-g", "0", "d", "-i", "i-1"], "cannot be 0"),
            (&["-g", "1", "q", "-i", "i-1"], "choose between"),
            (&["-g", "x", "d", "-i", "i-1"], "whole number"),
            (&["-e", "novalue", "-i", "i-1"], "KEY:VALUE"),
            (
                &["--copy-to", "EU WEST", "-i", "i-1"],
                "--copy-to takes a region name",
            ),
            (&["--copy-keep", "2", "-i", "i-1"], "go with --copy-to"),
            (&["--wait-timeout", "9", "-i", "i-1"], "go with --wait"),
            (
                &["--wait", "--wait-timeout", "0", "-i", "i-1"],
                "--wait-timeout must be",
            ),
            (
                &["--wait", "--wait-interval", "99999", "-i", "i-1"],
                "--wait-interval must be",
            ),
            (
                &[
                    "--check-max-age",
                    "1",
                    "d",
                    "-u",
                    "-g",
                    "1",
                    "d",
                    "-i",
                    "i-1",
                ],
                "cannot go with -u, -g",
            ),
            (
                &["--check-max-age", "1", "x", "-i", "i-1"],
                "--check-max-age: Can't find",
            ),
            (
                &["--copy-to", "us-east-1", "--copy-keep", "-1", "-i", "i-1"],
                "--copy-keep cannot be negative",
            ),
            (
                &[
                    "--copy-to",
                    "us-east-1",
                    "--copy-max-age",
                    "0",
                    "d",
                    "-i",
                    "i-1",
                ],
                "--copy-max-age: Max age value cannot be 0",
            ),
            (&["-u"], "at least instance ID"),
            (
                &["--keep-daily", "-1", "-i", "i-1"],
                "--keep-daily takes a whole number of periods, 0 to 100000 (here \"-1\")",
            ),
            (&["--keep-weekly", "x", "-i", "i-1"], "--keep-weekly takes"),
            (
                &["--keep-monthly", "1.5", "-i", "i-1"],
                "--keep-monthly takes",
            ),
            (&["--keep-yearly", "", "-i", "i-1"], "--keep-yearly takes"),
            (
                &["--keep-hourly", "1e3", "-i", "i-1"],
                "--keep-hourly takes",
            ),
            (&["--utc", "-d", "3", "-i", "i-1"], "--utc goes with"),
            (
                &[
                    "--check-max-age",
                    "1",
                    "d",
                    "--keep-daily",
                    "7",
                    "-i",
                    "i-1",
                ],
                "cannot go with --keep-daily",
            ),
            (&["-d", "-2", "-i", "i-1"], "cannot be negative"),
            (&["-l", "-5", "-i", "i-1"], "Limit"),
            (&["-k", "AKIA", "-i", "i-1"], "without its secret"),
            (&["--parallel", "0", "-i", "i-1"], "--parallel"),
            (
                &["--parallel", "18446744073709551615", "-i", "i-1"],
                "--parallel must be from 1 to 256",
            ),
            (&["--parallel", "257", "-i", "i-1"], "--parallel"),
            (&["--max-attempts", "0", "-i", "i-1"], "--max-attempts"),
            (
                &["--max-attempts", "1000000000", "-i", "i-1"],
                "--max-attempts must be from 1 to 100",
            ),
            (
                &["-m", "9223372036854775807", "-i", "i-1"],
                "-m/--timeout must be at most 604800",
            ),
            (&["-m", "18446744073709551615", "-i", "i-1"], "-m/--timeout"),
        ];
        for (args, want) in cases {
            let err = config(args).unwrap_err().to_string();
            assert!(err.contains(want), "{args:?}: {err}");
        }
    }

    #[test]
    fn selection_and_defaults() {
        let c = config(&["-t", "Name", "front*", "-t", "env", "prod", "-i", "i-1"]).unwrap();
        assert!(c.mode.is_dry() && c.mode.checks_permissions());
        assert_eq!(
            c.selection,
            Selection::Some {
                ids: vec!["i-1".into()],
                tags: vec![
                    TagPattern::new("Name", "front*").unwrap(),
                    TagPattern::new("env", "prod").unwrap()
                ],
            }
        );
        assert_eq!(c.limit, None);
        assert_eq!(c.timeout, Duration::from_secs(600));
        assert_eq!(c.aws.credentials, Credentials::Chain { profile: None });
        let all = config(&["-i", "i-1", "-i", "all", "-u", "-l", "2"]).unwrap();
        assert_eq!(all.selection, Selection::All);
        assert_eq!(all.mode, Mode::Real);
        assert_eq!(all.limit, Some(2));
    }

    #[test]
    fn flags_win_over_nothing_and_secret_never_debug_printed() {
        let c = config(&[
            "-i",
            "i-1",
            "-k",
            "AKIAIOSFODNN7EXAMPLE",
            "-a",
            "SECRETVALUE",
            "-r",
            "eu-west-1",
        ])
        .unwrap();
        assert_eq!(c.aws.region.as_deref(), Some("eu-west-1"));
        let dbg = format!("{c:?}");
        assert!(
            dbg.contains("AKIA****MPLE")
                && !dbg.contains("IOSFODNN7")
                && !dbg.contains("SECRETVALUE"),
            "{dbg}"
        );
    }

    /// `-i i-1 -g 7 d` and `extra`.
    fn with_copy(extra: &[&str]) -> Config {
        let mut args = vec!["-i", "i-1", "-g", "7", "d"];
        args.extend_from_slice(extra);
        config(&args).unwrap()
    }

    #[test]
    fn copy_rules_default_to_the_source_rules() {
        let c = with_copy(&[
            "-d",
            "3",
            "--copy-to",
            "us-east-1",
            "--copy-to",
            "eu-central-1",
            "--copy-to",
            "us-east-1",
        ]);
        let copy = c.copy.unwrap();
        assert_eq!(copy.regions, ["eu-central-1", "us-east-1"]);
        assert_eq!(copy.rule, c.retention);
        let c = with_copy(&[
            "--copy-to",
            "us-east-1",
            "--copy-keep",
            "30",
            "--copy-max-age",
            "1",
            "y",
        ]);
        let rule = c.copy.unwrap().rule;
        assert_eq!(
            (rule.max_age_secs, rule.keep.last),
            (Some(365 * 86_400), 30)
        );
    }

    #[test]
    fn keep_rules_and_their_zone() {
        let c = with_copy(&[
            "-d",
            "2",
            "--keep-daily",
            "7",
            "--keep-weekly",
            " 4 ",
            "--keep-monthly",
            "12",
            "--keep-yearly",
            "0",
            "--utc",
            "--copy-to",
            "us-east-1",
            "--copy-keep",
            "1",
        ]);
        let want = Keep {
            last: 2,
            hourly: 0,
            daily: 7,
            weekly: 4,
            monthly: 12,
            yearly: 0,
        };
        assert_eq!(c.retention.keep, want);
        assert_eq!(c.retention.zone, Zone::Utc);
        assert_eq!(c.retention.max_age_secs, Some(7 * 86_400));
        // Copies follow the same calendar rules, with their own -d.
        let copy = c.copy.unwrap().rule;
        assert_eq!(copy.keep, Keep { last: 1, ..want });
        assert_eq!(copy.zone, Zone::Utc);
        let c = with_copy(&["--keep-hourly", "24"]);
        assert_eq!(
            (c.retention.keep.hourly, c.retention.zone),
            (24, Zone::Local)
        );
    }

    #[test]
    fn metrics_job_names_the_selection() {
        let job = |args: &[&str]| match Command::from_cli(cli(args)) {
            Command::Run(j) | Command::Restore(j) | Command::Drill(j) => j.outputs.job,
            _ => panic!("{args:?}"),
        };
        assert_eq!(job(&["-t", "Name", "front*"]), "Name=front*");
        assert_eq!(
            job(&["-i", "i-1", "-t", "Name", "a", "-t", "env", "prod"]),
            "i-1,Name=a,env=prod"
        );
        assert_eq!(job(&["-i", "all"]), "all");
        assert_eq!(job(&["-i", "all", "--metrics-job", "nightly"]), "nightly");
        assert_eq!(job(&["drill", "-t", "Name", "front*"]), "drill:Name=front*");
        assert_eq!(job(&["restore", "-i", "i-1"]), "restore:i-1");
    }

    #[test]
    fn e_takes_several_values_and_repeats() {
        let c = config(&["-i", "i-1", "-e", "a:1", "b:2", "-e", "c:3"]).unwrap();
        let keys: Vec<_> = c.add_tags.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
    }
}
