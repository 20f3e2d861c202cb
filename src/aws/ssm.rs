//! SSM Run Command for `--freeze ssm`: a shell script sent to one instance (AWS-RunShellScript),
//! and how its invocation is going.

use super::{AwsError, Ec2};

/// One command's invocation on one instance, as GetCommandInvocation gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// `Pending`, `InProgress`, `Delayed`, `Success`, `Cancelled`, `TimedOut`, `Failed`,
    /// `Cancelling`.
    pub status: String,
    /// The script's exit status, once it ended (-1 while it runs).
    pub code: Option<i32>,
    /// Its standard output and error.
    pub output: String,
}

impl Ec2 {
    /// Sends `script` to run as root on `instance_id`; the command's id. It runs at most
    /// `timeout_secs`, and is dropped when no agent took it within as long (30 s at least, SSM's
    /// least), not SSM's default hour: a freeze delivered late would freeze with no one waiting.
    pub async fn send_shell(
        &self,
        instance_id: &str,
        script: &str,
        timeout_secs: u64,
        comment: &str,
    ) -> Result<String, AwsError> {
        let out = self
            .ssm
            .send_command()
            .document_name("AWS-RunShellScript")
            .instance_ids(instance_id)
            .parameters("commands", vec![script.to_string()])
            .parameters("executionTimeout", vec![timeout_secs.to_string()])
            .timeout_seconds(i32::try_from(timeout_secs.max(30)).unwrap_or(i32::MAX))
            .comment(comment)
            .send()
            .await
            .map_err(AwsError::from)?;
        out.command()
            .and_then(|c| c.command_id())
            .map(String::from)
            .ok_or_else(|| AwsError {
                code: None,
                message: "SendCommand answered without a command id".into(),
            })
    }

    /// Cancels the command on the instance (the agent kills its processes).
    pub async fn cancel_command(
        &self,
        command_id: &str,
        instance_id: &str,
    ) -> Result<(), AwsError> {
        self.ssm
            .cancel_command()
            .command_id(command_id)
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(AwsError::from)?;
        Ok(())
    }

    /// How the command is going on the instance.
    pub async fn invocation(
        &self,
        command_id: &str,
        instance_id: &str,
    ) -> Result<Invocation, AwsError> {
        let out = self
            .ssm
            .get_command_invocation()
            .command_id(command_id)
            .instance_id(instance_id)
            .send()
            .await
            .map_err(AwsError::from)?;
        let mut output = out
            .standard_output_content()
            .unwrap_or("")
            .trim()
            .to_string();
        let err = out.standard_error_content().unwrap_or("").trim();
        if !err.is_empty() {
            if !output.is_empty() {
                output.push('\n');
            }
            output.push_str(err);
        }
        Ok(Invocation {
            status: out
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            code: Some(out.response_code()).filter(|c| *c >= 0),
            output,
        })
    }
}
