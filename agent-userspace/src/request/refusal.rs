//! The one refusal type. Every stage that refuses (the framing gate, the
//! checks, the decision, the credential plan, the upstream call, the
//! connection classifier) builds one with `Refusal::new`, and the answer,
//! the record and the status all follow from its kind: there is no second
//! place where a refusal's rule, status or attribution is chosen.
use std::sync::Arc;

use cordon_policy::{Decision, Source, Verdict};
use http::StatusCode;

/// Who a refusal Cordon makes itself is attributed to (policy refusals are
/// attributed to the agent whose policy decided).
pub const CORDON: &str = "cordon";

/// Why a request or flow is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The request cannot be read as HTTP (or its body cannot be read).
    Malformed,
    /// Framing that two readers could split differently.
    Smuggling,
    /// A head over the size or count limits.
    HeaderLimit,
    /// The Host disagrees with the TLS name or the name the agent resolved.
    DomainFronting,
    /// The agent presented a real-looking credential Cordon did not issue.
    ForeignCredential,
    /// Allowed, but the bound credential could not be applied.
    CredentialUnavailable,
    /// The agent's AWS SigV4 signature did not verify with its instance's
    /// placeholder: altered after signing, another instance's placeholder,
    /// outside the time window, or unsigned.
    SignatureRefused,
    /// A policy decision (a rule, a default, a limit, the envelope, the
    /// address guard, a human's denial or an approval that timed out).
    Policy { rule: Arc<str>, source: Source },
    /// `cordon kill --connector` cut this connector off for the agent.
    ConnectorCut,
    /// The decision could not be recorded (fail closed).
    AuditUnavailable,
    /// The approval could not be asked for.
    ApprovalUnavailable,
    /// Forwarded but the upstream failed.
    UpstreamFailed,
    /// Forwarded but the upstream's certificate did not verify.
    UpstreamTls,
    /// The agent's TLS handshake with Cordon failed or stalled.
    TlsHandshake,
    /// The agent dialled Cordon's own listeners.
    CordonListener,
    /// The agent is over one of its caps (`request::caps`).
    Cap(super::caps::Cap),
}

impl Kind {
    /// The rule id written to the trail and shown to the agent.
    pub fn rule(&self) -> &str {
        match self {
            Kind::Malformed => "malformed-request",
            Kind::Smuggling => "request-smuggling",
            Kind::HeaderLimit => "header-limit",
            Kind::DomainFronting => "domain-fronting",
            Kind::ForeignCredential | Kind::CredentialUnavailable => "credential",
            Kind::SignatureRefused => "aws-signature",
            Kind::Policy { rule, .. } => rule,
            Kind::ConnectorCut => "kill:connector",
            Kind::AuditUnavailable => "audit-unavailable",
            Kind::ApprovalUnavailable => "approval-unavailable",
            Kind::UpstreamFailed | Kind::UpstreamTls => "upstream-error",
            Kind::TlsHandshake => "tls-handshake",
            Kind::CordonListener => "cordon-listener",
            Kind::Cap(cap) => cap_rule(*cap),
        }
    }

