//! Turning decisions into audit records. In strict mode a request is
//! forwarded only after its record has committed; any audit failure is a
//! denial (fail closed), never a silent pass.
use std::{net::SocketAddr, sync::Arc, time::Instant};

use cordon_audit::{AuditError, Decision as AuditDecision, EventKind, NewRecord};
use cordon_policy::{Decision, Verdict};
use serde_json::{Map, Value};

use crate::{bpf::maps::FlowOrigin, cgroup::AgentPath};

/// Who acted, as the kernel attested it.
#[derive(Clone, Debug)]
pub struct Actor {
    pub agent: AgentPath,
    pub origin: FlowOrigin,
    /// The executable of the process that opened the flow, read once when the
    /// flow arrives (closest to the connect the kernel recorded) rather than
    /// per request on a kept-alive connection.
    pub exe: Option<Arc<str>>,
}

impl Actor {
    pub fn new(agent: AgentPath, origin: FlowOrigin) -> Actor {
        let exe = std::fs::read_link(format!("/proc/{}/exe", origin.pid))
            .ok()
            .map(|p| Arc::from(p.display().to_string()));
        Actor { agent, origin, exe }
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
            agent: Some(a.agent().to_string()),
            instance: Some(a.instance().to_string()),
            chain: Some(a.chain_display()),
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
            ..NewRecord::new(self.kind)
        }
    }
}

/// Appends and waits for the commit (strict) or the queue (batched).
pub async fn append(log: &cordon_audit::AuditLog, rec: NewRecord) -> Result<u64, AuditError> {
    let r = log.append(rec).await;
    if let Err(e) = &r {
        tracing::error!("audit append failed, the action is denied: {e}");
    }
    r
}
