//! The command line: without a subcommand, the original's backup run, flag for flag; `list`,
//! `restore`, `drill` and `check` each take only the argument groups (`args`) they use. Only the
//! log flags are global; the connection flags may also come before a subcommand.

pub mod args;

pub use args::*;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser};

/// The subcommands; without one, the command line is a backup run as the original's.
#[derive(clap::Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Sub {
    /// See every backup of the selected instances: per volume, its snapshots newest first, the
    /// copies, and with retention flags what a run would keep (and why) or delete; problems
    /// first (no backup, stale, incomplete sets, snapshots in error, orphans). Read-only
    List(ListArgs),
    /// Restore a backup as new volumes (or an AMI with --ami): the newest completed one of each
    /// selected instance (-i, -t; --at for an older one), or --snapshot/--set. Dry run without -u
    Restore(RestoreArgs),
    /// Prove that backups restore: each selected instance's newest completed backup as volumes,
    /// waited for, checked by --drill-check, then always deleted. Dry run without -u
    Drill(DrillArgs),
    /// Monitoring check, read-only: a completed snapshot younger than --check-max-age of every
    /// selected volume, a drill younger than --drill-max-age of every instance? Exit 0 OK, 2
    /// CRITICAL, 3 UNKNOWN
    Check(CheckArgs),
    /// The vault account's own retention, with its own credentials (never the production
    /// account's): delete the vault copies its rules no longer keep, never a locked one nor the
    /// newest completed copy of a volume. Dry run without -u
    VaultPrune(VaultPruneArgs),
    /// Put a legal hold (ec2snap:hold, with --reason) on snapshots: named ones, a --set, or the
    /// newest backup of each selected instance (-i, -t). Retention never deletes them, and they
    /// do not count among the N it keeps. Dry run without -u
    Hold(HoldArgs),
    /// End legal holds: on named snapshots, a --set, or every held backup of the selected
    /// instances. Dry run without -u
    Release(ReleaseArgs),
    /// Reports: `ec2snap report merge FILE...` makes one fleet report of the shards' reports
    Report(ReportArgs),
}

#[derive(Parser, Debug, Default)]
#[command(
    name = "ec2snap",
    about = "Simple EC2 Snapshot utility",
    disable_version_flag = true,
    disable_help_subcommand = true,
    after_help = "Dry run is the default: nothing is created, stopped or deleted without -u."
)]
pub struct Cli {
    /// None: a backup run, as the original's command line.
    #[command(subcommand)]
    pub command: Option<Sub>,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// Print a man page or a shell completion script on standard output, then exit
    #[arg(
        help_heading = "Output",
        long = "generate",
        value_name = "KIND",
        value_enum,
        exclusive = true
    )]
    pub generate: Option<Generate>,
    /// Print version number
    #[arg(help_heading = "Output", short = 'V', long = "version")]
    pub version: bool,
    /// Without a subcommand, with `--check-max-age` or `--drill-max-age`: the flags given that
    /// `ec2snap check` does not take (the check refuses them).
    #[arg(skip)]
    pub not_for_check: Vec<String>,
}

/// Parses `args` (the program's name first). A flag of the run given before a subcommand is a
/// usage error naming it: only the connection flags (and the global log flags) go there.
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut cmd = Cli::command();
    let matches = cmd.try_get_matches_from_mut(args)?;
    if let Some((name, _)) = matches.subcommand() {
        before_subcommand(&mut cmd, &matches, name)?;
    }
    let mut cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))?;
    if cli.command.is_none() && cli.run.freshness.given() {
        cli.not_for_check = not_taken_by(&cmd, &matches, "check");
    }
    // The connection flags given before the subcommand are the subcommand's.
    let before = std::mem::take(&mut cli.run.connection);
    if let Some(sub) = cli.command.as_mut() {
        sub.connection_mut().merge(before).map_err(|flag| {
            cmd.error(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "{flag} is given before and after '{name}': give it once",
                    name = sub.name()
                ),
            )
        })?;
    } else {
        cli.run.connection = before;
    }
    Ok(cli)
}

/// The subcommand `args` name, as far as clap can tell from a command line it refused.
pub fn subcommand_of<I, T>(args: I) -> Option<String>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = Cli::command()
        .ignore_errors(true)
        .try_get_matches_from(args)
        .ok()?;
    matches.subcommand_name().map(String::from)
}

/// Whether a command line clap refused is the monitoring check's (`check`, or `--check-max-age`
/// / `--drill-max-age` without a subcommand): its usage errors are UNKNOWN, never CRITICAL.
pub fn is_check(args: &[std::ffi::OsString]) -> bool {
    match subcommand_of(args.iter().cloned()) {
        Some(name) => name == "check",
        None => args
            .iter()
            .skip(1)
            .any(|a| a == "check" || a == "--check-max-age" || a == "--drill-max-age"),
    }
}

