//! A per-(instance, scope) cache of minted credentials that refreshes an
//! entry before it expires and hands every entry of an instance back for
//! revocation when the instance ends.
//!
//! Concurrent requests for the same key wait for one mint instead of each
//! minting their own (GitHub and STS rate-limit minting).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::instance::InstanceId;

/// Something minted that expires.
pub trait Expiring {
    fn expires_at(&self) -> SystemTime;
}

/// What [`RefreshCache::get_or_mint`] found.
#[derive(Debug)]
pub struct Got<V> {
    pub value: Arc<V>,
    /// Minted by this call (not from the cache).
    pub minted: bool,
    /// The value this mint replaced (near expiry), for the caller to revoke.
    pub replaced: Option<Arc<V>>,
}

type Slot<V> = Arc<tokio::sync::Mutex<Option<Arc<V>>>>;

pub struct RefreshCache<K, V> {
    /// Refresh when less than this is left.
    margin: Duration,
    slots: Mutex<HashMap<(InstanceId, K), Slot<V>>>,
}

impl<K, V> std::fmt::Debug for RefreshCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshCache")
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl<K: Eq + Hash + Clone, V: Expiring> RefreshCache<K, V> {
    pub fn new(margin: Duration) -> Self {
        RefreshCache {
            margin,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The cached value for `(instance, key)` if it is good for more than
    /// the margin at `now`; otherwise one from `mint`, which replaces it.
    pub async fn get_or_mint<E, F, Fut>(
        &self,
        instance: &InstanceId,
        key: &K,
        now: SystemTime,
        mint: F,
    ) -> Result<Got<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots
                .entry((instance.clone(), key.clone()))
                .or_default()
                .clone()
        };
        let mut guard = slot.lock().await;
        if let Some(v) = guard.as_ref()
            && v.expires_at() > now + self.margin
        {
            return Ok(Got {
                value: v.clone(),
                minted: false,
                replaced: None,
            });
        }
        let fresh = Arc::new(mint().await?);
        let replaced = guard.replace(fresh.clone());
        Ok(Got {
            value: fresh,
            minted: true,
            replaced,
        })
    }

    /// Removes every value of `instance` and returns them (to revoke).
    pub fn take_instance(&self, instance: &InstanceId) -> Vec<Arc<V>> {
        let removed: Vec<Slot<V>> = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<(InstanceId, K)> = slots
                .keys()
                .filter(|(i, _)| i == instance)
                .cloned()
                .collect();
            keys.iter().filter_map(|k| slots.remove(k)).collect()
        };
        removed
            .into_iter()
            .filter_map(|slot| match slot.try_lock() {
                Ok(mut g) => g.take(),
                // A mint in flight finishes into a slot no one can reach
                // again; its value is dropped with the slot. It is still
                // live upstream until it expires, which is logged.
                Err(_) => {
                    tracing::warn!(%instance, "a credential was being minted as its instance ended; it will lapse at expiry");
                    None
                }
            })
            .collect()
    }

    /// How many values are cached (all instances).
    pub fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct V(SystemTime, u32);
    impl Expiring for V {
        fn expires_at(&self) -> SystemTime {
            self.0
        }
    }

    #[tokio::test]
    async fn reuses_until_the_margin_then_mints_again() {
        let cache: RefreshCache<&str, V> = RefreshCache::new(Duration::from_secs(300));
        let i = InstanceId::new("a", "1");
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let exp = t0 + Duration::from_secs(3600);
        let got = cache
            .get_or_mint(&i, &"s", t0, || async { Ok::<_, ()>(V(exp, 1)) })
            .await
            .unwrap();
        assert!(got.minted && got.value.1 == 1 && got.replaced.is_none());
        let got = cache
            .get_or_mint(&i, &"s", t0 + Duration::from_secs(3000), || async {
                Ok::<_, ()>(V(exp, 2))
            })
            .await
            .unwrap();
        assert!(!got.minted && got.value.1 == 1);
        // 3400 s in, 200 s are left: inside the 300 s margin.
        let got = cache
            .get_or_mint(&i, &"s", t0 + Duration::from_secs(3400), || async {
                Ok::<_, ()>(V(exp, 3))
            })
            .await
            .unwrap();
        assert!(got.minted && got.value.1 == 3);
        assert_eq!(got.replaced.map(|r| r.1), Some(1));
    }

    #[tokio::test]
    async fn keys_and_instances_are_separate_and_taken_together() {
        let cache: RefreshCache<&str, V> = RefreshCache::new(Duration::from_secs(0));
        let a = InstanceId::new("a", "1");
        let b = InstanceId::new("a", "2");
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(10);
        let exp = t0 + Duration::from_secs(60);
        for (i, k, n) in [(&a, "x", 1), (&a, "y", 2), (&b, "x", 3)] {
            cache
                .get_or_mint(i, &k, t0, || async move { Ok::<_, ()>(V(exp, n)) })
                .await
                .unwrap();
        }
        let mut taken: Vec<u32> = cache.take_instance(&a).iter().map(|v| v.1).collect();
        taken.sort();
        assert_eq!(taken, [1, 2]);
        assert_eq!(cache.len(), 1);
        assert!(cache.take_instance(&a).is_empty());
    }

    #[tokio::test]
    async fn a_failed_mint_caches_nothing() {
        let cache: RefreshCache<&str, V> = RefreshCache::new(Duration::from_secs(0));
        let i = InstanceId::new("a", "1");
        let t0 = SystemTime::UNIX_EPOCH;
        assert!(
            cache
                .get_or_mint(&i, &"s", t0, || async { Err::<V, _>("down") })
                .await
                .is_err()
        );
        assert!(cache.take_instance(&i).is_empty());
    }
}
