//! The credential state of all running instances, and what happens to it
//! when an instance ends.

use crate::aws::{AwsPlaceholders, AwsSessions};
use crate::github::tokens::{GithubTokens, Revoked};
use crate::instance::InstanceId;

/// Everything the proxy needs for JIT credentials, shared by all requests.
#[derive(Debug)]
pub struct JitCredentials {
    pub github: GithubTokens,
    pub aws_sessions: AwsSessions,
    pub aws_placeholders: AwsPlaceholders,
}

/// What ending an instance did to its credentials.
#[derive(Debug)]
pub struct InstanceRevoked {
    pub github: Revoked,
    /// AWS sessions dropped (they lapse at expiry; see `AwsSessions`).
    pub aws_sessions_dropped: usize,
}

impl JitCredentials {
    /// Call when `instance` exits, is terminated or killed: its GitHub
    /// tokens are revoked, its AWS sessions dropped and its placeholder
    /// forgotten, so a replay of that placeholder from anywhere is foreign.
    pub async fn revoke_instance(&self, instance: &InstanceId) -> InstanceRevoked {
        self.aws_placeholders.revoke(instance);
        let aws_sessions_dropped = self.aws_sessions.forget_instance(instance);
        let github = self.github.revoke_instance(instance).await;
        InstanceRevoked {
            github,
            aws_sessions_dropped,
        }
    }
}