/// The parent's flags given with subcommand `name`: only the connection's may be.
fn before_subcommand(
    cmd: &mut clap::Command,
    matches: &ArgMatches,
    name: &str,
) -> Result<(), clap::Error> {
    let connection: Vec<clap::Id> = Connection::augment_args(clap::Command::new("c"))
        .get_arguments()
        .map(|a| a.get_id().clone())
        .collect();
    let sub_takes: Vec<clap::Id> = cmd
        .find_subcommand(name)
        .map(|s| s.get_arguments().map(|a| a.get_id().clone()).collect())
        .unwrap_or_default();
    let mut refused = None;
    for arg in cmd.get_arguments() {
        let id = arg.get_id();
        if arg.is_global_set() || connection.contains(id) {
            continue;
        }
        if matches.value_source(id.as_str()) != Some(clap::parser::ValueSource::CommandLine) {
            continue;
        }
        let flag = match (arg.get_long(), arg.get_short()) {
            (Some(long), _) => format!("--{long}"),
            (None, Some(short)) => format!("-{short}"),
            (None, None) => id.to_string(),
        };
        let text = if sub_takes.contains(id) {
            format!("the argument '{flag}' goes after '{name}': ec2snap {name} {flag} ...")
        } else {
            format!("the argument '{flag}' cannot be used with '{name}'")
        };
        refused = Some(text);
        break;
    }
    match refused {
        Some(text) => Err(cmd.error(clap::error::ErrorKind::ArgumentConflict, text)),
        None => Ok(()),
    }
}

/// The flags of the parent given on the command line that subcommand `name` does not take, as
/// their short form when they have one.
fn not_taken_by(cmd: &clap::Command, matches: &ArgMatches, name: &str) -> Vec<String> {
    let takes: Vec<clap::Id> = cmd
        .find_subcommand(name)
        .map(|s| s.get_arguments().map(|a| a.get_id().clone()).collect())
        .unwrap_or_default();
    cmd.get_arguments()
        .filter(|a| !a.is_global_set() && !takes.contains(a.get_id()))
        .filter(|a| {
            matches.value_source(a.get_id().as_str())
                == Some(clap::parser::ValueSource::CommandLine)
        })
        .map(flag_name)
        .collect()
}

/// `-u`, or `--wait` for a flag with no short form.
fn flag_name(arg: &clap::Arg) -> String {
    match (arg.get_short(), arg.get_long()) {
        (Some(short), _) => format!("-{short}"),
        (None, Some(long)) => format!("--{long}"),
        (None, None) => arg.get_id().to_string(),
    }
}

impl Sub {
    pub fn name(&self) -> &'static str {
        match self {
            Sub::List(_) => "list",
            Sub::Restore(_) => "restore",
            Sub::Drill(_) => "drill",
            Sub::Check(_) => "check",
            Sub::VaultPrune(_) => "vault-prune",
            Sub::Hold(_) => "hold",
            Sub::Release(_) => "release",
            Sub::Report(_) => "report",
        }
    }

    fn connection_mut(&mut self) -> &mut Connection {
        match self {
            Sub::List(a) => &mut a.connection,
            Sub::Restore(a) => &mut a.connection,
            Sub::Drill(a) => &mut a.connection,
            Sub::Check(a) => &mut a.connection,
            Sub::VaultPrune(a) => &mut a.connection,
            Sub::Hold(a) => &mut a.connection,
            Sub::Release(a) => &mut a.connection,
            Sub::Report(a) => &mut a.connection,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, String> {
        parse_from(std::iter::once("ec2snap").chain(args.iter().copied()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn connection_flags_go_before_a_subcommand_and_nothing_else() {
        let cli = parse(&[
            "--endpoint-url",
            "http://x",
            "-r",
            "eu-west-1",
            "list",
            "-t",
            "Name",
            "w",
            "-r",
            "us-east-1",
        ])
        .unwrap();
        let Some(Sub::List(list)) = &cli.command else {
            panic!("{cli:?}")
        };
        assert_eq!(list.connection.endpoint_url.as_deref(), Some("http://x"));
        assert_eq!(list.connection.region, ["eu-west-1", "us-east-1"]);
        let e = parse(&["-u", "list", "-t", "Name", "w"]).unwrap_err();
        assert!(e.contains("'--dry_run' cannot be used with 'list'"), "{e}");
        let e = parse(&["-t", "Name", "w", "list"]).unwrap_err();
        assert!(e.contains("'--tags' goes after 'list'"), "{e}");
        let e = parse(&[
            "--endpoint-url",
            "http://x",
            "list",
            "--endpoint-url",
            "http://y",
            "-i",
            "all",
        ])
        .unwrap_err();
        assert!(e.contains("given before and after 'list'"), "{e}");
        // The log flags go anywhere.
        assert!(parse(&["-v", "DEBUG", "list", "-i", "all"]).is_ok());
        assert!(parse(&["list", "-i", "all", "-v", "DEBUG"]).is_ok());
    }

    #[test]
    fn each_command_refuses_the_flags_it_does_not_take() {
        for (args, flag) in [
            (&["list", "-i", "all", "-u"][..], "-u"),
            (&["list", "-i", "all", "--wait"], "--wait"),
            (&["list", "-i", "all", "--lock", "governance"], "--lock"),
            (&["list", "-i", "all", "--report", "r"], "--report"),
            (&["restore", "-i", "all", "-g", "1", "d"], "-g"),
            (
                &["drill", "-i", "all", "--copy-to", "eu-west-1"],
                "--copy-to",
            ),
            (&["check", "-i", "all", "-u"], "-u"),
        ] {
            let e = parse(args).unwrap_err();
            assert!(
                e.contains(&format!("unexpected argument '{flag}'")),
                "{args:?}: {e}"
            );
        }
    }
}
