//! What goes into a decision and what comes out of it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// The HTTP request behind an action, when there is one.
#[derive(Debug, Clone, Copy)]
pub struct HttpInfo<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
}

/// One action an agent wants to take.
#[derive(Debug, Clone, Copy)]
pub struct ActionRequest<'a> {
    /// The delegation chain, root first, the acting agent last.
    pub chain: &'a [String],
    pub action: &'a str,
    pub params: &'a Map<String, Value>,
    pub request: Option<HttpInfo<'a>>,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    Allow,
    /// A human must approve within `timeout`, or the action is refused.
    Approve {
        #[serde(serialize_with = "as_secs")]
        timeout: Duration,
    },
    Deny,
}

impl Verdict {
    /// How restrictive the verdict is: deny > approve > allow.
    pub fn severity(&self) -> u8 {
        match self {
            Verdict::Allow => 0,
            Verdict::Approve { .. } => 1,
            Verdict::Deny => 2,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Approve { .. } => "approve",
            Verdict::Deny => "deny",
        }
    }
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

/// The static answer of a policy set. Strings are shared with the compiled
/// set, so building a decision does not copy them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The rule that decided: an `id`, `<file>:<n>`, `default:<file>`,
    /// `no-policy`, `ssrf-guard`, `schedule:<name>`, `grant:<id>`,
    /// `limit:<id>`, `envelope:<bound>` or `no-policy-loaded`.
    pub rule_id: Arc<str>,
    pub reason: Arc<str>,
    /// The agent of the chain whose policy gave this verdict.
    pub decided_by: Arc<str>,
    pub policy_version: Arc<str>,
    /// What kind of thing decided, so callers act on a type rather than on
    /// the text of `rule_id`.
    #[serde(skip)]
    pub source: Source,
}

/// Where a decision came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// A rule of a policy file.
    #[default]
    Rule,
    /// The agent's `default`: no rule matched.
    Default,
    /// The private/metadata address guard refused a destination no rule
    /// opened; it holds whatever the protocol on top turns out to be.
    AddressGuard,
    /// No policy file names the agent.
    NoPolicy,
    /// No valid policy set is loaded at all.
    NoPolicyLoaded,
    /// A standing grant lifted an approval.
    Grant,
    /// A rate limit.
    Limit,
    /// The run's execution envelope.
    Envelope,
    /// Cordon itself, not policy (a malformed request, a record that could
    /// not be written, a kill switch…).
    Cordon,
}

/// One rule looked at while explaining a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleTrace {
    pub agent: String,
    pub rule_id: String,
    /// `file:line` of the rule.
    pub location: String,
    pub action: String,
    pub decision: &'static str,
    pub matched: bool,
    /// Why it matched or not, e.g. "action does not match", "when is false".
    pub note: String,
}
