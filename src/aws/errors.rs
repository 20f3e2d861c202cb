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

/// `CODE: MESSAGE` of the SDK's error metadata written in its Debug form,
/// `Error { code: "AccessDenied", message: "not \"authorized\"", ... }`; `None` for any other text.
fn debug_dump(text: &str) -> Option<String> {
    let quoted = |key: &str| -> Option<String> {
        let start = text.find(&format!("{key}: \""))? + key.len() + 3;
        let mut out = String::new();
        let mut chars = text[start..].chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.push(chars.next()?),
                '"' => return Some(out),
                c => out.push(c),
            }
        }
        None
    };
    let code = quoted("code").filter(|_| text.starts_with("Error { "))?;
    Some(match quoted("message") {
        Some(message) => format!("{code}: {message}"),
        None => code,
    })
}

/// "dispatch failure: io error: ... Connection refused": each cause once, without Debug dumps. A
/// service's answer anywhere in the chain (STS's, behind a credentials provider) is its code and
/// message, once: the SDK's own texts of it ("service error", "unhandled error (..)", and its
/// metadata's Debug form `Error { code: .., message: .., .. }`) say nothing more.
fn cause_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(meta) = e.downcast_ref::<aws_sdk_ec2::error::ErrorMetadata>() {
            if let Some(code) = meta.code() {
                return match meta.message() {
                    Some(message) => format!("{code}: {message}"),
                    None => code.to_string(),
                };
            }
        }
        next = e.source();
    }
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        // The metadata's Debug form, where the type could not be reached: its code and message.
        if let Some(said) = debug_dump(&e.to_string()) {
            return said;
        }
        let text = e.to_string();
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::debug_dump;

    #[test]
    fn the_sdks_debug_form_is_read_as_code_and_message() {
        let dump = r#"Error { code: "AccessDenied", message: "not \"authorized\" to", aws_request_id: "x" }"#;
        assert_eq!(
            debug_dump(dump).as_deref(),
            Some(r#"AccessDenied: not "authorized" to"#)
        );
        assert_eq!(
            debug_dump(r#"Error { code: "Throttling" }"#).as_deref(),
            Some("Throttling")
        );
        assert_eq!(debug_dump("service error"), None);
        assert_eq!(debug_dump(r#"a code: "X" elsewhere"#), None);
    }
}
