//! Per-name leaf certificates, minted on first use and cached so repeated
//! connections to one host cost a cache lookup instead of a keygen + sign.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;
use rcgen::{Issuer, KeyPair};
use rustls::sign::CertifiedKey;

use crate::error::TlsError;
use crate::mint::{LeafName, mint_leaf};

/// How leaves are minted and cached.
#[derive(Debug, Clone)]
pub struct LeafOptions {
    /// Validity of each leaf (counted from now; `not_before` is backdated a
    /// few minutes on top of this).
    pub lifetime: Duration,
    /// Maximum number of names held at once; least recently used go first.
    pub cache_capacity: u64,
    /// How long a cached leaf is served. Must be below `lifetime` so a
    /// handed-out certificate always has validity left.
    pub cache_ttl: Duration,
}

impl Default for LeafOptions {
    fn default() -> Self {
        LeafOptions {
            lifetime: Duration::from_secs(24 * 3600),
            cache_capacity: 10_000,
            cache_ttl: Duration::from_secs(12 * 3600),
        }
    }
}

impl LeafOptions {
    fn validate(&self) -> Result<(), TlsError> {
        if self.cache_capacity == 0 {
            return Err(TlsError::InvalidOptions(
                "cache_capacity must be at least 1",
            ));
        }
        if self.cache_ttl.is_zero() || self.cache_ttl >= self.lifetime {
            return Err(TlsError::InvalidOptions(
                "cache_ttl must be non-zero and shorter than lifetime",
            ));
        }
        Ok(())
    }
}

pub(crate) struct LeafCache {
    issuer: Issuer<'static, KeyPair>,
    lifetime: Duration,
    cache: Cache<LeafName, Arc<CertifiedKey>>,
    generated: AtomicU64,
}

impl std::fmt::Debug for LeafCache {
    // The issuer holds the CA key; print nothing of it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafCache")
            .field("entries", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl LeafCache {
    pub(crate) fn new(
        issuer: Issuer<'static, KeyPair>,
        options: &LeafOptions,
    ) -> Result<Self, TlsError> {
        options.validate()?;
        Ok(LeafCache {
            issuer,
            lifetime: options.lifetime,
            cache: Cache::builder()
                .max_capacity(options.cache_capacity)
                .time_to_live(options.cache_ttl)
                .build(),
            generated: AtomicU64::new(0),
        })
    }

    /// Returns the leaf for `name`, minting it when absent. Concurrent
    /// callers missing on the same name wait for one generation.
    pub(crate) fn get(&self, name: &LeafName) -> Result<Arc<CertifiedKey>, TlsError> {
        self.cache
            .try_get_with_by_ref(name, || {
                let leaf = mint_leaf(&self.issuer, name, self.lifetime)?;
                self.generated.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(name = %name.key(), "minted leaf certificate");
                Ok(leaf)
            })
            .map_err(|shared| Arc::try_unwrap(shared).unwrap_or_else(TlsError::Shared))
    }

    pub(crate) fn generated(&self) -> u64 {
        self.generated.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_not_below_lifetime_is_rejected() {
        let opts = LeafOptions {
            lifetime: Duration::from_secs(60),
            cache_ttl: Duration::from_secs(60),
            ..LeafOptions::default()
        };
        assert!(matches!(opts.validate(), Err(TlsError::InvalidOptions(_))));
        assert!(LeafOptions::default().validate().is_ok());
    }
}
