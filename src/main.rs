//! ec2snap: back up EC2 instances with EBS snapshots. Parses the command line into one command
//! (`config::Command`), sets up the log, runs it (a run, `list`, `restore`, `drill`, the freshness check, `--generate`, `-V`),
//! writes the report and the metrics, prints any error once and gives the exit code.

mod aws;
mod cli;
mod clock;
mod cold;
mod config;
mod copies;
mod freshness;
mod hooks;
mod list;
mod model;
mod output;
mod restore;
mod retention;
mod run;
mod select;
mod signals;
mod snapshot;

use output::{generate, log, messages, report};

use crate::config::{Command, Outputs, Task};
use crate::output::exit::{Abort, ExitCode, Outcome};
use crate::output::log::critical;
use crate::output::record::Record;
use chrono::{DateTime, Utc};
use clap::{CommandFactory, Parser};
use std::io::Write;
use std::sync::Arc;

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

/// Everything but the printing of a failure; the exit code of a run that went to its end.
fn try_main() -> Result<ExitCode, Abort> {
    // Like the original: no argument at all prints the help and succeeds.
    if std::env::args_os().len() <= 1 {
        print_stdout(&cli::Cli::command().render_help().to_string())?;
        return Ok(ExitCode::Success);
    }
    let cli = cli::Cli::try_parse().map_err(Abort::Usage)?;
    match Command::from_cli(cli) {
        Command::Generate(kind) => {
            print_stdout(&generate::render(kind).map_err(Abort::Setup)?)?;
            Ok(ExitCode::Success)
        }
        Command::Version => {
            let version = format!("ec2snap v{} Licence MIT\n", env!("CARGO_PKG_VERSION"));
            print_stdout(&version)?;
            Ok(ExitCode::Success)
        }
        Command::Work(work) => {
            let level = work.log.level.unwrap_or(log::Level::Info);
            log::init(level, work.log.file.as_deref()).map_err(Abort::Log)?;
            if work.log.level.is_none() {
                tracing::warn!("{}", messages::bad_level(&work.log.verbosity));
            }
            match work.task {
                Task::Run | Task::Restore | Task::Drill => {
                    run(work.config, &work.outputs, work.task)
                }
                Task::Check => Ok(freshness_check(work.config)),
                Task::List { json } => list(work.config, json),
            }
        }
    }
}

/// A run, a restore or a drill: its exit code, from the record it left; its report and metrics
/// written at its end, also when it could not start.
fn run(
    config: anyhow::Result<config::Config>,
    outputs: &Outputs,
    task: Task,
) -> Result<ExitCode, Abort> {
    let started = crate::clock::now();
    let record = Arc::new(Record::default());
    // A run that could not start still leaves its report and metrics, then fails.
    let failed = |e: anyhow::Error, failure: fn(anyhow::Error) -> Abort| {
        write_outputs(outputs, started, ExitCode::Config, &record, Some(&e));
        failure(e)
    };
    let config = config.map_err(|e| failed(e, Abort::Config))?;
    // What a signal does, as the log says it when one comes.
    let after = match task {
        Task::Restore => signals::After::Restore,
        Task::Drill => signals::After::Drill,
        _ => signals::After::Run,
    };
    let result = with_runtime(after, |shutdown| {
        let (config, record) = (&config, Arc::clone(&record));
        async move {
            match task {
                Task::Restore => restore::restore(config, shutdown, record).await,
                Task::Drill => restore::drill::drill(config, shutdown, record).await,
                _ => run::fleet::run(config, shutdown, record).await,
            }
        }
    });
    let interrupted = result.map_err(|e| failed(e, Abort::Setup))?;
    // Everything the exit code, the summary, the report and the metrics say comes from the record.
    let outcome = Outcome {
        counts: record.counts(),
        interrupted,
    };
    // What a restore made (or would make), one line each, unless standard output is the report's.
    if task == Task::Restore && !outputs.report_to_stdout() {
        let _ = print_stdout(&report::restored_lines(&record.restored_so_far()));
    }
    // The original's summary is of snapshots: a restore's errors are in its log lines.
    if outcome.has_errors() && task == Task::Run {
        let counts = outcome.counts;
        let summary = messages::error_summary(counts.snapshot_errors, counts.deletion_errors);
        // With `--report -`, standard output is the report's: the summary goes to the log's side.
        if outputs.report_to_stdout() {
            let _ = writeln!(std::io::stderr(), "{summary}");
        } else {
            // The exit code says it already; a failed write changes nothing.
            let _ = print_stdout(&format!("{summary}\n"));
        }
    }
    let code = outcome.exit_code(log::file_failed());
    let written = write_outputs(outputs, started, code, &record, None);
    // The run may have changed things: a report or metrics file lost at the end (a full disk) is
    // a failure of the run (2), never "nothing was changed" (1).
    Ok(match code {
        ExitCode::Success | ExitCode::Config if !written => ExitCode::Errors,
        code => code,
    })
}

