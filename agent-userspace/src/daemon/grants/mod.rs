//! Standing grants from `cordon approve --uses N` and `--for 1h`: held in
//! memory for matching, persisted in the daemon's database so they survive
//! a restart. Every change is written to the database before it counts,
//! and a use is taken under one lock, so N uses are never exceeded however
//! many requests race for them.
pub mod always;
pub mod grant;
pub mod lifecycle;
pub mod records;

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::store::{Store, StoreError};
pub use grant::{Grant, GrantAsk, Taken};

/// A use taken from a grant: the grant as it is now.
#[derive(Debug, Clone)]
pub struct Use {
    pub grant: Grant,
    pub taken: Taken,
}

pub struct Grants {
    store: Store,
    live: Mutex<Vec<Grant>>,
}

#[derive(Debug, thiserror::Error)]
pub enum GrantsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored grant {key} is unreadable: {message}")]
    Corrupt { key: String, message: String },
}

impl Grants {
    /// The grants a previous daemon left. An unreadable one stops the start
    /// rather than be dropped silently.
    pub fn load(store: Store) -> Result<Grants, GrantsError> {
        let mut live = Vec::new();
        for (key, value) in store.grants()? {
            let g: Grant = serde_json::from_str(&value).map_err(|e| GrantsError::Corrupt {
                key: key.clone(),
                message: e.to_string(),
            })?;
            live.push(g);
        }
        live.sort_by_key(|g| g.granted_at);
        Ok(Grants {
            store,
            live: Mutex::new(live),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Grant>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh id no grant has.
    pub fn new_id(&self) -> String {
        let live = self.lock();
        loop {
            let id = format!("g{:07x}", rand::random::<u32>() >> 4);
            if !live.iter().any(|g| g.id == id) {
                return id;
            }
        }
    }

    /// Persists `g`, then lets it match.
    pub fn add(&self, g: Grant) -> Result<(), GrantsError> {
        let mut live = self.lock();
        self.store.put_grant(&g.id, &to_json(&g)?)?;
        live.push(g);
        Ok(())
    }

    /// Takes one use of the first grant covering the request. The new count
    /// is persisted before this returns; when it cannot be, no use is taken
    /// and the caller refuses (the grant may still be fine).
    pub fn take_use(
        &self,
        chain: &[String],
        action: &str,
        params: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<Option<Use>, GrantsError> {
        let mut live = self.lock();
        let Some(i) = live
            .iter()
            .position(|g| g.covers(chain, action, params, now))
        else {
            return Ok(None);
        };
        let mut g = live[i].clone();
        let taken = g.take();
        match taken {
            Taken::Exhausted => {
                self.store.del_grant(&g.id)?;
                live.remove(i);
            }
            Taken::Left(_) => {
                self.store.put_grant(&g.id, &to_json(&g)?)?;
                live[i] = g.clone();
            }
            Taken::Unlimited => {}
        }
        Ok(Some(Use { grant: g, taken }))
    }

    /// Removes a grant; `None` when there is no such grant.
    pub fn revoke(&self, id: &str) -> Result<Option<Grant>, GrantsError> {
        let mut live = self.lock();
        let Some(i) = live.iter().position(|g| g.id == id) else {
            return Ok(None);
        };
        self.store.del_grant(id)?;
        Ok(Some(live.remove(i)))
    }

    /// Grants whose time is up, still stored until their record is written
    /// (they match nothing meanwhile).
    pub fn expired(&self, now: DateTime<Utc>) -> Vec<Grant> {
        self.lock()
            .iter()
            .filter(|g| g.expired(now))
            .cloned()
            .collect()
    }

    /// Forgets an expired grant once its record is in the trail.
    pub fn forget(&self, id: &str) -> Result<(), GrantsError> {
        let mut live = self.lock();
        self.store.del_grant(id)?;
        live.retain(|g| g.id != id);
        Ok(())
    }

    /// Every grant still in force at `now`, oldest first.
    pub fn list(&self, now: DateTime<Utc>) -> Vec<Grant> {
        self.lock()
            .iter()
            .filter(|g| !g.expired(now))
            .cloned()
            .collect()
    }
}

fn to_json(g: &Grant) -> Result<String, GrantsError> {
    serde_json::to_string(g).map_err(|e| GrantsError::Corrupt {
        key: g.id.clone(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
