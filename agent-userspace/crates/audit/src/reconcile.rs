//! At daemon start, every decision that promised an outcome (see [`expects_outcome`]) but has
//! none gets one: the previous daemon stopped, crashed or was killed while the exchange was in
//! flight, or before its outcome was written. A clean stop (the writer's `clean_stop` mark is
//! the newest record) cut the exchange: `aborted`. Anything else cannot be told: `unknown`.
//!
//! A run with outcomes off (`AuditConfig::outcomes`) says so on the mark it writes at its
//! start, and the next start gives the decisions after it nothing: they never expected one.
//!
//! Only records after the `outcomes` mark are read, so a start does not rescan the whole log;
//! the mark moves once the new outcome records are written. Outcomes always follow their
//! decisions, so the records after the mark hold every outcome a decision after it can have.

use std::collections::HashSet;

use redb::Database;

use crate::error::AuditError;
use crate::log::AuditLog;
use crate::outcome::{Outcome, expects_outcome};
use crate::query::iter_from;
use crate::record::{EventKind, OutcomeState};
use crate::store::{
    META_CLEAN_STOP, META_OUTCOMES, SeqMark, read_claimed_head, read_mark, write_seq_mark,
};

/// Written as the `error` of an outcome given at start.
pub const REASON_ABORTED: &str =
    "the daemon stopped while this exchange was in flight (or before its outcome was written)";
pub const REASON_CRASHED: &str = "the daemon ended without a clean stop (crash or kill) while this exchange was in flight; whether the upstream answered is not known";
pub const REASON_LEGACY: &str = "decided before Cordon recorded outcomes";

/// What a start found and wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReconcileReport {
    /// Records after this seq were read.
    pub after_seq: u64,
    /// The newest record when the scan ran; the `outcomes` mark now.
    pub head_seq: u64,
    /// Decisions given an outcome now, and which.
    pub marked: Vec<u64>,
    pub state: Option<OutcomeState>,
    /// The outcomes written (for metrics: they are outcomes like any other).
    pub written: Vec<Outcome>,
}

/// The outcomes to write: decisions after `after` that expect one and have none.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub after: u64,
    pub head: u64,
    pub state: OutcomeState,
    pub reason: &'static str,
    /// The outcomes to write, with the who and what of their decisions.
    pub missing: Vec<Outcome>,
}

/// How an unanswered decision ended, from what the last run left behind.
pub(crate) fn state_for(
    outcomes_mark: Option<u64>,
    clean_stop: Option<u64>,
    head: u64,
) -> (OutcomeState, &'static str) {
    match outcomes_mark {
        None => (OutcomeState::Unknown, REASON_LEGACY),
        Some(_) if clean_stop == Some(head) => (OutcomeState::Aborted, REASON_ABORTED),
        Some(_) => (OutcomeState::Unknown, REASON_CRASHED),
    }
}

/// Reads what a start needs to decide (blocking: redb reads).
pub(crate) fn plan(db: &Database) -> Result<Plan, AuditError> {
    let outcomes_mark = read_mark(db, META_OUTCOMES)?;
    let mark = outcomes_mark.map(|m| m.seq);
    let clean = read_mark(db, META_CLEAN_STOP)?.map(|m| m.seq);
    let head = read_claimed_head(db)?.seq;
    let (state, reason) = state_for(mark, clean, head);
    let after = mark.unwrap_or(0);
    if outcomes_mark.is_some_and(|m| m.off) {
        // The last run recorded no outcomes: its decisions expect none.
        return Ok(Plan {
            after,
            head,
            state,
            reason,
            missing: Vec::new(),
        });
    }
    let mut answered = HashSet::new();
    let mut promised = Vec::new();
    for r in iter_from(db, after + 1)? {
        let r = r?;
        if r.seq > head {
            break;
        }
        if r.kind == EventKind::Outcome {
            answered.extend(r.decision_seq);
        } else if expects_outcome(&r) {
            let o = Outcome {
                error: Some(reason.to_string()),
                ..Outcome::of(r.seq, &r.record, state)
            };
            promised.push(o);
        }
    }
    promised.retain(|o| !answered.contains(&o.decision_seq));
    Ok(Plan {
        after,
        head,
        state,
        reason,
        missing: promised,
    })
}

/// Gives every unanswered decision its `aborted`/`unknown` outcome, then moves the mark. Call
/// it once at start, after `AuditLog::open` and before any request is forwarded. An `Err`
/// (the records could not be written) leaves the mark, so the next start tries again.
pub async fn reconcile_outcomes(log: &AuditLog) -> Result<ReconcileReport, AuditError> {
    log.settled().await;
    let db = log.database().clone();
    let plan = tokio::task::spawn_blocking(move || plan(&db))
        .await
        .map_err(|_| AuditError::WriterGone)??;
    // Submitted in slices the queue can take, each awaited before the next.
    let slice = (log.metrics().queue_capacity / 4).clamp(1, 512);
    for part in plan.missing.chunks(slice) {
        let waits: Vec<_> = part
            .iter()
            .map(|o| log.append(&o.clone().into_record()))
            .collect();
        for w in waits {
            w.await?;
        }
    }
    let db = log.database().clone();
    let mark = SeqMark {
        seq: plan.head,
        off: !log.records_outcomes(),
    };
    tokio::task::spawn_blocking(move || write_seq_mark(&db, META_OUTCOMES, mark))
        .await
        .map_err(|_| AuditError::WriterGone)??;
    if !plan.missing.is_empty() {
        tracing::warn!(
            decisions = plan.missing.len(),
            state = plan.state.as_str(),
            "decisions without an outcome were given one: {}",
            plan.reason
        );
    }
    Ok(ReconcileReport {
        after_seq: plan.after,
        head_seq: plan.head,
        marked: plan.missing.iter().map(|o| o.decision_seq).collect(),
        state: (!plan.missing.is_empty()).then_some(plan.state),
        written: plan.missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_stop_decides_between_aborted_and_unknown() {
        assert_eq!(
            state_for(None, None, 10),
            (OutcomeState::Unknown, REASON_LEGACY)
        );
        assert_eq!(
            state_for(Some(4), Some(10), 10),
            (OutcomeState::Aborted, REASON_ABORTED)
        );
        // Records after the clean-stop mark: a later run wrote them and did not stop cleanly.
        assert_eq!(
            state_for(Some(4), Some(8), 10),
            (OutcomeState::Unknown, REASON_CRASHED)
        );
        assert_eq!(
            state_for(Some(4), None, 10),
            (OutcomeState::Unknown, REASON_CRASHED)
        );
    }
}
