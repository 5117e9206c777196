//! The credential state of all running instances (tokens, sessions,
//! placeholders), how it is set up, and what happens to it
//! when an instance ends.

use std::time::Duration;

use crate::aws::{AwsPlaceholders, AwsSessions, StsClient, StsError};
use crate::github::api::GithubApi;
use crate::github::error::GithubError;
use crate::github::tokens::{GithubTokens, Revoked};
use crate::https::HttpClient;
use crate::instance::InstanceId;

/// How long a call to GitHub or STS may take.
pub const ISSUER_TIMEOUT: Duration = Duration::from_secs(20);

/// A bad issuer URL at startup.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Github(#[from] GithubError),
    #[error(transparent)]
    Sts(#[from] StsError),
}

/// Everything the proxy needs for JIT credentials, shared by all requests.
#[derive(Debug)]
pub struct JitCredentials {
    pub github: GithubTokens,
    pub aws_sessions: AwsSessions,
    pub aws_placeholders: AwsPlaceholders,
}

/// What ending an instance (or cutting a connector) did to its credentials.
#[derive(Debug)]
pub struct InstanceRevoked {
    pub github: Revoked,
    /// AWS sessions dropped (they lapse at expiry; see `AwsSessions`).
    pub aws_sessions_dropped: usize,
}

impl JitCredentials {
    /// `tls` carries the roots the daemon trusts upstream; `github_api` is
    /// `https://api.github.com` (or `https://HOST/api/v3`), `sts_endpoint`
    /// `https://sts.amazonaws.com` (or a regional / VPC endpoint).
    pub fn new(
        tls: &rustls::ClientConfig,
        github_api: &str,
        sts_endpoint: &str,
    ) -> Result<JitCredentials, SetupError> {
        let http = HttpClient::new(tls, ISSUER_TIMEOUT);
        Ok(JitCredentials {
            github: GithubTokens::new(GithubApi::new(http.clone(), github_api)?),
            aws_sessions: AwsSessions::new(StsClient::new(http, sts_endpoint)?),
            aws_placeholders: AwsPlaceholders::default(),
        })
    }

    /// Call when `instance` exits, is terminated or killed: its GitHub
    /// tokens are revoked, its AWS sessions dropped and its placeholder
    /// forgotten, so a replay of that placeholder from anywhere is foreign.
    pub async fn revoke_instance(&self, instance: &InstanceId) -> InstanceRevoked {
        self.aws_placeholders.revoke(instance);
        let aws_sessions_dropped = self.aws_sessions.forget_instance(instance).await;
        let github = self.github.revoke_instance(instance).await;
        InstanceRevoked {
            github,
            aws_sessions_dropped,
        }
    }

    /// `cordon kill --connector C AGENT`: every GitHub token minted for `C`
    /// by `agent`'s instances (and its sub-agents') is revoked, every AWS
    /// session dropped, and nothing is minted for them until
    /// [`restore_connector`](Self::restore_connector). Placeholders stay:
    /// they belong to the instance, which keeps running.
    pub async fn cut_connector(&self, agent: &str, connector: &str) -> InstanceRevoked {
        let aws_sessions_dropped = self.aws_sessions.cut_connector(agent, connector).await;
        let github = self.github.cut_connector(agent, connector).await;
        InstanceRevoked {
            github,
            aws_sessions_dropped,
        }
    }

    /// Lifts a cut (`cordon resume --connector`): the next request mints
    /// afresh, since the cut left nothing behind.
    pub fn restore_connector(&self, agent: &str, connector: &str) {
        self.github.restore_connector(agent, connector);
        self.aws_sessions.restore_connector(agent, connector);
    }

    /// Lifts every cut (`cordon resume --all`).
    pub fn restore_all_connectors(&self) {
        self.github.restore_all_connectors();
        self.aws_sessions.restore_all_connectors();
    }
}
