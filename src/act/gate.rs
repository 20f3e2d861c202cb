//! The one gate every change to AWS goes through. It knows the mode: a real run sends the change
//! (raced with the signal, or sent through when its answer must be known); a dry run sends
//! nothing but, unless `--no-permission-check`, the same call with `DryRun=true` for the same
//! resource, whose answer says whether the real run may (a refusal is recorded as the real
//! failure would be, so that the dry run exits 2). The steps never ask which mode it is before a
//! change: they act on what the gate says happened.

use crate::act::ctx::Ctx;
use crate::aws::{Answer, AwsError, Change, Ec2};
use crate::config::Mode;
use crate::output::log::Level;
use crate::output::messages as msg;
use crate::output::record::Record;
use crate::output::record::{Failure, Kind};
use crate::signals::{Shutdown, Signal};
use tracing::{debug, warn};

/// What became of a change.
#[derive(Debug)]
pub enum Sent {
    /// Sent; what AWS answered.
    Answered(Result<Answer, AwsError>),
    /// A dry run: not sent (its permission checked, unless `--no-permission-check`).
    Dry,
    /// A signal came first: not sent, or its answer not waited for.
    Interrupted(Signal),
}

impl Sent {
    /// The answer of a change sent through (`send_through`); a dry run's is `Done`.
    pub fn answer(self) -> Result<Answer, AwsError> {
        match self {
            Sent::Answered(answer) => answer,
            Sent::Dry | Sent::Interrupted(_) => Ok(Answer::Done),
        }
    }

    /// The new resource's id (a snapshot, a volume, an image) of an answered change.
    pub fn id(self) -> Option<Result<String, AwsError>> {
        match self {
            Sent::Answered(answer) => Some(answer.and_then(Answer::id)),
            Sent::Dry | Sent::Interrupted(_) => None,
        }
    }
}

/// The gate of one run (or restore, or drill): its mode, its signal, its record, and the region
/// of its own client (a refusal elsewhere is recorded with its region).
pub struct Gate<'a> {
    mode: Mode,
    shutdown: &'a Shutdown,
    record: &'a Record,
    home: &'a str,
}

impl<'a> Gate<'a> {
    pub fn new(mode: Mode, shutdown: &'a Shutdown, record: &'a Record, home: &'a str) -> Self {
        Gate {
            mode,
            shutdown,
            record,
            home,
        }
    }

    /// Sends `change` to `resource` in `ec2`'s region, raced with the signal.
    pub async fn send(&self, ec2: &Ec2, change: &Change<'_>, resource: &str) -> Sent {
        if let Some(dry) = self.dry_run(ec2, change, resource).await {
            return dry;
        }
        match self.shutdown.race(ec2.send_change(change)).await {
            Ok(answer) => Sent::Answered(answer),
            Err(sig) => Sent::Interrupted(sig),
        }
    }

    /// Sends `change` and waits for its answer whatever signal comes: a stop, a start, a drill's
    /// clean-up must be known to have happened or not.
    pub async fn send_through(&self, ec2: &Ec2, change: &Change<'_>, resource: &str) -> Sent {
        if let Some(dry) = self.dry_run(ec2, change, resource).await {
            return dry;
        }
        Sent::Answered(ec2.send_change(change).await)
    }

    /// Whether this is a dry run, for what a step says (the log's wording, a hook told it is a
    /// dry run); never to decide whether to send a change: `send` does.
    pub fn is_dry(&self) -> bool {
        self.mode.is_dry()
    }

    /// In a dry run: the permission check of `change` when asked (and when the change has one),
    /// and `Sent::Dry`; `None` in a real run.
    async fn dry_run(&self, ec2: &Ec2, change: &Change<'_>, resource: &str) -> Option<Sent> {
        if !self.mode.is_dry() {
            return None;
        }
        if self.mode.checks_permissions() && change.has_dry_run() {
            self.check(ec2, change, resource).await;
        }
        Some(Sent::Dry)
    }

    /// Checks one call and says the result; true when the real run would be refused (then
    /// recorded, and counted as the real failure would be, so that the dry run exits 2).
    async fn check(&self, ec2: &Ec2, write: &Change<'_>, resource: &str) -> bool {
        let answer = match self.shutdown.race(ec2.check_change(write)).await {
            Ok(answer) => answer,
            Err(_) => return false,
        };
        let action = write.action();
        match verdict(answer) {
            Permission::Allowed => {
                debug!("{}", msg::permission_allowed(action, resource));
                false
            }
            Permission::Refused(e) => {
                let line = msg::permission_refused(action, resource, &e.to_string());
                let mut failure = Failure::aws(Level::Error, line, action, resource, &e);
                failure.entry.kind = Kind::Refused;
                if ec2.region() != self.home {
                    failure = failure.in_region(ec2.region());
                }
                self.record.failed(None, failure);
                true
            }
            Permission::Unclear(e) => {
                warn!(
                    "{}",
                    msg::permission_unclear(action, resource, &e.to_string())
                );
                false
            }
        }
    }
}

impl Ctx {
    /// The gate every change of this run goes through.
    pub fn gate(&self) -> Gate<'_> {
        Gate::new(
            self.cfg.mode,
            &self.shutdown,
            &self.record,
            self.ec2.region(),
        )
    }
}

/// `ctx`'s gate: `Gate::send`.
pub async fn send(ctx: &Ctx, ec2: &Ec2, change: &Change<'_>, resource: &str) -> Sent {
    ctx.gate().send(ec2, change, resource).await
}

/// `ctx`'s gate: `Gate::send_through`.
pub async fn send_through(ctx: &Ctx, ec2: &Ec2, change: &Change<'_>, resource: &str) -> Sent {
    ctx.gate().send_through(ec2, change, resource).await
}

/// `ctx`'s gate: `Gate::is_dry`.
pub fn is_dry(ctx: &Ctx) -> bool {
    ctx.gate().is_dry()
}

/// What EC2 said of one dry-run call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permission {
    /// `DryRunOperation`: the real call would be allowed.
    Allowed,
    /// `UnauthorizedOperation`: the real call would be refused.
    Refused(AwsError),
    /// Anything else (a throttled or failed check, a state the call does not accept).
    Unclear(AwsError),
}

pub fn verdict(answer: Result<(), AwsError>) -> Permission {
    match answer {
        // A service that ignores DryRun would have done it: then it was allowed too.
        Ok(()) => Permission::Allowed,
        Err(e) if e.is("DryRunOperation") => Permission::Allowed,
        Err(e) if e.is("UnauthorizedOperation") => Permission::Refused(e),
        Err(e) => Permission::Unclear(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: &str) -> AwsError {
        AwsError {
            code: Some(code.into()),
            message: "m".into(),
        }
    }

    #[test]
    fn verdicts() {
        let cases = [
            (Ok(()), Permission::Allowed),
            (Err(err("DryRunOperation")), Permission::Allowed),
            (
                Err(err("UnauthorizedOperation")),
                Permission::Refused(err("UnauthorizedOperation")),
            ),
            (
                Err(err("IncorrectState")),
                Permission::Unclear(err("IncorrectState")),
            ),
            (
                Err(AwsError {
                    code: None,
                    message: "timeout".into(),
                }),
                Permission::Unclear(AwsError {
                    code: None,
                    message: "timeout".into(),
                }),
            ),
        ];
        for (answer, want) in cases {
            assert_eq!(verdict(answer.clone()), want, "{answer:?}");
        }
    }
}
