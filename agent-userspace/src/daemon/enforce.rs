//! The daemon's answer to `Decider`: policy under the request's pinned
//! snapshot, then the decision record, approval waits, grants and automatic
//! kills. The proxy and the resolver ask through the trait and act only on
//! its answer.
use std::sync::Arc;

use cordon_audit::{Decision as AuditDecision, EventKind, NewRecord};
use cordon_policy::{Decision, Enforcement, HttpInfo, Verdict};
use futures::future::BoxFuture;
use serde_json::Value;

use super::{
    Shared,
    approvals::{Answer as Human, Question},
};
use crate::{
    killswitch::Scope,
    request::{
        Answer, Ask, Attribution, Decider, Kind, Pinned, Recorded, Refusal,
        record::{DecisionRecord, append, record_refusal},
    },
};

/// The daemon as the request path's decider.
pub struct DaemonDecider(pub Shared);

impl Decider for DaemonDecider {
    fn decide<'a>(&'a self, pinned: &'a Pinned, ask: Ask<'a>) -> BoxFuture<'a, Answer> {
        Box::pin(decide_and_record(&self.0, pinned, ask))
    }
}

pub async fn decide_and_record(d: &Shared, pinned: &Pinned, ask: Ask<'_>) -> Answer {
    let agent = &ask.actor.agent;
    if let Some(c) = ask.connector
        && super::kill::connector_blocked(d, agent, c)
    {
        let cut = Refusal::new(
            Kind::ConnectorCut,
            format!("connector {c} is cut off for this agent (cordon kill --connector)"),
            Attribution::cordon(pinned.version().clone()),
        );
        let recorded = Box::pin(record_refusal(
            &d.audit,
            &ask,
            Some(EventKind::Request),
            cut,
        ));
        return Answer::Refuse(recorded.await);
    }
    let started_at = d.registry.started_at(agent);
    let http = ask.http.map(|(method, path)| HttpInfo {
        method,
        host: ask.host.unwrap_or(""),
        path,
    });
    let mut outcome = d
        .policy
        .decide_pinned(pinned, agent, started_at, ask.action, ask.params, http);
    // A standing grant answers for the human: its use is counted and
    // recorded before the decision is. The paths only some decisions take
    // (grants, refusals' records, kills, approvals) are boxed where they are
    // awaited: inline, they made every decision's future 3.2 KB, which each
    // request allocates and copies when the decider boxes it.
    let lifted = if super::grants::lifecycle::liftable(&outcome) {
        Box::pin(super::grants::lifecycle::lift(d, pinned, &ask, &outcome)).await
    } else {
        Ok(None)
    };
    match lifted {
        Ok(Some(granted)) => {
            outcome.decision = granted;
            outcome.enforcement = Enforcement::Allow;
        }
        Ok(None) => {}
        Err(refused) => {
            let refused = Box::pin(record_refusal(&d.audit, &ask, None, refused)).await;
            return Answer::Refuse(refused);
        }
    }
    let kind = if outcome.envelope.is_some() {
        EventKind::EnvelopeExceeded
    } else if outcome.limit.is_some() && outcome.enforcement != Enforcement::Allow {
        EventKind::LimitHit
    } else {
        ask.kind
    };
    d.stats
        .count(agent, outcome.enforcement == Enforcement::Allow);
    // Every decision is in the audit trail; the log line is for debugging
    // (at info level it was one line per request under load), and its
    // params copy is only made when the line is written.
    if tracing::enabled!(tracing::Level::DEBUG) {
        let shown_params = Value::Object(ask.params.clone());
        tracing::debug!(
            agent = %agent.chain_display(),
            instance = agent.instance(),
            pid = ask.actor.origin.pid,
            action = ask.action,
            params = %shown_params,
            decision = outcome.decision.verdict.name(),
            enforcement = ?outcome.enforcement,
            rule = %outcome.decision.rule_id,
            "decision"
        );
    }
    let metrics = crate::metrics::global();
    metrics.observe_decision(ask.started.elapsed());
    metrics.record_request(
        &agent.chain_display(),
        ask.action,
        match outcome.enforcement {
            Enforcement::Allow => AuditDecision::Allow,
            Enforcement::Approve { .. } => AuditDecision::Pending,
            _ => AuditDecision::Deny,
        },
    );
    let mut rec = build(&ask, &outcome.decision, kind, None);
    rec.would = outcome.would.as_ref().and_then(|w| would(w.verdict));
    let audit_id = match append(&d.audit, rec).await {
        Ok(id) => id,
        Err(e) => return Answer::Refuse(audit_unavailable(pinned, &e)),
    };
    let refused = |decision: &Decision| {
        Answer::Refuse(Refusal::of_policy(decision).recorded(Recorded::Yes(audit_id)))
    };
    match outcome.enforcement {
        Enforcement::Allow => Answer::Allow { audit_id },
        Enforcement::Deny => refused(&outcome.decision),
        Enforcement::Kill { reason } => {
            // Contain the run before answering, through the same path as
            // `cordon kill AGENT/ID`: once the agent reads this refusal it
            // is already frozen.
            let killed =
                super::kill::kill(d, Scope::Run(agent.clone()), &reason, "cordon (automatic)");
            if let Err(e) = Box::pin(killed).await {
                tracing::error!("automatic kill failed: {e}");
            }
            refused(&outcome.decision)
        }
        Enforcement::Approve { timeout } => {
            // The grant's record is the decision the request goes out
            // under: its outcome links to it.
            match Box::pin(wait_for_human(d, pinned, &ask, &outcome.decision, timeout)).await {
                Ok(granted) => Answer::Allow { audit_id: granted },
                Err(r) => Answer::Refuse(r),
            }
        }
    }
}

