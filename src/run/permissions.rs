//! The permission check of a dry run: every call a real run would make that changes something is
//! sent with `DryRun=true` for the same resource, and its answer says whether the real run may.

use crate::aws::{AwsError, Change, Ec2};
use crate::output::log::Level;
use crate::output::messages as msg;
use crate::output::record::{Failure, Kind};
use crate::run::ctx::Ctx;
use tracing::{debug, warn};

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

/// Checks one call and says the result; true when the real run would be refused (then recorded,
/// and counted as the real failure would be, so that the dry run exits 2).
pub async fn check(ctx: &Ctx, ec2: &Ec2, write: &Change<'_>, resource: &str) -> bool {
    let answer = match ctx.shutdown.race(ec2.dry_run(write)).await {
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
            if ec2.region() != ctx.ec2.region() {
                failure = failure.in_region(ec2.region());
            }
            ctx.record.failed(None, failure);
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
