//! ec2snap: back up EC2 instances with EBS snapshots. Parses the command line into one command
//! (`config::Command`), runs it (each command sets up its log and prints what it prints), prints
//! any error once and gives the exit code.

mod act;
mod aws;
mod cli;
mod clock;
mod cold;
mod config;
mod copies;
mod freshness;
mod hold;
mod hooks;
mod job;
mod list;
mod merge;
mod model;
mod notify;
mod output;
mod restore;
mod retention;
mod run;
mod select;
mod signals;
mod snapshot;
mod tags;
mod vault;

use crate::config::Command;
use crate::job::Kind;
use crate::output::exit::{Abort, ExitCode};
use crate::output::log::critical;
use crate::output::{generate, stdout};
use clap::CommandFactory;
use std::io::Write;

fn main() -> std::process::ExitCode {
    let code = match try_main() {
        Ok(code) => code,
        Err(failure) => {
            report_failure(&failure);
            failure.exit_code()
        }
    };
    std::process::ExitCode::from(code.code())
}

/// Everything but the printing of a failure; the exit code of a command that went to its end.
fn try_main() -> Result<ExitCode, Abort> {
    // Like the original: no argument at all prints the help and succeeds.
    if std::env::args_os().len() <= 1 {
        stdout::print(&cli::Cli::command().render_help().to_string())?;
        return Ok(ExitCode::Success);
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match cli::parse_from(args.iter().cloned()) {
        Ok(cli) => cli,
        // A monitoring plugin's bad command line is UNKNOWN (3), never CRITICAL (2).
        Err(e) if e.use_stderr() && cli::is_check(&args) => {
            let _ = e.print();
            let first = e.to_string().lines().next().unwrap_or_default().to_string();
            stdout::print(&format!("{}\n", freshness::unknown(&first)))?;
            return Ok(freshness::Status::Unknown.exit_code());
        }
        Err(e) => return Err(Abort::Usage(e)),
    };
    match Command::from_cli(cli) {
        Command::Generate(kind) => {
            stdout::print(&generate::render(kind).map_err(Abort::Setup)?)?;
            Ok(ExitCode::Success)
        }
        Command::Version => {
            stdout::print(&format!(
                "ec2snap v{} Licence MIT\n",
                env!("CARGO_PKG_VERSION")
            ))?;
            Ok(ExitCode::Success)
        }
        Command::Run(job) => job::recorded(*job, Kind::Run, |cfg, shutdown, record| async move {
            run::fleet::run(&cfg, shutdown, record).await
        }),
        Command::Restore(job) => {
            job::recorded(*job, Kind::Restore, |cfg, shutdown, record| async move {
                restore::restore(&cfg, shutdown, record).await
            })
        }
        Command::Drill(job) => {
            job::recorded(*job, Kind::Drill, |cfg, shutdown, record| async move {
                restore::drill::drill(&cfg, shutdown, record).await
            })
        }
        Command::VaultPrune(job) => {
            job::recorded(*job, Kind::Run, |cfg, shutdown, record| async move {
                vault::prune::prune(&cfg, shutdown, record).await
            })
        }
        Command::Hold(job) | Command::Release(job) => {
            job::recorded(*job, Kind::Hold, |cfg, shutdown, record| async move {
                hold::hold(&cfg, shutdown, record).await
            })
        }
        Command::List(job) => list::main(*job),
        Command::Merge(args) => merge::main(args),
        Command::ReportHelp => {
            let mut cmd = cli::Cli::command();
            let help = cmd
                .find_subcommand_mut("report")
                .map(|c| c.render_help().to_string())
                .unwrap_or_default();
            stdout::print(&help)?;
            Ok(ExitCode::Success)
        }
        Command::Check(job) => freshness::main(*job),
    }
}

/// Prints a failure once, where its reader looks for it.
fn report_failure(failure: &Abort) {
    match failure {
        Abort::Usage(e) => {
            let _ = e.print();
        }
        // Said where it happened.
        Abort::Output => {}
        Abort::Log(e) => {
            let _ = writeln!(std::io::stderr(), "ec2snap: {e:#}");
        }
        // The original's config errors are ERROR lines of the log.
        Abort::Config(e) => tracing::error!("{e:#}"),
        Abort::Setup(e) => critical!("{e:#}"),
    }
}
