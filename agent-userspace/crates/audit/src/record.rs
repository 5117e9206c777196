//! The audit record: what the daemon submits (`NewRecord`) and what is stored (`AuditRecord`,
//! which adds the sequence number, timestamp and chain hashes).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What happened. Serialized as the dotted names shown, which are also what `--kind` filters
/// and OCSF `api.operation` fallbacks use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// A parsed HTTP action was decided (allow / deny / pending approval).
    #[serde(rename = "request")]
    Request,
    #[serde(rename = "approval.requested")]
    ApprovalRequested,
    #[serde(rename = "approval.granted")]
    ApprovalGranted,
    #[serde(rename = "approval.denied")]
    ApprovalDenied,
    #[serde(rename = "approval.expired")]
    ApprovalExpired,
    /// A human's answer became a standing grant (`cordon approve --uses N`,
    /// `--for`, `--always`): `rule` is `grant:<id>`, `approver` who gave it.
    #[serde(rename = "grant.granted")]
    GrantGranted,
    /// A grant let an action through without asking; `reason` says how many
    /// uses are left.
    #[serde(rename = "grant.used")]
    GrantUsed,
    /// A grant's last use was taken.
    #[serde(rename = "grant.exhausted")]
    GrantExhausted,
    /// A grant's time ran out.
    #[serde(rename = "grant.expired")]
    GrantExpired,
    /// An operator revoked a grant (`cordon grants revoke`).
    #[serde(rename = "grant.revoked")]
    GrantRevoked,
    /// A rate limit, budget or quota was hit.
    #[serde(rename = "limit.hit")]
    LimitHit,
    #[serde(rename = "envelope.exceeded")]
    EnvelopeExceeded,
    #[serde(rename = "agent.kill")]
    Kill,
    #[serde(rename = "agent.resume")]
    Resume,
    #[serde(rename = "tcp.connect")]
    TcpConnect,
    #[serde(rename = "dns.query")]
    DnsQuery,
    #[serde(rename = "policy.reload")]
    PolicyReload,
    #[serde(rename = "vault.change")]
    VaultChange,
    /// The control plane refused an operator/API request (bad auth, bad input).
    #[serde(rename = "control.refused")]
    ControlRefused,
    /// Host containment refused a system call (a file, a unix socket,
    /// another process). The action names what was tried.
    #[serde(rename = "contain.refused")]
    ContainRefused,
    /// `cordon run` started an agent instance, with how it is contained.
    #[serde(rename = "agent.launch")]
    Launch,
    /// What became of a forwarded request or flow: links to its decision by `decision_seq`
    /// (see `outcome.rs` for which decisions expect one).
    #[serde(rename = "outcome")]
    Outcome,
}

impl EventKind {
    pub const ALL: [EventKind; 22] = [
        EventKind::Request,
        EventKind::ApprovalRequested,
        EventKind::ApprovalGranted,
        EventKind::ApprovalDenied,
        EventKind::ApprovalExpired,
        EventKind::GrantGranted,
        EventKind::GrantUsed,
        EventKind::GrantExhausted,
        EventKind::GrantExpired,
        EventKind::GrantRevoked,
        EventKind::LimitHit,
        EventKind::EnvelopeExceeded,
        EventKind::Kill,
        EventKind::Resume,
        EventKind::TcpConnect,
        EventKind::DnsQuery,
        EventKind::PolicyReload,
        EventKind::VaultChange,
        EventKind::ControlRefused,
        EventKind::ContainRefused,
        EventKind::Launch,
        EventKind::Outcome,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Request => "request",
            EventKind::ApprovalRequested => "approval.requested",
            EventKind::ApprovalGranted => "approval.granted",
            EventKind::ApprovalDenied => "approval.denied",
            EventKind::ApprovalExpired => "approval.expired",
            EventKind::GrantGranted => "grant.granted",
            EventKind::GrantUsed => "grant.used",
            EventKind::GrantExhausted => "grant.exhausted",
            EventKind::GrantExpired => "grant.expired",
            EventKind::GrantRevoked => "grant.revoked",
            EventKind::LimitHit => "limit.hit",
            EventKind::EnvelopeExceeded => "envelope.exceeded",
            EventKind::Kill => "agent.kill",
            EventKind::Resume => "agent.resume",
            EventKind::TcpConnect => "tcp.connect",
            EventKind::DnsQuery => "dns.query",
            EventKind::PolicyReload => "policy.reload",
            EventKind::VaultChange => "vault.change",
            EventKind::ControlRefused => "control.refused",
            EventKind::ContainRefused => "contain.refused",
            EventKind::Launch => "agent.launch",
            EventKind::Outcome => "outcome",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How a forwarded exchange ended (the `outcome` field of an `outcome` record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeState {
    /// The upstream answered and the answer reached the agent to its end (any status).
    Completed,
    /// No usable answer: the connection or TLS handshake failed, the upstream broke off, or
    /// the request was refused after its decision (no credential could be applied).
    Failed,
    /// Cut before the answer ended: the agent went away, the kill switch cut the
    /// connection, or the daemon stopped cleanly while it was in flight.
    Aborted,
    /// The daemon ended without a clean stop (crash, SIGKILL), or the decision predates
    /// outcome records: whether the upstream answered cannot be told.
    Unknown,
}

impl OutcomeState {
    pub const ALL: [OutcomeState; 4] = [
        OutcomeState::Completed,
        OutcomeState::Failed,
        OutcomeState::Aborted,
        OutcomeState::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeState::Completed => "completed",
            OutcomeState::Failed => "failed",
            OutcomeState::Aborted => "aborted",
            OutcomeState::Unknown => "unknown",
        }
    }
}

/// The verdict attached to a record. `Pending` means a human approval was requested and the
/// request is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Deny,
    Pending,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::Pending => "pending",
        }
    }

    pub fn parse(s: &str) -> Option<Decision> {
        match s {
            "allow" => Some(Decision::Allow),
            "deny" => Some(Decision::Deny),
            "pending" => Some(Decision::Pending),
            _ => None,
        }
    }
}

