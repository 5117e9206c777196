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
    /// Shared by every shard: one CA key in memory.
    issuer: Arc<Issuer<'static, KeyPair>>,
    options: LeafOptions,
    cache: Cache<LeafName, Arc<CertifiedKey>>,
    /// Leaves minted by every shard together.
    generated: Arc<AtomicU64>,
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
            issuer: Arc::new(issuer),
            options: options.clone(),
            cache: new_cache(options),
            generated: Arc::new(AtomicU64::new(0)),
        })
    }

    /// An empty cache minting with the same CA and options: one per proxy
    /// core, so a core's lookups never touch another core's cache lines.
    /// A name a connection on each core asks for is minted once per core.
    pub(crate) fn shard(&self) -> LeafCache {
        LeafCache {
            issuer: Arc::clone(&self.issuer),
            options: self.options.clone(),
            cache: new_cache(&self.options),
            generated: Arc::clone(&self.generated),
        }
    }

    /// Returns the leaf for `name`, minting it when absent. Concurrent
    /// callers missing on the same name wait for one generation.
    pub(crate) fn get(&self, name: &LeafName) -> Result<Arc<CertifiedKey>, TlsError> {
        self.cache
            .try_get_with_by_ref(name, || {
                let leaf = mint_leaf(&self.issuer, name, self.options.lifetime)?;
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

fn new_cache(options: &LeafOptions) -> Cache<LeafName, Arc<CertifiedKey>> {
    Cache::builder()
        .max_capacity(options.cache_capacity)
        .time_to_live(options.cache_ttl)
        .build()
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
