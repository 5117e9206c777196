//! Decision records and how they are appended. In strict mode a request is
//! forwarded only after its record has committed; any audit failure is a
//! denial (fail closed), never a silent pass.
use std::{future::Future, net::SocketAddr, time::Instant};

use cordon_audit::{AuditError, Decision as AuditDecision, EventKind, NewRecord};
use cordon_policy::{Decision, Verdict};
use serde_json::{Map, Value};

use crate::cgroup::AgentPath;

use super::{
    actor::Actor,
    decider::Ask,
    refusal::{Recorded, Refusal},
};

/// A record of `kind` attributed to the agent instance at `path`: agent,
/// instance and delegation chain, as every record about an agent names it.
pub fn attributed(path: &AgentPath, kind: EventKind) -> NewRecord {
    NewRecord {
        agent: Some(path.agent().to_string()),
        instance: Some(path.instance().to_string()),
        chain: Some(path.chain_display()),
        ..NewRecord::new(kind)
    }
}

/// A record describing one decision, ready to append.
pub struct DecisionRecord<'a> {
    pub kind: EventKind,
    pub actor: &'a Actor,
    pub connector: Option<&'a str>,
    pub action: &'a str,
    pub params: &'a Map<String, Value>,
    pub decision: &'a Decision,
    /// Overrides the verdict (e.g. a malformed request denied before policy).
    pub outcome: Option<AuditDecision>,
    pub host: Option<&'a str>,
    pub dst: SocketAddr,
    pub http: Option<(&'a str, &'a str)>,
    pub started: Instant,
}

impl DecisionRecord<'_> {
    pub fn build(&self) -> NewRecord {
        let a = &self.actor.agent;
        let outcome = self.outcome.unwrap_or(match self.decision.verdict {
            Verdict::Allow => AuditDecision::Allow,
            Verdict::Deny => AuditDecision::Deny,
            Verdict::Approve { .. } => AuditDecision::Pending,
        });
        NewRecord {
            cgroup_id: Some(self.actor.origin.cgroup_id),
            pid: Some(self.actor.origin.pid),
            uid: Some(self.actor.origin.uid),
            exe: self.actor.exe.as_deref().map(str::to_string),
            connector: self.connector.map(str::to_string),
            action: Some(self.action.to_string()),
            params: self.params.clone(),
            decision: Some(outcome),
            rule: Some(self.decision.rule_id.to_string()),
            reason: Some(self.decision.reason.to_string()),
            policy_version: Some(self.decision.policy_version.to_string()),
            decision_latency_us: Some(self.started.elapsed().as_micros() as u64),
            dst_host: self.host.filter(|h| !h.is_empty()).map(str::to_string),
            dst_ip: Some(self.dst.ip().to_string()),
            dst_port: Some(self.dst.port()),
            http_method: self.http.map(|(m, _)| m.to_string()),
            http_path: self.http.map(|(_, p)| p.to_string()),
            ..attributed(a, self.kind)
        }
    }
}

impl<'a> DecisionRecord<'a> {
    /// The record of `decision` on `ask`.
    pub fn of(ask: &'a Ask<'a>, decision: &'a Decision, kind: EventKind) -> DecisionRecord<'a> {
        DecisionRecord {
            kind,
            actor: ask.actor,
            connector: ask.connector,
            action: ask.action,
            params: ask.params,
            decision,
            outcome: None,
            host: ask.host,
            dst: ask.actor.origin.dst,
            http: ask.http,
            started: ask.started,
        }
    }
}

/// Records a refusal that is not yet in the trail (the one place a
/// refusal's record is built). The refusal stands either way; it comes back
/// marked with how its record went. `kind` overrides the ask's event kind
/// (approval answers, limits).
pub async fn record_refusal(
    log: &cordon_audit::AuditLog,
    ask: &Ask<'_>,
    kind: Option<EventKind>,
    refusal: Refusal,
) -> Refusal {
    if refusal.audit() != Recorded::No {
        return refusal;
    }
    let mut rec = DecisionRecord::of(ask, refusal.decision(), kind.unwrap_or(ask.kind));
    rec.outcome = Some(AuditDecision::Deny);
    let recorded = match append_refusal(log, rec.build()).await {
        Some(id) => Recorded::Yes(id),
        None => Recorded::Failed,
    };
    refusal.recorded(recorded)
}

/// Appends `rec` now (its seq and place in the chain are fixed at this
/// call) and returns a future that waits for the commit (strict) or the
/// queue (batched). A failure is logged there, naming the record, so every
/// caller's log line says what went unrecorded; the caller decides what to
/// refuse. Not an `async fn`: that would carry the record twice (argument
/// and local) in every decision's future.
pub fn append(
    log: &cordon_audit::AuditLog,
    rec: NewRecord,
) -> impl Future<Output = Result<u64, AuditError>> + Send + use<> {
    let submitted = log.append(&rec);
    async move {
        let r = submitted.await;
        // Named only when it failed: describing every record cost about 1%
        // of the daemon's CPU under load.
        if let Err(e) = &r {
            tracing::error!(record = %describe(&rec), "audit append failed, the action is denied: {e}");
        }
        r
    }
}

/// Appends the record of something already refused. The refusal stands
/// whether or not it is recorded, so the result is only the record's id for
/// the answer; a failure is logged at error level with what the record was
/// about. Never use this for a flow that is then forwarded: those must go
/// through a path that refuses when the record fails.
pub fn append_refusal(
    log: &cordon_audit::AuditLog,
    rec: NewRecord,
) -> impl Future<Output = Option<u64>> + Send + use<> {
    let submitted = log.append(&rec);
    async move {
        match submitted.await {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::error!(record = %describe(&rec), "audit append failed; the refusal stands, unrecorded: {e}");
                None
            }
        }
    }
}

/// One line naming a record for the error log: kind, who, what, which rule.
pub fn describe(rec: &NewRecord) -> String {
    let mut s = rec.kind.as_str().to_string();
    // The chain already names the agent when both are set.
    let who = rec.chain.as_ref().or(rec.agent.as_ref());
    for part in [who, rec.connector.as_ref(), rec.action.as_ref()]
        .into_iter()
        .flatten()
    {
        s.push(' ');
        s.push_str(part);
    }
    if let Some(rule) = &rec.rule {
        s.push_str(" rule=");
        s.push_str(rule);
    }
    if let Some(reason) = &rec.reason {
        s.push_str(&format!(" reason={reason:?}"));
    }
    s
}

#[cfg(test)]
mod no_dropped_records;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_described_by_kind_who_what_and_rule() {
        let rec = NewRecord {
            chain: Some("orch/bot".into()),
            action: Some("github.pr.merge".into()),
            rule: Some("merge-main".into()),
            reason: Some("approved by root".into()),
            ..NewRecord::new(EventKind::ApprovalGranted)
        };
        assert_eq!(
            describe(&rec),
            r#"approval.granted orch/bot github.pr.merge rule=merge-main reason="approved by root""#
        );
        let kill = NewRecord {
            agent: Some("bot".into()),
            connector: Some("github".into()),
            ..NewRecord::new(EventKind::Kill)
        };
        assert_eq!(describe(&kill), "agent.kill bot github");
    }
}
