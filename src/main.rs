//! ec2snap: back up EC2 instances with EBS snapshots. Parses the command line, sets up the log,
//! validates the config, runs the pipeline and maps its result to the exit code.

mod cli;
mod config;
mod ec2;
mod log;
mod messages;
mod model;
mod plan;
mod retention;
mod run;
mod select;
mod shutdown;

use clap::{CommandFactory, Parser};
use std::process::ExitCode;

/// Exit codes: 0 all went well; 1 configuration or set-up error; 2 some snapshot, stop, start or
/// deletion failed; 128+N interrupted by signal N.
const EXIT_CONFIG: u8 = 1;
const EXIT_ERRORS: u8 = 2;

fn main() -> ExitCode {
    // Like the original: no argument at all prints the help and succeeds.
    if std::env::args_os().len() <= 1 {
        let _ = cli::Cli::command().print_help();
        return ExitCode::SUCCESS;
    }
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    if cli.version {
        println!("ec2snap v{} Licence MIT", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let level = config::parse_level(&cli.verbosity);
    if let Err(e) = log::init(
        level.unwrap_or(log::Level::Info),
        cli.file_output.as_deref(),
    ) {
        eprintln!("ec2snap: {e:#}");
        return ExitCode::from(EXIT_CONFIG);
    }
    if level.is_none() {
        tracing::warn!(
            "Option of log level {} incorrect, using INFO.",
            cli.verbosity.to_uppercase()
        );
    }
    let config = match config::Config::from_cli(&cli) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            critical!("Cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let result = runtime.block_on(async {
        // Before any AWS call, so a signal in a cold snapshot's stopped window is always caught.
        let shutdown = shutdown::Shutdown::listen()?;
        run::run(&config, shutdown).await
    });
    match result {
        Ok(outcome) => {
            if outcome.has_errors() {
                println!(
                    "{}",
                    messages::error_summary(outcome.snapshot_errors, outcome.deletion_errors)
                );
            }
            if let Some(sig) = outcome.interrupted {
                ExitCode::from(sig.exit_code())
            } else if outcome.has_errors() {
                ExitCode::from(EXIT_ERRORS)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            critical!("{e:#}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}