/// Learn mode: what enforcement would have done with an action that was let through (the
/// `would` field; the rule that would have fired is the record's `rule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Would {
    Deny,
    Approve,
}

impl Would {
    pub fn as_str(self) -> &'static str {
        match self {
            Would::Deny => "deny",
            Would::Approve => "approve",
        }
    }
}

/// One decision as the daemon submits it. The caller must have redacted secrets already (see
/// [`NewRecord::redact_secrets`]). Every `None` / empty field is left out of the stored JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRecord {
    pub kind: EventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Delegation chain, outermost first: `orchestrator/sub-writer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    /// Structured action name, e.g. `github.branch.delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub params: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// Learn mode: the action went ahead, but enforcement would have denied it or asked a
    /// human (`rule` is the rule that would have fired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub would: Option<Would>,
    /// Id of the policy rule that decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_up: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_down: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_latency_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_latency_us: Option<u64>,
    /// Network context (used by the OCSF export's endpoints). IPs are kept as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    /// Upstream host name (HTTP Host / SNI / DNS query name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    /// Request path without the query string (queries can carry secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_path: Option<String>,
    /// `outcome` records: the seq of the decision this outcome completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_seq: Option<u64>,
    /// `outcome` records: how the exchange ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<OutcomeState>,
    /// `outcome` records: microseconds from forwarding to the upstream's response head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_us: Option<u64>,
    /// `outcome` records: the connection, TLS or stream error that ended the exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `outcome` records of LLM calls: tokens the API reported, and their priced cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_out: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// `outcome` records of MCP calls: whether the tool result was an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_error: Option<bool>,
}

impl NewRecord {
    /// A record of `kind` with every other field empty; fill the rest with struct-update
    /// syntax: `NewRecord { agent: Some(..), ..NewRecord::new(EventKind::Request) }`.
    pub fn new(kind: EventKind) -> NewRecord {
        NewRecord {
            kind,
            agent: None,
            instance: None,
            chain: None,
            cgroup_id: None,
            pid: None,
            uid: None,
            exe: None,
            connector: None,
            action: None,
            params: Map::new(),
            decision: None,
            would: None,
            rule: None,
            reason: None,
            policy_version: None,
            approver: None,
            upstream_status: None,
            bytes_up: None,
            bytes_down: None,
            decision_latency_us: None,
            total_latency_us: None,
            src_ip: None,
            src_port: None,
            dst_host: None,
            dst_ip: None,
            dst_port: None,
            http_method: None,
            http_path: None,
            decision_seq: None,
            outcome: None,
            ttfb_us: None,
            error: None,
            tokens_in: None,
            tokens_out: None,
            cost_usd: None,
            mcp_error: None,
        }
    }
}

/// A committed record: the submitted fields plus position and chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Dense from 1; never reused.
    pub seq: u64,
    /// Assigned at submission, microsecond precision, serialized RFC 3339 UTC (`...123456Z`).
    #[serde(with = "ts_micros")]
    pub ts: DateTime<Utc>,
    #[serde(flatten)]
    pub record: NewRecord,
    /// Hex SHA-256 of the previous record (64 zeros for seq 1).
    pub prev_hash: String,
    /// Hex SHA-256 of this record's canonical form (see `canonical`).
    pub hash: String,
}

impl std::ops::Deref for AuditRecord {
    type Target = NewRecord;
    fn deref(&self) -> &NewRecord {
        &self.record
    }
}

/// Current time truncated to microseconds, so a stored timestamp round-trips exactly.
pub(crate) fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

pub(crate) fn format_ts(ts: &DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Micros, true)
}

mod ts_micros {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_ts(ts))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| serde::de::Error::custom(format!("ts `{text}`: {e}")))
    }
}
