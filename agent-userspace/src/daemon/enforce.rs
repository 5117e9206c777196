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
    audit::{Actor, DecisionRecord, append},
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
    },
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
        let audit_id = record(d, &ask, &decision, EventKind::Request, None)
            .await
            .ok();
        return Verdicted::Refuse { decision, audit_id };
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
            let decision = refusal(
                d,
                "audit-unavailable",
                &format!("Cordon cannot write its audit trail, so it refuses every action: {e}"),
            );
            return Verdicted::Refuse {
                decision,
                audit_id: None,
            };
        }
    };
    match outcome.enforcement {
        Enforcement::Allow => Verdicted::Allow { audit_id },
        Enforcement::Deny => Verdicted::Refuse {
            decision: outcome.decision,
            audit_id: Some(audit_id),
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
            }
        }
        Enforcement::Approve { timeout } => {
            match wait_for_human(d, &ask, &outcome.decision, timeout).await {
                Ok(()) => Verdicted::Allow { audit_id },
                Err(decision) => Verdicted::Refuse {
                    decision,
                    audit_id: Some(audit_id),
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
) -> Result<(), Decision> {
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
        .map_err(|e| {
            refusal(
                d,
                "approval-unavailable",
                &format!("cannot record the approval request: {e}"),
            )
        })?;
    let _ = record(
        d,
        ask,
        decision,
        EventKind::ApprovalRequested,
        Some(AuditDecision::Pending),
    )
    .await;
    super::webhook::notify(d, &info);
    tracing::info!(id = %info.id, agent = %info.chain, action = %info.action, "waiting for approval");
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(Answer::Approved { by, grant_for })) => {
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
            let granted = Decision {
                verdict: Verdict::Allow,
                rule_id: decision.rule_id.clone(),
                reason: Arc::from(format!("approved by {by}")),
                ..decision.clone()
            };
            let _ = record_with_approver(
                d,
                ask,
                &granted,
                EventKind::ApprovalGranted,
                AuditDecision::Allow,
                &by,
            )
            .await;
            Ok(())
        }
        Ok(Ok(Answer::Denied { by, reason })) => {
            let denied = refusal(d, &decision.rule_id, &format!("denied by {by}: {reason}"));
            let _ = record_with_approver(
                d,
                ask,
                &denied,
                EventKind::ApprovalDenied,
                AuditDecision::Deny,
                &by,
            )
            .await;
            Err(denied)
        }
        Ok(Err(_)) => Err(refusal(
            d,
            &decision.rule_id,
            "approval lost: the daemon dropped the request",
        )),
        Err(_) => {
            d.approvals.expire(&info.id);
            let expired = refusal(d, &decision.rule_id, "approval timed out");
            let _ = record(
                d,
                ask,
                &expired,
                EventKind::ApprovalExpired,
                Some(AuditDecision::Deny),
            )
            .await;
            Err(expired)
        }
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

async fn record_with_approver(
    d: &Shared,
    ask: &Ask<'_>,
    decision: &Decision,
    kind: EventKind,
    outcome: AuditDecision,
    by: &str,
) -> Result<u64, cordon_audit::AuditError> {
    let mut rec = build(ask, decision, kind, Some(outcome));
    rec.approver = Some(by.to_string());
    append(&d.audit, rec).await
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
