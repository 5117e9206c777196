//! AssumeRole sessions per agent instance, refreshed before they expire.
//!
//! STS sessions cannot be revoked one by one; they never leave Cordon
//! (the agent only signs with its placeholder), so when the instance ends
//! its session is dropped and lapses at its expiry, at most
//! `session_duration_secs` later.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cordon_vault::AwsRoleEntry;

use super::credentials::SessionCredentials;
use super::sts::{StsClient, StsError};
use crate::cache::{Expiring, RefreshCache};
use crate::instance::InstanceId;

/// Refresh a session when less than this is left.
pub const SESSION_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

impl Expiring for SessionCredentials {
    fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

#[derive(Debug)]
pub struct AwsSessions {
    sts: StsClient,
    cache: RefreshCache<String, SessionCredentials>,
}

impl AwsSessions {
    pub fn new(sts: StsClient) -> AwsSessions {
        AwsSessions {
            sts,
            cache: RefreshCache::new(SESSION_REFRESH_MARGIN),
        }
    }

    /// The instance's session on `connector` for vault entry `entry_name`,
    /// assumed on first use and again when it is within the margin of
    /// expiring. Each connector gets its own session, so cutting one
    /// (`cordon kill --connector aws-s3`) leaves none of its sessions in use.
    pub async fn session(
        &self,
        instance: &InstanceId,
        connector: &str,
        entry_name: &str,
        entry: &AwsRoleEntry,
        now: SystemTime,
    ) -> Result<Arc<SessionCredentials>, StsError> {
        self.session_lazy(instance, connector, entry_name, now, || async {
            Ok(entry.clone())
        })
        .await
    }

    /// As [`session`](AwsSessions::session), reading the `aws-role` entry
    /// only when a session must be assumed: a cache hit costs no vault read.
    /// Refused ([`StsError::Withdrawn`]) while `connector` is cut for the
    /// instance's agent.
    pub async fn session_lazy<F, Fut>(
        &self,
        instance: &InstanceId,
        connector: &str,
        entry_name: &str,
        now: SystemTime,
        load_entry: F,
    ) -> Result<Arc<SessionCredentials>, StsError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AwsRoleEntry, StsError>>,
    {
        let name = session_name(instance);
        let got = self
            .cache
            .get_or_mint(instance, connector, &entry_name.to_string(), now, || async {
                let entry = load_entry().await?;
                let session = self.sts.assume_role(&entry, &name, now).await?;
                tracing::info!(%instance, entry = entry_name, role = %entry.role_arn, "assumed AWS role for agent instance");
                Ok::<_, StsError>(session)
            })
            .await?;
        Ok(got.value)
    }

    /// Drops the instance's sessions (it has ended).
    pub async fn forget_instance(&self, instance: &InstanceId) -> usize {
        self.cache.take_instance(instance).await.len()
    }

    /// `cordon kill --connector`: drops the sessions `agent`'s instances
    /// (and its sub-agents') hold for `connector`, and assumes none for
    /// them until [`restore_connector`](Self::restore_connector). STS has
    /// no call to end one session; they never left Cordon, so dropping
    /// them means nothing signs with them again, and they lapse at expiry.
    pub async fn cut_connector(&self, agent: &str, connector: &str) -> usize {
        self.cache.cut_connector(agent, connector).await.len()
    }

    /// Lifts a cut (`cordon resume --connector`).
    pub fn restore_connector(&self, agent: &str, connector: &str) {
        self.cache.restore_connector(agent, connector);
    }

    /// Lifts every cut (`cordon resume --all`).
    pub fn restore_all_connectors(&self) {
        self.cache.restore_all_connectors();
    }
}

/// `cordon-<agent>-<instance>`, in the characters and length STS allows
/// (`[\w+=,.@-]{2,64}`), so CloudTrail shows which run acted.
pub fn session_name(instance: &InstanceId) -> String {
    let raw = format!("cordon-{}-{}", instance.agent, instance.instance);
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_fit_sts_rules() {
        let n = session_name(&InstanceId::new("deploy bot", &"x".repeat(100)));
        assert!(n.starts_with("cordon-deploy-bot-"));
        assert_eq!(n.len(), 64);
    }
}
