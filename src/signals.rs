//! Signals: SIGINT, SIGTERM and SIGHUP set a flag the pipeline checks, so it stops taking new work
//! and still starts again every instance it stopped.

use crate::output::messages as msg;
use tokio::sync::watch;

/// Cheap to clone; every clone sees the same signal.
#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<Option<Signal>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Int,
    Term,
    Hup,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Int => "SIGINT",
            Signal::Term => "SIGTERM",
            Signal::Hup => "SIGHUP",
        }
    }

    /// The signal's number (the exit code is 128 + this, see `outcome`).
    pub fn number(self) -> u8 {
        match self {
            Signal::Hup => 1,
            Signal::Int => 2,
            Signal::Term => 15,
        }
    }
}

/// What the command does once a signal came, for the line that says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// A backup run: instances it stopped are started again.
    Run,
    /// `restore`: the volumes already asked for are said (made or maybe made), nothing more.
    Restore,
    /// `drill`: its check is killed and its volumes deleted.
    Drill,
    /// `list`, the freshness check: nothing to undo.
    Read,
}

impl After {
    fn what(self) -> &'static str {
        match self {
            After::Run => "instances stopped by this run are started again",
            After::Restore => "the volumes already asked for are reported, no more are made",
            After::Drill => "the check is stopped and the drill's volumes are deleted",
            After::Read => "nothing was changed",
        }
    }
}

impl Shutdown {
    /// Listens for SIGINT, SIGTERM and SIGHUP. Must be called inside the runtime, before any AWS call.
    pub fn listen(after: After) -> std::io::Result<Shutdown> {
        use tokio::signal::unix::{signal, SignalKind};
        let (tx, rx) = watch::channel(None);
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;
        tokio::spawn(async move {
            loop {
                let got = tokio::select! {
                    _ = int.recv() => Signal::Int,
                    _ = term.recv() => Signal::Term,
                    _ = hup.recv() => Signal::Hup,
                };
                if tx.borrow().is_none() {
                    tracing::warn!("{}", msg::signal_received(got.name(), after.what()));
                    let _ = tx.send(Some(got));
                } else {
                    tracing::warn!("{}", msg::signal_again(got.name(), after.what()));
                }
            }
        });
        Ok(Shutdown { rx })
    }

    pub fn signal(&self) -> Option<Signal> {
        *self.rx.borrow()
    }

    pub fn is_set(&self) -> bool {
        self.signal().is_some()
    }

    /// Resolves when a signal has arrived.
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(Option::is_some).await;
    }

    /// Runs `work` unless a signal comes first (or came already): then `work` is dropped, which
    /// abandons its request and any retry of it, and the signal is returned.
    pub async fn race<F: std::future::Future>(&self, work: F) -> Result<F::Output, Signal> {
        tokio::select! {
            biased;
            _ = self.wait() => Err(self.signal().unwrap_or(Signal::Term)),
            out = work => Ok(out),
        }
    }
}
