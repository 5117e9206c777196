//! Reading committed records back: iteration from a seq, filters for `cordon audit tail`, and
//! the human one-line rendering.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use redb::{Database, ReadableDatabase};
use serde_json::Value;

use crate::chunks::{StoredRecords, records_from};
use crate::error::{AuditError, DbContext};
use crate::outcome::outcome_summary;
use crate::record::{AuditRecord, Decision, EventKind, format_ts};
use crate::store::{decode, open_records};

/// Iterator over committed records in seq order, reading one consistent snapshot.
pub struct RecordIter {
    records: Option<StoredRecords>,
}

impl Iterator for RecordIter {
    type Item = Result<AuditRecord, AuditError>;

    fn next(&mut self) -> Option<Self::Item> {
        let entry = self.records.as_mut()?.next()?;
        Some(entry.and_then(|(seq, bytes)| decode(seq, &bytes)))
    }
}

/// Committed records with seq >= `seq`, oldest first (empty if the log was never written).
pub fn iter_from(db: &Database, seq: u64) -> Result<RecordIter, AuditError> {
    let txn = db.begin_read().ctx("begin read")?;
    let records = match open_records(&txn)? {
        Some(t) => Some(records_from(&t, seq)?),
        None => None,
    };
    Ok(RecordIter { records })
}

/// Which records to show. Empty fields match everything; time bounds are inclusive `since`,
/// exclusive `until`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub agent: Option<String>,
    pub decision: Option<Decision>,
    pub kind: Option<EventKind>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl Filter {
    pub fn matches(&self, r: &AuditRecord) -> bool {
        if let Some(agent) = &self.agent
            && r.record.agent.as_deref() != Some(agent.as_str())
        {
            return false;
        }
        if self.decision.is_some() && r.record.decision != self.decision {
            return false;
        }
        if self.kind.is_some_and(|k| k != r.record.kind) {
            return false;
        }
        if self.since.is_some_and(|s| r.ts < s) {
            return false;
        }
        if self.until.is_some_and(|u| r.ts >= u) {
            return false;
        }
        true
    }
}

/// Records from `seq` on that pass `filter`.
pub fn query(
    db: &Database,
    from_seq: u64,
    filter: Filter,
) -> Result<impl Iterator<Item = Result<AuditRecord, AuditError>>, AuditError> {
    Ok(iter_from(db, from_seq)?.filter(move |r| r.as_ref().map_or(true, |r| filter.matches(r))))
}

/// One line for humans:
/// `#42 2025-05-01T12:00:00.123456Z DENY request deploy-bot github.branch.delete
/// {"branch":"main"} rule=no-main-delete policy=v7 reason="protected branch" 1.2ms`
pub fn format_line(r: &AuditRecord) -> String {
    let rec = &r.record;
    let mut line = format!("#{} {} ", r.seq, format_ts(&r.ts));
    if rec.kind == EventKind::Outcome {
        return outcome_line(line, rec);
    }
    let verdict = rec.decision.map_or("-", Decision::as_str).to_uppercase();
    let _ = write!(line, "{verdict} {}", rec.kind.as_str());
    let who = match (&rec.agent, &rec.chain) {
        (Some(a), Some(c)) => format!("{a}[{c}]"),
        (Some(a), None) => a.clone(),
        (None, Some(c)) => format!("[{c}]"),
        (None, None) => "-".into(),
    };
    let _ = write!(line, " {who}");
    if let Some(action) = &rec.action {
        let _ = write!(line, " {action}");
    } else if let Some(host) = &rec.dst_host {
        let _ = write!(line, " {host}");
    }
    if let Some(port) = rec.dst_port.filter(|_| rec.action.is_none()) {
        let _ = write!(line, ":{port}");
    }
    if !rec.params.is_empty() {
        let _ = write!(line, " {}", Value::Object(rec.params.clone()));
    }
    if let Some(rule) = &rec.rule {
        let _ = write!(line, " rule={rule}");
    }
    // Learn mode: allowed, but not by the rule shown.
    if let Some(w) = rec.would {
        let _ = write!(line, " would={}", w.as_str());
    }
    if let Some(v) = &rec.policy_version {
        let _ = write!(line, " policy={v}");
    }
    if let Some(a) = &rec.approver {
        let _ = write!(line, " approver={a}");
    }
    if let Some(s) = rec.upstream_status {
        let _ = write!(line, " status={s}");
    }
    if let Some(reason) = &rec.reason {
        let _ = write!(line, " reason={reason:?}");
    }
    if let Some(us) = rec.total_latency_us.or(rec.decision_latency_us) {
        let _ = write!(line, " {:.1}ms", us as f64 / 1000.0);
    }
    line
}

/// A decision's line with its outcome inline (`... 0.1ms → 201 in 84 ms`), as `audit tail`
/// shows a decision whose outcome it has read.
pub fn format_line_with_outcome(decision: &AuditRecord, outcome: Option<&AuditRecord>) -> String {
    let mut line = format_line(decision);
    if let Some(o) = outcome {
        let _ = write!(line, " {}", outcome_summary(o));
    }
    line
}

/// `#57 <ts> OUTCOME bot[orch/bot] github.pr.create of=#42 → 201 in 84 ms (...)`
fn outcome_line(mut line: String, rec: &crate::record::NewRecord) -> String {
    line.push_str("OUTCOME");
    match (&rec.agent, &rec.chain) {
        (Some(a), Some(c)) => {
            let _ = write!(line, " {a}[{c}]");
        }
        (Some(a), None) => {
            let _ = write!(line, " {a}");
        }
        _ => {}
    }
    if let Some(action) = &rec.action {
        let _ = write!(line, " {action}");
    }
    if let Some(of) = rec.decision_seq {
        let _ = write!(line, " of=#{of}");
    }
    let _ = write!(line, " {}", outcome_summary(rec));
    line
}

/// One record as a single JSON line (the stored form, keys sorted).
pub fn to_json_line(r: &AuditRecord) -> Result<String, AuditError> {
    let value = serde_json::to_value(r).map_err(AuditError::Serialize)?;
    let mut bytes = Vec::with_capacity(512);
    crate::canonical::write_value(&value, &mut bytes);
    String::from_utf8(bytes).map_err(|e| AuditError::Corrupt {
        table: "audit_records",
        key: r.seq.to_string(),
        reason: e.to_string(),
    })
}
