//! Which audit records are evidence for a proposed policy, and how they are
//! grouped into rules: one group per action and per way its destination is
//! named (by DNS name, by address only, or not at all). Requests and flows
//! to a name are grouped per name, so what was seen at one host (a path, a
//! port) is not allowed at another; DNS queries share one rule.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cordon_audit::{AuditRecord, Decision, EventKind};
use serde_json::Value;

/// How the actions of a group name where they went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dest {
    /// No destination in the params (a connector action).
    None,
    /// A DNS name: `params.host`, or `params.name` for `dns.query`.
    Named,
    /// Only an address: `params.ip` (a flow whose name was not resolved).
    Addressed,
}

/// The observed actions one proposed rule stands for.
#[derive(Debug)]
pub struct Group<'a> {
    pub action: &'a str,
    pub dest: Dest,
    /// The one destination name of the group, when it is grouped per name.
    pub host: Option<String>,
    pub records: Vec<&'a AuditRecord>,
}

impl Group<'_> {
    pub fn first(&self) -> DateTime<Utc> {
        self.records.iter().map(|r| r.ts).min().unwrap_or_default()
    }

    pub fn last(&self) -> DateTime<Utc> {
        self.records.iter().map(|r| r.ts).max().unwrap_or_default()
    }
}

/// Kinds that record an action an agent took through the proxy or resolver.
const ACTION_KINDS: [EventKind; 3] = [
    EventKind::Request,
    EventKind::TcpConnect,
    EventKind::DnsQuery,
];

/// Whether `rec` is an action of `agent` that went ahead (allowed, or let
/// through by learn mode). Refused actions (denied, killed, timed-out
/// approvals) are never evidence: a proposal must not allow them.
pub fn went_ahead(rec: &AuditRecord, agent: &str, since: Option<DateTime<Utc>>) -> bool {
    ACTION_KINDS.contains(&rec.kind)
        && rec.decision == Some(Decision::Allow)
        && rec.agent.as_deref() == Some(agent)
        && rec.action.is_some()
        && since.is_none_or(|s| rec.ts >= s)
}

/// The name an action's destination goes by, when it has one.
pub fn dest_name<'a>(action: &str, rec: &'a AuditRecord) -> Option<&'a str> {
    let key = if action == "dns.query" {
        "name"
    } else {
        "host"
    };
    rec.params
        .get(key)
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
}

/// A name as `hosts` matches it: case-folded, without a trailing dot.
pub fn normal_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn dest_of(action: &str, rec: &AuditRecord) -> Dest {
    if dest_name(action, rec).is_some() {
        Dest::Named
    } else if rec.params.get("ip").and_then(Value::as_str).is_some() {
        Dest::Addressed
    } else {
        Dest::None
    }
}

/// The groups, ordered by action name then destination kind, so the same
/// records always give the same rules in the same order.
pub fn groups<'a>(
    records: &'a [AuditRecord],
    agent: &str,
    since: Option<DateTime<Utc>>,
) -> Vec<Group<'a>> {
    let mut by: BTreeMap<(&str, Dest, Option<String>), Vec<&AuditRecord>> = BTreeMap::new();
    for rec in records.iter().filter(|r| went_ahead(r, agent, since)) {
        let Some(action) = rec.action.as_deref() else {
            continue;
        };
        let dest = dest_of(action, rec);
        let host = match dest {
            Dest::Named if action != "dns.query" => dest_name(action, rec).map(normal_name),
            _ => None,
        };
        by.entry((action, dest, host)).or_default().push(rec);
    }
    by.into_iter()
        .map(|((action, dest, host), mut records)| {
            records.sort_by_key(|r| r.seq);
            Group {
                action,
                dest,
                host,
                records,
            }
        })
        .collect()
}
