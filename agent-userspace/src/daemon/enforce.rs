//! One place that turns a policy outcome into what happens: the decision
//! record, approval waits, grants, automatic containment. The proxy and the
//! resolver call `decide_and_record` and act only on its answer.
use std::{sync::Arc, time::Instant};

use cordon_audit::{Decision as AuditDecision, EventKind, NewRecord};
use cordon_policy::{Decision, Enforcement, HttpInfo, Verdict};
use serde_json::{Map, Value};

use super::{
    Shared,
    approvals::Answer,
    audit::{Actor, DecisionRecord, append, append_refusal},
};
use crate::killswitch::Scope;

/// What the caller must do.
pub enum Verdicted {
    /// Forward; `audit_id` is the committed decision record.
    Allow { audit_id: u64 },
    /// Refuse with this decision (rule, reason); `audit_id` when recorded.
    Refuse {
        decision: Decision,
        audit_id: Option<u64>,
        cause: RefusalCause,
    },
}

/// Why a request is refused, for the answer's status: a decision is a 403,
/// a record that could not be written a 503 (the same request may pass
/// once the audit trail works again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalCause {
    Decided,
    AuditUnavailable,
}

/// A refusal reached while waiting for a human.
#[derive(Debug)]
pub struct Refusal {
    pub decision: Decision,
    pub cause: RefusalCause,
}

pub struct Ask<'a> {
    pub kind: EventKind,
    pub actor: &'a Actor,
    pub connector: Option<&'a str>,
    pub action: &'a str,
    pub params: &'a Map<String, Value>,
    pub host: Option<&'a str>,
    pub http: Option<(&'a str, &'a str)>,
    pub started: Instant,
}

pub async fn decide_and_record(d: &Shared, ask: Ask<'_>) -> Verdicted {
    let agent = &ask.actor.agent;
    if let Some(c) = ask.connector
        && super::kill::connector_blocked(d, agent, c)
    {
        let decision = refusal(
            d,
            "kill:connector",
            &format!("connector {c} is cut off for this agent (cordon kill --connector)"),
        );
        let rec = build(&ask, &decision, EventKind::Request, None);
        let audit_id = append_refusal(&d.audit, rec).await;
        return Verdicted::Refuse {
            decision,
            audit_id,
            cause: RefusalCause::Decided,
        };
    }
    let started_at = d.registry.started_at(agent);
    let http = ask.http.map(|(method, path)| HttpInfo {
        method,
        host: ask.host.unwrap_or(""),
        path,
    });
    let outcome = d
        .policy
        .decide(agent, started_at, ask.action, ask.params, http);
    let kind = if outcome.envelope.is_some() {
        EventKind::EnvelopeExceeded
    } else if outcome.limit.is_some() && outcome.enforcement != Enforcement::Allow {
        EventKind::LimitHit
    } else {
        ask.kind
    };
    d.stats
        .count(agent, outcome.enforcement == Enforcement::Allow);
    let shown_params = Value::Object(ask.params.clone());
    // Every decision is in the audit trail; the log line is for debugging
    // (at info level it was one line per request under load).
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
    let audit_id = match record(d, &ask, &outcome.decision, kind, None).await {
        Ok(id) => id,
        Err(e) => {
            return Verdicted::Refuse {
                decision: audit_unavailable(&d.policy.version(), &e).decision,
                audit_id: None,
                cause: RefusalCause::AuditUnavailable,
            };
        }
    };
    match outcome.enforcement {
        Enforcement::Allow => Verdicted::Allow { audit_id },
        Enforcement::Deny => Verdicted::Refuse {
            decision: outcome.decision,
            audit_id: Some(audit_id),
            cause: RefusalCause::Decided,
        },
        Enforcement::Kill { reason } => {
            // Contain the run before answering, through the same path as
            // `cordon kill AGENT/ID`: once the agent reads this refusal it
            // is already frozen.
            if let Err(e) =
                super::kill::kill(d, Scope::Run(agent.clone()), &reason, "cordon (automatic)").await
            {
                tracing::error!("automatic kill failed: {e}");
            }
            Verdicted::Refuse {
                decision: outcome.decision,
                audit_id: Some(audit_id),
                cause: RefusalCause::Decided,
            }
        }
        Enforcement::Approve { timeout } => {
            match wait_for_human(d, &ask, &outcome.decision, timeout).await {
                Ok(()) => Verdicted::Allow { audit_id },
                Err(Refusal { decision, cause }) => Verdicted::Refuse {
                    decision,
                    audit_id: Some(audit_id),
                    cause,
                },
            }
        }
    }
}