    /// The HTTP status of the answer, where there is one.
    pub fn status(&self) -> StatusCode {
        match self {
            Kind::Malformed | Kind::Smuggling | Kind::TlsHandshake => StatusCode::BAD_REQUEST,
            Kind::HeaderLimit => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Kind::DomainFronting
            | Kind::ForeignCredential
            | Kind::CredentialUnavailable
            | Kind::SignatureRefused
            | Kind::Policy { .. }
            | Kind::ConnectorCut
            | Kind::ApprovalUnavailable
            | Kind::CordonListener => StatusCode::FORBIDDEN,
            // The same request may pass once the trail can be written.
            Kind::AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::UpstreamFailed | Kind::UpstreamTls => StatusCode::BAD_GATEWAY,
            // The same request may pass once the agent holds less.
            Kind::Cap(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The short error the agent reads.
    pub fn error(&self) -> &'static str {
        match self {
            Kind::ForeignCredential | Kind::CredentialUnavailable | Kind::SignatureRefused => {
                "credential refused"
            }
            Kind::AuditUnavailable => "audit unavailable",
            Kind::Cap(_) => "over a cap",
            Kind::UpstreamFailed | Kind::UpstreamTls => "upstream failed",
            Kind::Malformed | Kind::Smuggling | Kind::HeaderLimit | Kind::TlsHandshake => {
                "request refused"
            }
            Kind::DomainFronting
            | Kind::Policy { .. }
            | Kind::ConnectorCut
            | Kind::ApprovalUnavailable
            | Kind::CordonListener => "denied by policy",
        }
    }

    fn source(&self) -> Source {
        match self {
            Kind::Policy { source, .. } => *source,
            _ => Source::Cordon,
        }
    }
}

/// `cap:<name>`, as a static string (rule ids are borrowed).
fn cap_rule(cap: super::caps::Cap) -> &'static str {
    use super::caps::Cap;
    match cap {
        Cap::Connections => "cap:connections",
        Cap::ConnectionRate => "cap:connections_per_second",
        Cap::PendingApprovals => "cap:pending_approvals",
        Cap::RequestBytes => "cap:request_bytes_in_flight",
        Cap::DnsRate => "cap:dns_queries_per_second",
        Cap::DaemonConnections => "cap:daemon_connections",
    }
}

/// Whose word a refusal is, and under which policy generation.
#[derive(Clone, Debug)]
pub struct Attribution {
    pub decided_by: Arc<str>,
    pub policy_version: Arc<str>,
}

impl Attribution {
    /// Cordon's own refusal under `policy_version`.
    pub fn cordon(policy_version: Arc<str>) -> Attribution {
        Attribution {
            decided_by: Arc::from(CORDON),
            policy_version,
        }
    }

    /// Whoever made a policy decision.
    pub fn of(decision: &Decision) -> Attribution {
        Attribution {
            decided_by: decision.decided_by.clone(),
            policy_version: decision.policy_version.clone(),
        }
    }
}

/// Whether the refusal is in the trail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Not yet: whoever answers it records it first.
    No,
    Yes(u64),
    /// Its record could not be written; the refusal stands regardless.
    Failed,
    /// A cap refusal after the first of its burst: counted in the burst's
    /// summary record rather than recorded on its own.
    Coalesced,
}

/// Boxed: refusals travel in `Err` through every stage, and the success
/// path should not pay for their size.
#[derive(Clone, Debug)]
pub struct Refusal(Box<Inner>);

#[derive(Clone, Debug)]
struct Inner {
    kind: Kind,
    decision: Decision,
    recorded: Recorded,
}

impl Refusal {
    /// The one constructor.
    pub fn new(kind: Kind, reason: impl Into<Arc<str>>, by: Attribution) -> Refusal {
        let decision = Decision {
            verdict: Verdict::Deny,
            rule_id: Arc::from(kind.rule()),
            reason: reason.into(),
            decided_by: by.decided_by,
            policy_version: by.policy_version,
            source: kind.source(),
        };
        Refusal(Box::new(Inner {
            kind,
            decision,
            recorded: Recorded::No,
        }))
    }

    /// The refusal of a policy decision that denied.
    pub fn of_policy(decision: &Decision) -> Refusal {
        Refusal::new(
            Kind::Policy {
                rule: decision.rule_id.clone(),
                source: decision.source,
            },
            decision.reason.clone(),
            Attribution::of(decision),
        )
    }

    /// Marks it as in the trail (or as having failed to get there).
    pub fn recorded(mut self, recorded: Recorded) -> Refusal {
        self.0.recorded = recorded;
        self
    }

    pub fn kind(&self) -> &Kind {
        &self.0.kind
    }

    /// The decision as the trail records it.
    pub fn decision(&self) -> &Decision {
        &self.0.decision
    }

    pub fn reason(&self) -> &str {
        &self.0.decision.reason
    }

    pub fn status(&self) -> StatusCode {
        self.0.kind.status()
    }

    pub fn audit(&self) -> Recorded {
        self.0.recorded
    }

    pub fn audit_id(&self) -> Option<u64> {
        match self.0.recorded {
            Recorded::Yes(id) => Some(id),
            Recorded::No | Recorded::Failed | Recorded::Coalesced => None,
        }
    }
}

#[cfg(test)]
mod tests;