/// Runs `work` on a runtime with the signal handlers installed before any AWS call.
fn with_runtime<F, Fut, T>(after: signals::After, work: F) -> anyhow::Result<T>
where
    F: FnOnce(signals::Shutdown) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("Cannot start the async runtime: {e}"))?;
    let result = runtime.block_on(async {
        // Before any AWS call, so a signal in a cold snapshot's stopped window is always caught.
        let shutdown = signals::Shutdown::listen(after)?;
        work(shutdown).await
    });
    // Requests abandoned at a signal may still hold a blocking thread (a DNS lookup): do not wait.
    runtime.shutdown_background();
    result
}

/// `ec2snap list`: the table (or `--json`) on standard output; exit 2 when an `-i` id does not
/// exist or a target of many could not be read, 128+N on a signal.
fn list(config: anyhow::Result<config::Config>, json: bool) -> Result<ExitCode, Abort> {
    use std::io::IsTerminal;
    let config = config.map_err(Abort::Config)?;
    let record = Arc::new(Record::default());
    let single = config.fleet.is_single();
    let listed = with_runtime(signals::After::Read, |shutdown| {
        let (config, record) = (&config, &record);
        async move {
            Ok(shutdown
                .race(async move {
                    if single {
                        let one = list::list(config, record).await?;
                        Ok(vec![list::TargetListing {
                            id: output::record::TargetId {
                                account: String::new(),
                                region: String::new(),
                            },
                            listing: Ok(one),
                        }])
                    } else {
                        list::fleet(config, record).await
                    }
                })
                .await)
        }
    })
    .map_err(Abort::Setup)?;
    let listings = match listed {
        Ok(listings) => listings.map_err(Abort::Setup)?,
        Err(sig) => {
            tracing::error!("{}", messages::interrupted(sig.name()));
            return Ok(ExitCode::Signal(sig));
        }
    };
    let colour = if std::io::stdout().is_terminal()
        && colour_allowed(
            std::env::var_os("NO_COLOR").as_deref(),
            std::env::var_os("TERM").as_deref(),
        ) {
        list::show::Colour::On
    } else {
        list::show::Colour::Off
    };
    let failed = listings.iter().any(|t| t.listing.is_err());
    let text = match listings.as_slice() {
        [list::TargetListing {
            listing: Ok(one), ..
        }] if single => {
            if json {
                list::show::json(one)
            } else {
                list::show::table(one, colour)
            }
        }
        many => {
            fn shown(t: &list::TargetListing) -> Result<&list::view::Listing, String> {
                t.listing.as_ref().map_err(|e| format!("{e:#}"))
            }
            if json {
                let rows: Vec<_> = many
                    .iter()
                    .map(|t| (t.id.account.clone(), t.id.region.clone(), shown(t)))
                    .collect();
                list::show::fleet_json(&rows)
            } else {
                let rows: Vec<_> = many.iter().map(|t| (t.id.label(), shown(t))).collect();
                list::show::fleet_table(&rows, colour)
            }
        }
    };
    print_stdout(&text)?;
    Ok(if record.counts().snapshot_errors > 0 || failed {
        ExitCode::Errors
    } else {
        ExitCode::Success
    })
}