async fn wait_for_human(
    d: &Shared,
    pinned: &Pinned,
    ask: &Ask<'_>,
    decision: &Decision,
    timeout: std::time::Duration,
) -> Result<u64, Refusal> {
    let agent = &ask.actor.agent;
    let cordon = || Attribution::cordon(pinned.version().clone());
    let credential = crate::proxy::credential_entry(
        pinned,
        agent.agent(),
        ask.connector,
        ask.host.unwrap_or(""),
        ask.action,
        ask.params,
    );
    // Held while the request waits: an agent at its cap of pending
    // approvals is refused (429) rather than queueing more for a human.
    let limits = super::caps::admit::limits_pinned(d, pinned, agent);
    let _waiting = match d.caps.approval(agent, limits, std::time::Instant::now()) {
        Ok(permit) => permit,
        Err(hit) => {
            return Err(crate::request::caps::record(
                &d.audit,
                ask,
                &hit,
                pinned.version().clone(),
            )
            .await);
        }
    };
    let (info, rx) = d
        .approvals
        .open(Question {
            agent,
            action: ask.action,
            params: ask.params,
            rule: &decision.rule_id,
            reason: &decision.reason,
            decided_by: &decision.decided_by,
            credential,
            timeout,
        })
        .map_err(|e| {
            Refusal::new(
                Kind::ApprovalUnavailable,
                format!("cannot record the approval request: {e}"),
                cordon(),
            )
        })?;
    // An approval a human could answer but the trail never asked for
    // would leave a grant without its question: withdraw it instead.
    let requested = build(
        ask,
        decision,
        EventKind::ApprovalRequested,
        Some(AuditDecision::Pending),
    );
    if let Err(e) = append(&d.audit, requested).await {
        d.approvals.expire(&info.id);
        return Err(audit_unavailable(pinned, &e));
    }
    super::webhook::notify(d, &info);
    tracing::info!(id = %info.id, agent = %info.chain, action = %info.action, "waiting for approval");
    // A human's "no", a lost request and a timeout are refusals under the
    // rule that asked, attributed to the agent whose policy asked.
    let policy_refusal = |reason: String| {
        Refusal::new(
            Kind::Policy {
                rule: decision.rule_id.clone(),
                source: decision.source,
            },
            reason,
            Attribution::of(decision),
        )
    };
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(Human::Approved { by })) => {
            let granted = Decision {
                verdict: Verdict::Allow,
                rule_id: decision.rule_id.clone(),
                reason: Arc::from(format!("approved by {by}")),
                ..decision.clone()
            };
            // Recorded before anything is granted: a grant that is not in
            // the trail is neither forwarded nor kept as a standing grant.
            let mut rec = build(
                ask,
                &granted,
                EventKind::ApprovalGranted,
                Some(AuditDecision::Allow),
            );
            rec.approver = Some(by);
            granted_outcome(append(&d.audit, rec).await, pinned)
        }
        Ok(Ok(Human::Denied { by, reason })) => {
            let denied = policy_refusal(format!("denied by {by}: {reason}"));
            let mut rec = build(
                ask,
                denied.decision(),
                EventKind::ApprovalDenied,
                Some(AuditDecision::Deny),
            );
            rec.approver = Some(by);
            let recorded = match crate::request::record::append_refusal(&d.audit, rec).await {
                Some(id) => Recorded::Yes(id),
                None => Recorded::Failed,
            };
            Err(denied.recorded(recorded))
        }
        Ok(Err(_)) => {
            let lost = policy_refusal("approval lost: the daemon dropped the request".into());
            Err(record_refusal(&d.audit, ask, Some(EventKind::ApprovalExpired), lost).await)
        }
        Err(_) => {
            d.approvals.expire(&info.id);
            let expired = policy_refusal("approval timed out".into());
            Err(record_refusal(&d.audit, ask, Some(EventKind::ApprovalExpired), expired).await)
        }
    }
}

