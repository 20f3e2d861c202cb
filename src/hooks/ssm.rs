//! `--freeze ssm`: a freeze or thaw script run on the instance through SSM Run Command, followed
//! until it ends, bounded by `--hook-timeout` and (the freeze) by the run's signal.

use crate::aws::Ec2;
use crate::hooks::local::Ran;
use crate::hooks::policy::Outcome;
use crate::signals::Shutdown;
use std::time::{Duration, Instant};

/// The longest pause between two polls of the invocation.
const MAX_POLL: Duration = Duration::from_secs(1);

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
    let follow = async {
        let id = match ec2
            .send_shell(instance_id, script, timeout.as_secs(), comment)
            .await
        {
            Ok(id) => id,
            Err(e) => {
                return (
                    Outcome::NotStarted(format!("SendCommand: {e}")),
                    String::new(),
                )
            }
        };
        let mut pause = Duration::from_millis(100);
        loop {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_POLL);
            let invocation = match ec2.invocation(&id, instance_id).await {
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
    };
    let signal = async {
        match interrupt {
            Some(shutdown) => shutdown.wait().await,
            None => std::future::pending().await,
        }
    };
    let (outcome, output) = tokio::select! {
        done = tokio::time::timeout(timeout, follow) => done.unwrap_or_else(|_| {
            let why = format!("no end within {} s (--hook-timeout)", timeout.as_secs());
            (Outcome::Lost(why), String::new())
        }),
        _ = signal => (Outcome::Interrupted, String::new()),
    };
    Ran {
        outcome,
        output,
        took: started.elapsed(),
    }
}
