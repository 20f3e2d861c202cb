//! An AWS error reduced to what a person needs: its code and message, or a transport failure's
//! cause chain.

use aws_sdk_ec2::error::ProvideErrorMetadata;

/// An AWS error reduced to what a person needs: its code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub code: Option<String>,
    pub message: String,
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{code}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for AwsError {}

impl AwsError {
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// Any error (a credentials provider's, STS's) as its cause chain.
    pub fn describe(err: &(dyn std::error::Error + 'static)) -> String {
        cause_chain(err)
    }
}

/// Service errors keep their code and message; transport errors keep their whole cause chain
/// (the SDK's own Display says only "service error" or "dispatch failure").
impl<E, R> From<aws_sdk_ec2::error::SdkError<E, R>> for AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    fn from(err: aws_sdk_ec2::error::SdkError<E, R>) -> AwsError {
        match (err.code(), err.message()) {
            (Some(code), msg) => AwsError {
                code: Some(code.to_string()),
                message: msg.unwrap_or("(no message)").to_string(),
            },
            (None, _) => AwsError {
                code: None,
                message: cause_chain(&err),
            },
        }
    }
}

/// "dispatch failure: io error: ... Connection refused": each cause once, without Debug dumps.
fn cause_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}
