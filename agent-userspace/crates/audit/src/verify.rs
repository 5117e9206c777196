//! Walks the chain and names the first record that is not what was written.

use redb::{Database, ReadableDatabase};
use serde::Serialize;
use serde_json::Value;

use std::collections::BTreeSet;

use crate::canonical::{GENESIS_HASH, record_hash};
use crate::chunks::records_from;
use crate::error::{AuditError, DbContext};
use crate::outcome::promises_outcome;
use crate::record::{Decision, EventKind};
use crate::store::{
    ChainPoint, Checkpoint, META_CHECKPOINT, META_HEAD, decode_map, get_meta, open_meta,
    open_records,
};

/// Why a record fails verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The record's content does not match its own hash: it was edited.
    HashMismatch,
    /// A seq is missing: the record was deleted.
    Gap,
    /// The record's `prev_hash` is not the previous record's hash: records were reordered,
    /// inserted, or the previous record was edited and re-hashed.
    PrevHashMismatch,
    /// The record stored under this key carries a different `seq`: records were moved.
    SeqMismatch,
    /// The stored bytes are not a record.
    Malformed,
    /// The head marker says records past the last stored one were committed: the tail was cut.
    Truncated,
    /// The head marker names the last seq but with another hash.
    HeadMismatch,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The first seq that is wrong.
    pub seq: u64,
    pub kind: ProblemKind,
    pub detail: String,
}

/// How the forwarded exchanges in the verified records ended: outcome records by state, and
/// decisions that promised one and have none yet (in flight now, or left by a run whose
/// successor has not started).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeTally {
    pub completed: u64,
    pub failed: u64,
    pub aborted: u64,
    pub unknown: u64,
    /// Decisions still without an outcome, oldest first (at most `OPEN_LISTED` named).
    pub open: u64,
    pub open_seqs: Vec<u64>,
}

const OPEN_LISTED: usize = 20;

impl OutcomeTally {
    fn add(&mut self, map: &serde_json::Map<String, Value>, seq: u64, open: &mut BTreeSet<u64>) {
        let text = |k: &str| map.get(k).and_then(Value::as_str);
        let Some(kind) = text("kind").and_then(EventKind::parse) else {
            return;
        };
        if kind == EventKind::Outcome {
            if let Some(of) = map.get("decision_seq").and_then(Value::as_u64) {
                open.remove(&of);
            }
            match text("outcome") {
                Some("completed") => self.completed += 1,
                Some("failed") => self.failed += 1,
                Some("aborted") => self.aborted += 1,
                _ => self.unknown += 1,
            }
            return;
        }
        let decision = text("decision").and_then(Decision::parse);
        if promises_outcome(
            kind,
            decision,
            map.contains_key("http_method"),
            text("action"),
        ) {
            open.insert(seq);
        }
    }

