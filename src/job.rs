//! A command's life around its work: the runtime with the signal handlers installed before any
//! AWS call, the record, and, for a run, a restore and a drill, the summary, the report and the
//! metrics written at its end, also when it could not start.

use crate::config::{Config, Job, Outputs};
use crate::notify::send::Notifier;
use crate::notify::Ending;
use crate::output::exit::{Abort, ExitCode, Outcome};
use crate::output::log::{self, critical};
use crate::output::record::Record;
use crate::output::{messages, report, stdout};
use crate::signals;
use chrono::{DateTime, Utc};
use std::future::Future;
use std::io::Write;
use std::sync::Arc;

/// Which of the commands that leave a report a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Run,
    Restore,
    Drill,
    /// `hold`, `release`.
    Hold,
}

/// Sets up the log of `job` (`-v`, `-f`), then its configuration or the error that stops it.
pub fn start<C>(job: Job<C>) -> Result<(anyhow::Result<C>, Outputs), Abort> {
    let level = job.log.level.unwrap_or(log::Level::Info);
    log::init(level, job.log.file.as_deref()).map_err(Abort::Log)?;
    if job.log.level.is_none() {
        tracing::warn!("{}", messages::bad_level(&job.log.verbosity));
    }
    Ok((job.config, job.outputs))
}

/// A run, a restore or a drill: `work` on the runtime; its exit code, from the record it left;
/// its report and metrics written at its end, also when it could not start.
pub fn recorded<F, Fut>(job: Job<Config>, kind: Kind, work: F) -> Result<ExitCode, Abort>
where
    F: FnOnce(Config, signals::Shutdown, Arc<Record>) -> Fut,
    Fut: Future<Output = anyhow::Result<Option<signals::Signal>>>,
{
    let (config, outputs) = start(job)?;
    let started = crate::clock::now();
    let record = Arc::new(Record::default());
    let notifier = Notifier {
        targets: outputs.notify.clone(),
        aws: config.as_ref().ok().map(|c| c.aws.clone()),
        job: outputs.job.clone(),
        real: outputs.real_run,
    };
    let check_topics = config.as_ref().is_ok_and(|c| c.check_topics);
    // A run that could not start still leaves its report and metrics (and tells), then fails.
    let failed = |e: anyhow::Error, failure: fn(anyhow::Error) -> Abort| {
        let (_, report) = write_outputs(&outputs, started, ExitCode::Config, &record, Some(&e));
        tell(&notifier, report.as_ref(), ExitCode::Config);
        failure(e)
    };
    let config = config.map_err(|e| failed(e, Abort::Config))?;
    // What a signal does, as the log says it when one comes.
    let after = match kind {
        Kind::Restore => signals::After::Restore,
        Kind::Drill => signals::After::Drill,
        Kind::Run | Kind::Hold => signals::After::Run,
    };
    let result = with_runtime(after, |shutdown| {
        let record = Arc::clone(&record);
        let notifier = &notifier;
        async move {
            if check_topics {
                notifier.check(&record).await;
            }
            // The start ping, bounded; a signal meanwhile stops the job before its work.
            if let Err(sig) = shutdown.race(notifier.start()).await {
                return Ok(Some(sig));
            }
            work(config, shutdown, record).await
        }
    });
    let interrupted = result.map_err(|e| failed(e, Abort::Setup))?;
    // Everything the exit code, the summary, the report and the metrics say comes from the record.
    let outcome = Outcome {
        counts: record.counts(),
        interrupted,
    };
    // What a restore made (or would make), one line each, unless standard output is the report's.
    if kind == Kind::Restore && !outputs.report_to_stdout() {
        let _ = stdout::print(&report::restored_lines(&record.restored_so_far()));
    }
    // The original's summary is of snapshots: a restore's errors are in its log lines.
    if outcome.has_errors() && kind == Kind::Run {
        let counts = outcome.counts;
        let summary = messages::error_summary(counts.snapshot_errors, counts.deletion_errors);
        // With `--report -`, standard output is the report's: the summary goes to the log's side.
        if outputs.report_to_stdout() {
            let _ = writeln!(std::io::stderr(), "{summary}");
        } else {
            // The exit code says it already; a failed write changes nothing.
            let _ = stdout::print(&format!("{summary}\n"));
        }
    }
    let code = outcome.exit_code(log::file_failed());
    let (written, report) = write_outputs(&outputs, started, code, &record, None);
    // The run may have changed things: a report or metrics file lost at the end (a full disk) is
    // a failure of the run (2), never "nothing was changed" (1).
    let code = match code {
        ExitCode::Success | ExitCode::Config if !written => ExitCode::Errors,
        code => code,
    };
    tell(&notifier, report.as_ref(), code);
    Ok(code)
}

/// The end of a job, told to `--notify` and `--sns-topic` (a failure to tell is a WARNING).
fn tell(notifier: &Notifier, report: Option<&report::Report>, code: ExitCode) {
    if notifier.is_empty() {
        return;
    }
    let exit_code = code.code();
    let summary = match report {
        Some(r) => crate::notify::run_summary(r, &notifier.job),
        None => format!(
            "ec2snap {}: {}\nexit code {exit_code}\n",
            notifier.job,
            Ending::status_of_run(exit_code)
        ),
    };
    let ending = Ending {
        job: notifier.job.clone(),
        status: Ending::status_of_run(exit_code),
        exit_code,
        summary,
        report: report.and_then(|r| serde_json::to_string_pretty(r).ok()),
    };
    notifier.finish(&ending);
}

/// Runs `work` on a runtime with the signal handlers installed before any AWS call.
pub fn with_runtime<F, Fut, T>(after: signals::After, work: F) -> anyhow::Result<T>
where
    F: FnOnce(signals::Shutdown) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
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

/// Writes `--report` and `--metrics-file` when asked; false when one could not be written (said
/// in the log). The report, when one was asked for or a notification will carry it.
fn write_outputs(
    outputs: &Outputs,
    started: DateTime<Utc>,
    code: ExitCode,
    record: &Record,
    failure: Option<&anyhow::Error>,
) -> (bool, Option<report::Report>) {
    if outputs.report.is_none() && outputs.metrics.is_none() && outputs.notify.is_empty() {
        return (true, None);
    }
    let finished = crate::clock::now();
    if let Some(e) = failure {
        // Printed once by `main`; recorded here for the report.
        record.setup_failed(format!("{e:#}"));
    }
    let mut report = report::build(
        !outputs.real_run,
        started,
        finished,
        code.code(),
        record.take(),
    );
    report.shard = outputs.shard.clone();
    let mut ok = true;
    if let Some(path) = &outputs.report {
        let text = match serde_json::to_string_pretty(&report) {
            Ok(t) => t + "\n",
            Err(e) => format!("{{\"error\": \"{e}\"}}\n"),
        };
        let written = if path.as_os_str() == "-" {
            stdout::print(&text).map_err(|_| std::io::Error::other("standard output"))
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
        let duration = (finished - started).num_milliseconds() as f64 / 1000.0;
        let sample = report::Sample::of(
            &report,
            now,
            duration,
            code.code(),
            last_success,
            &outputs.copy_regions,
        );
        if let Err(e) = report::write_atomic(path, &report::metrics(job, &sample)) {
            critical!(
                "{}",
                messages::cannot_write("metrics file", path, &e.to_string())
            );
            ok = false;
        }
    }
    (ok, Some(report))
}
