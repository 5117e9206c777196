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

    /// The token `instance` uses for `scope` (minted from `entry`, the
    /// vault's `github-app` entry named `scope.entry`).
    pub async fn token(
        &self,
        instance: &InstanceId,
        scope: &TokenScope,
        entry: &GithubAppEntry,
        now: SystemTime,
    ) -> Result<Arc<InstallationToken>, GithubError> {
        self.token_lazy(instance, scope, now, || async { Ok(entry.clone()) })
            .await
    }

    /// As [`token`](GithubTokens::token), reading the `github-app` entry
    /// only when a token must be minted: a cache hit costs no vault read.
    pub async fn token_lazy<F, Fut>(
        &self,
        instance: &InstanceId,
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
            .get_or_mint(instance, scope, now, || async {
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
        let mut out = Revoked::default();
        for token in self.cache.take_instance(instance) {
            match self.api.revoke(&token).await {
                Ok(()) => out.revoked += 1,
                Err(e) => {
                    tracing::warn!(%instance, "revoking an installation token failed (it lapses at expiry): {e}");
                    out.failed.push(e);
                }
            }
        }
        out
    }
}
