//! Outcome records: what became of a forwarded request, linked to its decision.
//!
//! A decision says what Cordon allowed; the `outcome` record written when the exchange ends
//! says what the upstream did with it (status, bytes, timings, error, LLM usage, MCP error).
//! [`expects_outcome`] is the one rule for which decisions get one; at start,
//! [`crate::reconcile_outcomes`] gives every such decision left without one an `aborted` or
//! `unknown` outcome, so no gap is silent.

use std::time::Duration;

use crate::record::{Decision, EventKind, NewRecord, OutcomeState};

/// What the proxy reports when an exchange it forwarded ends. Build it with struct-update
/// syntax (`Outcome { status: Some(201), ..Outcome::new(seq, OutcomeState::Completed) }`) and
/// hand it to [`crate::AuditLog::append_outcome`].
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The seq of the allowing decision record (`Verdicted::Allow { audit_id }`).
    pub decision_seq: u64,
    pub state: OutcomeState,
    /// Who and what, copied from the decision so a line of the trail reads on its own and
    /// `audit tail --agent` keeps outcomes with their decisions.
    pub agent: Option<String>,
    pub instance: Option<String>,
    pub chain: Option<String>,
    pub connector: Option<String>,
    pub action: Option<String>,
    /// Upstream HTTP status (none for a plain TCP flow or when no answer came).
    pub status: Option<u16>,
    /// Bytes sent to the upstream / received from it (bodies for HTTP, the stream for TCP).
    pub bytes_up: Option<u64>,
    pub bytes_down: Option<u64>,
    /// Forwarding to the upstream's response head.
    pub ttfb: Option<Duration>,
    /// Forwarding to the end of the exchange (last byte to the agent, or the error).
    pub duration: Option<Duration>,
    /// Connection, TLS or stream error, when there was one. Redacted like other text.
    pub error: Option<String>,
    /// LLM calls: tokens and priced cost, as far as the API reported them.
    pub llm: Option<LlmUsage>,
    /// MCP calls: whether the tool result was an error (`isError` / a JSON-RPC error).
    pub mcp_error: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LlmUsage {
    pub tokens_in: Option<u64>,
    pub tokens_out: Option<u64>,
    pub cost_usd: Option<f64>,
}

impl Outcome {
    pub fn new(decision_seq: u64, state: OutcomeState) -> Outcome {
        Outcome {
            decision_seq,
            state,
            agent: None,
            instance: None,
            chain: None,
            connector: None,
            action: None,
            status: None,
            bytes_up: None,
            bytes_down: None,
            ttfb: None,
            duration: None,
            error: None,
            llm: None,
            mcp_error: None,
        }
    }

    /// An outcome carrying the decision's who and what.
    pub fn of(decision_seq: u64, decision: &NewRecord, state: OutcomeState) -> Outcome {
        Outcome {
            agent: decision.agent.clone(),
            instance: decision.instance.clone(),
            chain: decision.chain.clone(),
            connector: decision.connector.clone(),
            action: decision.action.clone(),
            ..Outcome::new(decision_seq, state)
        }
    }

    /// The status class Prometheus counts it under (see [`status_class`]).
    pub fn status_class(&self) -> &'static str {
        status_class(self.status, self.state)
    }

    /// The record to append.
    pub fn into_record(self) -> NewRecord {
        let llm = self.llm.unwrap_or_default();
        NewRecord {
            agent: self.agent,
            instance: self.instance,
            chain: self.chain,
            connector: self.connector,
            action: self.action,
            decision_seq: Some(self.decision_seq),
            outcome: Some(self.state),
            upstream_status: self.status,
            bytes_up: self.bytes_up,
            bytes_down: self.bytes_down,
            ttfb_us: self.ttfb.map(micros),
            total_latency_us: self.duration.map(micros),
            error: self.error,
            tokens_in: llm.tokens_in,
            tokens_out: llm.tokens_out,
            // JSON has no text for NaN or infinity; a cost that is not a number is not one.
            cost_usd: llm.cost_usd.filter(|c| c.is_finite()),
            mcp_error: self.mcp_error,
            ..NewRecord::new(EventKind::Outcome)
        }
    }
}