    fn close(&mut self, open: BTreeSet<u64>) {
        self.open = open.len() as u64;
        self.open_seqs = open.into_iter().take(OPEN_LISTED).collect();
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Records checked (stops at the first problem).
    pub checked: u64,
    /// Set when retention pruned older records; verification started after it.
    pub checkpoint: Option<Checkpoint>,
    /// Last good position reached.
    pub last_good: Option<ChainPoint>,
    pub problem: Option<Problem>,
    /// Outcomes of the records verified (see [`OutcomeTally`]).
    pub outcomes: OutcomeTally,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// Verifies every `audit_*` record in `db`. `Err` only for storage failures; tampering is
/// reported in `VerifyReport::problem`.
pub fn verify(db: &Database) -> Result<VerifyReport, AuditError> {
    let txn = db.begin_read().ctx("begin read")?;
    let meta = open_meta(&txn)?;
    let checkpoint: Option<Checkpoint> = match &meta {
        Some(m) => get_meta(m, META_CHECKPOINT)?,
        None => None,
    };
    let head: Option<ChainPoint> = match &meta {
        Some(m) => get_meta(m, META_HEAD)?,
        None => None,
    };
    let mut report = VerifyReport {
        checked: 0,
        checkpoint: checkpoint.clone(),
        last_good: checkpoint.as_ref().map(|c| ChainPoint {
            seq: c.seq,
            hash: c.hash.clone(),
        }),
        problem: None,
        outcomes: OutcomeTally::default(),
    };
    let mut open = BTreeSet::new();
    let mut expected_seq = checkpoint.as_ref().map_or(1, |c| c.seq + 1);
    let mut expected_prev = checkpoint
        .as_ref()
        .map_or_else(|| GENESIS_HASH.to_string(), |c| c.hash.clone());

    if let Some(records) = open_records(&txn)? {
        for entry in records_from(&records, 0)? {
            let found = match entry {
                Ok((key, bytes)) => check_one(key, &bytes, expected_seq, &expected_prev)
                    .map_or(Ok((key, bytes)), Err),
                // A chunk whose framing is broken: the record there cannot be read.
                Err(AuditError::Corrupt { reason, .. }) => Err(Problem {
                    seq: expected_seq,
                    kind: ProblemKind::Malformed,
                    detail: reason,
                }),
                Err(e) => return Err(e),
            };
            let (key, bytes) = match found {
                Ok(record) => record,
                Err(problem) => {
                    report.problem = Some(problem);
                    report.outcomes.close(open);
                    return Ok(report);
                }
            };
            let map = decode_map(key, &bytes)?;
            report.outcomes.add(&map, key, &mut open);
            let hash = map
                .get("hash")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            expected_prev.clone_from(&hash);
            expected_seq = key + 1;
            report.checked += 1;
            report.last_good = Some(ChainPoint { seq: key, hash });
        }
    }
    report.problem = check_head(head.as_ref(), report.last_good.as_ref(), expected_seq);
    report.outcomes.close(open);
    Ok(report)
}

fn problem(seq: u64, kind: ProblemKind, detail: String) -> Option<Problem> {
    Some(Problem { seq, kind, detail })
}

/// Checks one stored record against the position it should occupy.
pub(crate) fn check_one(
    key: u64,
    bytes: &[u8],
    expected_seq: u64,
    expected_prev: &str,
) -> Option<Problem> {
    if key > expected_seq {
        let detail = format!("record {expected_seq} is missing (next stored record is {key})");
        return problem(expected_seq, ProblemKind::Gap, detail);
    }
    if key < expected_seq {
        let detail = format!("record {key} lies before the retention checkpoint");
        return problem(key, ProblemKind::SeqMismatch, detail);
    }
    let map = match decode_map(key, bytes) {
        Ok(map) => map,
        Err(e) => return problem(key, ProblemKind::Malformed, e.to_string()),
    };
    let field_seq = map.get("seq").and_then(Value::as_u64);
    if field_seq != Some(key) {
        let detail = format!("stored under {key} but its seq field is {field_seq:?}");
        return problem(key, ProblemKind::SeqMismatch, detail);
    }
    let stored = map.get("hash").and_then(Value::as_str).unwrap_or_default();
    let actual = record_hash(&map);
    if stored != actual {
        let detail = format!("content hashes to {actual} but the record says {stored}");
        return problem(key, ProblemKind::HashMismatch, detail);
    }
    let prev = map
        .get("prev_hash")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if prev != expected_prev {
        let detail = format!("prev_hash {prev} but the previous record's hash is {expected_prev}");
        return problem(key, ProblemKind::PrevHashMismatch, detail);
    }
    None
}

fn check_head(
    head: Option<&ChainPoint>,
    last: Option<&ChainPoint>,
    next_seq: u64,
) -> Option<Problem> {
    let head = head?;
    let last_seq = last.map_or(0, |l| l.seq);
    if head.seq > last_seq {
        let detail = format!(
            "head marker says record {} was committed; the log ends at {last_seq}",
            head.seq
        );
        return problem(next_seq, ProblemKind::Truncated, detail);
    }
    if let Some(last) = last
        && head.seq == last.seq
        && head.hash != last.hash
    {
        let detail = format!("head marker hash {} differs from the record's", head.hash);
        return problem(last.seq, ProblemKind::HeadMismatch, detail);
    }
    None
}
