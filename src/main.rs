//! ec2snap: back up EC2 instances with EBS snapshots. Parses the command line, sets up the log,
//! validates the config, runs the pipeline and maps its result to the exit code.

mod cli;
mod config;
mod ec2;
mod log;
mod messages;
mod model;
mod plan;
mod recovery;
mod retention;
mod run;
mod select;
mod shutdown;

use clap::{CommandFactory, Parser};
use std::io::Write;
use std::process::ExitCode;

/// Exit codes: 0 all went well; 1 configuration or set-up error (or the log file could not be
/// written); 2 some snapshot, stop, start or deletion failed; 128+N interrupted by signal N.
const EXIT_CONFIG: u8 = 1;
const EXIT_ERRORS: u8 = 2;

/// Writes to standard output. A closed pipe is not an error (the reader went away, as with
/// `| head`); any other failure (`>/dev/full`) is said on standard error and gives exit code 1.
/// Never a panic: the exit code of a cron job must not be lost to its output.
fn print_stdout(text: &str) -> Result<(), ()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "ec2snap: cannot write to standard output: {e}"
            );
            Err(())
        }
    }
}

fn main() -> ExitCode {
    // Like the original: no argument at all prints the help and succeeds.
    if std::env::args_os().len() <= 1 {
        let help = cli::Cli::command().render_help().to_string();
        return match print_stdout(&help) {
            Ok(()) => ExitCode::SUCCESS,
            Err(()) => ExitCode::from(EXIT_CONFIG),
        };
    }
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    if cli.version {
        let line = format!("ec2snap v{} Licence MIT\n", env!("CARGO_PKG_VERSION"));
        return match print_stdout(&line) {
            Ok(()) => ExitCode::SUCCESS,
            Err(()) => ExitCode::from(EXIT_CONFIG),
        };
    }
    let level = config::parse_level(&cli.verbosity);
    if let Err(e) = log::init(
        level.unwrap_or(log::Level::Info),
        cli.file_output.as_deref(),
    ) {
        let _ = writeln!(std::io::stderr(), "ec2snap: {e:#}");
        return ExitCode::from(EXIT_CONFIG);
    }
    if level.is_none() {
        tracing::warn!(
            "Option of log level {} incorrect, using INFO.",
            cli.verbosity.to_uppercase()
        );
    }
    let code = match config::Config::from_cli(&cli) {
        Ok(config) => run(&config),
        Err(e) => {
            tracing::error!("{e:#}");
            EXIT_CONFIG
        }
    };
    // A log line lost to a full disk or a broken file must not look like a clean run.
    if code == 0 && log::file_failed() {
        return ExitCode::from(EXIT_CONFIG);
    }
    ExitCode::from(code)
}

/// Runs the pipeline; its exit code.
fn run(config: &config::Config) -> u8 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            critical!("Cannot start the async runtime: {e}");
            return EXIT_CONFIG;
        }
    };
    let result = runtime.block_on(async {
        // Before any AWS call, so a signal in a cold snapshot's stopped window is always caught.
        let shutdown = shutdown::Shutdown::listen()?;
        run::run(config, shutdown).await
    });
    // Requests abandoned at a signal may still hold a blocking thread (a DNS lookup): do not wait.
    runtime.shutdown_background();
    match result {
        Ok(outcome) => {
            let mut code = 0;
            if outcome.has_errors() {
                let summary =
                    messages::error_summary(outcome.snapshot_errors, outcome.deletion_errors);
                // The exit code says it already; a failed write changes nothing.
                let _ = print_stdout(&format!("{summary}\n"));
                code = EXIT_ERRORS;
            }
            match outcome.interrupted {
                Some(sig) => sig.exit_code(),
                None => code,
            }
        }
        Err(e) => {
            critical!("{e:#}");
            EXIT_CONFIG
        }
    }
}
