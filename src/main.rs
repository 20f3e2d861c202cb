//! ec2snap: back up EC2 instances with EBS snapshots. Parses the command line, sets up the log,
//! validates the config, runs the pipeline, prints any error once and gives the exit code.

mod cli;
mod cold;
mod config;
mod copies;
mod credentials;
mod ctx;
mod ec2;
mod log;
mod messages;
mod model;
mod outcome;
mod plan;
mod prune;
mod recovery;
mod replicate;
mod retention;
mod run;
mod select;
mod shutdown;
mod snapshot;

use crate::log::critical;
use crate::outcome::Failure;
use clap::{CommandFactory, Parser};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let code = match try_main() {
        Ok(code) => code,
        Err(failure) => {
            report(&failure);
            failure.exit_code()
        }
    };
    ExitCode::from(code)
}

/// Everything but the printing of a failure; the exit code of a run that went to its end.
fn try_main() -> Result<u8, Failure> {
    // Like the original: no argument at all prints the help and succeeds.
    if std::env::args_os().len() <= 1 {
        print_stdout(&cli::Cli::command().render_help().to_string())?;
        return Ok(0);
    }
    let cli = cli::Cli::try_parse().map_err(Failure::Usage)?;
    if cli.version {
        print_stdout(&format!(
            "ec2snap v{} Licence MIT\n",
            env!("CARGO_PKG_VERSION")
        ))?;
        return Ok(0);
    }
    let level = cli.verbosity.parse::<log::Level>();
    log::init(
        level.unwrap_or(log::Level::Info),
        cli.file_output.as_deref(),
    )
    .map_err(Failure::Log)?;
    if level.is_err() {
        tracing::warn!(
            "Option of log level {} incorrect, using INFO.",
            cli.verbosity.to_uppercase()
        );
    }
    let config = config::Config::from_cli(&cli).map_err(Failure::Config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Setup(anyhow::anyhow!("Cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(async {
        // Before any AWS call, so a signal in a cold snapshot's stopped window is always caught.
        let shutdown = shutdown::Shutdown::listen()?;
        run::run(&config, shutdown).await
    });
    // Requests abandoned at a signal may still hold a blocking thread (a DNS lookup): do not wait.
    runtime.shutdown_background();
    let outcome = result.map_err(Failure::Setup)?;
    if outcome.has_errors() {
        let summary = messages::error_summary(outcome.snapshot_errors, outcome.deletion_errors);
        // The exit code says it already; a failed write changes nothing.
        let _ = print_stdout(&format!("{summary}\n"));
    }
    Ok(outcome.exit_code(log::file_failed()))
}

/// Prints a failure once, where its reader looks for it.
fn report(failure: &Failure) {
    match failure {
        Failure::Usage(e) => {
            let _ = e.print();
        }
        // Said where it happened.
        Failure::Output => {}
        Failure::Log(e) => {
            let _ = writeln!(std::io::stderr(), "ec2snap: {e:#}");
        }
        // The original's config errors are ERROR lines of the log.
        Failure::Config(e) => tracing::error!("{e:#}"),
        Failure::Setup(e) => critical!("{e:#}"),
    }
}

/// Writes to standard output. A closed pipe is not an error (the reader went away, as with
/// `| head`); any other failure (`>/dev/full`) is said on standard error. Never a panic: the exit
/// code of a cron job must not be lost to its output.
fn print_stdout(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "ec2snap: cannot write to standard output: {e}"
            );
            Err(Failure::Output)
        }
    }
}
