//! SNS for notifications (`--sns-topic`): one Publish at a job's end, and in a dry run
//! GetTopicAttributes (SNS has no DryRun). With the base credentials (not a run's
//! `--assume-role`), in the topic's region, bounded: 2 attempts of 4 seconds, 8 in all.

use super::{base_config, AwsError, AwsSettings};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_sns::types::MessageAttributeValue;
use std::time::Duration;

/// A client of SNS in `region`.
pub async fn client(cfg: &AwsSettings, region: &str) -> anyhow::Result<aws_sdk_sns::Client> {
    let (sdk, _) = base_config(cfg).await?;
    let conf = aws_sdk_sns::config::Builder::from(&sdk)
        .region(aws_sdk_sns::config::Region::new(region.to_string()))
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(4))
                .operation_timeout(Duration::from_secs(8))
                .build(),
        )
        .build();
    Ok(aws_sdk_sns::Client::from_conf(conf))
}

/// Publishes `message` to `topic` with the attributes `exit_code` (a Number) and `job`.
pub async fn publish(
    client: &aws_sdk_sns::Client,
    topic: &str,
    subject: &str,
    message: &str,
    exit_code: u8,
    job: &str,
) -> Result<(), AwsError> {
    let attribute = |kind: &str, value: String| {
        MessageAttributeValue::builder()
            .data_type(kind)
            .string_value(value)
            .build()
            .map_err(|e| AwsError {
                code: None,
                message: e.to_string(),
            })
    };
    client
        .publish()
        .topic_arn(topic)
        .subject(subject)
        .message(message)
        .message_attributes("exit_code", attribute("Number", exit_code.to_string())?)
        .message_attributes("job", attribute("String", job.to_string())?)
        .send()
        .await
        .map(|_| ())
        .map_err(AwsError::from)
}

/// Whether the topic is there and these credentials may see it (a dry run's check).
pub async fn check_topic(client: &aws_sdk_sns::Client, topic: &str) -> Result<(), AwsError> {
    client
        .get_topic_attributes()
        .topic_arn(topic)
        .send()
        .await
        .map(|_| ())
        .map_err(AwsError::from)
}
