//! Containment paths from `contain.refused` records: what the agent was
//! refused by the allowlists (`contain:write`, `contain:unix`) becomes a
//! `write` or `unix_sockets` entry. Refusals of the deny list, of Cordon's
//! own files and of credentials are never proposed; reads are only noted,
//! because `read` replaces the default list rather than adding to it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cordon_audit::{AuditRecord, EventKind};
use serde_json::Value;

/// One proposed path with its evidence.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seen {
    pub count: usize,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ContainProposal {
    pub write: BTreeMap<String, Seen>,
    pub unix_sockets: BTreeMap<String, Seen>,
    /// Refused reads, for the reviewer.
    pub reads: BTreeMap<String, Seen>,
}

impl ContainProposal {
    pub fn is_empty(&self) -> bool {
        self.write.is_empty() && self.unix_sockets.is_empty() && self.reads.is_empty()
    }
}

pub fn propose(
    records: &[AuditRecord],
    agent: &str,
    since: Option<DateTime<Utc>>,
) -> ContainProposal {
    let mut p = ContainProposal::default();
    for rec in records {
        if rec.kind != EventKind::ContainRefused
            || rec.agent.as_deref() != Some(agent)
            || since.is_some_and(|s| rec.ts < s)
        {
            continue;
        }
        let Some(path) = rec.params.get("path").and_then(Value::as_str) else {
            continue;
        };
        // A path a policy cannot name exactly (relative, `..`, glob
        // characters) would allow something else: never proposed.
        if !path.starts_with('/') || path.contains("..") || path.contains(['*', '?', '[']) {
            continue;
        }
        let list = match rec.rule.as_deref() {
            Some("contain:write") => &mut p.write,
            Some("contain:unix") => &mut p.unix_sockets,
            Some("contain:read") => &mut p.reads,
            _ => continue,
        };
        let seen = list.entry(path.to_string()).or_insert(Seen {
            count: 0,
            first: rec.ts,
            last: rec.ts,
        });
        seen.count += 1;
        seen.first = seen.first.min(rec.ts);
        seen.last = seen.last.max(rec.ts);
    }
    p
}