async fn wait_for_human(
    d: &Shared,
    ask: &Ask<'_>,
    decision: &Decision,
    timeout: std::time::Duration,
) -> Result<(), Refusal> {
    let agent = &ask.actor.agent;
    let (info, rx) = d
        .approvals
        .open(
            agent,
            ask.action,
            ask.params,
            &decision.rule_id,
            &decision.reason,
            timeout,
        )
        .map_err(|e| Refusal {
            decision: refusal(
                d,
                "approval-unavailable",
                &format!("cannot record the approval request: {e}"),
            ),
            cause: RefusalCause::Decided,
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
        return Err(audit_unavailable(&d.policy.version(), &e));
    }
    super::webhook::notify(d, &info);
    tracing::info!(id = %info.id, agent = %info.chain, action = %info.action, "waiting for approval");
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(Answer::Approved { by, grant_for })) => {
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
            granted_outcome(append(&d.audit, rec).await, &d.policy.version())?;
            if let Some(dur) = grant_for {
                let now = chrono::Utc::now();
                let until = now + chrono::Duration::from_std(dur).unwrap_or_default();
                if let Err(e) = d
                    .policy
                    .engine()
                    .grant(&agent.chain, ask.action, until, now)
                {
                    tracing::warn!("grant not recorded: {e}");
                }
            }
            Ok(())
        }
        Ok(Ok(Answer::Denied { by, reason })) => {
            let denied = refusal(d, &decision.rule_id, &format!("denied by {by}: {reason}"));
            let mut rec = build(
                ask,
                &denied,
                EventKind::ApprovalDenied,
                Some(AuditDecision::Deny),
            );
            rec.approver = Some(by);
            append_refusal(&d.audit, rec).await;
            Err(decided(denied))
        }
        Ok(Err(_)) => Err(decided(refusal(
            d,
            &decision.rule_id,
            "approval lost: the daemon dropped the request",
        ))),
        Err(_) => {
            d.approvals.expire(&info.id);
            let expired = refusal(d, &decision.rule_id, "approval timed out");
            let rec = build(
                ask,
                &expired,
                EventKind::ApprovalExpired,
                Some(AuditDecision::Deny),
            );
            append_refusal(&d.audit, rec).await;
            Err(decided(expired))
        }
    }
}

/// A granted approval goes through only once its record is written; a
/// failed record is a refusal like any other unwritable decision (503).
fn granted_outcome(
    recorded: Result<u64, cordon_audit::AuditError>,
    policy_version: &str,
) -> Result<u64, Refusal> {
    recorded.map_err(|e| audit_unavailable(policy_version, &e))
}

/// The refusal every unwritable decision record gets.
fn audit_unavailable(policy_version: &str, e: &cordon_audit::AuditError) -> Refusal {
    Refusal {
        decision: Decision {
            verdict: Verdict::Deny,
            rule_id: Arc::from("audit-unavailable"),
            reason: Arc::from(format!(
                "Cordon cannot write its audit trail, so it refuses every action: {e}"
            )),
            decided_by: Arc::from(""),
            policy_version: Arc::from(policy_version),
        },
        cause: RefusalCause::AuditUnavailable,
    }
}

fn decided(decision: Decision) -> Refusal {
    Refusal {
        decision,
        cause: RefusalCause::Decided,
    }
}

async fn record(
    d: &Shared,
    ask: &Ask<'_>,
    decision: &Decision,
    kind: EventKind,
    outcome: Option<AuditDecision>,
) -> Result<u64, cordon_audit::AuditError> {
    append(&d.audit, build(ask, decision, kind, outcome)).await
}

fn build(
    ask: &Ask<'_>,
    decision: &Decision,
    kind: EventKind,
    outcome: Option<AuditDecision>,
) -> NewRecord {
    DecisionRecord {
        kind,
        actor: ask.actor,
        connector: ask.connector,
        action: ask.action,
        params: ask.params,
        decision,
        outcome,
        host: ask.host,
        dst: ask.actor.origin.dst,
        http: ask.http,
        started: ask.started,
    }
    .build()
}

pub fn refusal(d: &Shared, rule: &str, reason: &str) -> Decision {
    Decision {
        verdict: Verdict::Deny,
        rule_id: Arc::from(rule),
        reason: Arc::from(reason),
        decided_by: Arc::from(""),
        policy_version: Arc::from(d.policy.version()),
    }
}

#[cfg(test)]
mod tests {
    use cordon_audit::AuditError;

    use super::*;

    #[test]
    fn a_grant_whose_record_failed_is_refused_as_audit_unavailable() {
        let failed = Err(AuditError::CommitFailed {
            seq: 7,
            reason: "disk gone".into(),
        });
        let r = granted_outcome(failed, "v3").unwrap_err();
        assert_eq!(r.cause, RefusalCause::AuditUnavailable);
        assert_eq!(r.decision.verdict, Verdict::Deny);
        assert_eq!(&*r.decision.rule_id, "audit-unavailable");
        assert_eq!(&*r.decision.policy_version, "v3");
        assert!(
            r.decision.reason.contains("disk gone"),
            "{}",
            r.decision.reason
        );
        assert_eq!(granted_outcome(Ok(8), "v3").unwrap(), 8);
    }
}
