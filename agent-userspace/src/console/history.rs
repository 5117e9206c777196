//! Which policy was in force when: from the trail alone. Every reload
//! leaves a `policy.reload` record naming the version it put in force (or
//! kept), so "what could this agent do when this happened?" is answered by
//! the last accepted reload before that moment; before any reload, by the
//! version the first records were decided under. Later decision records
//! are not used: a request held across a reload is decided under the
//! version it started in, which is no longer the one in force.
use chrono::{DateTime, Utc};
use cordon_audit::{AuditRecord, Decision, EventKind};
use serde::Serialize;

/// One reload attempt: accepted (the version went into force) or rejected
/// (the version named stayed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub seq: u64,
    pub ts: DateTime<Utc>,
    pub version: String,
    pub accepted: bool,
    pub reason: String,
}

/// What the history view shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct History {
    pub changes: Vec<Change>,
    /// The version in force at the asked moment, when the trail says.
    pub at: Option<String>,
}

/// Folds records (oldest first) into the reload history and the version
/// in force at `at`.
pub fn fold<'a>(
    records: impl IntoIterator<Item = &'a AuditRecord>,
    at: Option<DateTime<Utc>>,
) -> History {
    let mut h = History::default();
    for r in records {
        let before_at = at.is_some_and(|at| r.ts <= at);
        let reloaded = r.kind == EventKind::PolicyReload && r.decision == Some(Decision::Allow);
        if before_at
            && let Some(v) = &r.policy_version
            && (reloaded || h.at.is_none())
        {
            h.at = Some(v.clone());
        }
        if r.kind == EventKind::PolicyReload {
            h.changes.push(Change {
                seq: r.seq,
                ts: r.ts,
                version: r.policy_version.clone().unwrap_or_default(),
                accepted: r.decision == Some(Decision::Allow),
                reason: r.reason.clone().unwrap_or_default(),
            });
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use cordon_audit::NewRecord;

    use super::*;

    fn rec(seq: u64, minute: u32, kind: EventKind, version: &str, ok: bool) -> AuditRecord {
        AuditRecord {
            seq,
            ts: format!("2026-01-01T10:{minute:02}:00Z").parse().unwrap(),
            record: NewRecord {
                policy_version: Some(version.into()),
                decision: Some(if ok { Decision::Allow } else { Decision::Deny }),
                reason: Some(format!("r{seq}")),
                ..NewRecord::new(kind)
            },
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn the_version_in_force_at_a_moment_is_the_last_one_before_it() {
        let trail = [
            rec(1, 0, EventKind::Request, "v1", true),
            rec(2, 10, EventKind::PolicyReload, "v2", true),
            rec(3, 20, EventKind::Request, "v2", false),
            // Held across the reload: decided under the version it began in.
            rec(6, 21, EventKind::Request, "v1", true),
            // Rejected: names the version that stayed.
            rec(4, 30, EventKind::PolicyReload, "v2", false),
            rec(5, 40, EventKind::PolicyReload, "v3", true),
        ];
        let at = |m: u32| {
            fold(
                &trail,
                Some(format!("2026-01-01T10:{m:02}:00Z").parse().unwrap()),
            )
            .at
        };
        assert_eq!(at(5).as_deref(), Some("v1"));
        assert_eq!(at(10).as_deref(), Some("v2"));
        assert_eq!(at(25).as_deref(), Some("v2"), "a held request says v1");
        assert_eq!(at(35).as_deref(), Some("v2"));
        assert_eq!(at(59).as_deref(), Some("v3"));
        let before = fold(&trail, Some("2025-12-31T00:00:00Z".parse().unwrap()));
        assert_eq!(before.at, None, "nothing recorded before then");
    }

    #[test]
    fn reloads_are_listed_with_whether_they_took_effect() {
        let trail = [
            rec(1, 0, EventKind::Request, "v1", true),
            rec(2, 10, EventKind::PolicyReload, "v2", true),
            rec(3, 30, EventKind::PolicyReload, "v2", false),
        ];
        let h = fold(&trail, None);
        assert_eq!(h.at, None);
        let summary: Vec<(u64, &str, bool)> = h
            .changes
            .iter()
            .map(|c| (c.seq, c.version.as_str(), c.accepted))
            .collect();
        assert_eq!(summary, [(2, "v2", true), (3, "v2", false)]);
    }
}
