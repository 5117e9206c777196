//! Installation tokens per agent instance and scope: minted on first use,
//! reused while they have more than the margin left, replaced (and the old
//! one revoked) before they expire, and all revoked when the instance ends.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cordon_vault::GithubAppEntry;

use super::api::{GithubApi, InstallationToken};
use super::error::GithubError;
use super::scope::TokenScope;
use crate::cache::RefreshCache;
use crate::instance::InstanceId;

/// Replace a token when less than this is left (tokens last an hour).
pub const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
pub struct GithubTokens {
    api: GithubApi,
    cache: RefreshCache<TokenScope, InstallationToken>,
}

/// What revoking an instance's tokens did.
#[derive(Debug, Default)]
pub struct Revoked {
    pub revoked: usize,
    /// Tokens GitHub did not confirm revoking; they lapse at expiry.
    pub failed: Vec<GithubError>,
}

impl GithubTokens {
    pub fn new(api: GithubApi) -> GithubTokens {
        GithubTokens::with_margin(api, TOKEN_REFRESH_MARGIN)
    }

    pub fn with_margin(api: GithubApi, margin: Duration) -> GithubTokens {
        GithubTokens {
            api,
            cache: RefreshCache::new(margin),
        }
    }

    /// The token `instance` uses for `scope` on `connector` (minted from
    /// `entry`, the vault's `github-app` entry named `scope.entry`).
    pub async fn token(
        &self,
        instance: &InstanceId,
        connector: &str,
        scope: &TokenScope,
        entry: &GithubAppEntry,
        now: SystemTime,
    ) -> Result<Arc<InstallationToken>, GithubError> {
        self.token_lazy(instance, connector, scope, now, || async {
            Ok(entry.clone())
        })
        .await
    }

    /// As [`token`](GithubTokens::token), reading the `github-app` entry
    /// only when a token must be minted: a cache hit costs no vault read.
    /// Refused ([`GithubError::Withdrawn`]) while `connector` is cut for the
    /// instance's agent.
    pub async fn token_lazy<F, Fut>(
        &self,
        instance: &InstanceId,
        connector: &str,
        scope: &TokenScope,
        now: SystemTime,
        load_entry: F,
    ) -> Result<Arc<InstallationToken>, GithubError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<GithubAppEntry, GithubError>>,
    {
        let got = self
            .cache
            .get_or_mint(instance, connector, scope, now, || async {
                let entry = load_entry().await?;
                self.api.create_token(&entry, scope, now).await
            })
            .await?;
        if got.minted {
            tracing::info!(%instance, entry = %scope.entry, repositories = ?scope.repositories, "minted GitHub installation token");
        }
        if let Some(old) = got.replaced {
            // The replacement is in place; the old token has minutes left
            // and no one will use it again.
            if let Err(e) = self.api.revoke(&old).await {
                tracing::warn!(%instance, "revoking a replaced installation token failed (it lapses at expiry): {e}");
            }
        }
        Ok(got.value)
    }

    /// Revokes every token of `instance` (it exited, was terminated or
    /// killed).
    pub async fn revoke_instance(&self, instance: &InstanceId) -> Revoked {
        let tokens = self.cache.take_instance(instance).await;
        self.revoke_all(tokens, &instance.to_string()).await
    }

    /// `cordon kill --connector`: revokes every token minted for
    /// `connector` by `agent`'s instances (and its sub-agents'), and mints
    /// none for them until [`restore_connector`](Self::restore_connector).
    pub async fn cut_connector(&self, agent: &str, connector: &str) -> Revoked {
        let tokens = self.cache.cut_connector(agent, connector).await;
        self.revoke_all(tokens, agent).await
    }

    /// Lifts a cut (`cordon resume --connector`): the next request mints.
    pub fn restore_connector(&self, agent: &str, connector: &str) {
        self.cache.restore_connector(agent, connector);
    }

    /// Lifts every cut (`cordon resume --all`).
    pub fn restore_all_connectors(&self) {
        self.cache.restore_all_connectors();
    }

    async fn revoke_all(&self, tokens: Vec<Arc<InstallationToken>>, whose: &str) -> Revoked {
        let mut out = Revoked::default();
        for token in tokens {
            match self.api.revoke(&token).await {
                Ok(()) => out.revoked += 1,
                Err(e) => {
                    tracing::warn!(
                        whose,
                        "revoking an installation token failed (it lapses at expiry): {e}"
                    );
                    out.failed.push(e);
                }
            }
        }
        out
    }
}