/// A granted approval goes through only once its record is written; a
/// failed record is a refusal like any other unwritable decision (503).
fn granted_outcome(
    recorded: Result<u64, cordon_audit::AuditError>,
    pinned: &Pinned,
) -> Result<u64, Refusal> {
    recorded.map_err(|e| audit_unavailable(pinned, &e))
}

/// The refusal every unwritable decision record gets.
pub(crate) fn audit_unavailable(pinned: &Pinned, e: &cordon_audit::AuditError) -> Refusal {
    Refusal::new(
        Kind::AuditUnavailable,
        format!("Cordon cannot write its audit trail, so it refuses every action: {e}"),
        Attribution::cordon(pinned.version().clone()),
    )
    .recorded(Recorded::Failed)
}

/// The record's `would` for a verdict learn mode lifted (never an allow).
fn would(verdict: Verdict) -> Option<cordon_audit::Would> {
    match verdict {
        Verdict::Deny => Some(cordon_audit::Would::Deny),
        Verdict::Approve { .. } => Some(cordon_audit::Would::Approve),
        Verdict::Allow => None,
    }
}

fn build(
    ask: &Ask<'_>,
    decision: &Decision,
    kind: EventKind,
    outcome: Option<AuditDecision>,
) -> NewRecord {
    let mut rec = DecisionRecord::of(ask, decision, kind);
    rec.outcome = outcome;
    rec.build()
}

#[cfg(test)]
mod tests {
    use cordon_audit::AuditError;
    use cordon_connectors::ConnectorSet;
    use http::StatusCode;

    use super::*;

    #[test]
    fn a_grant_whose_record_failed_is_refused_as_audit_unavailable() {
        let none = ConnectorSet::from_sources(Vec::new()).unwrap();
        let pinned = Pinned::new(None, Arc::new(none));
        let failed = Err(AuditError::CommitFailed {
            seq: 7,
            reason: "disk gone".into(),
        });
        let r = granted_outcome(failed, &pinned).unwrap_err();
        assert_eq!(r.kind(), &Kind::AuditUnavailable);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.decision().verdict, Verdict::Deny);
        assert_eq!(&*r.decision().policy_version, "none");
        assert!(r.reason().contains("disk gone"), "{}", r.reason());
        assert_eq!(granted_outcome(Ok(8), &pinned).unwrap(), 8);
    }
}
