//! What the AWS client is built from: credentials, region, endpoint, role (plain data, no call).

/// What the AWS client is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    pub credentials: Credentials,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub max_attempts: u32,
    /// `--assume-role`, `--accounts`: work in the account of this role, with credentials from
    /// STS (the base credentials above ask for them; refreshed before they expire).
    pub role: Option<Role>,
}

/// An IAM role to assume.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Role {
    pub arn: String,
    pub external_id: Option<String>,
    pub session_name: String,
}

// Hand-written: the external id is a shared secret, never printed.
impl std::fmt::Debug for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Role")
            .field("arn", &self.arn)
            .field("external_id", &self.external_id.as_ref().map(|_| "****"))
            .field("session_name", &self.session_name)
            .finish()
    }
}

/// Where credentials come from, after the legacy file and the flags were looked at.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Given by `-k/-a` or the legacy credentials file.
    Static { key_id: String, secret: String },
    /// The standard AWS chain, with an optional profile name.
    Chain { profile: Option<String> },
}

/// `http://HOST...` or `https://HOST...`, with a host.
pub fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|r| {
        let authority = r.split(['/', '?', '#']).next().unwrap_or("");
        // `[::1]:4566`: an IPv6 address closes its bracket; a host name has no bracket at all.
        let host_ok = match authority.strip_prefix('[') {
            Some(v6) => v6.split_once(']').is_some_and(|(addr, port)| {
                !addr.is_empty() && (port.is_empty() || port.starts_with(':'))
            }),
            None => !authority.is_empty() && !authority.contains([']', '[']),
        };
        host_ok && !r.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

/// An access key id as the log shows it: its first and last four characters (`AKIA****WXYZ`),
/// enough to tell keys apart, not enough to use one; a short one is all stars.
pub fn masked(key_id: &str) -> String {
    let chars: Vec<char> = key_id.chars().collect();
    if chars.len() < 12 {
        return "*".repeat(chars.len().max(4));
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

// Hand-written so that no Debug print can ever show a secret, nor the whole key id.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Static { key_id, .. } => {
                write!(f, "Static {{ key_id: {}, secret: *** }}", masked(key_id))
            }
            Credentials::Chain { profile } => write!(f, "Chain {{ profile: {profile:?} }}"),
        }
    }
}
