//! The original's log: `YYYY-mm-dd HH:MM:SS,mmm [LEVEL] message` in local time, on standard error
//! and appended to `-f FILE`, with Python's level names (CRITICAL included).

use chrono::{DateTime, Local};
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Events with this target are printed as CRITICAL (tracing has no such level).
pub const CRITICAL_TARGET: &str = "ec2snap::critical";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

/// Python's level names, any case (`WARN` too); an unknown name is an error (the caller warns and
/// uses INFO, like the original).
impl std::str::FromStr for Level {
    type Err = ();

    fn from_str(name: &str) -> Result<Level, ()> {
        match name.to_ascii_uppercase().as_str() {
            "DEBUG" => Ok(Level::Debug),
            "INFO" => Ok(Level::Info),
            "WARNING" | "WARN" => Ok(Level::Warning),
            "ERROR" => Ok(Level::Error),
            "CRITICAL" => Ok(Level::Critical),
            _ => Err(()),
        }
    }
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }
}

/// `critical!("...")`: an ERROR event that prints as CRITICAL.
macro_rules! critical {
    ($($arg:tt)+) => { tracing::error!(target: "ec2snap::critical", $($arg)+) };
}
pub(crate) use critical;

/// One log line, without its newline: one event is one line, whatever its text holds.
pub fn format_line(time: &DateTime<Local>, level: Level, message: &str) -> String {
    format!(
        "{} [{}] {}",
        time.format("%Y-%m-%d %H:%M:%S,%3f"),
        level.name(),
        crate::output::messages::one_line(message)
    )
}

fn level_of(event: &Event<'_>) -> Level {
    let meta = event.metadata();
    match *meta.level() {
        tracing::Level::ERROR if meta.target() == CRITICAL_TARGET => Level::Critical,
        tracing::Level::ERROR => Level::Error,
        tracing::Level::WARN => Level::Warning,
        tracing::Level::INFO => Level::Info,
        _ => Level::Debug,
    }
}

struct MessageVisitor(String);

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }
}

/// The prefix of a span's events: the `prefix` field of a target's span (`[prod/eu-west-1] `).
struct Prefix(String);

struct PrefixVisitor(Option<String>);

impl Visit for PrefixVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "prefix" {
            self.0 = Some(format!("{value:?}"));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "prefix" {
            self.0 = Some(value.to_string());
        }
    }
}

struct LineLayer {
    min: Level,
    file: Option<LogFile>,
}

struct LogFile {
    path: std::path::PathBuf,
    file: Mutex<File>,
}

/// `--wait`'s progress bar while it is drawn on a terminal: log lines are printed above it.
static BAR: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

/// Set by a run over many targets, whose bars would draw over each other.
static NO_BARS: AtomicBool = AtomicBool::new(false);

/// From now on, no progress bar: the log lines say the progress.
pub fn without_progress_bars() {
    NO_BARS.store(true, Ordering::Relaxed);
}

/// Whether a progress bar may be drawn: standard error is a terminal, and one target runs.
pub fn progress_bars_allowed() -> bool {
    use std::io::IsTerminal;
    !NO_BARS.load(Ordering::Relaxed) && std::io::stderr().is_terminal()
}

/// Shows `bar` (or, with `None`, stops showing one) under the log lines of standard error.
pub fn set_progress_bar(bar: Option<indicatif::ProgressBar>) {
    if let Ok(mut slot) = BAR.lock() {
        *slot = bar;
    }
}

