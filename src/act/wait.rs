//! `--wait`: one poller for the whole run asks EC2 for every pending snapshot of every instance in
//! the same batched DescribeSnapshots calls, and tells each instance's task how its snapshots
//! ended (completed, error, still pending at the deadline). On a terminal it draws a progress
//! bar (completed / total and EC2's progress); elsewhere (cron, a pipe) it logs a line per
//! completed snapshot and a summary a minute. The bar never reaches `-f FILE`.

use crate::aws::Ec2;
use crate::model::SnapshotState;
use crate::output::messages as msg;
use crate::signals::Shutdown;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tracing::{info, warn};

/// How a waited-for snapshot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Completed,
    Error,
    TimedOut,
    Interrupted,
}

struct Pending {
    /// `vol-..|/dev/..`, for the log.
    label: String,
    deadline: Instant,
    tell: mpsc::UnboundedSender<(String, Ended)>,
}

/// How the snapshots of one bar ended, for its last frame and the line it leaves.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    completed: usize,
    error: usize,
    timed_out: usize,
    interrupted: usize,
}

impl Tally {
    fn add(&mut self, ended: Ended) {
        match ended {
            Ended::Completed => self.completed += 1,
            Ended::Error => self.error += 1,
            Ended::TimedOut => self.timed_out += 1,
            Ended::Interrupted => self.interrupted += 1,
        }
    }
}

#[derive(Default)]
pub struct Waiter {
    pending: Mutex<HashMap<String, Pending>>,
    added: Notify,
    /// The bar, when standard error is a terminal, with when it started and how its snapshots
    /// ended so far.
    bar: Mutex<Option<ProgressBar>>,
    tally: Mutex<(Option<std::time::Instant>, Tally)>,
}

impl Waiter {
    /// Waits for these snapshots (`(id, label)`) until `timeout`: how each ended, as each ends.
    /// The stream closes once every one of them has ended.
    pub fn watch(
        &self,
        snapshots: Vec<(String, String)>,
        timeout: Duration,
    ) -> mpsc::UnboundedReceiver<(String, Ended)> {
        let deadline = Instant::now() + timeout;
        let (tell, answers) = mpsc::unbounded_channel();
        self.grow_bar(snapshots.len() as u64);
        if let Ok(mut pending) = self.pending.lock() {
            for (id, label) in snapshots {
                let tell = tell.clone();
                pending.insert(
                    id,
                    Pending {
                        label,
                        deadline,
                        tell,
                    },
                );
            }
        }
        self.added.notify_one();
        answers
    }

    /// A bar on a terminal only; `len` more snapshots to wait for.
    fn grow_bar(&self, len: u64) {
        if !crate::output::log::progress_bars_allowed() {
            return;
        }
        if let Ok(mut slot) = self.bar.lock() {
            let bar = slot.get_or_insert_with(|| {
                let bar = ProgressBar::new(0);
                let style = ProgressStyle::with_template(
                    "{spinner} [{bar:30}] {pos}/{len} snapshots completed, {elapsed} {msg}",
                )
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                bar.enable_steady_tick(Duration::from_millis(200));
                crate::output::log::set_progress_bar(Some(bar.clone()));
                if let Ok(mut tally) = self.tally.lock() {
                    *tally = (Some(std::time::Instant::now()), Tally::default());
                }
                bar
            });
            bar.inc_length(len);
        }
    }

    fn bar(&self) -> Option<ProgressBar> {
        self.bar.lock().ok().and_then(|b| b.clone())
    }

    /// Once nothing is pending: the bar's last frame says how the wait ended, then the bar goes
    /// and one line stays on the terminal (`2 snapshots completed in 13 s`).
    fn end_bar_if_idle(&self) {
        let idle = self.pending.lock().map(|p| p.is_empty()).unwrap_or(true);
        if idle {
            if let Some(bar) = self.bar.lock().ok().and_then(|mut b| b.take()) {
                let (started, tally) = self.tally.lock().map(|t| *t).unwrap_or_default();
                let secs = started.map(|s| s.elapsed().as_secs()).unwrap_or(0);
                let outcome = msg::wait_outcome(tally.error, tally.timed_out, tally.interrupted);
                bar.set_message(outcome.clone());
                // Past the terminal's refresh limit (20 a second), so that this frame is drawn.
                // Not an await: the waiting tasks have their answers already, and the run, which
                // aborts this poller once they end, must not cut the last frame and line short.
                std::thread::sleep(Duration::from_millis(60));
                bar.tick();
                crate::output::log::set_progress_bar(None);
                bar.finish_and_clear();
                let line = msg::wait_ended(tally.completed, &outcome, secs);
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }

    fn settle(&self, id: &str, ended: Ended) {
        let done = self.pending.lock().ok().and_then(|mut p| p.remove(id));
        if let Some(p) = done {
            if let Ok(mut tally) = self.tally.lock() {
                tally.1.add(ended);
            }
            if ended == Ended::Completed {
                match self.bar() {
                    Some(bar) => bar.inc(1),
                    None => info!("{}", msg::snapshot_completed(id, &p.label)),
                }
            }
            let _ = p.tell.send((id.to_string(), ended));
        }
    }

    /// The poller: every `interval`, one batched look at all pending snapshots; a summary line a
    /// minute. Ends at a signal (every waiter is told) or when the run drops it.
    pub async fn poll(self: Arc<Self>, ec2: Arc<Ec2>, interval: Duration, shutdown: Shutdown) {
        let mut last_summary = Instant::now();
        loop {
            let ids: Vec<String> = match self.pending.lock() {
                Ok(p) => p.keys().cloned().collect(),
                Err(_) => return,
            };
            if ids.is_empty() {
                tokio::select! {
                    _ = self.added.notified() => continue,
                    _ = shutdown.wait() => return,
                }
            }
            let pause = tokio::time::sleep(interval);
            if shutdown.race(pause).await.is_err() {
                for id in ids {
                    self.settle(&id, Ended::Interrupted);
                }
                self.end_bar_if_idle();
                return;
            }
            match shutdown.race(ec2.snapshot_progress(&ids)).await {
                Ok(Ok(found)) => {
                    let mut percents = Vec::new();
                    for (id, state, progress) in found {
                        match state {
                            SnapshotState::Completed => self.settle(&id, Ended::Completed),
                            SnapshotState::Error => self.settle(&id, Ended::Error),
                            _ => {
                                percents.extend(progress.trim_end_matches('%').parse::<u32>().ok())
                            }
                        }
                    }
                    if let (Some(bar), false) = (self.bar(), percents.is_empty()) {
                        let mean = percents.iter().sum::<u32>() / percents.len() as u32;
                        bar.set_message(format!("(EC2 progress of the pending ones: {mean}%)"));
                    }
                }
                Ok(Err(e)) => warn!("{}", msg::cannot_poll(&format!("{e:#}"))),
                Err(_) => continue,
            }
            let now = Instant::now();
            let late: Vec<String> = match self.pending.lock() {
                Ok(p) => p
                    .iter()
                    .filter(|(_, v)| v.deadline <= now)
                    .map(|(k, _)| k.clone())
                    .collect(),
                Err(_) => return,
            };
            for id in late {
                self.settle(&id, Ended::TimedOut);
            }
            self.end_bar_if_idle();
            if self.bar().is_none() && now.duration_since(last_summary) >= Duration::from_secs(60) {
                let left = self.pending.lock().map(|p| p.len()).unwrap_or(0);
                info!("{}", msg::waiting_for(left));
                last_summary = now;
            }
        }
    }
}
