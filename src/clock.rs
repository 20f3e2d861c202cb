//! The run's notion of now: the system clock; in debug builds (the test suite's binary), moved by
//! `EC2SNAP_CLOCK_OFFSET` seconds, so that tests can run "on" a fixed date together with the
//! emulator's clock. Release builds ignore the variable. And the run's id, made of its start.

use chrono::{DateTime, Utc};

pub fn now() -> DateTime<Utc> {
    Utc::now() + offset()
}

#[cfg(debug_assertions)]
fn offset() -> chrono::Duration {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let secs = *OFFSET.get_or_init(|| {
        std::env::var("EC2SNAP_CLOCK_OFFSET")
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|s| s.unsigned_abs() < 100 * 365 * 86_400)
            .unwrap_or(0)
    });
    chrono::Duration::seconds(secs)
}

#[cfg(not(debug_assertions))]
fn offset() -> chrono::Duration {
    chrono::Duration::zero()
}

/// This run's id: its start (UTC, to the second) and its pid, `20261207T195532Z-4242`: what names
/// the state of its freezes on an instance, so that no other run's thaw touches them.
pub fn run_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| format!("{}-{}", now().format("%Y%m%dT%H%M%SZ"), std::process::id()))
}