/// `--check-max-age`: one status line on standard output; every failure is UNKNOWN (exit 3).
fn freshness_check(config: anyhow::Result<config::Config>) -> ExitCode {
    let result = config.and_then(|cfg| {
        with_runtime(signals::After::Read, |shutdown| async move {
            freshness::check(&cfg, &shutdown).await
        })
    });
    let (status, line) = match result {
        Ok(found) => found,
        Err(e) => (
            freshness::Status::Unknown,
            freshness::unknown(&format!("{e:#}")),
        ),
    };
    let _ = print_stdout(&format!("{}\n", messages::one_line(&line)));
    status.exit_code()
}

/// Writes `--report` and `--metrics-file` when asked; false when one could not be written (said
/// in the log).
fn write_outputs(
    outputs: &Outputs,
    started: DateTime<Utc>,
    code: ExitCode,
    record: &Record,
    failure: Option<&anyhow::Error>,
) -> bool {
    if outputs.report.is_none() && outputs.metrics.is_none() {
        return true;
    }
    let finished = crate::clock::now();
    if let Some(e) = failure {
        // Printed once by `report_failure`; recorded here for the report.
        record.setup_failed(format!("{e:#}"));
    }
    let report = report::build(
        !outputs.real_run,
        started,
        finished,
        code.code(),
        record.take(),
    );
    let mut ok = true;
    if let Some(path) = &outputs.report {
        let text = match serde_json::to_string_pretty(&report) {
            Ok(t) => t + "\n",
            Err(e) => format!("{{\"error\": \"{e}\"}}\n"),
        };
        let written = if path.as_os_str() == "-" {
            print_stdout(&text).map_err(|_| std::io::Error::other("standard output"))
        } else {
            report::write_atomic(path, &text)
        };
        if let Err(e) = written {
            critical!("{}", messages::cannot_write("report", path, &e.to_string()));
            ok = false;
        }
    }
    if let Some(path) = &outputs.metrics {
        let job = &outputs.job;
        let now = finished.timestamp_millis() as f64 / 1000.0;
        let last_success = if code == ExitCode::Success && outputs.real_run {
            Some(now)
        } else {
            report::read_previous(path).and_then(|old| report::previous_success(&old, job))
        };
        let t = &report.totals;
        let sample = report::Sample {
            finished: now,
            last_success,
            duration: (finished - started).num_milliseconds() as f64 / 1000.0,
            exit_code: code.code(),
            totals: (
                t.snapshots_made,
                t.snapshot_errors,
                t.deleted,
                t.deletion_errors,
            ),
            copies: report::copies_by_region(&report, &outputs.copy_regions),
            drills: report::drills(&report),
            targets: report::target_totals(&report),
            storage: report::storage(&report),
        };
        if let Err(e) = report::write_atomic(path, &report::metrics(job, &sample)) {
            critical!(
                "{}",
                messages::cannot_write("metrics file", path, &e.to_string())
            );
            ok = false;
        }
    }
    ok
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

/// Writes to standard output. A closed pipe is not an error (the reader went away, as with
/// `| head`); any other failure (`>/dev/full`) is said on standard error. Never a panic: the exit
/// code of a cron job must not be lost to its output.
fn print_stdout(text: &str) -> Result<(), Abort> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "ec2snap: cannot write to standard output: {e}"
            );
            Err(Abort::Output)
        }
    }
}
/// Colour on a terminal unless `NO_COLOR` is set to something (no-color.org: set and empty keeps
/// colour) or `TERM=dumb`.
fn colour_allowed(no_color: Option<&std::ffi::OsStr>, term: Option<&std::ffi::OsStr>) -> bool {
    no_color.is_none_or(|v| v.is_empty()) && term.is_none_or(|t| t != "dumb")
}

#[cfg(test)]
mod tests {
    use super::colour_allowed;
    use std::ffi::OsStr;

    #[test]
    fn colour_follows_no_color_org_and_a_dumb_terminal() {
        let s = |v: &'static str| Some(OsStr::new(v));
        assert!(colour_allowed(None, s("xterm-256color")));
        // Set and empty keeps colour (no-color.org); any value turns it off.
        assert!(colour_allowed(s(""), s("xterm")));
        assert!(!colour_allowed(s("1"), s("xterm")));
        assert!(!colour_allowed(None, s("dumb")));
        assert!(colour_allowed(None, None));
    }
}
