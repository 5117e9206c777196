//! What `list` reports about a secret, and the usage bookkeeping kept beside each record.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Everything about a secret except its value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecretInfo {
    pub name: String,
    pub kind: String,
    pub version: u64,
    pub created: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
    pub last_used: Option<DateTime<Utc>>,
    /// Agents that have had this secret injected, sorted.
    pub used_by: Vec<String>,
    /// Set when the stored record cannot even be parsed; `get` will fail for it. `list` does
    /// not decrypt, so an authentic-looking header is not proof the record opens.
    pub problem: Option<String>,
}

/// JSON value of `vault_usage[name]`. Not sealed: it is bookkeeping, never used for decisions.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct Usage {
    pub last_used_ms: Option<i64>,
    pub used_by: Vec<String>,
}

/// Bounds the list so a misbehaving caller cannot grow a record without limit.
const MAX_AGENTS: usize = 1024;

impl Usage {
    pub fn decode(bytes: &[u8]) -> Usage {
        serde_json::from_slice(bytes).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "ignoring malformed vault usage entry");
            Usage::default()
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn record(&mut self, agent: &str, now_ms: i64) {
        self.last_used_ms = Some(now_ms);
        if let Err(pos) = self.used_by.binary_search_by(|a| a.as_str().cmp(agent))
            && self.used_by.len() < MAX_AGENTS
        {
            self.used_by.insert(pos, agent.to_owned());
        }
    }
}

pub(crate) fn from_ms(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}
