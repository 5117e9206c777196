//! A per-(instance, connector, scope) cache of minted credentials that
//! refreshes an entry before it expires and hands entries back for
//! revocation when their instance ends or their connector is cut.
//!
//! Concurrent requests for the same key wait for one mint instead of each
//! minting their own (GitHub and STS rate-limit minting).
//!
//! Withdrawing is race-free against minting: a withdrawn slot is marked
//! under its own lock (a mint in flight is waited for and its result handed
//! back), and a cut connector is fenced under the map's lock in the same
//! step that removes its slots, so a request that passed its decision just
//! before the cut can neither mint into a slot no one will revoke nor leave
//! a token behind for after `resume --connector`.

use std::collections::{HashMap, HashSet};
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

/// Nothing is minted: the connector is cut for the instance's agent (`cordon
/// kill --connector`), or the credential was withdrawn (its instance ended,
/// its connector was cut) while this request waited for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the {connector} credential of {instance} was withdrawn (its connector is cut or its instance ended)"
)]
pub struct Withdrawn {
    pub instance: String,
    pub connector: String,
}

struct SlotState<V> {
    value: Option<Arc<V>>,
    /// Removed from the cache: nothing may be minted into it any more.
    withdrawn: bool,
}

// Not derived: that would ask `V: Default`.
impl<V> Default for SlotState<V> {
    fn default() -> Self {
        SlotState {
            value: None,
            withdrawn: false,
        }
    }
}

type Slot<V> = Arc<tokio::sync::Mutex<SlotState<V>>>;
/// Instance, connector, scope.
type Key<K> = (InstanceId, Arc<str>, K);

struct Inner<K, V> {
    slots: HashMap<Key<K>, Slot<V>>,
    /// (agent, connector) pairs cut off: nothing is minted for them.
    cut: HashSet<(String, String)>,
}

pub struct RefreshCache<K, V> {
    /// Refresh when less than this is left.
    margin: Duration,
    inner: Mutex<Inner<K, V>>,
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
            inner: Mutex::new(Inner {
                slots: HashMap::new(),
                cut: HashSet::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached value for `(instance, connector, key)` if it is good for
    /// more than the margin at `now`; otherwise one from `mint`, which
    /// replaces it. Refused with [`Withdrawn`] when the connector is cut for
    /// the instance's agent or the slot was withdrawn while waiting.
    pub async fn get_or_mint<E, F, Fut>(
        &self,
        instance: &InstanceId,
        connector: &str,
        key: &K,
        now: SystemTime,
        mint: F,
    ) -> Result<Got<V>, E>
    where
        E: From<Withdrawn>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let withdrawn = || Withdrawn {
            instance: instance.to_string(),
            connector: connector.to_string(),
        };
        let slot = {
            let mut inner = self.lock();
            if is_cut(&inner.cut, instance, connector) {
                return Err(withdrawn().into());
            }
            inner
                .slots
                .entry((instance.clone(), Arc::from(connector), key.clone()))
                .or_default()
                .clone()
        };
        let mut guard = slot.lock().await;
        if guard.withdrawn {
            return Err(withdrawn().into());
        }
        if let Some(v) = guard.value.as_ref()
            && v.expires_at() > now + self.margin
        {
            return Ok(Got {
                value: v.clone(),
                minted: false,
                replaced: None,
            });
        }
        let fresh = Arc::new(mint().await?);
        let replaced = guard.value.replace(fresh.clone());
        Ok(Got {
            value: fresh,
            minted: true,
            replaced,
        })
    }

    /// Removes every value of `instance` and returns them (to revoke).
    pub async fn take_instance(&self, instance: &InstanceId) -> Vec<Arc<V>> {
        let slots = self.remove_where(|i, _| i == instance);
        withdraw(slots).await
    }

    /// Cuts `connector` for `agent` (and the sub-agents it runs): nothing
    /// is minted for it until [`restore_connector`](Self::restore_connector),
    /// and every value already minted for it is removed and returned (to
    /// revoke). A mint in flight is waited for, and its value returned too.
    pub async fn cut_connector(&self, agent: &str, connector: &str) -> Vec<Arc<V>> {
        let slots = {
            let mut inner = self.lock();
            inner.cut.insert((agent.to_string(), connector.to_string()));
            remove_locked(&mut inner, |i, c| i.runs_under(agent) && c == connector)
        };
        withdraw(slots).await
    }

    /// Lifts a cut: the next request mints afresh.
    pub fn restore_connector(&self, agent: &str, connector: &str) {
        self.lock()
            .cut
            .remove(&(agent.to_string(), connector.to_string()));
    }

    /// Lifts every cut (`cordon resume --all`).
    pub fn restore_all_connectors(&self) {
        self.lock().cut.clear();
    }

    fn remove_where(&self, pred: impl Fn(&InstanceId, &str) -> bool) -> Vec<Slot<V>> {
        remove_locked(&mut self.lock(), pred)
    }

    /// How many values are cached (all instances).
    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn is_cut(cut: &HashSet<(String, String)>, instance: &InstanceId, connector: &str) -> bool {
    !cut.is_empty()
        && cut
            .iter()
            .any(|(agent, c)| c == connector && instance.runs_under(agent))
}

fn remove_locked<K: Eq + Hash + Clone, V>(
    inner: &mut Inner<K, V>,
    pred: impl Fn(&InstanceId, &str) -> bool,
) -> Vec<Slot<V>> {
    let keys: Vec<Key<K>> = inner
        .slots
        .keys()
        .filter(|(i, c, _)| pred(i, c))
        .cloned()
        .collect();
    keys.iter().filter_map(|k| inner.slots.remove(k)).collect()
}

/// Marks each slot withdrawn under its lock (waiting for a mint in
/// flight, which the issuer's timeout bounds) and takes its value.
async fn withdraw<V>(slots: Vec<Slot<V>>) -> Vec<Arc<V>> {
    let mut out = Vec::new();
    for slot in slots {
        let mut g = slot.lock().await;
        g.withdrawn = true;
        out.extend(g.value.take());
    }
    out
}

#[cfg(test)]
mod tests;