/// One line to standard error, above the progress bar when there is one.
fn to_stderr(line: &str) {
    let bar = BAR.lock().ok().and_then(|b| b.clone());
    let write = || {
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    };
    match bar {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

/// Set when a line could not be written to `-f FILE`: the run then ends with exit code 1 at least,
/// so that a log lost to a full disk is never silent.
static FILE_FAILED: AtomicBool = AtomicBool::new(false);

/// True when some log line could not be written to `-f FILE`.
pub fn file_failed() -> bool {
    FILE_FAILED.load(Ordering::Relaxed)
}

impl LogFile {
    fn write(&self, line: &str) {
        let result = match self.file.lock() {
            Ok(mut f) => f.write_all(line.as_bytes()),
            Err(_) => return,
        };
        if let Err(e) = result {
            // Said once, on standard error: the file itself cannot take it.
            if !FILE_FAILED.swap(true, Ordering::Relaxed) {
                let warning = format_line(
                    &Local::now(),
                    Level::Warning,
                    &format!(
                        "Cannot write to log file {}: {e}; the log goes on on standard error only, and the run will exit with 1 at least",
                        self.path.display()
                    ),
                );
                let _ = writeln!(std::io::stderr().lock(), "{warning}");
            }
        }
    }
}

impl<S> Layer<S> for LineLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !attrs.metadata().target().starts_with("ec2snap") {
            return;
        }
        let mut visitor = PrefixVisitor(None);
        attrs.record(&mut visitor);
        if let (Some(prefix), Some(span)) = (visitor.0, ctx.span(id)) {
            span.extensions_mut().insert(Prefix(prefix));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // Only our own events: the SDK's internal tracing is neither in the original's format nor wanted.
        if !event.metadata().target().starts_with("ec2snap") {
            return;
        }
        let level = level_of(event);
        if level < self.min {
            return;
        }
        let mut visitor = MessageVisitor(String::new());
        event.record(&mut visitor);
        // A target of a run over many: `[account/region] ` before the message.
        let prefix = ctx.event_scope(event).and_then(|scope| {
            scope
                .from_root()
                .find_map(|span| span.extensions().get::<Prefix>().map(|p| p.0.clone()))
        });
        let message = match prefix {
            Some(p) => format!("[{p}] {}", visitor.0),
            None => visitor.0,
        };
        let mut line = format_line(&Local::now(), level, &message);
        line.push('\n');
        // One write per line so that lines from concurrent tasks never interleave.
        to_stderr(&line);
        if let Some(file) = &self.file {
            file.write(&line);
        }
    }
}

/// Opens `-f FILE` for appending, like Python's FileHandler. Non-blocking open, so that a FIFO
/// with no reader is an error at once instead of a hang; blocking again once open.
fn open_log_file(path: &std::path::Path) -> anyhow::Result<File> {
    use anyhow::Context as _;
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => anyhow::anyhow!("it is a FIFO that no process reads"),
            _ => anyhow::Error::new(e),
        })
        .with_context(|| format!("Cannot open log file {} (-f)", path.display()))?;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function owns, with flags it read from it.
    let cleared = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) == 0
    };
    if !cleared {
        anyhow::bail!(
            "Cannot open log file {} (-f): {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(file)
}

/// Installs the logger.
pub fn init(min: Level, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let file = match file {
        Some(p) => Some(LogFile {
            path: p.to_path_buf(),
            file: Mutex::new(open_log_file(p)?),
        }),
        None => None,
    };
    let subscriber = tracing_subscriber::registry().with(LineLayer { min, file });
    tracing::subscriber::set_global_default(subscriber).context("logger already installed")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn line_format_is_pythons() {
        let t = Local.with_ymd_and_hms(2015, 1, 26, 17, 5, 25).unwrap()
            + chrono::Duration::milliseconds(954);
        let cases = [
            (
                Level::Info,
                "Connecting to AWS",
                "2015-01-26 17:05:25,954 [INFO] Connecting to AWS",
            ),
            (Level::Critical, "x", "2015-01-26 17:05:25,954 [CRITICAL] x"),
            (Level::Warning, "w", "2015-01-26 17:05:25,954 [WARNING] w"),
            (Level::Debug, "d", "2015-01-26 17:05:25,954 [DEBUG] d"),
        ];
        for (level, msg, want) in cases {
            assert_eq!(format_line(&t, level, msg), want);
        }
    }

    #[test]
    fn level_names() {
        for (name, want) in [
            ("DEBUG", Ok(Level::Debug)),
            ("info", Ok(Level::Info)),
            ("WARNING", Ok(Level::Warning)),
            ("warn", Ok(Level::Warning)),
            ("Error", Ok(Level::Error)),
            ("CRITICAL", Ok(Level::Critical)),
            ("LOUD", Err(())),
            ("", Err(())),
        ] {
            assert_eq!(name.parse::<Level>(), want, "{name}");
        }
    }

    #[test]
    fn levels_order_like_python() {
        assert!(Level::Debug < Level::Info && Level::Info < Level::Warning);
        assert!(Level::Warning < Level::Error && Level::Error < Level::Critical);
    }
}
