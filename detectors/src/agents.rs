//! An agent as the registry declares it (`[[agents]]`, docs/agents.md): how to recognize it on
//! a CloudTrail record, and where it may act. The CloudTrail normalizer compiles the patterns
//! to name the agent (`actor.app_name`); the behaviour rules (`behaviour.rs`) read the scope.

use serde::{Deserialize, Serialize};

use crate::net::Net;

/// One agent, as written in `[[agents]]`: its name, the regexes (unanchored, Rust regex syntax,
/// matched against the field lowercased) that recognize it, any one of which names it, and its
/// declared scope.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AgentRule {
    pub name: String,
    /// `actor.app_uid`; the name when absent.
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub user_agent: Vec<String>,
    #[serde(default)]
    pub role_arn: Vec<String>,
    #[serde(default)]
    pub session_name: Vec<String>,
    #[serde(default)]
    pub source_identity: Vec<String>,
    /// Session tags set when the agent's role session began (`AssumeRole*` requests'
    /// `tags`): tag key -> regex on its value.
    #[serde(default)]
    pub principal_tags: std::collections::BTreeMap<String, String>,
    /// Where the agent may act and from where it calls (rules `agent-out-of-scope` and
    /// `agent-foreign-client`). Empty lists declare nothing.
    #[serde(default)]
    pub scope: Scope,
}

/// An agent's declared scope. Values compare without case.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// AWS account ids it may act in (`recipientAccountId`).
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Regions it may act in (`awsRegion`).
    #[serde(default)]
    pub regions: Vec<String>,
    /// Services it may call: `s3` or `s3.amazonaws.com` (`eventSource`).
    #[serde(default)]
    pub services: Vec<String>,
    /// Networks its calls come from (CIDR; `sourceIPAddress`).
    #[serde(default)]
    pub source_ips: Vec<String>,
}

impl AgentRule {
    /// Whether the entry names the agent by its credentials (role, session, source identity,
    /// session tags), so that a call made with them by another client can be told apart.
    pub fn has_credential_patterns(&self) -> bool {
        !(self.role_arn.is_empty() && self.session_name.is_empty() && self.source_identity.is_empty() && self.principal_tags.is_empty())
    }
}

impl Scope {
    /// The declared networks, parsed; the error names the key and the bad value.
    pub fn networks(&self) -> Result<Vec<Net>, String> {
        self.source_ips.iter().map(|s| Net::parse(s).ok_or_else(|| format!("scope.source_ips: `{s}` is not an IP address or network (write 10.0.0.0/8 or 2001:db8::/32)"))).collect()
    }
}

/// A service as scopes name it: `s3` for `s3.amazonaws.com`, lowercased.
pub fn service_key(s: &str) -> String {
    s.trim().trim_end_matches(".amazonaws.com").to_ascii_lowercase()
}
