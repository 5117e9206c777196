//! Human approval: the agent's request is held open while an operator
//! decides. Pending approvals are persisted, so a daemon restart reports
//! them as expired (with an audit record) instead of losing them.
use std::{collections::HashMap, sync::Mutex, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use super::store::Store;
use crate::cgroup::AgentPath;

/// What the operator said.
#[derive(Debug, Clone)]
pub enum Answer {
    /// The held request goes ahead; any standing grant the operator gave
    /// with the answer is already in force.
    Approved {
        by: String,
    },
    Denied {
        by: String,
        reason: String,
    },
}

/// A pending approval as listed and persisted: everything an operator
/// needs to decide.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingInfo {
    pub id: String,
    pub agent: AgentPath,
    pub chain: String,
    pub action: String,
    pub params: Map<String, Value>,
    /// The rule that asked for a human, and why.
    pub rule: String,
    pub reason: String,
    /// The agent of the chain whose policy asked.
    #[serde(default)]
    pub decided_by: String,
    /// The vault entry that will be injected if the request goes ahead
    /// (its name; a value never leaves the vault).
    #[serde(default)]
    pub credential: Option<String>,
    pub created: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
}

/// What the request asking for a human is about.
pub struct Question<'a> {
    pub agent: &'a AgentPath,
    pub action: &'a str,
    pub params: &'a Map<String, Value>,
    pub rule: &'a str,
    pub reason: &'a str,
    pub decided_by: &'a str,
    pub credential: Option<String>,
    pub timeout: Duration,
}

pub struct Approvals {
    store: Store,
    pending: Mutex<HashMap<String, (PendingInfo, oneshot::Sender<Answer>)>>,
}

impl Approvals {
    pub fn new(store: Store) -> Approvals {
        Approvals {
            store,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Left over from a previous daemon: they can no longer be answered.
    pub fn take_orphans(&self) -> Vec<PendingInfo> {
        let rows = self.store.approvals().unwrap_or_default();
        let mut out = Vec::new();
        for (k, v) in rows {
            if let Ok(info) = serde_json::from_str::<PendingInfo>(&v) {
                out.push(info);
            }
            let _ = self.store.del_approval(&k);
        }
        out
    }

    /// Registers a request waiting for a human. Persisted before the caller
    /// starts waiting; a failure to persist is a refusal (fail closed).
    pub fn open(
        &self,
        q: Question<'_>,
    ) -> Result<(PendingInfo, oneshot::Receiver<Answer>), super::store::StoreError> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let id = loop {
            let id = format!("{:08x}", rand::random::<u32>());
            if !pending.contains_key(&id) {
                break id;
            }
        };
        let now = Utc::now();
        let info = PendingInfo {
            id: id.clone(),
            agent: q.agent.clone(),
            chain: q.agent.chain_display(),
            action: q.action.to_string(),
            params: q.params.clone(),
            rule: q.rule.to_string(),
            reason: q.reason.to_string(),
            decided_by: q.decided_by.to_string(),
            credential: q.credential,
            created: now,
            deadline: now
                + chrono::Duration::from_std(q.timeout).unwrap_or(chrono::Duration::minutes(5)),
        };
        self.store
            .put_approval(&id, &serde_json::to_string(&info).unwrap_or_default())?;
        let (tx, rx) = oneshot::channel();
        pending.insert(id, (info.clone(), tx));
        Ok((info, rx))
    }

    /// The pending approval `id`, still unanswered.
    pub fn get(&self, id: &str) -> Option<PendingInfo> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .map(|(i, _)| i.clone())
    }

    /// Delivers an answer; false when no such approval is pending.
    pub fn answer(&self, id: &str, answer: Answer) -> Option<PendingInfo> {
        let (info, tx) = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)?;
        let _ = self.store.del_approval(id);
        let _ = tx.send(answer);
        Some(info)
    }

    /// Forgets an approval whose requester stopped waiting (timeout).
    pub fn expire(&self, id: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        let _ = self.store.del_approval(id);
    }

    pub fn list(&self) -> Vec<PendingInfo> {
        let mut v: Vec<PendingInfo> = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|(i, _)| i.clone())
            .collect();
        v.sort_by_key(|i| i.created);
        v
    }

    /// Denies every pending approval of agents the predicate selects.
    pub fn deny_where(
        &self,
        matches: impl Fn(&AgentPath) -> bool,
        by: &str,
        reason: &str,
    ) -> usize {
        let ids: Vec<String> = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, (i, _))| matches(&i.agent))
            .map(|(k, _)| k.clone())
            .collect();
        for id in &ids {
            self.answer(
                id,
                Answer::Denied {
                    by: by.to_string(),
                    reason: reason.to_string(),
                },
            );
        }
        ids.len()
    }
}