impl From<Outcome> for NewRecord {
    fn from(o: Outcome) -> NewRecord {
        o.into_record()
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// `2xx`..`5xx` by the upstream status; without one, the state (`failed`, `aborted`,
/// `unknown`, or `none` for a completed exchange without a status: a TCP flow).
pub fn status_class(status: Option<u16>, state: OutcomeState) -> &'static str {
    match (status, state) {
        (Some(100..=199), _) => "1xx",
        (Some(200..=299), _) => "2xx",
        (Some(300..=399), _) => "3xx",
        (Some(400..=499), _) => "4xx",
        (Some(500..=599), _) => "5xx",
        (Some(_), _) => "other",
        (None, OutcomeState::Completed) => "none",
        (None, s) => s.as_str(),
    }
}

/// Whether a decision record promises an `outcome` record: an allowed HTTP request (a
/// `request`, or the `limit.hit` / `envelope.exceeded` / `approval.granted` record that
/// allowed it) or an allowed `tcp.connect` flow. Pending requests wait for their grant (the
/// grant expects the outcome), denials forward nothing, and `dns.query` answers are not
/// tracked.
pub fn expects_outcome(rec: &NewRecord) -> bool {
    promises_outcome(
        rec.kind,
        rec.decision,
        rec.http_method.is_some(),
        rec.action.as_deref(),
    )
}

/// [`expects_outcome`] over the fields it reads (for callers holding stored JSON).
pub(crate) fn promises_outcome(
    kind: EventKind,
    decision: Option<Decision>,
    has_http_method: bool,
    action: Option<&str>,
) -> bool {
    let forwarding_kind = matches!(
        kind,
        EventKind::Request
            | EventKind::LimitHit
            | EventKind::EnvelopeExceeded
            | EventKind::ApprovalGranted
            | EventKind::TcpConnect
    );
    let forwarded_thing = has_http_method || action == Some("tcp.connect");
    decision == Some(Decision::Allow) && forwarding_kind && forwarded_thing
}

/// The inline form `audit tail` appends to a decision and prints for an outcome:
/// `→ 201 in 84 ms`, `→ failed in 3 ms (connection refused)`, `→ aborted`.
pub fn outcome_summary(rec: &NewRecord) -> String {
    let mut s = String::from("→ ");
    match (rec.upstream_status, rec.outcome) {
        (Some(status), Some(OutcomeState::Completed) | None) => s.push_str(&status.to_string()),
        (Some(status), Some(state)) => s.push_str(&format!("{} {status}", state.as_str())),
        (None, Some(state)) => s.push_str(state.as_str()),
        (None, None) => s.push('?'),
    }
    if let Some(us) = rec.total_latency_us {
        s.push_str(&format!(" in {}", human_ms(us)));
    }
    let mut extras = Vec::new();
    if let (Some(up), Some(down)) = (rec.bytes_up, rec.bytes_down) {
        extras.push(format!("{up} B up, {down} B down"));
    }
    if let (Some(i), Some(o)) = (rec.tokens_in, rec.tokens_out) {
        extras.push(format!("{i}/{o} tokens"));
    }
    if let Some(c) = rec.cost_usd {
        extras.push(format!("${c:.4}"));
    }
    if rec.mcp_error == Some(true) {
        extras.push("mcp error".into());
    }
    if let Some(e) = &rec.error {
        extras.push(e.clone());
    }
    if !extras.is_empty() {
        s.push_str(&format!(" ({})", extras.join("; ")));
    }
    s
}

/// Whole milliseconds once past 10 ms, one decimal below.
fn human_ms(us: u64) -> String {
    if us >= 10_000 {
        format!("{} ms", us / 1000)
    } else {
        format!("{:.1} ms", us as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(kind: EventKind, decision: Decision, http: bool, action: &str) -> NewRecord {
        NewRecord {
            decision: Some(decision),
            action: Some(action.into()),
            http_method: http.then(|| "POST".into()),
            ..NewRecord::new(kind)
        }
    }

    #[test]
    fn allowed_forwards_expect_an_outcome_and_nothing_else_does() {
        use Decision::*;
        use EventKind::*;
        let expecting = [
            decision(Request, Allow, true, "github.pr.create"),
            decision(ApprovalGranted, Allow, true, "github.pr.merge"),
            decision(LimitHit, Allow, true, "openai.chat"),
            decision(EnvelopeExceeded, Allow, true, "openai.chat"),
            decision(TcpConnect, Allow, false, "tcp.connect"),
        ];
        for r in &expecting {
            assert!(expects_outcome(r), "{r:?}");
        }
        let not = [
            decision(Request, Deny, true, "github.pr.create"),
            decision(Request, Pending, true, "github.pr.merge"),
            decision(ApprovalRequested, Pending, true, "github.pr.merge"),
            decision(TcpConnect, Deny, false, "tcp.connect"),
            decision(DnsQuery, Allow, false, "dns.query"),
            decision(EnvelopeExceeded, Allow, false, "dns.query"),
            decision(Kill, Allow, false, "agent.kill"),
            decision(Outcome, Allow, true, "github.pr.create"),
        ];
        for r in &not {
            assert!(!expects_outcome(r), "{r:?}");
        }
    }

    #[test]
    fn an_outcome_becomes_a_record_linked_to_its_decision() {
        let dec = NewRecord {
            agent: Some("bot".into()),
            chain: Some("orch/bot".into()),
            connector: Some("openai".into()),
            action: Some("openai.chat.create".into()),
            ..NewRecord::new(EventKind::Request)
        };
        let o = Outcome {
            status: Some(201),
            bytes_up: Some(120),
            bytes_down: Some(4096),
            ttfb: Some(Duration::from_millis(40)),
            duration: Some(Duration::from_millis(84)),
            llm: Some(LlmUsage {
                tokens_in: Some(10),
                tokens_out: Some(20),
                cost_usd: Some(f64::NAN),
            }),
            ..Outcome::of(42, &dec, OutcomeState::Completed)
        };
        assert_eq!(o.status_class(), "2xx");
        let r = o.into_record();
        assert_eq!(r.kind, EventKind::Outcome);
        assert_eq!(r.decision_seq, Some(42));
        assert_eq!(r.outcome, Some(OutcomeState::Completed));
        assert_eq!(r.agent.as_deref(), Some("bot"));
        assert_eq!(r.action.as_deref(), Some("openai.chat.create"));
        assert_eq!(
            (r.ttfb_us, r.total_latency_us),
            (Some(40_000), Some(84_000))
        );
        assert_eq!((r.tokens_in, r.tokens_out), (Some(10), Some(20)));
        assert_eq!(r.cost_usd, None, "NaN is not a cost");
        assert_eq!(r.decision, None, "an outcome decides nothing");
    }

    #[test]
    fn status_classes_follow_the_status_else_the_state() {
        assert_eq!(status_class(Some(404), OutcomeState::Completed), "4xx");
        assert_eq!(status_class(Some(503), OutcomeState::Aborted), "5xx");
        assert_eq!(status_class(None, OutcomeState::Failed), "failed");
        assert_eq!(status_class(None, OutcomeState::Unknown), "unknown");
        assert_eq!(status_class(None, OutcomeState::Completed), "none");
        assert_eq!(status_class(Some(999), OutcomeState::Completed), "other");
    }

    #[test]
    fn the_summary_reads_like_the_tail_line() {
        let done = Outcome {
            status: Some(201),
            duration: Some(Duration::from_micros(84_300)),
            ..Outcome::new(1, OutcomeState::Completed)
        }
        .into_record();
        assert_eq!(outcome_summary(&done), "→ 201 in 84 ms");
        let failed = Outcome {
            duration: Some(Duration::from_micros(3_240)),
            error: Some("connection refused".into()),
            ..Outcome::new(1, OutcomeState::Failed)
        }
        .into_record();
        assert_eq!(
            outcome_summary(&failed),
            "→ failed in 3.2 ms (connection refused)"
        );
        let cut = Outcome {
            status: Some(200),
            ..Outcome::new(1, OutcomeState::Aborted)
        }
        .into_record();
        assert_eq!(outcome_summary(&cut), "→ aborted 200");
    }
}
