//! `--freeze ssm`: a freeze or thaw script run on the instance through SSM Run Command, followed
//! until it ends, bounded by `--hook-timeout` and (the freeze) by the run's signal. A command
//! given up on (the bound, the signal) is cancelled, so that it does not go on behind our back.

use crate::aws::{AwsError, Ec2};
use crate::hooks::local::Ran;
use crate::hooks::policy::Outcome;
use crate::signals::Shutdown;
use std::time::{Duration, Instant};

/// The longest pause between two polls of the invocation.
const MAX_POLL: Duration = Duration::from_secs(1);
/// How long a CancelCommand may take.
const CANCEL_BOUND: Duration = Duration::from_secs(5);

/// Whether SendCommand's refusal says that no SSM agent can take the command: the instance is
/// not managed (no agent, no role), or not running.
fn unreachable(e: &AwsError) -> bool {
    e.is("InvalidInstanceId")
}

/// Sends `script` to the instance and follows it until SSM says it ended.
pub async fn run(
    ec2: &Ec2,
    instance_id: &str,
    script: &str,
    comment: &str,
    timeout: Duration,
    interrupt: Option<&Shutdown>,
) -> Ran {
    let started = Instant::now();
    let signal = || async {
        match interrupt {
            Some(shutdown) => shutdown.wait().await,
            None => std::future::pending().await,
        }
    };
    let send = ec2.send_shell(instance_id, script, timeout.as_secs(), comment);
    let sent = tokio::select! {
        sent = tokio::time::timeout(timeout, send) => sent,
        _ = signal() => return ran(Outcome::Interrupted, String::new(), started),
    };
    let id = match sent {
        Ok(Ok(id)) => id,
        Ok(Err(e)) if unreachable(&e) => {
            return ran(
                Outcome::Unreachable(format!("SendCommand: {e}")),
                String::new(),
                started,
            )
        }
        Ok(Err(e)) => {
            return ran(
                Outcome::NotStarted(format!("SendCommand: {e}")),
                String::new(),
                started,
            )
        }
        Err(_) => {
            let why = format!("SendCommand: no answer within {} s", timeout.as_secs());
            return ran(Outcome::NotStarted(why), String::new(), started);
        }
    };
    let left = timeout.saturating_sub(started.elapsed());
    let (outcome, output) = tokio::select! {
        done = tokio::time::timeout(left, follow(ec2, &id, instance_id)) => done.unwrap_or_else(|_| {
            let why = format!("no end within {} s (--hook-timeout)", timeout.as_secs());
            (Outcome::Lost(why), String::new())
        }),
        _ = signal() => (Outcome::Interrupted, String::new()),
    };
    if matches!(outcome, Outcome::Lost(_) | Outcome::Interrupted) {
        // Given up on: the script must not go on (a freeze would freeze with no one to thaw it
        // but its watchdog). Best effort: its watchdog bounds what it can do anyway.
        let _ = tokio::time::timeout(CANCEL_BOUND, ec2.cancel_command(&id, instance_id)).await;
    }
    ran(outcome, output, started)
}

fn ran(outcome: Outcome, output: String, started: Instant) -> Ran {
    Ran {
        outcome,
        output,
        took: started.elapsed(),
    }
}

/// Polls the command until SSM says it ended: its outcome and output.
async fn follow(ec2: &Ec2, id: &str, instance_id: &str) -> (Outcome, String) {
    let mut pause = Duration::from_millis(100);
    loop {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_POLL);
        let invocation = match ec2.invocation(id, instance_id).await {
            Ok(invocation) => invocation,
            // Right after SendCommand, the invocation may not be known yet.
            Err(e) if e.is("InvocationDoesNotExist") => continue,
            Err(e) => {
                let why = format!("GetCommandInvocation of command {id}: {e}");
                return (Outcome::Lost(why), String::new());
            }
        };
        let outcome = match invocation.status.as_str() {
            "Pending" | "InProgress" | "Delayed" | "" => continue,
            "Success" => Outcome::Ok,
            status => Outcome::Remote {
                status: status.to_string(),
                code: invocation.code,
            },
        };
        return (outcome, invocation.output);
    }
}
