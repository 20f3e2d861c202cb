//! The permission check of a dry run: every call a real run would make that changes something is
//! sent with `DryRun=true` for the same resource, and its answer says whether the real run may.

use crate::aws::{AwsError, Ec2, Write};
use crate::output::exit::Outcome;
use crate::output::messages as msg;
use crate::run::ctx::Ctx;
use tracing::{debug, error, warn};

/// What EC2 said of one dry-run call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `DryRunOperation`: the real call would be allowed.
    Allowed,
    /// `UnauthorizedOperation`: the real call would be refused.
    Refused(AwsError),
    /// Anything else (a throttled or failed check, a state the call does not accept).
    Unclear(AwsError),
}

pub fn verdict(answer: Result<(), AwsError>) -> Verdict {
    match answer {
        // A service that ignores DryRun would have done it: then it was allowed too.
        Ok(()) => Verdict::Allowed,
        Err(e) if e.is("DryRunOperation") => Verdict::Allowed,
        Err(e) if e.is("UnauthorizedOperation") => Verdict::Refused(e),
        Err(e) => Verdict::Unclear(e),
    }
}

/// Checks one call and says the result; true when the real run would be refused (counted by the
/// caller, so that the dry run exits 2).
pub async fn check(ctx: &Ctx, ec2: &Ec2, write: &Write<'_>, resource: &str) -> bool {
    let answer = match ctx.shutdown.race(ec2.dry_run(write)).await {
        Ok(answer) => answer,
        Err(_) => return false,
    };
    let action = write.action();
    match verdict(answer) {
        Verdict::Allowed => {
            debug!("Permission check: {action} on {resource} is allowed");
            false
        }
        Verdict::Refused(e) => {
            error!(
                "{}",
                msg::permission_refused(action, resource, &e.to_string())
            );
            ctx.journal.error(None, action, resource, &e);
            true
        }
        Verdict::Unclear(e) => {
            warn!("Permission check of {action} on {resource} answered {e}");
            false
        }
    }
}

/// Counts a refusal found by `check`.
pub fn count(refused: bool, outcome: &mut Outcome, deletion: bool) {
    if refused {
        if deletion {
            outcome.deletion_errors += 1;
        } else {
            outcome.snapshot_errors += 1;
        }
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
            (Ok(()), Verdict::Allowed),
            (Err(err("DryRunOperation")), Verdict::Allowed),
            (
                Err(err("UnauthorizedOperation")),
                Verdict::Refused(err("UnauthorizedOperation")),
            ),
            (
                Err(err("IncorrectState")),
                Verdict::Unclear(err("IncorrectState")),
            ),
            (
                Err(AwsError {
                    code: None,
                    message: "timeout".into(),
                }),
                Verdict::Unclear(AwsError {
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
