//! The original's log: `YYYY-mm-dd HH:MM:SS,mmm [LEVEL] message` in local time, on standard error
//! and appended to `-f FILE`, with Python's level names (CRITICAL included).

use chrono::{DateTime, Local};
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
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
#[macro_export]
macro_rules! critical {
    ($($arg:tt)+) => { tracing::error!(target: "ec2snap::critical", $($arg)+) };
}

/// One log line, without its newline.
pub fn format_line(time: &DateTime<Local>, level: Level, message: &str) -> String {
    format!(
        "{} [{}] {}",
        time.format("%Y-%m-%d %H:%M:%S,%3f"),
        level.name(),
        message
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

struct LineLayer {
    min: Level,
    file: Option<Mutex<File>>,
}

impl<S: Subscriber> Layer<S> for LineLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
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
        let mut line = format_line(&Local::now(), level, &visitor.0);
        line.push('\n');
        // One write per line so that lines from concurrent tasks never interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
        if let Some(file) = &self.file {
            if let Ok(mut f) = file.lock() {
                let _ = f.write_all(line.as_bytes());
            }
        }
    }
}

/// Installs the logger. The file is opened for appending, like Python's FileHandler.
pub fn init(min: Level, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let file = match file {
        Some(p) => Some(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("Cannot open log file {}", p.display()))?,
        )),
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
    fn levels_order_like_python() {
        assert!(Level::Debug < Level::Info && Level::Info < Level::Warning);
        assert!(Level::Warning < Level::Error && Level::Error < Level::Critical);
    }
}
