//! Time-boxed grants from `cordon approve --for 10m`: the same action by the
//! same delegation chain goes ahead without asking again until they expire.

use crate::glob::Glob;
use chrono::{DateTime, Utc};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantInfo {
    pub id: u64,
    pub chain: Vec<String>,
    pub action: String,
    pub until: DateTime<Utc>,
}

struct Grant {
    info: GrantInfo,
    action: Glob,
}

#[derive(Default)]
pub(crate) struct Grants {
    next: AtomicU64,
    list: RwLock<Vec<Grant>>,
}

impl Grants {
    pub(crate) fn add(
        &self,
        chain: &[String],
        action: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        if let Ok(mut list) = self.list.write() {
            list.retain(|g| g.info.until > now);
            list.push(Grant {
                info: GrantInfo {
                    id,
                    chain: chain.to_vec(),
                    action: action.to_string(),
                    until,
                },
                action: Glob::new(action),
            });
        }
        id
    }

    pub(crate) fn revoke(&self, id: u64) -> bool {
        self.list.write().is_ok_and(|mut list| {
            let before = list.len();
            list.retain(|g| g.info.id != id);
            list.len() != before
        })
    }

    /// The grant covering this chain and action at `now`, if any.
    pub(crate) fn find(&self, chain: &[String], action: &str, now: DateTime<Utc>) -> Option<u64> {
        let list = self.list.read().ok()?;
        list.iter()
            .find(|g| now < g.info.until && g.info.chain == chain && g.action.matches(action))
            .map(|g| g.info.id)
    }

    pub(crate) fn list(&self, now: DateTime<Utc>) -> Vec<GrantInfo> {
        self.list.read().map_or_else(
            |_| Vec::new(),
            |list| {
                list.iter()
                    .filter(|g| now < g.info.until)
                    .map(|g| g.info.clone())
                    .collect()
            },
        )
    }
}
